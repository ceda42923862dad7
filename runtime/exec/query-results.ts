// Where finished results are kept: small ones in the state store (with a time to live),
// large ones as Parquet under the results prefix of the object store, answered with their
// location. The same two forms serve a query's own result (GET /v1/queries/{id}/result)
// and the result cache.

import type { Engine, QueryResult } from '../engine/engine.ts';
import { PuffinError } from '../errors.ts';
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
}

export class ResultKeeper {
  constructor(private readonly options: ResultKeeperOptions) {}

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
