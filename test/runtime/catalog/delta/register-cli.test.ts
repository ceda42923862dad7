// `puffindb table register` of Delta tables through the CLI's main() on a throwaway
// PUFFINDB_HOME: the format detected from `_delta_log/` or given with --format, listed as
// kind delta, queried, refused when the protocol needs a reader feature not implemented.

import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PuffinError } from '../../../../runtime/errors.ts';
import { metaData, protocol, writeCommit } from '../../../helpers/delta-writer.ts';
import { tempDir } from '../iceberg/fixtures.ts';
import { cliInProcess } from '../../../helpers/cli.ts';

const FIXTURES = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../../../shared/fixtures/delta');
const dir = tempDir('cli-delta');


const run = cliInProcess(join(dir.path, 'home'), `file://${join(dir.path, 'warehouse')}/`);
after(() => {
  dir.remove();
});

describe('puffindb table register (Delta)', () => {
  test('the format is detected from _delta_log/, or given', async () => {
    assert.match(await run('table', 'register', 'simple', join(FIXTURES, 'simple_table')), /registered Delta table simple: version 4, 5 data file\(s\), 0 rows by the files. statistics \(before deletion vectors\), columns id BIGINT/);
    assert.match(await run('table', 'register', 'dv', join(FIXTURES, 'table-with-dv-small'), '--format', 'delta'), /registered Delta table dv: version 1, 1 data file\(s\), 10 rows/);
    const list = JSON.parse(await run('table', 'list', '--json')) as { name: string; kind: string }[];
    assert.deepEqual(list.map((t) => [t.name, t.kind]), [['dv', 'delta'], ['simple', 'delta']]);
    const out = await run('query', '--format', 'json', 'SELECT count(*) AS n FROM dv');
    assert.match(out, /"n":\s*"?8/);
  });

  test('refusals: unknown format, --reroot, a reader feature not implemented', async () => {
    await assert.rejects(run('table', 'register', 'x', join(FIXTURES, 'simple_table'), '--format', 'orc'), (err: unknown) => err instanceof PuffinError && /--format must be iceberg, delta or hudi/.test(err.message));
    await assert.rejects(run('table', 'register', 'x', join(FIXTURES, 'simple_table'), '--reroot'), (err: unknown) => err instanceof PuffinError && /--reroot applies to Iceberg tables/.test(err.message));
    const t = join(dir.path, 'future');
    writeCommit(t, 0, [protocol(3, ['catalogManaged']), metaData([{ name: 'id', type: 'long' }])]);
    await assert.rejects(run('table', 'register', 'future', t), (err: unknown) => err instanceof PuffinError && err.code === 'unsupported' && /reader feature catalogManaged/.test(err.message));
    await assert.rejects(run('table', 'register', 'y', join(dir.path, 'nothing'), '--format', 'delta'), (err: unknown) => err instanceof PuffinError && err.code === 'not_found');
    const list = JSON.parse(await run('table', 'list', '--json')) as { name: string }[];
    assert.deepEqual(list.map((t) => t.name), ['dv', 'simple']);
  });
});
