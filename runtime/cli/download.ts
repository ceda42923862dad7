// `puffindb download 'SQL' --to out.parquet` (or a table name): a result, however large,
// written to a local file. Against a server (--url) the query is submitted in the background
// (POST /v1/queries), polled until it ends, and its result fetched from
// GET /v1/queries/{id}/result: Parquet in parallel byte ranges (the server answers a stored
// result's Range with 206, or redirects to a presigned S3 URL, which is ranged instead); a
// result the server answers whole (an inline one, another format) is streamed whole.
// Without --url the query runs on the local warehouse, like `puffindb query`. Either way the
// file appears whole or not at all: bytes go to a temporary file beside it, renamed at the end.

import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, statSync } from 'node:fs';
import { mkdtemp, open, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Engine, type QueryResult } from '../engine/engine.ts';
import { PuffinError } from '../errors.ts';
import { writeParquet } from '../exec/parquet-writer.ts';
import { apiCaller, errorOfResponse, type ApiCall } from '../client/remote.ts';
import { ARROW_STREAM_TYPE, toCsv, toJsonRows } from '../results/text.ts';
import type { Settings } from '../settings.ts';
import { formatBytes, formatDownloadProgress, queryProgressHooks, type ProgressLine } from './progress.ts';
import { openWarehouse } from './warehouse.ts';

export type DownloadFormat = 'parquet' | 'csv' | 'arrow' | 'json';
const FORMATS: readonly DownloadFormat[] = ['parquet', 'csv', 'arrow', 'json'];
const EXTENSIONS: Record<string, DownloadFormat> = { '.parquet': 'parquet', '.pq': 'parquet', '.csv': 'csv', '.arrow': 'arrow', '.arrows': 'arrow', '.ipc': 'arrow', '.json': 'json' };
const ACCEPT: Record<DownloadFormat, string> = { parquet: 'application/vnd.apache.parquet', csv: 'text/csv', arrow: ARROW_STREAM_TYPE, json: 'application/json' };

/** Parts of a ranged download: 8 MiB each, four at a time. */
export const DEFAULT_PART_BYTES = 8 * 1024 * 1024;
export const DEFAULT_PARALLEL = 4;

/** --format when given, else the target's extension. */
export function downloadFormat(to: string, format: string | undefined): DownloadFormat {
  if (format !== undefined) {
    if (!FORMATS.includes(format as DownloadFormat)) throw new PuffinError('bad_request', `--format must be parquet, csv, arrow or json, got '${format}'`);
    return format as DownloadFormat;
  }
  const fromExt = EXTENSIONS[extname(to).toLowerCase()];
  if (!fromExt) throw new PuffinError('bad_request', `cannot tell the format of '${to}' from its extension; name it .parquet, .csv, .arrow or .json, or pass --format parquet|csv|arrow|json`);
  return fromExt;
}

/** A bare (optionally qualified) table name is read whole; anything else is SQL. */
export function downloadSql(what: string): string {
  const name = what.trim();
  return /^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*){0,2}$/.test(name) ? `SELECT * FROM ${name}` : what;
}

export interface DownloadOptions {
  sql: string;
  /** The file to write. */
  to: string;
  format: DownloadFormat;
  /** A server's base URL; without it the query runs on the local warehouse. */
  url?: string;
  key?: string;
  /** Local runs: the settings of the warehouse. */
  settings?: Settings;
  partBytes?: number;
  parallel?: number;
  timeoutMs?: number;
  progress?: ProgressLine;
}

export interface DownloadSummary {
  path: string;
  format: DownloadFormat;
  bytes: number;
  /** Rows, when the server or the local run told them. */
  rows?: number;
  queryId?: string;
  /** How the bytes came: one whole answer, or this many ranged GETs. */
  ranges: number;
  /** Whether the ranged GETs went to a presigned URL the server redirected to. */
  redirected: boolean;
}

/** The temporary file beside `to` (same directory, so the rename is atomic), after checking that directory. */
function tempBeside(to: string): { target: string; temp: string } {
  const target = resolve(to);
  const dir = dirname(target);
  if (!existsSync(dir)) throw new PuffinError('bad_request', `cannot write ${to}: the directory ${dir} does not exist`);
  if (!statSync(dir).isDirectory()) throw new PuffinError('bad_request', `cannot write ${to}: ${dir} is not a directory`);
  if (existsSync(target) && statSync(target).isDirectory()) throw new PuffinError('bad_request', `cannot write ${to}: it is a directory`);
  return { target, temp: join(dir, `.${basename(target)}.${process.pid}-${randomBytes(4).toString('hex')}.part`) };
}

/** Run `write(temp)`, then rename temp to the target; on any failure the temp file is removed. */
async function atomically<T>(to: string, write: (temp: string) => Promise<T>): Promise<T & { path: string }> {
  const { target, temp } = tempBeside(to);
  try {
    const out = await write(temp);
    await rename(temp, target);
    return { ...out, path: target };
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

export async function download(options: DownloadOptions): Promise<DownloadSummary> {
  tempBeside(options.to); // a missing directory fails before the query runs
  return options.url ? downloadRemote(options) : downloadLocal(options);
}

async function downloadLocal(options: DownloadOptions): Promise<DownloadSummary> {
  if (!options.settings) throw new PuffinError('internal', 'a local download needs the warehouse settings');
  const settings = options.settings;
  const warehouse = await openWarehouse(settings, { runners: 'in-process' });
  let result: QueryResult;
  try {
    const hooks = options.progress ? queryProgressHooks(options.progress) : undefined;
    result = await warehouse.query(options.sql, { role: 'admin', onPlan: hooks?.onPlan, onFragment: hooks?.onFragment });
  } finally {
    await warehouse.close();
  }
  options.progress?.clear();
  return atomically(options.to, async (temp) => {
    let bytes: Uint8Array | string;
    if (options.format === 'csv') bytes = toCsv(result);
    else if (options.format === 'json') bytes = toJsonRows(result);
    else if (options.format === 'arrow') bytes = (await import('../results/arrow.ts')).toArrowIpc(result);
    else {
      // DuckDB writes the Parquet (keeping each column's type) in a scratch directory of its own.
      const scratch = await mkdtemp(join(tmpdir(), 'puffindb-download-'));
      const engine = await Engine.create({ threads: settings.threads });
      try {
        bytes = await writeParquet(engine, scratch, result.columns, result.rows);
      } finally {
        engine.close();
        await rm(scratch, { recursive: true, force: true });
      }
    }
    await writeFile(temp, bytes);
    return { format: options.format, bytes: typeof bytes === 'string' ? Buffer.byteLength(bytes) : bytes.byteLength, rows: result.rows.length, ranges: 0, redirected: false };
  });
}

interface StatusView {
  queryId: string;
  status: string;
  progress?: { fragmentsDone: number; fragmentsTotal: number; bytesScanned: number };
  error?: { code: string; message: string };
}

async function downloadRemote(options: DownloadOptions): Promise<DownloadSummary> {
  const { call, root } = apiCaller(options.url!, options.key ?? '');
  const started = Date.now();
  const submitted = (await (await call('POST', '/v1/queries', { sql: options.sql, ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}) })).json()) as StatusView;
  const status = await awaitQuery(call, submitted, options.progress, started);
  if (status.status !== 'succeeded') {
    const e = status.error;
    if (e) throw PuffinError.fromJSON({ error: { code: e.code, message: `query ${status.queryId} ${status.status}: ${e.message}` } });
    throw new PuffinError(status.status === 'cancelled' ? 'conflict' : 'internal', `query ${status.queryId} ${status.status}`);
  }
  const path = `/v1/queries/${status.queryId}/result?format=${options.format}`;
  const fetched = { bytes: 0, total: undefined as number | undefined };
  const tick = (n: number, force = false) => {
    fetched.bytes += n;
    options.progress?.update(formatDownloadProgress(fetched.bytes, fetched.total, Date.now() - started), force);
  };
  try {
    return await atomically(options.to, async (temp) => {
      if (options.format !== 'parquet') {
        const res = await call('GET', path, undefined, ACCEPT[options.format]);
        await streamToFile(res, temp, tick);
        return { format: options.format, bytes: fetched.bytes, rows: rowCountOf(res), queryId: status.queryId, ranges: 0, redirected: false };
      }
      return { ...(await rangedParquet(call, root, path, temp, options, fetched, tick)), format: options.format, queryId: status.queryId };
    });
  } finally {
    options.progress?.clear();
  }
}

function rowCountOf(res: Response): number | undefined {
  const n = Number(res.headers.get('x-puffindb-row-count') ?? NaN);
  return Number.isFinite(n) ? n : undefined;
}

/** Poll the query's status until it ends (20 ms apart, growing to 1 s). */
async function awaitQuery(call: ApiCall, submitted: StatusView, progress: ProgressLine | undefined, started: number): Promise<StatusView> {
  let status = submitted;
  let wait = 20;
  while (status.status === 'queued' || status.status === 'running') {
    await new Promise((r) => setTimeout(r, wait));
    wait = Math.min(1000, Math.ceil(wait * 1.5));
    status = (await (await call('GET', `/v1/queries/${submitted.queryId}`)).json()) as StatusView;
    const p = status.progress;
    if (p && progress) progress.update(`query: tasks ${p.fragmentsDone}/${p.fragmentsTotal}, ${formatBytes(p.bytesScanned)} read, ${((Date.now() - started) / 1000).toFixed(1)} s`, true);
  }
  return status;
}

async function streamToFile(res: Response, path: string, tick: (n: number) => void): Promise<void> {
  if (!res.body) throw new PuffinError('unavailable', 'the server answered without a body');
  const counted = Readable.fromWeb(res.body as never);
  counted.on('data', (chunk: Buffer) => tick(chunk.byteLength));
  await pipeline(counted, createWriteStream(path));
}

/**
 * The stored Parquet in ranges: the first part's GET (not following a redirect) tells the size
 * (Content-Range) and where to read (the server, or the presigned URL it redirects to); the
 * other parts are then fetched `parallel` at a time and written at their offsets. A 200 to the
 * first GET (a server or store that ignores Range, an inline result) is the whole file.
 */
async function rangedParquet(call: ApiCall, root: string, path: string, temp: string, options: DownloadOptions, fetched: { total?: number }, tick: (n: number, force?: boolean) => void): Promise<{ bytes: number; rows?: number; ranges: number; redirected: boolean }> {
  const partBytes = options.partBytes ?? DEFAULT_PART_BYTES;
  const parallel = options.parallel ?? DEFAULT_PARALLEL;
  if (!Number.isInteger(partBytes) || partBytes < 1) throw new PuffinError('bad_request', `part size must be a positive integer of bytes, got ${partBytes}`);
  const rangeOf = (start: number, end: number) => ({ range: `bytes=${start}-${end}` });
  let first = await call('GET', path, undefined, ACCEPT.parquet, { headers: rangeOf(0, partBytes - 1), redirect: 'manual' });
  const rows = rowCountOf(first);
  // Ranged GETs of the server (with the key) or of a presigned URL (without it: the URL is the authority).
  let get = (start: number, end: number) => call('GET', path, undefined, ACCEPT.parquet, { headers: rangeOf(start, end) });
  let redirected = false;
  if (first.status >= 300 && first.status < 400) {
    const location = first.headers.get('location');
    if (!location) throw new PuffinError('unavailable', `the server answered ${first.status} without a Location`);
    const target = new URL(location, root).href;
    redirected = true;
    get = async (start, end) => {
      let res: Response;
      try {
        res = await fetch(target, { headers: rangeOf(start, end) });
      } catch (err) {
        throw new PuffinError('unavailable', `cannot reach the result's store: ${(err as { cause?: Error }).cause?.message ?? (err as Error).message}`);
      }
      if (!res.ok) throw await errorOfResponse(res, new URL(target).origin);
      return res;
    };
    first = await get(0, partBytes - 1);
  }
  if (first.status !== 206) {
    await streamToFile(first, temp, tick);
    return { bytes: statSync(temp).size, rows, ranges: 1, redirected };
  }
  const total = totalOf(first.headers.get('content-range'));
  fetched.total = total;
  const file = await open(temp, 'w');
  try {
    const writePart = async (res: Response, start: number, end: number) => {
      const bytes = new Uint8Array(await res.arrayBuffer());
      if (bytes.byteLength !== end - start + 1) throw new PuffinError('unavailable', `range ${start}-${end} came back with ${bytes.byteLength} bytes, not ${end - start + 1}`);
      await file.write(bytes, 0, bytes.byteLength, start);
      tick(bytes.byteLength);
    };
    await writePart(first, 0, Math.min(partBytes, total) - 1);
    const parts: [number, number][] = [];
    for (let start = partBytes; start < total; start += partBytes) parts.push([start, Math.min(start + partBytes, total) - 1]);
    let next = 0;
    let failed = false;
    const worker = async () => {
      while (next < parts.length && !failed) {
        const [start, end] = parts[next++];
        const res = await get(start, end);
        if (res.status !== 206) throw new PuffinError('unavailable', `range ${start}-${end} was answered ${res.status}, not 206 Partial Content`);
        await writePart(res, start, end);
      }
    };
    await Promise.all(Array.from({ length: Math.min(parallel, parts.length) }, () => worker().catch((err: unknown) => {
      failed = true;
      throw err;
    })));
    await file.truncate(total);
    tick(0, true);
    return { bytes: total, rows, ranges: parts.length + 1, redirected };
  } finally {
    await file.close();
  }
}

function totalOf(contentRange: string | null): number {
  const m = /^bytes \d+-\d+\/(\d+)$/.exec(contentRange ?? '');
  if (!m) throw new PuffinError('unavailable', `a 206 answer with Content-Range ${JSON.stringify(contentRange)}, not bytes a-b/size`);
  return Number(m[1]);
}
