// `puffindb table orphans` through the CLI's main(), on a throwaway PUFFINDB_HOME: an Iceberg
// table written by SQL, then a stray data file beside its committed ones (what a writer
// that died before its commit leaves), which is listed and left in place.

import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PuffinError } from '../../../runtime/errors.ts';
import { tempDir } from '../catalog/iceberg/fixtures.ts';
import { cliInProcess } from '../../helpers/cli.ts';

const dir = tempDir('cli-orphans');


interface Report {
  table: string;
  metadataLocation: string;
  filesTotal: number;
  referenced: number;
  orphans: string[];
}

const run = cliInProcess(join(dir.path, 'home'), `file://${join(dir.path, 'warehouse')}/`);
after(() => {
  dir.remove();
});

describe('puffindb table orphans', () => {
  let clean: Report;
  let stray: string;

  test('a freshly written table has none', async () => {
    await run('query', '--format', 'json', 'CREATE TABLE events AS SELECT i AS id, i * 2 AS v FROM range(10) r(i)');
    clean = JSON.parse(await run('table', 'orphans', 'events', '--json')) as Report;
    assert.equal(clean.table, 'events');
    assert.match(clean.metadataLocation, /\.metadata\.json$/);
    assert.deepEqual(clean.orphans, []);
    assert.ok(clean.filesTotal >= 3, `metadata, manifest list, manifest and data files: ${clean.filesTotal}`);
    assert.equal(clean.referenced, clean.filesTotal);
  });

  test('an extra data file in the data directory is listed, not deleted', async () => {
    const tableDir = dirname(dirname(fileURLToPath(clean.metadataLocation)));
    const dataDir = join(tableDir, 'data');
    const committed = readdirSync(dataDir, { recursive: true, withFileTypes: true }).find((d) => d.isFile() && d.name.endsWith('.parquet'));
    assert.ok(committed, `a data file under ${dataDir}`);
    stray = join(dataDir, 'from-a-failed-write.parquet');
    copyFileSync(join(committed.parentPath, committed.name), stray);

    const report = JSON.parse(await run('table', 'orphans', 'events', '--json')) as Report;
    assert.deepEqual(report.orphans.map((u) => fileURLToPath(u)), [stray]);
    assert.equal(report.filesTotal, clean.filesTotal + 1);
    assert.equal(report.referenced, clean.referenced);
    assert.equal(report.metadataLocation, clean.metadataLocation);
    assert.ok(existsSync(stray), 'listing leaves the file in place');

    const text = await run('table', 'orphans', 'EVENTS');
    assert.match(text, new RegExp(`files under the table location: ${report.filesTotal}, referenced: ${report.referenced}, orphans: 1`));
    assert.ok(text.includes('from-a-failed-write.parquet'));

    // The stray file is not part of the table: SQL still sees the committed rows only.
    assert.match(await run('query', '--format', 'json', 'SELECT count(*) AS n FROM events'), /"n":\s*"?10\b/);
  });

  test('bad input is refused with a message', async () => {
    await assert.rejects(run('table', 'orphans'), (err: unknown) => err instanceof PuffinError && /usage: puffindb table orphans NAME/.test(err.message));
    await assert.rejects(run('table', 'orphans', 'a', 'b'), (err: unknown) => err instanceof PuffinError && /usage: puffindb table orphans NAME/.test(err.message));
    await assert.rejects(run('table', 'orphans', 'nosuch'), (err: unknown) => err instanceof PuffinError && err.code === 'unknown_table' && /nosuch/.test(err.message));
    await assert.rejects(run('table', 'orphans', 'events', '--delete'), (err: unknown) => err instanceof PuffinError && err.code === 'bad_request' && /delete/.test(err.message));
  });
});
