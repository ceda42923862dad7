// Result serialization shared by the command line and the HTTP API. JSON keeps numbers
// exact: big integers and decimals arrive from DuckDB as strings and are written as JSON
// number literals digit for digit, so 123456789012345678.90 is not rounded to a double.
// CSV and Arrow IPC are the other encodings a client can ask for with `Accept`.

import type { JsonValue, QueryResult, ResultColumn } from '../engine/engine.ts';
import { PuffinError } from '../errors.ts';
import { ARROW_STREAM_TYPE, toArrowIpc } from './arrow.ts';

const EXACT_NUMERIC = /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|DECIMAL)/i;
const NUMBER_LITERAL = /^-?\d+(\.\d+)?$/;

function jsonValue(value: JsonValue, column: ResultColumn): string {
  if (typeof value === 'string' && EXACT_NUMERIC.test(column.type) && NUMBER_LITERAL.test(value)) return value;
  // NaN and infinities have no JSON literal; DuckDB's strings for them stay strings.
  return JSON.stringify(value);
}

/** One JSON array of row objects, keyed by column name. */
export function toJsonRows(result: QueryResult): string {
  const keys = result.columns.map((c) => JSON.stringify(c.name));
  const rows = result.rows.map((row) => `{${row.map((v, i) => `${keys[i]}: ${jsonValue(v, result.columns[i])}`).join(', ')}}`);
  return `[${rows.join(',\n ')}]`;
}

function csvField(value: JsonValue): string {
  if (value === null) return '';
  const text = typeof value === 'object' ? JSON.stringify(value) : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** RFC 4180 CSV with a header row. */
export function toCsv(result: QueryResult): string {
  const lines = [result.columns.map((c) => csvField(c.name)).join(',')];
  for (const row of result.rows) lines.push(row.map(csvField).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

function cellText(value: JsonValue): string {
  if (value === null) return 'NULL';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/** An aligned text table for terminals; numbers right-aligned. */
export function toTextTable(result: QueryResult, maxRows = 1000): string {
  const shown = result.rows.slice(0, maxRows);
  const cells = shown.map((row) => row.map(cellText));
  const headers = result.columns.map((c) => c.name);
  const widths = headers.map((h, i) => Math.min(60, Math.max(h.length, ...cells.map((r) => r[i].length))));
  const numeric = result.columns.map((c) => /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|U\w*INT|DECIMAL|DOUBLE|FLOAT|REAL)/i.test(c.type));
  const fit = (s: string, w: number) => (s.length > w ? `${s.slice(0, w - 1)}…` : s);
  const line = (parts: string[]) => parts.map((p, i) => (numeric[i] ? fit(p, widths[i]).padStart(widths[i]) : fit(p, widths[i]).padEnd(widths[i]))).join(' │ ');
  const rule = widths.map((w) => '─'.repeat(w)).join('─┼─');
  const out = [line(headers), rule, ...cells.map(line)];
  const more = result.rows.length - shown.length;
  out.push(`(${result.rows.length} row${result.rows.length === 1 ? '' : 's'}${more > 0 ? `, ${more} not shown` : ''})`);
  return out.join('\n');
}

/** The result encodings a client can ask for with `Accept`. */
export type ResultFormat = 'json' | 'csv' | 'arrow';

export const RESULT_CONTENT_TYPES: Record<ResultFormat, string> = {
  json: 'application/json; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
  arrow: ARROW_STREAM_TYPE,
};

const MEDIA_FORMATS: Record<string, ResultFormat> = {
  'application/json': 'json',
  'text/csv': 'csv',
  [ARROW_STREAM_TYPE]: 'arrow',
  'application/*': 'json',
  'text/*': 'csv',
  '*/*': 'json',
};

/**
 * The format an `Accept` header asks for: the supported media type with the highest
 * quality, JSON when the header is absent or a wildcard. A header naming only types we
 * cannot produce is a client error, not a silent JSON answer.
 */
export function negotiateFormat(accept: string | undefined): ResultFormat {
  if (!accept || accept.trim() === '') return 'json';
  const ranges = accept.split(',').map((part, order) => {
    const [type, ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    const q = params.find((p) => p.startsWith('q='));
    return { type, quality: q ? Number(q.slice(2)) : 1, order };
  });
  ranges.sort((a, b) => b.quality - a.quality || a.order - b.order);
  for (const range of ranges) {
    const format = MEDIA_FORMATS[range.type];
    if (format && range.quality > 0) return format;
  }
  throw new PuffinError('bad_request', `cannot answer with '${accept}'; accept application/json, text/csv or ${ARROW_STREAM_TYPE}`);
}

/** A result encoded for a response; JSON wraps the rows in `envelope`'s fields. */
export function encodeResult(result: QueryResult, format: ResultFormat, envelope: Record<string, unknown> = {}): { body: string | Uint8Array; contentType: string } {
  const contentType = RESULT_CONTENT_TYPES[format];
  if (format === 'csv') return { body: toCsv(result), contentType };
  if (format === 'arrow') return { body: toArrowIpc(result), contentType };
  // Rows are written by toJsonRows so decimals and big integers stay exact.
  const head = JSON.stringify(envelope).slice(0, -1);
  const sep = head === '{' ? '' : ',';
  return { body: `${head}${sep}"columns":${JSON.stringify(result.columns)},"rows":${toJsonRows(result)}}`, contentType };
}

/** Size in bytes of an encoded body. */
export function bodyBytes(body: string | Uint8Array): number {
  return typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
}
