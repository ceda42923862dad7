// The pointer stores behind the external catalogs whose tables' Iceberg metadata lives in the
// object store and whose catalog holds only each table's current metadata location: AWS Glue
// Data Catalog (GetTable's metadata_location, UpdateTable with a version check), DynamoDB
// (conditional writes) and Postgres in the schema of Iceberg's JDBC catalog. Each is a
// PointerStore, so the built-in commit path (one compare-and-swap per commit) serves them.
// Names are 'namespace.table', lower-case, as in the built-in catalog.
//
// Options are strings, as registered; secrets only by reference (an environment variable's
// name or a Secrets Manager ARN), never a value. Each store's SDK (or pg) loads only when a
// catalog of its type is opened, so the CLI's start time does not pay for it.

import { PuffinError } from '../../errors.ts';
import { pointerName } from '../iceberg/file-pointer-store.ts';
import type { PointerStore } from '../iceberg/pointer-store.ts';
import { isLinkLocalHost } from './registry.ts';

export type PointerCatalogType = 'glue' | 'dynamodb' | 'postgres';

/** A catalog's connection options as registered (strings; secrets by reference only). */
export type PointerCatalogOptions = Record<string, string>;

/** The options each type takes; any other key is refused (a typo would otherwise be ignored). */
export const POINTER_CATALOG_OPTIONS: Record<PointerCatalogType, { required: readonly string[]; optional: readonly string[] }> = {
  glue: { required: ['region'], optional: ['endpoint', 'catalogId'] },
  dynamodb: { required: ['table', 'region'], optional: ['endpoint', 'create'] },
  postgres: { required: ['url', 'catalogName'], optional: ['passwordEnv', 'passwordSecretArn'] },
};

/** A catalog's options, checked and typed; secrets still by reference. */
export type PointerCatalogConfig =
  | { type: 'glue'; region: string; endpoint?: string; catalogId?: string }
  | { type: 'dynamodb'; table: string; region: string; endpoint?: string; create: boolean }
  | { type: 'postgres'; url: string; catalogName: string; passwordEnv?: string; passwordSecretArn?: string };

/**
 * Check a catalog's options without connecting or reading a secret (for `catalog add`, so a
 * bad option is refused when registered, not at the first query): unknown, missing and
 * malformed options are a bad_request naming the option.
 */
export function checkPointerCatalogOptions(type: PointerCatalogType, options: PointerCatalogOptions): PointerCatalogConfig {
  const spec = Object.prototype.hasOwnProperty.call(POINTER_CATALOG_OPTIONS, type) ? POINTER_CATALOG_OPTIONS[type] : undefined;
  if (!spec) throw new PuffinError('bad_request', `unknown catalog type '${String(type).slice(0, 40)}': use one of ${Object.keys(POINTER_CATALOG_OPTIONS).join(', ')}`);
  const opts = checkOptions(type, options, spec);
  switch (type) {
    case 'glue':
      return {
        type,
        region: awsRegion(type, opts.region!),
        ...(opts.endpoint !== undefined ? { endpoint: endpointUrl(type, opts.endpoint) } : {}),
        ...(opts.catalogId !== undefined ? { catalogId: glueCatalogId(opts.catalogId) } : {}),
      };
    case 'dynamodb':
      return {
        type,
        table: dynamoTableName(opts.table!),
        region: awsRegion(type, opts.region!),
        ...(opts.endpoint !== undefined ? { endpoint: endpointUrl(type, opts.endpoint) } : {}),
        create: booleanOption(type, 'create', opts.create, false),
      };
    case 'postgres':
      if (opts.passwordEnv !== undefined && opts.passwordSecretArn !== undefined) {
        throw new PuffinError('bad_request', "catalog type 'postgres': give passwordEnv or passwordSecretArn, not both");
      }
      return {
        type,
        url: postgresUrl(opts.url!),
        catalogName: jdbcCatalogName(opts.catalogName!),
        ...(opts.passwordEnv !== undefined ? { passwordEnv: passwordEnvName(opts.passwordEnv) } : {}),
        ...(opts.passwordSecretArn !== undefined ? { passwordSecretArn: secretArn(opts.passwordSecretArn) } : {}),
      };
  }
}

export async function openExternalPointerStore(type: PointerCatalogType, options: PointerCatalogOptions): Promise<PointerStore> {
  const config = checkPointerCatalogOptions(type, options);
  switch (config.type) {
    case 'glue': {
      const { GlueDataCatalogStore } = await import('./glue-data-catalog-store.ts');
      const { type: _, ...glue } = config;
      return GlueDataCatalogStore.open(glue);
    }
    case 'dynamodb': {
      const { DynamoDbPointerStore } = await import('./dynamodb-pointer-store.ts');
      const { type: _, ...dynamo } = config;
      return DynamoDbPointerStore.open(dynamo);
    }
    case 'postgres': {
      const password = config.passwordEnv !== undefined
        ? passwordFromEnv(config.passwordEnv)
        : config.passwordSecretArn !== undefined ? await passwordFromSecret(config.passwordSecretArn) : undefined;
      const { PostgresPointerStore } = await import('./postgres-pointer-store.ts');
      return PostgresPointerStore.open({ url: config.url, catalogName: config.catalogName, ...(password !== undefined ? { password } : {}) });
    }
  }
}

/** A table's name split for a catalog that keeps namespace and table apart. */
export interface ExternalTableName {
  /** The stored, lower-case name: 'db.trips', 'a.b.trips'. */
  name: string;
  /** The namespace's levels joined by dots, as Iceberg's catalogs store it: 'db', 'a.b'. */
  namespace: string;
  table: string;
}

/**
 * Split `name` into namespace and table. External catalogs have no table outside a
 * namespace, so a bare name is refused; `maxLevels` bounds the namespace's depth (Glue's
 * databases are one level).
 */
export function splitTableName(name: string, what: string, maxLevels = Infinity): ExternalTableName {
  const stored = pointerName(name);
  const parts = stored.split('.');
  if (parts.length < 2) throw new PuffinError('bad_request', `table name '${stored}' in ${what} needs a namespace: use 'namespace.table'`);
  if (parts.length - 1 > maxLevels) {
    throw new PuffinError('bad_request', `table name '${stored}' in ${what} has ${parts.length - 1} namespace levels; at most ${maxLevels} (use 'database.table')`);
  }
  return { name: stored, namespace: parts.slice(0, -1).join('.'), table: parts[parts.length - 1]! };
}

/** Whether a name another engine wrote is one this catalog can address (lower-case identifiers). */
export function isAddressableName(name: string): boolean {
  try {
    return splitTableName(name, 'a catalog').name === name;
  } catch {
    return false;
  }
}

function checkOptions(type: PointerCatalogType, options: PointerCatalogOptions, spec: { required: readonly string[]; optional: readonly string[] }): Partial<Record<string, string>> {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new PuffinError('bad_request', `catalog type '${type}': options must be an object of strings`);
  }
  const known = new Set([...spec.required, ...spec.optional]);
  const out: Partial<Record<string, string>> = {};
  for (const [key, value] of Object.entries(options)) {
    if (!known.has(key)) {
      throw new PuffinError('bad_request', `catalog type '${type}' has no option '${key.slice(0, 60)}': its options are ${[...known].join(', ')}`);
    }
    if (typeof value !== 'string') throw new PuffinError('bad_request', `catalog type '${type}': option '${key}' must be a string`);
    out[key] = value;
  }
  for (const key of spec.required) {
    if (out[key] === undefined || out[key] === '') throw new PuffinError('bad_request', `catalog type '${type}' needs the option '${key}'`);
  }
  return out;
}

function awsRegion(type: PointerCatalogType, value: string): string {
  if (!/^[a-z]{2}(-[a-z]+)+-\d{1,2}$/.test(value)) {
    throw new PuffinError('bad_request', `catalog type '${type}': option 'region' is not an AWS region: '${value.slice(0, 40)}' (e.g. us-east-1)`);
  }
  return value;
}

function endpointUrl(type: PointerCatalogType, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new PuffinError('bad_request', `catalog type '${type}': option 'endpoint' is not a URL: '${value.slice(0, 80)}'`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new PuffinError('bad_request', `catalog type '${type}': option 'endpoint' must be an http(s) URL`);
  }
  if (url.username || url.password) throw new PuffinError('bad_request', `catalog type '${type}': option 'endpoint' must not carry credentials`);
  refuseLinkLocal(type, 'endpoint', url);
  return url.toString().replace(/\/$/, '');
}

/** Glue's catalog id: an account id, or a federated catalog under one ('123456789012:s3tablescatalog/bucket'). */
function glueCatalogId(value: string): string {
  if (!/^\d{12}(:[A-Za-z0-9_./-]{1,200})?$/.test(value)) {
    throw new PuffinError('bad_request', `catalog type 'glue': option 'catalogId' must be a 12-digit AWS account id (optionally ':' and a catalog path), not '${value.slice(0, 40)}'`);
  }
  return value;
}

function dynamoTableName(value: string): string {
  if (!/^[A-Za-z0-9_.-]{3,255}$/.test(value)) {
    throw new PuffinError('bad_request', `catalog type 'dynamodb': option 'table' is not a DynamoDB table name (3-255 of letters, digits, '_', '-', '.'): '${value.slice(0, 60)}'`);
  }
  return value;
}

function booleanOption(type: PointerCatalogType, key: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new PuffinError('bad_request', `catalog type '${type}': option '${key}' must be 'true' or 'false', not '${value.slice(0, 20)}'`);
}

function postgresUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new PuffinError('bad_request', "catalog type 'postgres': option 'url' is not a URL (postgres://user@host:5432/database)");
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new PuffinError('bad_request', "catalog type 'postgres': option 'url' must be a postgres:// URL");
  }
  if (url.password) {
    throw new PuffinError('bad_request', "catalog type 'postgres': option 'url' must not hold a password; name where it is with passwordEnv or passwordSecretArn");
  }
  if (!url.hostname) throw new PuffinError('bad_request', "catalog type 'postgres': option 'url' names no host");
  checkPostgresUrlParameters(url);
  refuseLinkLocal('postgres', 'url', url);
  return value;
}

/**
 * pg's URL parameters a catalog may set. sslrootcert (a CA file, e.g. RDS's bundle: Node does
 * not trust RDS's CAs by itself) stays on this machine; sslcert and sslkey would send or use
 * another local file as a client identity, and host/password/user would move the connection
 * or carry a secret, so they are refused.
 */
const POSTGRES_URL_PARAMETERS = new Set(['sslmode', 'sslrootcert', 'uselibpqcompat', 'application_name', 'options']);

export function checkPostgresUrlParameters(url: URL): void {
  for (const key of url.searchParams.keys()) {
    if (!POSTGRES_URL_PARAMETERS.has(key)) {
      throw new PuffinError('bad_request', `catalog type 'postgres': option 'url' may not set '${key.slice(0, 40)}'; it takes ${[...POSTGRES_URL_PARAMETERS].join(', ')}`);
    }
  }
}

/** The instance metadata service is no catalog (and would be sent signed requests or a password). */
function refuseLinkLocal(type: PointerCatalogType, key: string, url: URL): void {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isLinkLocalHost(host)) throw new PuffinError('bad_request', `catalog type '${type}': option '${key}' names ${host}, a link-local (instance metadata) address; those are refused`);
}

function jdbcCatalogName(value: string): string {
  // Iceberg's JDBC catalog keeps it in a VARCHAR(255) column.
  if (value.length > 255 || /[\u0000-\u001f]/.test(value)) {
    throw new PuffinError('bad_request', "catalog type 'postgres': option 'catalogName' must be at most 255 printable characters");
  }
  return value;
}

function secretArn(value: string): string {
  if (!/^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$/.test(value)) {
    throw new PuffinError('bad_request', `catalog type 'postgres': option 'passwordSecretArn' is not a Secrets Manager secret ARN: '${value.slice(0, 80)}'`);
  }
  return value;
}

/**
 * Which environment variables may hold a catalog's password: libpq's own PGPASSWORD and
 * names under PUFFINDB_CATALOG_. Any other variable of the server's (its admin key, AWS
 * credentials) is refused: a catalog's password is sent to the host its URL names, which
 * whoever registers the catalog chooses.
 */
const PASSWORD_ENV = /^(PGPASSWORD|PUFFINDB_CATALOG_[A-Z0-9_]+)$/;

function passwordEnvName(name: string): string {
  if (!PASSWORD_ENV.test(name)) {
    throw new PuffinError('bad_request', `catalog type 'postgres': option 'passwordEnv' must name PGPASSWORD or a variable starting with PUFFINDB_CATALOG_, not '${name.slice(0, 60)}'`);
  }
  return name;
}

/** Read when the catalog opens (the variable may be set only where the server runs). */
function passwordFromEnv(name: string): string {
  const value = process.env[passwordEnvName(name)];
  if (value === undefined || value === '') {
    throw new PuffinError('bad_request', `catalog type 'postgres': option 'passwordEnv' names ${name}, which is not set in the server's environment`);
  }
  return value;
}

/** A secret holds the password itself, or RDS's JSON form ({"username": ..., "password": ...}). */
async function passwordFromSecret(arn: string): Promise<string> {
  const { readSecretString } = await import('../../state/secrets.ts');
  // The ARN names the secret's region, which readSecretString uses.
  const text = await readSecretString(arn, 'us-east-1', { what: "the Postgres catalog's password" });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return text; // not JSON: the whole string is the password
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return text;
  const password = (parsed as { password?: unknown }).password;
  if (typeof password !== 'string') throw new PuffinError('internal', `Secrets Manager secret ${arn} holds JSON without a "password" string`);
  return password;
}
