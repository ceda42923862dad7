// Usage read from the query log through the control plane's own SQL API: the table
// `puffindb.query_log` holds every query with its bytes scanned, flushed from the state
// store to Parquet on the lake. Asking the local `puffindb serve` keeps the metering
// service free of DuckDB and the catalog, and reads exactly what a buyer can audit.

import { PuffinError } from '../errors.ts';
import type { HourUsage } from './dimensions.ts';
import type { UsageSource } from './usage-source.ts';

export interface QueryLogUsageOptions {
  /** Base URL of the control plane, e.g. http://127.0.0.1:8080. */
  apiUrl: string;
  /** Admin API key (bearer). */
  apiKey: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

const sqlTimestamp = (ms: number): string => new Date(ms).toISOString().replace('T', ' ').replace('Z', '');

export function usageSql(fromMs: number, toMs: number): string {
  return (
    'SELECT coalesce(sum(bytes_scanned), 0)::BIGINT AS bytes_scanned, count(*)::BIGINT AS queries FROM puffindb.query_log ' +
    `WHERE submitted_at >= TIMESTAMP '${sqlTimestamp(fromMs)}' AND submitted_at < TIMESTAMP '${sqlTimestamp(toMs)}'`
  );
}

export class QueryLogUsage implements UsageSource {
  constructor(private readonly options: QueryLogUsageOptions) {}

  async usage(fromMs: number, toMs: number): Promise<HourUsage> {
    const doFetch = this.options.fetch ?? fetch;
    const response = await doFetch(new URL('/v1/query', this.options.apiUrl), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${this.options.apiKey}` },
      body: JSON.stringify({ sql: usageSql(fromMs, toMs) }),
      signal: AbortSignal.timeout(this.options.timeoutMs ?? 60_000),
    }).catch((err: unknown) => {
      throw new PuffinError('unavailable', `the query log could not be read from ${this.options.apiUrl}: ${String(err)}`);
    });
    const text = await response.text();
    if (!response.ok) throw new PuffinError('unavailable', `the query log query failed with HTTP ${response.status}: ${text.slice(0, 500)}`);
    const row = (JSON.parse(text) as { rows?: Record<string, unknown>[] }).rows?.[0];
    const bytes = Number(row?.bytes_scanned);
    const queries = Number(row?.queries);
    if (!Number.isFinite(bytes) || !Number.isFinite(queries)) {
      throw new PuffinError('internal', `the query log answered without bytes_scanned and queries: ${text.slice(0, 500)}`);
    }
    return { scanned_gb: bytes, queries };
  }
}
