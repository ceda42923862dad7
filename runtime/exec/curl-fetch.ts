// The HTTP fetch behind the curl() table function (runtime/exec/curl.ts), with the rules that
// keep it from being a server-side request forgery tool (docs/ARCHITECTURE.md, "curl()"):
//
// - only URLs under a prefix the admin allowed (PUFFINDB_CURL_ALLOW) are fetched, and only
//   http / https;
// - redirects are followed here, one hop at a time, each hop checked like the first URL;
// - the host is resolved (every address) before connecting, and the connection goes to the
//   address that was checked (so a second DNS answer cannot rebind it elsewhere);
// - link-local and instance-metadata addresses are never fetched; loopback only when an
//   allowed prefix names a loopback host itself;
// - the body is bounded in bytes and in time (the query's deadline too).

import { lookup as dnsLookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { PuffinError } from '../errors.ts';

/** Largest body curl() reads: 256 MiB. */
export const CURL_MAX_BYTES = 256 * 1024 * 1024;
/** Longest a fetch may take (the query's deadline may be sooner): 30 s. */
export const CURL_TIMEOUT_MS = 30_000;
/** Redirect hops followed before giving up. */
const MAX_REDIRECTS = 5;

export type Resolver = (host: string) => Promise<{ address: string; family: number }[]>;

export interface CurlFetchOptions {
  /** PUFFINDB_CURL_ALLOW: URL prefixes that may be fetched. */
  allow: readonly string[];
  maxBytes?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Resolves a host name to every address (default: node:dns lookup, all: true). Tests inject their own. */
  resolve?: Resolver;
}

export interface Fetched {
  /** The URL the body came from (after redirects). */
  url: string;
  contentType: string;
  body: Buffer;
}

const defaultResolve: Resolver = (host) => dnsLookup(host, { all: true, verbatim: true });

/** The allowed prefixes, normalized as URLs; a malformed entry is ignored. */
function normalizedPrefixes(allow: readonly string[]): URL[] {
  const out: URL[] = [];
  for (const raw of allow) {
    try {
      const u = new URL(raw);
      if (u.protocol === 'http:' || u.protocol === 'https:') out.push(u);
    } catch {
      // not a URL: allows nothing
    }
  }
  return out;
}

/** Does `url` lie under `prefix` (same origin; the path starts with the prefix's, at a segment boundary when the prefix does not end with '/')? */
function underPrefix(url: URL, prefix: URL): boolean {
  if (url.protocol !== prefix.protocol || url.host !== prefix.host) return false;
  const p = prefix.href.slice(prefix.origin.length);
  const rest = url.href.slice(url.origin.length);
  if (!rest.startsWith(p)) return false;
  if (p.endsWith('/') || rest.length === p.length) return true;
  return /[/?#]/.test(rest[p.length]);
}

/** The prefix `url` is allowed by, or an access_denied error naming the setting. */
export function checkAllowed(raw: string, allow: readonly string[]): { url: URL; loopbackAllowed: boolean } {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new PuffinError('bad_request', `curl(): '${raw}' is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new PuffinError('access_denied', `curl() fetches http and https URLs only, not ${url.protocol}`);
  if (url.username || url.password) throw new PuffinError('access_denied', 'curl(): URLs with credentials are not fetched');
  const prefixes = normalizedPrefixes(allow);
  if (prefixes.length === 0) throw new PuffinError('access_denied', `curl() is not enabled: the admin lists the URL prefixes it may fetch in PUFFINDB_CURL_ALLOW (nothing is allowed by default)`);
  const match = prefixes.find((p) => underPrefix(url, p));
  if (!match) throw new PuffinError('access_denied', `curl(): ${url.origin}${url.pathname} is not under a URL prefix allowed by PUFFINDB_CURL_ALLOW`);
  return { url, loopbackAllowed: isLoopbackHost(match.hostname) };
}

function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  return isIP(h) !== 0 && addressClass(h) === 'loopback';
}

/** An IPv6 address as 8 16-bit groups (undefined when it does not parse). */
function ipv6Groups(address: string): number[] | undefined {
  let a = address.toLowerCase().split('%')[0];
  // A dotted IPv4 tail (::ffff:1.2.3.4) becomes two groups.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (dotted) {
    const o = dotted[1].split('.').map(Number);
    if (o.some((x) => x > 255)) return undefined;
    a = `${a.slice(0, -dotted[1].length)}${((o[0] << 8) | o[1]).toString(16)}:${((o[2] << 8) | o[3]).toString(16)}`;
  }
  const halves = a.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 0) return undefined;
  const groups = [...head, ...Array(halves.length === 2 ? missing : 0).fill('0'), ...tail].map((g) => parseInt(g, 16));
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined;
}

/** What kind of address this is, for the SSRF rules. */
export function addressClass(address: string): 'link-local' | 'loopback' | 'unspecified' | 'ok' {
  let v4: number[] | undefined;
  if (isIP(address) === 4) v4 = address.split('.').map(Number);
  else {
    const g = ipv6Groups(address);
    if (!g) return 'link-local'; // unparseable: treated as the worst case
    const zeros5 = g.slice(0, 5).every((x) => x === 0);
    // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d) forms are the IPv4 address.
    if (zeros5 && (g[5] === 0xffff || (g[5] === 0 && (g[6] !== 0 || g[7] > 1)))) v4 = [g[6] >> 8, g[6] & 0xff, g[7] >> 8, g[7] & 0xff];
    else {
      if (g.every((x) => x === 0)) return 'unspecified';
      if (g.slice(0, 7).every((x) => x === 0) && g[7] === 1) return 'loopback';
      if ((g[0] & 0xffc0) === 0xfe80) return 'link-local';
      // The EC2 instance metadata service's IPv6 address.
      if (g[0] === 0xfd00 && g[1] === 0x0ec2 && g.slice(2, 7).every((x) => x === 0) && g[7] === 0x254) return 'link-local';
      // NAT64 (64:ff9b::/96) of a link-local IPv4 address.
      if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0)) v4 = [g[6] >> 8, g[6] & 0xff, g[7] >> 8, g[7] & 0xff];
      else return 'ok';
    }
  }
  if (v4[0] === 169 && v4[1] === 254) return 'link-local';
  if (v4[0] === 127) return 'loopback';
  if (v4[0] === 0) return 'unspecified';
  return 'ok';
}

/** Resolve the URL's host and check every address; the one to connect to. */
async function checkedAddress(url: URL, loopbackAllowed: boolean, resolve: Resolver): Promise<{ address: string; family: number }> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const addresses = isIP(host) ? [{ address: host, family: isIP(host) }] : await resolve(host).catch((err: Error) => {
    throw new PuffinError('bad_request', `curl(): cannot resolve ${host}: ${err.message}`);
  });
  if (addresses.length === 0) throw new PuffinError('bad_request', `curl(): ${host} has no address`);
  for (const a of addresses) {
    const kind = addressClass(a.address);
    if (kind === 'link-local') throw new PuffinError('access_denied', `curl(): ${host} resolves to a link-local or instance-metadata address, which is never fetched`);
    if (kind === 'unspecified') throw new PuffinError('access_denied', `curl(): ${host} resolves to an unspecified address, which is never fetched`);
    if (kind === 'loopback' && !loopbackAllowed) throw new PuffinError('access_denied', `curl(): ${host} resolves to a loopback address, fetched only when PUFFINDB_CURL_ALLOW names a loopback prefix`);
  }
  return addresses[0];
}

/**
 * GET `raw` under the rules above; the body, its content type and final URL. Errors:
 * access_denied (not allowed, a redirect out, a forbidden address), payload_too_large,
 * timeout, bad_request (an HTTP error status, a malformed URL).
 */
export async function curlFetch(raw: string, options: CurlFetchOptions): Promise<Fetched> {
  const maxBytes = options.maxBytes ?? CURL_MAX_BYTES;
  const timeoutMs = options.timeoutMs ?? CURL_TIMEOUT_MS;
  const resolve = options.resolve ?? defaultResolve;
  const deadline = Date.now() + timeoutMs;
  let current = raw;
  for (let hop = 0; ; hop++) {
    const { url, loopbackAllowed } = checkAllowed(current, options.allow);
    const target = await checkedAddress(url, loopbackAllowed, resolve);
    const res = await getOnce(url, target, { maxBytes, deadline, timeoutMs, signal: options.signal });
    if (res.status >= 300 && res.status < 400 && res.location !== undefined) {
      if (hop >= MAX_REDIRECTS) throw new PuffinError('bad_request', `curl(): more than ${MAX_REDIRECTS} redirects from ${raw}`);
      let next: URL;
      try {
        next = new URL(res.location, url);
      } catch {
        throw new PuffinError('bad_request', `curl(): ${url.href} redirects to a malformed location`);
      }
      try {
        checkAllowed(next.href, options.allow);
      } catch (err) {
        if (err instanceof PuffinError && err.code === 'access_denied') throw new PuffinError('access_denied', `curl(): ${url.origin}${url.pathname} redirects to ${next.origin}${next.pathname}, which is not under a URL prefix allowed by PUFFINDB_CURL_ALLOW`);
        throw err;
      }
      current = next.href;
      continue;
    }
    if (res.status < 200 || res.status >= 300) throw new PuffinError(res.status >= 500 ? 'unavailable' : 'bad_request', `curl(): ${url.origin}${url.pathname} answered HTTP ${res.status}`);
    return { url: url.href, contentType: res.contentType, body: res.body! };
  }
}

interface Answer {
  status: number;
  location?: string;
  contentType: string;
  body?: Buffer;
}

function getOnce(url: URL, target: { address: string; family: number }, limits: { maxBytes: number; deadline: number; timeoutMs: number; signal?: AbortSignal }): Promise<Answer> {
  return new Promise((resolvePromise, reject) => {
    // Connect to the checked address, whatever a new DNS answer would say (rebinding).
    const lookup: LookupFunction = (_host, opts, callback) => {
      if ((opts as { all?: boolean }).all) (callback as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [target]);
      else callback(null, target.address, target.family);
    };
    const client = url.protocol === 'https:' ? https : http;
    let settled = false;
    const finish = (err: Error | undefined, value?: Answer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      limits.signal?.removeEventListener('abort', onAbort);
      if (err) {
        req.destroy();
        reject(err);
      } else resolvePromise(value!);
    };
    const remaining = limits.deadline - Date.now();
    const timer = setTimeout(() => finish(new PuffinError('timeout', `curl(): ${url.origin}${url.pathname} did not answer within ${limits.timeoutMs} ms`)), Math.max(0, remaining));
    const onAbort = () => finish(limits.signal?.reason instanceof Error ? limits.signal.reason : new PuffinError('timeout', 'curl(): the query was stopped'));
    const req = client.request(url, { method: 'GET', lookup, headers: { accept: 'application/json, application/x-ndjson, text/csv, application/vnd.apache.parquet, */*;q=0.5', 'user-agent': 'PuffinDB-curl' } }, (res) => {
      const status = res.statusCode ?? 0;
      const contentType = String(res.headers['content-type'] ?? '');
      if (status >= 300 && status < 400 && res.headers.location !== undefined) {
        res.resume();
        finish(undefined, { status, location: res.headers.location, contentType });
        return;
      }
      if (status < 200 || status >= 300) {
        res.resume();
        finish(undefined, { status, contentType });
        return;
      }
      const declared = Number(res.headers['content-length']);
      const tooLarge = () => new PuffinError('payload_too_large', `curl(): ${url.origin}${url.pathname} is larger than the ${limits.maxBytes} bytes curl() reads`);
      if (Number.isFinite(declared) && declared > limits.maxBytes) {
        finish(tooLarge());
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > limits.maxBytes) finish(tooLarge());
        else chunks.push(chunk);
      });
      res.on('end', () => finish(undefined, { status, contentType, body: Buffer.concat(chunks) }));
      res.on('error', (err) => finish(new PuffinError('bad_request', `curl(): reading ${url.origin}${url.pathname} failed: ${err.message}`)));
    });
    req.on('error', (err) => finish(new PuffinError('bad_request', `curl(): fetching ${url.origin}${url.pathname} failed: ${err.message}`)));
    if (limits.signal?.aborted) onAbort();
    else limits.signal?.addEventListener('abort', onAbort, { once: true });
    req.end();
  });
}
