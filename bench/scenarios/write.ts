// `write`: append throughput (rows/s, commits/s) and commit latency with 1, 4 and 8
// concurrent writers, each appending batches through SQL INSERT into one Iceberg table;
// then DELETE / UPDATE of 1% of a 50,000-row table, copy-on-write vs merge-on-read.

import { performance } from 'node:perf_hooks';
import { skipped, summarize, type RunContext, type Scenario, type ScenarioResult, type Summary } from '../harness.ts';
import { ensureTpch } from '../data.ts';
import { openWritable } from './writable.ts';

const DESCRIPTION = 'Appends through SQL (INSERT INTO t SELECT ... FROM range(n)) into one Iceberg table by 1, 4 and 8 concurrent writers: rows/s, commits/s and the latency of one INSERT (write + commit, retries included). Then DELETE and UPDATE of 500 of 50,000 rows (k % 100 = constant), copy-on-write (files rewritten by the fragments) vs merge-on-read (position delete files, table properties write.delete.mode / write.update.mode).';

export interface RowLevelRow { mode: 'copy-on-write' | 'merge-on-read'; statement: 'DELETE' | 'UPDATE'; rows: number; tableRows: number; latencyMs: Summary }

/** DELETE and UPDATE latency on a fresh 50,000-row table in each write mode. */
async function rowLevel(cluster: { query(sql: string): Promise<{ rows: unknown[][] }> }, repeats: number, log: (l: string) => void): Promise<RowLevelRow[]> {
  const tableRows = 50_000;
  const out: RowLevelRow[] = [];
  for (const mode of ['copy-on-write', 'merge-on-read'] as const) {
    const table = `bench_rowlevel_${mode.replace(/-/g, '_')}`;
    await cluster.query(`CREATE TABLE ${table} AS SELECT range AS k, 'row ' || range AS v, range % 10 AS g FROM range(${tableRows})`);
    await cluster.query(`ALTER TABLE ${table} SET ('write.delete.mode' = '${mode}', 'write.update.mode' = '${mode}')`);
    for (const statement of ['DELETE', 'UPDATE'] as const) {
      const latencies: number[] = [];
      let rows = 0;
      for (let i = 0; i < repeats; i++) {
        const t = performance.now();
        const r = statement === 'DELETE'
          ? await cluster.query(`DELETE FROM ${table} WHERE k % 100 = ${i}`)
          : await cluster.query(`UPDATE ${table} SET v = 'updated' WHERE k % 100 = ${50 + i}`);
        latencies.push(performance.now() - t);
        rows = Number(r.rows[0][2]);
      }
      const row: RowLevelRow = { mode, statement, rows, tableRows, latencyMs: summarize(latencies) };
      out.push(row);
      log(`  ${mode} ${statement} of ${rows} rows of ${tableRows}: median ${row.latencyMs.median.toFixed(0)} ms`);
    }
  }
  return out;
}

export interface WriteRow { writers: number; commits: number; rows: number; seconds: number; rowsPerSecond: number; commitsPerSecond: number; latencyMs: Summary; finalCount: number }

export const writeScenario: Scenario = {
  name: 'write',
  async run(ctx: RunContext): Promise<ScenarioResult> {
    const batchRows = ctx.quick ? 1_000 : 10_000;
    const commitsPerWriter = ctx.quick ? 5 : 20;
    const data = await ensureTpch(ctx.dataDir, 0.1, ctx.log);
    const opened = await openWritable(ctx.dataDir, 'write', data, 2, []);
    if (typeof opened === 'string') return skipped('write', DESCRIPTION, opened, { batchRows, commitsPerWriter });
    const { warehouse, cluster } = opened;
    const rows: WriteRow[] = [];
    let rowLevelRows: RowLevelRow[] = [];
    try {
      for (const writers of [1, 4, 8]) {
        const table = `bench_append_${writers}`;
        await cluster.query(`CREATE TABLE ${table} (k BIGINT, writer INTEGER, v VARCHAR)`);
        const latencies: number[] = [];
        const t0 = performance.now();
        await Promise.all(Array.from({ length: writers }, async (_, w) => {
          for (let c = 0; c < commitsPerWriter; c++) {
            const t = performance.now();
            await cluster.query(`INSERT INTO ${table} SELECT range AS k, ${w} AS writer, 'row ' || range AS v FROM range(${batchRows})`);
            latencies.push(performance.now() - t);
          }
        }));
        const seconds = (performance.now() - t0) / 1000;
        const counted = await cluster.query(`SELECT count(*) AS n FROM ${table}`);
        const commits = writers * commitsPerWriter;
        const row: WriteRow = { writers, commits, rows: commits * batchRows, seconds, rowsPerSecond: (commits * batchRows) / seconds, commitsPerSecond: commits / seconds, latencyMs: summarize(latencies), finalCount: Number(counted.rows[0][0]) };
        if (row.finalCount !== row.rows) throw new Error(`${table} holds ${row.finalCount} rows after ${commits} appends of ${batchRows}; expected ${row.rows}`);
        rows.push(row);
        ctx.log(`  ${writers} writer(s): ${row.rowsPerSecond.toFixed(0)} rows/s, ${row.commitsPerSecond.toFixed(1)} commits/s, commit latency median ${row.latencyMs.median.toFixed(0)} ms`);
      }
      rowLevelRows = await rowLevel(cluster, ctx.quick ? 2 : 5, ctx.log);
    } finally {
      await warehouse.close();
    }
    return {
      scenario: 'write', status: 'ok', description: DESCRIPTION,
      headline: [
        ...rows.map((r) => `${r.writers} writer(s): ${r.rowsPerSecond.toFixed(0)} rows/s, ${r.commitsPerSecond.toFixed(1)} commits/s, latency median ${r.latencyMs.median.toFixed(0)} ms (max ${r.latencyMs.max.toFixed(0)} ms)`),
        ...rowLevelRows.map((r) => `${r.statement} of ${r.rows} of ${r.tableRows} rows, ${r.mode}: median ${r.latencyMs.median.toFixed(0)} ms (max ${r.latencyMs.max.toFixed(0)} ms)`),
      ],
      limits: ['Local file pointer store and local disk; on AWS each commit also pays S3 PUTs and a Redis compare-and-swap.'],
      params: { batchRows, commitsPerWriter },
      data: { appends: rows, rowLevel: rowLevelRows },
      chart: { title: 'Appends: commits per second', unit: 'commits/s', series: ['commits/s'], groups: rows.map((r) => ({ label: `${r.writers} writer(s)`, values: [r.commitsPerSecond] })) },
    };
  },
};
