// `puffindb remote add NAME URL --key-env VAR`, `remote list`, `remote remove NAME`: the
// registry of remote PuffinDB instances (runtime/state/remote-file.ts) that SELECT ... THROUGH
// and `NAME.table` read. With REDIS_URL set it is the shared state store; without, the JSON
// file under PUFFINDB_HOME that a local `puffindb serve` reads at each query.

import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { remoteRecord, type NameTaken } from '../api/remotes.ts';

export { namesTaken } from '../api/remotes.ts';
import { PuffinError } from '../errors.ts';
import type { Settings } from '../settings.ts';
import { openRemoteRegistry, REMOTES_FILE } from '../state/remote-file.ts';

export const REMOTE_HELP = `  puffindb remote add NAME URL --key-env VAR   register a remote PuffinDB: its tables read as NAME.table, and
                                             SELECT ... THROUGH 'URL...' runs there; VAR names the server's
                                             environment variable holding the remote's API key (never stored)
  puffindb remote list                       registered remotes
  puffindb remote remove NAME                forget one`;

const USAGE = 'usage: puffindb remote add NAME URL --key-env VAR | remote list | remote remove NAME';

/** `taken`: what else a name may already be (the local namespaces, external catalogs). */
export async function runRemoteCommand(args: string[], settings: Settings, out: (s: string) => void, taken: NameTaken[] = []): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { 'key-env': { type: 'string' }, json: { type: 'boolean' } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new PuffinError('bad_request', `${(err as Error).message}; ${USAGE}`);
  }
  const { values, positionals } = parsed;
  const [sub, ...rest] = positionals;
  const registry = openRemoteRegistry(settings);
  const where = settings.redisUrl ? 'the state store (Redis)' : join(settings.home, REMOTES_FILE);
  try {
    if (sub === 'add') {
      if (rest.length !== 2) throw new PuffinError('bad_request', USAGE);
      const record = await remoteRecord(rest[0], rest[1], values['key-env'], taken);
      await registry.putRemote(record);
      out(`registered remote ${record.name} -> ${record.url} (API key from $${record.keyEnv}) in ${where}`);
    } else if (sub === 'list') {
      if (rest.length !== 0) throw new PuffinError('bad_request', USAGE);
      const list = await registry.listRemotes();
      if (values.json) out(JSON.stringify(list, null, 2));
      else if (list.length === 0) out('no remotes: puffindb remote add NAME URL --key-env VAR');
      else for (const r of list) out(`${r.name.padEnd(24)} ${r.url}  (API key from $${r.keyEnv})`);
    } else if (sub === 'remove') {
      if (rest.length !== 1) throw new PuffinError('bad_request', USAGE);
      if (!(await registry.deleteRemote(rest[0]))) throw new PuffinError('not_found', `no remote named '${rest[0]}'`);
      out(`removed remote ${rest[0]}`);
    } else {
      throw new PuffinError('bad_request', `unknown remote command '${sub ?? ''}'; ${USAGE}`);
    }
  } finally {
    await registry.close();
  }
}
