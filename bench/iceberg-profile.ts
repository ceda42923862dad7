// Profiling aid for the `iceberg` scenario (not a scenario): per TPC-H query, where the time
// of the Iceberg form goes against the Parquet form (planning, execution, reduce, fragments,
// bytes), from the cluster's own QueryStats. Keeps its Iceberg tables between runs under
// bench/.data/homes/iceberg-profile (delete the directory to rewrite them).
//   node --import tsx bench/iceberg-profile.ts [--reps N] [q01 q05 ...]

import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { openWarehouse } from '../runtime/cli/warehouse.ts';
import { loadTpchQueries } from '../runtime/demo/tpch-queries.ts';
import { loadSettings } from '../runtime/settings.ts';
import { ensureTpch, openCluster } from './data.ts';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { reps: { type: 'string', default: '3' }, scale: { type: 'string', default: '1' } } });
const reps = Number(values.reps);
const dataDir = resolve('bench/.data');
const data = await ensureTpch(dataDir, Number(values.scale), (l) => console.error(l));
const home = join(dataDir, 'homes', `iceberg-profile-sf${values.scale}`);
const fresh = !existsSync(join(home, '.complete'));
mkdirSync(home, { recursive: true });
const base = loadSettings({ ...process.env, PUFFINDB_HOME: home, PUFFINDB_WAREHOUSE: data.dir, PUFFINDB_WORKERS: '2' });
const settings = { ...base, warehouse: `file://${join(home, 'warehouse')}/`, shuffleUrl: `file://${join(home, 'warehouse', '_puffindb', 'shuffle')}/` };
const warehouse = await openWarehouse(settings);
const ice = await warehouse.cluster();
if (fresh) {
  for (const t of data.tables) await warehouse.catalog.addTable(`src_${t}`, join(data.dir, t));
  for (const t of data.tables) await ice.query(`CREATE TABLE ${t} AS SELECT * FROM src_${t}`);
  (await import('node:fs')).writeFileSync(join(home, '.complete'), '');
}
const parquet = await openCluster(dataDir, data, 2);
const queries = (await loadTpchQueries()).filter((q) => positionals.length === 0 || positionals.includes(q.id));
type S = { planMs: number; executeMs: number; reduceMs: number; totalMs: number; fragments: number; bytesScanned: number };
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const med = (runs: S[]): S => ({
  planMs: median(runs.map((r) => r.planMs)), executeMs: median(runs.map((r) => r.executeMs)), reduceMs: median(runs.map((r) => r.reduceMs)),
  totalMs: median(runs.map((r) => r.totalMs)), fragments: runs[0].fragments, bytesScanned: runs[0].bytesScanned,
});
const ratios: number[] = [];
const fmt = (s: S) => `plan ${s.planMs.toFixed(0).padStart(4)} exec ${s.executeMs.toFixed(0).padStart(4)} red ${s.reduceMs.toFixed(0).padStart(4)} tot ${s.totalMs.toFixed(0).padStart(5)} fr ${String(s.fragments).padStart(2)} MB ${(s.bytesScanned / 1e6).toFixed(0).padStart(4)}`;
try {
  for (const q of queries) {
    const runs: Record<string, S[]> = { parquet: [], iceberg: [] };
    await parquet.cluster.query(q.sql);
    await ice.query(q.sql);
    for (let i = 0; i < reps; i++) {
      runs.parquet.push((await parquet.cluster.query(q.sql)).stats as S);
      runs.iceberg.push((await ice.query(q.sql)).stats as S);
    }
    const p = med(runs.parquet);
    const c = med(runs.iceberg);
    ratios.push(c.totalMs / p.totalMs);
    console.log(`${q.id} ${(c.totalMs / p.totalMs).toFixed(2)}  P: ${fmt(p)} | I: ${fmt(c)}`);
  }
  console.log(`geomean ${Math.exp(ratios.reduce((s, r) => s + Math.log(r), 0) / ratios.length).toFixed(3)}`);
} finally {
  await parquet.close();
  await warehouse.close();
}
