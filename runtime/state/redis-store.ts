// The deployed state store: Redis (ElastiCache in AWS, TLS and an AUTH token) through
// ioredis. Commands fail fast with PuffinError('unavailable') while Redis is unreachable
// (no offline queue, bounded timeouts) and the client reconnects by itself, so the service
// recovers when Redis comes back. Blocking stream reads run on their own connections so a
// reader waiting for completions never delays anybody else's command.
// A Redis that stops answering while the connection stays open (frozen, overloaded) is
// noticed by the first command that times out; calls then fail at once until a PING
// answers again (runtime/state/redis-stall.ts).
//
// Layout under the key prefix (default 'puffindb:'):
//   q:<id>          hash: 'status', 'p:<progress counter>' (HINCRBY), 'f:<field>' (JSON)
//   queries         sorted set of query ids by submittedAt (for listing)
//   c:<stream>      completion stream, one per query run, expiring after its last message
//   log             query log stream, capped (MAXLEN ~)
//   keys / keyhash  API key records by id / key ids by sha256 of the secret
//   generators      hash: query generator records (JSON) by name
//   lock:<key>      lock token, PX lease
//   cache:<key>     cached result JSON, PX TTL
//   v:<key>         small values changed by compare-and-swap

import { randomUUID } from 'node:crypto';
import type { ConnectionOptions } from 'node:tls';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { Redis, type RedisOptions } from 'ioredis';
import { PuffinError } from '../errors.ts';
import type { Settings } from '../settings.ts';
import {
  DEFAULT_STATE_STORE_LIMITS,
  type ApiKeyRecord,
  type GeneratorRecord,
  type CachedResult,
  type CompletionMessage,
  type Lease,
  type QueryLogEntry,
  type QueryProgress,
  type QueryRecord,
  type QueryStatus,
  type StateStore,
  type StateStoreLimits,
  type StreamBatch,
} from './state-store.ts';
import {
  checkApiKey,
  checkGenerator,
  checkGeneratorName,
  checkBlockMs,
  checkCount,
  checkKey,
  checkPatch,
  checkPositiveMs,
  checkProgressDelta,
  checkQueryRecord,
  checkStatus,
  conflictingKey,
  DEFAULT_LIST_LIMIT,
  DEFAULT_READ_COUNT,
  NON_TERMINAL_STATUSES,
  parseStreamId,
  streamIdAfter,
} from './checks.ts';
import * as lua from './redis-scripts.ts';
import { reconnectOnReadonly, RedisStallGuard, RedisTimeoutError, TRANSIENT_REPLY } from './redis-stall.ts';
import { readSecretString } from './secrets.ts';

export interface RedisStateStoreOptions {
  /** redis://host:port[/db] or rediss://host:port[/db] (TLS). */
  url: string;
  /** AUTH token (ElastiCache) or password. */
  password?: string;
  username?: string;
  /** Extra TLS options for rediss:// (e.g. a private CA). */
  tls?: ConnectionOptions;
  /** Prefix of every key; lets several deployments share one Redis. Default 'puffindb:'. */
  keyPrefix?: string;
  /** Bound on establishing a connection. Default 5000. */
  connectTimeoutMs?: number;
  /** Bound on one command's answer. Default 5000. */
  commandTimeoutMs?: number;
  /** Connections kept for blocking reads (one per concurrent reader). Default 32. */
  maxBlockingConnections?: number;
  limits?: Partial<StateStoreLimits>;
}

const PROGRESS_FIELDS = ['fragmentsDone', 'fragmentsTotal', 'bytesScanned'] as const;
/** Pause between reconnection attempts: short, so recovery follows Redis's return closely. */
const MAX_RECONNECT_DELAY_MS = 1_000;
/** Query ids fetched per round trip when listing. */
const LIST_PAGE = 200;

type StreamReply = [id: string, fields: string[]][];

export class RedisStateStore implements StateStore {
  private readonly prefix: string;
  private readonly limits: StateStoreLimits;
  private readonly where: string;
  private readonly connectTimeoutMs: number;
  private readonly commandTimeoutMs: number;
  private readonly maxBlocking: number;
  /** Connections for blocking reads: all of them, and those idle now. */
  private readonly blocking = new Set<Redis>();
  private readonly idleBlocking: Redis[] = [];
  private readonly blockingWaiters: ((client: Redis | undefined) => void)[] = [];
  private lastError = '';
  private closed = false;
  /** Calls fail at once while Redis is not answering (a command timed out) until a PING answers. */
  private readonly stall: RedisStallGuard;

  private constructor(
    private readonly client: Redis,
    options: RedisStateStoreOptions,
  ) {
    this.prefix = options.keyPrefix ?? 'puffindb:';
    this.limits = { ...DEFAULT_STATE_STORE_LIMITS, ...options.limits };
    this.where = describeUrl(options.url);
    this.connectTimeoutMs = options.connectTimeoutMs ?? 5_000;
    this.commandTimeoutMs = options.commandTimeoutMs ?? 5_000;
    this.maxBlocking = options.maxBlockingConnections ?? 32;
    this.stall = new RedisStallGuard(this.where, () => client.call('PING'), () => client.disconnect(true));
    this.watch(client);
  }

  /** Connect and wait until Redis answers; rejects with 'unavailable' when it does not in time. */
  static async connect(options: RedisStateStoreOptions): Promise<RedisStateStore> {
    const connectTimeout = options.connectTimeoutMs ?? 5_000;
    const client = new Redis(checkUrl(options.url), {
      password: options.password,
      username: options.username,
      ...(options.tls ? { tls: options.tls } : {}),
      connectTimeout,
      commandTimeout: options.commandTimeoutMs ?? 5_000,
      // Fail fast while disconnected instead of queueing; never replay a write that may have run.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      retryStrategy: (times: number) => Math.min(50 * 2 ** times, MAX_RECONNECT_DELAY_MS),
      // After a failover the old primary answers READONLY: reconnect (the primary endpoint's
      // DNS names the promoted replica), without resending the refused command.
      reconnectOnError: reconnectOnReadonly,
      // RESP2 keeps replies as plain arrays on every Redis and ElastiCache version.
      protocol: 2,
      connectionName: 'puffindb',
      lazyConnect: true,
    } satisfies RedisOptions);
    const store = new RedisStateStore(client, options);
    try {
      await withTimeout(client.connect(), connectTimeout, () => `no answer within ${connectTimeout} ms`);
    } catch (err) {
      client.disconnect();
      const message = messageOf(err);
      const cause = store.lastError && store.lastError !== message ? `${message} (${store.lastError})` : message;
      throw new PuffinError('unavailable', `cannot connect to Redis at ${store.where}: ${cause}`);
    }
    return store;
  }

  /**
   * The store named by REDIS_URL; with PUFFINDB_REDIS_AUTH_SECRET_ARN, the AUTH token is read
   * once from Secrets Manager. `options` supply a Secrets Manager client (a local endpoint)
   * or TLS options (a private CA) instead of the defaults.
   */
  static async fromSettings(settings: Settings, options: { secrets?: SecretsManagerClient; tls?: ConnectionOptions } = {}): Promise<RedisStateStore> {
    if (!settings.redisUrl) throw new PuffinError('internal', 'REDIS_URL is not set; the Redis state store needs it');
    const arn = settings.redisAuthSecretArn;
    const password = arn ? await readSecretString(arn, settings.region, { client: options.secrets, what: 'the Redis AUTH token' }) : undefined;
    return RedisStateStore.connect({ url: settings.redisUrl, password, tls: options.tls });
  }

  // -- query registry

  async createQuery(record: QueryRecord): Promise<void> {
    checkQueryRecord(record);
    const now = Date.now();
    const created = await this.script(lua.CREATE_QUERY, [this.key('q:', record.id), this.key('queries')], [
      this.limits.queryTtlMs,
      record.submittedAt,
      record.id,
      now - this.limits.queryTtlMs,
      ...encodeRecordFields(record),
    ]);
    if (created !== 1) throw new PuffinError('conflict', `query ${record.id} already exists`);
  }

  async getQuery(id: string): Promise<QueryRecord | undefined> {
    const flat = (await this.command('getQuery', ['HGETALL', this.key('q:', checkKey('query id', id))])) as string[];
    return decodeRecord(flat);
  }

  async updateQuery(id: string, patch: Partial<Omit<QueryRecord, 'id'>>, fromStatuses: readonly QueryStatus[] = NON_TERMINAL_STATUSES): Promise<QueryRecord | undefined> {
    checkKey('query id', id);
    checkPatch(patch);
    fromStatuses.forEach((s) => checkStatus('fromStatuses', s));
    if (fromStatuses.length === 0) return undefined;
    const flat = (await this.script(lua.UPDATE_QUERY, [this.key('q:', id)], [fromStatuses.join(','), ...encodeRecordFields(patch)])) as string[] | null;
    return flat ? decodeRecord(flat) : undefined;
  }

  async addProgress(id: string, delta: Partial<QueryProgress>): Promise<void> {
    checkKey('query id', id);
    checkProgressDelta(delta);
    await this.script(lua.ADD_PROGRESS, [this.key('q:', id)], PROGRESS_FIELDS.map((f) => delta[f] ?? 0));
  }

  async listQueries(options: { limit?: number; status?: QueryStatus } = {}): Promise<QueryRecord[]> {
    const limit = checkCount('limit', options.limit, DEFAULT_LIST_LIMIT);
    const status = options.status === undefined ? undefined : checkStatus('status', options.status);
    const index = this.key('queries');
    const out: QueryRecord[] = [];
    for (let start = 0; out.length < limit; start += LIST_PAGE) {
      const ids = (await this.command('listQueries', ['ZREVRANGE', index, start, start + LIST_PAGE - 1])) as string[];
      if (ids.length === 0) break;
      const pipeline = this.client.pipeline();
      for (const id of ids) pipeline.call('HGETALL', this.key('q:', id));
      const replies = await this.run('listQueries', () => pipeline.exec());
      const expired: string[] = [];
      ids.forEach((id, i) => {
        const [err, flat] = replies?.[i] ?? [null, []];
        if (err) {
          this.stall.failed('listQueries', err);
          throw this.translate('listQueries', err);
        }
        const record = decodeRecord(flat as string[]);
        if (!record) expired.push(id);
        else if ((status === undefined || record.status === status) && out.length < limit) out.push(record);
      });
      // Records expire by TTL; their index entries are dropped when a listing meets them.
      if (expired.length) await this.command('listQueries', ['ZREM', index, ...expired]);
      if (ids.length < LIST_PAGE) break;
    }
    return out;
  }

  // -- completion streams

  async publishCompletion(queryId: string, message: CompletionMessage): Promise<void> {
    const stream = this.key('c:', checkKey('completion stream', queryId));
    await this.script(lua.PUBLISH_COMPLETION, [stream], [JSON.stringify(message), this.limits.completionTtlMs]);
  }

  async readCompletions(queryId: string, cursor: string | null, options: { blockMs?: number; count?: number } = {}): Promise<StreamBatch<CompletionMessage>> {
    const stream = this.key('c:', checkKey('completion stream', queryId));
    if (cursor !== null) parseStreamId('cursor', cursor);
    const blockMs = checkBlockMs(options.blockMs);
    const count = checkCount('count', options.count, DEFAULT_READ_COUNT);
    const from = cursor ?? '0-0';
    const read = ['XREAD', 'COUNT', count, 'STREAMS', stream, from];
    const reply = blockMs === 0 ? await this.command('readCompletions', read) : await this.blockingRead(read, blockMs);
    const entries = reply ? ((reply as [string, StreamReply][])[0]?.[1] ?? []) : [];
    return { items: entries.map(([, fields]) => parseField<CompletionMessage>(fields, 'm')), cursor: entries.at(-1)?.[0] ?? cursor };
  }

  async deleteCompletions(queryId: string): Promise<void> {
    await this.command('deleteCompletions', ['DEL', this.key('c:', checkKey('completion stream', queryId))]);
  }

  // -- query log

  async appendLog(entry: QueryLogEntry): Promise<void> {
    await this.command('appendLog', ['XADD', this.key('log'), 'MAXLEN', '~', this.limits.logMaxEntries, '*', 'e', JSON.stringify(entry)]);
  }

  async readLog(cursor: string | null, count: number): Promise<StreamBatch<QueryLogEntry>> {
    if (cursor !== null) parseStreamId('cursor', cursor);
    const n = checkCount('count', count, DEFAULT_READ_COUNT);
    const entries = (await this.command('readLog', ['XRANGE', this.key('log'), cursor === null ? '-' : `(${cursor}`, '+', 'COUNT', n])) as StreamReply;
    return { items: entries.map(([, fields]) => parseField<QueryLogEntry>(fields, 'e')), cursor: entries.at(-1)?.[0] ?? cursor };
  }

  async trimLog(cursor: string): Promise<void> {
    const id = parseStreamId('cursor', cursor);
    await this.command('trimLog', ['XTRIM', this.key('log'), 'MINID', streamIdAfter(id)]);
  }

  // -- API keys

  async putApiKey(record: ApiKeyRecord): Promise<void> {
    checkApiKey(record);
    const stored = await this.script(lua.PUT_API_KEY, this.apiKeyKeys(), [record.id, record.hash, JSON.stringify(record)]);
    if (stored !== 1) throw conflictingKey(record.hash);
  }

  async findApiKeyByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    if (typeof hash !== 'string' || hash === '') return undefined;
    const json = (await this.script(lua.FIND_API_KEY, this.apiKeyKeys(), [hash])) as string | null;
    return json ? (JSON.parse(json) as ApiKeyRecord) : undefined;
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    const values = (await this.command('listApiKeys', ['HVALS', this.key('keys')])) as string[];
    return values.map((v) => JSON.parse(v) as ApiKeyRecord).sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
  }

  async deleteApiKey(id: string): Promise<boolean> {
    return (await this.script(lua.DELETE_API_KEY, this.apiKeyKeys(), [checkKey('API key id', id)])) === 1;
  }

  // -- query generators

  async putGenerator(record: GeneratorRecord): Promise<void> {
    checkGenerator(record);
    await this.command('putGenerator', ['HSET', this.key('generators'), record.name, JSON.stringify(record)]);
  }

  async listGenerators(): Promise<GeneratorRecord[]> {
    const values = (await this.command('listGenerators', ['HVALS', this.key('generators')])) as string[];
    return values.map((v) => JSON.parse(v) as GeneratorRecord).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async deleteGenerator(name: string): Promise<boolean> {
    return (await this.command('deleteGenerator', ['HDEL', this.key('generators'), checkGeneratorName(name)])) === 1;
  }

  // -- locks

  async acquireLock(key: string, ttlMs: number): Promise<Lease | undefined> {
    checkKey('lock key', key);
    const ttl = checkPositiveMs('lock ttlMs', ttlMs);
    const token = randomUUID();
    const expiresAt = Date.now() + ttl;
    const set = await this.command('acquireLock', ['SET', this.key('lock:', key), token, 'NX', 'PX', ttl]);
    return set === 'OK' ? { key, token, expiresAt } : undefined;
  }

  async renewLock(lease: Lease, ttlMs: number): Promise<Lease | undefined> {
    checkKey('lock key', lease.key);
    const ttl = checkPositiveMs('lock ttlMs', ttlMs);
    const expiresAt = Date.now() + ttl;
    const renewed = await this.script(lua.RENEW_LOCK, [this.key('lock:', lease.key)], [lease.token, ttl]);
    return renewed === 1 ? { ...lease, expiresAt } : undefined;
  }

  async releaseLock(lease: Lease): Promise<boolean> {
    checkKey('lock key', lease.key);
    return (await this.script(lua.RELEASE_LOCK, [this.key('lock:', lease.key)], [lease.token])) === 1;
  }

  // -- result cache

  async getCachedResult(key: string): Promise<CachedResult | undefined> {
    const json = (await this.command('getCachedResult', ['GET', this.key('cache:', checkKey('cache key', key))])) as string | null;
    return json === null ? undefined : (JSON.parse(json) as CachedResult);
  }

  async putCachedResult(key: string, value: CachedResult, ttlMs: number): Promise<void> {
    checkKey('cache key', key);
    const ttl = checkPositiveMs('cache ttlMs', ttlMs);
    await this.command('putCachedResult', ['SET', this.key('cache:', key), JSON.stringify(value), 'PX', ttl]);
  }

  // -- values with compare-and-swap

  async getValue(key: string): Promise<string | undefined> {
    const value = (await this.command('getValue', ['GET', this.key('v:', checkKey('value key', key))])) as string | null;
    return value ?? undefined;
  }

  async compareAndSwap(key: string, expected: string | undefined, next: string): Promise<boolean> {
    checkKey('value key', key);
    if (typeof next !== 'string') throw new PuffinError('bad_request', `compareAndSwap needs a string value, got ${typeof next}`);
    const swapped = await this.script(lua.COMPARE_AND_SWAP, [this.key('v:', key)], [expected === undefined ? '0' : '1', expected ?? '', next]);
    return swapped === 1;
  }

  async ping(): Promise<void> {
    await this.command('ping', ['PING']);
  }

  /** Whether calls are failing fast because Redis stopped answering (for tests and diagnostics). */
  get stalled(): boolean {
    return this.stall.stalled;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stall.close();
    for (const wake of this.blockingWaiters.splice(0)) wake(undefined);
    // Readers still blocked are released at once (with 'unavailable'), not after their wait.
    for (const c of this.blocking) c.disconnect();
    this.blocking.clear();
    this.idleBlocking.length = 0;
    const clients = [this.client];
    await Promise.allSettled(
      clients.map(async (c) => {
        // QUIT lets pending replies arrive; a client that cannot reach Redis is just dropped.
        if (c.status === 'ready') await withTimeout(c.quit(), this.commandTimeoutMs, () => 'quit timed out').catch(() => c.disconnect());
        else c.disconnect();
      }),
    );
  }

  // -- internals

  private key(kind: string, name = ''): string {
    return `${this.prefix}${kind}${name}`;
  }

  private apiKeyKeys(): string[] {
    return [this.key('keys'), this.key('keyhash')];
  }

  private watch(client: Redis): void {
    // Without a listener ioredis reports every failed reconnection as an unhandled error.
    client.on('error', (err: unknown) => {
      this.lastError = messageOf(err);
    });
  }

  private async command(op: string, args: (string | number)[]): Promise<unknown> {
    const [name, ...rest] = args;
    return this.run(op, () => this.client.call(String(name), ...rest));
  }

  /** EVALSHA, loading the script on first use (or after a Redis restart forgot it). */
  private async script(s: lua.LuaScript, keys: string[], args: (string | number)[]): Promise<unknown> {
    return this.run(s.name, async () => {
      try {
        return await this.client.call('EVALSHA', s.sha, keys.length, ...keys, ...args);
      } catch (err) {
        if (!/NOSCRIPT/.test(messageOf(err))) throw err;
        return await this.client.call('EVAL', s.source, keys.length, ...keys, ...args);
      }
    });
  }

  private async run<T>(op: string, work: () => Promise<T>): Promise<T> {
    this.checkUsable(op);
    try {
      return await work();
    } catch (err) {
      this.stall.failed(op, err);
      throw this.translate(op, err);
    }
  }

  /** Closed, or known not to answer: 'unavailable' at once. */
  private checkUsable(op: string): void {
    if (this.closed) throw new PuffinError('unavailable', `the Redis state store (${this.where}) is closed`);
    this.stall.check(op);
  }

  /** Redis's own error replies are bugs or bad input; anything else means Redis is out of reach. */
  private translate(op: string, err: unknown): PuffinError {
    if (err instanceof PuffinError) return err;
    const message = messageOf(err);
    if ((err as { name?: string })?.name === 'ReplyError') {
      if (/Invalid stream ID/i.test(message)) return new PuffinError('bad_request', `invalid stream cursor for ${op}: ${message}`);
      // Conditions of the server that pass: a failover, a restart loading its data, a full memory.
      if (TRANSIENT_REPLY.test(message)) return new PuffinError('unavailable', `Redis at ${this.where} is unavailable (${op} refused: ${message})`);
      return new PuffinError('internal', `Redis refused ${op}: ${message}`);
    }
    const cause = /writeable|closed|MaxRetriesPerRequest/i.test(message) && this.lastError ? `${message} (${this.lastError})` : message;
    return new PuffinError('unavailable', `Redis at ${this.where} is unavailable (${op} failed: ${cause})`);
  }

  /**
   * XREAD `read` with BLOCK on a connection of its own, bounded by blockMs plus the command
   * timeout; a connection that overruns it is dropped, since its replies are out of step.
   */
  private async blockingRead(read: (string | number)[], blockMs: number): Promise<unknown> {
    this.checkUsable('readCompletions');
    if (this.client.status !== 'ready') throw this.translate('readCompletions', new Error(`connection is ${this.client.status}`));
    const client = await this.acquireBlocking(blockMs);
    // Every blocking connection busy for the whole wait: answer with what is there now.
    if (!client) return this.command('readCompletions', read);
    let healthy = true;
    try {
      const [name, ...rest] = read;
      const limit = blockMs + this.commandTimeoutMs;
      return await withTimeout(client.call(String(name), 'BLOCK', blockMs, ...rest), limit, () => `no answer within ${limit} ms`);
    } catch (err) {
      healthy = false;
      this.stall.failed('readCompletions', err);
      throw this.translate('readCompletions', err);
    } finally {
      this.releaseBlocking(client, healthy);
    }
  }

  private async acquireBlocking(waitMs: number): Promise<Redis | undefined> {
    while (this.idleBlocking.length) {
      const client = this.idleBlocking.pop()!;
      if (client.status === 'ready') return client;
      this.dropBlocking(client);
    }
    if (this.blocking.size < this.maxBlocking) {
      const client = this.client.duplicate({ commandTimeout: undefined, connectionName: 'puffindb-blocking', lazyConnect: true });
      this.blocking.add(client);
      this.watch(client);
      try {
        await withTimeout(client.connect(), this.connectTimeoutMs, () => `no answer within ${this.connectTimeoutMs} ms`);
        return client;
      } catch (err) {
        this.dropBlocking(client);
        this.stall.failed('readCompletions', err);
        throw this.translate('readCompletions', err);
      }
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const at = this.blockingWaiters.indexOf(take);
        if (at >= 0) this.blockingWaiters.splice(at, 1);
        resolve(undefined);
      }, waitMs);
      const take = (client: Redis | undefined) => {
        clearTimeout(timer);
        resolve(client);
      };
      this.blockingWaiters.push(take);
    });
  }

  private releaseBlocking(client: Redis, healthy: boolean): void {
    if (!healthy || this.closed || client.status !== 'ready') {
      this.dropBlocking(client);
      // A waiter may now open a fresh connection in the freed slot.
      this.blockingWaiters.shift()?.(undefined);
      return;
    }
    const waiter = this.blockingWaiters.shift();
    if (waiter) waiter(client);
    else this.idleBlocking.push(client);
  }

  private dropBlocking(client: Redis): void {
    this.blocking.delete(client);
    client.disconnect();
  }
}

/** Every record field as hash field/value pairs; undefined fields are skipped. */
function encodeRecordFields(record: Partial<QueryRecord>): string[] {
  const out: string[] = [];
  for (const [name, value] of Object.entries(record)) {
    if (value === undefined) continue;
    if (name === 'status') out.push('status', String(value));
    else if (name === 'progress') {
      const progress = value as Partial<QueryProgress>;
      for (const f of PROGRESS_FIELDS) if (progress[f] !== undefined) out.push(`p:${f}`, String(progress[f]));
    } else out.push(`f:${name}`, JSON.stringify(value));
  }
  return out;
}

function decodeRecord(flat: string[] | null): QueryRecord | undefined {
  if (!flat || flat.length === 0) return undefined;
  const record: Record<string, unknown> = {};
  const progress: QueryProgress = { fragmentsDone: 0, fragmentsTotal: 0, bytesScanned: 0 };
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const [field, value] = [flat[i], flat[i + 1]];
    if (field === 'status') record.status = value;
    else if (field.startsWith('p:')) progress[field.slice(2) as keyof QueryProgress] = Number(value);
    else if (field.startsWith('f:')) record[field.slice(2)] = JSON.parse(value);
  }
  record.progress = progress;
  return record as unknown as QueryRecord;
}

function parseField<T>(fields: string[], name: string): T {
  const at = fields.indexOf(name);
  return JSON.parse(at >= 0 ? fields[at + 1] : 'null') as T;
}

function checkUrl(url: string): string {
  if (typeof url !== 'string' || !/^rediss?:\/\/[^/]/i.test(url)) {
    throw new PuffinError('bad_request', `REDIS_URL must be redis://host:port or rediss://host:port (TLS), got ${JSON.stringify(url)}`);
  }
  return url;
}

/** host:port of a Redis URL for messages; credentials in the URL never reach a log. */
function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.hostname}:${u.port || 6379}`;
  } catch {
    return 'the configured URL';
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function withTimeout<T>(work: Promise<T>, ms: number, describe: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RedisTimeoutError(describe())), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
