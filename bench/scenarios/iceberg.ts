// `iceberg`: the 22 TPC-H queries over the Iceberg form of the data set (written through
// SQL, CREATE TABLE t AS SELECT * FROM src_t) against the same queries over the Parquet
// form, both through the local cluster with 2 workers, and plain DuckDB over the Parquet.

import { loadTpchQueries } from '../../runtime/demo/tpch-queries.ts';
import { geometricMean, measureInterleaved, skipped, type RunContext, type Scenario, type ScenarioResult, type Summary } from '../harness.ts';
import { ensureTpch, openCluster, openPlainDuckDB } from '../data.ts';
import { openWritable } from './writable.ts';

const DESCRIPTION = 'The 22 TPC-H queries over the Iceberg form of the data set (written by PuffinDB through CREATE TABLE ... AS SELECT) against the Parquet form, both through the local cluster with 2 workers, and plain DuckDB over the Parquet files.';

export const icebergScenario: Scenario = {
  name: 'iceberg',
  async run(ctx: RunContext): Promise<ScenarioResult> {
    const scale = ctx.quick ? 0.1 : 1;
    const reps = ctx.quick ? 2 : 5;
    const data = await ensureTpch(ctx.dataDir, scale, ctx.log);
    const opened = await openWritable(ctx.dataDir, `iceberg-sf${scale}`, data, 2, data.tables);
    if (typeof opened === 'string') return skipped('iceberg', DESCRIPTION, opened, { scale });
    const { warehouse, cluster: ice } = opened;
    const parquet = await openCluster(ctx.dataDir, data, 2);
    const plain = await openPlainDuckDB(data);
    const rows: { query: string; timings: Record<string, Summary>; ratioIcebergToParquet: number; ratioIcebergToDuckDB: number; rowsMatch: boolean }[] = [];
    try {
      for (const t of data.tables) await ice.query(`CREATE TABLE ${t} AS SELECT * FROM src_${t}`);
      for (const q of await loadTpchQueries()) {
        const m = await measureInterleaved([
          { name: 'duckdb', run: async () => (await plain.query(q.sql)).rows.length },
          { name: 'puffindb-parquet', run: async () => (await parquet.cluster.query(q.sql)).rows.length },
          { name: 'puffindb-iceberg', run: async () => (await ice.query(q.sql)).rows.length },
        ], { warmup: 1, reps });
        const row = {
          query: q.id, timings: m.timings,
          ratioIcebergToParquet: m.timings['puffindb-iceberg'].median / m.timings['puffindb-parquet'].median,
          ratioIcebergToDuckDB: m.timings['puffindb-iceberg'].median / m.timings.duckdb.median,
          rowsMatch: m.last['puffindb-iceberg'] === m.last.duckdb,
        };
        rows.push(row);
        ctx.log(`  ${q.id} iceberg/parquet ${row.ratioIcebergToParquet.toFixed(2)}, iceberg/duckdb ${row.ratioIcebergToDuckDB.toFixed(2)}`);
      }
    } finally {
      plain.close();
      await parquet.close();
      await warehouse.close();
    }
    const geoP = geometricMean(rows.map((r) => r.ratioIcebergToParquet));
    const geoD = geometricMean(rows.map((r) => r.ratioIcebergToDuckDB));
    const mismatched = rows.filter((r) => !r.rowsMatch).map((r) => r.query);
    return {
      scenario: 'iceberg', status: 'ok', description: DESCRIPTION,
      headline: [
        `geometric-mean ratio Iceberg / Parquet (both PuffinDB, 2 workers): ${geoP.toFixed(2)}`,
        `geometric-mean ratio PuffinDB over Iceberg / plain DuckDB over Parquet: ${geoD.toFixed(2)}`,
        mismatched.length ? `row counts differ from DuckDB for: ${mismatched.join(', ')}` : 'row counts match plain DuckDB for every query',
      ],
      limits: ['The Iceberg files are the ones PuffinDB wrote (its file sizes and row groups), not the generator\'s; metadata is on local disk.'],
      params: { scale, reps, workers: 2 },
      data: { queries: rows, geometricMeanIcebergToParquet: geoP, geometricMeanIcebergToDuckDB: geoD },
      chart: { title: `TPC-H SF ${scale} over Iceberg: median ms`, unit: 'ms', log: true, series: ['duckdb', 'puffindb-parquet', 'puffindb-iceberg'], groups: rows.map((r) => ({ label: r.query, values: [r.timings.duckdb.median, r.timings['puffindb-parquet'].median, r.timings['puffindb-iceberg'].median] })) },
    };
  },
};
