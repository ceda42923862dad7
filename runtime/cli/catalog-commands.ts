// `puffindb catalog add NAME --type TYPE ...`, `catalog list`, `catalog remove NAME`: the
// registry of external catalogs (runtime/catalog/external/), whose tables SQL names
// CATALOG.namespace.table. With REDIS_URL set the records are in Redis (every server on it
// sees them); without, under PUFFINDB_HOME/catalog/external-catalogs, which a local
// `puffindb serve` reads.

import { parseArgs } from 'node:util';
import { PuffinError } from '../errors.ts';
import type { Settings } from '../settings.ts';
import { addCatalog } from '../api/catalogs.ts';
import { catalogView, CATALOG_TYPES, type CatalogInput, type ExternalCatalogType } from '../catalog/external/registry.ts';
import { openWarehouse } from './warehouse.ts';

export const CATALOG_HELP = `  puffindb catalog add NAME --type rest|glue|s3tables|glue-catalog|dynamodb|postgres [options]
                                             register an external catalog; its tables are NAME.namespace.table in SQL
      --uri URL                              REST types: base URL (glue, s3tables: default from --region)
      --warehouse W                          REST types: the warehouse for /v1/config (S3 Tables: the bucket ARN)
      --location s3://...|file://...         where CREATE TABLE puts new tables
      --region R                             AWS region (glue, s3tables, glue-catalog, dynamodb)
      --token-env VAR | --token-secret-arn ARN            bearer token, by reference
      --client-id ID --client-secret-env VAR | --client-secret-arn ARN [--oauth-token-url URL] [--scope S]
                                             OAuth2 client credentials
      --auth none|bearer|oauth2|sigv4        (default: sigv4 for glue and s3tables, else from the options given)
      --option KEY=VALUE                     glue-catalog, dynamodb, postgres: store options (repeatable)
      --replace                              replace a catalog of that name
  puffindb catalog list [--json]             registered external catalogs
  puffindb catalog remove NAME               forget one (its tables are left alone)`;

const USAGE = 'usage: puffindb catalog add NAME --type TYPE [...] | catalog list [--json] | catalog remove NAME';

function describe(r: ReturnType<typeof catalogView>): string {
  const where = (r.uri as string | undefined) ?? (r.options ? JSON.stringify(r.options) : '');
  const auth = r.auth === 'none' ? '' : `  auth ${r.auth}${r.tokenEnv ? ` ($${r.tokenEnv})` : r.tokenSecretArn ? ` (${r.tokenSecretArn})` : r.clientSecretEnv ? ` (client ${r.clientId}, $${r.clientSecretEnv})` : ''}`;
  return `${String(r.name).padEnd(20)} ${String(r.type).padEnd(13)} ${where}${r.warehouse ? `  warehouse ${r.warehouse}` : ''}${r.location ? `  location ${r.location}` : ''}${auth}`;
}

export async function runCatalogCommand(args: string[], settings: Settings, out: (s: string) => void): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        type: { type: 'string' }, uri: { type: 'string' }, warehouse: { type: 'string' }, location: { type: 'string' }, region: { type: 'string' },
        auth: { type: 'string' }, 'token-env': { type: 'string' }, 'token-secret-arn': { type: 'string' },
        'client-id': { type: 'string' }, 'client-secret-env': { type: 'string' }, 'client-secret-arn': { type: 'string' }, 'oauth-token-url': { type: 'string' }, scope: { type: 'string' },
        option: { type: 'string', multiple: true }, replace: { type: 'boolean' }, json: { type: 'boolean' },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new PuffinError('bad_request', `${(err as Error).message}; ${USAGE}`);
  }
  const { values: v, positionals } = parsed;
  const [sub, ...rest] = positionals;
  if (sub !== 'add' && sub !== 'list' && sub !== 'remove') throw new PuffinError('bad_request', `unknown catalog command '${sub ?? ''}'; ${USAGE}`);
  let input: CatalogInput | undefined;
  if (sub === 'add') {
    if (rest.length !== 1) throw new PuffinError('bad_request', USAGE);
    if (!v.type) throw new PuffinError('bad_request', `catalog add needs --type (${CATALOG_TYPES.join(', ')})`);
    let options: Record<string, string> | undefined;
    for (const o of v.option ?? []) {
      const eq = o.indexOf('=');
      if (eq <= 0) throw new PuffinError('bad_request', `--option ${JSON.stringify(o.slice(0, 60))} must be KEY=VALUE`);
      (options ??= {})[o.slice(0, eq)] = o.slice(eq + 1);
    }
    input = {
      name: rest[0], type: v.type as ExternalCatalogType, uri: v.uri, warehouse: v.warehouse, location: v.location, region: v.region,
      auth: v.auth as CatalogInput['auth'], tokenEnv: v['token-env'], tokenSecretArn: v['token-secret-arn'],
      clientId: v['client-id'], clientSecretEnv: v['client-secret-env'], clientSecretArn: v['client-secret-arn'], oauthTokenUrl: v['oauth-token-url'], scope: v.scope,
      ...(options ? { options } : {}),
    };
  } else if (sub === 'list' ? rest.length !== 0 : rest.length !== 1) throw new PuffinError('bad_request', USAGE);

  const w = await openWarehouse(settings);
  try {
    const catalogs = w.catalog.external;
    if (!catalogs) throw new PuffinError('internal', 'the warehouse catalog was opened without its external catalogs');
    const where = settings.redisUrl ? 'the state store (Redis)' : 'PUFFINDB_HOME/catalog/external-catalogs';
    if (input) {
      const record = await addCatalog(catalogs, input, v.replace === true);
      out(`registered catalog ${record.name} (${record.type}) in ${where}; its tables are ${record.name}.<namespace>.<table>`);
    } else if (sub === 'list') {
      const list = (await catalogs.registry.list()).map(catalogView);
      if (v.json) out(JSON.stringify(list, null, 2));
      else if (list.length === 0) out('no external catalogs: puffindb catalog add NAME --type rest --uri URL');
      else for (const r of list) out(describe(r));
    } else {
      if (!(await catalogs.registry.remove(rest[0]))) throw new PuffinError('not_found', `no external catalog named '${rest[0]}'`);
      out(`removed catalog ${rest[0].toLowerCase()}`);
    }
  } finally {
    await w.close();
  }
}
