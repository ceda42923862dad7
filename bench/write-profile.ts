// Profiling aid for the row-level part of the `write` scenario (not a scenario): DELETE and
// UPDATE of 500 of 50,000 rows, copy-on-write and merge-on-read, each statement's latency
// and the process's CPU time (the coordinator's: fragments run in worker processes).
// --trace times the coordinator's steps of each write (the count query with its plan/execute/
// reduce split, the rewrite fragments, the whole write).
//   node --import tsx bench/write-profile.ts [--reps N] [--mode copy-on-write|merge-on-read] [--trace]

import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { ensureTpch } from './data.ts';
import { openWritable } from './scenarios/writable.ts';

const { values } = parseArgs({ options: { reps: { type: 'string', default: '5' }, mode: { type: 'string' }, trace: { type: 'boolean', default: false } } });
if (values.trace) {
  // Time the coordinator's steps of a write (private methods, wrapped from outside).
  const { LocalCluster } = await import('../runtime/exec/cluster.ts');
  const proto = LocalCluster.prototype as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  for (const m of ['write', 'rewriteInFragments', 'runWriteFragments', 'query', 'writeInFragments']) {
    const original = proto[m];
    proto[m] = async function (this: unknown, ...args: unknown[]) {
      const t = performance.now();
      let stats = '';
      try {
        const out = await original.apply(this, args);
        const st = (out as { stats?: { planMs: number; executeMs: number; reduceMs: number } } | undefined)?.stats;
        if (m === 'query' && st) stats = ` (plan ${st.planMs.toFixed(0)}, execute ${st.executeMs.toFixed(0)}, reduce ${st.reduceMs.toFixed(0)})`;
        return out;
      } finally {
        console.error(`    ${m}${m === 'query' ? ` ${String(args[0]).slice(0, 60)}` : ''}: ${(performance.now() - t).toFixed(0)} ms${stats}`);
      }
    };
  }
}
const dataDir = resolve('bench/.data');
const data = await ensureTpch(dataDir, 0.1, console.error);
const opened = await openWritable(dataDir, 'write-profile', data, 2, []);
if (typeof opened === 'string') throw new Error(opened);
const { warehouse, cluster } = opened;
try {
  for (const mode of values.mode ? [values.mode] : ['copy-on-write', 'merge-on-read']) {
    const table = `p_${mode.replace(/-/g, '_')}`;
    await cluster.query(`CREATE TABLE ${table} AS SELECT range AS k, 'row ' || range AS v, range % 10 AS g FROM range(50000)`);
    await cluster.query(`ALTER TABLE ${table} SET ('write.delete.mode' = '${mode}', 'write.update.mode' = '${mode}')`);
    for (const statement of ['DELETE', 'UPDATE']) {
      const times: string[] = [];
      for (let i = 0; i < Number(values.reps); i++) {
        const t = performance.now();
        const u = process.cpuUsage();
        const r = statement === 'DELETE' ? await cluster.query(`DELETE FROM ${table} WHERE k % 100 = ${i}`) : await cluster.query(`UPDATE ${table} SET v = 'updated' WHERE k % 100 = ${50 + i}`);
        const c = process.cpuUsage(u);
        times.push(`${(performance.now() - t).toFixed(0)}ms(cpu ${((c.user + c.system) / 1000).toFixed(0)}, ${r.rows[0][2]} rows)`);
      }
      console.log(mode, statement, times.join(' '));
    }
    const n = await cluster.query(`SELECT count(*), count(*) FILTER (WHERE v = 'updated') FROM ${table}`);
    console.log(mode, 'rows now', JSON.stringify(n.rows, (_k, v) => (typeof v === 'bigint' ? String(v) : v)));
  }
} finally {
  await warehouse.close();
}
