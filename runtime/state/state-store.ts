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
  /** The DuckDB SQL that runs (for PRQL or another dialect: what it was translated to). */
  sql: string;
  /** What the client sent, when it was not DuckDB SQL. */
  source?: QuerySourceText;
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
  /** The most bytes read by any one-task step of the query's plan (see QueryStats.singleNodeBytes). */
  singleNodeBytes?: number;
  /** Files served by the workers' filtered-partition cache, files read, bytes of file not read (over its stages). */
  partitionCache?: { hits: number; misses: number; bytesSaved: number };
  /** What ran on remote instances (SELECT ... THROUGH, remote.table): each remote, its URL, the SQL sent. */
  remote?: { remote: string; url: string; table?: string; sql: string }[];
}

/** A query as the client wrote it: a language ('prql', or 'sql' of a dialect other than DuckDB's) and its text. */
export interface QuerySourceText {
  language: string;
  dialect?: string;
  text: string;
  /** language 'generator': the query generator that made the SQL from `text` (its input), and the parameters it was given. */
  generator?: string;
  params?: Record<string, unknown>;
}

export interface QueryLogEntry {
  id: string;
  user: string;
  sql: string;
  /** What the client sent, when it was not DuckDB SQL (the stream's entries; the flushed Parquet keeps `sql` only). */
  source?: QuerySourceText;
  /** What ran on remote instances (the stream's entries; the flushed Parquet keeps `sql` only). */
  remote?: QueryRecord['remote'];
  status: QueryStatus;
  submittedAt: number;
  durationMs: number;
  bytesScanned: number;
  fragments: number;
  cacheHit: boolean;
  error: string | null;
}

/** A remote query generator (runtime/sql/generators.ts): an HTTP endpoint that turns an input into SQL, registered by an admin. */
export interface GeneratorRecord {
  name: string;
  /** http(s) URL it is called at (POST). */
  url: string;
  /** Environment variable (of the server) holding the bearer token sent to it; the token itself is never stored. */
  keyEnv?: string;
  createdAt: number;
}

export type ApiKeyRole = 'admin' | 'writer' | 'reader';

export interface ApiKeyRecord {
  id: string;
  name: string;
  role: ApiKeyRole;
  /** sha256 (hex) of the secret; the secret itself is never stored. */
  hash: string;
  createdAt: number;
  /** SCRAM-SHA-256 verifier of the secret, for the Postgres wire protocol (runtime/pgwire/scram.ts); keys made before it have none. */
  scram?: ScramVerifier;
}

/** What SCRAM-SHA-256 needs to check a password without knowing it (RFC 5802), base64 fields. */
export interface ScramVerifier {
  salt: string;
  iterations: number;
  storedKey: string;
  serverKey: string;
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

/**
 * Bounds every implementation applies, so state nobody cleans up (a crashed coordinator's
 * completion stream, an unflushed log) expires or stops growing by itself.
 */
export interface StateStoreLimits {
  /** A completion stream expires this long after its last message. */
  completionTtlMs: number;
  /** The query log keeps about this many entries; older ones are dropped even if never flushed. */
  logMaxEntries: number;
  /** A query record expires this long after it was created. */
  queryTtlMs: number;
}

export const DEFAULT_STATE_STORE_LIMITS: StateStoreLimits = {
  completionTtlMs: 60 * 60 * 1000,
  logMaxEntries: 100_000,
  queryTtlMs: 7 * 24 * 60 * 60 * 1000,
};

export interface StateStore {
  // -- query registry
  /** Rejects with 'conflict' when a query with this id exists. */
  createQuery(record: QueryRecord): Promise<void>;
  getQuery(id: string): Promise<QueryRecord | undefined>;
  /**
   * Apply `patch` atomically if the current status is one of `fromStatuses` (default:
   * any non-terminal status). Returns the updated record, or undefined when the query is
   * absent or its status did not match (e.g. it was cancelled meanwhile). Fields of `patch`
   * that are undefined are left as they are.
   */
  updateQuery(id: string, patch: Partial<Omit<QueryRecord, 'id'>>, fromStatuses?: readonly QueryStatus[]): Promise<QueryRecord | undefined>;
  /** Add to the progress counters atomically; a no-op when the query is absent. */
  addProgress(id: string, delta: Partial<QueryProgress>): Promise<void>;
  /** Most recent first (by submittedAt, then id); default limit 100. */
  listQueries(options?: { limit?: number; status?: QueryStatus }): Promise<QueryRecord[]>;

  // -- worker completion streams (one per query)
  publishCompletion(queryId: string, message: CompletionMessage): Promise<void>;
  /**
   * Messages after `cursor` (null: from the start), waiting up to `blockMs` (default 0: no
   * wait) for the first one; at most `count` (default 100).
   */
  readCompletions(queryId: string, cursor: string | null, options?: { blockMs?: number; count?: number }): Promise<StreamBatch<CompletionMessage>>;
  deleteCompletions(queryId: string): Promise<void>;

  // -- query log stream
  appendLog(entry: QueryLogEntry): Promise<void>;
  /** Entries after `cursor` (null: the oldest kept), oldest first. */
  readLog(cursor: string | null, count: number): Promise<StreamBatch<QueryLogEntry>>;
  /** Drop entries up to and including `cursor` (after they were flushed to the lake). */
  trimLog(cursor: string): Promise<void>;

  // -- API keys (hashed)
  /** Create or replace by id; 'bad_request' unless hash is sha256 hex, 'conflict' when another key has the hash. */
  putApiKey(record: ApiKeyRecord): Promise<void>;
  findApiKeyByHash(hash: string): Promise<ApiKeyRecord | undefined>;
  listApiKeys(): Promise<ApiKeyRecord[]>;
  deleteApiKey(id: string): Promise<boolean>;

  // -- query generators (by name)
  /** Create or replace by name. */
  putGenerator(record: GeneratorRecord): Promise<void>;
  /** Sorted by name. */
  listGenerators(): Promise<GeneratorRecord[]>;
  deleteGenerator(name: string): Promise<boolean>;

  // -- locks with leases
  /** undefined when someone else holds the lock. */
  acquireLock(key: string, ttlMs: number): Promise<Lease | undefined>;
  /** undefined when the lease expired or the lock is held under another token. */
  renewLock(lease: Lease, ttlMs: number): Promise<Lease | undefined>;
  /** false when the lock is no longer held under this lease's token (nothing is released then). */
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
