// The filtered-partition cache (runtime/exec/partition-cache.ts): which predicates imply which,
// what a fragment's SQL lets the cache hold, the derived entries of the file cache under its
// byte bound, the process pool's routing of files to slots; then a local cluster of two
// worker processes (each with its own cache, so a hit is also the pool's routing at work)
// over an Iceberg table: repeat and narrower queries served from the cache; wider filters, new
// columns, volatile filters and a new snapshot with position deletes on the same data files
// missed; answers equal with the cache on and off.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WarehouseCatalog } from '../../../runtime/catalog/warehouse-catalog.ts';
import type { Column } from '../../../runtime/catalog/types.ts';
import { Engine } from '../../../runtime/engine/engine.ts';
import { LocalCluster } from '../../../runtime/exec/cluster.ts';
import { atomOf, fileKeyOf, parseDecimal, PartitionCache, predicateImplies, scanSpecsOf, type ScanSpec } from '../../../runtime/exec/partition-cache.ts';
import { preferredSlot, rendezvousSlot } from '../../../runtime/exec/process-pool-invoker.ts';
import type { FragmentInput } from '../../../runtime/planner/plan.ts';
import { loadSettings } from '../../../runtime/settings.ts';
import { parseStatement } from '../../../runtime/sql/parse.ts';
import { FileCache } from '../../../runtime/storage/file-cache.ts';
import type { QueryOutcome } from '../../../runtime/exec/query-service.ts';
import { assertSameResult } from '../../helpers/compare.ts';
import { partitionCacheOf } from '../../../runtime/exec/query-manager.ts';

const COLUMNS: Column[] = [
  { name: 'id', type: 'BIGINT' }, { name: 'x', type: 'INTEGER' }, { name: 'y', type: 'VARCHAR' },
  { name: 'z', type: 'DOUBLE' }, { name: 'd', type: 'DATE' }, { name: 'h', type: 'HUGEINT' },
];
const INPUT: FragmentInput = { view: 't', table: 't', columns: COLUMNS, files: [{ uri: 'file:///a.parquet', sizeBytes: 100, rowCount: 10 }] };
const SMALL: FragmentInput = { view: 's', table: 's', columns: [{ name: 'k', type: 'INTEGER' }, { name: 'label', type: 'VARCHAR' }], files: [] };

let engine: Engine;

/** The cacheable scan of input t in `sql` (over views t and s). */
async function specOf(sql: string, input: FragmentInput = INPUT): Promise<ScanSpec | undefined> {
  const { node } = await parseStatement(engine, sql);
  return (await scanSpecsOf(engine, node, [input, SMALL]))[0];
}

/** Does the filter of `narrow` imply that of `wide` (both over t)? */
async function implies(narrow: string, wide: string): Promise<boolean> {
  const n = await specOf(`SELECT id FROM t WHERE ${narrow}`);
  const w = await specOf(`SELECT id FROM t WHERE ${wide}`);
  assert.ok(n && w, `${narrow} / ${wide} should both be cacheable`);
  return predicateImplies(n.atoms, w.atoms);
}

before(async () => {
  engine = await Engine.create({ threads: 1 });
});

after(() => engine?.close());

describe('partition cache: implication', () => {
  test('the same, a conjunction containing it, contained ranges', async () => {
    assert.ok(await implies('x > 10', 'x > 10'));
    assert.ok(await implies("x > 20 AND y = 'a'", 'x > 10'));
    assert.ok(await implies('x >= 11', 'x > 10'), 'integers: >= 11 is inside > 10');
    assert.ok(await implies('x = 12', 'x > 10'));
    assert.ok(await implies('x IN (11, 15)', 'x BETWEEN 11 AND 20'));
    assert.ok(await implies('x IN (1, 2)', 'x IN (1, 2, 3)'));
    assert.ok(await implies('x BETWEEN 12 AND 14', 'x > 10 AND x < 20'));
    assert.ok(await implies('10 < x', 'x > 5'), 'a literal on the left');
    assert.ok(await implies("y = 'b'", "y >= 'a'"));
    assert.ok(await implies("d > DATE '2024-02-01'", "d >= '2024-01-01'"));
    assert.ok(await implies('x > 10', 'x IS NOT NULL'));
    assert.ok(await implies('x % 7 = 1 AND x > 3', 'x % 7 = 1'), 'an opaque conjunct by its expression');
    assert.ok(await implies('z > 2.5', 'z > 1'));
  });

  test('wider, other columns, strictness lost to rounding: not implied', async () => {
    assert.equal(await implies('x > 5', 'x > 10'), false);
    assert.equal(await implies('x > 10', "x > 10 AND y = 'a'"), false);
    assert.equal(await implies('id > 20', 'x > 10'), false);
    assert.equal(await implies('x IN (1, 4)', 'x IN (1, 2, 3)'), false);
    assert.equal(await implies('x % 7 = 2', 'x % 7 = 1'), false);
    assert.equal(await implies('x > 10 OR y = \'a\'', 'x > 10'), false);
    // z is DOUBLE: 10.0000000000000001 rounds to 10, so z >= it is not inside z > 10.
    assert.equal(await implies('z >= 10.0000000000000001', 'z > 10'), false);
    assert.ok(await implies('z > 10.0000000000000001', 'z > 10'));
    // Strings compare as bytes, not as numbers.
    assert.equal(await implies("y > '10'", "y > '9'"), false);
    assert.equal(await implies("y = '5'", 'x > 1'), false);
  });

  test('decimals parse exactly; keys do not carry the parser\'s process tag', async () => {
    assert.deepEqual(parseDecimal('12.50'), { m: 1250n, s: 2 });
    assert.deepEqual(parseDecimal('1e3'), { m: 1000n, s: 0 });
    assert.deepEqual(parseDecimal('-2.5E-2'), { m: -25n, s: 3 });
    assert.equal(parseDecimal('abc'), undefined);
    const big = await specOf('SELECT id FROM t WHERE id < 99999999999999999');
    assert.ok(big && !big.filterKey.includes('__puffindb_int_'), big?.filterKey);
    assert.equal(atomOf(big.filter[0], new Map([['id', 'BIGINT']])).kind, 'range');
    assert.ok(await implies('id < 99999999999999990', 'id < 99999999999999999'));
  });
});

describe('partition cache: what a fragment may cache', () => {
  test('the filter and the columns the statement reads', async () => {
    const spec = await specOf("SELECT y, sum(z) FROM t WHERE x > 10 AND y <> 'q' GROUP BY y");
    assert.deepEqual(spec?.columns.map((c) => c.name), ['x', 'y', 'z']);
    assert.equal(spec?.filter.length, 2);
    assert.deepEqual((await specOf('SELECT * FROM t WHERE x > 1', { ...INPUT, columns: COLUMNS.slice(0, 4) }))?.columns.map((c) => c.name), ['id', 'x', 'y', 'z']);
    // A join: t's own conjuncts (qualified or not) are its filter; the others are not.
    const joined = await specOf('SELECT t.id, s.label FROM t JOIN s ON t.x = s.k WHERE t.z > 1 AND s.label = \'a\' AND y = \'b\'');
    assert.equal(joined?.filter.length, 2);
    assert.deepEqual(joined?.columns.map((c) => c.name), ['id', 'x', 'y', 'z']);
  });

  test('nothing cached: no filter, volatile only, subqueries, outer side, CTEs, HUGEINT, read twice', async () => {
    assert.equal(await specOf('SELECT id FROM t'), undefined);
    assert.equal(await specOf('SELECT id FROM t WHERE random() < 0.5'), undefined);
    assert.equal(await specOf('SELECT id FROM t WHERE x > now()::DATE - DATE \'2020-01-01\''), undefined);
    assert.equal(await specOf('SELECT id FROM t WHERE x IN (SELECT k FROM s)'), undefined);
    assert.equal(await specOf('SELECT id FROM s LEFT JOIN t ON s.k = t.x WHERE t.z > 1'), undefined);
    assert.equal(await specOf('WITH c AS (SELECT 1) SELECT id FROM t WHERE x > 1'), undefined);
    assert.equal(await specOf('SELECT h FROM t WHERE x > 1'), undefined, 'HUGEINT does not round-trip through Parquet');
    assert.equal(await specOf('SELECT a.id FROM t a JOIN t b ON a.id = b.id WHERE a.x > 1'), undefined);
    assert.equal(await specOf('SELECT id FROM t WHERE list_filter([x], v -> v > 1) = [x]'), undefined);
    // A volatile conjunct is left out of what is cached; the rest is kept (the fragment re-applies it).
    const mixed = await specOf('SELECT id FROM t WHERE x > 3 AND random() < 0.5');
    assert.equal(mixed?.filter.length, 1);
    assert.ok(!mixed?.filterKey.toLowerCase().includes('random'));
  });

  test('the key of a file changes with its deletes, size and local identity', () => {
    const file = { uri: 's3://b/t/a.parquet', sizeBytes: 100, rowCount: 10 };
    const ice = (deletes: unknown[]) => ({ ...file, iceberg: { path: 's3://b/t/a.parquet', format: 'parquet', readSchema: [], deletes } as never });
    const a = fileKeyOf(INPUT, ice([]));
    assert.equal(a, fileKeyOf(INPUT, ice([])));
    assert.notEqual(a, fileKeyOf(INPUT, ice([{ uri: 's3://b/t/d.parquet', sizeBytes: 5, content: 'position' }])));
    assert.notEqual(fileKeyOf(INPUT, file), fileKeyOf(INPUT, { ...file, sizeBytes: 101 }));
    assert.notEqual(fileKeyOf(INPUT, file, { ino: 1, size: 100, mtimeMs: 1 }), fileKeyOf(INPUT, file, { ino: 1, size: 100, mtimeMs: 2 }));
  });
});

describe('partition cache: entries in the file cache', () => {
  test('served when implied and covered, evicted under the shared bound', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'puffin-pc-unit-'));
    try {
      const files = new FileCache({ dir: join(dir, 'cache'), maxBytes: 2500 });
      const cache = new PartitionCache(files, { maxFraction: 1 });
      const spec = (await specOf('SELECT x, z FROM t WHERE x > 10'))!;
      const narrower = (await specOf('SELECT x FROM t WHERE x > 20'))!;
      const wider = (await specOf('SELECT x FROM t WHERE x > 5'))!;
      const moreColumns = (await specOf('SELECT x, y FROM t WHERE x > 20'))!;
      const entry = (n: number) => {
        const path = join(dir, `e${n}.parquet`);
        writeFileSync(path, Buffer.alloc(1000, n));
        return path;
      };
      assert.ok(await cache.admit('f1', spec, entry(1), 1000, 1000));
      const hit = cache.find('f1', narrower);
      assert.ok(hit, 'a narrower filter over fewer columns is served');
      hit.release();
      assert.equal(cache.find('f1', wider), undefined);
      assert.equal(cache.find('f1', moreColumns), undefined);
      assert.equal(cache.find('f2', narrower), undefined, 'another file');
      // Two more entries of 1000 bytes: the bound (2500) holds two, the least recently used goes.
      assert.ok(await cache.admit('f2', spec, entry(2), 1000, 1000));
      assert.ok(cache.find('f1', spec)?.release() === undefined);
      assert.ok(await cache.admit('f3', spec, entry(3), 1000, 1000));
      assert.equal(cache.find('f2', spec), undefined, 'f2 was least recently used');
      assert.ok(cache.find('f1', spec));
      assert.ok(files.stats().bytes <= 2500, `${files.stats().bytes} bytes`);
      assert.equal(readdirSync(join(dir, 'cache')).filter((n) => n.startsWith('p-')).length, 2);
      // An entry not worth keeping (over the share of its file) is refused and remembered.
      const strict = new PartitionCache(files, { maxFraction: 0.5 });
      assert.equal(await strict.admit('f4', spec, entry(4), 1000, 1000), false);
      assert.ok(strict.wasSkipped('f4', spec));
      // A file without a row under the filter: an empty entry, nothing on disk.
      cache.admitEmpty('f5', spec);
      const empty = cache.find('f5', narrower);
      assert.ok(empty && empty.path === undefined && empty.bytes === 0);
      assert.equal(cache.find('f5', wider), undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('routing files to pool slots', () => {
  test('rendezvous: stable, spread, and a fragment prefers where most of its bytes hash', () => {
    const uris = Array.from({ length: 200 }, (_, i) => `s3://b/t/${i}.parquet`);
    const slots = uris.map((u) => rendezvousSlot(u, 4));
    assert.deepEqual(slots, uris.map((u) => rendezvousSlot(u, 4)));
    for (let s = 0; s < 4; s++) assert.ok(slots.filter((x) => x === s).length > 25, `slot ${s} gets its share`);
    // Growing the pool moves only the files the new slot wins.
    const moved = uris.filter((u) => rendezvousSlot(u, 4) !== rendezvousSlot(u, 5));
    assert.ok(moved.every((u) => rendezvousSlot(u, 5) === 4));
    const fragment = { id: 'f0', output: 'p', sql: '', inputs: [{ ...INPUT, files: [{ uri: uris[0], sizeBytes: 10, rowCount: 1 }, { uri: uris[1], sizeBytes: 1000, rowCount: 1 }] }] };
    assert.equal(preferredSlot(fragment, 4), rendezvousSlot(uris[1], 4));
    assert.equal(preferredSlot(fragment, 1), undefined);
    assert.equal(preferredSlot({ ...fragment, inputs: [] }, 4), undefined);
    // A file the pool last ran on another slot belongs to that slot.
    const other = (rendezvousSlot(uris[1], 4) + 1) % 4;
    assert.equal(preferredSlot(fragment, 4, (uri) => (uri === uris[1] ? other : undefined)), other);
  });
});

describe('partition cache through a local cluster', () => {
  let dir: string;
  let catalogEngine: Engine;
  const clusters: LocalCluster[] = [];
  let on: LocalCluster;
  let off: LocalCluster;
  let open: (name: string, env: Record<string, string>, invoker: 'pool' | 'in-process') => Promise<LocalCluster>;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'puffin-pc-'));
    const warehouse = join(dir, 'warehouse');
    mkdirSync(warehouse, { recursive: true });
    catalogEngine = await Engine.create({ threads: 1 });
    const catalog = await WarehouseCatalog.open(join(dir, 'home', 'catalog'), catalogEngine);
    open = async (name, env, invoker) => {
      const settings = loadSettings({ PUFFINDB_HOME: join(dir, name), PUFFINDB_WAREHOUSE: warehouse, PUFFINDB_WORKERS: '2', PUFFINDB_THREADS: '1', ...env });
      const cluster = await LocalCluster.open({ settings, catalog, invoker, startProcesses: 'now' });
      clusters.push(cluster);
      return cluster;
    };
    // Two worker processes, each with a cache of its own: a hit on a repeat means the pool
    // sent the file back to the process that read it.
    on = await open('on', {}, 'pool');
    off = await open('off', { PUFFINDB_PARTITION_CACHE: 'off' }, 'in-process');
    await on.query('CREATE TABLE t (id BIGINT, x INTEGER, y VARCHAR, z DOUBLE)');
    for (let i = 0; i < 4; i++) await on.query(`INSERT INTO t SELECT i, i % 100, 'v' || (i % 7), i / 3.0 FROM range(${i * 10000}, ${(i + 1) * 10000}) r(i)`);
  });

  after(async () => {
    for (const c of clusters) await c.close();
    catalogEngine?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const cacheOf = (r: QueryOutcome) => {
    const st = (r.stats.stages ?? []).filter((s) => s.cacheHits !== undefined);
    return { hits: st.reduce((n, s) => n + (s.cacheHits ?? 0), 0), misses: st.reduce((n, s) => n + (s.cacheMisses ?? 0), 0), saved: st.reduce((n, s) => n + (s.cacheBytesSaved ?? 0), 0) };
  };

  test('repeat and narrower queries read cached partitions; wider, new columns, volatile and a new snapshot miss', async () => {
    const q = (sql: string) => on.query(sql, { fragments: 2 });
    const first = await q('SELECT count(*), sum(z) FROM t WHERE x > 90');
    assert.deepEqual(cacheOf(first), { hits: 0, misses: 4, saved: 0 });
    const again = await q('SELECT count(*), sum(z) FROM t WHERE x > 90');
    assert.deepEqual(again.rows, first.rows);
    const c = cacheOf(again);
    assert.equal(c.hits, 4);
    assert.ok(c.saved > 0);
    assert.ok(again.stats.bytesScanned < first.stats.bytesScanned, `${again.stats.bytesScanned} < ${first.stats.bytesScanned}`);
    const narrow = await q('SELECT count(*), sum(z) FROM t WHERE x > 95 AND z > 100');
    assert.equal(cacheOf(narrow).hits, 4, 'x > 95 AND z > 100 is inside x > 90');
    assert.deepEqual(narrow.rows, (await off.query('SELECT count(*), sum(z) FROM t WHERE x > 95 AND z > 100')).rows);
    assert.equal(cacheOf(await q('SELECT count(*), sum(z) FROM t WHERE x > 80')).hits, 0, 'wider');
    assert.equal(cacheOf(await q('SELECT count(*), sum(id) FROM t WHERE x > 90')).hits, 0, 'a column not cached');
    const volatile = await q('SELECT count(*) FROM t WHERE random() < 2');
    assert.deepEqual(cacheOf(volatile), { hits: 0, misses: 0, saved: 0 }, 'a volatile filter is never cached');
    assert.deepEqual(cacheOf(await q('SELECT count(*) FROM t WHERE random() < 2')), { hits: 0, misses: 0, saved: 0 });
    // A new snapshot with position deletes on the same data files: the delete set is part of
    // the key, so every file is a miss, and the deleted rows are gone from the answer.
    const before = (await on.explain('SELECT count(*) FROM t WHERE x > 90')).fragments.flatMap((f) => f.inputs[0].files.map((x) => x.uri)).sort();
    await on.query("ALTER TABLE t SET ('write.delete.mode' = 'merge-on-read')");
    await on.query('DELETE FROM t WHERE id % 10 = 1');
    const deleted = (await on.explain('SELECT count(*) FROM t WHERE x > 90')).fragments.flatMap((f) => f.inputs[0].files);
    assert.deepEqual(deleted.map((x) => x.uri).sort(), before, 'the same data files');
    assert.ok(deleted.some((x) => (x.iceberg?.deletes.length ?? 0) > 0), 'with delete files');
    const fresh = await q('SELECT count(*), sum(z) FROM t WHERE x > 90');
    assert.deepEqual(fresh.rows, (await off.query('SELECT count(*), sum(z) FROM t WHERE x > 90')).rows);
    assert.notDeepEqual(fresh.rows, first.rows);
    assert.equal(cacheOf(fresh).hits, 0, 'no entry of the old delete set serves the new snapshot');
    assert.equal(cacheOf(await q('SELECT count(*), sum(z) FROM t WHERE x > 90')).misses, 0, 'and the new entries serve the repeat');
    const plan = await on.explain('SELECT count(*) FROM t WHERE x > 90');
    const files = plan.fragments.flatMap((f) => f.inputs[0].files);
    assert.equal(cacheOf(fresh).hits + cacheOf(fresh).misses, files.length);
  });

  test("the query record's figures are the stages' sums", async () => {
    const ran = await on.query('SELECT count(*) FROM t WHERE x = 7', { fragments: 2 });
    const again = await on.query('SELECT count(*) FROM t WHERE x = 7', { fragments: 2 });
    const c = cacheOf(again);
    assert.deepEqual(partitionCacheOf(again.stats), { partitionCache: { hits: c.hits, misses: c.misses, bytesSaved: c.saved } });
    assert.ok(c.hits > 0 && c.hits === cacheOf(ran).misses, JSON.stringify(c));
    assert.deepEqual(partitionCacheOf((await on.query('SELECT count(*) FROM t')).stats), {}, 'nothing to cache, no figures');
    // Files with no row under the filter are empty entries: served without reading anything.
    const sparse = 'SELECT count(*), sum(z) FROM t WHERE id < 100 AND x >= 0';
    const sparseFirst = await on.query(sparse, { fragments: 2 });
    const sparseAgain = await on.query(sparse, { fragments: 2 });
    assert.deepEqual(sparseAgain.rows, sparseFirst.rows);
    assert.deepEqual(sparseAgain.rows, (await off.query(sparse)).rows);
    assert.equal(cacheOf(sparseAgain).misses, 0);
    assert.ok(sparseAgain.stats.bytesScanned < sparseFirst.stats.bytesScanned / 4, `${sparseAgain.stats.bytesScanned} bytes read`);
  });

  test('answers with the cache on and off are equal, run twice', async () => {
    const queries = [
      "SELECT y, count(*), sum(z) FROM t WHERE x BETWEEN 10 AND 20 AND y IN ('v1', 'v2') GROUP BY y ORDER BY y",
      "SELECT y, count(*), sum(z) FROM t WHERE x BETWEEN 12 AND 14 AND y = 'v1' GROUP BY y ORDER BY y",
      'SELECT id, x, z FROM t WHERE x = 42 AND z > 1000 ORDER BY id LIMIT 20',
      'SELECT * FROM t AS a WHERE a.x > 98 AND a.z >= 0 ORDER BY id',
    ];
    for (const sql of queries) {
      const want = await off.query(sql);
      assertSameResult(await on.query(sql), want, { ordered: true }, sql);
      assertSameResult(await on.query(sql), want, { ordered: true }, `${sql} (cached)`);
    }
    assert.ok(cacheOf(await on.query(queries[0])).hits > 0, 'a repeat reads the cache');
  });

  test('concurrent queries on one in-process worker: each fragment in a sandbox of its own, at most PUFFINDB_WORKERS of them, answers equal', async () => {
    // Fragments arriving together used to get the same sandbox number (taken after an await),
    // and each new sandbox empties its directory: a running fragment's files could vanish
    // ("Failed to create directory .../partitions/0").
    // 6 queries of 4 fragments at once on one worker of 3 sandboxes at most (PUFFINDB_WORKERS):
    // fragments beyond wait for one, rather than each making a DuckDB of its own.
    const one = await open('one', { PUFFINDB_WORKERS: '3' }, 'in-process');
    const sqls = Array.from({ length: 6 }, (_, k) => `SELECT count(*), sum(x), min(z) FROM t WHERE x > ${90 - k} AND id >= ${k}`);
    const want = await Promise.all(sqls.map((sql) => off.query(sql)));
    for (let round = 0; round < 2; round++) {
      const got = await Promise.all(sqls.map((sql) => one.query(sql, { fragments: 4 })));
      got.forEach((r, k) => assert.deepEqual(r.rows, want[k].rows, `${sqls[k]} (round ${round})`));
    }
    const boxes = (one as unknown as { invoker: { worker: { sandboxes: { dir: string }[] } } }).invoker.worker.sandboxes.map((b) => b.dir);
    assert.ok(boxes.length > 1, 'fragments ran concurrently');
    assert.ok(boxes.length <= 3, `at most PUFFINDB_WORKERS sandboxes: ${boxes.length}`);
    assert.equal(new Set(boxes).size, boxes.length, `sandbox directories: ${boxes.join(', ')}`);
  });
});
