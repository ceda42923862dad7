// `write`: append throughput (rows/s, commits/s) and commit latency with 1, 4 and 8
// concurrent writers, each appending batches through SQL INSERT into one Iceberg table.

import { performance } from 'node:perf_hooks';
import { skipped, summarize, type RunContext, type Scenario, type ScenarioResult, type Summary } from '../harness.ts';
import { ensureTpch } from '../data.ts';
import { openWritable } from './writable.ts';

const DESCRIPTION = 'Appends through SQL (INSERT INTO t SELECT ... FROM range(n)) into one Iceberg table by 1, 4 and 8 concurrent writers: rows/s, commits/s and the latency of one INSERT (write + commit, retries included).';

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
    } finally {
      await warehouse.close();
    }
    return {
      scenario: 'write', status: 'ok', description: DESCRIPTION,
      headline: rows.map((r) => `${r.writers} writer(s): ${r.rowsPerSecond.toFixed(0)} rows/s, ${r.commitsPerSecond.toFixed(1)} commits/s, latency median ${r.latencyMs.median.toFixed(0)} ms (max ${r.latencyMs.max.toFixed(0)} ms)`),
      limits: ['Local file pointer store and local disk; on AWS each commit also pays S3 PUTs and a Redis compare-and-swap.'],
      params: { batchRows, commitsPerWriter },
      data: rows,
      chart: { title: 'Appends: commits per second', unit: 'commits/s', series: ['commits/s'], groups: rows.map((r) => ({ label: `${r.writers} writer(s)`, values: [r.commitsPerSecond] })) },
    };
  },
};
