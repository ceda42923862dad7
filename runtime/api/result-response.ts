// GET /v1/queries/{id}/result: a kept result (inline or stored as Parquet) answered in the
// format the client asks for, streamed as it is read: JSON ({columns, rows} with offset and
// limit paging and a `next` link), CSV, an Arrow IPC stream (one record batch per chunk of
// rows), or the whole result as Parquet (the stored object itself, read in place on a local
// disk; one byte range of it for a Range request, so a client can fetch parts in parallel). Encoding happens here, at the edge; reading is the ResultReader's
// (runtime/exec/query-results.ts). Once the first bytes are out the status is 200: a failure
// later cuts the connection, which every reader of these formats notices (the JSON does not
// close, the Arrow stream lacks its end marker, the Parquet file its footer).

import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { JsonValue, ResultColumn } from '../engine/engine.ts';
import { PuffinError } from '../errors.ts';
import type { KeptResult, ResultReader } from '../exec/query-results.ts';
import { ARROW_STREAM_TYPE, arrowIpcChunks } from '../results/arrow.ts';
import { negotiateFormat, RESULT_CONTENT_TYPES, toCsv, toJsonRows, type ResultFormat } from '../results/formats.ts';

export const PARQUET_TYPE = 'application/vnd.apache.parquet';

/** What the result route can answer with. */
export type FetchFormat = ResultFormat | 'parquet';

/** `?format=` when given, else `Accept` (Parquet's media type, or what POST /v1/query negotiates). */
export function fetchFormat(format: FetchFormat | undefined, accept: string | undefined): FetchFormat {
  if (format) return format;
  const wantsParquet = (accept ?? '').split(',').some((part) => {
    const [type, ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    return type === PARQUET_TYPE && !params.some((p) => /^q=0(\.0*)?$/.test(p));
  });
  if (wantsParquet) return 'parquet';
  try {
    return negotiateFormat(accept);
  } catch {
    throw new PuffinError('bad_request', `cannot answer with '${accept}'; accept application/json, text/csv, ${ARROW_STREAM_TYPE} or ${PARQUET_TYPE}, or pass ?format=json|csv|arrow|parquet`);
  }
}

export interface FetchRequest {
  queryId: string;
  format: FetchFormat;
  offset?: number;
  limit?: number;
  /** Fields of the JSON answer before its rows (queryId, shape, cacheHit). */
  envelope: Record<string, unknown>;
  /** The request's Range header: honoured for a stored Parquet result read from a local disk. */
  range?: string;
}

export async function fetchedResult(reader: ResultReader, kept: KeptResult, request: FetchRequest): Promise<Response> {
  const { format, queryId } = request;
  if (format === 'parquet') {
    if (request.offset !== undefined || request.limit !== undefined) throw new PuffinError('bad_request', 'offset and limit page json, csv and arrow answers; format=parquet is the whole result');
    return parquetResponse(reader, kept, queryId, request.range);
  }
  const offset = request.offset ?? 0;
  const window = await reader.rows(kept, { offset, limit: request.limit });
  const headers: Record<string, string> = { 'content-type': RESULT_CONTENT_TYPES[format], 'x-puffindb-row-count': String(window.rowCount) };
  const { columns, chunks } = window;
  const body = (pieces: AsyncGenerator<string | Uint8Array>) => new Response(streamOf(pieces, window.close), { status: 200, headers });
  if (format === 'arrow') return body(arrowIpcChunks(columns, chunks));
  if (format === 'csv') return body(csvChunks(toCsv({ columns, rows: [] }), columns, chunks));
  const limit = request.limit;
  const end = limit === undefined ? window.rowCount : Math.min(window.rowCount, offset + limit);
  const next = limit !== undefined && end < window.rowCount ? `/v1/queries/${queryId}/result?format=json&offset=${end}&limit=${limit}` : null;
  const head = { ...request.envelope, columns, rowCount: window.rowCount, offset, limit: limit ?? null, next };
  return body(jsonChunks(`${JSON.stringify(head).slice(0, -1)},"rows":[`, columns, chunks));
}

async function* jsonChunks(head: string, columns: ResultColumn[], chunks: AsyncIterable<JsonValue[][]>): AsyncGenerator<string> {
  yield head;
  let first = true;
  for await (const rows of chunks) {
    if (rows.length === 0) continue;
    // toJsonRows keeps big integers and decimals digit for digit; its brackets are ours here.
    yield `${first ? '' : ','}${toJsonRows({ columns, rows }).slice(1, -1)}`;
    first = false;
  }
  yield ']}';
}

async function* csvChunks(header: string, columns: ResultColumn[], chunks: AsyncIterable<JsonValue[][]>): AsyncGenerator<string> {
  yield header;
  for await (const rows of chunks) yield toCsv({ columns, rows }).slice(header.length);
}

async function parquetResponse(reader: ResultReader, kept: KeptResult, queryId: string, range: string | undefined): Promise<Response> {
  const body = await reader.parquet(kept);
  const headers: Record<string, string> = { 'content-type': PARQUET_TYPE, 'content-disposition': `attachment; filename="${queryId}.parquet"` };
  // On S3: the client downloads the object from S3 itself (fetch and curl -L drop the bearer key
  // on the way); S3 answers Range requests of the presigned URL itself.
  if (body.kind === 'redirect') return new Response(null, { status: 307, headers: { location: body.url } });
  // An inline result's Parquet is written on the spot, so two requests need not get the same
  // bytes: it is answered whole, whatever the Range (which HTTP allows a server to ignore).
  if (body.kind === 'bytes') return new Response(body.bytes, { status: 200, headers: { ...headers, 'content-length': String(body.bytes.byteLength) } });
  let size: number;
  try {
    size = (await stat(body.path)).size;
  } catch {
    throw new PuffinError('not_found', 'the stored result is gone from the results prefix (expired or removed); run the query again');
  }
  // The stored object does not change while it is kept: parts of it can be fetched in parallel.
  headers['accept-ranges'] = 'bytes';
  const wanted = byteRange(range, size);
  if (wanted === 'unsatisfiable') {
    const error = { error: { code: 'bad_request', message: `range ${JSON.stringify(range)} is outside the result's ${size} bytes` } };
    return new Response(JSON.stringify(error), { status: 416, headers: { 'content-type': 'application/json', 'content-range': `bytes */${size}`, 'accept-ranges': 'bytes' } });
  }
  if (wanted) {
    const stream = Readable.toWeb(createReadStream(body.path, { start: wanted.start, end: wanted.end })) as unknown as ReadableStream<Uint8Array>;
    return new Response(stream, { status: 206, headers: { ...headers, 'content-length': String(wanted.end - wanted.start + 1), 'content-range': `bytes ${wanted.start}-${wanted.end}/${size}` } });
  }
  const stream = Readable.toWeb(createReadStream(body.path)) as unknown as ReadableStream<Uint8Array>;
  return new Response(stream, { status: 200, headers: { ...headers, 'content-length': String(size) } });
}

/**
 * One byte range of a `size`-byte body from a Range header (RFC 9110 14.2): `bytes=a-b`,
 * `bytes=a-` or the suffix `bytes=-n`, the end clamped to the last byte. Undefined (answer
 * the whole body, 200) without a header, for one that does not parse, another unit, or
 * several ranges; 'unsatisfiable' (416) when the range starts past the end or is empty.
 */
export function byteRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? Number.MAX_SAFE_INTEGER : Number(m[2]);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end: Math.min(end, size - 1) };
}

/**
 * A pull-based body: the next piece is produced when the client has taken the last one.
 * `release` runs once the body ends, fails or is cancelled (the client went away).
 */
function streamOf(pieces: AsyncGenerator<string | Uint8Array>, release: () => Promise<void>): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { value, done } = await pieces.next();
        if (done) {
          controller.close();
          await release();
        } else controller.enqueue(typeof value === 'string' ? encoder.encode(value) : value);
      } catch (err) {
        controller.error(err);
        await release();
      }
    },
    async cancel() {
      await pieces.return(undefined);
      await release();
    },
  });
}
