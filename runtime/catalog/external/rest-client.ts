// A client of the Iceberg REST catalog protocol (apache/iceberg open-api/rest-catalog-open-api.yaml):
// GET /v1/config (prefix, defaults, overrides, endpoints), namespaces, tables, loadTable,
// create, register, commit (requirements + updates) and drop.
//
// Authentication: none; a static bearer token (read from an environment variable or Secrets
// Manager when first needed, never stored); OAuth2 client credentials (POSTed to the token
// endpoint, the token kept until shortly before it expires and fetched again after a 401);
// or AWS SigV4 (service 'glue' for Glue's Iceberg endpoint, 's3tables' for S3 Tables),
// signed with the AWS SDK's signer and the server's AWS credentials.
//
// Quirks handled: Glue answers some endpoints it does not implement with HTTP 200 and an
// error body (a 2xx whose JSON is an `error` object is that error); Glue and S3 Tables
// publish no `endpoints` list in /v1/config, so an endpoint not listed is tried, and one
// answered "not implemented" (404 without a NoSuch* type, 405, 406, 501, or an
// UnsupportedOperation/NotImplemented error) is remembered as missing for this client.

import { createHash, createHmac } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { PuffinError, type ErrorCode } from '../../errors.ts';
import { checkedLookup } from '../../sql/generators.ts';
import { quoteBigIntegers } from '../iceberg/metadata.ts';
import { isLinkLocalHost, type CatalogRecord } from './registry.ts';

export type Json = Record<string, unknown>;

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface HttpRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
}

/** How requests are sent (a test may record them); default: node:http(s) with link-local addresses refused. */
export type HttpSend = (req: HttpRequest, timeoutMs: number) => Promise<HttpResponse>;

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface RestClientOptions {
  send?: HttpSend;
  timeoutMs?: number;
  /** Environment the token and client-secret variables are read from (default process.env). */
  env?: Record<string, string | undefined>;
  /** Reads a Secrets Manager secret (default: runtime/state/secrets.ts). */
  readSecret?: (arn: string, region: string) => Promise<string>;
  /** AWS credentials for SigV4 (default: the SDK's provider chain). */
  credentials?: () => Promise<AwsCredentials>;
  /** The signer's clock (tests). */
  now?: () => Date;
}

export interface CatalogConfig {
  prefix: string;
  defaults: Record<string, string>;
  overrides: Record<string, string>;
  /** undefined: the catalog did not publish them (Glue, S3 Tables): probed. */
  endpoints?: string[];
}

export interface LoadTableResult {
  metadataLocation: string;
  /** The metadata object as the catalog sent it (big numbers kept as text by the parser). */
  metadataText: string;
  config: Record<string, string>;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

/** The service SigV4 signs for, by catalog type. */
export function sigv4Service(type: CatalogRecord['type']): 'glue' | 's3tables' | undefined {
  return type === 'glue' ? 'glue' : type === 's3tables' ? 's3tables' : undefined;
}

/** The default sender: node:http(s), link-local addresses refused before connecting, size bound. */
export const nodeSend: HttpSend = (req, timeoutMs) =>
  new Promise((resolve, reject) => {
    const url = new URL(req.url);
    // A literal address is not looked up (checkedLookup never sees it): checked here.
    if (isLinkLocalHost(url.hostname)) return reject(new PuffinError('access_denied', `catalog at ${url.host} was not called: a link-local (instance metadata) address`));
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const r = send(url, { method: req.method, headers: req.headers, lookup: checkedLookup(true), agent: false, timeout: timeoutMs }, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_RESPONSE_BYTES) {
          r.destroy();
          reject(new PuffinError('bad_gateway', `catalog at ${url.host} answered over ${MAX_RESPONSE_BYTES} bytes`));
        } else chunks.push(c);
      });
      res.on('end', () => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
        resolve({ status: res.statusCode ?? 0, headers, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', (err) => reject(new PuffinError('unavailable', `catalog at ${url.host} broke off its answer: ${err.message}`)));
    });
    r.on('timeout', () => r.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    r.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ETIMEDOUT') reject(new PuffinError('timeout', `catalog at ${url.host} did not answer within ${timeoutMs} ms`));
      else if (err.code === 'PUFFINDB_REFUSED_ADDRESS') reject(new PuffinError('access_denied', `catalog at ${url.host} was not called: ${err.message}`));
      else reject(new PuffinError('unavailable', `catalog at ${url.host} cannot be reached: ${err.message}`));
    });
    r.end(req.body);
  });

/** node:crypto as the signer's hash (the SDK's Checksum interface: HMAC when given a secret). */
class NodeSha256 {
  private readonly hash;
  constructor(secret?: string | Uint8Array) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', secret);
  }
  update(data: string | Uint8Array): void {
    this.hash.update(data);
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
  reset(): void {
    throw new Error('not resettable');
  }
}

/** Sign `req` for AWS service `service` in `region` (adds authorization, x-amz-date, x-amz-content-sha256, and x-amz-security-token with a session). */
export async function signRequest(req: HttpRequest, service: string, region: string, credentials: AwsCredentials, now?: Date): Promise<HttpRequest> {
  // The AWS SDK's signer loads only where a catalog is signed for.
  const { SignatureV4 } = await import('@smithy/signature-v4');
  const signer = new SignatureV4({ service, region, credentials, sha256: NodeSha256 as never, applyChecksum: true, uriEscapePath: true });
  const url = new URL(req.url);
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of url.searchParams) {
    const prev = query[k];
    query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  const headers: Record<string, string> = { ...req.headers, host: url.host };
  const payloadHash = createHash('sha256').update(req.body ?? '').digest('hex');
  headers['x-amz-content-sha256'] = payloadHash;
  const signed = await signer.sign(
    { method: req.method, protocol: url.protocol, hostname: url.hostname, port: url.port ? Number(url.port) : undefined, path: url.pathname, query, headers, body: req.body },
    now ? { signingDate: now } : {},
  );
  return { ...req, headers: signed.headers as Record<string, string> };
}

async function defaultCredentials(): Promise<AwsCredentials> {
  const { defaultProvider } = await import('@aws-sdk/credential-provider-node');
  return defaultProvider()();
}

function statusCode(status: number): ErrorCode {
  if (status === 400 || status === 422) return 'bad_request';
  if (status === 401) return 'unauthorized';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not_found';
  if (status === 406 || status === 405 || status === 501) return 'unsupported';
  if (status === 409) return 'conflict';
  if (status === 408 || status === 504) return 'timeout';
  if (status === 429) return 'rate_limited';
  if (status >= 500) return 'unavailable';
  return 'bad_gateway';
}

/** An error the catalog answered: its status, Iceberg error type and message. */
export class CatalogError extends PuffinError {
  constructor(
    readonly catalog: string,
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    // The catalog's 401/403 is about our credentials there, not the caller's: a 502 says so.
    super(status === 401 || status === 403 ? 'bad_gateway' : statusCode(status), `catalog '${catalog}': ${type ? `${type}: ` : ''}${message}`, { catalog, status, icebergType: type });
  }

  /** The endpoint is not implemented (rather than: the thing it names does not exist). */
  get notImplemented(): boolean {
    if (this.status === 405 || this.status === 406 || this.status === 501) return true;
    if (/NotImplemented|UnsupportedOperation|NotSupported/i.test(this.type)) return true;
    return this.status === 404 && !/^NoSuch/.test(this.type);
  }
}

/** A JSON error object {error: {message, type, code}}, or undefined. */
function errorObject(body: unknown): { message: string; type: string; code?: number } | undefined {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return undefined;
  const e = (body as Json).error;
  if (!e || typeof e !== 'object') return undefined;
  const o = e as Json;
  return { message: typeof o.message === 'string' ? o.message : JSON.stringify(o).slice(0, 300), type: typeof o.type === 'string' ? o.type : '', code: typeof o.code === 'number' ? o.code : undefined };
}

function encodeNamespace(ns: string[]): string {
  return encodeURIComponent(ns.join('\u001f'));
}

export class RestCatalogClient {
  private configured?: Promise<CatalogConfig>;
  /** Endpoints found missing ("GET /v1/{prefix}/..."): not tried again. */
  private readonly missing = new Set<string>();
  private oauth?: { token: string; expiresAt: number };
  private bearer?: Promise<string>;
  private readonly send: HttpSend;
  private readonly timeoutMs: number;

  constructor(
    readonly record: CatalogRecord,
    private readonly options: RestClientOptions = {},
  ) {
    this.send = options.send ?? nodeSend;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  private get base(): string {
    return this.record.uri!.replace(/\/+$/, '');
  }

  private env(name: string): string {
    const v = (this.options.env ?? process.env)[name];
    if (!v) throw new PuffinError('bad_gateway', `catalog '${this.record.name}' needs the environment variable ${name}, which the server does not have`);
    return v;
  }

  private async secret(arn: string): Promise<string> {
    if (this.options.readSecret) return this.options.readSecret(arn, this.record.region ?? 'us-east-1');
    const { readSecretString } = await import('../../state/secrets.ts');
    return readSecretString(arn, this.record.region ?? process.env.AWS_REGION ?? 'us-east-1', { what: `catalog '${this.record.name}''s credential` });
  }

  private region(): string {
    return this.record.region ?? /\.([a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com/.exec(this.record.uri ?? '')?.[1] ?? 'us-east-1';
  }

  private async oauthToken(refresh: boolean): Promise<string> {
    if (!refresh && this.oauth && this.oauth.expiresAt > Date.now()) return this.oauth.token;
    const r = this.record;
    const secret = r.clientSecretEnv ? this.env(r.clientSecretEnv) : await this.secret(r.clientSecretArn!);
    const url = r.oauthTokenUrl ?? `${this.base}/v1/oauth/tokens`;
    const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: r.clientId!, client_secret: secret, scope: r.scope ?? 'catalog' });
    const res = await this.send({ method: 'POST', url, headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body: form.toString() }, this.timeoutMs);
    let parsed: Json = {};
    try {
      parsed = JSON.parse(res.body) as Json;
    } catch {
      /* reported below */
    }
    if (res.status < 200 || res.status > 299 || typeof parsed.access_token !== 'string') {
      const why = typeof parsed.error_description === 'string' ? parsed.error_description : typeof parsed.error === 'string' ? parsed.error : `HTTP ${res.status}`;
      throw new PuffinError('bad_gateway', `catalog '${r.name}': the OAuth2 token endpoint refused the client credentials (${why})`);
    }
    const expiresIn = typeof parsed.expires_in === 'number' ? parsed.expires_in : 3600;
    // Kept until 30 s (or a tenth of its life) before it expires.
    this.oauth = { token: parsed.access_token, expiresAt: Date.now() + Math.max(1, expiresIn - Math.min(30, expiresIn / 10)) * 1000 };
    return this.oauth.token;
  }

  private async authorize(req: HttpRequest, refresh: boolean): Promise<HttpRequest> {
    const r = this.record;
    switch (r.auth) {
      case 'none':
        return req;
      case 'bearer': {
        if (refresh || !this.bearer) {
          this.bearer = r.tokenEnv ? Promise.resolve(this.env(r.tokenEnv)) : this.secret(r.tokenSecretArn!);
          this.bearer.catch(() => (this.bearer = undefined));
        }
        return { ...req, headers: { ...req.headers, authorization: `Bearer ${await this.bearer}` } };
      }
      case 'oauth2':
        return { ...req, headers: { ...req.headers, authorization: `Bearer ${await this.oauthToken(refresh)}` } };
      case 'sigv4': {
        const credentials = await (this.options.credentials ?? defaultCredentials)();
        return signRequest(req, sigv4Service(r.type) ?? 'execute-api', this.region(), credentials, this.options.now?.());
      }
    }
  }

  /** One call: JSON in and out; a non-2xx answer, or a 2xx whose body is an error object, throws CatalogError. */
  async call(method: string, path: string, body?: unknown, query?: Record<string, string>): Promise<Json | undefined> {
    const url = new URL(`${this.base}${path}`);
    for (const [k, v] of Object.entries(query ?? {})) url.searchParams.set(k, v);
    const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (text !== undefined) headers['content-type'] = 'application/json';
    const plain: HttpRequest = { method, url: url.toString(), headers, ...(text !== undefined ? { body: text } : {}) };
    let res = await this.send(await this.authorize(plain, false), this.timeoutMs);
    if (res.status === 401 && (this.record.auth === 'oauth2' || this.record.auth === 'bearer')) res = await this.send(await this.authorize(plain, true), this.timeoutMs);
    let parsed: unknown;
    if (res.body.trim() !== '') {
      try {
        parsed = JSON.parse(quoteBigIntegers(res.body));
      } catch {
        if (res.status >= 200 && res.status <= 299) throw new PuffinError('bad_gateway', `catalog '${this.record.name}' answered ${method} ${url.pathname} with something that is not JSON`);
      }
    }
    const err = errorObject(parsed);
    if (res.status < 200 || res.status > 299 || err) {
      // Glue: HTTP 200 with an error body stands for the error the body names.
      const status = res.status >= 200 && res.status <= 299 ? (err?.code ?? 500) : res.status;
      throw new CatalogError(this.record.name, status, err?.type ?? '', err?.message ?? `HTTP ${res.status}${res.body ? `: ${res.body.slice(0, 200)}` : ''}`);
    }
    return parsed as Json | undefined;
  }

  /** GET /v1/config, once (with `warehouse` when registered): the prefix and the published endpoints. */
  config(): Promise<CatalogConfig> {
    this.configured ??= (async () => {
      const answer = (await this.call('GET', '/v1/config', undefined, this.record.warehouse ? { warehouse: this.record.warehouse } : undefined)) ?? {};
      const map = (v: unknown): Record<string, string> => {
        const out: Record<string, string> = {};
        if (v && typeof v === 'object') for (const [k, x] of Object.entries(v as Json)) if (typeof x === 'string') out[k] = x;
        return out;
      };
      const defaults = map(answer.defaults);
      const overrides = map(answer.overrides);
      const endpoints = Array.isArray(answer.endpoints) ? answer.endpoints.filter((e): e is string => typeof e === 'string') : undefined;
      return { prefix: overrides.prefix ?? defaults.prefix ?? '', defaults, overrides, endpoints };
    })();
    this.configured.catch(() => (this.configured = undefined));
    return this.configured;
  }

  private async path(rest: string): Promise<string> {
    const { prefix } = await this.config();
    // As Iceberg's own clients do, the prefix goes in as the catalog gave it (S3 Tables gives an already-encoded ARN).
    const p = prefix.replace(/^\/+|\/+$/g, '');
    if (/[\s?#]|(^|\/)\.\.?(\/|$)/.test(p)) throw new PuffinError('bad_gateway', `catalog '${this.record.name}' gave an unusable prefix ${JSON.stringify(p.slice(0, 80))} in /v1/config`);
    return `/v1${p ? `/${p}` : ''}${rest}`;
  }

  /** Whether an endpoint ('POST /v1/{prefix}/namespaces/{namespace}/register') is there: listed, or not yet found missing. */
  async supports(endpoint: string): Promise<boolean> {
    if (this.missing.has(endpoint)) return false;
    const { endpoints } = await this.config();
    return endpoints === undefined || endpoints.includes(endpoint);
  }

  /** Call an endpoint that may be missing: undefined (and remembered) when the catalog does not implement it. */
  private async probe<T>(endpoint: string, fn: () => Promise<T>): Promise<{ value: T } | undefined> {
    if (!(await this.supports(endpoint))) return undefined;
    try {
      return { value: await fn() };
    } catch (err) {
      if (err instanceof CatalogError && err.notImplemented) {
        this.missing.add(endpoint);
        return undefined;
      }
      throw err;
    }
  }

  /** Which endpoints were found missing by probing. */
  missingEndpoints(): string[] {
    return [...this.missing].sort();
  }

  async listNamespaces(parent?: string[]): Promise<string[][]> {
    const out: string[][] = [];
    let pageToken: string | undefined;
    do {
      const q: Record<string, string> = {};
      if (parent?.length) q.parent = parent.join('\u001f');
      if (pageToken) q.pageToken = pageToken;
      const answer = (await this.call('GET', await this.path('/namespaces'), undefined, q)) ?? {};
      for (const n of Array.isArray(answer.namespaces) ? answer.namespaces : []) if (Array.isArray(n) && n.every((p) => typeof p === 'string')) out.push(n as string[]);
      pageToken = typeof answer['next-page-token'] === 'string' && answer['next-page-token'] ? answer['next-page-token'] : undefined;
    } while (pageToken);
    return out;
  }

  async listTables(ns: string[]): Promise<{ namespace: string[]; name: string }[]> {
    const out: { namespace: string[]; name: string }[] = [];
    let pageToken: string | undefined;
    do {
      const answer = (await this.call('GET', await this.path(`/namespaces/${encodeNamespace(ns)}/tables`), undefined, pageToken ? { pageToken } : undefined)) ?? {};
      for (const id of Array.isArray(answer.identifiers) ? answer.identifiers : []) {
        const o = id as Json;
        if (Array.isArray(o?.namespace) && typeof o.name === 'string') out.push({ namespace: o.namespace as string[], name: o.name });
      }
      pageToken = typeof answer['next-page-token'] === 'string' && answer['next-page-token'] ? answer['next-page-token'] : undefined;
    } while (pageToken);
    return out;
  }

  /** The table's current metadata location and metadata, or undefined when there is no such table (or namespace). */
  async loadTable(ns: string[], table: string): Promise<LoadTableResult | undefined> {
    let answer: Json | undefined;
    try {
      answer = await this.call('GET', await this.path(`/namespaces/${encodeNamespace(ns)}/tables/${encodeURIComponent(table)}`));
    } catch (err) {
      if (err instanceof CatalogError && err.status === 404 && /^NoSuch/.test(err.type)) return undefined;
      if (err instanceof CatalogError && err.status === 404 && err.type === '') return undefined;
      throw err;
    }
    const location = answer?.['metadata-location'];
    if (typeof location !== 'string' || !answer?.metadata) throw new PuffinError('bad_gateway', `catalog '${this.record.name}' loaded table ${[...ns, table].join('.')} without a metadata-location`);
    const config: Record<string, string> = {};
    if (answer.config && typeof answer.config === 'object') for (const [k, v] of Object.entries(answer.config as Json)) if (typeof v === 'string') config[k] = v;
    return { metadataLocation: location, metadataText: JSON.stringify(answer.metadata), config };
  }

  /** Register an existing metadata file as a new table; false when the catalog has no register endpoint. */
  async registerTable(ns: string[], table: string, metadataLocation: string): Promise<boolean> {
    const got = await this.probe('POST /v1/{prefix}/namespaces/{namespace}/register', async () => this.call('POST', await this.path(`/namespaces/${encodeNamespace(ns)}/register`), { name: table, 'metadata-location': metadataLocation }));
    return got !== undefined;
  }

  async createTable(ns: string[], body: Json): Promise<LoadTableResult> {
    const answer = await this.call('POST', await this.path(`/namespaces/${encodeNamespace(ns)}/tables`), body);
    const location = answer?.['metadata-location'];
    if (typeof location !== 'string') throw new PuffinError('bad_gateway', `catalog '${this.record.name}' created a table without answering its metadata-location`);
    return { metadataLocation: location, metadataText: JSON.stringify(answer?.metadata ?? {}), config: {} };
  }

  /** POST .../tables/{t} with requirements and updates: the new metadata location. A failed requirement is a CatalogError with status 409. */
  async commitTable(ns: string[], table: string, requirements: Json[], updates: Json[], bodyText?: string): Promise<string> {
    const body = bodyText ?? JSON.stringify({ identifier: { namespace: ns, name: table }, requirements, updates });
    const answer = await this.call('POST', await this.path(`/namespaces/${encodeNamespace(ns)}/tables/${encodeURIComponent(table)}`), body);
    const location = answer?.['metadata-location'];
    if (typeof location !== 'string') throw new PuffinError('bad_gateway', `catalog '${this.record.name}' committed to ${[...ns, table].join('.')} without answering the new metadata-location`);
    return location;
  }

  /** DELETE .../tables/{t}: `purge` is what purgeRequested says (S3 Tables needs true, Glue refuses true). */
  async dropTable(ns: string[], table: string, purge: boolean): Promise<boolean> {
    try {
      await this.call('DELETE', await this.path(`/namespaces/${encodeNamespace(ns)}/tables/${encodeURIComponent(table)}`), undefined, { purgeRequested: String(purge) });
      return true;
    } catch (err) {
      if (err instanceof CatalogError && err.status === 404 && /^NoSuch/.test(err.type)) return false;
      throw err;
    }
  }
}
