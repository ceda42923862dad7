import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  at, calibrateCpu, costOf, fitLinear, fitProfile, fitReduce, fitTaskFixed, modelQuery, phaseMs, reduceMs, splitBytesOf, stageKey, stagesAt, taskMs, tasksAt,
  type FleetConfig, type QueryMeasure, type StageMeasure, type StageAtScale,
} from '../../bench/scale/model.ts';
import { AWS } from '../../bench/scale/params.ts';
import { DISPATCH_FREE, fanoutCosts } from '../../bench/scale/scenario.ts';
import type { FanoutRow } from '../../bench/scenarios/fanout.ts';
import { PuffinError } from '../../runtime/errors.ts';
import type { Plan, StageStats } from '../../runtime/planner/plan.ts';

const MB = 1e6;

const stage = (over: Partial<StageMeasure> & Pick<StageMeasure, 'stage'>): StageMeasure => ({
  kind: 'leaf', reads: [], tasks: 8, rowsOut: 0, bytesOut: 0, bytesIn: 0, broadcastBytesPerTask: 0, shuffleGets: 0, shufflePuts: 0, ms: 100, output: 'single', ...over,
});

/** A query of two executions at scale factor sf: a scalar step over a flat table, then a shuffled join whose bytes grow with sf. */
function query(sf: number, msScale = 1): QueryMeasure {
  return {
    query: 'qx', shape: 'staged', reason: 'test', wallMs: 0, planMs: 1, firstPlanMs: 5, executeMs: 0, reduceMs: 0, bytesScanned: 0, bytesShuffled: 0, singleNodeBytes: 0,
    executions: [
      { mode: 'scalar', shape: 'scan-aggregate', reason: '', reduceBytes: 1000, stages: [stage({ stage: 'nation', tasks: 1, bytesIn: 5000, bytesOut: 1000, ms: 20 })] },
      {
        mode: 'rows', shape: 'scan-aggregate', reason: '', reduceBytes: 2000,
        stages: [
          stage({ stage: 'lineitem', tasks: 8, bytesIn: 200 * MB * sf, bytesOut: 20 * MB * sf, shufflePuts: sf >= 1 ? 8 : 0, output: 'hash(2)', ms: 400 * sf * msScale }),
          stage({ stage: `__pdb_m${sf === 1 ? 'ab12' : 'cd34'}_1`, tasks: 8, bytesIn: 10 * MB * sf, bytesOut: 1 * MB * sf, output: 'hash(2)', ms: 30 * sf * msScale }),
          stage({ stage: '__partials', kind: 'stage', reads: ['lineitem', `__pdb_m${sf === 1 ? 'ab12' : 'cd34'}_1`], tasks: 2, bytesIn: sf >= 1 ? 20 * MB * sf : 0, bytesOut: 2000, shuffleGets: sf >= 1 ? 8 : 0, output: 'single', ms: 150 * sf * msScale }),
        ],
      },
    ],
  };
}

const local = (over: Partial<FleetConfig> = {}): FleetConfig => ({
  label: 'local', workers: 2, vcpusPerWorker: 1, bytesPerSecondPerWorker: Infinity, coordinatorBytesPerSecond: Infinity, firstByteMs: 0, shuffleGetConcurrency: 16, shuffleCombineAbove: 128,
  tableGetBytes: 8 * 2 ** 20, tableGetsPerSecond: Infinity, shuffleGetsPerSecond: Infinity, shufflePutsPerSecond: Infinity, invokeMs: 3, dispatchMsSync: 0.5, dispatchMsAsync: 0.5, relayAbove: 0, dispatchMsRelayed: 0.5,
  asyncThreshold: Infinity, taskFixedMs: 5, planMs: 1, reduceFixedMs: 10, reduceMsPerByte: 1e-6, reduceMsPerPartial: 0, reduceSpeedup: 1, inlineLimitBytes: 4 * 2 ** 20, shuffleInlineLimitBytes: 256 * 1024,
  fleetTasks: null, stageTaskBytes: 0, cold: false, coldStartMs: 0, newEnvironmentsPerStep: Infinity, scalingStepMs: 0, ...over,
});
const lambda = (workers: number, over: Partial<FleetConfig> = {}): FleetConfig => local({
  label: 'lambda', workers, vcpusPerWorker: 6, bytesPerSecondPerWorker: 78.125e6, coordinatorBytesPerSecond: 78.125e6, firstByteMs: 100, tableGetsPerSecond: 5500,
  shuffleGetsPerSecond: 5500 * 256, shufflePutsPerSecond: 3500 * 256, invokeMs: 20, dispatchMsSync: 0.4, dispatchMsAsync: 0.8, asyncThreshold: 64, reduceSpeedup: 3,
  fleetTasks: workers, coldStartMs: 650, newEnvironmentsPerStep: 1000, scalingStepMs: 10_000, ...over,
});
const profile = () => calibrateCpu(fitProfile(query(0.1), 0.1, query(1), 1, 8), 1, local());

describe('fitting the measured DAG', () => {
  test('a line through two scale factors: flat stays flat, proportional grows, never below 0', () => {
    const flat = fitLinear(0.1, 1000, 1, 1000);
    assert.equal(at(flat, 1000), 1000);
    const grows = fitLinear(0.1, 10, 1, 100);
    assert.ok(Math.abs(at(grows, 1000) - 100_000) < 1e-6);
    assert.equal(at(fitLinear(0.1, 100, 1, 10), 1000), 0);
  });

  test('materialized step names match across scales, and a later stage reads what its producers wrote even when pieces were inline', () => {
    assert.equal(stageKey('__pdb_mab12ef_2'), '__pdb_m_2');
    const q = query(0.1).executions[1];
    // bytesIn is 0 at SF 0.1 (pieces inline); the producers wrote 2 MB + 0.1 MB.
    assert.equal(splitBytesOf(q.stages[2], q.stages), 2.1 * MB);
  });

  test('fitProfile classifies fan-out, fits bytes, and counts shuffle GETs as consumers x producer objects', () => {
    const p = fitProfile(query(0.1), 0.1, query(1), 1, 8);
    assert.equal(p.fit, 'linear');
    const [nation] = p.executions[0].stages;
    assert.equal(nation.fanout, 'bytes');
    assert.equal(at(nation.splitBytes, 1000), 5000, 'a flat table stays flat');
    const [li, , partials] = p.executions[1].stages;
    assert.equal(li.fanout, 'fleet');
    assert.equal(partials.fanout, 'fleet');
    assert.ok(Math.abs(at(li.splitBytes, 1000) - 200_000 * MB) < 1);
    // 8 GETs measured for 2 consumers x 8 producer objects.
    assert.equal(partials.getFill, 0.5);
    assert.equal(at(p.executions[1].reduceBytes!, 1000), 2000);
  });

  test('differing DAGs fall back to bytes proportional to the scale factor', () => {
    const small = query(0.1);
    small.executions = small.executions.slice(1);
    const p = fitProfile(small, 0.1, query(1), 1, 8);
    assert.equal(p.fit, 'proportional');
    assert.ok(Math.abs(at(p.executions[0].stages[0].splitBytes, 1000) - 5000 * 1000) < 1e-6);
  });

  test('bad scale factors are refused', () => {
    assert.throws(() => fitProfile(query(1), 1, query(1), 1, 8), PuffinError);
  });
});

describe('stages at scale', () => {
  test('tasks: one per worker for fleet stages, flat tables stay one task, the local fleet keeps the measured counts', () => {
    const p = profile();
    const [nation] = stagesAt(p.executions[0], 1000, 1, lambda(3000));
    assert.equal(nation.tasks, 1);
    const [li, m, partials] = stagesAt(p.executions[1], 1000, 1, lambda(3000, { shuffleCombineAbove: 0 }));
    assert.equal(li.tasks, 3000);
    assert.equal(m.tasks, 3000);
    assert.equal(partials.tasks, 3000);
    // Both producers write objects at SF 1000 (over 256 KiB per task): fill 0.5 x 6,000 objects.
    assert.equal(partials.shuffleGetsPerTask, 3000);
    assert.equal(partials.combines, undefined);
    assert.equal(li.putsPerTask, 1);
    // Through the combining exchange: a round per side of 55 x 55 combiners (rows of 55
    // producers), each GETting its row; the consumer reads one object per row of each side.
    const combined = stagesAt(p.executions[1], 1000, 1, lambda(3000))[2];
    assert.deepEqual(combined.combines?.map((c) => [c.tasks, c.shuffleGetsPerTask, c.putsPerTask]), [[55 * 55, 0.5 * 55, 1], [55 * 55, 0.5 * 55, 1]]);
    assert.equal(combined.shuffleGetsPerTask, 0.5 * (55 + 55));
    assert.deepEqual(stagesAt(p.executions[1], 1, 1, local()).map((s) => s.tasks), [8, 8, 2]);
  });

  test('a leaf stage of few files grows its tasks with its bytes, none under one 8 MiB GET, at most one per worker', () => {
    const p = fitProfile(query(0.1), 0.1, query(1), 1, 8);
    const oneFile = { ...p.executions[0].stages[0], splitBytes: { a: 0, b: 1 * MB } };
    assert.equal(tasksAt(oneFile, 1000, 1, lambda(3000)), Math.ceil(1000 * MB / (8 * 2 ** 20)));
    assert.equal(tasksAt(oneFile, 1000, 1, lambda(50)), 50);
    assert.equal(tasksAt(oneFile, 1, 1, lambda(3000)), 1);
  });

  test('shuffle-reading stages grouped into tasks by the bytes they read, at most one per worker', () => {
    const p = profile();
    const sized = stagesAt(p.executions[1], 1000, 1, lambda(3000, { stageTaskBytes: 1024 ** 3 }));
    // The join stage reads 21 GB at SF 1000: 20 tasks of at most 1 GiB; leaf stages keep one per worker.
    assert.equal(sized[2].tasks, Math.ceil(21_000 * MB / 1024 ** 3));
    assert.equal(sized[0].tasks, 3000);
    assert.equal(stagesAt(p.executions[1], 1000, 1, lambda(3000, { stageTaskBytes: 1024 })).find((x) => x.stage === '__partials')!.tasks, 3000);
    assert.equal(stagesAt(p.executions[1], 1000, 1, lambda(3000, { stageTaskBytes: 0 })).find((x) => x.stage === '__partials')!.tasks, 3000);
  });

  test('a later stage grouped into one task locally is still a stage of the fleet (its planned partitions count)', () => {
    const grouped = (sf: number): QueryMeasure => {
      const q = query(sf);
      return { ...q, executions: q.executions.map((e) => ({ ...e, stages: e.stages.map((st) => (st.kind === 'stage' ? { ...st, tasks: 1, partitions: 8 } : st)) })) };
    };
    const p = fitProfile(grouped(0.1), 0.1, grouped(1), 1, 8);
    const later = p.executions[1].stages.find((x) => x.kind === 'stage')!;
    assert.equal(later.fanout, 'fleet');
    const ungrouped = fitProfile(query(0.1), 0.1, { ...query(1), executions: query(1).executions.map((e) => ({ ...e, stages: e.stages.map((st) => (st.kind === 'stage' ? { ...st, tasks: 1 } : st)) })) }, 1, 8);
    assert.equal(ungrouped.executions[1].stages.find((x) => x.kind === 'stage')!.fanout, 'one');
  });

  test('producers under the shuffle inline limit write no object and are read with no GET', () => {
    const p = profile();
    const [li, m, partials] = stagesAt(p.executions[1], 1, 1, lambda(3000));
    assert.equal(li.putsPerTask, 0);
    assert.equal(m.putsPerTask, 0);
    assert.equal(partials.shuffleGetsPerTask, 0);
  });

  test('a task: fixed + first byte + max(fetch, CPU) + GET rounds + its PUT', () => {
    const s: StageAtScale = { stage: 's', tasks: 10, bytesIn: 10 * 78.125e6, bytesPerTask: 78.125e6, bytesOutPerTask: 7.8125e6, shuffleGetsPerTask: 32, tableGetsPerTask: 0, putsPerTask: 1, tableBytesPerTask: 0, cpuMsPerByte: 6e-6 };
    // fetch 1,000 ms; CPU 78.125e6 x 6e-6 / 6 = 78 ms; 2 GET rounds x 100; PUT 100 + 100.
    assert.ok(Math.abs(taskMs(s, lambda(10)) - (5 + 1000 + 200 + 200)) < 1e-9);
    assert.ok(Math.abs(taskMs({ ...s, cpuMsPerByte: 1e-4 }, lambda(10)) - (5 + 1302.0833333333333 + 200 + 200)) < 1e-6, 'CPU-bound when CPU exceeds fetch');
  });

  test('a phase: the work spread over the workers plus dispatch, bounded by the request rates', () => {
    const s: StageAtScale = { stage: 's', tasks: 100, bytesIn: 0, bytesPerTask: 0, bytesOutPerTask: 0, shuffleGetsPerTask: 0, tableGetsPerTask: 0, putsPerTask: 0, tableBytesPerTask: 0, cpuMsPerByte: 0 };
    const c = lambda(50, { firstByteMs: 0 });
    const r = phaseMs([s], c);
    // 100 tasks of 5 ms on 50 workers: 10 ms of work; dispatch async 100 x 0.8 = 80 ms, then the last task's 5 ms.
    assert.ok(Math.abs(r.ms - (20 + 80 + 5)) < 1e-9);
    assert.equal(phaseMs([s], lambda(50, { firstByteMs: 0, dispatchMsAsync: 0 })).bound, 'tasks');
    // Through relays, the coordinator pays its relayed cost per task plus one more invoke round trip.
    const wide = { ...s, tasks: 3000 };
    const direct = phaseMs([wide], lambda(3000, { firstByteMs: 0, dispatchMsAsync: 1, taskFixedMs: 0 }));
    const relayedPhase = phaseMs([wide], lambda(3000, { firstByteMs: 0, dispatchMsAsync: 1, taskFixedMs: 0, relayAbove: 256, dispatchMsRelayed: 0.25 }));
    assert.equal(direct.bound, 'dispatch');
    assert.ok(Math.abs(direct.ms - relayedPhase.ms - (3000 * 0.75 - 20)) < 1e-6, `${direct.ms} vs ${relayedPhase.ms}`);
    assert.equal(r.bound, 'dispatch');
    const rate = phaseMs([{ ...s, shuffleGetsPerTask: 1000 }], lambda(50, { shuffleGetsPerSecond: 1000 }));
    assert.equal(rate.bound, 'shuffle GET rate');
    assert.ok(Math.abs(rate.ms - (20 + 100_000)) < 1e-6);
  });

  test('the reduce step reads at one node\'s bandwidth and runs at the coordinator\'s speed-up', () => {
    assert.ok(Math.abs(reduceMs(78.125e6, lambda(10)) - (1000 + (10 + 78.125) / 3)) < 1e-9);
    // A cost per partial read, sped up as the rest.
    assert.ok(Math.abs(reduceMs(78.125e6, lambda(10, { reduceMsPerPartial: 0.3 }), 1000) - (1000 + (10 + 78.125 + 300) / 3)) < 1e-9);
  });

  test('the reduce reads one partial per task of the single-output stages, not of the shuffle producers', () => {
    const p = profile();
    const base = modelQuery(p, 1000, 1, lambda(1000));
    const per = modelQuery(p, 1000, 1, lambda(1000, { reduceMsPerPartial: 0.3 }));
    // Execution 0: nation (1 task, single); execution 1: __partials (a later stage, one task per worker), not lineitem's hash output.
    assert.ok(Math.abs(per.executions[0].reduceMs - base.executions[0].reduceMs - 0.3 / 3) < 1e-9);
    assert.ok(Math.abs(per.executions[1].reduceMs - base.executions[1].reduceMs - (1000 * 0.3) / 3) < 1e-9);
    assert.ok(Math.abs(per.latencyMs - base.latencyMs - 1001 * 0.1) < 1e-6);
  });

  test('"dispatch free" zeroes the coordinator\'s cost per task in every fan-out, relayed included', () => {
    const s: StageAtScale = { stage: 's', tasks: 3000, bytesIn: 0, bytesPerTask: 0, bytesOutPerTask: 0, shuffleGetsPerTask: 0, tableGetsPerTask: 0, putsPerTask: 0, tableBytesPerTask: 0, cpuMsPerByte: 0 };
    const relayed = lambda(3000, { firstByteMs: 0, relayAbove: 256, dispatchMsRelayed: 1 });
    assert.equal(phaseMs([s], relayed).bound, 'dispatch');
    const free = phaseMs([s], { ...relayed, ...DISPATCH_FREE });
    // An invoke round trip, the relay's, then one task of 5 ms: nothing per task.
    assert.ok(Math.abs(free.ms - (20 + 20 + 5)) < 1e-9, `${free.ms}`);
    assert.ok(Math.abs(phaseMs([{ ...s, tasks: 30_000 }], { ...relayed, workers: 30_000, ...DISPATCH_FREE }).ms - free.ms) < 1e-9);
    for (const tasks of [10, 100]) assert.ok(Math.abs(phaseMs([{ ...s, tasks }], { ...lambda(3000, { firstByteMs: 0 }), ...DISPATCH_FREE }).ms - 25) < 1e-9);
  });

  test('fanoutCosts: dispatch is the coordinator\'s CPU in the fan-out phase, the reduce its CPU per partial; older results fall back to the wall figure', () => {
    const series = ['sync no-op worker', 'sync in-process worker', 'async no-op worker', 'async relayed no-op worker', 'sync no-op worker, Invoke API'];
    const row = (n: number, withSplit: boolean): FanoutRow => ({
      fragments: n,
      timings: Object.fromEntries(series.map((k, i) => [k, { median: n * (1 + i), min: 0, max: 0, n: 3 }])),
      perFragmentMs: Object.fromEntries(series.map((k, i) => [k, 1 + i])),
      ...(withSplit ? { split: Object.fromEntries(series.map((k, i) => [k, { wallMs: 1 + i, fanoutPhaseMs: 0.5, reduceMs: 0.2, cpuMs: 0.1 * (i + 1) + 0.2, fanoutCpuMs: 0.1 * (i + 1), coordinatorMs: 0.1 * (i + 1), reduceCpuMs: 0.15 }])) } : {}),
    });
    const now = fanoutCosts([1, 10, 100, 1000].map((n) => row(n, true)));
    assert.ok(Math.abs(now.localDispatchMs - 0.1) < 1e-12 && Math.abs(now.asyncDispatchMs - 0.3) < 1e-12 && Math.abs(now.relayedDispatchMs - 0.4) < 1e-12, JSON.stringify(now));
    assert.ok(Math.abs(now.syncDispatchMs - 0.5) < 1e-12, 'sync at scale: through the Invoke API');
    assert.equal(now.reduceMsPerPartial, 0.15);
    // A task costs at least its CPU over the coordinator's vCPUs (its other threads run beside the main one).
    const busy = [1, 10, 100, 1000].map((n) => row(n, true));
    busy[3].split!['async no-op worker'] = { ...busy[3].split!['async no-op worker'], fanoutCpuMs: 6, coordinatorMs: 0.3 };
    assert.equal(fanoutCosts(busy, 6).asyncDispatchMs, 1);
    assert.equal(fanoutCosts(busy, 60).asyncDispatchMs, 0.3);
    const old = fanoutCosts([1, 10, 100, 1000].map((n) => row(n, false)));
    assert.deepEqual([old.localDispatchMs, old.syncDispatchMs, old.asyncDispatchMs, old.relayedDispatchMs, old.reduceMsPerPartial], [1, 1, 3, 4, 0]);
  });
});

describe('the model of a query', () => {
  test('calibrated on the local fleet, it gives back the measured stage times', () => {
    const p = profile();
    const r = modelQuery(p, 1, 1, local());
    const measured = query(1).executions.map((e) => {
      const leaf = Math.max(...e.stages.filter((s) => s.kind === 'leaf').map((s) => s.ms));
      return leaf + e.stages.filter((s) => s.kind === 'stage').reduce((n, s) => n + s.ms, 0);
    });
    r.executions.forEach((e, i) => {
      const phases = e.phases.reduce((n, ph) => n + ph.ms, 0);
      assert.ok(Math.abs(phases - measured[i]) < 0.01, `execution ${i}: ${phases} vs ${measured[i]}`);
    });
    assert.ok(Math.abs(r.latencyMs - r.executions.reduce((n, e) => n + e.ms, 0)) < 1e-9);
  });

  test('deterministic; more data is never faster; more workers cut the scan but not the one-task step', () => {
    const p = profile();
    assert.deepEqual(modelQuery(p, 1000, 1, lambda(1000)), modelQuery(p, 1000, 1, lambda(1000)));
    assert.ok(modelQuery(p, 1000, 1, lambda(1000)).latencyMs > modelQuery(p, 100, 1, lambda(1000)).latencyMs);
    const leafMs = (w: number) => modelQuery(p, 1000, 1, lambda(w, { dispatchMsAsync: 0 })).executions[1].phases[0].ms;
    assert.ok(leafMs(1000) < leafMs(100));
    const flat = (w: number) => modelQuery(p, 1000, 1, lambda(w)).executions[0].phases[0].ms;
    assert.equal(flat(100), flat(1000));
  });

  test('cold is never faster than warm, and past 1,000 environments waits for scaling steps', () => {
    const p = profile();
    const warm = modelQuery(p, 1000, 1, lambda(3000)).latencyMs;
    const cold = modelQuery(p, 1000, 1, lambda(3000, { cold: true })).latencyMs;
    assert.ok(cold >= warm + 650);
    // The first phase is nation (1 task): no scaling step needed.
    assert.ok(cold < warm + 10_000);
  });

  test('bad fleets are refused with a PuffinError', () => {
    assert.throws(() => modelQuery(profile(), 1000, 1, lambda(0)), PuffinError);
    assert.throws(() => modelQuery(profile(), 1000, 1, lambda(1.5)), PuffinError);
    assert.throws(() => calibrateCpu(fitProfile(query(0.1), 0.1, query(1), 1, 8), 1, lambda(10)), PuffinError);
  });
});

describe('calibration fits and cost', () => {
  test('fitReduce recovers a fixed and a per-byte cost, and keeps both non-negative', () => {
    const rows = [1, 2, 3].map((steps) => ({ steps, bytes: steps * 1e6 + 5e5, reduceMs: steps * 7 + (steps * 1e6 + 5e5) * 2e-6 }));
    const f = fitReduce(rows);
    assert.ok(Math.abs(f.fixedMs - 7) < 1e-6 && Math.abs(f.msPerByte - 2e-6) < 1e-12, JSON.stringify(f));
    const neg = fitReduce([{ steps: 1, bytes: 0, reduceMs: 10 }, { steps: 1, bytes: 1e6, reduceMs: 5 }]);
    assert.ok(neg.fixedMs >= 0 && neg.msPerByte >= 0);
    assert.deepEqual(fitReduce([]), { fixedMs: 0, msPerByte: 0 });
  });

  test('fitTaskFixed separates the fixed cost per task from the per-byte cost', () => {
    // Phases: ms - 3 = 4 x tasks/2 + 1e-6 x bytes/2 (2 workers).
    const mk = (tasks: number, bytes: number): QueryMeasure => ({
      ...query(1), executions: [{ mode: 'rows', shape: 'scan', reason: '', reduceBytes: 0, stages: [stage({ stage: 't', tasks, bytesIn: bytes, ms: 3 + 4 * Math.max(1, tasks / 2) + 1e-6 * bytes / Math.min(2, tasks) })] }],
    });
    const f = fitTaskFixed([mk(8, 1e6), mk(2, 5e7), mk(16, 2e8)], 2, 3);
    assert.ok(Math.abs(f.fixedMs - 4) < 1e-6 && Math.abs(f.msPerByte - 1e-6) < 1e-12, JSON.stringify(f));
  });

  test('cost adds busy GB-seconds, invokes, GETs and PUTs', () => {
    const r = modelQuery(profile(), 1000, 1, lambda(1000, { shuffleCombineAbove: 0 }));
    const prices = { workerMemoryMb: 10_240, pricePerGbSecond: AWS.lambdaPricePerGbSecond, pricePerRequest: AWS.lambdaPricePerRequest, pricePerGet: AWS.s3PricePerGet, pricePerPut: AWS.s3PricePerPut };
    const c = costOf(r, prices);
    assert.ok(Math.abs(c.total - (c.workers + c.coordinator + c.requests + c.gets + c.puts)) < 1e-12);
    assert.ok(Math.abs(c.requests - (r.tasks + 1) * AWS.lambdaPricePerRequest) < 1e-15);
    assert.ok(Math.abs(c.gets - (r.tableGets + r.shuffleGets) * AWS.s3PricePerGet) < 1e-15);
    assert.equal(r.puts, 2000);
    // The combining rounds add their tasks and PUTs, and cut the GETs.
    const c2 = modelQuery(profile(), 1000, 1, lambda(1000));
    assert.equal(c2.puts, 2000 + 2 * 32 * 32);
    assert.ok(c2.shuffleGets < r.shuffleGets / 5, `${c2.shuffleGets} vs ${r.shuffleGets}`);
  });
});

describe('measuring a plan', () => {
  test('an input read whole by every fragment is broadcast; row-group splits of one file are not', async () => {
    const { executionsOf } = await import('../../bench/scale/measure.ts');
    const file = (uri: string, sizeBytes: number, rows?: { start: number; end: number }) => ({ uri, sizeBytes, rowCount: 10, ...(rows ? { rows } : {}) });
    const nation = { view: 'nation', table: 'nation', columns: [], files: [file('nation.parquet', 2000)] };
    const fragments = [0, 1, 2].map((i) => ({
      id: `f${i}`, output: 'supplier', sql: 'SELECT 1',
      inputs: [{ view: 'supplier', table: 'supplier', columns: [], files: [file('supplier.parquet', 100, { start: i * 100, end: (i + 1) * 100 })] }, nation],
    }));
    const plan = { shape: 'scan', sql: '', output: [], fragments, reduce: { sql: 'SELECT * FROM __partials' }, scans: [], join: null, reason: '' } as unknown as Plan;
    const stats = [{ stage: 'supplier', tasks: 3, rowsIn: 0, rowsOut: 1, bytesIn: 3 * 2100, bytesOut: 10, shuffleGets: 0, shufflePuts: 0, ms: 5, output: 'single' }] as unknown as StageStats[];
    const [e] = executionsOf([plan], stats, false);
    assert.equal(e.stages[0].broadcastBytesPerTask, 2000);
  });
});

describe('steps that do not read each other', () => {
  test('waves: a step waits for the steps it reads; absent dependencies mean one after another', async () => {
    const { executionWaves } = await import('../../bench/scale/model.ts');
    assert.deepEqual(executionWaves([{}, {}, {}]), [0, 1, 2]);
    assert.deepEqual(executionWaves([{ after: [] }, { after: [] }, { after: [0] }, { after: [0, 1, 2] }]), [0, 0, 1, 2]);
  });

  test('two independent steps run as one wave: faster than one after the other, slower than either alone', () => {
    const p = profile();
    const step = p.executions[0];
    const rest = p.executions[1];
    const sequential = { ...p, executions: [step, step, rest] };
    const overlapped = { ...p, executions: [{ ...step, after: [] }, { ...step, after: [] }, { ...rest, after: [0, 1] }] };
    const one = { ...p, executions: [{ ...step, after: [] }, { ...rest, after: [0] }] };
    const c = lambda(3000);
    const [s, o, a] = [sequential, overlapped, one].map((x) => modelQuery(x, 1000, 1, c));
    assert.ok(o.latencyMs < s.latencyMs, `${o.latencyMs} < ${s.latencyMs}`);
    assert.ok(o.latencyMs > a.latencyMs, `${o.latencyMs} > ${a.latencyMs}`);
    // The same work and requests either way.
    assert.equal(o.tasks, s.tasks);
    assert.equal(o.shuffleGets, s.shuffleGets);
    assert.deepEqual(o.executions.map((e) => e.wave), [0, 0, 1]);
  });

  test('the dependencies of a staged plan\'s executions come from its tree of steps', async () => {
    const { executionDependencies } = await import('../../bench/scale/measure.ts');
    const exec = (n: string) => ({ fragments: [{ id: n }], reason: n }) as unknown as Plan;
    const [a, b, c, rest] = ['a', 'b', 'c', 'rest'].map(exec);
    // Steps m1 and m2 read no step; m3 reads m1; the rest reads all.
    const top = { ...rest, materialized: { sql: '', steps: [
      { name: '__pdb_m1', sql: 'SELECT 1', plan: a },
      { name: '__pdb_m2', sql: 'SELECT 2', plan: b },
      { name: '__pdb_m3', sql: 'SELECT * FROM __pdb_m1', plan: c },
    ] } } as unknown as Plan;
    assert.deepEqual(executionDependencies(top, [a, b, c, rest]), [[], [], [0], [0, 1, 2]]);
    // A plan it cannot place waits for every execution before it.
    assert.deepEqual(executionDependencies(top, [a, exec('x'), c, rest]), [[], [0], [0], [0, 2]]);
  });
});
