// Calls to another PuffinDB's HTTP API, for `SELECT ... THROUGH 'url'` and `remote.table`
// (runtime/exec/remote-tables.ts): which registered remote a URL falls under, the request
// (POST v1/query there, the answer an Arrow IPC stream), and the answer read back as rows.
//
// Credentials: a URL is called only when it falls under a registered remote (its base URL a
// prefix of it, ending on a path boundary; the longest wins), with the API key in that
// remote's environment variable (read now, never stored). Anything else is refused with
// access_denied before any connection is made. The remote applies its own roles to that key:
// what a local caller reaches through a remote is what the registered key may do there.
//
// Addresses, as for query generators (runtime/sql/generators.ts): http and https only, no
// credentials in the URL, link-local and instance-metadata addresses refused after resolving
// and before connecting (the connection goes to the checked address), loopback only when the
// registered URL names loopback itself.
//
// Failures: the remote's own refusals (a syntax error, an unknown table, its 403) come back
// with their code and the remote named; an answer that is not the API's (not Arrow, not its
// JSON), a 5xx, or a connection that fails is 502 bad_gateway naming the remote; no answer
// within the timeout (PUFFINDB_REMOTE_TIMEOUT_MS, and never past the query's deadline) is a
// timeout. The key never appears in a message: whatever the remote says is scrubbed of it.

import { isIP } from 'node:net';
import type { JsonValue, QueryResult } from '../engine/engine.ts';
import type { Column } from '../catalog/types.ts';
import { PuffinError, type ErrorCode } from '../errors.ts';
import { checkedRequest, hostOf, isLinkLocal, namesLoopback } from '../sql/generators.ts';
import type { RemoteRecord } from '../state/remote-file.ts';
import { ARROW_STREAM_TYPE } from '../results/text.ts';

/** How long a remote has to answer, by default (PUFFINDB_REMOTE_TIMEOUT_MS). */
export const REMOTE_TIMEOUT_MS = 30_000;
/** Largest answer read from a remote. */
export const REMOTE_MAX_BYTES = 256 * 1024 * 1024;

export interface RemoteCallOptions {
  /** The hop this call is (1 for a statement a client sent here); over MAX_REMOTE_HOPS it is refused. */
  hop?: number;
  timeoutMs?: number;
  maxBytes?: number;
  /** Where keyEnv is read; default process.env. */
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

/**
 * How many instances a statement may pass through (THROUGH hops and remote table fetches, in
 * any mix) before it is refused as a cycle: two instances whose views read each other's
 * tables would otherwise call each other until the deadline.
 */
export const MAX_REMOTE_HOPS = 8;

const HOP_COMMENT = /^\s*\/\* puffindb hop (\d+) \*\/\s*/;

/** The hop a statement arrived as: 0 unless another instance sent it (its leading comment says). */
export function hopOf(sql: string): number {
  const m = HOP_COMMENT.exec(sql);
  return m ? Number(m[1]) : 0;
}

/** Refuses a call that would be hop `hop` past MAX_REMOTE_HOPS. */
export function checkHop(hop: number, remote: string): void {
  if (hop > MAX_REMOTE_HOPS) throw new PuffinError('bad_request', `this statement has already passed through ${hop - 1} PuffinDB instances (THROUGH or remote tables), the most there may be; do views on two instances read each other's tables?`, { remote });
}

/** The statement as sent to the next instance: marked with its hop, the one it came with dropped. */
function withHop(sql: string, hop: number): string {
  return `/* puffindb hop ${hop} */ ${sql.replace(HOP_COMMENT, '')}`;
}

/** A remote and the URL under it that a statement named (the instance to call). */
export interface RemoteTarget {
  remote: RemoteRecord;
  /** The instance's base URL, ending with '/': its API is at v1/ under it. */
  base: string;
}

function parsed(raw: string, what: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new PuffinError('bad_request', `${what} ${JSON.stringify(raw.slice(0, 100))} is not a URL (e.g. https://east.example.com/)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new PuffinError('bad_request', `${what} must be http or https, got ${url.protocol.replace(/:$/, '')}`);
  if (url.username || url.password) throw new PuffinError('bad_request', `${what} must not carry credentials; the API key comes from the remote's environment variable (--key-env)`);
  if (url.search || url.hash) throw new PuffinError('bad_request', `${what} must not have a query string or fragment: it is the base URL of a PuffinDB`);
  const host = hostOf(url);
  if (isIP(host) !== 0 && isLinkLocal(host)) throw new PuffinError('bad_request', `${what} names ${host}, a link-local (instance metadata) address; those are refused`);
  return url;
}

/** A remote's URL as it may be registered: its base URL, with a trailing '/'. 400 otherwise. */
export function checkRemoteUrl(raw: string): string {
  const url = parsed(raw, 'remote url');
  return url.pathname.endsWith('/') ? url.href : `${url.href}/`;
}

/**
 * The registered remote `raw` falls under: the longest registered base URL that is a prefix of
 * it on a path boundary (same scheme, host and port). Not a URL, or another scheme: 400.
 * Under none: 403 access_denied, before anything is connected to.
 */
export function remoteFor(remotes: readonly RemoteRecord[], raw: string): RemoteTarget {
  const url = parsed(raw, 'THROUGH url');
  const base = url.pathname.endsWith('/') ? url.href : `${url.href}/`;
  let best: RemoteRecord | undefined;
  for (const r of remotes) {
    let prefix: string;
    try {
      prefix = checkRemoteUrl(r.url);
    } catch {
      continue;
    }
    if (base.startsWith(prefix) && (!best || prefix.length > checkRemoteUrl(best.url).length)) best = r;
  }
  if (!best) throw new PuffinError('access_denied', `${url.origin}${url.pathname} is not under a registered remote; an admin registers it with \`puffindb remote add NAME URL --key-env VAR\` (POST /v1/remotes)`, { url: `${url.origin}${url.pathname}` });
  return { remote: best, base };
}

/** The target of a remote's own tables (`name.table`): its registered base URL. */
export function remoteTarget(remote: RemoteRecord): RemoteTarget {
  return { remote, base: checkRemoteUrl(remote.url) };
}

/** The remote as messages name it. */
function label(target: RemoteTarget): string {
  const u = new URL(target.base);
  return `remote '${target.remote.name}' (${u.origin}${u.pathname})`;
}

/** Text from (or about) the remote, with the key cut out wherever it appears. */
function scrub(text: string, key: string | undefined): string {
  return key ? text.split(key).join('<remote key>') : text;
}

interface Answer {
  status: number;
  contentType: string;
  body: Buffer;
}

/** One request to the remote's API, bounded in size and time; the key in the Authorization header. */
async function call(target: RemoteTarget, method: 'GET' | 'POST', path: string, body: unknown, accept: string, options: RemoteCallOptions): Promise<{ answer: Answer; key: string }> {
  const { remote } = target;
  const key = (options.env ?? process.env)[remote.keyEnv];
  if (!key) throw new PuffinError('bad_gateway', `${label(target)} needs its API key in the environment variable ${remote.keyEnv}, which this server does not have`, { remote: remote.name });
  const url = new URL(path, target.base);
  const registered = new URL(checkRemoteUrl(remote.url));
  const allowLoopback = namesLoopback(registered);
  const timeoutMs = Math.max(1, options.timeoutMs ?? REMOTE_TIMEOUT_MS);
  const maxBytes = options.maxBytes ?? REMOTE_MAX_BYTES;
  const headers: Record<string, string> = { authorization: `Bearer ${key}`, accept };
  let payload: Buffer | undefined;
  if (body !== undefined) {
    payload = Buffer.from(JSON.stringify(body));
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(payload.length);
  }
  const fail = (code: ErrorCode, why: string) => new PuffinError(code, scrub(`${label(target)} ${why}`, key), { remote: remote.name });
  const answer = await checkedRequest(url, { method, headers, payload, allowLoopback, timeoutMs, maxBytes, signal: options.signal }, (kind, detail) => {
    if (kind === 'timeout') return fail('timeout', `${detail} (PUFFINDB_REMOTE_TIMEOUT_MS, or the query's deadline)`);
    if (kind === 'cancelled') return options.signal?.reason instanceof PuffinError ? options.signal.reason : fail('timeout', 'was still answering when the query was cancelled');
    return fail(kind === 'refused' ? 'access_denied' : 'bad_gateway', detail);
  });
  if (answer.status >= 200 && answer.status <= 299) return { answer, key };
  throw refusal(target, answer, key);
}

/** A non-2xx answer as an error: the remote's own code for its refusals, 502 for anything else. */
function refusal(target: RemoteTarget, answer: Answer, key: string): PuffinError {
  const text = answer.body.toString('utf8');
  let error: { code?: string; message?: string } | undefined;
  try {
    error = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error;
  } catch {
    // not the API's error form
  }
  const name = target.remote.name;
  const said = error?.message ?? text.slice(0, 200);
  const message = (why: string) => scrub(`${label(target)} ${why}`, key);
  if (answer.status === 401) return new PuffinError('bad_gateway', message(`refused the API key in $${target.remote.keyEnv} (HTTP 401): ${said}`), { remote: name });
  if (answer.status >= 400 && answer.status < 500 && error?.code && error.code !== 'internal') {
    const code = (['bad_request', 'syntax_error', 'binder_error', 'unknown_table', 'unsupported', 'access_denied', 'not_found', 'forbidden', 'payload_too_large', 'rate_limited'] as const).find((c) => c === error!.code) ?? 'bad_request';
    return new PuffinError(code, message(`answered ${error.code}: ${said}`), { remote: name });
  }
  if (answer.status === 504 && error?.code === 'timeout') return new PuffinError('timeout', message(`timed out: ${said}`), { remote: name });
  return new PuffinError('bad_gateway', message(`answered HTTP ${answer.status}${said ? `: ${said}` : ''}`), { remote: name });
}

/**
 * Run `sql` on the remote (POST v1/query, asking for an Arrow IPC stream) and return its
 * rows. A result too large for the remote to answer inline is fetched from the result route
 * it names, as Arrow too.
 */
export async function remoteQuery(target: RemoteTarget, sql: string, options: RemoteCallOptions = {}): Promise<QueryResult> {
  const started = Date.now();
  const timeoutMs = options.timeoutMs ?? REMOTE_TIMEOUT_MS;
  const hop = options.hop ?? 1;
  checkHop(hop, target.remote.name);
  // The remote's own deadline: what is left of ours, so a chain of hops ends with it.
  const body = { sql: withHop(sql, hop), timeoutMs: Math.max(1, Math.min(3_600_000, Math.floor(timeoutMs))) };
  const { answer, key } = await call(target, 'POST', 'v1/query', body, ARROW_STREAM_TYPE, options);
  if (answer.contentType.startsWith(ARROW_STREAM_TYPE)) return fromArrow(target, answer.body, key);
  const pointer = jsonOf(target, answer, key) as { result?: unknown };
  if (typeof pointer?.result !== 'string' || !pointer.result.startsWith('/v1/queries/')) throw new PuffinError('bad_gateway', scrub(`${label(target)} answered neither an Arrow stream nor the location of a stored result`, key), { remote: target.remote.name });
  const rest = Math.max(1, timeoutMs - (Date.now() - started));
  const fetched = await call(target, 'GET', `${pointer.result.slice(1)}?format=arrow`, undefined, ARROW_STREAM_TYPE, { ...options, timeoutMs: rest });
  return fromArrow(target, fetched.answer.body, key);
}

/** A table's columns on the remote (GET v1/tables/{name}). */
export async function remoteColumns(target: RemoteTarget, table: string, options: RemoteCallOptions = {}): Promise<Column[]> {
  const { answer, key } = await call(target, 'GET', `v1/tables/${encodeURIComponent(table)}`, undefined, 'application/json', options);
  const columns = (jsonOf(target, answer, key) as { columns?: unknown })?.columns;
  const ok = Array.isArray(columns) && columns.every((c) => typeof c?.name === 'string' && typeof c?.type === 'string');
  if (!ok) throw new PuffinError('bad_gateway', `${label(target)} answered GET /v1/tables/${table} without its columns`, { remote: target.remote.name });
  return (columns as Column[]).map((c) => ({ name: c.name, type: c.type }));
}

function jsonOf(target: RemoteTarget, answer: Answer, key: string): unknown {
  try {
    return JSON.parse(answer.body.toString('utf8'));
  } catch {
    throw new PuffinError('bad_gateway', scrub(`${label(target)} answered something that is neither Arrow nor JSON (${answer.contentType || 'no content type'}): ${JSON.stringify(answer.body.subarray(0, 60).toString('utf8'))}`, key), { remote: target.remote.name });
  }
}

/** An Arrow IPC stream as DuckDB's column types and JSON values; Apache Arrow loads only here. */
async function fromArrow(target: RemoteTarget, body: Buffer, key: string): Promise<QueryResult> {
  const { readArrowResult } = await import('./remote-arrow.ts');
  try {
    return readArrowResult(body);
  } catch (err) {
    throw new PuffinError('bad_gateway', scrub(`${label(target)} answered an Arrow stream that cannot be read: ${(err as Error).message}`, key), { remote: target.remote.name });
  }
}
