// The PointerStore for deployments: every table's metadata location in one Redis hash
// (field = table name, value = metadata URI), swapped by a Lua script so the check and the
// update are one atomic step on the server, whichever coordinator runs them.

import { Redis } from 'ioredis';
import { PuffinError } from '../../errors.ts';
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

  constructor(
    private readonly redis: Redis,
    options: RedisPointerStoreOptions = {},
  ) {
    this.key = options.key ?? 'puffindb:iceberg:pointers';
  }

  /** Connect to `url` (redis:// or rediss://), failing fast rather than queueing commands. */
  static connect(url: string, options: RedisPointerStoreOptions & { password?: string } = {}): RedisPointerStore {
    const redis = new Redis(url, {
      maxRetriesPerRequest: 2, connectTimeout: 5_000, enableOfflineQueue: true, lazyConnect: false,
      ...(options.password ? { password: options.password } : {}),
    });
    redis.on('error', () => undefined);
    return new RedisPointerStore(redis, options);
  }

  async get(name: string): Promise<string | undefined> {
    try {
      return (await this.redis.hget(this.key, name.toLowerCase())) ?? undefined;
    } catch (err) {
      throw unavailable(err);
    }
  }

  async list(): Promise<TablePointer[]> {
    try {
      const all = await this.redis.hgetall(this.key);
      return Object.entries(all)
        .map(([name, metadataLocation]) => ({ name, metadataLocation }))
        .sort((a, b) => a.name.localeCompare(b.name));
    } catch (err) {
      throw unavailable(err);
    }
  }

  async compareAndSwap(name: string, expected: string | undefined, next: string): Promise<boolean> {
    try {
      const r = await this.redis.eval(CAS, 1, this.key, name.toLowerCase(), expected === undefined ? '1' : '0', expected ?? '', next);
      return Number(r) === 1;
    } catch (err) {
      throw unavailable(err);
    }
  }

  async remove(name: string, expected: string): Promise<boolean> {
    try {
      return Number(await this.redis.eval(REMOVE, 1, this.key, name.toLowerCase(), expected)) === 1;
    } catch (err) {
      throw unavailable(err);
    }
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
