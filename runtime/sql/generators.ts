// Remote query generators: HTTP endpoints an admin registers (`puffindb generator add`,
// POST /v1/generators) that turn an input (text, parameters, and the schemas of the tables
// the caller may read) into SQL. The API calls one for `POST /v1/query {"generator", "input"}`
// and runs the SQL it answers exactly like SQL the caller sent: classified, authorized by
// the caller's role, sandboxed. This module is the call: the URL checks, the request, the
// limits (a deadline, a response size), and the answer's checks. Every failure of the
// generator is a PuffinError('bad_gateway') (502) naming it.
//
// Addresses: only http and https; link-local addresses (169.254.0.0/16, fe80::/10, where
// cloud instance metadata lives) and fd00:ec2::254 are refused whatever the URL says, after
// resolving its host name and before connecting (the connection uses the very addresses
// checked, so a name cannot resolve elsewhere in between). Loopback (127.0.0.0/8, ::1,
// 0.0.0.0, ::) is allowed only when the registered URL names loopback itself (localhost,
// 127.x, [::1]): registration is admin-only, so it is the allow-list; a public name that
// resolves to loopback is refused.

import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { PuffinError } from '../errors.ts';
import type { GeneratorRecord } from '../state/state-store.ts';

/** How long a generator has to answer, whole. */
export const GENERATOR_TIMEOUT_MS = 10_000;
/** Largest answer read from a generator. */
export const GENERATOR_MAX_RESPONSE_BYTES = 1024 * 1024;

export interface GeneratorTable {
  name: string;
  columns: { name: string; type: string }[];
}

/** What a generator is sent (POST, JSON). */
export interface GeneratorInput {
  input: string;
  params: Record<string, unknown>;
  tables: GeneratorTable[];
}

export interface GeneratorCallOptions {
  timeoutMs?: number;
  maxResponseBytes?: number;
  /** Where keyEnv is looked up; default process.env. */
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

const LINK_LOCAL = new BlockList();
LINK_LOCAL.addSubnet('169.254.0.0', 16, 'ipv4');
LINK_LOCAL.addSubnet('fe80::', 10, 'ipv6');
LINK_LOCAL.addAddress('fd00:ec2::254', 'ipv6');

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('0.0.0.0', 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');
LOOPBACK.addAddress('::', 'ipv6');

/** An address as BlockList checks it: IPv4-mapped IPv6 (::ffff:169.254.169.254) as the IPv4 address it is. */
function plain(address: string): { address: string; family: 'ipv4' | 'ipv6' } {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped) return { address: mapped[1], family: 'ipv4' };
  return { address, family: isIP(address) === 6 ? 'ipv6' : 'ipv4' };
}

export function isLinkLocal(address: string): boolean {
  const a = plain(address);
  return LINK_LOCAL.check(a.address, a.family);
}

function isLoopback(address: string): boolean {
  const a = plain(address);
  return LOOPBACK.check(a.address, a.family);
}

/** The URL's host without IPv6 brackets. */
export function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1');
}

/** Whether the URL names loopback itself: localhost (or a name under .localhost) or a loopback address. */
export function namesLoopback(url: URL): boolean {
  const host = hostOf(url).toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  return isIP(host) !== 0 && isLoopback(host);
}

/**
 * A generator URL as it may be registered: http or https, no credentials in it (a token goes
 * in an environment variable, --key-env), and no literal link-local or metadata address.
 * 400 otherwise. Names are resolved and checked again at every call.
 */
export function checkGeneratorUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new PuffinError('bad_request', `generator url ${JSON.stringify(raw.slice(0, 100))} is not a URL (e.g. https://generator.example.com/sql)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new PuffinError('bad_request', `generator url must be http or https, got ${url.protocol.replace(/:$/, '')}`);
  if (url.username || url.password) throw new PuffinError('bad_request', 'generator url must not carry credentials; put a bearer token in an environment variable of the server and name it with keyEnv (--key-env)');
  const host = hostOf(url);
  if (isIP(host) !== 0 && isLinkLocal(host)) throw new PuffinError('bad_request', `generator url names ${host}, a link-local (instance metadata) address; those are refused`);
  return url;
}

function failed(name: string, why: string): PuffinError {
  return new PuffinError('bad_gateway', `query generator '${name}' ${why}`, { generator: name });
}

/**
 * A lookup that resolves `host` and refuses (before any connection) link-local addresses, and
 * loopback unless the registered URL named loopback. Node connects to what it answers.
 */
export function checkedLookup(allowLoopback: boolean, resolve: typeof dnsLookup = dnsLookup): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, '', 0);
      const bad = addresses.find((a) => isLinkLocal(a.address) || (!allowLoopback && isLoopback(a.address)));
      if (bad) {
        const kind = isLinkLocal(bad.address) ? 'a link-local (instance metadata) address' : 'a loopback address, allowed only for a generator registered with a loopback URL';
        return callback(Object.assign(new Error(`${hostname} resolves to ${bad.address}, ${kind}`), { code: 'PUFFINDB_REFUSED_ADDRESS' }), '', 0);
      }
      if (addresses.length === 0) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), '', 0);
      if ((options as { all?: boolean }).all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      callback(null, addresses[0].address, addresses[0].family);
    });
  };
}

/** Why a checked request failed, with a detail to put after the service's name. */
export type RequestFailure = 'too_large' | 'timeout' | 'broken' | 'refused' | 'unreachable' | 'cancelled';

export interface CheckedRequest {
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  payload?: Buffer;
  /** Whether loopback addresses may be connected to (the registered URL names loopback). */
  allowLoopback: boolean;
  /** For the whole answer. */
  timeoutMs: number;
  maxBytes: number;
  signal?: AbortSignal;
}

/**
 * One HTTP(S) request to a service an admin registered (a query generator, a remote
 * instance): resolved by checkedLookup and connected to the checked address, no agent, no
 * redirect followed, the answer read whole up to `maxBytes` within `timeoutMs`. Resolves with
 * any status; rejects with what `fail` makes of a failure.
 */
export function checkedRequest(url: URL, request: CheckedRequest, fail: (kind: RequestFailure, detail: string) => Error): Promise<{ status: number; contentType: string; body: Buffer }> {
  const { timeoutMs, maxBytes, signal } = request;
  // A literal address is not looked up by Node: checked here.
  const host = hostOf(url);
  if (isIP(host) !== 0 && (isLinkLocal(host) || (!request.allowLoopback && isLoopback(host)))) return Promise.reject(fail('refused', `url names ${host}, an address that is refused`));
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (err: Error | undefined, value?: { status: number; contentType: string; body: Buffer }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (err) {
        req.destroy();
        reject(err);
      } else resolve(value!);
    };
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(url, { method: request.method, headers: request.headers, lookup: checkedLookup(request.allowLoopback), agent: false }, (res: IncomingMessage) => {
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > maxBytes) return finish(fail('too_large', `answered ${declared} bytes, over the limit of ${maxBytes}`));
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) return finish(fail('too_large', `answered over ${maxBytes} bytes, the limit`));
        chunks.push(chunk);
      });
      res.on('end', () => finish(undefined, { status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), body: Buffer.concat(chunks) }));
      res.on('error', (err) => finish(fail('broken', `broke off its answer: ${err.message}`)));
    });
    const timer = setTimeout(() => finish(fail('timeout', `did not answer within ${timeoutMs} ms`)), timeoutMs);
    const onAbort = () => finish(fail('cancelled', 'was still answering when the request was cancelled'));
    req.on('error', (err: NodeJS.ErrnoException) => {
      finish(err.code === 'PUFFINDB_REFUSED_ADDRESS' ? fail('refused', `was not called: ${err.message}`) : fail('unreachable', `could not be reached at ${url.host}: ${err.message}`));
    });
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    req.end(request.payload);
  });
}

/** POST the input to the generator and return the SQL it answers; a failure of any kind is a 502 naming it. */
export async function callGenerator(generator: GeneratorRecord, body: GeneratorInput, options: GeneratorCallOptions = {}): Promise<string> {
  const { name } = generator;
  const timeoutMs = options.timeoutMs ?? GENERATOR_TIMEOUT_MS;
  const maxBytes = options.maxResponseBytes ?? GENERATOR_MAX_RESPONSE_BYTES;
  let url: URL;
  try {
    url = checkGeneratorUrl(generator.url);
  } catch (err) {
    throw failed(name, `has an unusable url: ${(err as Error).message}`);
  }
  const allowLoopback = namesLoopback(url);
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  if (generator.keyEnv) {
    const token = (options.env ?? process.env)[generator.keyEnv];
    if (!token) throw failed(name, `needs a token in the environment variable ${generator.keyEnv}, which the server does not have`);
    headers.authorization = `Bearer ${token}`;
  }
  const payload = Buffer.from(JSON.stringify(body));
  headers['content-length'] = String(payload.length);

  const answer = await checkedRequest(url, { method: 'POST', headers, payload, allowLoopback, timeoutMs, maxBytes, signal: options.signal }, (kind, detail) =>
    kind === 'cancelled' ? new PuffinError('bad_request', 'the request was cancelled while its query generator ran') : failed(name, detail));
  const text = answer.body.toString('utf8');
  if (answer.status < 200 || answer.status > 299) throw failed(name, `answered HTTP ${answer.status}${text ? `: ${text.slice(0, 200)}` : ''}`);

  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw failed(name, `answered something that is not JSON: ${JSON.stringify(text.slice(0, 100))}`);
  }
  const sql = (parsed as { sql?: unknown } | null)?.sql;
  if (typeof sql !== 'string' || sql.trim() === '') throw failed(name, 'answered JSON without a non-empty string "sql"');
  return sql;
}
