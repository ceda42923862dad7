// Where finished results are kept: small ones in the state store (with a time to live),
// large ones as Parquet under the results prefix of the object store, answered with their
// location. The same two forms serve a query's own result (GET /v1/queries/{id}/result)
// and the result cache. A kept result is read back a window of rows at a time
// (`rows()`: stored ones through DuckDB over a private copy of the Parquet object, chunk by
// chunk), or as Parquet (`parquet()`).

import type { CloudFrontSigner } from '../storage/cloudfront-signer.ts';
import { randomUUID } from 'node:crypto';
import { copyFile, link, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Engine, JsonValue, QueryResult, ResultColumn } from '../engine/engine.ts';
import { PuffinError, toPuffinError } from '../errors.ts';
import { sqlString } from '../sql/quote.ts';
import type { CachedResult, StateStore } from '../state/state-store.ts';
import { joinUrl } from '../storage/open.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { writeParquet } from './parquet-writer.ts';

export type KeptResult =
  /** Rows in hand (kept in the state store). */
  | { kind: 'inline'; result: QueryResult }
  /** A Parquet object under the results prefix. */
  | { kind: 'stored'; location: string; format: 'parquet'; rows: number };

/** Content type of a kept inline result: QueryResult as JSON, exact numbers as strings. */
const INLINE_TYPE = 'application/vnd.puffindb.result+json';
const PARQUET_TYPE = 'application/vnd.apache.parquet';

export interface ResultKeeperOptions {
  state: StateStore;
  /** The results prefix (settings.resultsUrl) as a store. */
  results: ObjectStore;
  /** Writes Parquet; must be allowed to use scratchDir. */
  engine: Engine;
  scratchDir: string;
  /** How long kept results (and cache entries) live. */
  ttlMs: number;
  /**
   * A CloudFront distribution in front of the results bucket (settings.cdnUrl): stored results
   * on S3 are then downloaded by a signed URL of it instead of an S3 presigned URL.
   */
  cdn?: () => Promise<CloudFrontSigner>;
}

export class ResultKeeper {
  /** Reads kept results back (rows in windows, or Parquet). */
  readonly reader: ResultReader;

  constructor(private readonly options: ResultKeeperOptions) {
    this.reader = new ResultReader(options);
  }

  /** Write `result` as Parquet under the results prefix, named after the query. */
  async store(queryId: string, result: QueryResult): Promise<KeptResult> {
    const bytes = await writeParquet(this.options.engine, this.options.scratchDir, result.columns, result.rows);
    const key = `${queryId}.parquet`;
    await this.options.results.put(key, bytes, { contentType: PARQUET_TYPE });
    return { kind: 'stored', location: joinUrl(this.options.results.url, key), format: 'parquet', rows: result.rows.length };
  }

  /** Keep a query's result for retrieval by id (inline ones in the state store). */
  async saveFor(queryId: string, kept: KeptResult): Promise<void> {
    await this.options.state.putCachedResult(queryResultKey(queryId), toCached(kept), this.options.ttlMs);
  }

  /** A query's kept result, or undefined once it expired. */
  async loadFor(queryId: string): Promise<KeptResult | undefined> {
    const cached = await this.options.state.getCachedResult(queryResultKey(queryId));
    return cached && fromCached(cached);
  }

  async cacheGet(key: string): Promise<KeptResult | undefined> {
    const cached = await this.options.state.getCachedResult(key);
    return cached && fromCached(cached);
  }

  async cachePut(key: string, kept: KeptResult): Promise<void> {
    await this.options.state.putCachedResult(key, toCached(kept), this.options.ttlMs);
  }
}

/** A window of a kept result's rows: its columns, the whole result's row count, and the rows in chunks. */
export interface ResultRows {
  columns: ResultColumn[];
  /** Rows of the whole result (not of the window). */
  rowCount: number;
  /** The window's rows, about `chunkRows` at a time. */
  chunks: AsyncGenerator<JsonValue[][]>;
  /** Release what reading holds (a DuckDB connection, a scratch copy); reading to the end does too. Idempotent. */
  close(): Promise<void>;
}

export interface RowWindow {
  offset?: number;
  limit?: number;
  /** Rows per chunk. Default 16,384. */
  chunkRows?: number;
}

/** A kept result as Parquet: the stored object (a local file, or a presigned URL on S3), or an inline result written now. */
export type ParquetBody = { kind: 'bytes'; bytes: Uint8Array } | { kind: 'file'; path: string } | { kind: 'redirect'; url: string };

/** Longest life of a presigned download URL: a client follows it at once. */
const PRESIGN_SECONDS = 900;

export class ResultReader {
  constructor(private readonly options: Pick<ResultKeeperOptions, 'results' | 'engine' | 'scratchDir' | 'ttlMs' | 'cdn'>) {}

  /** Rows [offset, offset + limit) of `kept`. */
  async rows(kept: KeptResult, window: RowWindow = {}): Promise<ResultRows> {
    const offset = window.offset ?? 0;
    const limit = window.limit ?? Number.MAX_SAFE_INTEGER;
    const chunkRows = window.chunkRows ?? 16_384;
    if (kept.kind === 'inline') {
      const rows = kept.result.rows.slice(offset, offset + limit);
      return { columns: kept.result.columns, rowCount: kept.result.rows.length, chunks: sliced(rows, chunkRows), close: async () => undefined };
    }
    const copy = await this.localCopy(kept);
    const conn = await this.options.engine.connect();
    // A generator never started runs no finally: release is also the caller's to call.
    let released: Promise<void> | undefined;
    const release = (): Promise<void> => {
      released ??= (async () => {
        conn.closeSync();
        await copy.remove();
      })();
      return released;
    };
    try {
      const result = await conn.stream(`SELECT * FROM read_parquet(${sqlString(copy.path)}) LIMIT ${limit} OFFSET ${offset}`);
      const types = result.columnTypes();
      const columns = result.columnNames().map((name, i) => ({ name, type: types[i].toString() }));
      const chunks = async function* (): AsyncGenerator<JsonValue[][]> {
        try {
          let pending: JsonValue[][] = [];
          for await (const rows of result.yieldRowsJson()) {
            pending.push(...(rows as unknown as JsonValue[][]));
            if (pending.length >= chunkRows) {
              yield pending;
              pending = [];
            }
          }
          if (pending.length > 0) yield pending;
        } catch (err) {
          throw toPuffinError(err);
        } finally {
          await release();
        }
      };
      return { columns, rowCount: kept.rows, chunks: chunks(), close: release };
    } catch (err) {
      await release();
      throw toPuffinError(err);
    }
  }

  /**
   * The result as Parquet. The stored object is answered by its path on a local disk (read in
   * place), or by a presigned URL where the store has them (S3), so the client downloads it
   * from the store itself.
   */
  async parquet(kept: KeptResult): Promise<ParquetBody> {
    if (kept.kind === 'inline') return { kind: 'bytes', bytes: await writeParquet(this.options.engine, this.options.scratchDir, kept.result.columns, kept.result.rows) };
    const key = this.keyOf(kept);
    const { results } = this.options;
    if (results.presignGet) {
      if (!(await results.head(key))) throw new PuffinError('not_found', 'the stored result is gone from the results prefix (expired or removed); run the query again');
      const seconds = Math.max(1, Math.min(PRESIGN_SECONDS, Math.floor(this.options.ttlMs / 1000)));
      if (this.options.cdn) {
        // The distribution's origin is the bucket: the path is the object's whole key.
        const objectKey = decodeURIComponent(new URL(kept.location).pathname.slice(1));
        return { kind: 'redirect', url: (await this.options.cdn()).signedUrl(objectKey, Math.floor(Date.now() / 1000) + seconds) };
      }
      return { kind: 'redirect', url: await results.presignGet(key, seconds) };
    }
    const path = results.localPath?.(key);
    if (path) return { kind: 'file', path };
    return { kind: 'bytes', bytes: await this.options.results.get(key) };
  }

  /** The object key of a stored result under the results prefix. */
  keyOf(kept: Extract<KeptResult, { kind: 'stored' }>): string {
    const root = this.options.results.url;
    if (!kept.location.startsWith(root)) throw new PuffinError('not_found', 'the result was stored under another results prefix than this server\'s (PUFFINDB_RESULTS_URL changed); run the query again');
    return kept.location.slice(root.length);
  }

  /**
   * A private copy of a stored result in the scratch directory, where the sandboxed engine may
   * read it: a hard link when the store is on the same disk, else a copy or a download.
   */
  private async localCopy(kept: Extract<KeptResult, { kind: 'stored' }>): Promise<{ path: string; remove: () => Promise<void> }> {
    const key = this.keyOf(kept);
    await mkdir(this.options.scratchDir, { recursive: true });
    const path = join(this.options.scratchDir, `read-${randomUUID()}.parquet`);
    const remove = () => rm(path, { force: true });
    const source = this.options.results.localPath?.(key);
    try {
      if (source) await link(source, path).catch(() => copyFile(source, path));
      else await writeFile(path, await this.options.results.get(key));
    } catch (err) {
      await remove();
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new PuffinError('not_found', 'the stored result is gone from the results prefix (expired or removed); run the query again');
      throw toPuffinError(err);
    }
    return { path, remove };
  }
}

async function* sliced(rows: JsonValue[][], chunkRows: number): AsyncGenerator<JsonValue[][]> {
  for (let at = 0; at < rows.length; at += chunkRows) yield rows.slice(at, at + chunkRows);
}

function queryResultKey(queryId: string): string {
  return `result:${queryId}`;
}

function toCached(kept: KeptResult): CachedResult {
  if (kept.kind === 'stored') return { uri: kept.location, contentType: PARQUET_TYPE, rows: kept.rows, createdAt: Date.now() };
  return { body: JSON.stringify(kept.result), contentType: INLINE_TYPE, rows: kept.result.rows.length, createdAt: Date.now() };
}

function fromCached(cached: CachedResult): KeptResult {
  if (cached.uri && cached.contentType === PARQUET_TYPE) return { kind: 'stored', location: cached.uri, format: 'parquet', rows: cached.rows };
  if (cached.body !== undefined && cached.contentType === INLINE_TYPE) return { kind: 'inline', result: JSON.parse(cached.body) as QueryResult };
  throw new PuffinError('internal', `a kept result has an unknown form (${cached.contentType})`);
}
