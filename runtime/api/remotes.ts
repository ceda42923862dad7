// The API's side of remote instances (runtime/state/remote-file.ts): GET /v1/remotes for
// admins, POST and DELETE /v1/remotes/{name} for admins (a remote's URL and key variable are
// admin information, and adding one decides what every caller can reach through it), and the
// record the CLI and the API register alike, with its checks: the name, the URL, and that the
// name does not already mean something in a query (a local namespace, an external catalog).

import type { Catalog } from '../catalog/types.ts';
import { warehouseCatalogOf } from '../catalog/warehouse-catalog.ts';
import { PuffinError } from '../errors.ts';
import { checkRemoteUrl } from '../exec/remote-fetch.ts';
import { ENV_NAME, REMOTE_NAME, type RemoteRecord, type RemoteRegistry } from '../state/remote-file.ts';
import { ERROR_RESPONSE } from './contract.ts';
import { route, type Route } from './route.ts';
import type { ObjectSchema } from './schema.ts';

export const REMOTE_REQUEST = {
  type: 'object',
  description: 'A remote PuffinDB instance to register (or replace, by name): its tables are then read as name.table, and SELECT ... THROUGH reaches URLs under it.',
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 63, description: "How queries name it (name.table): a lower-case letter, then lower-case letters, digits or '_'. Not a local namespace nor an external catalog's name." },
    url: { type: 'string', minLength: 1, maxLength: 2048, description: "The instance's base URL (http or https, no credentials, query or fragment); THROUGH URLs under it (on a path boundary) use its key. Link-local addresses are refused; loopback only when the URL names it." },
    keyEnv: { type: 'string', minLength: 1, maxLength: 128, description: "An environment variable of this server holding the API key sent to the remote (read at each call, never stored). The remote applies that key's role: register a reader key unless more is meant." },
  },
  required: ['name', 'url', 'keyEnv'],
} as const satisfies ObjectSchema;

const REMOTE: ObjectSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    url: { type: 'string' },
    keyEnv: { type: 'string', description: 'The name of the variable, never the key.' },
    createdAt: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'Milliseconds since the epoch.' },
  },
  required: ['name', 'url', 'keyEnv', 'createdAt'],
};

function view(r: RemoteRecord): Record<string, unknown> {
  return { name: r.name, url: r.url, keyEnv: r.keyEnv, createdAt: r.createdAt };
}

function checkedName(name: string): string {
  if (!REMOTE_NAME.test(name)) throw new PuffinError('bad_request', `remote name ${JSON.stringify(name.slice(0, 64))} is not a remote name (a lower-case letter, then up to 62 lower-case letters, digits or '_')`);
  return name;
}

/** Names a query already gives a meaning to: DuckDB's own schemas and ours. */
const RESERVED = new Set(['main', 'puffindb', 'information_schema', 'pg_catalog', 'temp', 'system', 'memory']);

/** What else a remote's name could mean in a query: a local namespace or an external catalog (undefined: nothing). */
export type NameTaken = (name: string) => Promise<string | undefined>;

/** A local table namespace named `name` (tables `name.t`), from the catalog. */
export function namespaceTaken(catalog: Catalog): NameTaken {
  return async (name) => {
    const table = (await catalog.listTables()).find((t) => t.toLowerCase().startsWith(`${name}.`));
    return table ? `the local namespace of table ${table}` : undefined;
  };
}

/** An external catalog named `name` (its tables are `name.namespace.table`: `name.table` would read as either). */
export function externalCatalogTaken(catalog: Catalog): NameTaken {
  return async (name) => ((await warehouseCatalogOf(catalog)?.external?.registry.get(name)) ? `an external catalog (GET /v1/catalogs)` : undefined);
}

/** Everything a remote's name is checked against, over one catalog. */
export function namesTaken(catalog: Catalog): NameTaken[] {
  return [namespaceTaken(catalog), externalCatalogTaken(catalog)];
}

/** A registered remote as the CLI and the API add it: name, URL and keyEnv checked, the name free. */
export async function remoteRecord(name: string, url: string, keyEnv: string | undefined, taken: NameTaken[] = []): Promise<RemoteRecord> {
  checkedName(name);
  const base = checkRemoteUrl(url);
  if (keyEnv === undefined || !ENV_NAME.test(keyEnv)) throw new PuffinError('bad_request', `a remote needs --key-env VAR (keyEnv), the environment variable holding its API key${keyEnv === undefined ? '' : `; ${JSON.stringify(keyEnv.slice(0, 64))} is not an environment variable name`}`);
  if (RESERVED.has(name)) throw new PuffinError('conflict', `remote name '${name}' is a schema name queries already use; choose another`);
  for (const check of taken) {
    const what = await check(name);
    if (what) throw new PuffinError('conflict', `remote name '${name}' is already ${what}: ${name}.table would mean both; choose another name`);
  }
  return { name, url: base, keyEnv, createdAt: Date.now() };
}

export function remoteRoutes(registry: RemoteRegistry, taken: NameTaken[]): Route[] {
  return [
    route({
      method: 'get', path: '/v1/remotes', access: 'admin',
      summary: 'Registered remote instances (name, url, keyEnv: the name of the variable, never the key).',
      responses: { 200: { description: '{remotes: [...]}' } },
      async handle(c) {
        return c.json({ remotes: (await registry.listRemotes()).map(view) });
      },
    }),
    route({
      method: 'post', path: '/v1/remotes', access: 'admin', body: REMOTE_REQUEST,
      summary: 'Register a remote PuffinDB instance (or replace the one of that name).',
      responses: {
        201: { description: 'The remote.', schema: REMOTE },
        400: { description: 'A bad name, a URL that is not http(s), carries credentials or names a link-local address, or no keyEnv.', schema: ERROR_RESPONSE },
        409: { description: 'The name is a local namespace, an external catalog or a reserved schema name.', schema: ERROR_RESPONSE },
      },
      async handle(c, { body }) {
        const record = await remoteRecord(body.name, body.url, body.keyEnv, taken);
        await registry.putRemote(record);
        return c.json(view(record), 201);
      },
    }),
    route({
      method: 'delete', path: '/v1/remotes/{name}', access: 'admin',
      summary: 'Forget a remote instance.',
      responses: { 200: { description: 'Removed.' }, 400: { description: 'Not a remote name.', schema: ERROR_RESPONSE }, 404: { description: 'No such remote.', schema: ERROR_RESPONSE } },
      async handle(c, { params }) {
        const name = checkedName(params.name);
        if (!(await registry.deleteRemote(name))) throw new PuffinError('not_found', `no remote named '${name}'; GET /v1/remotes lists them`);
        return c.json({ deleted: name });
      },
    }),
  ];
}
