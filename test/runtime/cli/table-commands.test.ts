// `puffindb table register` and `table scan` through the CLI's main(), on a throwaway
// PUFFINDB_HOME: adopt the fixtures, list them, scan with a predicate, query them.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { PuffinError } from '../../../runtime/errors.ts';
import { LINEITEM, PARTITION_INTEGER, tempDir } from '../catalog/iceberg/fixtures.ts';
import { cliInProcess } from '../../helpers/cli.ts';

const dir = tempDir('cli-table');


const run = cliInProcess(join(dir.path, 'home'), `file://${join(dir.path, 'warehouse')}/`);
after(() => {
  dir.remove();
});

describe('puffindb table register / scan', () => {
  test('register adopts the fixtures (with --reroot) and list shows them', async () => {
    assert.match(await run('table', 'register', 'partition_integer', PARTITION_INTEGER, '--reroot'), /registered Iceberg table partition_integer: snapshot \d+, 2 data file\(s\), 2 rows, columns partition_col INTEGER/);
    assert.match(await run('table', 'register', 'lineitem', join(LINEITEM, 'metadata', 'v2.metadata.json'), '--reroot'), /snapshot 2354745328521181395, 1 data file\(s\), 51793 rows/);
    const list = JSON.parse(await run('table', 'list', '--json')) as { name: string; kind: string }[];
    assert.deepEqual(list.map((t) => [t.name, t.kind]), [['lineitem', 'iceberg'], ['partition_integer', 'iceberg']]);
  });

  test('scan --where prints the kept files and counts', async () => {
    const text = await run('table', 'scan', 'partition_integer', '--where', 'partition_col = 42');
    assert.match(text, /data files: 1 of 2 kept, 1 pruned; 1 rows/);
    assert.match(text, /\[partition_col=42\]/);
    const json = JSON.parse(await run('table', 'scan', 'partition_integer', '--where', 'partition_col IN (7, 8) OR partition_col > 2000', '--json'));
    assert.equal(json.counts.filesKept, 0);
    assert.equal(json.counts.manifestsSkipped, 1);
    assert.deepEqual(json.filter, { op: 'or', args: [{ op: 'in', column: 'partition_col', values: ['7', '8'] }, { op: '>', column: 'partition_col', value: '2000' }] });
    const old = JSON.parse(await run('table', 'scan', 'lineitem', '--snapshot', '7817332053627255703', '--where', "l_shipdate < DATE '1992-01-01'", '--json'));
    assert.equal(old.snapshotId, '7817332053627255703');
    assert.equal(old.counts.filesKept, 0);
    assert.match(await run('table', 'scan', 'lineitem'), /data files: 1 of 1 kept, 0 pruned; 51793 rows/);
  });

  test('the registered tables answer SQL', async () => {
    const out = await run('query', '--format', 'json', 'SELECT count(*) AS n FROM lineitem AT (VERSION => 7817332053627255703)');
    assert.match(out, /"n":\s*"?60175/);
  });

  test('bad input is refused with a message, and nothing is registered', async () => {
    await assert.rejects(run('table', 'register', 'x'), (err: unknown) => err instanceof PuffinError && /usage: puffindb table register/.test(err.message));
    await assert.rejects(run('table', 'register', 'x', join(dir.path, 'nowhere')), (err: unknown) => err instanceof PuffinError && /nowhere/.test(err.message));
    await assert.rejects(run('table', 'scan', 'lineitem', '--where', 'l_quantity <'), (err: unknown) => err instanceof PuffinError && err.code === 'syntax_error');
    await assert.rejects(run('table', 'scan', 'lineitem', '--snapshot', 'abc'), (err: unknown) => err instanceof PuffinError && /--snapshot must be/.test(err.message));
    const list = JSON.parse(await run('table', 'list', '--json')) as { name: string }[];
    assert.deepEqual(list.map((t) => t.name), ['lineitem', 'partition_integer']);
  });
});
