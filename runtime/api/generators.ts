// The API's side of remote query generators (runtime/sql/generators.ts): the registry routes
// (GET /v1/generators for any key; POST and DELETE for admins), the query request schemas
// that take `generator` and `input` instead of `sql`, and the SQL a generator makes for a
// caller, from the schemas of the tables that caller may read.

import type { Catalog } from '../catalog/types.ts';
import { PuffinError } from '../errors.ts';
import type { CallerRole } from '../exec/query-service.ts';
import { callGenerator, checkGeneratorUrl, type GeneratorCallOptions, type GeneratorTable } from '../sql/generators.ts';
import { GENERATOR_NAME } from '../state/checks.ts';
import type { GeneratorRegistry } from '../state/generator-file.ts';
import type { GeneratorRecord, QuerySourceText } from '../state/state-store.ts';
import { ERROR_RESPONSE, EXPLAIN_REQUEST, QUERY_REQUEST } from './contract.ts';
import { route, type Route } from './route.ts';
import type { ObjectSchema } from './schema.ts';

const GENERATOR_FIELDS = {
  generator: { type: 'string', minLength: 1, maxLength: 64, description: 'Instead of `sql`: the name of a registered query generator (GET /v1/generators) to make the SQL from `input`. The SQL it answers runs under the caller\'s role like submitted SQL.' },
  input: { type: 'string', minLength: 1, description: 'With `generator`: the text it turns into SQL (e.g. a question).' },
} as const;

const PARAMS = { description: "With `sql`: an array, the values of the statement's $1, $2, ... (or ?), DuckDB SQL only, bound as SQL literals. With `generator`: an object, passed to the generator as is." } as const;

/** POST /v1/query and /v1/queries: `sql` (with language, dialect, params) or `generator` and `input` (with params). */
export const QUERY_OR_GENERATOR_REQUEST = {
  type: 'object',
  description: `${QUERY_REQUEST.description} Exactly one of sql and generator.`,
  properties: { ...QUERY_REQUEST.properties, params: PARAMS, ...GENERATOR_FIELDS },
  required: [],
} as const satisfies ObjectSchema;

/** POST /v1/explain, likewise. */
export const EXPLAIN_OR_GENERATOR_REQUEST = {
  type: 'object',
  description: `${EXPLAIN_REQUEST.description} Exactly one of sql and generator.`,
  properties: { ...EXPLAIN_REQUEST.properties, params: PARAMS, ...GENERATOR_FIELDS },
  required: [],
} as const satisfies ObjectSchema;

export const GENERATOR_REQUEST = {
  type: 'object',
  description: 'A query generator to register (or replace, by name): an http(s) endpoint that answers POSTed {input, params, tables} with {"sql": "..."}.',
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 64, description: "A letter, then letters, digits, '_' or '-'." },
    url: { type: 'string', minLength: 1, maxLength: 2048, description: 'http or https; link-local and instance-metadata addresses are refused; loopback only when the URL names it.' },
    keyEnv: { type: 'string', minLength: 1, maxLength: 128, description: 'An environment variable of the server holding a bearer token to send to the generator (the token is never stored).' },
  },
  required: ['name', 'url'],
} as const satisfies ObjectSchema;

const GENERATOR: ObjectSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    url: { type: 'string' },
    keyEnv: { type: 'string' },
    createdAt: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'Milliseconds since the epoch.' },
  },
  required: ['name', 'url', 'createdAt'],
};

function view(g: GeneratorRecord): Record<string, unknown> {
  return { name: g.name, url: g.url, ...(g.keyEnv ? { keyEnv: g.keyEnv } : {}), createdAt: g.createdAt };
}

function checkedName(name: string): string {
  if (!GENERATOR_NAME.test(name)) throw new PuffinError('bad_request', `generator name ${JSON.stringify(name.slice(0, 64))} is not a generator name (a letter, then letters, digits, '_' or '-', at most 64)`);
  return name;
}

/** A registered generator as the CLI and the API add it: name, URL and keyEnv checked. */
export function generatorRecord(name: string, url: string, keyEnv?: string): GeneratorRecord {
  checkedName(name);
  checkGeneratorUrl(url);
  if (keyEnv !== undefined && !/^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(keyEnv)) throw new PuffinError('bad_request', `keyEnv ${JSON.stringify(keyEnv.slice(0, 64))} is not an environment variable name`);
  return { name, url, ...(keyEnv ? { keyEnv } : {}), createdAt: Date.now() };
}

export function generatorRoutes(registry: GeneratorRegistry): Route[] {
  return [
    route({
      method: 'get', path: '/v1/generators', access: 'reader',
      summary: 'Registered query generators (name, url, keyEnv: the name of the variable, never the token).',
      responses: { 200: { description: '{generators: [...]}' } },
      async handle(c) {
        return c.json({ generators: (await registry.listGenerators()).map(view) });
      },
    }),
    route({
      method: 'post', path: '/v1/generators', access: 'admin', body: GENERATOR_REQUEST,
      summary: 'Register a query generator (or replace the one of that name).',
      responses: { 201: { description: 'The generator.', schema: GENERATOR }, 400: { description: 'A bad name, a URL that is not http(s), carries credentials or names a link-local address.', schema: ERROR_RESPONSE } },
      async handle(c, { body }) {
        const record = generatorRecord(body.name, body.url, body.keyEnv);
        await registry.putGenerator(record);
        return c.json(view(record), 201);
      },
    }),
    route({
      method: 'delete', path: '/v1/generators/{name}', access: 'admin',
      summary: 'Remove a query generator.',
      responses: { 200: { description: 'Removed.' }, 400: { description: 'Not a generator name.', schema: ERROR_RESPONSE }, 404: { description: 'No such generator.', schema: ERROR_RESPONSE } },
      async handle(c, { params }) {
        const name = checkedName(params.name);
        if (!(await registry.deleteGenerator(name))) throw new PuffinError('not_found', `no query generator named '${name}'; GET /v1/generators lists them`);
        return c.json({ deleted: name });
      },
    }),
  ];
}

/** The tables a role may read, with their columns: admin-only ones (puffindb.query_log) for admins only. */
export async function readableTables(catalog: Catalog, role: CallerRole): Promise<GeneratorTable[]> {
  const tables: GeneratorTable[] = [];
  for (const name of await catalog.listTables()) {
    const t = await catalog.getTable(name);
    if (!t || (t.adminOnly && role !== 'admin')) continue;
    tables.push({ name: t.name, columns: t.columns.map((col) => ({ name: col.name, type: col.type })) });
  }
  return tables;
}

export interface GeneratorRequest {
  generator: string;
  input?: string;
  params?: unknown;
}

/**
 * The SQL the named generator makes of the request for a caller of `role`, and the source to
 * record beside it. 404 for an unknown generator, 400 for a request without input or with
 * params that are not an object, 502 when the generator fails.
 */
export async function generatedSql(registry: GeneratorRegistry, catalog: Catalog, role: CallerRole, request: GeneratorRequest, options: GeneratorCallOptions = {}): Promise<{ sql: string; source: QuerySourceText }> {
  const name = request.generator;
  if (request.input === undefined) throw new PuffinError('bad_request', "'generator' needs 'input', the text it makes SQL from");
  const params = request.params ?? {};
  if (typeof params !== 'object' || params === null || Array.isArray(params)) throw new PuffinError('bad_request', "'params' with 'generator' must be a JSON object (passed to the generator as is)");
  const record = GENERATOR_NAME.test(name) ? (await registry.listGenerators()).find((g) => g.name === name) : undefined;
  if (!record) throw new PuffinError('not_found', `no query generator named ${JSON.stringify(name.slice(0, 64))}; GET /v1/generators lists them`);
  const tables = await readableTables(catalog, role);
  const sql = await callGenerator(record, { input: request.input, params: params as Record<string, unknown>, tables }, options);
  return { sql, source: { language: 'generator', generator: name, text: request.input, ...(request.params !== undefined ? { params: params as Record<string, unknown> } : {}) } };
}
