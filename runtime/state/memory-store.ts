// The embedded state store: everything in this process's memory, for one-machine use and
// for tests. It behaves like the Redis store (same cursors, TTLs, atomicity, limits), and
// stores copies made through JSON, so callers can never mutate what it holds.

import { randomUUID } from 'node:crypto';
import { PuffinError } from '../errors.ts';
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
  applyPatch,
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
  compareStreamIds,
  conflictingKey,
  DEFAULT_LIST_LIMIT,
  DEFAULT_READ_COUNT,
  NON_TERMINAL_STATUSES,
  parseStreamId,
  StreamIdClock,
} from './checks.ts';

/** Expired entries are swept at most this often (reads check expiry themselves). */
const SWEEP_INTERVAL_MS = 1_000;

interface StreamEntry<T> {
  id: string;
  key: [number, number];
  value: T;
}

interface CompletionStream {
  entries: StreamEntry<CompletionMessage>[];
  expiresAt: number;
}

interface Expiring<T> {
  value: T;
  expiresAt: number;
}

function copy<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

function after<T>(entries: StreamEntry<T>[], cursor: string | null, count: number): StreamEntry<T>[] {
  if (cursor === null) return entries.slice(0, count);
  const key = parseStreamId('cursor', cursor);
  const start = entries.findIndex((e) => compareStreamIds(e.key, key) > 0);
  return start < 0 ? [] : entries.slice(start, start + count);
}

export class MemoryStateStore implements StateStore {
  private readonly limits: StateStoreLimits;
  private readonly queries = new Map<string, Expiring<QueryRecord>>();
  private readonly completions = new Map<string, CompletionStream>();
  /** Readers blocked on a stream, woken by the next publish to it. */
  private readonly waiters = new Map<string, Set<() => void>>();
  private log: StreamEntry<QueryLogEntry>[] = [];
  private readonly apiKeys = new Map<string, ApiKeyRecord>();
  private readonly generators = new Map<string, GeneratorRecord>();
  private readonly locks = new Map<string, Expiring<string>>();
  private readonly cache = new Map<string, Expiring<CachedResult>>();
  private readonly values = new Map<string, string>();
  private readonly clock = new StreamIdClock();
  private lastSweep = 0;
  private closed = false;

  constructor(limits: Partial<StateStoreLimits> = {}) {
    this.limits = { ...DEFAULT_STATE_STORE_LIMITS, ...limits };
  }

  // -- query registry

  async createQuery(record: QueryRecord): Promise<void> {
    this.open();
    checkQueryRecord(record);
    if (this.liveQuery(record.id)) throw new PuffinError('conflict', `query ${record.id} already exists`);
    this.queries.set(record.id, { value: copy(record), expiresAt: Date.now() + this.limits.queryTtlMs });
  }

  async getQuery(id: string): Promise<QueryRecord | undefined> {
    this.open();
    const record = this.liveQuery(checkKey('query id', id));
    return record && copy(record.value);
  }

  async updateQuery(id: string, patch: Partial<Omit<QueryRecord, 'id'>>, fromStatuses: readonly QueryStatus[] = NON_TERMINAL_STATUSES): Promise<QueryRecord | undefined> {
    this.open();
    checkKey('query id', id);
    checkPatch(patch);
    fromStatuses.forEach((s) => checkStatus('fromStatuses', s));
    const held = this.liveQuery(id);
    if (!held || !fromStatuses.includes(held.value.status)) return undefined;
    held.value = applyPatch(held.value, copy(patch));
    return copy(held.value);
  }

  async addProgress(id: string, delta: Partial<QueryProgress>): Promise<void> {
    this.open();
    checkKey('query id', id);
    checkProgressDelta(delta);
    const held = this.liveQuery(id);
    if (!held) return;
    const p = held.value.progress;
    p.fragmentsDone += delta.fragmentsDone ?? 0;
    p.fragmentsTotal += delta.fragmentsTotal ?? 0;
    p.bytesScanned += delta.bytesScanned ?? 0;
  }

  async listQueries(options: { limit?: number; status?: QueryStatus } = {}): Promise<QueryRecord[]> {
    this.open();
    const limit = checkCount('limit', options.limit, DEFAULT_LIST_LIMIT);
    const status = options.status === undefined ? undefined : checkStatus('status', options.status);
    this.sweep();
    return [...this.queries.values()]
      .map((q) => q.value)
      .filter((q) => status === undefined || q.status === status)
      .sort((a, b) => b.submittedAt - a.submittedAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
      .slice(0, limit)
      .map(copy);
  }

  // -- completion streams

  async publishCompletion(queryId: string, message: CompletionMessage): Promise<void> {
    this.open();
    checkKey('completion stream', queryId);
    const stream = this.liveStream(queryId) ?? { entries: [], expiresAt: 0 };
    const id = this.clock.next();
    stream.entries.push({ id, key: parseStreamId('id', id), value: copy(message) });
    stream.expiresAt = Date.now() + this.limits.completionTtlMs;
    this.completions.set(queryId, stream);
    const waiting = this.waiters.get(queryId);
    this.waiters.delete(queryId);
    waiting?.forEach((wake) => wake());
  }

  async readCompletions(queryId: string, cursor: string | null, options: { blockMs?: number; count?: number } = {}): Promise<StreamBatch<CompletionMessage>> {
    this.open();
    checkKey('completion stream', queryId);
    if (cursor !== null) parseStreamId('cursor', cursor);
    const blockMs = checkBlockMs(options.blockMs);
    const count = checkCount('count', options.count, DEFAULT_READ_COUNT);
    let entries = after(this.liveStream(queryId)?.entries ?? [], cursor, count);
    if (entries.length === 0 && blockMs > 0) {
      await this.waitForPublish(queryId, blockMs);
      this.open();
      entries = after(this.liveStream(queryId)?.entries ?? [], cursor, count);
    }
    return { items: entries.map((e) => copy(e.value)), cursor: entries.at(-1)?.id ?? cursor };
  }

  async deleteCompletions(queryId: string): Promise<void> {
    this.open();
    this.completions.delete(checkKey('completion stream', queryId));
  }

  // -- query log

  async appendLog(entry: QueryLogEntry): Promise<void> {
    this.open();
    const id = this.clock.next();
    this.log.push({ id, key: parseStreamId('id', id), value: copy(entry) });
    if (this.log.length > this.limits.logMaxEntries) this.log = this.log.slice(this.log.length - this.limits.logMaxEntries);
  }

  async readLog(cursor: string | null, count: number): Promise<StreamBatch<QueryLogEntry>> {
    this.open();
    const entries = after(this.log, cursor, checkCount('count', count, DEFAULT_READ_COUNT));
    return { items: entries.map((e) => copy(e.value)), cursor: entries.at(-1)?.id ?? cursor };
  }

  async trimLog(cursor: string): Promise<void> {
    this.open();
    const key = parseStreamId('cursor', cursor);
    this.log = this.log.filter((e) => compareStreamIds(e.key, key) > 0);
  }

  // -- API keys

  async putApiKey(record: ApiKeyRecord): Promise<void> {
    this.open();
    checkApiKey(record);
    for (const other of this.apiKeys.values()) {
      if (other.hash === record.hash && other.id !== record.id) throw conflictingKey(record.hash);
    }
    this.apiKeys.set(record.id, copy(record));
  }

  async findApiKeyByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    this.open();
    for (const record of this.apiKeys.values()) if (record.hash === hash) return copy(record);
    return undefined;
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    this.open();
    return [...this.apiKeys.values()].sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1)).map(copy);
  }

  async deleteApiKey(id: string): Promise<boolean> {
    this.open();
    return this.apiKeys.delete(checkKey('API key id', id));
  }

  // -- query generators

  async putGenerator(record: GeneratorRecord): Promise<void> {
    this.open();
    checkGenerator(record);
    this.generators.set(record.name, copy(record));
  }

  async listGenerators(): Promise<GeneratorRecord[]> {
    this.open();
    return [...this.generators.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map(copy);
  }

  async deleteGenerator(name: string): Promise<boolean> {
    this.open();
    return this.generators.delete(checkGeneratorName(name));
  }

  // -- locks

  async acquireLock(key: string, ttlMs: number): Promise<Lease | undefined> {
    this.open();
    checkKey('lock key', key);
    const ttl = checkPositiveMs('lock ttlMs', ttlMs);
    if (this.live(this.locks, key)) return undefined;
    const lease = { key, token: randomUUID(), expiresAt: Date.now() + ttl };
    this.locks.set(key, { value: lease.token, expiresAt: lease.expiresAt });
    return lease;
  }

  async renewLock(lease: Lease, ttlMs: number): Promise<Lease | undefined> {
    this.open();
    const ttl = checkPositiveMs('lock ttlMs', ttlMs);
    const held = this.live(this.locks, checkKey('lock key', lease.key));
    if (!held || held.value !== lease.token) return undefined;
    held.expiresAt = Date.now() + ttl;
    return { ...lease, expiresAt: held.expiresAt };
  }

  async releaseLock(lease: Lease): Promise<boolean> {
    this.open();
    const held = this.live(this.locks, checkKey('lock key', lease.key));
    if (!held || held.value !== lease.token) return false;
    this.locks.delete(lease.key);
    return true;
  }

  // -- result cache

  async getCachedResult(key: string): Promise<CachedResult | undefined> {
    this.open();
    const held = this.live(this.cache, checkKey('cache key', key));
    return held && copy(held.value);
  }

  async putCachedResult(key: string, value: CachedResult, ttlMs: number): Promise<void> {
    this.open();
    checkKey('cache key', key);
    this.cache.set(key, { value: copy(value), expiresAt: Date.now() + checkPositiveMs('cache ttlMs', ttlMs) });
  }

  // -- values with compare-and-swap

  async getValue(key: string): Promise<string | undefined> {
    this.open();
    return this.values.get(checkKey('value key', key));
  }

  async compareAndSwap(key: string, expected: string | undefined, next: string): Promise<boolean> {
    this.open();
    checkKey('value key', key);
    if (typeof next !== 'string') throw new PuffinError('bad_request', `compareAndSwap needs a string value, got ${typeof next}`);
    if (this.values.get(key) !== expected) return false;
    this.values.set(key, next);
    return true;
  }

  async ping(): Promise<void> {
    this.open();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const waiting of this.waiters.values()) waiting.forEach((wake) => wake());
    this.waiters.clear();
  }

  // -- internals

  private open(): void {
    if (this.closed) throw new PuffinError('unavailable', 'the in-memory state store is closed');
    this.sweep();
  }

  private liveQuery(id: string): Expiring<QueryRecord> | undefined {
    return this.live(this.queries, id);
  }

  private liveStream(name: string): CompletionStream | undefined {
    const stream = this.completions.get(name);
    if (stream && stream.expiresAt <= Date.now()) {
      this.completions.delete(name);
      return undefined;
    }
    return stream;
  }

  private live<T>(map: Map<string, Expiring<T>>, key: string): Expiring<T> | undefined {
    const held = map.get(key);
    if (held && held.expiresAt <= Date.now()) {
      map.delete(key);
      return undefined;
    }
    return held;
  }

  private waitForPublish(name: string, blockMs: number): Promise<void> {
    return new Promise((resolve) => {
      let waiting = this.waiters.get(name);
      if (!waiting) this.waiters.set(name, (waiting = new Set()));
      const wake = () => {
        clearTimeout(timer);
        waiting.delete(wake);
        if (waiting.size === 0 && this.waiters.get(name) === waiting) this.waiters.delete(name);
        resolve();
      };
      const timer = setTimeout(wake, blockMs);
      waiting.add(wake);
    });
  }

  /** Drop what expired, so memory use follows the TTLs even for keys nobody reads again. */
  private sweep(): void {
    const now = Date.now();
    if (now - this.lastSweep < SWEEP_INTERVAL_MS) return;
    this.lastSweep = now;
    for (const map of [this.queries, this.locks, this.cache] as Map<string, Expiring<unknown>>[]) {
      for (const [key, held] of map) if (held.expiresAt <= now) map.delete(key);
    }
    for (const [name, stream] of this.completions) if (stream.expiresAt <= now) this.completions.delete(name);
  }
}
