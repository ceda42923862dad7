// Rows as the library hands them out: exactly what JSON.parse makes of the HTTP API's JSON
// (runtime/results/formats.ts toJsonRows), so open() and connect() answer alike.

import type { QueryResult } from '../engine/engine.ts';
import { toJsonRows } from '../results/text.ts';
import type { QueryResult as PublicResult, Value } from '../../lib/puffindb.js';

export function publicResult(result: QueryResult): PublicResult {
  return { columns: result.columns.map((c) => ({ ...c })), rows: JSON.parse(toJsonRows(result)) as Record<string, Value>[] };
}

/** Rows per Arrow record batch of stream(). */
export const STREAM_BATCH_ROWS = 16_384;

/** A rejected call after close(). */
export function closedError(): Error {
  return new Error('this database was closed');
}
