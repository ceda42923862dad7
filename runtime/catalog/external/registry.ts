// The external catalog registry: catalogs an admin adds (`puffindb catalog add`, POST
// /v1/catalogs) whose tables SQL names `CATALOG.namespace.table`. A record holds where the
// catalog is and how to authenticate, never a secret: tokens and client secrets are named by
// an environment variable of the server or a Secrets Manager ARN, read when the catalog is
// first used. Records are kept like views: one JSON document per name in a PointerStore
// (files under <home>/catalog/external-catalogs without Redis, a Redis hash with it), so a
// catalog the CLI adds is seen by a running server, and every server on one Redis shares them.
//
// Types (exact names):
//   rest          any Iceberg REST catalog (Polaris, Unity, Nessie, Lakekeeper, this project's /iceberg)
//   glue          AWS Glue's Iceberg REST endpoint (SigV4, service 'glue')
//   s3tables      Amazon S3 Tables' Iceberg REST endpoint (SigV4, service 's3tables')
//   glue-catalog  the classic AWS Glue Data Catalog API (GetTable's metadata_location,
//                 UpdateTable with a version check): openExternalPointerStore('glue', ...)
//   dynamodb      a DynamoDB table as the metadata-pointer store: openExternalPointerStore('dynamodb', ...)
//   postgres      Postgres in the schema of Iceberg's JDBC catalog: openExternalPointerStore('postgres', ...)

import { isIP } from 'node:net';
import { PuffinError } from '../../errors.ts';
import type { PointerStore } from '../iceberg/pointer-store.ts';

export const CATALOG_TYPES = ['rest', 'glue', 's3tables', 'glue-catalog', 'dynamodb', 'postgres'] as const;
export type ExternalCatalogType = (typeof CATALOG_TYPES)[number];

/** The types spoken over the Iceberg REST protocol. */
export const REST_TYPES: readonly ExternalCatalogType[] = ['rest', 'glue', 's3tables'];
/** The types whose catalog keeps only each table's metadata location (a PointerStore), by the name stores.ts knows them by. */
export const POINTER_STORE_TYPE = { 'glue-catalog': 'glue', dynamodb: 'dynamodb', postgres: 'postgres' } as const;

export type CatalogAuth = 'none' | 'bearer' | 'oauth2' | 'sigv4';

export interface CatalogRecord {
  /** Lower-case identifier; the first part of its tables' SQL names. */
  name: string;
  type: ExternalCatalogType;
  /** REST types: the catalog's base URL (the part before /v1/...). glue and s3tables default to the region's AWS endpoint. */
  uri?: string;
  /** REST types: the `warehouse` sent to GET /v1/config (Glue: a catalog id; S3 Tables: the table bucket ARN). */
  warehouse?: string;
  /** Where CREATE TABLE puts a new table's files: `${location}/${catalog}/${namespace}/${table}` (s3:// or file://). */
  location?: string;
  /** AWS region (glue, s3tables signing; glue-catalog, dynamodb). */
  region?: string;
  auth: CatalogAuth;
  /** bearer: the server's environment variable holding the token, or a Secrets Manager ARN. */
  tokenEnv?: string;
  tokenSecretArn?: string;
  /** oauth2 (client credentials): the token endpoint (default `${uri}/v1/oauth/tokens`), client id, the secret by reference, scope. */
  oauthTokenUrl?: string;
  clientId?: string;
  clientSecretEnv?: string;
  clientSecretArn?: string;
  scope?: string;
  /** Pointer-store types: the store's own options (e.g. table, endpoint), strings; secrets by reference only. */
  options?: Record<string, string>;
  createdAt: number;
}

/** What `catalog add` / POST /v1/catalogs take. */
export type CatalogInput = Omit<CatalogRecord, 'createdAt' | 'auth'> & { auth?: CatalogAuth };

/** Catalog names: a letter, then letters, digits and underscores; lower-cased; at most 63. */
export const CATALOG_NAME = /^[a-z][a-z0-9_]{0,62}$/;

/** Names SQL or this project already gives a meaning to. */
const RESERVED = new Set(['puffindb', 'main', 'memory', 'system', 'temp', 'information_schema', 'pg_catalog', 'default', 'iceberg']);

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const SECRET_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$/;
const OPTION_KEY = /^[a-z][a-zA-Z0-9_.-]{0,63}$/;
/** Option keys whose value would be a secret: refused, they must come by reference (…Env, …SecretArn). */
const SECRET_KEY = /(secret|password|passwd|token|credential|private|apikey|api_key|access_?key)(?!.*(env|arn)$)/i;

function bad(message: string): PuffinError {
  return new PuffinError('bad_request', message);
}

export function checkCatalogName(name: unknown): string {
  if (typeof name !== 'string' || !CATALOG_NAME.test(name.toLowerCase())) {
    throw bad(`catalog name ${JSON.stringify(String(name).slice(0, 64))} is not a catalog name (a letter, then letters, digits or '_', at most 63)`);
  }
  const lower = name.toLowerCase();
  if (RESERVED.has(lower)) throw bad(`'${lower}' is reserved and cannot name an external catalog`);
  return lower;
}

/** The eight 16-bit groups of an IPv6 address, or undefined. */
function ipv6Groups(h: string): number[] | undefined {
  let text = h;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = v4[1].split('.').map(Number);
    text = `${text.slice(0, -v4[1].length)}${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const part = (x: string | undefined) => (x ? x.split(':').map((g) => parseInt(g, 16)) : []);
  const a = part(head);
  const b = part(tail);
  const groups = tail === undefined ? a : [...a, ...new Array(8 - a.length - b.length).fill(0), ...b];
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined;
}

/** A link-local or instance-metadata address, in any of its IPv4 and IPv6 spellings (mapped, compatible, NAT64). */
export function isLinkLocalHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (isIP(h) === 4) return h.startsWith('169.254.');
  if (isIP(h) !== 6) return false;
  const g = ipv6Groups(h);
  if (!g) return false;
  if ((g[0] & 0xffc0) === 0xfe80) return true;
  if (g.join(':') === [0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254].join(':')) return true;
  const zeros = (n: number) => g.slice(0, n).every((x) => x === 0);
  const embedded = (zeros(5) && (g[5] === 0xffff || g[5] === 0)) || (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0));
  return embedded && g[6] >> 8 === 169 && (g[6] & 0xff) === 254;
}

/** An http(s) URL without credentials, not naming a link-local (instance metadata) address. */
export function checkCatalogUrl(raw: unknown, what: string): string {
  if (typeof raw !== 'string' || raw.length > 2048) throw bad(`${what} must be a URL of at most 2048 characters`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw bad(`${what} ${JSON.stringify(raw.slice(0, 100))} is not a URL (e.g. https://catalog.example.com/api/catalog)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw bad(`${what} must be http or https, got ${url.protocol.replace(/:$/, '')}`);
  if (url.username || url.password) throw bad(`${what} must not carry credentials; name the token with --token-env or --token-secret-arn`);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isLinkLocalHost(host)) throw bad(`${what} names ${host}, a link-local (instance metadata) address; those are refused`);
  if (url.search || url.hash) throw bad(`${what} must not have a query or fragment`);
  return url.toString().replace(/\/+$/, '');
}

function checkLocation(raw: unknown): string {
  if (typeof raw !== 'string' || !/^(s3|file):\/\/[^\s]+$/.test(raw) || raw.length > 1024) throw bad(`location must be an s3:// or file:// URI, got ${JSON.stringify(String(raw).slice(0, 100))}`);
  if (raw.split('/').some((p) => p === '..' || p === '.')) throw bad("location must not contain '.' or '..' segments");
  return raw.replace(/\/+$/, '');
}

function optionalString(v: unknown, what: string, max = 256): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string' || v.length > max) throw bad(`${what} must be a string of at most ${max} characters`);
  return v;
}

/** A record from what an admin gave: every field checked, no secret in plaintext. */
export function catalogRecord(input: CatalogInput, now = Date.now()): CatalogRecord {
  if (!input || typeof input !== 'object') throw bad('a catalog must be an object');
  const name = checkCatalogName(input.name);
  const type = input.type;
  if (!CATALOG_TYPES.includes(type)) throw bad(`unknown catalog type ${JSON.stringify(String(type).slice(0, 40))}; one of ${CATALOG_TYPES.join(', ')}`);
  const rest = REST_TYPES.includes(type);
  const record: CatalogRecord = { name, type, auth: 'none', createdAt: now };
  const region = optionalString(input.region, 'region', 32);
  if (region !== undefined && !/^[a-z]{2}(-[a-z]+)+-\d$/.test(region)) throw bad(`region ${JSON.stringify(region)} is not an AWS region name (e.g. us-east-1)`);
  if (region) record.region = region;
  if (input.uri !== undefined && input.uri !== '') record.uri = checkCatalogUrl(input.uri, 'uri');
  if (rest && !record.uri) {
    if (type === 'rest') throw bad("a 'rest' catalog needs uri, its base URL (e.g. https://polaris.example.com/api/catalog)");
    if (!region) throw bad(`a '${type}' catalog needs region (or uri)`);
    record.uri = type === 'glue' ? `https://glue.${region}.amazonaws.com/iceberg` : `https://s3tables.${region}.amazonaws.com/iceberg`;
  }
  if (!rest && record.uri) throw bad(`uri is for REST catalogs; a '${type}' catalog takes its connection in options`);
  const warehouse = optionalString(input.warehouse, 'warehouse', 512);
  if (warehouse) {
    if (!rest) throw bad(`warehouse is for REST catalogs; a '${type}' catalog takes location (where new tables go)`);
    record.warehouse = warehouse;
  }
  if (type === 's3tables' && !record.warehouse) throw bad("an 's3tables' catalog needs warehouse, the table bucket's ARN (arn:aws:s3tables:REGION:ACCOUNT:bucket/NAME)");
  if (input.location !== undefined && input.location !== '') record.location = checkLocation(input.location);

  // Authentication: sigv4 for the AWS endpoints, else bearer or oauth2 by what is given.
  const auth = input.auth ?? (type === 'glue' || type === 's3tables' ? 'sigv4' : input.clientId ? 'oauth2' : input.tokenEnv || input.tokenSecretArn ? 'bearer' : 'none');
  if (!['none', 'bearer', 'oauth2', 'sigv4'].includes(auth)) throw bad(`unknown auth ${JSON.stringify(String(auth).slice(0, 20))}; one of none, bearer, oauth2, sigv4`);
  if (!rest && auth !== 'none') throw bad(`auth is for REST catalogs; a '${type}' catalog authenticates with the server's AWS credentials or its options`);
  if (auth === 'sigv4' && !region && !(record.uri && /\.([a-z]{2}(-[a-z]+)+-\d)\.amazonaws\.com/.test(record.uri))) throw bad('sigv4 needs region');
  record.auth = auth;
  const envOrArn = (env: unknown, arn: unknown, what: string): { env?: string; arn?: string } => {
    const e = optionalString(env, `${what} environment variable`, 128);
    const a = optionalString(arn, `${what} secret ARN`, 2048);
    if (e !== undefined && !ENV_NAME.test(e)) throw bad(`${JSON.stringify(e.slice(0, 64))} is not an environment variable name (the ${what} is named, never given)`);
    if (a !== undefined && !SECRET_ARN.test(a)) throw bad(`${JSON.stringify(a.slice(0, 64))} is not a Secrets Manager secret ARN (the ${what} is named, never given)`);
    if (e && a) throw bad(`give the ${what} by one of an environment variable and a secret ARN`);
    return { env: e, arn: a };
  };
  const token = envOrArn(input.tokenEnv, input.tokenSecretArn, 'token');
  const client = envOrArn(input.clientSecretEnv, input.clientSecretArn, 'client secret');
  if (auth === 'bearer') {
    if (!token.env && !token.arn) throw bad('bearer auth needs tokenEnv (--token-env VAR) or tokenSecretArn (--token-secret-arn ARN)');
    if (token.env) record.tokenEnv = token.env;
    if (token.arn) record.tokenSecretArn = token.arn;
  } else if (token.env || token.arn) throw bad(`tokenEnv and tokenSecretArn go with bearer auth, not ${auth}`);
  if (auth === 'oauth2') {
    const clientId = optionalString(input.clientId, 'clientId', 256);
    if (!clientId) throw bad('oauth2 needs clientId (--client-id)');
    if (!client.env && !client.arn) throw bad('oauth2 needs clientSecretEnv (--client-secret-env VAR) or clientSecretArn (--client-secret-arn ARN)');
    record.clientId = clientId;
    if (client.env) record.clientSecretEnv = client.env;
    if (client.arn) record.clientSecretArn = client.arn;
    if (input.oauthTokenUrl) record.oauthTokenUrl = checkCatalogUrl(input.oauthTokenUrl, 'oauthTokenUrl');
    const scope = optionalString(input.scope, 'scope', 256);
    if (scope) record.scope = scope;
  } else if (input.clientId || client.env || client.arn || input.oauthTokenUrl) throw bad(`clientId, clientSecretEnv/Arn and oauthTokenUrl go with oauth2 auth, not ${auth}`);

  if (input.options !== undefined) {
    if (rest) throw bad(`options are for the pointer-store catalogs (${Object.keys(POINTER_STORE_TYPE).join(', ')})`);
    if (typeof input.options !== 'object' || input.options === null || Array.isArray(input.options)) throw bad('options must be an object of strings');
    const options: Record<string, string> = {};
    for (const [k, v] of Object.entries(input.options)) {
      if (!OPTION_KEY.test(k)) throw bad(`option name ${JSON.stringify(k.slice(0, 64))} is not an option name`);
      if (typeof v !== 'string' || v.length > 1024) throw bad(`option ${k} must be a string of at most 1024 characters`);
      if (SECRET_KEY.test(k)) throw bad(`option ${k} would hold a secret in plaintext; name it instead (${k}Env for an environment variable, ${k}SecretArn for a Secrets Manager ARN)`);
      if (/^[a-z][a-z0-9+.-]*:\/\/[^/@\s]*:[^/@\s]*@/i.test(v)) throw bad(`option ${k} carries credentials in a URL; name them by an environment variable or a secret ARN`);
      options[k] = v;
    }
    if (Object.keys(options).length) record.options = options;
  }
  return record;
}

/** The record as the API and `catalog list` show it (it holds no secret; references are shown). */
export function catalogView(r: CatalogRecord): Record<string, unknown> {
  return { ...r, ...(r.options ? { options: { ...r.options } } : {}) };
}

/** Registered catalogs, one JSON document per name (see the header). */
export class CatalogRegistry {
  constructor(readonly store: PointerStore) {}

  async list(): Promise<CatalogRecord[]> {
    return (await this.store.list()).map((p) => JSON.parse(p.metadataLocation) as CatalogRecord).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async get(name: string): Promise<CatalogRecord | undefined> {
    if (!CATALOG_NAME.test(name)) return undefined;
    const text = await this.store.get(name);
    return text === undefined ? undefined : (JSON.parse(text) as CatalogRecord);
  }

  /** Add, or replace when `replace`; a name in use without it is a conflict. */
  async put(record: CatalogRecord, replace = false): Promise<void> {
    const current = await this.store.get(record.name);
    if (current !== undefined && !replace) throw new PuffinError('conflict', `catalog '${record.name}' already exists; remove it first (or replace it)`);
    if (!(await this.store.compareAndSwap(record.name, current, JSON.stringify(record)))) throw new PuffinError('conflict', `catalog '${record.name}' changed while being added; try again`);
  }

  async remove(name: string): Promise<boolean> {
    const key = checkCatalogName(name);
    const current = await this.store.get(key);
    if (current === undefined) return false;
    if (!(await this.store.remove(key, current))) throw new PuffinError('conflict', `catalog '${key}' changed while being removed; try again`);
    return true;
  }
}
