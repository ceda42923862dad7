// `partition-cache`: the workers' filtered-partition cache (runtime/exec/partition-cache.ts) on
// a selective query over TPC-H lineitem (scale 1; --quick: 0.1), local cluster of 2 worker
// processes, in one run, interleaved:
//   - first run: the query over a 90-day window no entry serves yet (each repetition its
//     own, disjoint from the others: a miss that reads the files and writes entries);
//   - repeat: the same query again (every file served from the cache);
//   - narrower: a narrower filter (a later date, and a discount bound) served by the same entries;
//   - cache off: a second cluster with PUFFINDB_PARTITION_CACHE=off running the repeat query.
// Ratios: repeat / first run, repeat / cache off, narrower / cache off. Stage statistics give
// the hits, misses and bytes saved.

import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { ParquetCatalog } from '../runtime/catalog/parquet-catalog.ts';
import { Engine } from '../runtime/engine/engine.ts';
import { LocalCluster } from '../runtime/exec/cluster.ts';
import type { QueryOutcome } from '../runtime/exec/query-service.ts';
import { benchSettings, ensureTpch, type TpchData } from './data.ts';
import { measureInterleaved, summarize, type Contender, type RunContext, type Scenario, type ScenarioResult } from './harness.ts';

const DESCRIPTION = 'Filtered-partition cache on workers: a selective aggregate over TPC-H lineitem on the local cluster (2 worker processes); its first run (a filter no cached entry serves: the files are read and entries written), its repeat (served from the cache), a narrower filter (served by the same entries), and the repeat on a cluster with the cache off, interleaved in one run.';

const WORKERS = 2;

const SELECT = 'SELECT l_returnflag, l_linestatus, count(*) AS n, sum(l_extendedprice * (1 - l_discount)) AS revenue FROM lineitem';
const day = (offset: number) => new Date(Date.UTC(1993, 0, 1) + offset * 86_400_000).toISOString().slice(0, 10);
/** The repeated query: the last three months of shipments (about 1.3% of the rows). */
const REPEAT = `${SELECT} WHERE l_shipdate >= DATE '1998-09-01' GROUP BY 1, 2 ORDER BY 1, 2`;
/** Inside the repeated query's filter: served by its entries. */
const NARROWER = `${SELECT} WHERE l_shipdate >= DATE '1998-09-11' AND l_discount > 0.05 GROUP BY 1, 2 ORDER BY 1, 2`;
/** A first run: a 90-day window of its own (disjoint from every other), so no entry serves it. */
const firstRun = (n: number) => `${SELECT} WHERE l_shipdate >= DATE '${day(n * 100)}' AND l_shipdate < DATE '${day(n * 100 + 90)}' GROUP BY 1, 2 ORDER BY 1, 2`;

async function open(ctx: RunContext, data: TpchData, label: string, env: Record<string, string>): Promise<{ cluster: LocalCluster; close: () => Promise<void> }> {
  const settings = benchSettings(ctx.dataDir, label, data, { PUFFINDB_WORKERS: String(WORKERS), ...env });
  const catalogEngine = await Engine.create({ threads: 1 });
  const catalog = await ParquetCatalog.open(join(settings.home, 'catalog'), catalogEngine);
  await catalog.addTable('lineitem', join(data.dir, 'lineitem'));
  const cluster = await LocalCluster.open({ settings, catalog });
  return {
    cluster,
    close: async () => {
      await cluster.close();
      catalogEngine.close();
      rmSync(settings.home, { recursive: true, force: true });
    },
  };
}

function cacheOf(r: QueryOutcome): { hits: number; misses: number; bytesSaved: number } {
  const stages = r.stats.stages ?? [];
  return {
    hits: stages.reduce((n, s) => n + (s.cacheHits ?? 0), 0),
    misses: stages.reduce((n, s) => n + (s.cacheMisses ?? 0), 0),
    bytesSaved: stages.reduce((n, s) => n + (s.cacheBytesSaved ?? 0), 0),
  };
}

export const partitionCacheScenario: Scenario = {
  name: 'partition-cache',
  async run(ctx: RunContext): Promise<ScenarioResult> {
    const scale = ctx.quick ? 0.1 : 1;
    const reps = ctx.quick ? 3 : 7;
    const data = await ensureTpch(ctx.dataDir, scale, ctx.log);
    const on = await open(ctx, data, `partition-cache-on-sf${scale}`, {});
    const off = await open(ctx, data, `partition-cache-off-sf${scale}`, { PUFFINDB_PARTITION_CACHE: 'off' });
    try {
      let runs = 0;
      const repeatSql = REPEAT;
      const narrowerSql = NARROWER;
      // The repeat's entries, made before timing (a first run of its own).
      const seeded = await on.cluster.query(repeatSql);
      ctx.log(`  seeded: ${JSON.stringify(cacheOf(seeded))}`);
      const contenders: Contender<QueryOutcome>[] = [
        { name: 'first run', run: () => on.cluster.query(firstRun(runs++)) },
        { name: 'repeat', run: () => on.cluster.query(repeatSql) },
        { name: 'narrower', run: () => on.cluster.query(narrowerSql) },
        { name: 'cache off', run: () => off.cluster.query(repeatSql) },
      ];
      // Warm-up: the cache-off cluster's processes and both clusters' planners.
      await off.cluster.query(repeatSql);
      const measured = await measureInterleaved(contenders, { warmup: 0, reps });
      const t = measured.timings;
      const same = JSON.stringify(measured.last.repeat.rows) === JSON.stringify(measured.last['cache off'].rows);
      const ratio = (a: string, b: string) => t[a].median / t[b].median;
      const caches = Object.fromEntries(Object.entries(measured.last).map(([k, v]) => [k, cacheOf(v)]));
      const headline = [
        `repeat ${t.repeat.median.toFixed(0)} ms vs first run ${t['first run'].median.toFixed(0)} ms: ${ratio('repeat', 'first run').toFixed(2)}x (${(1 / ratio('repeat', 'first run')).toFixed(1)}x faster)`,
        `repeat vs cache off (${t['cache off'].median.toFixed(0)} ms): ${ratio('repeat', 'cache off').toFixed(2)}x; narrower filter ${t.narrower.median.toFixed(0)} ms: ${ratio('narrower', 'cache off').toFixed(2)}x of cache off`,
        `first run vs cache off: ${ratio('first run', 'cache off').toFixed(2)}x (the cost of writing the entries)`,
        `repeat: ${caches.repeat.hits} files from the cache, ${caches.repeat.misses} read, ${(caches.repeat.bytesSaved / 2 ** 20).toFixed(1)} MiB of file not read; narrower: ${caches.narrower.hits} hits, ${caches.narrower.misses} misses`,
        `answers with the cache on and off ${same ? 'equal' : 'DIFFER'}`,
      ];
      return {
        scenario: 'partition-cache',
        status: 'ok',
        description: DESCRIPTION,
        headline,
        limits: [
          `TPC-H scale ${scale}, ${data.files.lineitem.length} lineitem files on the local disk: a cache hit saves DuckDB's scan of the file, not a download (on Lambda a hit also saves the S3 GETs of the whole file).`,
          'The fixed costs of a query (planning, the reduce step, process round trips) are in every figure, so the ratio is bounded by them.',
          'One run on a shared machine; the median of the repetitions is reported.',
        ],
        params: { scale, workers: WORKERS, reps, repeat: repeatSql, narrower: narrowerSql },
        data: { timings: t, raw: measured.raw, cache: caches, seeded: cacheOf(seeded), equal: same, summary: summarize(measured.raw.repeat) },
        chart: {
          title: `Selective query, TPC-H SF ${scale} lineitem, ${WORKERS} workers (median ms)`,
          unit: 'ms',
          series: ['first run', 'repeat', 'narrower', 'cache off'],
          groups: [{ label: 'query', values: ['first run', 'repeat', 'narrower', 'cache off'].map((k) => t[k].median) }],
        },
      };
    } finally {
      await on.close();
      await off.close();
    }
  },
};
