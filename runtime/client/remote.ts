// connect(): the same Database over a `puffindb serve`'s HTTP API (fetch; no other
// dependency). query() is POST /v1/query with JSON; a result over the server's inline limit
// comes back as a pointer to GET /v1/queries/{id}/result, which is then read in pages of
// JSON rows. stream() asks for an Arrow IPC stream (or the stored result's) and reads its
// record batches as they arrive. Errors are the server's `{error: {code, message}}` as a
// PuffinError with that code.

import type { RecordBatch } from 'apache-arrow';
import { PuffinError } from '../errors.ts';
import { ARROW_STREAM_TYPE } from '../results/text.ts';
import type { ConnectOptions, Database, QueryResult, TableInfo } from '../../lib/puffindb.js';
import { bindParams } from './params.ts';
import { queryArgs } from './query-options.ts';
import { closedError } from './rows.ts';

/** POST /v1/query's JSON answer: rows in hand, or where a large result is kept. */
interface QueryAnswer {
  queryId: string;
  columns?: QueryResult['columns'];
  rows?: QueryResult['rows'];
  /** For a large result: the path to fetch it from, and its row count. */
  result?: string;
  rowCount?: number;
}

interface ResultPage {
  columns: QueryResult['columns'];
  rows: QueryResult['rows'];
  rowCount: number;
}

/** How a request to the API is made: extra headers (Range), and whether to follow a redirect. */
export interface CallOptions {
  headers?: Record<string, string>;
  /** 'manual': a 3xx comes back as it is (its Location read by the caller), not followed. */
  redirect?: 'follow' | 'manual';
}

export type ApiCall = (method: string, path: string, body?: unknown, accept?: string, extra?: CallOptions) => Promise<Response>;

/**
 * Requests to a server's HTTP API with a bearer key: an answer that is not 2xx (nor a 3xx
 * asked to be kept) is thrown as the server's PuffinError. Shared by connect() and
 * `puffindb download`.
 */
export function apiCaller(url: string, key: string, isClosed: () => boolean = () => false): { root: string; call: ApiCall } {
  let base: URL;
  try {
    base = new URL(url);
  } catch {
    throw new PuffinError('bad_request', `url ${JSON.stringify(url)} is not a URL; e.g. http://127.0.0.1:8080`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new PuffinError('bad_request', `url must be http:// or https://, got ${base.protocol}`);
  if (typeof key !== 'string' || key === '') throw new PuffinError('bad_request', 'key must be an API key (a non-empty string)');
  const root = base.href.endsWith('/') ? base.href : `${base.href}/`;

  async function call(method: string, path: string, body?: unknown, accept = 'application/json', extra: CallOptions = {}): Promise<Response> {
    if (isClosed()) throw closedError();
    const headers: Record<string, string> = { ...extra.headers, authorization: `Bearer ${key}`, accept };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(new URL(path.replace(/^\//, ''), root), { method, headers, body: body === undefined ? undefined : JSON.stringify(body), redirect: extra.redirect ?? 'follow' });
    } catch (err) {
      throw new PuffinError('unavailable', `cannot reach ${root}: ${(err as { cause?: Error }).cause?.message ?? (err as Error).message}`);
    }
    if (extra.redirect === 'manual' && res.status >= 300 && res.status < 400) return res;
    if (!res.ok) throw await errorOfResponse(res, root);
    return res;
  }
  return { root, call };
}

/** The server's `{error: {code, message}}` as a PuffinError (or the status and text when it is not that). */
export async function errorOfResponse(res: Response, root: string): Promise<PuffinError> {
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: the text itself is the message
  }
  const error = PuffinError.fromJSON(parsed);
  return error.code === 'internal' && typeof parsed === 'string' ? new PuffinError(res.status >= 500 ? 'unavailable' : 'bad_request', `HTTP ${res.status} from ${root}: ${text.slice(0, 200)}`) : error;
}

export async function connect(options: ConnectOptions): Promise<Database> {
  let closed = false;
  const { call } = apiCaller(options.url, options.key, () => closed);
  const pageRows = options.pageRows ?? 10_000;
  if (!Number.isInteger(pageRows) || pageRows < 1 || pageRows > 1_000_000) throw new PuffinError('bad_request', `pageRows must be an integer in [1, 1000000], got ${String(options.pageRows)}`);

  // A language or dialect goes to the server, which compiles or translates the text (Malloy against the tables this key may read).
  const statementBody = (sql: string, arg: Parameters<Database['query']>[1]) => {
    const { params, language, dialect, duckdb } = queryArgs(arg);
    return { sql: duckdb ? bindParams(sql, params) : sql, ...(language ? { language } : {}), ...(dialect && !duckdb ? { dialect } : {}) };
  };
  const queryBody = (sql: string, arg: Parameters<Database['query']>[1]) => ({ ...statementBody(sql, arg), ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}) });

  async function* batchesOf(res: Response): AsyncGenerator<RecordBatch> {
    // Apache Arrow loads when a stream is read, not with the client.
    const { RecordBatchReader } = await import('apache-arrow');
    const reader = await RecordBatchReader.from(res as never);
    for await (const batch of reader as AsyncIterable<RecordBatch>) yield batch;
  }

  // The key is checked now, so a wrong one fails here rather than at the first query.
  await call('GET', '/v1/queries?limit=1');

  return {
    async query(sql, params) {
      const answer = (await (await call('POST', '/v1/query', queryBody(sql, params))).json()) as QueryAnswer;
      if (Array.isArray(answer.rows) && answer.columns) return { columns: answer.columns, rows: answer.rows };
      if (!answer.result) throw new PuffinError('internal', `the server answered without rows or a result to fetch (query ${answer.queryId})`);
      // A large result: read it in pages of JSON rows.
      const rows: QueryResult['rows'] = [];
      let columns: QueryResult['columns'] = [];
      for (let offset = 0; ; offset += pageRows) {
        const page = (await (await call('GET', `${answer.result}?format=json&offset=${offset}&limit=${pageRows}`)).json()) as ResultPage;
        columns = page.columns;
        rows.push(...page.rows);
        if (page.rows.length < pageRows || rows.length >= page.rowCount) break;
      }
      return { columns, rows };
    },
    async *stream(sql, params) {
      const res = await call('POST', '/v1/query', queryBody(sql, params), ARROW_STREAM_TYPE);
      if ((res.headers.get('content-type') ?? '').startsWith(ARROW_STREAM_TYPE)) {
        yield* batchesOf(res);
        return;
      }
      const answer = (await res.json()) as QueryAnswer;
      if (!answer.result) throw new PuffinError('internal', `the server answered without an Arrow stream or a result to fetch (query ${answer.queryId})`);
      yield* batchesOf(await call('GET', `${answer.result}?format=arrow`, undefined, ARROW_STREAM_TYPE));
    },
    async explain(sql, params) {
      return (await (await call('POST', '/v1/explain', statementBody(sql, params))).json()) as Record<string, unknown>;
    },
    async tables(): Promise<TableInfo[]> {
      return ((await (await call('GET', '/v1/tables')).json()) as { tables: TableInfo[] }).tables;
    },
    async close() {
      closed = true;
    },
  };
}
