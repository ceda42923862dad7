// Per-stage figures of a partitioned join through the coordinator: a later stage's bytesIn
// counts the shuffle pieces it read, whether they came from the object store (GETs) or
// travelled inline in its request (small outputs), so the stats say what each task consumed.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
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
const clusters: LocalCluster[] = [];

async function open(inlineLimit: string): Promise<LocalCluster> {
  const home = join(dir, `home-${inlineLimit}`);
  const catalog = await ParquetCatalog.open(join(home, 'catalog'), engine);
  for (const t of ['facts', 'dims']) await catalog.addTable(t, join(dir, 'warehouse', t));
  const settings = loadSettings(
    { PUFFINDB_BROADCAST_LIMIT_BYTES: '0', PUFFINDB_INLINE_LIMIT_BYTES: inlineLimit, PUFFINDB_SHUFFLE_PARTITIONS: '3', PUFFINDB_CO_SPLIT: 'off' },
    { home, warehouse: toRootUrl(join(dir, 'warehouse')), shuffleUrl: toRootUrl(join(home, 'shuffle')), cacheDir: join(home, 'cache'), threads: 1, workers: 2, maxFragments: 4 },
  );
  const cluster = await LocalCluster.open({ settings, catalog, invoker: 'in-process' });
  clusters.push(cluster);
  return cluster;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'puffin-stage-stats-'));
  engine = await Engine.create({ threads: 1 });
  for (const [table, rows] of [['facts', 500], ['dims', 400]] as const) {
    mkdirSync(join(dir, 'warehouse', table), { recursive: true });
    for (let i = 0; i < 4; i++) {
      await engine.exec(`COPY (SELECT ${i} * ${rows} + range AS id, (range % 7)::INTEGER AS k FROM range(${rows})) TO ${sqlString(join(dir, 'warehouse', table, `p${i}.parquet`))} (FORMAT parquet)`);
    }
  }
});
after(async () => {
  for (const c of clusters) await c.close();
  engine?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("a join stage's bytesIn is the shuffle bytes its producers wrote, inline or stored", async () => {
  const sql = 'SELECT f.k, count(*) FROM facts f JOIN dims d ON f.id = d.id GROUP BY f.k ORDER BY f.k';
  for (const inlineLimit of ['1048576', '0']) {
    const got = await (await open(inlineLimit)).query(sql);
    const stages = got.stats.stages ?? [];
    const producers = stages.filter((s) => s.output.startsWith('hash'));
    assert.equal(producers.length, 2, `both sides hash-partitioned: ${stages.map((s) => `${s.stage}:${s.output}`).join(' ')}`);
    const join_ = stages.find((s) => !s.output.startsWith('hash'));
    assert.ok(join_, 'the join stage');
    const written = producers.reduce((n, s) => n + s.bytesOut, 0);
    assert.ok(written > 0);
    assert.equal(join_.bytesIn, written, `inline limit ${inlineLimit}: bytes in ${join_.bytesIn}, written ${written}, GETs ${join_.shuffleGets}`);
    assert.equal(join_.shuffleGets > 0, inlineLimit === '0', 'pieces stored only with no inline limit');
    const want = await engine.query(sql.replace(/(facts|dims) (f|d)\b/g, (_, t, a) => `read_parquet(${sqlString(join(dir, 'warehouse', t, '*.parquet'))}) ${a}`));
    assert.deepEqual(got.rows.map((r) => r.map(String)), want.rows.map((r) => r.map(String)));
  }
});
