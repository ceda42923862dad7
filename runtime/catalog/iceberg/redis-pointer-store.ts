// The PointerStore for deployments: every table's metadata location in one Redis hash
// (field = table name, value = metadata URI), swapped by a Lua script so the check and the
// update are one atomic step on the server, whichever coordinator runs them.

import { Redis } from 'ioredis';
import { PuffinError } from '../../errors.ts';
import { reconnectOnReadonly, RedisStallGuard } from '../../state/redis-stall.ts';
import type { PointerStore, TablePointer } from './pointer-store.ts';

/** KEYS: hash. ARGV: name, mustBeAbsent ('1'/'0'), expected, next. */
const CAS = `local cur = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[2] == '1' then
  if cur then return 0 end
elseif cur ~= ARGV[3] then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
return 1`;

/** KEYS: hash. ARGV: name, expected. */
const REMOVE = `if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
return 1`;

export interface RedisPointerStoreOptions {
  /** The hash holding the pointers. */
  key?: string;
}

function unavailable(err: unknown): PuffinError {
  if (err instanceof PuffinError) return err;
  return new PuffinError('unavailable', `the Redis pointer store is unreachable: ${(err as Error).message}`);
}

export class RedisPointerStore implements PointerStore {
  readonly key: string;
  /** Once a command timed out (Redis frozen), calls fail at once until a PING answers. */
  private readonly stall: RedisStallGuard;

  constructor(
    private readonly redis: Redis,
    options: RedisPointerStoreOptions = {},
  ) {
    this.key = options.key ?? 'puffindb:iceberg:pointers';
    this.stall = new RedisStallGuard(`${redis.options.host ?? 'localhost'}:${redis.options.port ?? 6379}`, () => redis.ping(), () => redis.disconnect(true));
  }

  /**
   * Connect to `url` (redis:// or rediss://). Every command is bounded (a frozen Redis answers
   * 'unavailable' after commandTimeoutMs instead of holding the query for the whole freeze),
   * and a command that may have run is never sent twice (a replayed compare-and-swap would
   * report a commit it made as lost).
   */
  static connect(url: string, options: RedisPointerStoreOptions & { password?: string; commandTimeoutMs?: number } = {}): RedisPointerStore {
    const redis = new Redis(url, {
      connectTimeout: 5_000, commandTimeout: options.commandTimeoutMs ?? 5_000,
      // Commands issued before the first connection wait for it (bounded by commandTimeout).
      enableOfflineQueue: true, lazyConnect: false, maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false,
      reconnectOnError: reconnectOnReadonly,
      ...(options.password ? { password: options.password } : {}),
    });
    redis.on('error', () => undefined);
    return new RedisPointerStore(redis, options);
  }

  async get(name: string): Promise<string | undefined> {
    try {
      return (await this.stall.run('get', () => this.redis.hget(this.key, name.toLowerCase()))) ?? undefined;
    } catch (err) {
      throw unavailable(err);
    }
  }

  async list(): Promise<TablePointer[]> {
    try {
      const all = await this.stall.run('list', () => this.redis.hgetall(this.key));
      return Object.entries(all)
        .map(([name, metadataLocation]) => ({ name, metadataLocation }))
        .sort((a, b) => a.name.localeCompare(b.name));
    } catch (err) {
      throw unavailable(err);
    }
  }

  async compareAndSwap(name: string, expected: string | undefined, next: string): Promise<boolean> {
    try {
      const r = await this.stall.run('compareAndSwap', () => this.redis.eval(CAS, 1, this.key, name.toLowerCase(), expected === undefined ? '1' : '0', expected ?? '', next));
      return Number(r) === 1;
    } catch (err) {
      throw unavailable(err);
    }
  }

  async remove(name: string, expected: string): Promise<boolean> {
    try {
      return Number(await this.stall.run('remove', () => this.redis.eval(REMOVE, 1, this.key, name.toLowerCase(), expected))) === 1;
    } catch (err) {
      throw unavailable(err);
    }
  }

  async close(): Promise<void> {
    this.stall.close();
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
