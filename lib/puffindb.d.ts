// The Node library's public types: `import { open, connect } from 'puffindb'`.
// runtime/client/index.ts implements them and is type-checked against this file.

import type { RecordBatch } from 'apache-arrow';

/** A value in a row, as the HTTP API's JSON gives it (see QueryResult.rows). */
export type Value = null | boolean | number | string | Value[] | { [key: string]: Value };

/** A value a positional parameter ($1, $2, ... or ?) may take. */
export type Param = string | number | bigint | boolean | null | Date | Uint8Array;

export interface Column {
  name: string;
  /** DuckDB type, e.g. 'BIGINT', 'DECIMAL(15,2)', 'VARCHAR'. */
  type: string;
}

export interface QueryResult {
  columns: Column[];
  /**
   * One plain object per row, keyed by column name (a later duplicate name wins): exactly
   * what `JSON.parse` makes of POST /v1/query's JSON. Integers and decimals are numbers
   * (BIGINT, HUGEINT and DECIMAL are exact only up to 2^53 / about 15 significant digits;
   * use stream() for exact int64 and decimals), DATE/TIMESTAMP/TIME are strings as DuckDB
   * prints them, NaN and infinities are the strings 'NaN', 'Infinity', '-Infinity', lists and
   * structs are arrays and objects, BLOBs are strings.
   */
  rows: Record<string, Value>[];
}

export interface TableInfo {
  name: string;
  /** 'parquet', 'iceberg', 'delta', ... (the catalog's table formats). */
  kind: string;
  columns: Column[];
  snapshotId: string;
  fileCount: number;
  rowCount: number;
  sizeBytes: number;
}

export type ErrorCode =
  | 'bad_request' | 'syntax_error' | 'binder_error' | 'unknown_table' | 'unsupported' | 'access_denied'
  | 'not_found' | 'conflict' | 'unauthorized' | 'forbidden' | 'payload_too_large' | 'rate_limited'
  | 'timeout' | 'fragment_failed' | 'bad_gateway' | 'unavailable' | 'internal';

/** What open() and connect() reject with: a stable code, a message naming the problem, and the code's HTTP status. */
export declare class PuffinError extends Error {
  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>);
  readonly code: ErrorCode;
  readonly details?: Record<string, unknown>;
  get httpStatus(): number;
}

/** What query(), stream() and explain() take after the text, instead of a bare parameter list. */
export interface QueryOptions {
  /** Bind `$1`, `$2`, ... (or `?`, in order): DuckDB SQL only. */
  params?: readonly Param[];
  /**
   * What the text is written in (default 'sql'). 'prql' and 'malloy' are compiled to DuckDB SQL
   * first; Malloy against the tables of the warehouse (open()) or those the key may read
   * (connect()), named by their names or as duckdb.table('name'); its last `run:` runs.
   */
  language?: 'sql' | 'prql' | 'malloy';
  /** The SQL dialect of a 'sql' text (default 'duckdb'): 'snowflake', 'tsql', ... translated first. */
  dialect?: Dialect;
}

export interface Database {
  /** Run one statement; `params` bind `$1`, `$2`, ... (or `?`, in order); or options with a language or dialect. */
  query(sql: string, params?: readonly Param[] | QueryOptions): Promise<QueryResult>;
  /** The result as Arrow record batches (int64 as BigInt, decimals exact), batch by batch. */
  stream(sql: string, params?: readonly Param[] | QueryOptions): AsyncIterableIterator<RecordBatch>;
  /** The distributed plan (shape, stages, fragments, files kept and pruned), as JSON. */
  explain(sql: string, params?: readonly Param[] | QueryOptions): Promise<Record<string, unknown>>;
  /** Tables with their columns, snapshot, files, rows and bytes (puffindb.query_log included, as the server lists it). */
  tables(): Promise<TableInfo[]>;
  /** Release everything (embedded: flush the query log, stop workers). Later calls reject. */
  close(): Promise<void>;
}

export interface OpenOptions {
  /** The warehouse directory (PUFFINDB_HOME). Default: $PUFFINDB_HOME, else ./.puffindb. */
  home?: string;
  /** Worker processes (PUFFINDB_WORKERS). Default: one per core. */
  workers?: number;
  /**
   * Where fragments run: 'pool' (worker processes, the CLI's default) or 'in-process'
   * (this process's event loop; no child processes). Default 'pool'.
   */
  invoker?: 'pool' | 'in-process';
  /** Further settings by their environment variable names (PUFFINDB_THREADS, ...); default: process.env. */
  env?: Record<string, string | undefined>;
  /** The user the query log names. Default 'local'. */
  user?: string;
}

export interface ConnectOptions {
  /** The server's base URL, e.g. 'http://127.0.0.1:8080'. */
  url: string;
  /** An API key. */
  key: string;
  /** Deadline of each query in ms (the server's default when absent). */
  timeoutMs?: number;
  /** Rows per page when a large result is fetched from GET /v1/queries/{id}/result. Default 10,000. */
  pageRows?: number;
}

/** Run the embedded engine over a local warehouse (the same one `puffindb query` uses). */
export declare function open(options?: OpenOptions): Promise<Database>;

/** Talk to a `puffindb serve` over its HTTP API. Rejects when the server or the key is not accepted. */
export declare function connect(options: ConnectOptions): Promise<Database>;

/** A SQL dialect's name: 'postgresql', 'mysql', 'sqlite', 'snowflake', 'bigquery', 'tsql', 'oracle', ... (any case; aliases 'postgres', 'mssql', ...). */
export type Dialect = string;

/**
 * One statement translated from dialect `from` to `to` (default 'duckdb'; one of them is
 * 'duckdb'), as POST /v1/translate does. Rejects with a 'bad_request' PuffinError naming a
 * construct that cannot be translated without changing its meaning.
 */
export declare function translate(sql: string, options: { from: Dialect; to?: Dialect }): Promise<string>;

/** PRQL compiled to DuckDB SQL. */
export declare function compilePrql(prql: string): Promise<string>;

/** DuckDB's JSON AST (json_serialize_sql) of one SELECT, after PRQL or another dialect is turned into DuckDB SQL, as POST /v1/parse answers. */
export declare function parse(sql: string, options?: { language?: 'sql' | 'prql'; dialect?: Dialect }): Promise<{ sql: string; ast: Record<string, unknown> }>;

/** SQL printed back from an AST as parse() gives it (json_deserialize_sql), laid out on several lines unless `pretty` is false. */
export declare function format(ast: Record<string, unknown>, options?: { pretty?: boolean }): Promise<string>;
