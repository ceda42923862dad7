// `scale`: the fleet at scale, by simulation. Calibrates a profile per TPC-H query from what
// `engine`, `fanout` and `coldstart` measured on this machine, checks the model against the
// local cluster at 1 and 2 workers, then predicts latency and cost at 100 GB, 1 TB and
// 10 TB on 100 to 10,000 Lambda workers, warm and cold, against Athena's $5 per TB.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { geometricMean, skipped, summarize, type RunContext, type Scenario, type ScenarioResult } from '../harness.ts';
import type { EngineData } from '../scenarios/engine.ts';
import type { FanoutRow } from '../scenarios/fanout.ts';
import type { ColdstartData } from '../scenarios/coldstart.ts';
import { costOf, simulate, type FleetConfig, type QueryProfile } from './model.ts';
import { ASSUMPTIONS, AWS, DATASETS, WORKER_COUNTS } from './params.ts';
import { loadSettings } from '../../runtime/settings.ts';

const DESCRIPTION = 'A discrete-event model of one query on a fleet of Lambda workers (bench/scale/model.ts), driven by figures measured by `engine` (per-query work per byte, partial sizes, plan and reduce times, per-core scan throughput), `fanout` (coordinator cost per fragment, fixed cost of a fragment) and `coldstart` (worker init), and by AWS\'s published limits. Validated against the local cluster at 1 and 2 workers.';

export interface Measured { engine: EngineData; fanout: FanoutRow[]; coldstart: ColdstartData | null }

/** Per-query profiles from the engine run; `planReduceFrom` picks the run plan and reduce times come from. */
export type Profile = QueryProfile & { broadcastBytes: number; pulledUp: boolean };

export function profilesFrom(m: Measured, planReduceFrom: '1w' | '2w', scaleUp = 1): Profile[] {
  const e = m.engine;
  const genericMsPerByte = 1000 / e.scanThroughput.bytesPerSecondPerCore;
  return e.queries.map((q) => {
    const s1 = q.stats['1w'];
    const s2 = q.stats['2w'];
    // bytesScanned(W) = split + W * broadcast; shuffled(W) = W * fixed + perByte * split.
    const broadcast = Math.max(0, s2.bytesScanned - s1.bytesScanned);
    const split = Math.max(1, s1.bytesScanned - broadcast);
    const partialFixed = Math.max(0, s2.bytesShuffled - s1.bytesShuffled);
    const partialPerByte = Math.max(0, s1.bytesShuffled - partialFixed) / split;
    const pulledUp = q.shape === 'single-node' || q.shape === 'scan';
    // Aggregating shapes do the query's work in the fragments: as much per byte as plain
    // DuckDB needed on all cores. Pulled-up shapes only filter and project there.
    const cpuMsPerByte = pulledUp ? genericMsPerByte : (q.timings.duckdb.median * e.cores) / (split + broadcast);
    const r = q.stats[planReduceFrom];
    const shuffled = Math.max(1, r.bytesShuffled);
    return {
      id: q.query, shape: q.shape, pulledUp,
      scanBytes: split * scaleUp, broadcastBytes: broadcast * scaleUp,
      cpuMsPerByte,
      partialBytesFixed: partialFixed, partialBytesPerScanByte: partialPerByte,
      planMs: r.planMs,
      reduceMsFixed: pulledUp ? 0 : r.reduceMs,
      reduceMsPerPartialByte: pulledUp ? r.reduceMs / shuffled : 0,
    };
  });
}

function fanoutCosts(f: FanoutRow[]): { perFragmentMs: number; fragmentFixedMs: number } {
  const at = (n: number) => f.find((r) => r.fragments === n)!;
  const perFragmentMs = at(1000).perFragmentMs['sync no-op worker'];
  const fragmentFixedMs = Math.max(0, at(1).timings['sync in-process worker'].median - at(1).timings['sync no-op worker'].median);
  return { perFragmentMs, fragmentFixedMs };
}

export function localConfig(m: Measured, workers: number): FleetConfig {
  const { perFragmentMs, fragmentFixedMs } = fanoutCosts(m.fanout);
  return {
    workers, vcpusPerWorker: Math.max(1, Math.floor(m.engine.cores / workers)), sharedCores: m.engine.cores, cold: false,
    fetchBytesPerSecondPerWorker: Infinity, getsPerSecond: Infinity, getBytes: ASSUMPTIONS.s3GetBytes, firstByteMs: 0,
    dispatchMs: perFragmentMs / 2, landMs: perFragmentMs / 2, invokeLatencyMs: 1, fragmentFixedMs,
    newEnvironmentsPerStep: Infinity, scalingStepMs: 0, coldStartMs: 0, syncPayloadBytes: Infinity, shuffleBytesPerSecond: Infinity, reduceSpeedup: 1,
  };
}

export function lambdaConfig(m: Measured, workers: number, cold: boolean): FleetConfig {
  const { perFragmentMs, fragmentFixedMs } = fanoutCosts(m.fanout);
  const init = m.coldstart?.initMs.median ?? 0;
  return {
    workers, vcpusPerWorker: AWS.lambdaVcpusAtMax, cold,
    fetchBytesPerSecondPerWorker: ASSUMPTIONS.s3ConnectionsPerWorker * AWS.s3BytesPerSecondPerConnection,
    getsPerSecond: AWS.s3GetsPerSecondPerPrefix * ASSUMPTIONS.s3Prefixes, getBytes: ASSUMPTIONS.s3GetBytes, firstByteMs: ASSUMPTIONS.s3FirstByteMs,
    dispatchMs: perFragmentMs / 2, landMs: perFragmentMs / 2, invokeLatencyMs: ASSUMPTIONS.invokeLatencyMs, fragmentFixedMs,
    newEnvironmentsPerStep: AWS.lambdaNewEnvironmentsPerStep, scalingStepMs: AWS.lambdaScalingStepMs,
    coldStartMs: ASSUMPTIONS.lambdaPlatformColdMs + init,
    syncPayloadBytes: AWS.lambdaSyncPayloadBytes, shuffleBytesPerSecond: AWS.s3BytesPerSecondPerConnection,
    reduceSpeedup: ASSUMPTIONS.coordinatorVcpus / m.engine.cores,
  };
}

/**
 * At scale the planner stops broadcasting a table over its broadcast limit; with no
 * shuffle join yet, such a query pulls rows up instead. Its partial and reduce costs per
 * byte are taken as the median of the queries measured in that shape.
 */
export function atScale(profiles: Profile[], broadcastLimitBytes: number): Profile[] {
  const pulled = profiles.filter((p) => p.pulledUp);
  const med = (xs: number[]) => (xs.length ? summarize(xs).median : 0);
  const perByte = med(pulled.map((p) => p.partialBytesPerScanByte));
  const reducePerByte = med(pulled.map((p) => p.reduceMsPerPartialByte));
  const genericMsPerByte = med(pulled.map((p) => p.cpuMsPerByte));
  return profiles.map((p) => p.broadcastBytes <= broadcastLimitBytes ? p : {
    ...p, shape: 'single-node (broadcast over limit)', pulledUp: true, scanBytes: p.scanBytes + p.broadcastBytes, broadcastBytes: 0,
    cpuMsPerByte: genericMsPerByte || p.cpuMsPerByte, partialBytesFixed: 0, partialBytesPerScanByte: perByte, reduceMsFixed: 0, reduceMsPerPartialByte: reducePerByte,
  });
}

/** Simulate one profile, reading the broadcast tables once per fragment. */
export function simulateProfile(p: Profile, c: FleetConfig) {
  return simulate({ ...p, scanBytes: p.scanBytes + p.broadcastBytes * c.workers }, c);
}

function readResult<T>(dir: string, name: string): T | string {
  const path = join(dir, `${name}.json`);
  if (!existsSync(path)) return `bench/results/${name}.json is missing: run the ${name} scenario first`;
  const r = JSON.parse(readFileSync(path, 'utf8')) as { status: string; data: T };
  if (r.status !== 'ok') return `the ${name} scenario did not run (${r.status})`;
  return r.data;
}

export const scaleScenario: Scenario = {
  name: 'scale',
  async run(ctx: RunContext): Promise<ScenarioResult> {
    const engine = readResult<EngineData>(ctx.resultsDir, 'engine');
    if (typeof engine === 'string') return skipped('scale', DESCRIPTION, engine);
    const fanout = readResult<FanoutRow[]>(ctx.resultsDir, 'fanout');
    if (typeof fanout === 'string') return skipped('scale', DESCRIPTION, fanout);
    const cs = readResult<ColdstartData>(ctx.resultsDir, 'coldstart');
    const m: Measured = { engine, fanout, coldstart: typeof cs === 'string' ? null : cs };

    // Validation: each worker count predicted with plan and reduce times taken from the other run.
    const validation = (['1w', '2w'] as const).map((w) => {
      const workers = w === '1w' ? 1 : 2;
      const profiles = profilesFrom(m, w === '1w' ? '2w' : '1w');
      const perQuery = profiles.map((p, i) => {
        const predicted = simulateProfile(p, localConfig(m, workers)).latencyMs;
        const measured = engine.queries[i].timings[`puffindb-${w}`].median;
        return { query: p.id, shape: p.shape, predictedMs: predicted, measuredMs: measured, error: predicted / measured - 1 };
      });
      const predTotal = perQuery.reduce((s, r) => s + r.predictedMs, 0);
      const measTotal = perQuery.reduce((s, r) => s + r.measuredMs, 0);
      const absErrors = perQuery.map((r) => Math.abs(r.error));
      return {
        workers, perQuery, totalError: predTotal / measTotal - 1, medianAbsError: summarize(absErrors).median,
        geometricMeanRatio: geometricMean(perQuery.map((r) => r.predictedMs / r.measuredMs)),
      };
    });

    // The fleet: every TPC-H query scaled from the engine run's scale factor.
    const costInputs = { workerMemoryMb: ASSUMPTIONS.workerMemoryMb, pricePerGbSecond: AWS.lambdaPricePerGbSecond, pricePerRequest: AWS.lambdaPricePerRequest, pricePerGet: AWS.s3PricePerGet };
    const fleet: { dataset: string; workers: number; mode: 'warm' | 'cold'; medianLatencyMs: number; maxLatencyMs: number; sumLatencyMs: number; scannedTb: number; cost: number; costPerTb: number; athenaCost: number; storedPartialQueries: number; distributed: { queries: string[]; medianLatencyMs: number; costPerTb: number } }[] = [];
    for (const d of DATASETS) {
      const profiles = atScale(profilesFrom(m, '2w', d.scaleFactor / engine.scale), loadSettings({}).broadcastLimitBytes);
      for (const workers of WORKER_COUNTS) {
        for (const mode of ['warm', 'cold'] as const) {
          const cfg = lambdaConfig(m, workers, mode === 'cold');
          let cost = 0;
          let bytes = 0;
          let stored = 0;
          const lat: number[] = [];
          const dist = { queries: [] as string[], lat: [] as number[], cost: 0, bytes: 0 };
          for (const p of profiles) {
            const r = simulateProfile(p, cfg);
            const c = costOf(r, workers, costInputs).total;
            const b = p.scanBytes + p.broadcastBytes * workers;
            lat.push(r.latencyMs);
            cost += c;
            bytes += b;
            if (r.storedPartials) stored++;
            if (!p.pulledUp) {
              dist.queries.push(p.id);
              dist.lat.push(r.latencyMs);
              dist.cost += c;
              dist.bytes += b;
            }
          }
          const scannedTb = bytes / 1e12;
          fleet.push({
            dataset: d.label, workers, mode, medianLatencyMs: summarize(lat).median, maxLatencyMs: Math.max(...lat), sumLatencyMs: lat.reduce((a, b) => a + b, 0),
            scannedTb, cost, costPerTb: cost / scannedTb, athenaCost: scannedTb * AWS.athenaPricePerTb, storedPartialQueries: stored,
            distributed: { queries: dist.queries, medianLatencyMs: dist.lat.length ? summarize(dist.lat).median : NaN, costPerTb: dist.bytes ? dist.cost / (dist.bytes / 1e12) : NaN },
          });
        }
      }
    }
    const best = (label: string, mode: 'warm' | 'cold') => fleet.filter((f) => f.dataset === label && f.mode === mode).sort((a, b) => a.medianLatencyMs - b.medianLatencyMs)[0];
    const cheapest = [...fleet].sort((a, b) => a.costPerTb - b.costPerTb)[0];
    const at1tb1000 = fleet.find((f) => f.dataset === '1 TB' && f.workers === 1000 && f.mode === 'warm')!;
    const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
    return {
      scenario: 'scale', status: 'ok', description: DESCRIPTION,
      headline: [
        ...validation.map((v) => `validation at ${v.workers} worker(s): sum of 22 predicted / measured ${pct(v.totalError)} off, median per-query error ${pct(v.medianAbsError)} (stated tolerance: sum within 25%)`),
        ...DATASETS.map((d) => { const w = best(d.label, 'warm'); const c = best(d.label, 'cold'); return `${d.label}: median TPC-H query ${(w.medianLatencyMs / 1000).toFixed(1)} s warm at ${w.workers} workers, ${(c.medianLatencyMs / 1000).toFixed(1)} s cold at ${c.workers}`; }),
        ...DATASETS.map((d) => { const w = fleet.filter((f) => f.dataset === d.label && f.mode === 'warm').sort((a, b) => a.distributed.medianLatencyMs - b.distributed.medianLatencyMs)[0]; return `${d.label}, the ${w.distributed.queries.length} queries that stay distributed at scale (${w.distributed.queries.join(' ')}): median ${(w.distributed.medianLatencyMs / 1000).toFixed(1)} s warm at ${w.workers} workers, $${w.distributed.costPerTb.toFixed(3)} per TB scanned (${(AWS.athenaPricePerTb / w.distributed.costPerTb).toFixed(0)}x under Athena)`; }),
        `1 TB on 1,000 warm workers, all 22 queries: $${at1tb1000.costPerTb.toFixed(3)} per TB scanned vs Athena $${AWS.athenaPricePerTb} (${(AWS.athenaPricePerTb / at1tb1000.costPerTb).toFixed(0)}x cheaper); best case $${cheapest.costPerTb.toFixed(3)}/TB (${cheapest.dataset}, ${cheapest.workers} ${cheapest.mode})`,
      ],
      limits: [
        `Calibrated at TPC-H SF ${engine.scale} on ${engine.cores} local cores; one Lambda vCPU is assumed to scan as fast as one of these cores.`,
        'Broadcast tables over PUFFINDB_BROADCAST_LIMIT_BYTES at scale are assumed to turn the query into the pull-up (single-node) shape, with that shape\'s median partial and reduce cost per byte.',
        'Queries whose plan pulls rows up to the coordinator (single-node shape) scale with the data at the coordinator: the model says so rather than hiding it.',
        'Not modelled: tree invocation, async completions, stragglers and retries, S3 throttling back-off beyond the GET rate, the Invoke API\'s own rate limit, memory spills.',
        `Assumptions: ${JSON.stringify(ASSUMPTIONS)}; AWS figures: ${JSON.stringify(AWS)}.`,
      ],
      params: { aws: AWS, assumptions: ASSUMPTIONS, datasets: DATASETS, workers: WORKER_COUNTS, calibratedAtScale: engine.scale },
      data: { validation, fleet },
      chart: {
        title: 'Modelled median TPC-H query latency (s) at 1 TB', unit: 's', log: true, series: ['all 22, warm', 'all 22, cold', 'distributed shapes, warm', 'distributed shapes, cold'],
        groups: WORKER_COUNTS.map((w) => {
          const row = (mode: 'warm' | 'cold') => fleet.find((f) => f.dataset === '1 TB' && f.workers === w && f.mode === mode)!;
          return { label: `${w} workers`, values: [row('warm').medianLatencyMs / 1000, row('cold').medianLatencyMs / 1000, row('warm').distributed.medianLatencyMs / 1000, row('cold').distributed.medianLatencyMs / 1000] };
        }),
      },
    };
  },
};
