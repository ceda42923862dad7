// Item 10 of the interop run: a table adopted with `table register --reroot` is stored with
// absolute paths (its metadata tree copied under the warehouse, data files in place), so the
// Iceberg REST catalog serves metadata another engine can follow all the way down: the
// table location, every snapshot's manifest list, every manifest, every data and delete
// file. The Avro files are checked with an independent decoder (avsc's own file reader),
// and the answers are those of the table read re-rooted in place.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { createIcebergRestApp } from '../../../runtime/api/iceberg-rest/app.ts';
import { FilePointerStore } from '../../../runtime/catalog/iceberg/file-pointer-store.ts';
import { localTableIO } from '../../../runtime/catalog/iceberg/writer-io.ts';
import { fileUriToPath } from '../../../runtime/storage/locations.ts';
import { LINEITEM, MYTABLE_PARTITIONED, rawRecords, tempDir } from '../catalog/iceberg/fixtures.ts';
import { cliInProcess } from '../../helpers/cli.ts';

const dir = tempDir('cli-reroot-absolute');
const warehouse = `file://${join(dir.path, 'warehouse')}/`;


const run = cliInProcess(join(dir.path, 'home'), warehouse);
after(() => {
  dir.remove();
});

const absolute = (p: string): boolean => /^[a-z][a-z0-9+.-]*:\/\//.test(p) && existsSync(fileUriToPath(p));

/** Load the table through the REST catalog and follow every path it names; returns the data file paths of the current snapshot. */
async function followThroughRest(name: string): Promise<{ location: string; files: string[] }> {
  const rest = createIcebergRestApp({
    pointerStore: new FilePointerStore(join(dir.path, 'home', 'catalog', 'iceberg')),
    io: localTableIO(),
    warehouseUrl: warehouse,
  });
  const res = await rest.request(`/v1/namespaces/default/tables/${name}`);
  assert.equal(res.status, 200, await res.clone().text());
  const body = (await res.json()) as { 'metadata-location': string; metadata: { location: string; 'current-snapshot-id': number; snapshots: { 'snapshot-id': number; 'manifest-list': string }[] } };
  assert.ok(absolute(body['metadata-location']), body['metadata-location']);
  assert.ok(body.metadata.location.startsWith(warehouse), `location under the warehouse: ${body.metadata.location}`);
  assert.ok(body.metadata.snapshots.length > 0);
  let current: string[] = [];
  for (const s of body.metadata.snapshots) {
    assert.ok(absolute(s['manifest-list']), `manifest list ${s['manifest-list']}`);
    const list = await rawRecords(fileUriToPath(s['manifest-list']));
    const files: string[] = [];
    for (const m of list.records) {
      const manifest = String(m.manifest_path);
      assert.ok(absolute(manifest), `manifest ${manifest}`);
      for (const e of (await rawRecords(fileUriToPath(manifest))).records) {
        const path = String((e.data_file as Record<string, unknown>).file_path);
        assert.ok(absolute(path), `data or delete file ${path}`);
        if (Number(e.status) !== 2) files.push(path);
      }
    }
    if (String(s['snapshot-id']) === String(body.metadata['current-snapshot-id'])) current = files;
  }
  return { location: body.metadata.location, files: current };
}

describe('table register --reroot stores absolute paths that REST clients can follow', () => {
  test('lineitem (two snapshots): every path absolute and present, same answers', async () => {
    assert.match(await run('table', 'register', 'lineitem', LINEITEM, '--reroot'), /snapshot 2354745328521181395, 1 data file\(s\), 51793 rows/);
    const { files } = await followThroughRest('lineitem');
    assert.equal(files.length, 1);
    assert.ok(files[0].startsWith(`file://${LINEITEM}/`), `the data file stays in place: ${files[0]}`);
    // TPC-H Q6's known answer (the fixture's README), and time travel to the older snapshot.
    const q6 = await run('query', '--format', 'json', "SELECT sum(l_extendedprice * l_discount)::VARCHAR AS revenue FROM lineitem WHERE l_shipdate >= DATE '1994-01-01' AND l_shipdate < DATE '1995-01-01' AND l_discount BETWEEN 0.05 AND 0.07 AND l_quantity < 24");
    assert.match(q6, /1077536\.9101/);
    assert.match(await run('query', '--format', 'json', 'SELECT count(*) AS n FROM lineitem AT (VERSION => 7817332053627255703)'), /"n":\s*"?60175/);
  });

  test('a table with equality deletes: the delete files are listed absolutely too, and still apply', async () => {
    await run('table', 'register', 'mytable_partitioned', MYTABLE_PARTITIONED, '--reroot');
    const { files } = await followThroughRest('mytable_partitioned');
    assert.ok(files.length > 0);
    assert.ok(files.some((f) => /delete/i.test(f) || f.includes('-deletes')) || files.length > 2, `delete files listed: ${files.join(', ')}`);
    // The current snapshot's rows are (1, a), (4, d), (5, e) (scan-fixtures.test.ts): the equality deletes still apply.
    const out = await run('query', '--format', 'json', 'SELECT * FROM mytable_partitioned ORDER BY 1');
    assert.deepEqual((JSON.parse(out) as Record<string, unknown>[]).map((r) => Object.values(r).slice(0, 2).map(String)), [['1', 'a'], ['4', 'd'], ['5', 'e']], out);
    // New files go under the table's new location in the warehouse, never the current directory or the fixture.
    await run('query', "INSERT INTO mytable_partitioned SELECT * FROM mytable_partitioned WHERE name = 'd'");
    const after = await run('query', '--format', 'json', 'SELECT count(*) AS n FROM mytable_partitioned');
    assert.match(after, /"n":\s*"?4\b/);
    const again = await followThroughRest('mytable_partitioned');
    const added = again.files.filter((f) => !files.includes(f));
    assert.equal(added.length, 1, again.files.join(', '));
    assert.ok(added[0].startsWith(`${again.location}/data/`) && again.location.startsWith(warehouse), added[0]);
  });
});
