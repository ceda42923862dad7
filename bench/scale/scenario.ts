// `scale`: TPC-H at SF 1000 on a fleet of Lambda workers, modelled from the stage DAG each
// query ran as on the local cluster. Measures the 22 queries at SF 0.1 and SF 1 (2 local
// workers, 8 fragments; measure.ts), fits every stage's bytes as linear in the scale factor
// and calibrates its CPU per byte from its measured time (model.ts), checks the model
// against the measured local latencies at SF 1, then predicts latency and cost at SF 1000 on
// 1,000 and 3,000 warm (and cold) workers from AWS's published figures (params.ts).

import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { skipped, summarize, type RunContext, type Scenario, type ScenarioResult } from '../harness.ts';
import type { FanoutRow } from '../scenarios/fanout.ts';
import type { ColdstartData } from '../scenarios/coldstart.ts';
import { at, calibrateCpu, stageKey, costOf, fitProfile, fitReduce, fitTaskFixed, modelQuery, type FleetConfig, type QueryMeasure, type QueryProfile } from './model.ts';
import { measureTpch, type ScaleMeasurement } from './measure.ts';
import { ASSUMPTIONS, AWS, LOCAL_FRAGMENTS, LOCAL_WORKERS, MEASURED_SCALES, RUNTIME, TARGET_SCALE, WORKER_COUNTS } from './params.ts';

const DESCRIPTION = 'TPC-H at SF 1000 on Lambda, modelled (bench/scale/model.ts) from the stage DAG of each query as measured on the local cluster at SF 0.1 and SF 1 (per stage: tasks, bytes in and out, broadcast bytes, shuffle GETs and PUTs, time), with the coordinator\'s own cost per task in the fan-out phase (up to the last task\'s landing) and the reduce\'s cost per partial from `fanout`, cold start from `coldstart`, and AWS\'s published figures (bench/scale/params.ts). Checked against the local cluster\'s measured latencies at SF 1.';

/** What the local runs and the other scenarios measured on this machine. */
export interface Inputs {
  small: ScaleMeasurement;
  large: ScaleMeasurement;
  fanout: FanoutRow[];
  coldstart: ColdstartData | null;
  cores: number;
}

const median = (xs: number[]): number => (xs.length ? summarize(xs).median : 0);

/** The sensitivity "coordinator dispatch free": no cost per task in any fan-out (sync, async, relayed). */
export const DISPATCH_FREE: Partial<FleetConfig> = { dispatchMsSync: 0, dispatchMsAsync: 0, dispatchMsRelayed: 0 };

/**
 * The coordinator's figures from `fanout`. Dispatch per task is the coordinator's own cost per
 * fragment in the fan-out phase (FanoutRow.split coordinatorMs: the smaller of its process's
 * CPU and its event loop's busy time up to the last fragment's landing, with the workers in
 * another process). The reduce's cost per partial is apart. Results from
 * before the split fall back to the wall time per fragment of the whole query (which also
 * holds the reduce and, for the Invoke API series, the workers' CPU).
 */
export function fanoutCosts(f: FanoutRow[], vcpus: number = ASSUMPTIONS.coordinatorVcpus, localCores = 2) {
  const row = (n: number) => f.find((r) => r.fragments === n) ?? f[f.length - 1];
  // The coordinator's main thread does the dispatch serially, its other threads (GC, libuv,
  // DuckDB) beside it: a task costs at least its main-thread time, and at least its CPU over
  // all of the coordinator's vCPUs.
  const own = (r: FanoutRow, series: string, cores = vcpus) => {
    const x = r.split?.[series];
    return x ? Math.max(x.coordinatorMs, x.fanoutCpuMs / cores) : r.perFragmentMs[series];
  };
  const big = row(1000);
  return {
    /** A one-fragment query on a no-op worker: the coordinator's round trip. */
    roundTripMs: row(1).timings['sync no-op worker'].median,
    /** Per fragment at 10 fragments (the local cluster's 8), sync, no-op worker in-process (the local cluster has no Invoke API). */
    localDispatchMs: own(row(10), 'sync no-op worker', localCores),
    /** Per fragment at 1,000 fragments; sync through the Invoke API (its client's cost is the coordinator's on AWS too) where measured. */
    syncDispatchMs: big.split?.['sync no-op worker, Invoke API'] ? own(big, 'sync no-op worker, Invoke API') : own(big, 'sync no-op worker'),
    asyncDispatchMs: own(big, 'async no-op worker'),
    /** Through relays (measured since the relays were built; earlier results fall back to direct async). */
    relayedDispatchMs: big.perFragmentMs['async relayed no-op worker'] !== undefined ? own(big, 'async relayed no-op worker') : own(big, 'async no-op worker'),
    /** The reduce's cost per partial it reads: the coordinator's CPU after the last of 1,000 partials landed (sync no-op series), per partial (0 before it was measured, when the wall figure above holds it). */
    reduceMsPerPartial: big.split?.['sync no-op worker'] ? (big.split['sync no-op worker'].reduceCpuMs ?? big.split['sync no-op worker'].reduceMs) : 0,
    /** What an in-process worker adds to a fragment over a no-op one. */
    taskFixedMs: Math.max(0, row(1).timings['sync in-process worker'].median - row(1).timings['sync no-op worker'].median),
  };
}

/**
 * The reduce steps of each query: ms, steps and bytes, with the per-partial part (perPartialMs
 * x partials, one per task of a single-output stage) taken out, so that fitReduce's fixed and
 * per-byte terms do not count it again.
 */
const reduceRows = (m: ScaleMeasurement, perPartialMs: number) => m.queries.map((q) => {
  const reducing = q.executions.filter((e) => e.reduceBytes !== null);
  const partials = reducing.reduce((n, e) => n + e.stages.filter((s) => s.output === 'single').reduce((k, s) => k + s.tasks, 0), 0);
  return {
    reduceMs: Math.max(0, q.reduceMs - perPartialMs * partials),
    steps: reducing.length,
    bytes: reducing.reduce((n, e) => n + (e.reduceBytes ?? 0), 0),
  };
});

/**
 * The local cluster the stages were measured on: 2 worker processes sharing the machine's
 * cores, local files. Its fixed cost per task is fitted over the phases of `fixedFrom`.
 */
export function localFleet(inputs: Inputs, m: ScaleMeasurement, fixedFrom: ScaleMeasurement[] = [inputs.small, inputs.large]): FleetConfig {
  const f = fanoutCosts(inputs.fanout, ASSUMPTIONS.coordinatorVcpus, inputs.cores);
  const reduce = fitReduce(reduceRows(m, f.reduceMsPerPartial));
  const fixed = fitTaskFixed(fixedFrom.flatMap((x) => x.queries), m.workers, f.roundTripMs);
  return {
    label: `local, ${m.workers} workers`, workers: m.workers, vcpusPerWorker: Math.max(1, Math.floor(inputs.cores / m.workers)),
    bytesPerSecondPerWorker: Infinity, coordinatorBytesPerSecond: Infinity, firstByteMs: 0, shuffleGetConcurrency: RUNTIME.shuffleGetConcurrency, shuffleCombineAbove: RUNTIME.shuffleCombineAbove,
    tableGetBytes: RUNTIME.tableGetBytes, tableGetsPerSecond: Infinity, shuffleGetsPerSecond: Infinity, shufflePutsPerSecond: Infinity,
    invokeMs: f.roundTripMs, dispatchMsSync: f.localDispatchMs, dispatchMsAsync: f.localDispatchMs, asyncThreshold: Infinity, relayAbove: 0, dispatchMsRelayed: f.localDispatchMs, taskFixedMs: fixed.fixedMs,
    planMs: median(m.queries.map((q) => q.planMs)), reduceFixedMs: reduce.fixedMs, reduceMsPerByte: reduce.msPerByte, reduceMsPerPartial: f.reduceMsPerPartial, reduceSpeedup: 1,
    inlineLimitBytes: RUNTIME.inlineLimitBytes, shuffleInlineLimitBytes: 256 * 1024, fleetTasks: null, stageTaskBytes: RUNTIME.stageTaskBytes,
    cold: false, coldStartMs: 0, newEnvironmentsPerStep: Infinity, scalingStepMs: 0,
  };
}

/** A fleet of Lambda workers, with the coordinator's costs measured here and AWS's published figures. */
export function lambdaFleet(inputs: Inputs, workers: number, cold: boolean, over: Partial<FleetConfig> = {}): FleetConfig {
  const f = fanoutCosts(inputs.fanout, ASSUMPTIONS.coordinatorVcpus, inputs.cores);
  const local = localFleet(inputs, inputs.large);
  return {
    label: `${workers} ${cold ? 'cold' : 'warm'} Lambda workers`, workers, vcpusPerWorker: AWS.lambdaVcpusAtMax,
    bytesPerSecondPerWorker: AWS.lambdaBytesPerSecond, coordinatorBytesPerSecond: AWS.lambdaBytesPerSecond,
    firstByteMs: AWS.s3FirstByteMs, shuffleGetConcurrency: RUNTIME.shuffleGetConcurrency, shuffleCombineAbove: RUNTIME.shuffleCombineAbove, tableGetBytes: RUNTIME.tableGetBytes,
    tableGetsPerSecond: AWS.s3GetsPerSecondPerPrefix * ASSUMPTIONS.tablePrefixesPerTable,
    shuffleGetsPerSecond: AWS.s3GetsPerSecondPerPrefix * RUNTIME.shufflePrefixes, shufflePutsPerSecond: AWS.s3PutsPerSecondPerPrefix * RUNTIME.shufflePrefixes,
    invokeMs: ASSUMPTIONS.invokeLatencyMs, dispatchMsSync: f.syncDispatchMs, dispatchMsAsync: f.asyncDispatchMs, asyncThreshold: RUNTIME.asyncThreshold,
    relayAbove: RUNTIME.relayAbove, dispatchMsRelayed: f.relayedDispatchMs,
    // Planning from scratch (the first run; later runs hit the planner's plan cache), per execution.
    taskFixedMs: local.taskFixedMs, planMs: median(inputs.large.queries.map((q) => q.firstPlanMs ?? q.planMs)), reduceFixedMs: local.reduceFixedMs, reduceMsPerByte: local.reduceMsPerByte,
    reduceMsPerPartial: local.reduceMsPerPartial, reduceSpeedup: ASSUMPTIONS.coordinatorVcpus / inputs.cores,
    inlineLimitBytes: Math.min(RUNTIME.inlineLimitBytes, AWS.lambdaSyncPayloadBytes), shuffleInlineLimitBytes: 256 * 1024, fleetTasks: workers, stageTaskBytes: RUNTIME.stageTaskBytes,
    cold, coldStartMs: ASSUMPTIONS.lambdaPlatformColdMs + (inputs.coldstart?.initMs.median ?? 0),
    newEnvironmentsPerStep: AWS.lambdaNewEnvironmentsPerStep, scalingStepMs: AWS.lambdaScalingStepMs,
    ...over,
  };
}

/** Profiles fitted from the two scales; CPU per byte calibrated from the stage times measured at `calibrateAt`. */
export function profiles(inputs: Inputs, calibrateAt: 'small' | 'large'): QueryProfile[] {
  const { small, large } = inputs;
  const m = calibrateAt === 'small' ? small : large;
  const local = calibrateAt === 'small' ? localFleet(inputs, small, [small]) : localFleet(inputs, large);
  return large.queries.map((q) => {
    const s = small.queries.find((x) => x.query === q.query)!;
    let p = fitProfile(s, small.scale, q, large.scale, large.fragments);
    if (calibrateAt === 'small') {
      if (p.fit !== 'linear') return p;
      // The small run's stage times, on the same DAG.
      const twin = (i: number, st: { stage: string }) => s.executions[i].stages.find((x) => stageKey(x.stage) === stageKey(st.stage))!;
      p = { ...p, executions: p.executions.map((e, i) => ({ ...e, stages: e.stages.map((st) => ({ ...st, tasks: twin(i, st).tasks, measuredMs: twin(i, st).ms })) })) };
    }
    return calibrateCpu(p, m.scale, local);
  });
}

interface Check { query: string; predictedMs: number; measuredMs: number; error: number }
function check(rows: Check[]) {
  const pred = rows.reduce((n, r) => n + r.predictedMs, 0);
  const meas = rows.reduce((n, r) => n + r.measuredMs, 0);
  return { queries: rows.length, sumError: pred / meas - 1, medianAbsError: median(rows.map((r) => Math.abs(r.error))), perQuery: rows };
}

/** Everything the scenario reports, from what was measured (pure: no I/O). */
export function analyze(inputs: Inputs) {
  const { small, large } = inputs;
  const measuredAt1 = new Map(large.queries.map((q) => [q.query, q]));
  const fitted = profiles(inputs, 'large');

  // Validation 1 (in-sample): CPU per byte calibrated at SF 1, the model of the local fleet at SF 1.
  const localLarge = localFleet(inputs, large);
  const inSample = check(fitted.map((p) => {
    const predictedMs = modelQuery(p, large.scale, large.scale, localLarge).latencyMs;
    const measuredMs = measuredAt1.get(p.query)!.wallMs;
    return { query: p.query, predictedMs, measuredMs, error: predictedMs / measuredMs - 1 };
  }));
  // Validation 2 (across scale): CPU per byte, plan and reduce costs calibrated at SF 0.1,
  // bytes from the fit, predicting the SF 1 latency: the step the model takes to SF 1000.
  const localSmall = localFleet(inputs, small, [small]);
  const fromSmall = profiles(inputs, 'small').filter((p) => p.fit === 'linear');
  const acrossScale = check(fromSmall.map((p) => {
    const withLargeTasks = { ...p, executions: p.executions.map((e, i) => ({ ...e, stages: e.stages.map((st) => ({ ...st, tasks: measuredAt1.get(p.query)!.executions[i].stages.find((x) => stageKey(x.stage) === stageKey(st.stage))!.tasks })) })) };
    const predictedMs = modelQuery(withLargeTasks, large.scale, small.scale, localSmall).latencyMs;
    const measuredMs = measuredAt1.get(p.query)!.wallMs;
    return { query: p.query, predictedMs, measuredMs, error: predictedMs / measuredMs - 1 };
  }));

  const prices = { workerMemoryMb: ASSUMPTIONS.workerMemoryMb, pricePerGbSecond: AWS.lambdaPricePerGbSecond, pricePerRequest: AWS.lambdaPricePerRequest, pricePerGet: AWS.s3PricePerGet, pricePerPut: AWS.s3PricePerPut };
  const run = (c: FleetConfig) => fitted.map((p) => {
    const r = modelQuery(p, TARGET_SCALE, large.scale, c);
    const cost = costOf(r, prices);
    const stages = r.executions.flatMap((e) => e.phases);
    const worst = stages.reduce((w, s) => (s.ms > w.ms ? s : w), { ms: 0, bound: '', stages: [] as string[], tasks: 0 });
    return {
      query: p.query, shape: p.shape, fit: p.fit, executions: r.executions.length, latencyMs: r.latencyMs, cost: cost.total, costParts: cost,
      tasks: r.tasks, shuffleGets: r.shuffleGets, tableGets: r.tableGets, puts: r.puts,
      slowestPhase: { stages: worst.stages, ms: worst.ms, bound: worst.bound },
      planMs: r.executions.reduce((n, e) => n + e.planMs, 0), reduceMs: r.executions.reduce((n, e) => n + e.reduceMs, 0),
      // Time at one node: the coordinator's reduce steps and stages of one task.
      oneNodeMs: r.executions.reduce((n, e) => n + e.reduceMs + e.phases.filter((ph) => ph.tasks === 1).reduce((m, ph) => m + ph.ms, 0), 0),
    };
  });
  const fleets = WORKER_COUNTS.flatMap((w) => (['warm', 'cold'] as const).map((mode) => {
    const rows = run(lambdaFleet(inputs, w, mode === 'cold'));
    return { workers: w, mode, medianLatencyMs: median(rows.map((r) => r.latencyMs)), maxLatencyMs: Math.max(...rows.map((r) => r.latencyMs)), medianCost: median(rows.map((r) => r.cost)), totalCost: rows.reduce((n, r) => n + r.cost, 0), queries: rows };
  }));
  // What the median at 3,000 warm workers is most sensitive to: one figure changed at a time.
  const sens = (label: string, over: Partial<FleetConfig>) => ({ label, medianLatencyMs: median(run(lambdaFleet(inputs, 3000, false, over)).map((r) => r.latencyMs)) });
  const sensitivity = [
    sens('S3 first byte 30 ms instead of 100 ms', { firstByteMs: 30 }),
    sens('table files spread over 256 prefixes (as the shuffle is) instead of one per table', { tableGetsPerSecond: AWS.s3GetsPerSecondPerPrefix * 256 }),
    sens('shuffle on one S3 prefix (S3 not yet scaled out) instead of 256', { shuffleGetsPerSecond: AWS.s3GetsPerSecondPerPrefix, shufflePutsPerSecond: AWS.s3PutsPerSecondPerPrefix }),
    sens('coordinator dispatch free (0 ms per task, sync, async and relayed)', DISPATCH_FREE),
    sens(`shuffle-reading stages of one task per partition (one per worker; PUFFINDB_STAGE_TASK_BYTES=0) instead of grouped into tasks of ${RUNTIME.stageTaskBytes / 1048576} MiB`, { stageTaskBytes: 0 }),
    sens('twice the network bandwidth (1.25 Gbit/s)', { bytesPerSecondPerWorker: 2 * AWS.lambdaBytesPerSecond, coordinatorBytesPerSecond: 2 * AWS.lambdaBytesPerSecond }),
  ];
  return { inSample, acrossScale, fleets, sensitivity, calibration: { local: localLarge, lambda: lambdaFleet(inputs, 3000, false) }, profiles: fitted };
}

function readResult<T>(dir: string, name: string): T | string {
  const path = join(dir, `${name}.json`);
  if (!existsSync(path)) return `bench/results/${name}.json is missing: run the ${name} scenario first`;
  const r = JSON.parse(readFileSync(path, 'utf8')) as { status: string; data: T };
  if (r.status !== 'ok') return `the ${name} scenario did not run (${r.status})`;
  return r.data;
}

const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(0)}%`;

/** The scenario's result from its inputs (pure). */
export function report(inputs: Inputs): ScenarioResult {
  const a = analyze(inputs);
  const f = fanoutCosts(inputs.fanout, ASSUMPTIONS.coordinatorVcpus, inputs.cores);
  const ms3 = (x: number) => `${x.toFixed(3)} ms`;
  const fleet = (w: number, mode: 'warm' | 'cold') => a.fleets.find((f) => f.workers === w && f.mode === mode)!;
  const w1 = fleet(1000, 'warm');
  const w3 = fleet(3000, 'warm');
  const bounds = (rows: typeof w3.queries) => {
    const count = new Map<string, number>();
    for (const r of rows) count.set(r.slowestPhase.bound, (count.get(r.slowestPhase.bound) ?? 0) + 1);
    return [...count].sort((x, y) => y[1] - x[1]).map(([b, n]) => `${b} ${n}`).join(', ');
  };
  const oneNode = w3.queries.filter((q) => q.oneNodeMs > q.latencyMs / 2);
  const spread = w3.queries.filter((q) => q.oneNodeMs <= q.latencyMs / 2);
  const proportional = a.profiles.filter((p) => p.fit !== 'linear').map((p) => p.query);
  return {
    scenario: 'scale', status: 'ok', description: DESCRIPTION,
    headline: [
      `Modelled, TPC-H SF ${TARGET_SCALE}: median query ${s(w1.medianLatencyMs)} on 1,000 warm workers, ${s(w3.medianLatencyMs)} on 3,000 warm workers (max ${s(w1.maxLatencyMs)} / ${s(w3.maxLatencyMs)}); cold ${s(fleet(1000, 'cold').medianLatencyMs)} / ${s(fleet(3000, 'cold').medianLatencyMs)}. Acceptance (<= 5 s at 3,000 warm): ${w3.medianLatencyMs <= 5000 ? 'met' : 'not met'}. (The earlier single-stage model, fragments -> partials -> one reduce, gave 26.5 s; this one follows each query's real stages and steps.)`,
      `Modelled cost, all 22 queries once: $${w1.totalCost.toFixed(2)} on 1,000 warm workers, $${w3.totalCost.toFixed(2)} on 3,000 (median query $${w1.medianCost.toFixed(3)} / $${w3.medianCost.toFixed(3)}).`,
      `At 3,000 warm workers ${oneNode.length} of 22 queries (${oneNode.map((q) => q.query).join(' ')}) spend most of their modelled time at one node (the coordinator's reduce step or a one-task stage reading rows that grow with the data, at one environment's 625 Mbit/s); median of the other ${spread.length}: ${s(median(spread.map((q) => q.latencyMs)))}. What bounds each query's slowest stage: ${bounds(w3.queries)}.`,
      `Validation against the local cluster at SF ${inputs.large.scale} (${inputs.large.workers} workers, ${inputs.large.fragments} fragments): calibrated at SF ${inputs.small.scale} and predicting SF ${inputs.large.scale} (${a.acrossScale.queries} queries), sum ${pct(a.acrossScale.sumError)}, median per-query error ${(a.acrossScale.medianAbsError * 100).toFixed(0)}%; calibrated at SF ${inputs.large.scale} itself (all 22), sum ${pct(a.inSample.sumError)}, median per-query error ${(a.inSample.medianAbsError * 100).toFixed(0)}%.`,
      `Sensitivity of the 3,000-warm median (one figure changed at a time): ${a.sensitivity.map((x) => `${x.label}: ${s(x.medianLatencyMs)}`).join('; ')}.`,
    ],
    limits: [
      `Measured (on this machine, ${inputs.cores} cores${inputs.large.loadAverage ? `; 1-minute load average ${[...inputs.small.loadAverage, ...inputs.large.loadAverage].map((x) => x.toFixed(1)).join(', ')} at the start and end of the SF ${inputs.small.scale} and SF ${inputs.large.scale} runs: other work shared the cores, which inflates the measured stage times and so the calibrated CPU per byte` : ''}): every query's stage DAG at SF ${inputs.small.scale} and SF ${inputs.large.scale} on ${inputs.large.workers} local workers with ${inputs.large.fragments} fragments, per stage tasks, rows, bytes in and out, broadcast bytes per task, shuffle GETs and PUTs and wall time, plus each query's plan, reduce and total time; from \`fanout\` (workers in another process), the coordinator's own serial cost per task in the fan-out phase (the larger of its main thread's time, taken as the smaller of its process's CPU and its event loop's busy time, and its CPU over ${ASSUMPTIONS.coordinatorVcpus} vCPUs: ${ms3(f.syncDispatchMs)} sync through the Invoke API, ${ms3(f.asyncDispatchMs)} async, ${ms3(f.relayedDispatchMs)} relayed at 1,000 tasks; ${ms3(f.localDispatchMs)} at 10 in-process for the local check) and the reduce's CPU ms per partial (${ms3(f.reduceMsPerPartial)}, over 1,000 partials); a worker's init (\`coldstart\`).`,
      `Modelled: everything at SF ${TARGET_SCALE} and on Lambda. Bytes per stage are the line through the two measured scales, extrapolated 1,000x; CPU per byte is calibrated per stage from its local time and assumed to hold on a Lambda vCPU (6 per worker, all used by a task); network, S3 latency and request rates are AWS's published figures, not measured here (no AWS account was used).`,
      `Plans were made as at SF ${TARGET_SCALE}: subqueries always run as steps (PUFFINDB_SUBQUERY_STAGE_BYTES=0) and the broadcast limit scaled by SF/${TARGET_SCALE} (${inputs.large.broadcastLimitBytes} bytes at SF ${inputs.large.scale}), so tables over 64 MiB at SF ${TARGET_SCALE} are shuffled, not broadcast; the partial groups from which the final aggregate runs in a stage (50,000) are scaled alike. A flat result near that scaled limit may be classed differently than the planner would at SF ${TARGET_SCALE}.${proportional.length ? ` ${proportional.join(' ')}: their DAGs differed between the two scales, so bytes are taken proportional to SF from the SF ${inputs.large.scale} DAG.` : ''}`,
      `At scale every multi-task leaf stage has one task per worker (the planner's default fragments), and every later stage one partition per worker, run in tasks of about ${RUNTIME.stageTaskBytes / 1048576} MiB of what it reads (at most one per worker), as the coordinator groups them; a shuffle's GETs are consumers x producer objects (the measured fill where objects were written; locally most pieces were small enough to travel inline, so the count is mostly modelled); producers under 256 KiB per task travel inline.`,
      'Dispatch: the coordinator\'s own cost per task (measured as the smaller of two upper bounds on its main thread\'s time; not sped up by the coordinator\'s 6 vCPUs) is charged serially to every stage\'s tasks, shuffle producers included (each is invoked and its result landed); the reduce step\'s per-partial cost is charged once per partial it reads (one per task of a stage whose output is single), on top of its fixed and per-byte cost, which are fitted on the local runs with the per-partial part taken out. Steps of a staged query that do not read each other run at once, as in the engine: the model runs each wave of them with their phases together (one coordinator dispatching all their tasks, one fleet running them), a wave waiting for the whole wave before it (the engine starts a step as soon as the steps it reads are done); tasks of a stage are equal (no skew, stragglers or retries); planning costs what it did at SF 1; the reduce step runs on a 6-vCPU coordinator at one environment\'s bandwidth.',
      `Not modelled: the Invoke API's own rate limit, S3 503 back-off while a prefix scales out, memory spills, account concurrency limits.`,
      `AWS figures: ${JSON.stringify(AWS)}; runtime figures: ${JSON.stringify(RUNTIME)}; assumptions: ${JSON.stringify(ASSUMPTIONS)}.`,
    ],
    params: { aws: AWS, runtime: RUNTIME, assumptions: ASSUMPTIONS, targetScale: TARGET_SCALE, workers: WORKER_COUNTS, measuredScales: MEASURED_SCALES, localFleet: a.calibration.local, lambdaFleet3000: a.calibration.lambda },
    data: {
      fleets: a.fleets,
      validation: { acrossScale: a.acrossScale, inSample: a.inSample },
      sensitivity: a.sensitivity,
      measured: { [`sf${inputs.small.scale}`]: inputs.small, [`sf${inputs.large.scale}`]: inputs.large },
      profiles: a.profiles.map((p) => ({ query: p.query, shape: p.shape, fit: p.fit, executions: p.executions.map((e) => ({ mode: e.mode, reduceBytesAtTarget: e.reduceBytes ? at(e.reduceBytes, TARGET_SCALE) : null, stages: e.stages.map((st) => ({ stage: st.stage, kind: st.kind, fanout: st.fanout, bytesInAtTarget: at(st.splitBytes, TARGET_SCALE), broadcastBytesPerTaskAtTarget: at(st.broadcastBytesPerTask, TARGET_SCALE), bytesOutAtTarget: at(st.bytesOut, TARGET_SCALE), cpuMsPerByte: st.cpuMsPerByte, getFill: st.getFill })) })) })),
    },
    chart: {
      title: `Modelled TPC-H query latency (s) at SF ${TARGET_SCALE}, warm Lambda workers`, unit: 's', log: true, series: ['1,000 workers', '3,000 workers'],
      groups: [...w1.queries.map((q, i) => ({ label: q.query, values: [q.latencyMs / 1000, w3.queries[i].latencyMs / 1000] })), { label: 'median', values: [w1.medianLatencyMs / 1000, w3.medianLatencyMs / 1000] }],
    },
  };
}

export const scaleScenario: Scenario = {
  name: 'scale',
  async run(ctx: RunContext): Promise<ScenarioResult> {
    const fanout = readResult<FanoutRow[]>(ctx.resultsDir, 'fanout');
    if (typeof fanout === 'string') return skipped('scale', DESCRIPTION, fanout);
    const cs = readResult<ColdstartData>(ctx.resultsDir, 'coldstart');
    const [sfSmall, sfLarge] = MEASURED_SCALES;
    const measure = (scale: number, reps: number) => measureTpch({ dataDir: ctx.dataDir, scale, targetScale: TARGET_SCALE, fragments: LOCAL_FRAGMENTS, workers: LOCAL_WORKERS, reps, log: ctx.log });
    const small = await measure(sfSmall, 1);
    const large = await measure(sfLarge, ctx.quick ? 1 : 2);
    return report({ small, large, fanout, coldstart: typeof cs === 'string' ? null : cs, cores: cpus().length });
  },
};

export type { QueryMeasure };
