// `puffindb table register` of Hudi tables through the CLI's main() on a throwaway
// PUFFINDB_HOME: the format detected from `.hoodie/` or given with --format hudi, listed as
// kind hudi, queried, dropped; a Delta table given --format hudi is refused as not a Hudi table.

import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PuffinError } from '../../../../runtime/errors.ts';
import { tempDir } from '../iceberg/fixtures.ts';
import { cliInProcess } from '../../../helpers/cli.ts';

const FIXTURES = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../../../shared/fixtures');
const dir = tempDir('cli-hudi');


const run = cliInProcess(join(dir.path, 'home'), `file://${join(dir.path, 'warehouse')}/`);
after(() => {
  dir.remove();
});

describe('puffindb table register (Hudi)', () => {
  test('the format is detected from .hoodie/, or given; listed, queried, dropped', async () => {
    assert.match(await run('table', 'register', 'people', join(FIXTURES, 'hudi', 'v6_complexkeygen_hivestyle')), /registered Hudi table people: instant 20240418173235694, 3 data file\(s\), 4 rows by the commits' write statistics, columns _hoodie_commit_time VARCHAR, .* id INTEGER, name VARCHAR/);
    assert.match(await run('table', 'register', 'people8', join(FIXTURES, 'hudi', 'v8_nonpartitioned'), '--format', 'hudi'), /registered Hudi table people8: instant 20250713010536861, 1 data file\(s\), 4 rows/);
    const list = JSON.parse(await run('table', 'list', '--json')) as { name: string; kind: string }[];
    assert.deepEqual(list.map((t) => [t.name, t.kind]), [['people', 'hudi'], ['people8', 'hudi']]);
    assert.match(await run('query', '--format', 'json', "SELECT count(*) AS n FROM people WHERE shortField = 100"), /"n":\s*"?2/);
    await run('table', 'drop', 'people8');
    assert.deepEqual((JSON.parse(await run('table', 'list', '--json')) as { name: string }[]).map((t) => t.name), ['people']);
  });

  test('refusals: --reroot, a directory that is not a Hudi table', async () => {
    await assert.rejects(run('table', 'register', 'x', join(FIXTURES, 'hudi', 'v6_nonpartitioned'), '--reroot'), (err: unknown) => err instanceof PuffinError && /--reroot applies to Iceberg tables/.test(err.message));
    await assert.rejects(run('table', 'register', 'y', join(FIXTURES, 'delta', 'simple_table'), '--format', 'hudi'), (err: unknown) => err instanceof PuffinError && err.code === 'not_found' && /not a Hudi table/.test(err.message));
  });
});
