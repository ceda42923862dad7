// The Hudi fixtures (../shared/fixtures/hudi/, real copy-on-write tables written by Spark with
// Hudi 0.14 and 1.0) registered in the warehouse catalog and queried with SQL through the
// local cluster, in-process and through the pool of worker processes, with the
// fixtures README's answers; plus tables written here by test/helpers/hudi-writer.ts for what
// the fixtures do not show (Avro commit metadata of a partitioned version 8 table, plain
// partition paths, a commit still in flight, a replace commit, new commits showing, a
// merge-on-read table refused at registration).

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { WarehouseCatalog } from '../../runtime/catalog/warehouse-catalog.ts';
import { Engine, type JsonValue } from '../../runtime/engine/engine.ts';
import { PuffinError } from '../../runtime/errors.ts';
import { LocalCluster } from '../../runtime/exec/cluster.ts';
import { loadSettings, toRootUrl, type Settings } from '../../runtime/settings.ts';
import { tempDir } from '../runtime/catalog/iceberg/fixtures.ts';
import { writeBaseFile, writeHoodieProperties, writeInstant, type HudiTableSpec } from '../helpers/hudi-writer.ts';

const FIXTURES = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../shared/fixtures/hudi');
const TABLES = ['v6_nonpartitioned', 'v6_complexkeygen_hivestyle', 'v8_nonpartitioned'];
const README_ANSWER = [[1, 'Alice', false], [2, 'Bob', false], [3, 'Carol', true], [4, 'Diana', true]];

const dir = tempDir('hudi-cluster');
let engine: Engine;
let catalog: WarehouseCatalog;

function settingsFor(name: string): Settings {
  const home = join(dir.path, `home-${name}`);
  return loadSettings({}, { home, warehouse: toRootUrl(join(dir.path, 'warehouse')), shuffleUrl: toRootUrl(join(home, 'shuffle')), cacheDir: join(home, 'cache'), threads: 1, workers: 2, maxFragments: 3 });
}

// Written: table version 8, partitioned by region (plain directory names, not hive style).
// Instant 1 writes g1 (eu: ids 1..3) and g2 (us: 10..11); instant 2 rewrites g1 (ids 1..4);
// instant 3 is still in flight with a new g2 slice; instant 4 replaces g2 by g3 (us: 20).
const written: HudiTableSpec = { version: 8, partitionFields: ['region'], hiveStyle: false, fields: [{ name: 'id', type: ['null', 'long'] }, { name: 'region', type: ['null', 'string'] }] };
const T = (n: number) => `2025010100000000${n}`;
const rowsSql = (ids: number[], region: string) => `SELECT * FROM (VALUES ${ids.map((i) => `(${i}::BIGINT, '${region}')`).join(', ')}) v(id, region)`;

before(async () => {
  assert.ok(existsSync(FIXTURES), `the Hudi fixtures are expected at ${FIXTURES}`);
  engine = await Engine.create({ threads: 2 });
  catalog = await WarehouseCatalog.open(join(dir.path, 'home', 'catalog'), engine);
  for (const t of TABLES) await catalog.registerHudi(t, join(FIXTURES, t));

  const w = join(dir.path, 'lake', 'written');
  writeHoodieProperties(w, written);
  const g1a = await writeBaseFile(engine, w, 'eu', 'g1', T(1), rowsSql([1, 2, 3], 'eu'));
  const g2a = await writeBaseFile(engine, w, 'us', 'g2', T(1), rowsSql([10, 11], 'us'));
  await writeInstant(w, written, T(1), { files: [g1a, g2a] });
  const g1b = await writeBaseFile(engine, w, 'eu', 'g1', T(2), rowsSql([1, 2, 3, 4], 'eu'));
  await writeInstant(w, written, T(2), { files: [g1b] });
  await writeBaseFile(engine, w, 'us', 'g2', T(3), rowsSql([10, 11, 12, 13, 14], 'us'));
  await writeInstant(w, written, T(3), { state: 'inflight' });
  await catalog.registerHudi('written', w);
});

after(() => {
  engine.close();
  dir.remove();
});

test('the catalog sees the fixtures as Hudi tables at their newest completed commits', async () => {
  assert.deepEqual(await catalog.listTables(), [...TABLES, 'written'].sort());
  const v6 = await catalog.getTable('v6_nonpartitioned');
  assert.equal(v6?.kind, 'hudi');
  assert.equal(v6?.snapshotId.split(':')[0], '20240418173551906');
  assert.equal(v6?.files.length, 1); // the newer of the file group's two slices
  assert.equal(v6?.files[0].rowCount, 4);
  assert.deepEqual(v6?.columns.slice(0, 8).map((c) => c.name), ['_hoodie_commit_time', '_hoodie_commit_seqno', '_hoodie_record_key', '_hoodie_partition_path', '_hoodie_file_name', 'id', 'name', 'isActive']);
  const hive = await catalog.getTable('v6_complexkeygen_hivestyle');
  assert.equal(hive?.files.length, 3);
  assert.deepEqual(hive?.files.map((f) => [f.stats.byteField?.min, f.stats.shortField?.min]), [['10', '300'], ['20', '100'], ['30', '100']]);
  assert.equal((await catalog.getTable('v8_nonpartitioned'))?.snapshotId.split(':')[0], '20250713010536861');
  const summaries = await catalog.summaries();
  assert.deepEqual(summaries.filter((s) => s.kind === 'hudi').map((s) => [s.name, s.fileCount, s.rowCount]), [['v6_complexkeygen_hivestyle', 3, 4], ['v6_nonpartitioned', 1, 4], ['v8_nonpartitioned', 1, 4], ['written', 2, 6]]);
});

describe('Hudi tables through the cluster (in-process invoker)', () => {
  let cluster: LocalCluster;
  const rows = async (sql: string, fragments?: number): Promise<JsonValue[][]> => (await cluster.query(sql, { fragments })).rows;

  before(async () => {
    cluster = await LocalCluster.open({ settings: settingsFor('in-process'), catalog, invoker: 'in-process' });
  });
  after(async () => {
    await cluster.close();
  });

  for (const t of TABLES) {
    test(`${t}: the README's answer, the latest file slice of each group`, async () => {
      for (const fragments of [1, 3]) assert.deepEqual(await rows(`SELECT id, name, isActive FROM ${t} ORDER BY id`, fragments), README_ANSWER);
    });
  }

  test('v6_complexkeygen_hivestyle: the README\'s partition filter answer, pruned by the directory values', async () => {
    const r = await cluster.query('SELECT id, name, isActive FROM v6_complexkeygen_hivestyle WHERE byteField >= 10 AND byteField < 20 AND shortField <> 100 ORDER BY id');
    assert.deepEqual(r.rows, [[1, 'Alice', false], [3, 'Carol', true]]);
    assert.equal(r.plan.scans[0].filesTotal, 3);
    assert.equal(r.plan.scans[0].filesKept, 1);
    // Meta columns read from the files, as Spark shows them.
    assert.deepEqual(await rows("SELECT _hoodie_record_key, _hoodie_partition_path, _hoodie_commit_time FROM v6_complexkeygen_hivestyle WHERE name = 'Diana'"), [['id:4,name:Diana', 'byteField=30/shortField=100', '20240418173235694']]);
  });

  test('time travel: AT (VERSION => instant) and AT (TIMESTAMP => ...) read an older commit', async () => {
    const first = [[1, 'Alice', true], [2, 'Bob', false], [3, 'Carol', true]];
    assert.deepEqual(await rows('SELECT id, name, isActive FROM v6_nonpartitioned AT (VERSION => 20240418173550988) ORDER BY id'), first);
    assert.deepEqual(await rows('SELECT id, name, isActive FROM v8_nonpartitioned AT (VERSION => 20250713010535797) ORDER BY id'), first);
    assert.deepEqual(await rows('SELECT id, name, isActive FROM v6_complexkeygen_hivestyle AT (VERSION => 20240418173213674) ORDER BY id'), first);
    // Instant times are compared with the timestamp's wall clock in UTC.
    assert.deepEqual(await rows("SELECT count(*) FROM v6_nonpartitioned AT (TIMESTAMP => TIMESTAMP '2024-04-18 17:35:51')"), [['3']]);
    assert.deepEqual(await rows("SELECT count(*) FROM v6_nonpartitioned AT (TIMESTAMP => TIMESTAMP '2024-04-18 17:35:52')"), [['4']]);
    await assert.rejects(cluster.query('SELECT count(*) FROM v6_nonpartitioned AT (VERSION => 20240418173551000)'), /instant 20240418173551000 is not a completed commit of the table \(its completed commits run from 20240418173550988 to 20240418173551906\)/);
    await assert.rejects(cluster.query("SELECT count(*) FROM v6_nonpartitioned AT (TIMESTAMP => TIMESTAMP '2000-01-01')"), /no completed commit at or before 2000-01-01/);
  });

  test('a written version 8 table: plain partition paths, Avro commit metadata, a commit in flight left out', async () => {
    assert.deepEqual(await rows('SELECT region, count(*), sum(id) FROM written GROUP BY 1 ORDER BY 1'), [['eu', '4', '10'], ['us', '2', '21']]);
    const r = await cluster.query("SELECT id FROM written WHERE region = 'us' ORDER BY id");
    assert.deepEqual(r.rows, [['10'], ['11']]);
    assert.equal(r.plan.scans[0].filesKept, 1);
  });

  test('new commits show: a replace commit drops the group it replaces', async () => {
    const w = join(dir.path, 'lake', 'written');
    const g3 = await writeBaseFile(engine, w, 'us', 'g3', T(4), rowsSql([20], 'us'));
    await writeInstant(w, written, T(4), { action: 'replacecommit', files: [g3], replaced: [{ partitionPath: 'us', fileId: 'g2' }] });
    assert.deepEqual(await rows('SELECT region, id FROM written ORDER BY id'), [['eu', '1'], ['eu', '2'], ['eu', '3'], ['eu', '4'], ['us', '20']]);
    assert.deepEqual(await rows(`SELECT count(*) FROM written AT (VERSION => ${T(2)})`), [['6']]);
  });

  test('Hudi tables join like any other', async () => {
    assert.deepEqual(await rows('SELECT a.id, b.name FROM v6_nonpartitioned a JOIN v8_nonpartitioned b ON a.id = b.id WHERE a.isActive ORDER BY 1'), [[3, 'Carol'], [4, 'Diana']]);
  });

  test('writes to a Hudi table are refused: it is read only', async () => {
    await assert.rejects(cluster.query("INSERT INTO v8_nonpartitioned (id, name) VALUES (5, 'Eve')"), (err: unknown) => err instanceof PuffinError && err.code === 'unsupported' && /v8_nonpartitioned is a Hudi table, which is read only here \(insert refused/.test(err.message));
    await assert.rejects(cluster.query('DELETE FROM v6_nonpartitioned WHERE id = 1'), (err: unknown) => err instanceof PuffinError && err.code === 'unsupported');
    assert.deepEqual(await rows('SELECT count(*) FROM v8_nonpartitioned'), [['4']]);
  });
});

test('a merge-on-read table is refused at registration, naming it, and nothing is recorded', async () => {
  const mor = join(dir.path, 'lake', 'mor');
  const spec: HudiTableSpec = { version: 6, type: 'MERGE_ON_READ', fields: [{ name: 'id', type: ['null', 'long'] }] };
  writeHoodieProperties(mor, spec);
  const f = await writeBaseFile(engine, mor, '', 'g1', T(1), 'SELECT 1::BIGINT AS id');
  await writeInstant(mor, spec, T(1), { files: [f] });
  await assert.rejects(catalog.registerHudi('mor', mor), (err: unknown) => err instanceof PuffinError && err.code === 'unsupported' && /is a MERGE_ON_READ table .*COPY_ON_WRITE tables only/.test(err.message));
  assert.equal(await catalog.getTable('mor'), undefined);
  await assert.rejects(catalog.registerHudi('nothing', join(dir.path, 'lake', 'nothing')), (err: unknown) => err instanceof PuffinError && err.code === 'not_found' && /not a Hudi table/.test(err.message));
  await assert.rejects(catalog.registerHudi('v8_nonpartitioned', join(FIXTURES, 'v8_nonpartitioned')), (err: unknown) => err instanceof PuffinError && err.code === 'conflict');
  await assert.rejects(catalog.registerDelta('v8_nonpartitioned', join(FIXTURES, 'v8_nonpartitioned')), (err: unknown) => err instanceof PuffinError && err.code === 'conflict' && /a Hudi table/.test(err.message));
});

test("through the process pool: every fixture reads with the README's answers", async () => {
  const cluster = await LocalCluster.open({ settings: settingsFor('pool'), catalog, invoker: 'pool' });
  try {
    for (const t of TABLES) assert.deepEqual((await cluster.query(`SELECT id, name, isActive FROM ${t} ORDER BY id`, { fragments: 3 })).rows, README_ANSWER, t);
    const r = await cluster.query('SELECT id, name, isActive FROM v6_complexkeygen_hivestyle WHERE byteField >= 10 AND byteField < 20 AND shortField <> 100 ORDER BY id', { fragments: 3 });
    assert.deepEqual(r.rows, [[1, 'Alice', false], [3, 'Carol', true]]);
    assert.equal(r.plan.scans[0].filesKept, 1);
  } finally {
    await cluster.close();
  }
});
