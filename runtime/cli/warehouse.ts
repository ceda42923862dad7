// A local warehouse as the command line sees it: the catalog under PUFFINDB_HOME, the
// data directory, and a cluster opened only when a command needs to run SQL.

import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { openCatalog } from '../catalog/open.ts';
import type { WarehouseCatalog } from '../catalog/warehouse-catalog.ts';
import type { TableSummary } from '../catalog/types.ts';
import { generateTpch } from '../demo/tpch.ts';
import { Engine } from '../engine/engine.ts';
import { PuffinError } from '../errors.ts';
import { fileUriToPath } from '../storage/locations.ts';
import { LocalCluster } from '../exec/cluster.ts';
import type { Plan } from '../planner/plan.ts';
import { Planner } from '../planner/planner.ts';
import type { Settings } from '../settings.ts';

export interface DemoTable {
  table: string;
  files: string[];
  rows: number;
}

export interface Warehouse {
  settings: Settings;
  catalog: WarehouseCatalog;
  /** The local cluster (worker processes start on first use). */
  cluster(): Promise<LocalCluster>;
  /** Plan without starting workers, for `explain`. */
  planOnly(sql: string, fragments?: number): Promise<Plan>;
  summaries(): Promise<TableSummary[]>;
  writeDemo(scale: number): Promise<DemoTable[]>;
  close(): Promise<void>;
}

/** The local directory of a file:// warehouse. */
export function localWarehouseDir(settings: Settings): string {
  if (!settings.warehouse.startsWith('file://')) {
    throw new PuffinError('unsupported', `this command needs a local warehouse; PUFFINDB_WAREHOUSE is ${settings.warehouse}`);
  }
  return fileUriToPath(settings.warehouse);
}

export async function openWarehouse(settings: Settings): Promise<Warehouse> {
  mkdirSync(settings.home, { recursive: true });
  // The catalog reads Parquet footers of files an operator registers: a trusted, unsandboxed engine.
  const engine = await Engine.create({ threads: Math.min(settings.threads, 4), memoryLimit: settings.memoryLimit });
  // Parquet tables and Iceberg tables (pointers under <home>/catalog/iceberg) in one catalog.
  const catalog = await openCatalog(settings, engine);
  let cluster: LocalCluster | undefined;
  let planEngine: Engine | undefined;

  return {
    settings,
    catalog,
    async cluster() {
      cluster ??= await LocalCluster.open({ settings, catalog });
      return cluster;
    },
    async planOnly(sql, fragments) {
      if (cluster) return cluster.explain(sql, { fragments, role: 'admin' });
      const scratch = join(settings.home, 'coordinator');
      mkdirSync(scratch, { recursive: true });
      planEngine ??= await Engine.create({ threads: 1, allowedDirectories: [scratch] });
      const planner = new Planner({ engine: planEngine, catalog, maxFragments: settings.maxFragments, broadcastLimitBytes: settings.broadcastLimitBytes });
      return planner.plan(sql, { fragments });
    },
    async summaries() {
      return catalog.summaries();
    },
    async writeDemo(scale) {
      const dir = join(localWarehouseDir(settings), 'demo', 'tpch');
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      const tables = await generateTpch(engine, dir, { scale });
      for (const t of tables) await catalog.addTable(t.table, join(dir, t.table));
      return tables;
    },
    async close() {
      await cluster?.close();
      await catalog.close();
      planEngine?.close();
      engine.close();
    },
  };
}
