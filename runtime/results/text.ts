// The text encodings of a result, shared by the command line and the HTTP API (formats.ts
// adds Arrow and content negotiation). JSON keeps numbers exact: big integers and decimals
// arrive from DuckDB as strings and are written as JSON number literals digit for digit, so
// 123456789012345678.90 is not rounded to a double. Apart so that a command that prints
// text does not load Apache Arrow.

import type { JsonValue, QueryResult, ResultColumn } from '../engine/engine.ts';

/** The media type of an Arrow IPC stream (runtime/results/arrow.ts writes them). */
export const ARROW_STREAM_TYPE = 'application/vnd.apache.arrow.stream';

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
