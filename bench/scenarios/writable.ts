// The warehouse the `iceberg` and `write` scenarios use: opened the way the command line
// opens it (runtime/cli/warehouse.ts), so it gains Iceberg tables when the product does.
// Availability is probed through SQL, the public path, rather than guessed from files.

import { join } from 'node:path';
import { openWarehouse, type Warehouse } from '../../runtime/cli/warehouse.ts';
import { PuffinError } from '../../runtime/errors.ts';
import type { LocalCluster } from '../../runtime/exec/cluster.ts';
import { benchSettings, type TpchData } from '../data.ts';

export interface WritableWarehouse {
  warehouse: Warehouse;
  cluster: LocalCluster;
}

/**
 * Open a fresh warehouse with `workers` workers whose own directory receives writes, and
 * check that it takes `CREATE TABLE`. Returns the reason when it does not.
 */
export async function openWritable(dataDir: string, label: string, data: TpchData, workers: number, sources: string[]): Promise<WritableWarehouse | string> {
  const base = benchSettings(dataDir, label, data, { PUFFINDB_WORKERS: String(workers) });
  const settings = { ...base, warehouse: `file://${join(base.home, 'warehouse')}/`, shuffleUrl: `file://${join(base.home, 'warehouse', '_puffindb', 'shuffle')}/` };
  const warehouse = await openWarehouse(settings);
  try {
    for (const t of sources) await warehouse.catalog.addTable(`src_${t}`, join(data.dir, t));
    const cluster = await warehouse.cluster();
    try {
      await cluster.query('CREATE TABLE bench_probe (x INTEGER)');
    } catch (err) {
      const message = err instanceof PuffinError ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);
      await warehouse.close();
      return `SQL writes to Iceberg tables are not available in the local warehouse yet (CREATE TABLE answered ${message})`;
    }
    return { warehouse, cluster };
  } catch (err) {
    await warehouse.close();
    throw err;
  }
}
