// `puffindb generator add NAME URL [--key-env VAR]`, `generator list`, `generator remove NAME`:
// the registry of remote query generators (runtime/sql/generators.ts). With REDIS_URL set it
// is the shared state store (what every server on that Redis reads); without, the JSON file
// under PUFFINDB_HOME that a local `puffindb serve` reads (runtime/state/generator-file.ts).

import { parseArgs } from 'node:util';
import { PuffinError } from '../errors.ts';
import type { Settings } from '../settings.ts';
import { generatorRecord } from '../api/generators.ts';
import { FileGeneratorRegistry, GENERATORS_FILE } from '../state/generator-file.ts';
import { openStateStore } from '../state/open.ts';
import { join } from 'node:path';

export const GENERATOR_HELP = `  puffindb generator add NAME URL [--key-env VAR]   register a remote query generator (POST {input, params, tables} -> {"sql"});
                                             VAR names the server's environment variable holding its bearer token
  puffindb generator list                    registered generators
  puffindb generator remove NAME             forget one`;

const USAGE = 'usage: puffindb generator add NAME URL [--key-env VAR] | generator list | generator remove NAME';

export async function runGeneratorCommand(args: string[], settings: Settings, out: (s: string) => void): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { 'key-env': { type: 'string' }, json: { type: 'boolean' } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new PuffinError('bad_request', `${(err as Error).message}; ${USAGE}`);
  }
  const { values, positionals } = parsed;
  const [sub, ...rest] = positionals;
  const state = settings.redisUrl ? await openStateStore(settings) : undefined;
  const registry = state ?? new FileGeneratorRegistry(join(settings.home, GENERATORS_FILE));
  const where = state ? 'the state store (Redis)' : `${join(settings.home, GENERATORS_FILE)}`;
  try {
    if (sub === 'add') {
      if (rest.length !== 2) throw new PuffinError('bad_request', USAGE);
      const record = generatorRecord(rest[0], rest[1], values['key-env']);
      await registry.putGenerator(record);
      out(`registered query generator ${record.name} -> ${record.url}${record.keyEnv ? ` (token from $${record.keyEnv})` : ''} in ${where}`);
    } else if (sub === 'list') {
      if (rest.length !== 0) throw new PuffinError('bad_request', USAGE);
      const list = await registry.listGenerators();
      if (values.json) out(JSON.stringify(list, null, 2));
      else if (list.length === 0) out('no query generators: puffindb generator add NAME URL');
      else for (const g of list) out(`${g.name.padEnd(24)} ${g.url}${g.keyEnv ? `  (token from $${g.keyEnv})` : ''}`);
    } else if (sub === 'remove') {
      if (rest.length !== 1) throw new PuffinError('bad_request', USAGE);
      if (!(await registry.deleteGenerator(rest[0]))) throw new PuffinError('not_found', `no query generator named '${rest[0]}'`);
      out(`removed query generator ${rest[0]}`);
    } else {
      throw new PuffinError('bad_request', `unknown generator command '${sub ?? ''}'; ${USAGE}`);
    }
  } finally {
    await state?.close();
  }
}
