// A table of one large Parquet file spreads over the fragments: the catalog records the
// file's row groups, the planner splits it into row ranges (planner/assign.ts), and each
// fragment reads only its range. Answers equal plain DuckDB's through both invokers, with
// the partition cache on (an entry per split, never the whole file's rows for a split),
// and the splits read fewer bytes each than the file.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ParquetCatalog } from '../../../runtime/catalog/parquet-catalog.ts';
import { Engine } from '../../../runtime/engine/engine.ts';
import { LocalCluster } from '../../../runtime/exec/cluster.ts';
import { loadSettings, toRootUrl } from '../../../runtime/settings.ts';
import { sqlString } from '../../../runtime/sql/quote.ts';

let dir: string;
let engine: Engine;
let catalog: ParquetCatalog;
const clusters: LocalCluster[] = [];
const ROWS = 10_000;

async function open(name: string, invoker: 'in-process' | 'pool', env: Record<string, string> = {}): Promise<LocalCluster> {
  const home = join(dir, `home-${name}`);
  const settings = loadSettings(env, { home, warehouse: toRootUrl(join(dir, 'warehouse')), shuffleUrl: toRootUrl(join(home, 'shuffle')), cacheDir: join(home, 'cache'), threads: 1, workers: 2, maxFragments: 4 });
  const cluster = await LocalCluster.open({ settings, catalog, invoker });
  clusters.push(cluster);
  return cluster;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'puffin-splits-'));
  engine = await Engine.create({ threads: 1 });
  mkdirSync(join(dir, 'warehouse', 'big'), { recursive: true });
  mkdirSync(join(dir, 'warehouse', 'dim'), { recursive: true });
  // One file of five row groups (2,048 rows each, the last 1,808), and a small dimension.
  await engine.exec(`COPY (SELECT range AS id, (range % 13)::INTEGER AS k, md5(range::VARCHAR) AS s FROM range(${ROWS})) TO ${sqlString(join(dir, 'warehouse', 'big', 'only.parquet'))} (FORMAT parquet, ROW_GROUP_SIZE 2048)`);
  await engine.exec(`COPY (SELECT range::INTEGER AS k, 'name ' || range AS name FROM range(13)) TO ${sqlString(join(dir, 'warehouse', 'dim', 'd.parquet'))} (FORMAT parquet)`);
  catalog = await ParquetCatalog.open(join(dir, 'catalog'), engine);
  await catalog.addTable('big', join(dir, 'warehouse', 'big'));
  await catalog.addTable('dim', join(dir, 'warehouse', 'dim'));
  await engine.exec(`CREATE VIEW big AS SELECT * FROM read_parquet(${sqlString(join(dir, 'warehouse', 'big', 'only.parquet'))})`);
  await engine.exec(`CREATE VIEW dim AS SELECT * FROM read_parquet(${sqlString(join(dir, 'warehouse', 'dim', 'd.parquet'))})`);
});
after(async () => {
  for (const c of clusters) await c.close();
  engine?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const QUERIES = [
  'SELECT count(*), sum(id), count(DISTINCT s) FROM big',
  'SELECT k, count(*), min(id), max(id) FROM big GROUP BY k ORDER BY k',
  'SELECT id, s FROM big WHERE id % 997 = 3 ORDER BY id',
  'SELECT name, count(*) FROM big JOIN dim USING (k) WHERE id >= 3000 GROUP BY name ORDER BY name',
  'SELECT id FROM big ORDER BY s DESC LIMIT 5',
];

test('the catalog records a file\'s row groups', async () => {
  const [file] = (await catalog.getTable('big'))!.files;
  assert.deepEqual(file.rowGroups?.map((g) => g.rows), [2048, 2048, 2048, 2048, 1808]);
  assert.ok(file.rowGroups!.every((g) => g.bytes > 0));
  assert.equal((await catalog.getTable('dim'))!.files[0].rowGroups, undefined, 'a file of one group records none');
});

test('one file is split over the fragments, each reading its rows; answers equal DuckDB', async () => {
  for (const invoker of ['in-process', 'pool'] as const) {
    const cluster = await open(invoker, invoker);
    for (const sql of QUERIES) {
      const got = await cluster.query(sql, { role: 'admin' });
      const want = await engine.query(sql);
      assert.deepEqual(got.rows, want.rows, `${invoker}: ${sql}`);
      const splits = got.plan.fragments.flatMap((f) => f.inputs.filter((i) => i.table === 'big').flatMap((i) => i.files));
      assert.equal(got.plan.fragments.filter((f) => f.inputs.some((i) => i.table === 'big')).length, 4, `${sql}: four fragments over one file`);
      assert.equal(splits.reduce((n, f) => n + f.rowCount, 0), ROWS);
      assert.ok(splits.every((f) => f.rows && f.rows.end > f.rows.start));
    }
  }
});

test('with the partition cache on, a split is cached as its own rows', async () => {
  const cluster = await open('cache', 'in-process', { PUFFINDB_PARTITION_CACHE: 'on' });
  const sql = 'SELECT k, count(*), sum(id) FROM big WHERE k < 5 GROUP BY k ORDER BY k';
  const want = await engine.query(sql);
  const hits: number[] = [];
  for (let run = 0; run < 2; run++) {
    const got = await cluster.query(sql, { role: 'admin' });
    assert.deepEqual(got.rows, want.rows, `run ${run}`);
    hits.push((got.stats.stages ?? []).reduce((n, s) => n + (s.cacheHits ?? 0), 0));
  }
  assert.deepEqual(hits, [0, 4], 'the second run is served by the four splits\' entries');
  // Entries whose files vanished from disk are forgotten and read around, never an error.
  const filesDir = join(dir, 'home-cache', 'cache', 'files');
  const entries = readdirSync(filesDir).filter((f) => f.startsWith('p-'));
  assert.ok(entries.length >= 4, `cached entries: ${entries.join(' ')}`);
  for (const f of entries) rmSync(join(filesDir, f));
  const afterLoss = await cluster.query(sql, { role: 'admin' });
  assert.deepEqual(afterLoss.rows, want.rows, 'after the entries were lost');
  // Computed again on the next run, served on the one after.
  assert.deepEqual((await cluster.query(sql, { role: 'admin' })).rows, want.rows);
  const again = await cluster.query(sql, { role: 'admin' });
  assert.deepEqual(again.rows, want.rows);
  assert.equal((again.stats.stages ?? []).reduce((n, s) => n + (s.cacheHits ?? 0), 0), 4, 'the lost entries were computed again');
  // A narrower filter over the same splits is served by them too, and stays right.
  const narrower = 'SELECT k, count(*) FROM big WHERE k < 2 GROUP BY k ORDER BY k';
  assert.deepEqual((await cluster.query(narrower, { role: 'admin' })).rows, (await engine.query(narrower)).rows);
});
