// The combining exchange (runtime/exec/shuffle-combine.ts): the grid, the combiners' bytes
// over real DuckDB shuffle pieces (every partition reads back the same rows as the direct
// shuffle, through fewer GETs), and a staged query through a local cluster whose shuffles
// are combined, against DuckDB's answer.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ParquetCatalog } from '../../../runtime/catalog/parquet-catalog.ts';
import { Engine, runQuery } from '../../../runtime/engine/engine.ts';
import { LocalCluster } from '../../../runtime/exec/cluster.ts';
import { combineGrid, combineShuffle, combineSourceOf, decodeCombineSource, shouldCombine } from '../../../runtime/exec/shuffle-combine.ts';
import { decodePartitionSource, decodeShuffleIndex, partitionSlicer, partitionSources, readShufflePartition, writeShuffle, type ShuffleIndex } from '../../../runtime/exec/shuffle.ts';
import { loadSettings, toRootUrl } from '../../../runtime/settings.ts';
import { sqlIdent, sqlString } from '../../../runtime/sql/quote.ts';
import { LocalObjectStore } from '../../../runtime/storage/local-store.ts';
import { assertSameRows, CountingStore } from './shuffle-fixtures.ts';

describe('combineGrid', () => {
  test('covers every (producer, partition) pair exactly once, in rows of about sqrt(P)', () => {
    for (const [p, n] of [[1000, 1000], [130, 7], [9, 100], [2, 1], [17, 17]] as const) {
      const cells = combineGrid(p, n);
      const seen = new Uint8Array(p * n);
      for (const c of cells) {
        for (let i = c.producers[0]; i < c.producers[1]; i++) for (let q = c.partitions[0]; q < c.partitions[1]; q++) seen[i * n + q]++;
      }
      assert.ok(seen.every((x) => x === 1), `${p} x ${n}: every pair once`);
      const rows = new Set(cells.map((c) => c.producers.join())).size;
      const rowSize = Math.max(...cells.map((c) => c.producers[1] - c.producers[0]));
      // A consumer reads one object per row; a combiner one range per producer of its row.
      assert.ok(rows <= Math.ceil(Math.sqrt(p)) + 1 && rowSize <= Math.ceil(Math.sqrt(p)) + 1, `${p} x ${n}: ${rows} rows of ${rowSize}`);
    }
    assert.throws(() => combineGrid(0, 4), /positive/);
  });

  test('combines only when enough producers stored an object', () => {
    const stored = { location: { kind: 'object' } } as ShuffleIndex;
    const inline = { location: { kind: 'inline' } } as ShuffleIndex;
    assert.equal(shouldCombine(Array(200).fill(stored), 200), true);
    assert.equal(shouldCombine(Array(100).fill(stored), 200), false, 'under the default of 128 objects');
    assert.equal(shouldCombine([...Array(100).fill(stored), ...Array(400).fill(inline)], 200), false, 'inline pieces cost no GET');
    assert.equal(shouldCombine(Array(8).fill(stored), 8, 2), true);
    assert.equal(shouldCombine(Array(8).fill(stored), 1, 2), false, 'one consumer');
    assert.equal(shouldCombine(Array(500).fill(stored), 500, 0), false, '0 turns it off');
  });
});

describe('combineShuffle over real pieces', () => {
  let dir: string;
  let engine: Engine;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'puffin-combine-'));
    engine = await Engine.create({ threads: 1 });
  });
  after(() => {
    engine?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('every partition reads back the direct shuffle\'s rows, with one GET per row of producers', async () => {
    const conn = await engine.connect();
    try {
      const store = new CountingStore(new LocalObjectStore(join(dir, 'store')));
      const producers = 9;
      const partitions = 6;
      const indexes: ShuffleIndex[] = [];
      for (let t = 0; t < producers; t++) {
        // Producer 4 has no rows at all; some producers leave partitions empty; one is inline.
        const rows = t === 4 ? 0 : 50 + t * 7;
        const written = await writeShuffle({
          conn, store, queryId: 'q1', stageId: 's1', taskId: `t${t}`, scratchDir: join(dir, 'w'),
          sourceSql: `SELECT i + ${t * 1000} AS id, (i % ${t % 3 === 0 ? 2 : 5})::INTEGER AS k, 'v' || i AS s FROM range(${rows}) r(i)`,
          partitioning: { kind: 'hash', keys: [{ expr: 'k', type: 'INTEGER' }], count: partitions }, inlineLimitBytes: t === 2 ? 1 << 20 : 0,
        });
        indexes.push(JSON.parse(JSON.stringify(written.index)) as ShuffleIndex);
      }
      const cells = combineGrid(producers, partitions);
      store.reset();
      const combined: ShuffleIndex[] = [];
      for (const [i, cell] of cells.entries()) {
        const [from, to] = cell.partitions;
        // What a combiner is sent: each producer's share of its column group, through JSON.
        const sources = indexes.slice(...cell.producers).map((x) => decodeCombineSource(JSON.parse(JSON.stringify(combineSourceOf(x, from, to))), to - from));
        const done = await combineShuffle({
          store, sources, partitions, columns: indexes[0].columns, duckdb: indexes[0].duckdb, from, to,
          queryId: 'q1', stageId: 's1-combine', taskId: `c${i}`, inlineLimitBytes: 0,
        });
        // It survives the trip to a consumer as JSON and the consumer's structural check.
        combined.push(decodeShuffleIndex(JSON.parse(JSON.stringify(done.index))));
      }
      const stored = indexes.filter((x) => x.location.kind === 'object' && x.totalBytes > 0).length;
      assert.ok(store.calls.getRange <= stored * Math.ceil(partitions / Math.ceil(partitions / Math.ceil(Math.sqrt(producers)))), `combiner GETs: ${store.calls.getRange}`);
      const slice = partitionSlicer(combined);
      for (let p = 0; p < partitions; p++) {
        // A consumer is sent its own pieces: what partitionSources gives, a fraction of the indexes.
        assert.deepEqual(slice(p), partitionSources(combined, p));
        assert.deepEqual(partitionSlicer(indexes)(p), partitionSources(indexes, p));
        const sent = JSON.parse(JSON.stringify(slice(p))).map(decodePartitionSource);
        assert.ok(JSON.stringify(sent).length < JSON.stringify(combined).length / 2, 'a slice, not the indexes');
        store.reset();
        const direct = await readShufflePartition({ conn, store, sources: { indexes, partition: p }, viewName: `d${p}`, scratchDir: join(dir, 'r'), hedge: false });
        const directGets = store.calls.getRange;
        store.reset();
        const viaCombined = await readShufflePartition({ conn, store, sources: sent, columns: combined[0].columns, viewName: `c${p}`, scratchDir: join(dir, 'r'), hedge: false });
        assert.ok(store.calls.getRange <= 3, `partition ${p}: ${store.calls.getRange} GETs through the combiners (direct: ${directGets})`);
        assert.equal(viaCombined.rows, direct.rows);
        await assertSameRows(conn, `SELECT * FROM ${sqlIdent(direct.view)}`, `SELECT * FROM ${sqlIdent(viaCombined.view)}`);
        await direct.release();
        await viaCombined.release();
      }
      assert.throws(() => decodeShuffleIndex({ ...combined[0], totalBytes: combined[0].totalBytes + 1 }), /totalBytes/);
      await assert.rejects(combineShuffle({ store, sources: [], partitions, columns: indexes[0].columns, duckdb: indexes[0].duckdb, from: 3, to: 2, queryId: 'q1', stageId: 's1-combine', taskId: 'cx', inlineLimitBytes: 0 }), /outside/);
      // A source that crossed a process boundary is checked before any GET.
      const good = combineSourceOf(indexes[0], 0, 3);
      assert.throws(() => decodeCombineSource({ ...good, lengths: [1] }, 3), /lengths/);
      assert.throws(() => decodeCombineSource({ ...good, taskId: '../x' }, 3), /taskId/);
      assert.throws(() => decodePartitionSource({ ...slice(0)[0], length: 1e9 }), /files|outside/);
    } finally {
      conn.closeSync();
    }
  });
});

describe('a staged query through combined shuffles', () => {
  let dir: string;
  let engine: Engine;
  let cluster: LocalCluster;
  let shuffleDir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'puffin-combine-q-'));
    const warehouse = join(dir, 'warehouse');
    engine = await Engine.create({ threads: 1 });
    for (const [table, rows] of [['facts', 400], ['dims', 300]] as const) {
      mkdirSync(join(warehouse, table), { recursive: true });
      for (let i = 0; i < 8; i++) {
        await engine.exec(`COPY (SELECT ${i} * ${rows} + range AS id, (range % 53)::INTEGER AS k, (range * 0.25)::DECIMAL(12,2) AS v
          FROM range(${rows})) TO ${sqlString(join(warehouse, table, `part-${i}.parquet`))} (FORMAT parquet)`);
      }
    }
    const home = join(dir, 'home');
    const catalog = await ParquetCatalog.open(join(home, 'catalog'), engine);
    await catalog.addTable('facts', join(warehouse, 'facts'));
    await catalog.addTable('dims', join(warehouse, 'dims'));
    shuffleDir = join(home, 'shuffle');
    // Every table "large" (a partitioned join, not co-split), every shuffle piece stored, and combined from 8 objects.
    const settings = loadSettings(
      { PUFFINDB_BROADCAST_LIMIT_BYTES: '0', PUFFINDB_INLINE_LIMIT_BYTES: '0', PUFFINDB_SHUFFLE_COMBINE_ABOVE: '8', PUFFINDB_SHUFFLE_PARTITIONS: '8', PUFFINDB_STAGE_TASK_BYTES: '0', PUFFINDB_CO_SPLIT: 'off' },
      { home, warehouse: toRootUrl(warehouse), shuffleUrl: toRootUrl(shuffleDir), cacheDir: join(home, 'cache'), threads: 1, workers: 2, maxFragments: 8 },
    );
    cluster = await LocalCluster.open({ settings, catalog, invoker: 'in-process' });
  });
  after(async () => {
    await cluster?.close();
    engine?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a partitioned join reads combined objects and answers as DuckDB does; no object is left', async () => {
    const sql = 'SELECT f.k, count(*) AS n, sum(f.v + d.v) AS s FROM facts f JOIN dims d ON f.id = d.id GROUP BY f.k ORDER BY f.k';
    const got = await cluster.query(sql, { role: 'admin' });
    const stages = got.stats.stages ?? [];
    const combines = stages.filter((s) => s.stage.endsWith('-combine'));
    assert.equal(combines.length, 2, `both sides of the join combined: ${stages.map((s) => `${s.stage}:${s.tasks}`).join(' ')}`);
    const join_ = stages.find((s) => !s.stage.endsWith('-combine') && s.shuffleGets > 0);
    assert.ok(join_, 'a stage read the shuffles');
    // 8 producers per side in rows of 3: each join task reads 3 objects per side, not 8.
    assert.ok(join_.shuffleGets <= join_.tasks * 2 * 3, `join stage GETs ${join_.shuffleGets} for ${join_.tasks} tasks`);
    const want = await runQuery(await engine.connect(), sql.replace(/facts/g, `read_parquet(${sqlString(join(dir, 'warehouse', 'facts', '*.parquet'))})`).replace(/dims/g, `read_parquet(${sqlString(join(dir, 'warehouse', 'dims', '*.parquet'))})`));
    assert.deepEqual(got.rows.map((r) => r.map(String)), want.rows.map((r) => r.map(String)));
    const left = existsSync(shuffleDir) ? readdirSync(shuffleDir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && e.name.endsWith('.shuffle')) : [];
    assert.deepEqual(left, [], 'producers\' and combiners\' objects deleted');
  });
});
