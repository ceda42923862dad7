// Benchmark data: the TPC-H-shaped data set `puffindb demo --scale SF` writes (same
// generator, deterministic), kept under bench/.data/ and reused while complete.

import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ParquetCatalog } from '../runtime/catalog/parquet-catalog.ts';
import { generateTpch, TPCH_TABLES } from '../runtime/demo/tpch.ts';
import { Engine } from '../runtime/engine/engine.ts';
import { LocalCluster } from '../runtime/exec/cluster.ts';
import { loadSettings, type Settings } from '../runtime/settings.ts';
import { sqlStringList } from '../runtime/sql/quote.ts';

export interface TpchData {
  scale: number;
  dir: string;
  tables: string[];
  /** Parquet files per table, absolute, sorted. */
  files: Record<string, string[]>;
}

/** Generate (once) the TPC-H data set at `scale` under `dataDir`. */
export async function ensureTpch(dataDir: string, scale: number, log: (s: string) => void): Promise<TpchData> {
  const dir = join(dataDir, `tpch-sf${scale}`);
  if (!existsSync(join(dir, '.complete'))) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const t0 = performance.now();
    log(`generating TPC-H scale ${scale} in ${dir} ...`);
    const engine = await Engine.create();
    try {
      await generateTpch(engine, dir, { scale });
    } finally {
      engine.close();
    }
    writeFileSync(join(dir, '.complete'), '');
    log(`  generated in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  // Only the generator's tables: a cluster whose warehouse is this directory adds _puffindb/.
  const tables = readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory() && (TPCH_TABLES as readonly string[]).includes(d.name)).map((d) => d.name).sort();
  const files: Record<string, string[]> = {};
  for (const t of tables) files[t] = readdirSync(join(dir, t)).filter((f) => f.endsWith('.parquet')).map((f) => join(dir, t, f)).sort();
  return { scale, dir, tables, files };
}

export function totalBytes(data: TpchData, statSize: (path: string) => number): number {
  return Object.values(data.files).flat().reduce((s, f) => s + statSize(f), 0);
}

/** A fresh home (catalog, caches, scratch) for one configuration, so runs never share state. */
export function benchSettings(dataDir: string, label: string, data: TpchData, env: Record<string, string>): Settings {
  const home = join(dataDir, 'homes', label);
  rmSync(home, { recursive: true, force: true });
  mkdirSync(home, { recursive: true });
  return loadSettings({ ...process.env, PUFFINDB_HOME: home, PUFFINDB_WAREHOUSE: data.dir, ...env });
}

/** The local cluster over the data set's tables, with `workers` worker processes. */
export async function openCluster(dataDir: string, data: TpchData, workers: number, env: Record<string, string> = {}): Promise<{ cluster: LocalCluster; close: () => Promise<void> }> {
  const settings = benchSettings(dataDir, `cluster-${workers}w-sf${data.scale}`, data, { PUFFINDB_WORKERS: String(workers), ...env });
  const catalogEngine = await Engine.create({ threads: 1 });
  const catalog = await ParquetCatalog.open(join(settings.home, 'catalog'), catalogEngine);
  for (const t of data.tables) await catalog.addTable(t, join(data.dir, t));
  const cluster = await LocalCluster.open({ settings, catalog });
  return {
    cluster,
    close: async () => {
      await cluster.close();
      catalogEngine.close();
    },
  };
}

/** Plain DuckDB (one process, all cores) with a view per table over the same files. */
export async function openPlainDuckDB(data: TpchData, threads?: number): Promise<Engine> {
  const engine = await Engine.create(threads ? { threads } : {});
  for (const t of data.tables) await engine.exec(`CREATE VIEW ${t} AS SELECT * FROM read_parquet(${sqlStringList(data.files[t])})`);
  return engine;
}

/** A real one-fragment plan over a tiny table (nation), as the planner makes it. */
export async function planTinyQuery(dataDir: string, data: TpchData, sql = 'SELECT count(*) AS n FROM nation'): Promise<import('../runtime/planner/plan.ts').Plan> {
  const settings = benchSettings(dataDir, `plan-tiny-sf${data.scale}`, data, { PUFFINDB_WORKERS: '1' });
  const catalogEngine = await Engine.create({ threads: 1 });
  const catalog = await ParquetCatalog.open(join(settings.home, 'catalog'), catalogEngine);
  await catalog.addTable('nation', join(data.dir, 'nation'));
  const cluster = await LocalCluster.open({ settings, catalog, invoker: 'in-process' });
  try {
    return await cluster.explain(sql, { fragments: 1 });
  } finally {
    await cluster.close();
    catalogEngine.close();
  }
}
