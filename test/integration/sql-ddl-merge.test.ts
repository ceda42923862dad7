// DDL (ALTER TABLE, partition evolution, RENAME TO, TRUNCATE, DROP [PURGE]) and MERGE INTO on
// Iceberg tables through the local cluster, each statement checked against plain DuckDB
// running the same statement on a plain table; writes on Spark-written tables (equality
// deletes, adopted with --reroot); concurrent ALTER vs INSERT and MERGE vs DELETE.

import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { loadTable } from '../../runtime/catalog/iceberg/commit.ts';
import { decodeManifestList } from '../../runtime/catalog/iceberg/manifest.ts';
import { planTableScan } from '../../runtime/catalog/iceberg/scan.ts';
import { uriTableIO } from '../../runtime/catalog/iceberg/writer-io.ts';
import { scanPredicateFromSql } from '../../runtime/catalog/scan-filter.ts';
import type { WarehouseCatalog } from '../../runtime/catalog/warehouse-catalog.ts';
import { Engine } from '../../runtime/engine/engine.ts';
import type { LocalCluster } from '../../runtime/exec/cluster.ts';
import { assertSameResult } from '../helpers/compare.ts';
import { openWarehouseCluster, type WarehouseCluster } from '../helpers/warehouse-cluster.ts';

const FIXTURES = fileURLToPath(new URL('../../../shared/fixtures/iceberg/', import.meta.url));

let dir: string;
let warehouse: string;
let engine: Engine;
let reference: Engine;
let catalog: WarehouseCatalog;
let cluster: LocalCluster;
const io = uriTableIO();

let opened: WarehouseCluster;

before(async () => {
  opened = await openWarehouseCluster('puffin-ddl-', {}, 2);
  ({ dir, warehouse, engine, catalog, cluster } = opened);
  reference = await Engine.create({ threads: 2 });
});

after(async () => {
  await opened?.close();
  reference?.close();
});

/** The statement on the Iceberg table (cluster) and on the plain table (DuckDB). */
async function both(sql: string, referenceSql = sql): Promise<void> {
  await cluster.query(sql);
  await reference.exec(referenceSql);
}

/** The table's rows and columns equal plain DuckDB's. */
async function same(table: string, label = ''): Promise<void> {
  const q = `SELECT * FROM ${table}`;
  // A large table is first compared by a multiset fingerprint computed on each side (row count
  // and the sum of the rows' hashes): moving 100,000 rows as JSON to compare them made this
  // file one of the slowest of the suite. Any difference falls through to the full comparison,
  // which names the first differing row.
  const [[n]] = (await reference.query(`SELECT count(*) FROM ${table}`)).rows;
  if (Number(n) > 10_000) {
    const columns = (await reference.query(`DESCRIBE ${table}`)).rows.map((r) => `"${String(r[0])}"`).join(', ');
    const fingerprint = `SELECT count(*) AS n, sum(hash(${columns})::HUGEINT)::VARCHAR AS h FROM ${table}`;
    const [mine, theirs] = [(await cluster.query(fingerprint)).rows, (await reference.query(fingerprint)).rows];
    if (JSON.stringify(mine) === JSON.stringify(theirs)) {
      assert.deepEqual((await cluster.query(`${q} LIMIT 0`)).columns, (await reference.query(`${q} LIMIT 0`)).columns, `${label} ${table}: columns differ`);
      return;
    }
  }
  assertSameResult(await cluster.query(q), await reference.query(q), {}, `${label} ${table}`);
}

async function refusedWith(sql: string, code: string, pattern: RegExp): Promise<void> {
  await assert.rejects(cluster.query(sql), (err: { code?: string; message: string }) => {
    assert.equal(err.code, code, err.message);
    assert.match(err.message, pattern);
    return true;
  });
}

async function pointer(name: string): Promise<string | undefined> {
  return catalog.pointers.get(name);
}

describe('ALTER TABLE on Iceberg tables', () => {
  test('ADD, RENAME, DROP COLUMN, type promotion and DROP NOT NULL match plain DuckDB', async () => {
    const create = 'CREATE TABLE people (id INTEGER NOT NULL, name VARCHAR, score FLOAT, amount DECIMAL(9,2))';
    await both(create);
    await both("INSERT INTO people VALUES (1, 'ann', 1.5, 10.25), (2, 'bob', NULL, NULL)");
    await both('ALTER TABLE people ADD COLUMN city VARCHAR');
    await same('people', 'after ADD COLUMN (older rows read NULL)');
    await both("INSERT INTO people VALUES (3, 'cy', 2.5, 3.10, 'oslo')");
    await both('ALTER TABLE people RENAME COLUMN name TO first_name');
    await both("INSERT INTO people VALUES (4, 'di', 0.5, 7.00, 'rome')");
    await same('people', 'after RENAME COLUMN');
    await both('ALTER TABLE people ALTER COLUMN id TYPE BIGINT');
    await both('ALTER TABLE people ALTER COLUMN score SET DATA TYPE DOUBLE');
    await both('ALTER TABLE people ALTER amount TYPE DECIMAL(18,2)');
    await both('ALTER TABLE people ALTER COLUMN id DROP NOT NULL');
    await both("INSERT INTO people VALUES (NULL, 'ed', 9.75, 123456789.12, 'lima')");
    await same('people', 'after promotions');
    await both('ALTER TABLE people DROP COLUMN score');
    await both('ALTER TABLE people ADD COLUMN score INTEGER');
    // A re-added column is a new column (a new field id): older rows read NULL, not the old values.
    await same('people', 'after DROP + re-ADD');
    await both("UPDATE people SET score = 5 WHERE first_name < 'c'");
    await both("DELETE FROM people WHERE city = 'rome'");
    await same('people', 'after UPDATE/DELETE on evolved files');
    const q = "SELECT first_name, amount * 2 AS a, city FROM people WHERE amount > 5 ORDER BY first_name";
    assertSameResult(await cluster.query(q), await reference.query(q), { ordered: true }, q);
    await cluster.query('ALTER TABLE IF EXISTS nobody ADD COLUMN x INTEGER');
    await cluster.query('ALTER TABLE people ADD COLUMN IF NOT EXISTS city VARCHAR');
    await cluster.query('ALTER TABLE people DROP COLUMN IF EXISTS nothing_here');
    await same('people', 'after no-op IF [NOT] EXISTS');
  });

  test('changes Iceberg forbids are refused with the rule, and change nothing', async () => {
    await cluster.query('CREATE TABLE strict_t (id INTEGER, name VARCHAR, d DOUBLE, k VARCHAR) PARTITIONED BY (k)');
    await cluster.query("INSERT INTO strict_t VALUES (1, 'a', 1.0, 'x')");
    const before = await pointer('strict_t');
    await refusedWith('ALTER TABLE strict_t ALTER COLUMN name TYPE INTEGER', 'bad_request', /from string to int: Iceberg allows only the promotions int -> long, float -> double/);
    await refusedWith('ALTER TABLE strict_t ALTER COLUMN d TYPE FLOAT', 'bad_request', /from double to float/);
    await refusedWith('ALTER TABLE strict_t ALTER COLUMN id TYPE SMALLINT', 'bad_request', /to SMALLINT: Iceberg has no such type/);
    await refusedWith('ALTER TABLE strict_t ALTER COLUMN id SET NOT NULL', 'bad_request', /never an optional one required/);
    // DuckDB's parser refuses constraints in ADD COLUMN before the write path sees it.
    await refusedWith('ALTER TABLE strict_t ADD COLUMN req INTEGER NOT NULL', 'syntax_error', /constraints/);
    await refusedWith('ALTER TABLE strict_t ADD COLUMN dflt INTEGER DEFAULT 7', 'unsupported', /DEFAULT is not supported/);
    await refusedWith('ALTER TABLE strict_t ADD COLUMN name VARCHAR', 'bad_request', /already has a column 'name'/);
    await refusedWith('ALTER TABLE strict_t DROP COLUMN k', 'bad_request', /partition spec 0 uses it/);
    await refusedWith('ALTER TABLE strict_t DROP COLUMN nope', 'binder_error', /has no column 'nope'/);
    await refusedWith('ALTER TABLE strict_t RENAME COLUMN id TO NAME', 'bad_request', /already has a column 'name'/);
    await refusedWith("ALTER TABLE strict_t SET ('write.delete.mode' = 'sometimes')", 'bad_request', /copy-on-write' or 'merge-on-read'/);
    await refusedWith('ALTER TABLE missing_t ADD COLUMN x INTEGER', 'unknown_table', /missing_t/);
    assert.equal(await pointer('strict_t'), before, 'no refused change committed anything');
  });

  test('table properties are set in the metadata', async () => {
    await cluster.query('CREATE TABLE props_t (id INTEGER)');
    await cluster.query("ALTER TABLE props_t SET ('write.delete.mode' = 'merge-on-read', 'owner' = 'it''s me')");
    const t = await loadTable(catalog.pointers, 'props_t', io);
    assert.equal(t.metadata.properties['write.delete.mode'], 'merge-on-read');
    assert.equal(t.metadata.properties.owner, "it's me");
  });

  test('partition evolution: old files keep their spec, scan planning prunes both', async () => {
    await both('CREATE TABLE evo (id INTEGER, k VARCHAR, v INTEGER)', 'CREATE TABLE evo (id INTEGER, k VARCHAR, v INTEGER)');
    await cluster.query('ALTER TABLE evo SET PARTITIONED BY (k)');
    await both("INSERT INTO evo SELECT i, CASE WHEN i % 2 = 0 THEN 'even' ELSE 'odd' END, i * 10 FROM range(0, 40) t(i)");
    await cluster.query('ALTER TABLE evo SET PARTITIONED BY (bucket(4, id), truncate(10, v))');
    await both("INSERT INTO evo SELECT i, 'late', i * 10 FROM range(40, 80) t(i)");
    const t = await loadTable(catalog.pointers, 'evo', io);
    assert.equal(t.metadata.partitionSpecs.length, 3, 'unpartitioned, by k, by bucket/truncate');
    assert.equal(t.metadata.defaultSpecId, 2);
    const snapshot = t.metadata.snapshots.find((s) => s.snapshotId === t.metadata.currentSnapshotId)!;
    const specs = new Set(decodeManifestList(await io.read(snapshot.manifestList!), snapshot.manifestList!).map((m) => m.partitionSpecId));
    assert.deepEqual([...specs].sort(), [1, 2], 'manifests of both specs are live');
    await same('evo', 'across two specs');
    for (const where of ["k = 'odd'", 'id = 57', 'v >= 700', "k = 'late' AND id < 50"]) {
      const q = `SELECT count(*), sum(v) FROM evo WHERE ${where}`;
      assertSameResult(await cluster.query(q), await reference.query(q), {}, q);
    }
    // Pruning by each file's own spec: k = 'odd' keeps only spec 1's 'odd' files (spec 2's
    // files are all k = 'late' but not partitioned by k, so their bounds decide).
    const scan = async (where: string) => {
      const cur = await loadTable(catalog.pointers, 'evo', io);
      const filter = await scanPredicateFromSql(engine, where);
      return planTableScan({ metadataLocation: cur.metadataLocation, tableUri: cur.metadata.location, metadata: cur.metadata, io }, filter ? { filter } : {});
    };
    const all = (await scan('true')).dataFiles.length;
    const odd = await scan("k = 'odd'");
    assert.ok(odd.dataFiles.length < all && odd.dataFiles.every((f) => /k=odd/.test(f.path)), odd.dataFiles.map((f) => f.path).join('\n'));
    const one = await scan('id = 57');
    assert.ok(one.dataFiles.length < all, `id = 57 keeps ${one.dataFiles.length} of ${all} files`);
    await both('DELETE FROM evo WHERE id % 3 = 0');
    await both("UPDATE evo SET v = -v WHERE k = 'odd' OR id > 70");
    await same('evo', 'after DELETE/UPDATE across specs');
    await cluster.query('ALTER TABLE evo RESET PARTITIONED BY');
    const reset = await loadTable(catalog.pointers, 'evo', io);
    assert.equal(reset.metadata.defaultSpecId, 0, 'back to the unpartitioned spec (reused, not duplicated)');
  });
});

describe('RENAME TO, TRUNCATE, DROP TABLE', () => {
  test('RENAME TO moves the table; TRUNCATE empties it; DROP keeps files, PURGE deletes them', async () => {
    await both("CREATE TABLE r1 AS SELECT i AS id, 'x' || i AS s FROM range(0, 25) t(i)");
    await both('ALTER TABLE r1 RENAME TO r2');
    await same('r2', 'renamed');
    await refusedWith('SELECT * FROM r1', 'unknown_table', /r1/);
    await cluster.query('CREATE TABLE r3 (id INTEGER)');
    await refusedWith('ALTER TABLE r2 RENAME TO r3', 'conflict', /already exists/);
    const truncated = await cluster.query('TRUNCATE r2');
    await reference.exec('TRUNCATE r2');
    assert.equal(truncated.rows[0][2], '25');
    await same('r2', 'truncated');
    await both('INSERT INTO r2 VALUES (1, \'back\')');
    await same('r2', 'insert after truncate');

    const location = (await loadTable(catalog.pointers, 'r2', io)).metadata.location;
    await cluster.query('DROP TABLE r2');
    assert.equal(await pointer('r2'), undefined);
    assert.ok(existsSync(fileURLToPath(`${location}/metadata`)), 'DROP without PURGE keeps the files');
    await cluster.query('DROP TABLE IF EXISTS r2');
    await refusedWith('DROP TABLE r2', 'unknown_table', /r2/);

    await cluster.query("CREATE TABLE p1 AS SELECT i AS id FROM range(0, 10) t(i)");
    await cluster.query('DELETE FROM p1 WHERE id < 3');
    const p1 = (await loadTable(catalog.pointers, 'p1', io)).metadata.location;
    const files = (d: string): string[] => (existsSync(d) ? readdirSync(d, { recursive: true }).map(String).filter((f) => statSync(join(d, f)).isFile()) : []);
    assert.ok(files(fileURLToPath(p1)).length > 3);
    await cluster.query('DROP TABLE p1 PURGE');
    assert.equal(await pointer('p1'), undefined);
    assert.deepEqual(files(fileURLToPath(p1)), [], 'PURGE deleted every file the table referenced');
  });
});

describe('MERGE INTO', () => {
  test('MERGE statements match plain DuckDB MERGE', async () => {
    await both("CREATE TABLE tgt AS SELECT i AS id, 'v' || i AS name, i * 1.5 AS amount FROM range(0, 200) t(i)");
    // More files: merges touch some of them only.
    await both("INSERT INTO tgt SELECT i AS id, 'w' || i, i * 2.0 FROM range(200, 260) t(i)");
    await both("CREATE TABLE src AS SELECT i AS id, 'new' || i AS name, i * 3.0 AS amount FROM range(180, 230) t(i)");
    const merges = [
      'MERGE INTO tgt USING src ON tgt.id = src.id WHEN MATCHED THEN UPDATE SET name = src.name, amount = src.amount WHEN NOT MATCHED THEN INSERT VALUES (src.id, src.name, src.amount)',
      "MERGE INTO tgt AS t USING (SELECT id + 100 AS id, name, amount FROM src) AS s ON t.id = s.id WHEN MATCHED AND s.amount > 650 THEN DELETE WHEN MATCHED THEN UPDATE SET amount = t.amount + 1 WHEN NOT MATCHED AND s.id % 2 = 0 THEN INSERT (id, name) VALUES (s.id, 'ins')",
      "MERGE INTO tgt t USING (VALUES (5, 'five'), (1000, 'thousand')) AS s(id, name) ON t.id = s.id WHEN MATCHED THEN UPDATE SET name = s.name WHEN NOT MATCHED THEN INSERT (id, name, amount) VALUES (s.id, s.name, 0)",
      'MERGE INTO tgt AS t USING src AS s ON t.id = s.id WHEN MATCHED THEN DELETE',
      'MERGE INTO tgt AS t USING src AS s ON t.id = s.id + 1000 WHEN NOT MATCHED THEN INSERT *',
    ];
    for (const m of merges) {
      const got = await cluster.query(m);
      const want = await reference.query(m);
      assert.equal(got.rows[0][0], 'merge');
      assert.equal(got.rows[0][2], String(want.rows[0][0]), `rows affected: ${m}`);
      await same('tgt', m);
    }
    const before = await pointer('tgt');
    const none = await cluster.query('MERGE INTO tgt USING (SELECT -1 AS id) s ON tgt.id = s.id WHEN MATCHED THEN DELETE');
    assert.equal(none.rows[0][2], '0');
    assert.equal(none.rows[0][3], null);
    assert.equal(await pointer('tgt'), before, 'nothing matched: no commit');
  });

  test('WHEN NOT MATCHED BY SOURCE matches plain DuckDB', async () => {
    await both("CREATE TABLE bys AS SELECT i AS id, i AS v FROM range(0, 30) t(i)");
    const m = 'MERGE INTO bys USING (SELECT i AS id FROM range(10, 20) t(i)) s ON bys.id = s.id WHEN MATCHED THEN UPDATE SET v = bys.v * 100 WHEN NOT MATCHED BY SOURCE AND bys.id > 25 THEN DELETE';
    await both(m);
    await same('bys', m);
  });

  test('a target row matched by several source rows is an error; bad MERGE changes nothing', async () => {
    await cluster.query('CREATE TABLE card AS SELECT i AS id, i AS v FROM range(0, 10) t(i)');
    const before = await pointer('card');
    await refusedWith('MERGE INTO card AS t USING (SELECT 3 AS id UNION ALL SELECT 3) s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = 0', 'bad_request', /cardinality violation/);
    await refusedWith('MERGE INTO card AS t USING (SELECT 3 AS id) s ON t.nope = s.id WHEN MATCHED THEN DELETE', 'binder_error', /nope/);
    await refusedWith('MERGE INTO card AS t USING (SELECT 3 AS id) s ON t.id = s.id WHEN MATCHED THEN DELETE RETURNING *', 'unsupported', /RETURNING/);
    await refusedWith('MERGE INTO nowhere USING (SELECT 3 AS id) s ON nowhere.id = s.id WHEN MATCHED THEN DELETE', 'unknown_table', /nowhere/);
    // A source row matching several target rows is fine (it updates each of them).
    await cluster.query('INSERT INTO card VALUES (3, 33)');
    const ok = await cluster.query('MERGE INTO card AS t USING (SELECT 3 AS id) s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = -1');
    assert.equal(ok.rows[0][2], '2');
    assert.notEqual(await pointer('card'), before);
  });
});

/** Copy a fixture table to a temp directory and adopt it with --reroot (absolute copy under the warehouse). */
async function adopt(name: string, fixture: string): Promise<void> {
  const copy = join(dir, 'fixtures', name);
  cpSync(join(FIXTURES, fixture), copy, { recursive: true });
  await catalog.registerIceberg(name, copy, { reroot: true, absoluteCopy: { io, location: pathToFileURL(join(warehouse, name)).href } });
}

describe('writes on Spark-written tables (delete files, adopted with --reroot)', () => {
  for (const [name, fixture, key] of [
    ['spark_eq', 'equality_deletes/warehouse/mydb/mytable', 'id'],
    ['spark_eq_part', 'equality_deletes/warehouse/mydb/mytable_partitioned', 'id'],
    ['spark_li', 'lineitem_iceberg', 'l_orderkey'],
  ] as const) {
    test(`${fixture}: INSERT, DELETE, UPDATE, MERGE, ALTER read back right`, async () => {
      await adopt(name, fixture);
      const rows = await cluster.query(`SELECT * FROM ${name}`);
      const cols = rows.columns.map((c) => `"${c.name}" ${c.type}`).join(', ');
      await reference.exec(`CREATE TABLE ${name} (${cols})`);
      // The reference holds the rows as PuffinDB read them (the reader is tested against Spark
      // elsewhere); a table without delete files, straight from its data files.
      const adopted = await loadTable(catalog.pointers, name, io);
      const files = (await planTableScan({ metadataLocation: adopted.metadataLocation, tableUri: adopted.metadata.location, metadata: adopted.metadata, io })).dataFiles;
      if (files.every((f) => f.deletes.length === 0)) {
        await reference.exec(`INSERT INTO ${name} BY NAME SELECT * FROM read_parquet([${files.map((f) => `'${fileURLToPath(f.uri)}'`).join(', ')}])`);
        assert.equal(Number((await reference.query(`SELECT count(*) FROM ${name}`)).rows[0][0]), rows.rows.length);
      } else {
        await reference.exec(`INSERT INTO ${name} SELECT * FROM (${rows.rows.length ? `VALUES ${rows.rows.map((r) => `(${r.map((v) => (v === null ? 'NULL' : `'${String(v).replace(/'/g, "''")}'`)).join(', ')})`).join(', ')}` : `SELECT * FROM ${name} LIMIT 0`})`);
      }
      const cwdBefore = readdirSync(process.cwd()).sort();
      await both(`INSERT INTO ${name} SELECT * FROM ${name} WHERE ${key} % 7 <> 1`);
      await both(`DELETE FROM ${name} WHERE ${key} % 5 = 2`);
      const text = rows.columns.find((c) => c.type === 'VARCHAR')!.name;
      await both(`UPDATE ${name} SET "${text}" = 'upd' WHERE ${key} % 4 = 3`);
      await same(name, 'after INSERT/DELETE/UPDATE');
      const m = `MERGE INTO ${name} AS t USING (SELECT ${key}, 'merged' AS x FROM ${name} WHERE ${key} % 6 = 0 GROUP BY ${key}) AS s ON t.${key} = s.${key} AND t."${text}" <> 'upd' WHEN MATCHED THEN UPDATE SET "${text}" = s.x`;
      // Plain DuckDB would see its own table in the source; both read the source before changing anything.
      await both(m);
      await same(name, 'after MERGE');
      await both(`ALTER TABLE ${name} ADD COLUMN extra INTEGER`);
      await both(`UPDATE ${name} SET extra = 1 WHERE ${key} % 3 = 0`);
      await same(name, 'after ALTER + UPDATE');
      // New files go under the table's own (warehouse) location, never the current directory.
      const t = await loadTable(catalog.pointers, name, io);
      assert.ok(t.metadata.location.startsWith(pathToFileURL(warehouse).href), t.metadata.location);
      const scan = await planTableScan({ metadataLocation: t.metadataLocation, tableUri: t.metadata.location, metadata: t.metadata, io });
      const fresh = scan.dataFiles.filter((f) => !f.path.includes('/fixtures/'));
      assert.ok(fresh.length > 0 && fresh.every((f) => f.path.startsWith(`${t.metadata.location}/`)), `${t.metadata.location}: ${scan.dataFiles.map((f) => f.path).join('\n')}`);
      assert.deepEqual(readdirSync(process.cwd()).sort(), cwdBefore, 'nothing written to the current directory');
    });
  }
});

describe('merge-on-read (write.delete.mode / write.update.mode)', () => {
  test('DELETE and UPDATE write position delete files, rewrite no data file, and match plain DuckDB', async () => {
    await both("CREATE TABLE mor AS SELECT i AS id, 'v' || i AS v, CASE WHEN i % 3 = 0 THEN 'a' ELSE 'b' END AS k FROM range(0, 500) t(i)");
    await cluster.query('ALTER TABLE mor SET PARTITIONED BY (k)');
    await both("INSERT INTO mor SELECT i, 'w' || i, CASE WHEN i % 3 = 0 THEN 'a' ELSE 'b' END FROM range(500, 800) t(i)");
    await cluster.query("ALTER TABLE mor SET ('write.delete.mode' = 'merge-on-read', 'write.update.mode' = 'merge-on-read')");
    const dataFiles = async () => {
      const t = await loadTable(catalog.pointers, 'mor', io);
      const scan = await planTableScan({ metadataLocation: t.metadataLocation, tableUri: t.metadata.location, metadata: t.metadata, io });
      return { data: new Set(scan.dataFiles.map((f) => f.path)), deletes: new Set(scan.dataFiles.flatMap((f) => f.deletes.map((d) => d.path))), t };
    };
    const before = await dataFiles();
    const del = await cluster.query('DELETE FROM mor WHERE id % 7 = 0 OR id BETWEEN 600 AND 650');
    const want = await reference.query('SELECT count(*) FROM mor WHERE id % 7 = 0 OR id BETWEEN 600 AND 650');
    assert.equal(del.rows[0][2], String(want.rows[0][0]));
    await reference.exec('DELETE FROM mor WHERE id % 7 = 0 OR id BETWEEN 600 AND 650');
    await same('mor', 'after merge-on-read DELETE');
    const afterDelete = await dataFiles();
    assert.deepEqual(afterDelete.data, before.data, 'no data file rewritten');
    assert.ok(afterDelete.deletes.size > 0);
    const snap = afterDelete.t.metadata.snapshots.find((x) => x.snapshotId === afterDelete.t.metadata.currentSnapshotId)!;
    assert.equal(snap.summary.operation, 'delete');
    assert.equal(snap.summary['added-position-deletes'], String(want.rows[0][0]));
    assert.ok(afterDelete.deletes.values().next().value!.startsWith(`${afterDelete.t.metadata.location}/data/`));

    await both("UPDATE mor SET v = upper(v), id = id + 10000 WHERE k = 'a' AND id < 300");
    await both('DELETE FROM mor WHERE id % 5 = 1');
    await same('mor', 'after merge-on-read UPDATE + DELETE');
    // Copy-on-write statements and MERGE on a table carrying our position deletes.
    await cluster.query("ALTER TABLE mor SET ('write.delete.mode' = 'copy-on-write')");
    await both("DELETE FROM mor WHERE v LIKE 'W%' AND id % 2 = 0");
    await both("MERGE INTO mor USING (SELECT i AS id FROM range(100, 200) t(i)) s ON mor.id = s.id WHEN MATCHED THEN UPDATE SET v = 'm' WHEN NOT MATCHED THEN INSERT VALUES (s.id, 'new', 'c')");
    await same('mor', 'after copy-on-write DELETE and MERGE over delete files');
  });

  test('merge-on-read on a Spark table with equality deletes', async () => {
    await adopt('spark_mor', 'equality_deletes/warehouse/mydb/mytable_partitioned');
    const rows = await cluster.query('SELECT * FROM spark_mor');
    await reference.exec(`CREATE TABLE spark_mor (${rows.columns.map((c) => `"${c.name}" ${c.type}`).join(', ')})`);
    for (const r of rows.rows) await reference.exec(`INSERT INTO spark_mor VALUES (${r.map((v) => (v === null ? 'NULL' : `'${String(v).replace(/'/g, "''")}'`)).join(', ')})`);
    await cluster.query("ALTER TABLE spark_mor SET ('write.delete.mode' = 'merge-on-read', 'write.update.mode' = 'merge-on-read')");
    await both('INSERT INTO spark_mor SELECT * FROM spark_mor');
    await both('DELETE FROM spark_mor WHERE id % 2 = 0');
    await both("UPDATE spark_mor SET name = name || '!' WHERE id % 3 = 0");
    await same('spark_mor', 'merge-on-read over equality deletes');
  });

  test('concurrent merge-on-read UPDATEs of the same rows: one commits, the other conflicts', async () => {
    await cluster.query("CREATE TABLE mor_c AS SELECT i AS id, 0 AS n FROM range(0, 50) t(i)");
    await cluster.query("ALTER TABLE mor_c SET ('write.update.mode' = 'merge-on-read', 'write.delete.mode' = 'merge-on-read')");
    const results = await Promise.allSettled([
      cluster.query('UPDATE mor_c SET n = n + 1 WHERE id < 10'),
      cluster.query('UPDATE mor_c SET n = n + 1 WHERE id < 10'),
      cluster.query('DELETE FROM mor_c WHERE id = 3'),
    ]);
    for (const r of results) if (r.status === 'rejected') assert.equal(r.reason.code, 'conflict', r.reason.message);
    const updates = results.slice(0, 2).filter((r) => r.status === 'fulfilled').length;
    const deleted = results[2].status === 'fulfilled';
    const got = await cluster.query('SELECT count(*), sum(n), count(DISTINCT id) FROM mor_c WHERE id < 10');
    // Never a row updated twice into two versions, never a deleted row back.
    assert.equal(got.rows[0][0], got.rows[0][2], 'no duplicate row versions');
    assert.equal(Number(got.rows[0][0]), deleted ? 9 : 10);
    assert.ok(Number(got.rows[0][1]) <= updates * Number(got.rows[0][0]));
  });
});

describe('concurrent writers', () => {
  test('ALTER TABLE vs INSERT: both commit; older appends read NULL for the new column', async () => {
    await cluster.query('CREATE TABLE conc_a (id INTEGER, v VARCHAR)');
    await cluster.query("INSERT INTO conc_a VALUES (-1, 'first')");
    // Column lists name only `id`, which no ALTER here touches: every INSERT binds in any order.
    const inserts = Array.from({ length: 6 }, (_, i) => cluster.query(`INSERT INTO conc_a (id) VALUES (${i})`));
    const alters = [cluster.query('ALTER TABLE conc_a ADD COLUMN c1 INTEGER'), cluster.query('ALTER TABLE conc_a RENAME COLUMN v TO w'), cluster.query('ALTER TABLE conc_a ADD COLUMN c2 VARCHAR')];
    const results = await Promise.allSettled([...inserts, ...alters]);
    const failed = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    assert.deepEqual(failed.map((f) => String(f.reason?.message)), [], 'appends survive add/rename of columns');
    const got = await cluster.query('SELECT id, w, c1, c2 FROM conc_a ORDER BY id');
    assert.deepEqual(got.rows, [[-1, 'first', null, null], ...Array.from({ length: 6 }, (_, i) => [i, null, null, null])]);
  });

  test('an append written before an ALTER commits after it when its files still read right', async () => {
    // The race made deterministic: files written for schema A, committed on a base with schema B.
    const { commitTable } = await import('../../runtime/catalog/iceberg/commit.ts');
    const { commitMetadataChange, applyAlter } = await import('../../runtime/catalog/iceberg/ddl.ts');
    const { writeDataFiles } = await import('../../runtime/catalog/iceberg/writer-data.ts');
    const conn = await engine.connect();
    try {
      for (const [alter, ok] of [
        ['ADD COLUMN extra VARCHAR', true], ['RENAME COLUMN v TO v2', true], ['DROP COLUMN v', true], ['ALTER COLUMN v DROP NOT NULL', true],
        ['ALTER COLUMN id TYPE BIGINT', false],
      ] as const) {
        const name = `race_${alter.split(' ')[0].toLowerCase()}_${alter.length}`;
        await cluster.query(`CREATE TABLE ${name} (id INTEGER, v VARCHAR NOT NULL)`);
        const base = await loadTable(catalog.pointers, name, io);
        const staging = mkdtempSync(join(dir, 'stage-'));
        const written = await writeDataFiles({ conn, table: name, metadata: base.metadata, selectSql: "SELECT 7 AS id, 'x' AS v", stagingDir: staging, io });
        const parsed = (await import('../../runtime/planner/write-planner.ts')).parseWrite(`ALTER TABLE ${name} ${alter}`);
        assert.ok(parsed?.kind === 'alter');
        await commitMetadataChange(catalog.pointers, io, name, (m) => applyAlter(conn, name, m, parsed.action));
        const commit = commitTable(catalog.pointers, name, { operation: 'append', files: written.files }, { io, base });
        if (ok) {
          await commit;
          assert.equal((await cluster.query(`SELECT count(*) FROM ${name} WHERE id = 7`)).rows[0][0], '1', alter);
        } else {
          await assert.rejects(commit, (err: { code: string; message: string }) => err.code === 'conflict' && /schema changed/.test(err.message), alter);
        }
      }
    } finally {
      conn.closeSync();
    }
  });

  test('ALTER COLUMN TYPE vs INSERT: an append written for the old type conflicts instead of committing', async () => {
    await cluster.query('CREATE TABLE conc_t (id INTEGER)');
    const results = await Promise.allSettled([
      ...Array.from({ length: 4 }, (_, i) => cluster.query(`INSERT INTO conc_t VALUES (${i})`)),
      cluster.query('ALTER TABLE conc_t ALTER COLUMN id TYPE BIGINT'),
    ]);
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    for (const r of results) if (r.status === 'rejected') assert.equal(r.reason.code, 'conflict', r.reason.message);
    const inserted = results.slice(0, 4).filter((r) => r.status === 'fulfilled').length;
    assert.ok(ok >= 1);
    assert.deepEqual((await cluster.query('SELECT count(*) FROM conc_t')).rows, [[String(inserted)]]);
  });

  test('MERGE vs DELETE: each commits or conflicts; the table equals some serial order', async () => {
    await cluster.query('CREATE TABLE conc_m AS SELECT i AS id, i AS v FROM range(0, 100) t(i)');
    const merge = 'MERGE INTO conc_m AS t USING (SELECT i AS id FROM range(40, 120) t(i)) s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = -t.v WHEN NOT MATCHED THEN INSERT VALUES (s.id, 0)';
    const del = 'DELETE FROM conc_m WHERE id % 2 = 0';
    const [m, d] = await Promise.allSettled([cluster.query(merge), cluster.query(del)]);
    for (const r of [m, d]) if (r.status === 'rejected') assert.equal(r.reason.code, 'conflict', r.reason.message);
    const serial = async (order: string[]) => {
      const e = await Engine.create({ threads: 1 });
      try {
        await e.exec('CREATE TABLE conc_m AS SELECT i::BIGINT AS id, i::BIGINT AS v FROM range(0, 100) t(i)');
        for (const s of order) await e.exec(s);
        return JSON.stringify((await e.query('SELECT * FROM conc_m ORDER BY id')).rows);
      } finally {
        e.close();
      }
    };
    const got = JSON.stringify((await cluster.query('SELECT * FROM conc_m ORDER BY id')).rows);
    const allowed =
      m.status === 'fulfilled' && d.status === 'fulfilled' ? [await serial([merge, del]), await serial([del, merge])]
        : m.status === 'fulfilled' ? [await serial([merge])]
          : d.status === 'fulfilled' ? [await serial([del])] : [await serial([])];
    assert.ok(allowed.includes(got), `state after ${m.status}/${d.status} is no serial order`);
  });
});
