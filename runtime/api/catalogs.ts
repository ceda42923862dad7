// The API's side of external catalogs (runtime/catalog/external/): GET /v1/catalogs, POST
// /v1/catalogs and DELETE /v1/catalogs/{name}, all for admins only (a record names the
// server's environment variables and secret ARNs). Their tables are queried as
// CATALOG.namespace.table through the query routes.

import type { ExternalCatalogs } from '../catalog/external/external-catalog.ts';
import { CATALOG_TYPES, catalogRecord, catalogView, checkCatalogName, type CatalogInput } from '../catalog/external/registry.ts';
import { PuffinError } from '../errors.ts';
import { ERROR_RESPONSE } from './contract.ts';
import { route, type Route } from './route.ts';
import type { ObjectSchema } from './schema.ts';

const REFERENCE = 'never the secret itself (a plaintext secret is refused)';

export const CATALOG_REQUEST = {
  type: 'object',
  description: 'An external catalog to register. Its tables are then named CATALOG.namespace.table in SQL.',
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 63, description: "A letter, then letters, digits or '_' (lower-cased); not a reserved name (puffindb, main, memory, system, temp, information_schema, pg_catalog, default, iceberg) nor the first part of a local table's name." },
    type: { type: 'string', enum: CATALOG_TYPES, description: 'rest (any Iceberg REST catalog), glue (AWS Glue Iceberg REST, SigV4), s3tables (S3 Tables Iceberg REST, SigV4), glue-catalog (classic Glue Data Catalog API), dynamodb, postgres (Iceberg JDBC catalog schema).' },
    uri: { type: 'string', minLength: 1, maxLength: 2048, description: 'REST types: the base URL (before /v1/...); http or https, no credentials, no link-local address. glue and s3tables default to the region\'s AWS endpoint.' },
    warehouse: { type: 'string', minLength: 1, maxLength: 512, description: 'REST types: the warehouse sent to GET /v1/config (Glue: catalog id; S3 Tables: table bucket ARN, required).' },
    location: { type: 'string', minLength: 1, maxLength: 1024, description: 'Where CREATE TABLE puts new tables: s3:// or file:// (tables go to LOCATION/CATALOG/NAMESPACE/TABLE). Default for REST: the catalog\'s warehouse when /v1/config gives a URI.' },
    region: { type: 'string', minLength: 1, maxLength: 32, description: 'AWS region (glue, s3tables, glue-catalog, dynamodb).' },
    auth: { type: 'string', enum: ['none', 'bearer', 'oauth2', 'sigv4'], description: 'Default: sigv4 for glue and s3tables, oauth2 with clientId, bearer with a token reference, else none.' },
    tokenEnv: { type: 'string', minLength: 1, maxLength: 128, description: `bearer: the server's environment variable holding the token; ${REFERENCE}.` },
    tokenSecretArn: { type: 'string', minLength: 1, maxLength: 2048, description: `bearer: a Secrets Manager secret ARN holding the token; ${REFERENCE}.` },
    oauthTokenUrl: { type: 'string', minLength: 1, maxLength: 2048, description: 'oauth2: the token endpoint (default URI/v1/oauth/tokens).' },
    clientId: { type: 'string', minLength: 1, maxLength: 256, description: 'oauth2: the client id.' },
    clientSecretEnv: { type: 'string', minLength: 1, maxLength: 128, description: `oauth2: the environment variable holding the client secret; ${REFERENCE}.` },
    clientSecretArn: { type: 'string', minLength: 1, maxLength: 2048, description: `oauth2: a Secrets Manager ARN holding the client secret; ${REFERENCE}.` },
    scope: { type: 'string', minLength: 1, maxLength: 256, description: "oauth2: the scope (default 'catalog', as Iceberg's clients send; Polaris wants PRINCIPAL_ROLE:ALL)." },
    options: { description: 'glue-catalog, dynamodb, postgres: the store\'s options, an object of strings (e.g. {"table": "iceberg_pointers"}); keys that would hold a secret must be references (...Env, ...SecretArn).' },
    replace: { type: 'boolean', description: 'Replace a catalog of the same name (default: conflict).' },
  },
  required: ['name', 'type'],
} as const satisfies ObjectSchema;

const CATALOG: ObjectSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    type: { type: 'string', enum: CATALOG_TYPES },
    uri: { type: 'string' },
    warehouse: { type: 'string' },
    location: { type: 'string' },
    region: { type: 'string' },
    auth: { type: 'string' },
    tokenEnv: { type: 'string' },
    tokenSecretArn: { type: 'string' },
    clientId: { type: 'string' },
    clientSecretEnv: { type: 'string' },
    clientSecretArn: { type: 'string' },
    options: { description: 'Strings.' },
    createdAt: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'Milliseconds since the epoch.' },
  },
  required: ['name', 'type', 'auth', 'createdAt'],
};

/** Add a catalog after checking its name does not shadow local tables. */
export async function addCatalog(catalogs: ExternalCatalogs, input: CatalogInput, replace = false) {
  const record = catalogRecord(input);
  await catalogs.checkNameFree(record.name);
  await catalogs.registry.put(record, replace);
  return record;
}

export function catalogRoutes(catalogs: () => ExternalCatalogs | undefined): Route[] {
  const registry = (): ExternalCatalogs => {
    const c = catalogs();
    if (!c) throw new PuffinError('unsupported', 'this server\'s catalog takes no external catalogs (it is not the warehouse catalog)');
    return c;
  };
  return [
    route({
      method: 'get', path: '/v1/catalogs', access: 'admin',
      summary: 'Registered external catalogs (secrets appear only as the names of their variables or ARNs).',
      responses: { 200: { description: '{catalogs: [...]}' } },
      async handle(c) {
        return c.json({ catalogs: (await registry().registry.list()).map(catalogView) });
      },
    }),
    route({
      method: 'post', path: '/v1/catalogs', access: 'admin', body: CATALOG_REQUEST,
      summary: 'Register an external catalog (Iceberg REST, Glue, S3 Tables, Glue Data Catalog, DynamoDB, Postgres).',
      responses: {
        201: { description: 'The catalog.', schema: CATALOG },
        400: { description: 'A bad or reserved name, a URL that is not http(s) or names a link-local address, a plaintext secret, a missing field for the type.', schema: ERROR_RESPONSE },
        409: { description: 'A catalog of that name exists, or local tables start with the name.', schema: ERROR_RESPONSE },
      },
      async handle(c, { body }) {
        const { replace, ...input } = body as typeof body & { options?: Record<string, string> };
        const record = await addCatalog(registry(), input as CatalogInput, replace === true);
        return c.json(catalogView(record), 201);
      },
    }),
    route({
      method: 'delete', path: '/v1/catalogs/{name}', access: 'admin',
      summary: 'Forget an external catalog (its tables are left alone).',
      responses: { 200: { description: 'Removed.' }, 400: { description: 'Not a catalog name.', schema: ERROR_RESPONSE }, 404: { description: 'No such catalog.', schema: ERROR_RESPONSE } },
      async handle(c, { params }) {
        const name = checkCatalogName(params.name);
        if (!(await registry().registry.remove(name))) throw new PuffinError('not_found', `no external catalog named '${name}'; GET /v1/catalogs lists them`);
        return c.json({ deleted: name });
      },
    }),
  ];
}
