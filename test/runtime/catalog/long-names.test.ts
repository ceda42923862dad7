// A table name longer than any catalog can keep as a file name (runtime/catalog/names.ts) is
// no table: SQL naming one (SELECT, CREATE TABLE, INSERT) is a 4xx from a real server, and
// the catalog answers it as missing or refuses it before any file system call (no
// ENAMETOOLONG from the Iceberg pointer store, the Delta registrations or the Parquet tables).

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WarehouseCatalog } from '../../../runtime/catalog/warehouse-catalog.ts';
import { MAX_TABLE_NAME_BYTES } from '../../../runtime/catalog/names.ts';
import { Engine } from '../../../runtime/engine/engine.ts';
import { PuffinError } from '../../../runtime/errors.ts';
import { startServe, type RealServer } from '../../helpers/serve.ts';
import { tempDir } from './iceberg/fixtures.ts';

const LONG = 't'.repeat(300);

describe('table names too long for a file name', () => {
  const dir = tempDir('long-names');
  let engine: Engine;
  let catalog: WarehouseCatalog;
  let server: RealServer;

  before(async () => {
    engine = await Engine.create({ threads: 1 });
    catalog = await WarehouseCatalog.open(join(dir.path, 'catalog'), engine);
    server = await startServe();
  });
  after(async () => {
    await server?.close();
    engine?.close();
    dir.remove();
  });

  const tooLong = (err: unknown) => err instanceof PuffinError && err.code === 'bad_request' && /is 300 bytes long; names are at most 200 bytes/.test(err.message);

  test('the catalog: lookups find nothing, writes are refused (bad_request), names up to the limit work', async () => {
    for (const name of [LONG, `db.${LONG}`, `${'n'.repeat(150)}.${'t'.repeat(60)}`]) {
      assert.equal(await catalog.getTable(name), undefined);
      assert.equal(await catalog.openIceberg(name), undefined);
      assert.equal(await catalog.openDelta(name), undefined);
    }
    assert.equal(await catalog.getTableAt(LONG, { snapshotId: '1' }), undefined);
    await assert.rejects(catalog.scanIceberg(LONG), (err: unknown) => err instanceof PuffinError && err.code === 'unknown_table');
    await assert.rejects(catalog.registerIceberg(LONG, '/nowhere'), tooLong);
    await assert.rejects(catalog.registerDelta(LONG, '/nowhere'), tooLong);
    await assert.rejects(catalog.addTable(LONG, '/nowhere'), tooLong);
    await assert.rejects(catalog.dropTable(LONG), tooLong);
    await assert.rejects(catalog.pointers.compareAndSwap(LONG, undefined, 'file:///x'), tooLong);
    assert.equal(await catalog.getTable('t'.repeat(MAX_TABLE_NAME_BYTES)), undefined);
  });

  test('SQL through a real server: SELECT is 404 unknown table, CREATE TABLE and INSERT are 400, and a name at the limit works', async () => {
    const answer = async (sql: string) => {
      const res = await server.query(sql);
      return { status: res.status, text: await res.text() };
    };
    const select = await answer(`SELECT * FROM ${LONG}`);
    assert.ok(select.status >= 400 && select.status < 500, `SELECT: ${select.status} ${select.text}`);
    assert.doesNotMatch(select.text, /ENAMETOOLONG|delta-registrations|internal/);
    for (const sql of [`CREATE TABLE ${LONG} (a INTEGER)`, `CREATE TABLE ${LONG} AS SELECT 1 AS a`, `INSERT INTO ${LONG} VALUES (1)`, `DROP TABLE ${LONG}`]) {
      const r = await answer(sql);
      assert.ok(r.status >= 400 && r.status < 500, `${sql.slice(0, 30)}: ${r.status} ${r.text}`);
      assert.doesNotMatch(r.text, /ENAMETOOLONG|delta-registrations|internal/, sql.slice(0, 30));
    }
    const longest = 'x'.repeat(MAX_TABLE_NAME_BYTES);
    assert.equal((await answer(`CREATE TABLE ${longest} (a INTEGER)`)).status, 200);
    assert.equal((await answer(`INSERT INTO ${longest} VALUES (1), (2)`)).status, 200);
    const read = await answer(`SELECT count(*) AS n FROM ${longest}`);
    assert.equal(read.status, 200, read.text);
    assert.match(read.text, /"n"|2/);
  });
});
