// The state store: everything the control plane shares between processes and Lambdas.
// In one process it is in memory (the embedded default); deployed, it is Redis
// (ElastiCache). Both implementations pass one contract test suite. Values are plain JSON.

export type QueryStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export const TERMINAL_STATUSES: readonly QueryStatus[] = ['succeeded', 'failed', 'cancelled'];

export interface QueryProgress {
  fragmentsDone: number;
  fragmentsTotal: number;
  bytesScanned: number;
}

export interface QueryRecord {
  /** ULID. */
  id: string;
  /** API key id (or 'local' for the CLI) that submitted the query. */
  user: string;
  sql: string;
  status: QueryStatus;
  /** Milliseconds since the epoch. */
  submittedAt: number;
  startedAt?: number;
  finishedAt?: number;
  /** Absolute deadline (ms since the epoch). */
  deadline: number;
  progress: QueryProgress;
  error?: { code: string; message: string };
  /** Where the finished result is kept (an object URI), when it is kept. */
  resultUri?: string;
  /** Result format of resultUri, e.g. 'parquet'. */
  resultFormat?: string;
  cacheHit?: boolean;
  /** Plan shape, for status pages. */
  shape?: string;
}

export interface QueryLogEntry {
  id: string;
  user: string;
  sql: string;
  status: QueryStatus;
  submittedAt: number;
  durationMs: number;
  bytesScanned: number;
  fragments: number;
  cacheHit: boolean;
  error: string | null;
}

export type ApiKeyRole = 'admin' | 'writer' | 'reader';

export interface ApiKeyRecord {
  id: string;
  name: string;
  role: ApiKeyRole;
  /** sha256 (hex) of the secret; the secret itself is never stored. */
  hash: string;
  createdAt: number;
}

/** A held lock: present the same lease to renew or release it. */
export interface Lease {
  key: string;
  token: string;
  expiresAt: number;
}

/** One worker's report of a fragment, on the query's completion stream. */
export interface CompletionMessage {
  fragmentId: string;
  attempt: number;
  /** The wire form of a FragmentResult, or of a PuffinError. */
  payload: unknown;
  ok: boolean;
}

export interface StreamBatch<T> {
  items: T[];
  /** Pass back to read what follows; null when nothing was read yet. */
  cursor: string | null;
}

export interface CachedResult {
  /** Where the cached result lives (object URI) or the inline body. */
  uri?: string;
  body?: string;
  contentType: string;
  rows: number;
  createdAt: number;
}

export interface StateStore {
  // -- query registry
  createQuery(record: QueryRecord): Promise<void>;
  getQuery(id: string): Promise<QueryRecord | undefined>;
  /**
   * Apply `patch` atomically if the current status is one of `fromStatuses` (default:
   * any non-terminal status). Returns the updated record, or undefined when the query is
   * absent or its status did not match (e.g. it was cancelled meanwhile).
   */
  updateQuery(id: string, patch: Partial<Omit<QueryRecord, 'id'>>, fromStatuses?: readonly QueryStatus[]): Promise<QueryRecord | undefined>;
  /** Add to the progress counters atomically. */
  addProgress(id: string, delta: Partial<QueryProgress>): Promise<void>;
  /** Most recent first. */
  listQueries(options?: { limit?: number; status?: QueryStatus }): Promise<QueryRecord[]>;

  // -- worker completion streams (one per query)
  publishCompletion(queryId: string, message: CompletionMessage): Promise<void>;
  /** Messages after `cursor`, waiting up to `blockMs` for the first one. */
  readCompletions(queryId: string, cursor: string | null, options?: { blockMs?: number; count?: number }): Promise<StreamBatch<CompletionMessage>>;
  deleteCompletions(queryId: string): Promise<void>;

  // -- query log stream
  appendLog(entry: QueryLogEntry): Promise<void>;
  readLog(cursor: string | null, count: number): Promise<StreamBatch<QueryLogEntry>>;
  /** Drop entries up to and including `cursor` (after they were flushed to the lake). */
  trimLog(cursor: string): Promise<void>;

  // -- API keys (hashed)
  putApiKey(record: ApiKeyRecord): Promise<void>;
  findApiKeyByHash(hash: string): Promise<ApiKeyRecord | undefined>;
  listApiKeys(): Promise<ApiKeyRecord[]>;
  deleteApiKey(id: string): Promise<boolean>;

  // -- locks with leases
  acquireLock(key: string, ttlMs: number): Promise<Lease | undefined>;
  renewLock(lease: Lease, ttlMs: number): Promise<Lease | undefined>;
  releaseLock(lease: Lease): Promise<boolean>;

  // -- result cache index
  getCachedResult(key: string): Promise<CachedResult | undefined>;
  putCachedResult(key: string, value: CachedResult, ttlMs: number): Promise<void>;

  // -- small values with compare-and-swap (table metadata pointers, metering marks)
  getValue(key: string): Promise<string | undefined>;
  /** Set `key` to `next` only if it currently equals `expected` (undefined: absent). */
  compareAndSwap(key: string, expected: string | undefined, next: string): Promise<boolean>;

  /** Throws PuffinError('unavailable') when the store cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
