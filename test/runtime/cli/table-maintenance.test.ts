// Table maintenance from the command line and from SQL (CALL puffindb.*), through the CLI's
// main() on a throwaway PUFFINDB_HOME: a table written by SQL, and Spark-written tables
// (copied to a temporary directory, registered with --reroot) taking compaction, manifest
// rewrites and expiry and reading back the same rows. The role check goes through HTTP
// POST /v1/query: a reader key may list snapshots, not expire them.

import assert from 'node:assert/strict';
import { cpSync, writeFileSync, utimesSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { PuffinError } from '../../../runtime/errors.ts';
import { LINEITEM, MYTABLE_PARTITIONED, tempDir } from '../catalog/iceberg/fixtures.ts';
import { cliInProcess } from '../../helpers/cli.ts';
import { apiFixture, errorOf, newKey } from '../../helpers/api.ts';
import { openWarehouse, type Warehouse } from '../../../runtime/cli/warehouse.ts';
import { loadSettings } from '../../../runtime/settings.ts';

const dir = tempDir('cli-maintenance');
const home = join(dir.path, 'home');
const warehouseUri = `file://${join(dir.path, 'warehouse')}/`;
const run = cliInProcess(home, warehouseUri);
// SQL runs on one warehouse kept open (fragments in process): a CLI command opens its own
// each time, which costs most of a second, so only the commands themselves go through it.
let w: Warehouse;
before(async () => {
  w = await openWarehouse(loadSettings({ PUFFINDB_HOME: home, PUFFINDB_WAREHOUSE: warehouseUri, PUFFINDB_WORKERS: '1' }), { invoker: 'in-process' });
});
after(async () => {
  await w.close();
  dir.remove();
});

async function sql(text: string): Promise<Record<string, unknown>[]> {
  const o = await w.query(text);
  return o.rows.map((r) => Object.fromEntries(o.columns.map((c, i) => [c.name, r[i]])));
}
const sorted = async (text: string): Promise<string> => JSON.stringify(await sql(text));

describe('puffindb table snapshots / compact / rewrite-manifests / expire / remove-orphans', () => {
  test('a table written by SQL: same rows after each operation; an expired snapshot is gone from time travel', async () => {
    await sql('CREATE TABLE ev PARTITIONED BY (g) AS SELECT i AS id, i % 2 AS g FROM range(10) r(i)');
    for (let k = 1; k <= 3; k++) await sql(`INSERT INTO ev SELECT i AS id, i % 2 AS g FROM range(${k * 10}, ${k * 10 + 10}) r(i)`);
    const q = 'SELECT * FROM ev ORDER BY id';
    const before = await sorted(q);
    assert.equal(before, JSON.stringify((await sql('SELECT i AS id, i % 2 AS g FROM range(40) r(i) ORDER BY id')) ));

    const snaps = JSON.parse(await run('table', 'snapshots', 'ev', '--json')) as { id: string; parent: string | null; timestamp: string; operation: string; summary: Record<string, string>; manifestList: string }[];
    assert.equal(snaps.length, 4);
    assert.deepEqual(snaps.map((s) => s.operation), ['append', 'append', 'append', 'append']);
    assert.equal(snaps[1].parent, snaps[0].id);
    assert.match(snaps[0].manifestList, /^file:.*snap-.*\.avro$/);
    assert.match(snaps[0].timestamp, /^\d{4}-\d\d-\d\dT/);
    assert.match(await run('table', 'snapshots', 'ev'), /ev: 4 snapshot\(s\)[\s\S]*\(current\)/);

    const compact = JSON.parse(await run('table', 'compact', 'ev', '--json')) as Record<string, number | string>;
    assert.equal(compact.rewritten_data_files, 8);
    assert.equal(compact.added_data_files, 2);
    assert.equal(await sorted(q), before);

    // SQL: the manifests of four appends and the compaction become one.
    const rm = await sql("CALL puffindb.rewrite_manifests('ev')");
    assert.equal(Number(rm[0].added_manifests), 1);
    assert.ok(Number(rm[0].rewritten_manifests) >= 2, JSON.stringify(rm));
    assert.equal(await sorted(q), before);

    const listed = await sql("CALL puffindb.snapshots('ev')");
    const ops = listed.map((s) => s.operation);
    assert.deepEqual(ops.slice(-2), ['replace', 'replace']);

    const future = new Date(Date.now() + 60_000).toISOString().replace('T', ' ').replace('Z', '');
    const expired = await sql(`CALL puffindb.expire_snapshots('ev', older_than => TIMESTAMP '${future}', retain_last => 2)`);
    assert.equal(Number(expired[0].snapshots_expired), 4);
    assert.equal(Number(expired[0].snapshots_retained), 2);
    assert.equal(Number(expired[0].data_files_deleted), 8, 'the compacted files');
    assert.equal(await sorted(q), before);
    assert.equal(await sorted(`SELECT * FROM ev AT (VERSION => ${String((await sql("CALL puffindb.snapshots('ev')"))[0].snapshot_id)}) ORDER BY id`), before, 'time travel to the retained compaction');
    await assert.rejects(sql(`SELECT count(*) FROM ev AT (VERSION => ${snaps[0].id})`), (err: unknown) => err instanceof PuffinError && new RegExp(`snapshot ${snaps[0].id} does not exist`).test(err.message));
    // Nothing left to expire, and nothing found to delete.
    assert.match(await run('table', 'expire', 'ev', '--older-than', future, '--retain-last', '2'), /ev: 0 snapshot\(s\) expired, 2 retained; deleted 0 manifest list\(s\), 0 manifest\(s\), 0 data file\(s\)/);
    assert.match(await run('table', 'orphans', 'ev'), /orphans: 0/);
  });

  test('remove-orphans deletes old unreferenced files only', async () => {
    const report = JSON.parse(await run('table', 'orphans', 'ev', '--json')) as { metadataLocation: string };
    const tableDir = dirname(dirname(fileURLToPath(report.metadataLocation)));
    const stray = join(tableDir, 'data', 'stray.parquet');
    writeFileSync(stray, 'abc');
    const [r1] = await sql("CALL puffindb.remove_orphan_files('ev')");
    assert.equal(Number(r1.files_deleted), 0);
    assert.equal(Number(r1.orphans_kept_too_new), 1);
    const old = (Date.now() - 4 * 24 * 3600_000) / 1000;
    utimesSync(stray, old, old);
    assert.match(await run('table', 'remove-orphans', 'ev'), /1 orphan file\(s\), 1 deleted \(3 bytes\)/);
    assert.match(await run('table', 'orphans', 'ev'), /orphans: 0/);
    assert.equal((await sql('SELECT count(*) AS n FROM ev')).map((r) => Number(r.n))[0], 40);
  });

  test('Spark-written tables: compaction applies equality deletes; expiry of lineitem\'s older snapshot', async () => {
    const copy = join(dir.path, 'fixtures');
    cpSync(MYTABLE_PARTITIONED, join(copy, 'mtp'), { recursive: true });
    cpSync(LINEITEM, join(copy, 'lineitem'), { recursive: true });
    await run('table', 'register', 'mtp', join(copy, 'mtp'), '--reroot');
    await run('table', 'register', 'li', join(copy, 'lineitem'), '--reroot');
    const mq = 'SELECT * FROM mtp ORDER BY ALL';
    const before = await sorted(mq);
    const c = await sql("CALL puffindb.rewrite_data_files('mtp')");
    assert.ok(Number(c[0].rewritten_data_files) >= 1, JSON.stringify(c));
    assert.equal(await sorted(mq), before);
    const snaps = await sql("CALL puffindb.snapshots('mtp')");
    assert.equal(snaps.at(-1)?.operation, 'replace');
    // The Spark files stay in place (outside the table's location in the warehouse).
    const [e] = await sql(`CALL puffindb.expire_snapshots('mtp', older_than => ${Date.now() + 60_000})`);
    assert.ok(Number(e.snapshots_expired) >= 1);
    assert.equal(Number(e.data_files_deleted), 0);
    assert.ok(Number(e.files_kept_outside_location) >= 1, JSON.stringify(e));
    assert.equal(await sorted(mq), before);

    const [rm] = await sql("CALL puffindb.rewrite_manifests('mtp')");
    assert.equal(Number(rm.rewritten_manifests), 2, JSON.stringify(rm));
    assert.equal(Number(rm.added_manifests), 1);
    assert.equal(await sorted(mq), before, JSON.stringify(rm));

    const lq = 'SELECT count(*) AS n, sum(l_extendedprice)::VARCHAR AS s FROM li';
    const lBefore = await sorted(lq);
    const le = await sql(`CALL puffindb.expire_snapshots('li', older_than => ${Date.now() + 60_000})`);
    assert.equal(Number(le[0].snapshots_expired), 1);
    assert.equal(await sorted(lq), lBefore);
    await assert.rejects(sql('SELECT count(*) FROM li AT (VERSION => 7817332053627255703)'), /7817332053627255703 does not exist/);
    // Nothing under the adopted table's location is left unreferenced, and its data (in place) is kept.
    const [ro] = await sql(`CALL puffindb.remove_orphan_files('li', older_than => ${Date.now() + 60_000})`);
    assert.equal(Number(ro.files_deleted), Number(ro.orphans_found), JSON.stringify(ro));
    assert.equal(await sorted(lq), lBefore);
    assert.equal(await sorted(mq), before);
  });

  test('bad input is refused with a message', async () => {
    await assert.rejects(run('table', 'expire'), (err: unknown) => err instanceof PuffinError && /usage: puffindb table expire NAME/.test(err.message));
    await assert.rejects(run('table', 'expire', 'ev', '--retain-last', 'x'), (err: unknown) => err instanceof PuffinError && /--retain-last must be a whole number/.test(err.message));
    await assert.rejects(sql("CALL puffindb.rewrite_data_files('nosuch')"), (err: unknown) => err instanceof PuffinError && err.code === 'unknown_table');
    await assert.rejects(sql("CALL puffindb.expire_snapshots('ev', keep => 3)"), (err: unknown) => err instanceof PuffinError && /has no argument 'keep'/.test(err.message));
    await assert.rejects(sql("CALL puffindb.vacuum('ev')"), (err: unknown) => err instanceof PuffinError && /no procedure puffindb.vacuum/.test(err.message));
    await assert.rejects(sql("CALL puffindb.expire_snapshots('ev', retain_last => 0)"), (err: unknown) => err instanceof PuffinError && /at least 1/.test(err.message));
  });
});

describe('CALL puffindb.* over HTTP: writes need a writer key', () => {
  test('a reader may list snapshots but not expire them (403)', async () => {
    const { f, call } = await apiFixture();
    try {
      const reader = await newKey(call, 'reader');
      const writer = await newKey(call, 'writer');
      const post = (key: string, sql: string) => call('POST', '/v1/query', { key, body: { sql } });
      for (const sql of ["CALL puffindb.expire_snapshots('t', retain_last => 1)", "CALL puffindb.rewrite_data_files('t')", "CALL puffindb.remove_orphan_files('t')", "CALL puffindb.rewrite_manifests('t')"]) {
        const e = await errorOf(await post(reader.key, sql), 403);
        assert.match(e.message, /reader/);
      }
      // Past authorization, the fixture's catalog (no Iceberg tables) answers why it cannot run: not 403.
      const w = await post(writer.key, "CALL puffindb.expire_snapshots('t')");
      assert.notEqual(w.status, 403, await w.clone().text());
      assert.ok(w.status >= 400 && w.status < 500);
      const r = await post(reader.key, "CALL puffindb.snapshots('t')");
      assert.notEqual(r.status, 403, await r.clone().text());
    } finally {
      await f.close();
    }
  });
});
