// DuckDB inside one process: a single instance, created once and reused across fragments
// and invocations (a warm Lambda keeps it), sandboxed so that SQL can touch only the
// directories it was given. Every caller takes a fresh connection per unit of work, so
// temporary views of one fragment never leak into another.

import { DuckDBConnection, DuckDBInstance, type DuckDBResultReader } from '@duckdb/node-api';
import { mkdirSync } from 'node:fs';
import { PuffinError, toPuffinError } from '../errors.ts';
import { sqlString } from '../sql/quote.ts';

export interface EngineOptions {
  /** DuckDB worker threads for this process. */
  threads?: number;
  /** DuckDB memory limit, e.g. '2GB'. */
  memoryLimit?: string;
  /**
   * When set, the engine is sandboxed: external access is disabled except under these
   * directories, and the configuration is locked so SQL cannot undo it. The first
   * directory also holds DuckDB's spill files.
   */
  allowedDirectories?: string[];
}

export interface ResultColumn {
  name: string;
  /** DuckDB type, e.g. 'BIGINT', 'DECIMAL(15,2)'. */
  type: string;
}

/** A JSON-safe value: big integers and decimals arrive as exact strings, typed by their column. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface QueryResult {
  columns: ResultColumn[];
  rows: JsonValue[][];
}

export class Engine {
  private constructor(
    readonly instance: DuckDBInstance,
    readonly options: Readonly<EngineOptions>,
  ) {}

  static async create(options: EngineOptions = {}): Promise<Engine> {
    const config: Record<string, string> = {
      autoinstall_known_extensions: 'false',
      autoload_known_extensions: 'false',
    };
    if (options.threads) config.threads = String(options.threads);
    if (options.memoryLimit) config.memory_limit = options.memoryLimit;
    const instance = await DuckDBInstance.create(':memory:', config);
    const engine = new Engine(instance, { ...options });
    if (options.allowedDirectories?.length) await engine.lockDown(options.allowedDirectories);
    return engine;
  }

  private async lockDown(dirs: string[]): Promise<void> {
    // DuckDB checks allowed directories by prefix, so each one must end with '/'.
    const normalized = dirs.map((d) => (d.endsWith('/') ? d : `${d}/`));
    for (const d of normalized) mkdirSync(d, { recursive: true });
    const spill = `${normalized[0]}duckdb-tmp/`;
    mkdirSync(spill, { recursive: true });
    const conn = await this.instance.connect();
    try {
      await conn.run(`SET allowed_directories = [${normalized.map(sqlString).join(', ')}]`);
      await conn.run(`SET temp_directory = ${sqlString(spill)}`);
      await conn.run(`SET enable_external_access = false`);
      await conn.run(`SET lock_configuration = true`);
    } finally {
      conn.closeSync();
    }
  }

  /** A fresh connection; temporary views made on it are private to it. Close it when done. */
  async connect(): Promise<DuckDBConnection> {
    return this.instance.connect();
  }

  /** Run SQL on a fresh connection and return its rows. */
  async query(sql: string, params?: unknown[]): Promise<QueryResult> {
    const conn = await this.connect();
    try {
      return await runQuery(conn, sql, params);
    } finally {
      conn.closeSync();
    }
  }

  /** Run statements that return nothing of interest. */
  async exec(sql: string): Promise<void> {
    const conn = await this.connect();
    try {
      await conn.run(sql);
    } catch (err) {
      throw toPuffinError(err);
    } finally {
      conn.closeSync();
    }
  }

  close(): void {
    this.instance.closeSync();
  }
}

export async function runQuery(conn: DuckDBConnection, sql: string, params?: unknown[]): Promise<QueryResult> {
  let result: DuckDBResultReader;
  try {
    result = params?.length
      ? await conn.runAndReadAll(sql, params as never)
      : await conn.runAndReadAll(sql);
  } catch (err) {
    throw toPuffinError(err);
  }
  return materialize(result);
}

export function materialize(result: DuckDBResultReader): QueryResult {
  const names = result.columnNames();
  const types = result.columnTypes();
  return {
    columns: names.map((name, i) => ({ name, type: types[i].toString() })),
    rows: result.getRowsJson() as unknown as JsonValue[][],
  };
}

/** Rows as objects keyed by column name (later duplicate names win, as in most clients). */
export function rowObjects(result: QueryResult): Record<string, JsonValue>[] {
  return result.rows.map((row) => {
    const obj: Record<string, JsonValue> = {};
    result.columns.forEach((c, i) => (obj[c.name] = row[i]));
    return obj;
  });
}

export function assertSandboxed(engine: Engine): void {
  if (!engine.options.allowedDirectories?.length) {
    throw new PuffinError('internal', 'engine is not sandboxed; fragments must run in a sandboxed engine');
  }
}
