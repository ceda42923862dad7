// A throwaway local warehouse (Iceberg tables in a temporary directory) behind a LocalCluster
// of in-process workers, as the SQL write tests use it: its catalog, the DuckDB the catalog
// runs on, and one close() for all of it.

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WarehouseCatalog } from '../../runtime/catalog/warehouse-catalog.ts';
import { Engine } from '../../runtime/engine/engine.ts';
import { LocalCluster } from '../../runtime/exec/cluster.ts';
import { loadSettings } from '../../runtime/settings.ts';

export interface WarehouseCluster {
  dir: string;
  /** The warehouse directory (tables at <warehouse>/<name>). */
  warehouse: string;
  engine: Engine;
  catalog: WarehouseCatalog;
  cluster: LocalCluster;
  close(): Promise<void>;
}

/**
 * Two in-process workers of one thread each; `env` adds settings (PUFFINDB_MAX_FRAGMENTS, ...),
 * `threads` is the catalog engine's.
 */
export async function openWarehouseCluster(prefix: string, env: Record<string, string> = {}, threads = 1): Promise<WarehouseCluster> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const warehouse = join(dir, 'warehouse');
  mkdirSync(warehouse, { recursive: true });
  const engine = await Engine.create({ threads });
  try {
    const catalog = await WarehouseCatalog.open(join(dir, 'home', 'catalog'), engine);
    const settings = loadSettings({ PUFFINDB_HOME: join(dir, 'home'), PUFFINDB_WAREHOUSE: warehouse, PUFFINDB_WORKERS: '2', PUFFINDB_THREADS: '1', ...env });
    const cluster = await LocalCluster.open({ settings, catalog, invoker: 'in-process' });
    return {
      dir, warehouse, engine, catalog, cluster,
      async close() {
        await cluster.close();
        engine.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    engine.close();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
