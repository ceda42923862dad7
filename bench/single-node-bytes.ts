// singleNodeBytes of the 22 TPC-H queries at two scales: the most bytes any one-task step
// of each plan reads (the coordinator's reduce step, or a stage of a single task). A plan
// that scales keeps it flat as the data grows. Run:
//   node --import tsx bench/single-node-bytes.ts [--scales 0.1,1] [--fragments 8]
// Writes bench/results/single-node-bytes.json and prints a table.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadTpchQueries } from '../runtime/demo/tpch-queries.ts';
import { ensureTpch, openCluster } from './data.ts';

// The figure is how the plans scale. At SF 0.1 and 1 a query with subqueries pulls up a few
// MB, under PUFFINDB_SUBQUERY_STAGE_BYTES (64 MiB), and the default keeps it on one node,
// which is faster there; at SF 1000 it pulls up GBs and runs its subqueries as steps. So the
// plans are measured with steps always on (override with the setting).
process.env.PUFFINDB_SUBQUERY_STAGE_BYTES ??= '0';
// Likewise a later stage's partitions are grouped into tasks of PUFFINDB_STAGE_TASK_BYTES
// (8 MiB): at SF 0.1 and 1 every shuffle is one task (and a step's stored result one file, so
// the next step one fragment), which at SF 1000 is hundreds. The plans' own task counts are
// measured: one task per partition (override with the setting).
process.env.PUFFINDB_STAGE_TASK_BYTES ??= '0';

const { values } = parseArgs({ options: { scales: { type: 'string', default: '0.1,1' }, fragments: { type: 'string', default: '8' } } });
const scales = String(values.scales).split(',').map(Number);
const fragments = Number(values.fragments);
const dataDir = join(import.meta.dirname, '.data');
const queries = await loadTpchQueries();
const figures: Record<string, Record<string, { singleNodeBytes: number; shape: string; stages: string[] }>> = {};
for (const scale of scales) {
  const data = await ensureTpch(dataDir, scale, (s) => console.error(s));
  const { cluster, close } = await openCluster(dataDir, data, 2);
  try {
    for (const q of queries) {
      const out = await cluster.query(q.sql, { fragments, role: 'admin' });
      // Worker stages by the rule that cut them: a partitioned join's stage reads two tables'
      // shuffles, an aggregate stage (__final) the partials.
      const stages = (out.plan.stages ?? []).map((s) => (s.id === '__final' ? 'aggregate' : 'join'));
      (figures[q.id] ??= {})[String(scale)] = { singleNodeBytes: out.stats.singleNodeBytes ?? 0, shape: out.plan.shape, stages };
      console.error(`sf ${scale} ${q.id}: ${out.stats.singleNodeBytes} bytes (${out.plan.shape}${stages.length ? `, stages: ${stages.join(' -> ')}` : ''})`);
    }
  } finally {
    await close();
  }
}
const [small, large] = scales.map(String);
const rows = Object.entries(figures).map(([id, f]) => {
  const a = f[small]?.singleNodeBytes ?? 0;
  const b = f[large]?.singleNodeBytes ?? 0;
  const ok = b <= 256 * 1024 || (a > 0 && b / a <= 3);
  return { id, [`sf${small}`]: a, [`sf${large}`]: b, growth: a ? +(b / a).toFixed(2) : null, shape: f[large]?.shape, stages: f[large]?.stages ?? [], passes: ok };
});
mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
writeFileSync(join(import.meta.dirname, 'results', 'single-node-bytes.json'), `${JSON.stringify({ fragments, scales, subqueryStageBytes: Number(process.env.PUFFINDB_SUBQUERY_STAGE_BYTES), stageTaskBytes: Number(process.env.PUFFINDB_STAGE_TASK_BYTES), rows }, null, 2)}\n`);
console.log('query  ' + `sf${small}`.padStart(12) + `sf${large}`.padStart(12) + '  growth  shape');
for (const r of rows) console.log(`${r.id.padEnd(6)} ${String(r[`sf${small}`]).padStart(12)}${String(r[`sf${large}`]).padStart(12)}  ${String(r.growth).padStart(6)}  ${r.shape}${r.stages.length ? ` (stages: ${r.stages.join(' -> ')})` : ''}${r.passes ? '' : '  <- grows'}`);
console.log(`${rows.filter((r) => r.passes).length} of ${rows.length} stay under 256 KiB or grow at most 3x`);
