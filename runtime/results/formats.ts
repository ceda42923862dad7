// Result serialization for the HTTP API: the text encodings (text.ts) and Arrow IPC, chosen
// by `Accept`.

import type { QueryResult } from '../engine/engine.ts';
import { PuffinError } from '../errors.ts';
import { toArrowIpc } from './arrow.ts';
import { ARROW_STREAM_TYPE, toCsv, toJsonRows } from './text.ts';

export { toCsv, toJsonRows, toTextTable } from './text.ts';

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
