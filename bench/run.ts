// `npm run bench`: TPC-H Q1 and Q6 at scale factor 1 through the local cluster (2 worker
// processes) against plain DuckDB over the same Parquet files, interleaved in one run,
// with warm-up and repetitions; prints and writes the median ratio per query. Absolute
// times on a shared machine are noise; the ratio measured in one run is the figure.
//
//   npm run bench [-- --scale 1 --reps 5 --workers 2]

import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ParquetCatalog } from '../runtime/catalog/parquet-catalog.ts';
import { generateTpch } from '../runtime/demo/tpch.ts';
import { loadTpchQueries } from '../runtime/demo/tpch-queries.ts';
import { Engine } from '../runtime/engine/engine.ts';
import { LocalCluster } from '../runtime/exec/cluster.ts';
import { loadSettings } from '../runtime/settings.ts';
import { sqlStringList } from '../runtime/sql/quote.ts';

const { values } = parseArgs({
  options: { scale: { type: 'string', default: '1' }, reps: { type: 'string', default: '5' }, workers: { type: 'string', default: '2' }, queries: { type: 'string', default: 'q01,q06' } },
});
const scale = Number(values.scale);
const reps = Number(values.reps);
const workers = Number(values.workers);
const wanted = String(values.queries).split(',');

const root = resolve('bench/.data');
const dataDir = join(root, `tpch-sf${scale}`);
const home = join(root, `home-sf${scale}`);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const setup = await Engine.create();
  if (!existsSync(join(dataDir, '.complete'))) {
    mkdirSync(dataDir, { recursive: true });
    const t0 = performance.now();
    console.error(`generating TPC-H scale ${scale} in ${dataDir} ...`);
    await generateTpch(setup, dataDir, { scale });
    writeFileSync(join(dataDir, '.complete'), '');
    console.error(`  done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  const tables = readdirSync(dataDir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
  const catalog = await ParquetCatalog.open(join(home, 'catalog'), setup);
  for (const t of tables) await catalog.addTable(t, join(dataDir, t));
  const lineitemFiles = (await catalog.getTable('lineitem'))!.files.length;

  const settings = loadSettings({ ...process.env, PUFFINDB_HOME: home, PUFFINDB_WAREHOUSE: dataDir, PUFFINDB_WORKERS: String(workers) });
  const cluster = await LocalCluster.open({ settings, catalog });

  // Plain DuckDB: one process, all cores, views over the same files.
  const plain = await Engine.create();
  for (const t of tables) {
    const files = readdirSync(join(dataDir, t)).filter((f) => f.endsWith('.parquet')).map((f) => join(dataDir, t, f)).sort();
    await plain.exec(`CREATE VIEW ${t} AS SELECT * FROM read_parquet(${sqlStringList(files)})`);
  }

  const queries = (await loadTpchQueries()).filter((q) => wanted.includes(q.id));
  const results: Record<string, unknown>[] = [];
  for (const q of queries) {
    const timings = { puffindb: [] as number[], duckdb: [] as number[] };
    let shape = '';
    // One warm-up each, then interleaved repetitions so drift hits both alike.
    await cluster.query(q.sql);
    await plain.query(q.sql);
    for (let i = 0; i < reps; i++) {
      let t = performance.now();
      const r = await cluster.query(q.sql);
      timings.puffindb.push(performance.now() - t);
      shape = r.plan.shape;
      t = performance.now();
      await plain.query(q.sql);
      timings.duckdb.push(performance.now() - t);
    }
    const ratio = median(timings.puffindb) / median(timings.duckdb);
    const row = {
      query: q.id, shape, reps,
      puffindb_ms: { median: median(timings.puffindb), min: Math.min(...timings.puffindb), max: Math.max(...timings.puffindb) },
      duckdb_ms: { median: median(timings.duckdb), min: Math.min(...timings.duckdb), max: Math.max(...timings.duckdb) },
      ratio,
    };
    results.push(row);
    console.log(`${q.id} (${shape}): puffindb ${row.puffindb_ms.median.toFixed(0)} ms, duckdb ${row.duckdb_ms.median.toFixed(0)} ms, ratio ${ratio.toFixed(2)}`);
  }
  const geo = Math.exp(results.reduce((s, r) => s + Math.log(r.ratio as number), 0) / results.length);
  console.log(`geometric mean ratio (puffindb local, ${workers} workers / plain duckdb): ${geo.toFixed(2)}`);
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/engine-first-form.json', `${JSON.stringify({
    scenario: 'TPC-H Q1/Q6 through the local cluster vs plain DuckDB over the same files',
    scale, workers, lineitemFiles, machine: { cores: (await import('node:os')).cpus().length }, results, geometricMeanRatio: geo,
  }, null, 2)}\n`);
  await cluster.close();
  plain.close();
  setup.close();
}

await main();
