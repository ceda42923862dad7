// Delta tables written here by test/helpers/delta-writer.ts, following the protocol, for what
// the fixtures do not cover: deletion vectors of every storage type (two in one file, one
// replaced by a later commit), column mapping `name` (files with and without field ids, a
// renamed column) and `id` (file column names that mean nothing), checkpoints (classic,
// multi-part, v2 with a sidecar; the commits before them deleted), typed partition values
// with hive-style directories that disagree with the log, stats pruning that must not drop
// rows, new commits showing, and protocols that are refused. Read through the catalog and
// the in-process cluster; expected answers come from the rows written, not from the reader.

import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { z85Decode, z85Encode } from '../../../../runtime/catalog/delta/deletion-vectors.ts';
import { WarehouseCatalog } from '../../../../runtime/catalog/warehouse-catalog.ts';
import { Engine, type JsonValue } from '../../../../runtime/engine/engine.ts';
import { PuffinError } from '../../../../runtime/errors.ts';
import { LocalCluster } from '../../../../runtime/exec/cluster.ts';
import { loadSettings, toRootUrl } from '../../../../runtime/settings.ts';
import {
  commitInfo, deletionVectorFile, inlineDeletionVector, metaData, protocol, removeAction, version20, writeCheckpoint, writeCommit, writeDataFile, writeMultiPartCheckpoint, writeV2Checkpoint, type Action,
} from '../../../helpers/delta-writer.ts';
import { tempDir } from '../iceberg/fixtures.ts';

const dir = tempDir('delta-tables');
let engine: Engine;
let catalog: WarehouseCatalog;
let cluster: LocalCluster;
const root = (name: string) => join(dir.path, 'lake', name);
const rows = async (sql: string, fragments?: number): Promise<JsonValue[][]> => (await cluster.query(sql, { fragments })).rows;
const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

before(async () => {
  engine = await Engine.create({ threads: 1 });
  catalog = await WarehouseCatalog.open(join(dir.path, 'home', 'catalog'), engine);
  const home = join(dir.path, 'home');
  const settings = loadSettings({}, { home, warehouse: toRootUrl(join(dir.path, 'warehouse')), shuffleUrl: toRootUrl(join(home, 'shuffle')), cacheDir: join(home, 'cache'), threads: 1, workers: 1, maxFragments: 3 });
  cluster = await LocalCluster.open({ settings, catalog, invoker: 'in-process' });
});

after(async () => {
  await cluster.close();
  engine.close();
  dir.remove();
});

test('Z85 decodes the fixture\'s deletion vector UUID and round-trips', () => {
  assert.equal(Buffer.from(z85Decode('vBn[lx{q8@P<9BNH/isA')).toString('hex'), '61d16c75699446b7a15b8b538852e50e');
  const bytes = Uint8Array.from(range(0, 32).map((i) => (i * 37) & 0xff));
  assert.deepEqual(z85Decode(z85Encode(bytes)), bytes);
  assert.throws(() => z85Decode('abcd'), /multiple of 5/);
});

describe('deletion vectors', () => {
  const t = () => root('dv');
  // f1: ids 0..99, file DV (u, with a prefix) deleting 0, 5, 99; replaced at version 2 by one
  //     deleting 0..9 as well. f2: ids 100..199, inline DV deleting positions 0..49.
  // f3: ids 200..299, a DV stored by absolute path (p) in the same file as f4's.
  // f4: ids 300..5299 (one bitmap container past 4096 values), deleting every even position.
  before(async () => {
    const fields = [{ name: 'id', type: 'long' }];
    const [d1] = deletionVectorFile(t(), [[0, 5, 99]], { prefix: 'ab' });
    const [d3, d4] = deletionVectorFile(t(), [[1, 2, 3], range(0, 5000).filter((i) => i % 2 === 0)], { absolute: true });
    const add = (n: number, from: number, to: number, dv?: Action) => writeDataFile(engine, t(), `part-${n}.parquet`, `SELECT i::BIGINT AS id FROM range(${from}, ${to}) t(i)`, { stats: { numRecords: to - from, minValues: { id: from }, maxValues: { id: to - 1 }, nullCount: { id: 0 }, tightBounds: !dv }, deletionVector: dv });
    const a1 = await add(1, 0, 100, d1);
    writeCommit(t(), 0, [commitInfo(1000), protocol(3, ['deletionVectors']), metaData(fields, [], { 'delta.enableDeletionVectors': 'true' }), a1]);
    writeCommit(t(), 1, [commitInfo(2000), await add(2, 100, 200, inlineDeletionVector(range(0, 50))), await add(3, 200, 300, d3), await add(4, 300, 5300, d4)]);
    // Version 2: f1's vector replaced (remove with the old vector, add with the new one).
    const [d1b] = deletionVectorFile(t(), [[0, 5, 99, ...range(0, 10)]]);
    const a1b = structuredClone(a1);
    (a1b.add as Record<string, unknown>).deletionVector = d1b;
    writeCommit(t(), 2, [commitInfo(3000), removeAction(a1), a1b]);
    await catalog.registerDelta('dv', t());
  });

  test('rows are deleted by position with every storage type', async () => {
    const expected = 100 - 11 + 50 + 97 + 2500;
    for (const fragments of [1, 3]) assert.deepEqual(await rows('SELECT count(*), sum(id) FROM dv', fragments), [[String(expected), String(
      range(10, 99).reduce((a, b) => a + b, 0) + range(150, 200).reduce((a, b) => a + b, 0) + [200, ...range(204, 300)].reduce((a, b) => a + b, 0) + range(0, 5000).filter((i) => i % 2 === 1).reduce((a, b) => a + 300 + b, 0),
    )]]);
    assert.deepEqual(await rows('SELECT id FROM dv WHERE id < 12 OR id BETWEEN 148 AND 151 OR id BETWEEN 199 AND 205 ORDER BY id'), [[10], [11], [150], [151], [199], [200], [204], [205]].map(([v]) => [String(v)]));
  });

  test('time travel sees the vector of each version', async () => {
    assert.deepEqual(await rows('SELECT count(*) FROM dv AT (VERSION => 0)'), [['97']]);
    assert.deepEqual(await rows('SELECT count(*) FROM dv AT (VERSION => 1)'), [[String(97 + 50 + 97 + 2500)]]);
    assert.deepEqual(await rows("SELECT count(*) FROM dv AT (TIMESTAMP => TIMESTAMPTZ '1970-01-01 00:00:02.5+00')"), [[String(97 + 50 + 97 + 2500)]]);
  });

  test('a vector whose cardinality disagrees with its descriptor is refused', async () => {
    const bad = root('dv-bad');
    const dv = inlineDeletionVector([1, 2]);
    dv.cardinality = 3;
    writeCommit(bad, 0, [protocol(3, ['deletionVectors']), metaData([{ name: 'id', type: 'long' }]), await writeDataFile(engine, bad, 'p.parquet', 'SELECT 1::BIGINT AS id', { deletionVector: dv })]);
    await assert.rejects(catalog.registerDelta('dv_bad', bad), (err: unknown) => err instanceof PuffinError && err.code === 'bad_request' && /holds 2 positions, its descriptor says 3/.test(err.message));
  });
});

describe('column mapping', () => {
  test("mode 'name': physical names, with and without Parquet field ids, a renamed column, a mapped partition column", async () => {
    const t = root('cm-name');
    const fields = [{ name: 'k', type: 'integer', physicalName: 'col-k', id: 1 }, { name: 'v', type: 'string', physicalName: 'col-v', id: 2 }, { name: 'p', type: 'string', physicalName: 'col-p', id: 3 }];
    const cfg = { 'delta.columnMapping.mode': 'name', 'delta.columnMapping.maxColumnId': '3' };
    // A file with field ids, and one without (read by physical name); both hold a decoy
    // column named like the logical one, which must not be read.
    const a = await writeDataFile(engine, t, 'a.parquet', `SELECT i::INTEGER AS "col-k", 'a' || i AS "col-v", -1 AS k FROM range(0, 3) t(i)`, { fieldIds: { 'col-k': 1, 'col-v': 2, k: 99 }, partitionValues: { 'col-p': 'x' } });
    const b = await writeDataFile(engine, t, 'b.parquet', `SELECT 'b' || i AS "col-v", i::INTEGER + 10 AS "col-k", 'decoy' AS v FROM range(0, 2) t(i)`, { partitionValues: { 'col-p': 'y' } });
    writeCommit(t, 0, [protocol(2), metaData(fields, ['p'], cfg), a, b]);
    // Version 1 renames v to w (same physical name).
    writeCommit(t, 1, [metaData([fields[0], { ...fields[1], name: 'w' }, fields[2]], ['p'], cfg)]);
    await catalog.registerDelta('cm_name', t);
    assert.deepEqual(await rows('SELECT p, k, w FROM cm_name ORDER BY k'), [['x', 0, 'a0'], ['x', 1, 'a1'], ['x', 2, 'a2'], ['y', 10, 'b0'], ['y', 11, 'b1']]);
    assert.deepEqual(await rows('SELECT v FROM cm_name AT (VERSION => 0) WHERE p = \'y\' ORDER BY 1'), [['b0'], ['b1']]);
  });

  test('nested types: structs, arrays and maps without column mapping; a struct under name mapping', async () => {
    const t = root('nested');
    const struct = { type: 'struct', fields: [{ name: 'a', type: 'integer', nullable: true, metadata: {} }, { name: 'b', type: 'string', nullable: true, metadata: {} }] };
    const fields = [{ name: 's', type: struct }, { name: 'l', type: { type: 'array', elementType: 'long', containsNull: true } }, { name: 'm', type: { type: 'map', keyType: 'string', valueType: 'double', valueContainsNull: true } }];
    const f = await writeDataFile(engine, t, 'f.parquet', `SELECT {'a': 1, 'b': 'x'} AS s, [1, 2]::BIGINT[] AS l, MAP {'k': 1.5::DOUBLE} AS m`);
    writeCommit(t, 0, [protocol(1), metaData(fields), f]);
    await catalog.registerDelta('nested', t);
    assert.deepEqual(await rows('SELECT s.a, s.b, l[2], m[\'k\'] FROM nested'), [[1, 'x', '2', 1.5]]);

    const u = root('nested-cm');
    const cmStruct = { type: 'struct', fields: [
      { name: 'a', type: 'integer', nullable: true, metadata: { 'delta.columnMapping.id': 2, 'delta.columnMapping.physicalName': 'col-a' } },
      { name: 'b', type: 'string', nullable: true, metadata: { 'delta.columnMapping.id': 3, 'delta.columnMapping.physicalName': 'col-b' } },
    ] };
    const withIds = await writeDataFile(engine, u, 'ids.parquet', `SELECT {'col-a': 1, 'col-b': 'x'} AS "col-s"`, { fieldIds: { 'col-s': { __duckdb_field_id: 1, 'col-a': 2, 'col-b': 3 } } });
    const noIds = await writeDataFile(engine, u, 'noids.parquet', `SELECT {'col-b': 'y', 'col-a': 2} AS "col-s"`);
    writeCommit(u, 0, [protocol(2), metaData([{ name: 's', type: cmStruct, physicalName: 'col-s', id: 1 }], [], { 'delta.columnMapping.mode': 'name' }), withIds, noIds]);
    await catalog.registerDelta('nested_cm', u);
    assert.deepEqual(await rows('SELECT s.a, s.b FROM nested_cm ORDER BY 1'), [[1, 'x'], [2, 'y']]);
  });

  test("mode 'id': columns matched by Parquet field id whatever the files call them", async () => {
    const t = root('cm-id');
    const fields = [{ name: 'a', type: 'long', physicalName: 'col-a', id: 7 }, { name: 'b', type: 'double', physicalName: 'col-b', id: 8 }];
    const f = await writeDataFile(engine, t, 'f.parquet', 'SELECT 2.5::DOUBLE AS whatever, 42::BIGINT AS other', { fieldIds: { whatever: 8, other: 7 } });
    writeCommit(t, 0, [protocol(3, ['columnMapping']), metaData(fields, [], { 'delta.columnMapping.mode': 'id' }), f]);
    await catalog.registerDelta('cm_id', t);
    assert.deepEqual(await rows('SELECT a, b FROM cm_id'), [['42', 2.5]]);
  });
});

describe('checkpoints', () => {
  // Versions 0..3 add files of 10 rows each, version 2 removes version 0's; a checkpoint of
  // version 2 is written and the commits it covers are deleted, then version 3 follows.
  async function build(name: string, kind: 'classic' | 'multi' | 'v2' | 'v2json'): Promise<string> {
    const t = root(name);
    const fields = [{ name: 'id', type: 'long' }, { name: 'part', type: 'integer' }];
    const proto = kind.startsWith('v2') ? protocol(3, ['v2Checkpoint']) : protocol(1);
    const md = metaData(fields, ['part']);
    const files: Action[] = [];
    for (let v = 0; v < 4; v++) {
      files.push(await writeDataFile(engine, t, `part=${v}/f${v}.parquet`, `SELECT i::BIGINT AS id FROM range(${v * 10}, ${v * 10 + 10}) t(i)`, { partitionValues: { part: String(v) }, stats: { numRecords: 10, minValues: { id: v * 10 }, maxValues: { id: v * 10 + 9 }, nullCount: { id: 0 } } }));
    }
    writeCommit(t, 0, [commitInfo(0), proto, md, files[0]]);
    writeCommit(t, 1, [commitInfo(1), files[1]]);
    writeCommit(t, 2, [commitInfo(2), removeAction(files[0]), files[2]]);
    const state = [proto, md, files[1], files[2]];
    if (kind === 'classic') await writeCheckpoint(engine, t, 2, state);
    else if (kind === 'multi') await writeMultiPartCheckpoint(engine, t, 2, state, 2);
    else await writeV2Checkpoint(engine, t, 2, state, kind === 'v2json' ? 'json' : 'parquet');
    for (const v of [0, 1, 2]) rmSync(join(t, '_delta_log', `${version20(v)}.json`));
    writeCommit(t, 3, [commitInfo(3), files[3]]);
    return t;
  }

  for (const kind of ['classic', 'multi', 'v2', 'v2json'] as const) {
    test(`${kind} checkpoint, then the commits after it`, async () => {
      await catalog.registerDelta(`cp_${kind}`, await build(`cp-${kind}`, kind));
      assert.deepEqual(await rows(`SELECT part, count(*), min(id), max(id) FROM cp_${kind} GROUP BY 1 ORDER BY 1`), [[1, '10', '10', '19'], [2, '10', '20', '29'], [3, '10', '30', '39']]);
      assert.deepEqual(await rows(`SELECT count(*) FROM cp_${kind} AT (VERSION => 2)`), [['20']]);
      const r = await cluster.query(`SELECT count(*) FROM cp_${kind} WHERE part = 2`);
      assert.deepEqual(r.rows, [['10']]);
      assert.equal(r.plan.scans[0].filesKept, 1);
      await assert.rejects(cluster.query(`SELECT count(*) FROM cp_${kind} AT (VERSION => 1)`), /commit 0 is missing/);
    });
  }

  test('new commits show on the next read', async () => {
    const t = root('cp-classic');
    writeCommit(t, 4, [commitInfo(4), await writeDataFile(engine, t, 'part=9/f9.parquet', 'SELECT 99::BIGINT AS id', { partitionValues: { part: '9' } })]);
    assert.match((await catalog.getTable('cp_classic'))?.snapshotId ?? '', /^4:[0-9a-f-]{36}$/);
    assert.deepEqual(await rows('SELECT count(*), max(id) FROM cp_classic'), [['31', '99']]);
  });
});

describe('partition values and statistics', () => {
  test('typed partition values from the log win over hive-style directories; NULL partitions', async () => {
    const t = root('typed');
    const fields = [{ name: 'x', type: 'long' }, { name: 'n', type: 'integer' }, { name: 'd', type: 'date' }, { name: 'ts', type: 'timestamp' }, { name: 'b', type: 'boolean' }, { name: 's', type: 'string' }, { name: 'dec', type: 'decimal(10,2)' }];
    const parts = ['n', 'd', 'ts', 'b', 's', 'dec'];
    const f1 = await writeDataFile(engine, t, 'n=999/d=1999-01-01/f1.parquet', 'SELECT 1::BIGINT AS x', { partitionValues: { n: '5', d: '2024-02-29', ts: '2024-03-01 12:30:00.123456', b: 'true', s: 'a b', dec: '12.50' }, stats: { numRecords: 1 } });
    const f2 = await writeDataFile(engine, t, 'n=5/f2.parquet', 'SELECT 2::BIGINT AS x', { partitionValues: { n: null, d: '', ts: null, b: 'false', s: '', dec: '-0.01' }, stats: { numRecords: 1 } });
    writeCommit(t, 0, [protocol(1), metaData(fields, parts), f1, f2]);
    await catalog.registerDelta('typed', t);
    assert.deepEqual(await rows("SELECT x, n, d, strftime(ts AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M:%S.%f'), b, s, dec FROM typed ORDER BY x"), [
      ['1', 5, '2024-02-29', '2024-03-01 12:30:00.123456', true, 'a b', '12.50'],
      ['2', null, null, null, false, null, '-0.01'],
    ]);
    const r = await cluster.query('SELECT x FROM typed WHERE n = 999');
    assert.deepEqual(r.rows, []);
    assert.deepEqual(await rows('SELECT x FROM typed WHERE n IS NULL AND s IS NULL'), [['2']]);
    assert.deepEqual(await rows("SELECT x FROM typed WHERE ts = TIMESTAMPTZ '2024-03-01 12:30:00.123456+00'"), [['1']]);
  });

  test('statistics prune files, but never a file holding a matching row', async () => {
    const t = root('stats');
    const fields = [{ name: 'id', type: 'long' }, { name: 's', type: 'string' }, { name: 'ts', type: 'timestamp' }];
    const long = 'm'.repeat(40);
    // File 1's recorded bounds are what writers record: a timestamp max in milliseconds (the
    // value has microseconds) and a string max truncated to a prefix.
    const f1 = await writeDataFile(engine, t, 'f1.parquet', `SELECT * FROM (VALUES (1::BIGINT, '${long}z', TIMESTAMPTZ '2024-01-01 00:00:00.000900+00'), (2, 'a', TIMESTAMPTZ '2024-01-01 00:00:00+00')) v(id, s, ts)`, { stats: { numRecords: 2, minValues: { id: 1, s: 'a', ts: '2024-01-01T00:00:00.000Z' }, maxValues: { id: 2, s: long, ts: '2024-01-01T00:00:00.000Z' }, nullCount: { id: 0, s: 0, ts: 0 } } });
    const f2 = await writeDataFile(engine, t, 'f2.parquet', `SELECT 100::BIGINT AS id, 'q' AS s, TIMESTAMPTZ '2025-01-01 00:00:00+00' AS ts`, { stats: { numRecords: 1, minValues: { id: 100, s: 'q', ts: '2025-01-01T00:00:00.000Z' }, maxValues: { id: 100, s: 'q', ts: '2025-01-01T00:00:00.000Z' }, nullCount: { id: 0, s: 0, ts: 0 } } });
    // No stats at all: never pruned.
    const f3 = await writeDataFile(engine, t, 'f3.parquet', `SELECT NULL::BIGINT AS id, NULL AS s, NULL::TIMESTAMPTZ AS ts`);
    writeCommit(t, 0, [protocol(1), metaData(fields), f1, f2, f3]);
    await catalog.registerDelta('stats', t);
    let r = await cluster.query('SELECT id FROM stats WHERE id >= 50');
    assert.deepEqual(r.rows, [['100']]);
    assert.equal(r.plan.scans[0].filesKept, 2);
    r = await cluster.query(`SELECT id FROM stats WHERE s > '${long}' ORDER BY id`);
    assert.deepEqual(r.rows, [['1'], ['100']]); // file 1's truncated maximum is not used
    r = await cluster.query("SELECT id FROM stats WHERE ts > TIMESTAMPTZ '2024-01-01 00:00:00.0005+00' AND ts < TIMESTAMPTZ '2024-06-01 00:00:00+00'");
    assert.deepEqual(r.rows, [['1']]);
    r = await cluster.query('SELECT count(*) FROM stats WHERE id IS NULL');
    assert.deepEqual(r.rows, [['1']]);
    assert.equal(r.plan.scans[0].filesKept, 1);
  });
});

describe('reconciliation', () => {
  test('a remove naming a file by its absolute URI removes the file added by relative path', async () => {
    const t = root('abs-remove');
    const a = await writeDataFile(engine, t, 'dir with space/a.parquet', 'SELECT 1::BIGINT AS id');
    const b = await writeDataFile(engine, t, 'b.parquet', 'SELECT 2::BIGINT AS id');
    writeCommit(t, 0, [protocol(1), metaData([{ name: 'id', type: 'long' }]), a, b]);
    writeCommit(t, 1, [{ remove: { path: `file://${t}/dir%20with%20space/a.parquet`, deletionTimestamp: 0, dataChange: true } }]);
    await catalog.registerDelta('abs_remove', t);
    assert.deepEqual(await rows('SELECT id FROM abs_remove'), [['2']]);
    assert.deepEqual(await rows('SELECT id FROM abs_remove AT (VERSION => 0) ORDER BY id'), [['1'], ['2']]);
  });
});

describe('protocols and registration', () => {
  test('a reader feature this reader lacks is refused at registration, naming it', async () => {
    const t = root('future');
    writeCommit(t, 0, [protocol(3, ['deletionVectors', 'typeWidening']), metaData([{ name: 'id', type: 'long' }])]);
    await assert.rejects(catalog.registerDelta('future', t), (err: unknown) => err instanceof PuffinError && err.code === 'unsupported' && /reader feature typeWidening/.test(err.message) && err.httpStatus === 400);
    assert.equal(await catalog.getTable('future'), undefined);
    const v4 = root('v4');
    writeCommit(v4, 0, [protocol(4), metaData([{ name: 'id', type: 'long' }])]);
    await assert.rejects(catalog.registerDelta('v4', v4), /reader version 4/);
  });

  test('a protocol upgraded after registration is refused at read', async () => {
    const t = root('upgraded');
    writeCommit(t, 0, [protocol(1), metaData([{ name: 'id', type: 'long' }]), await writeDataFile(engine, t, 'a.parquet', 'SELECT 1::BIGINT AS id')]);
    await catalog.registerDelta('upgraded', t);
    assert.deepEqual(await rows('SELECT id FROM upgraded'), [['1']]);
    writeCommit(t, 1, [protocol(3, ['variantType'])]);
    await assert.rejects(cluster.query('SELECT id FROM upgraded'), (err: unknown) => err instanceof PuffinError && err.code === 'unsupported' && /variantType/.test(err.message));
    assert.deepEqual(await rows('SELECT id FROM upgraded AT (VERSION => 0)'), [['1']]);
  });

  test('names are one kind at a time; drop forgets the table; bad paths are refused', async () => {
    await assert.rejects(catalog.registerDelta('dv', root('dv')), (err: unknown) => err instanceof PuffinError && err.code === 'conflict');
    await assert.rejects(catalog.registerDelta('nowhere', root('nowhere')), (err: unknown) => err instanceof PuffinError && err.code === 'not_found');
    const broken = root('broken');
    writeCommit(broken, 0, [protocol(1)]);
    writeFileSync(join(broken, '_delta_log', `${version20(1)}.json`), '{not json\n');
    await assert.rejects(catalog.registerDelta('broken', broken), (err: unknown) => err instanceof PuffinError && err.code === 'bad_request' && /line 1 is not JSON/.test(err.message));
    await assert.rejects(cluster.query('INSERT INTO dv VALUES (1)'), (err: unknown) => err instanceof PuffinError && err.code === 'unsupported' && /Delta Lake table/.test(err.message));
    await catalog.registerDelta('dropme', root('dv'));
    await catalog.dropTable('dropme');
    assert.equal(await catalog.getTable('dropme'), undefined);
    // The name bound again to another table at the same version: no cached plan serves it.
    for (const [n, count] of [['swap-a', 1], ['swap-b', 2]] as const) {
      const t = root(n);
      writeCommit(t, 0, [protocol(1), metaData([{ name: 'id', type: 'long' }]), await writeDataFile(engine, t, 'f.parquet', `SELECT i::BIGINT AS id FROM range(${count}) t(i)`)]);
      if (count === 2) await catalog.dropTable('swap');
      await catalog.registerDelta('swap', t);
      assert.deepEqual(await rows('SELECT count(*) FROM swap'), [[String(count)]]);
    }
  });
});
