// The scale model: a TPC-H query as the stage DAG it ran as on the local cluster, scaled to
// a fleet. Pure functions only (measure.ts gathers the inputs, scenario.ts wires them up).
//
// A query is a sequence of executions (its materialized steps, then the query over their
// results); steps that do not read each other run at once in the engine, and the model runs
// them as one wave (their phases together, sharing the coordinator and the fleet). An
// execution is the coordinator planning it, its leaf stages (the fragments of
// every table, run at once), each later stage in turn, then the coordinator's reduce step.
// Per stage the model takes what the stage did at two measured scale factors (bytes in and
// out, broadcast bytes per task, shuffle GETs and PUTs) and fits each as linear in the scale
// factor, so what stays flat (a step over aggregated results) stays flat and what grows
// grows. A stage's time at a scale factor on a fleet:
//
//   invoke latency + max(coordinator dispatch x tasks + longest task,
//                        sum of task times / workers)       (tasks spread over the workers)
//   (dispatch: the coordinator's own cost per task in the fan-out phase, its CPU up to the
//   last landing, without the reduce, as `fanout` measures it, with the workers in another process)
//   task = fixed cost + max(fetch bytes / bandwidth, bytes x CPU ms per byte / vCPUs)
//          + first-byte latency x (rounds of shuffle GETs at the reader's concurrency)
//          + a PUT of its shuffle object (first byte + bytes / bandwidth) when it writes one
//   and never less than the fleet's GETs (table ranges, shuffle pieces) and PUTs over the
//   per-prefix request rates.
//
// CPU ms per byte is calibrated per stage from the local run (the stage's measured time
// with the local fleet's overheads taken out); a stage of one task is one node reading its
// bytes at one node's bandwidth and CPU, and so is the reduce step, on the coordinator:
//   reduce = partial bytes / bandwidth + (fixed + per byte x bytes + per partial x partials) / speed-up
// where the partials are the tasks of the stages whose output is single (what it reads).

import { combineGrid, combinesObjects } from '../../runtime/exec/shuffle-combine.ts';
import { PuffinError } from '../../runtime/errors.ts';

// ---- what the local cluster measured ---------------------------------------------------

export interface StageMeasure {
  stage: string;
  /** A leaf stage is the fragments of one output (table scans); a later stage reads shuffles. */
  kind: 'leaf' | 'stage';
  /** Stages whose shuffle it reads (later stages). */
  reads: string[];
  tasks: number;
  /** A later stage whose partitions ran in fewer tasks (grouped by their bytes): its planned partitions. */
  partitions?: number;
  rowsOut: number;
  bytesOut: number;
  /** Table data and shuffle pieces read, over all tasks (broadcast tables once per task). */
  bytesIn: number;
  /** Bytes of tables every task reads whole (broadcast), per task. */
  broadcastBytesPerTask: number;
  shuffleGets: number;
  shufflePuts: number;
  ms: number;
  /** 'hash(N)' or 'single'. */
  output: string;
}

export interface ExecutionMeasure {
  /** rows: the answer; table: a stored step (no reduce); scalar / exists: a one-value step. */
  mode: 'rows' | 'table' | 'scalar' | 'exists';
  shape: string;
  /** The planner's reason for the execution's shape. */
  reason: string;
  stages: StageMeasure[];
  /** Bytes of partials the coordinator's reduce step read; null for a stored step (no reduce). */
  reduceBytes: number | null;
  /** Earlier executions (indexes) it waited for; absent: all of them (one after another). */
  after?: number[];
}

export interface QueryMeasure {
  query: string;
  shape: string;
  reason: string;
  /** Wall time of cluster.query(), median of the timed runs. */
  wallMs: number;
  /** Planning in the last timed run (the planner caches plans, so near 0), and in the first run (from scratch). */
  planMs: number;
  firstPlanMs: number;
  executeMs: number;
  reduceMs: number;
  bytesScanned: number;
  bytesShuffled: number;
  singleNodeBytes: number;
  executions: ExecutionMeasure[];
}

// ---- the fitted profile ----------------------------------------------------------------

/** y(sf) = a + b * sf, never below 0 when evaluated. */
export interface Linear { a: number; b: number }

export const at = (l: Linear, sf: number): number => Math.max(0, l.a + l.b * sf);

/** The line through (x1, y1) and (x2, y2); flat at y2 when x1 = x2. */
export function fitLinear(x1: number, y1: number, x2: number, y2: number): Linear {
  if (x1 === x2) return { a: y2, b: 0 };
  const b = (y2 - y1) / (x2 - x1);
  return { a: y2 - b * x2, b };
}

export interface StageProfile {
  stage: string;
  kind: 'leaf' | 'stage';
  reads: string[];
  /** How its task count scales: one task; one per worker (the planner's fragments and partitions); or with its bytes (a table of few files). */
  fanout: 'one' | 'fleet' | 'bytes';
  /** Tasks at the larger measured scale. */
  tasks: number;
  /** Bytes split over the tasks (bytesIn less the broadcast reads), and broadcast bytes per task. */
  splitBytes: Linear;
  broadcastBytesPerTask: Linear;
  bytesOut: Linear;
  rowsOut: Linear;
  /** Measured shuffle GETs / (tasks x producer objects): the share of pieces a consumer GETs; 1 when no object was measured. */
  getFill: number;
  hashOutput: boolean;
  /** CPU of one core per byte read, calibrated (calibrateCpu). */
  cpuMsPerByte: number;
  /** Measured wall time at the larger scale (for calibration). */
  measuredMs: number;
}

export interface ExecutionProfile {
  mode: ExecutionMeasure['mode'];
  stages: StageProfile[];
  reduceBytes: Linear | null;
  /** Earlier executions it waits for (ExecutionMeasure.after); absent: all of them. */
  after?: number[];
}

export interface QueryProfile {
  query: string;
  shape: string;
  /** 'linear': the two measured DAGs match stage for stage; otherwise the larger one, bytes proportional to the scale factor. */
  fit: 'linear' | 'proportional';
  executions: ExecutionProfile[];
}

/** A stage's name with the materialized step's hash taken out (__pdb_m<hex>_1 -> __pdb_m_1): it differs between runs of other data. */
export const stageKey = (name: string): string => name.replace(/__pdb_m[0-9a-f]+_/g, '__pdb_m_');

const sameDag = (x: QueryMeasure, y: QueryMeasure): boolean =>
  x.executions.length === y.executions.length &&
  x.executions.every((e, i) => e.mode === y.executions[i].mode && e.stages.length === y.executions[i].stages.length && e.stages.every((s) => y.executions[i].stages.some((t) => stageKey(t.stage) === stageKey(s.stage))));

/**
 * Bytes a stage's tasks split among them: for a leaf stage its table bytes less the
 * broadcast reads; for a later stage the bytes of the shuffles it reads (what its
 * producers wrote; bytesIn counts them too, inline pieces included, but the larger of the
 * two is taken so that a stage which also reads a table is not undercounted).
 */
export function splitBytesOf(s: StageMeasure, execution: StageMeasure[]): number {
  const read = Math.max(0, s.bytesIn - s.tasks * s.broadcastBytesPerTask);
  if (s.kind === 'leaf') return read;
  const shuffled = s.reads.reduce((n, r) => n + (execution.find((x) => x.stage === r)?.bytesOut ?? 0), 0);
  return Math.max(read, shuffled);
}

/**
 * Fit a query's profile from its runs at two scale factors (sfSmall < sfLarge). `fragments`
 * is the fragment bound the runs were planned with: a stage of that many tasks has one per
 * worker at scale.
 */
export function fitProfile(small: QueryMeasure, sfSmall: number, large: QueryMeasure, sfLarge: number, fragments: number): QueryProfile {
  if (!(sfSmall > 0 && sfLarge > sfSmall)) throw new PuffinError('bad_request', `scale model: need 0 < sfSmall < sfLarge, got ${sfSmall}, ${sfLarge}`);
  const linear = sameDag(small, large);
  const fit = (ys: number, yl: number): Linear => (linear ? fitLinear(sfSmall, ys, sfLarge, yl) : { a: 0, b: yl / sfLarge });
  const executions = large.executions.map((e, i): ExecutionProfile => {
    const se = linear ? small.executions[i] : undefined;
    const stages = e.stages.map((s): StageProfile => {
      const t = se?.stages.find((x) => stageKey(x.stage) === stageKey(s.stage)) ?? s;
      // Pairs of (consumer task, producer object): a producer whose piece travelled inline
      // (under the shuffle inline limit) wrote no object and is read with no GET.
      const objects = s.reads.reduce((n, r) => n + (e.stages.find((x) => x.stage === r)?.shufflePuts ?? 0), 0);
      const pairs = s.tasks * objects;
      return {
        stage: s.stage, kind: s.kind, reads: s.reads,
        // A later stage's tasks are the shuffle's partitions (one per worker), or one (a
        // stage the planner runs as one task); a leaf stage has one task per worker unless
        // its table has fewer files than the fragment bound.
        // A leaf stage of fewer tasks reads a table of few files at this scale: its tasks grow
        // with its bytes (a flat table, nation or region, stays at one).
        // A later stage is one task when planned so (its partitions, not the tasks its
        // partitions were grouped into at this scale).
        fanout: s.kind === 'stage' ? ((s.partitions ?? s.tasks) <= 1 ? 'one' : 'fleet') : s.tasks >= fragments ? 'fleet' : 'bytes',
        tasks: s.tasks,
        splitBytes: fit(splitBytesOf(t, se?.stages ?? e.stages), splitBytesOf(s, e.stages)),
        broadcastBytesPerTask: fit(t.broadcastBytesPerTask, s.broadcastBytesPerTask),
        bytesOut: fit(t.bytesOut, s.bytesOut),
        rowsOut: fit(t.rowsOut, s.rowsOut),
        // Of the pieces in objects, the share a consumer GETs (empty ones are skipped); with
        // no object measured, every consumer GETs every producer's piece once (the upper bound,
        // runtime/exec/shuffle-index.ts shuffleGetCount).
        getFill: pairs > 0 ? Math.min(1, s.shuffleGets / pairs) : 1,
        hashOutput: s.output.startsWith('hash'),
        cpuMsPerByte: 0,
        measuredMs: s.ms,
      };
    });
    const rb = e.reduceBytes === null ? null : fit(se?.reduceBytes ?? e.reduceBytes, e.reduceBytes);
    return { mode: e.mode, stages, reduceBytes: rb, ...(e.after ? { after: e.after } : {}) };
  });
  return { query: large.query, shape: large.shape, fit: linear ? 'linear' : 'proportional', executions };
}

// ---- a fleet ---------------------------------------------------------------------------

export interface FleetConfig {
  label: string;
  workers: number;
  /** Threads (vCPUs, or local cores) one task runs on. */
  vcpusPerWorker: number;
  /** Network bandwidth of one execution environment (bytes/s); Infinity for local files. */
  bytesPerSecondPerWorker: number;
  /** Same for the coordinator (the reduce step's partials). */
  coordinatorBytesPerSecond: number;
  /** First-byte latency of a GET or PUT. */
  firstByteMs: number;
  /** Shuffle pieces a reader GETs at once. */
  shuffleGetConcurrency: number;
  /** Producer objects from which a shuffle goes through the combining exchange (runtime/exec/shuffle-combine.ts); 0: never. */
  shuffleCombineAbove: number;
  /** Bytes per ranged GET of a table file, and ranges fetched at once. */
  tableGetBytes: number;
  /** Request rates (per prefix x prefixes); Infinity for local files. Table GETs: per table (a leaf stage reads one table). */
  tableGetsPerSecond: number;
  shuffleGetsPerSecond: number;
  shufflePutsPerSecond: number;
  /** Start of a stage: invoking a warm environment (round trip). */
  invokeMs: number;
  /**
   * Coordinator's own serial cost per task in the fan-out phase (dispatch and landing; the
   * reduce is apart), by fan-out: sync below asyncThreshold tasks, async from it.
   */
  dispatchMsSync: number;
  dispatchMsAsync: number;
  asyncThreshold: number;
  /** From this many tasks the first attempts go through relays (an invocation tree): the coordinator's cost per task, and one more invoke round trip. */
  relayAbove: number;
  dispatchMsRelayed: number;
  /** Fixed cost of one task on its worker (views, writing its output). */
  taskFixedMs: number;
  /** Coordinator: planning one execution, and the reduce step's fixed, per-byte and per-partial cost (at the calibration machine). */
  planMs: number;
  reduceFixedMs: number;
  reduceMsPerByte: number;
  /** Per partial the reduce reads (one per task of a stage whose output is single), measured by `fanout` at 1,000 partials. */
  reduceMsPerPartial: number;
  /** The coordinator reduces this many times faster than the calibration machine. */
  reduceSpeedup: number;
  /** Partials over this go through the object store (a PUT and a GET more). */
  inlineLimitBytes: number;
  /** A task's shuffle output up to this travels inline in its result (no PUT, no GETs of it). */
  shuffleInlineLimitBytes: number;
  /** Tasks per stage at scale: the planner's fragments (= workers); null keeps the measured counts (the local check). */
  fleetTasks: number | null;
  /**
   * A later (shuffle-reading) stage's partitions (one per worker) run in tasks of about this
   * many bytes of what it reads, at most one per worker (the coordinator's grouping,
   * runtime/exec/shuffle-index.ts coalescePartitions, PUFFINDB_STAGE_TASK_BYTES); 0: one task
   * per partition.
   */
  stageTaskBytes: number;
  /** Cold: the first stage waits for environments (Lambda adds newEnvironmentsPerStep every scalingStepMs), each paying coldStartMs. */
  cold: boolean;
  coldStartMs: number;
  newEnvironmentsPerStep: number;
  scalingStepMs: number;
}

export interface StageAtScale {
  stage: string;
  /**
   * The combining rounds that run before this stage, one per shuffle it reads that is
   * combined: as stages of their own (combiners read and write, run no SQL).
   */
  combines?: StageAtScale[];
  tasks: number;
  bytesIn: number;
  bytesPerTask: number;
  bytesOutPerTask: number;
  shuffleGetsPerTask: number;
  tableGetsPerTask: number;
  putsPerTask: number;
  /** Table bytes (not shuffle) per task. */
  tableBytesPerTask: number;
  cpuMsPerByte: number;
}

/** Tasks of a stage at scale factor sf on a fleet. */
export function tasksAt(s: StageProfile, sf: number, sfMeasured: number, c: FleetConfig): number {
  if (c.fleetTasks === null || s.fanout === 'one') return s.fanout === 'one' ? 1 : s.tasks;
  if (s.fanout === 'fleet' && s.kind === 'stage' && c.stageTaskBytes > 0) return Math.max(1, Math.min(c.fleetTasks, Math.ceil(at(s.splitBytes, sf) / c.stageTaskBytes)));
  if (s.fanout === 'fleet') return c.fleetTasks;
  // As many tasks as the bytes at the measured size per task, but none smaller than one
  // ranged GET of a file (a one-file result stays a few tasks, not one per 40 KB).
  const perTask = Math.max(at(s.splitBytes, sfMeasured) / s.tasks, c.tableGetBytes);
  return Math.max(1, Math.min(c.fleetTasks, Math.max(s.tasks, Math.ceil(at(s.splitBytes, sf) / perTask))));
}

/** One execution's stages at scale factor sf: task counts, bytes per task, requests per task. */
export function stagesAt(e: ExecutionProfile, sf: number, sfMeasured: number, c: FleetConfig): StageAtScale[] {
  const tasks = new Map(e.stages.map((s) => [s.stage, tasksAt(s, sf, sfMeasured, c)]));
  // Producers whose output per task is over the shuffle inline limit write an object each.
  const objects = new Map(e.stages.map((s) => {
    const n = tasks.get(s.stage)!;
    return [s.stage, s.hashOutput && at(s.bytesOut, sf) / n > c.shuffleInlineLimitBytes ? n : 0];
  }));
  return e.stages.map((s) => {
    const n = tasks.get(s.stage)!;
    const bcast = at(s.broadcastBytesPerTask, sf);
    const split = at(s.splitBytes, sf);
    const bytesPerTask = split / n + bcast;
    // A read of many producer objects goes through a combining round: the consumer then GETs
    // one object per row of the grid instead of one per producer.
    const combines: StageAtScale[] = [];
    let producerObjects = 0;
    for (const r of s.reads) {
      const objectsOf = objects.get(r) ?? 0;
      if (!combinesObjects(objectsOf, n, c.shuffleCombineAbove)) {
        producerObjects += objectsOf;
        continue;
      }
      const cells = combineGrid(objectsOf, n);
      const rows = new Set(cells.map((x) => x.producers[0])).size;
      const rowSize = Math.ceil(objectsOf / rows);
      const producer = e.stages.find((x) => x.stage === r)!;
      const bytes = at(producer.bytesOut, sf);
      combines.push({
        stage: `${r}-combine`, tasks: cells.length, bytesIn: bytes, bytesPerTask: bytes / cells.length, bytesOutPerTask: bytes / cells.length,
        shuffleGetsPerTask: s.getFill * rowSize, tableGetsPerTask: 0, putsPerTask: 1, tableBytesPerTask: 0, cpuMsPerByte: 0,
      });
      producerObjects += rows;
    }
    // Leaf stages read tables; later stages read shuffles (split) and broadcast tables.
    const tableBytesPerTask = s.kind === 'leaf' ? bytesPerTask : bcast;
    return {
      stage: s.stage, ...(combines.length ? { combines } : {}), tasks: n, bytesIn: split + n * bcast, bytesPerTask, bytesOutPerTask: at(s.bytesOut, sf) / n,
      shuffleGetsPerTask: s.getFill * producerObjects,
      tableGetsPerTask: tableBytesPerTask > 0 ? Math.ceil(tableBytesPerTask / c.tableGetBytes) : 0,
      putsPerTask: objects.get(s.stage)! > 0 ? 1 : 0, tableBytesPerTask, cpuMsPerByte: s.cpuMsPerByte,
    };
  });
}

/** Time of one task of a stage, on its worker. */
export function taskMs(s: StageAtScale, c: FleetConfig): number {
  const fetch = Number.isFinite(c.bytesPerSecondPerWorker) ? (s.bytesPerTask / c.bytesPerSecondPerWorker) * 1000 : 0;
  const cpu = (s.bytesPerTask * s.cpuMsPerByte) / c.vcpusPerWorker;
  const tableLatency = s.tableGetsPerTask > 0 ? c.firstByteMs : 0;
  const shuffleLatency = Math.ceil(s.shuffleGetsPerTask / c.shuffleGetConcurrency) * c.firstByteMs;
  const put = s.putsPerTask > 0 ? c.firstByteMs + (Number.isFinite(c.bytesPerSecondPerWorker) ? (s.bytesOutPerTask / c.bytesPerSecondPerWorker) * 1000 : 0) : 0;
  const stored = s.putsPerTask === 0 && s.bytesOutPerTask > Math.max(c.inlineLimitBytes, c.shuffleInlineLimitBytes) ? 2 * c.firstByteMs : 0;
  return c.taskFixedMs + tableLatency + shuffleLatency + Math.max(fetch, cpu) + put + stored;
}

export interface PhaseResult {
  ms: number;
  /** Sum of task times (billed worker time). */
  busyMs: number;
  tasks: number;
  tableGets: number;
  shuffleGets: number;
  puts: number;
  /** What bounds it: 'tasks' (the work), 'dispatch', 'table GET rate', 'shuffle GET rate', 'PUT rate'. */
  bound: string;
}

/** Stages that run at once (an execution's leaf stages) or one stage alone, on the fleet. */
export function phaseMs(stages: StageAtScale[], c: FleetConfig): PhaseResult {
  const tasks = stages.reduce((n, s) => n + s.tasks, 0);
  const times = stages.map((s) => taskMs(s, c));
  const busyMs = stages.reduce((sum, s, i) => sum + s.tasks * times[i], 0);
  const work = Math.max(0, ...times, busyMs / c.workers);
  const relayed = c.relayAbove > 0 && tasks >= c.relayAbove && tasks >= c.asyncThreshold;
  const dispatch = tasks * (relayed ? c.dispatchMsRelayed : tasks >= c.asyncThreshold ? c.dispatchMsAsync : c.dispatchMsSync) + (relayed ? c.invokeMs : 0);
  const tableGets = stages.reduce((n, s) => n + s.tasks * s.tableGetsPerTask, 0);
  const shuffleGets = stages.reduce((n, s) => n + s.tasks * s.shuffleGetsPerTask, 0);
  const puts = stages.reduce((n, s) => n + s.tasks * s.putsPerTask, 0);
  // The coordinator hands tasks out one after another while the first ones run: the
  // phase lasts at least the dispatch plus a task, and at least the work spread over the fleet.
  const longest = Math.max(0, ...times);
  const bounds: [string, number][] = [
    ['tasks', Math.max(work, dispatch + longest)],
    ['table GET rate', (Math.max(0, ...stages.map((s) => s.tasks * s.tableGetsPerTask)) / c.tableGetsPerSecond) * 1000],
    ['shuffle GET rate', (shuffleGets / c.shuffleGetsPerSecond) * 1000],
    ['PUT rate', (puts / c.shufflePutsPerSecond) * 1000],
  ];
  const [bound, ms] = bounds.reduce((m, b) => (b[1] > m[1] ? b : m));
  return { ms: c.invokeMs + ms, busyMs, tasks, tableGets, shuffleGets, puts, bound: bound === 'tasks' && dispatch + longest > work && dispatch > longest ? 'dispatch' : bound };
}

/** The reduce step on the coordinator over `partials` partials of `bytes` in all: fetch them at one node's bandwidth, then its CPU. */
export function reduceMs(bytes: number, c: FleetConfig, partials = 0): number {
  const fetch = Number.isFinite(c.coordinatorBytesPerSecond) ? (bytes / c.coordinatorBytesPerSecond) * 1000 : 0;
  return fetch + (c.reduceFixedMs + c.reduceMsPerByte * bytes + c.reduceMsPerPartial * partials) / c.reduceSpeedup;
}

/** Partials an execution's reduce step reads: one per task of each stage whose output is single. */
export function reducePartials(e: ExecutionProfile, all: StageAtScale[]): number {
  return e.reduceBytes === null ? 0 : all.reduce((n, s, i) => n + (e.stages[i].hashOutput ? 0 : s.tasks), 0);
}

export interface ExecutionResult {
  mode: ExecutionMeasure['mode'];
  /** The wave it ran in (executionWaves): its time is the wave's, listed under the wave's first execution (0 for the others). */
  wave: number;
  ms: number;
  planMs: number;
  phases: { stages: string[]; tasks: number; ms: number; bound: string }[];
  reduceMs: number;
}

export interface QueryResult {
  query: string;
  latencyMs: number;
  executions: ExecutionResult[];
  busyMs: number;
  tasks: number;
  tableGets: number;
  shuffleGets: number;
  puts: number;
}

/**
 * The waves an execution runs in: 0 when it waits for none, else one past the latest wave
 * of those it waits for (ExecutionProfile.after; all earlier ones when absent).
 */
export function executionWaves(executions: readonly { after?: number[] }[]): number[] {
  const waves: number[] = [];
  executions.forEach((e, k) => {
    const after = e.after ?? Array.from({ length: k }, (_, j) => j);
    waves.push(after.filter((j) => j < k).reduce((w, j) => Math.max(w, waves[j] + 1), 0));
  });
  return waves;
}

/**
 * A query at scale factor sf on fleet c (profile calibrated at sfMeasured). Executions that
 * wait for nothing of each other run at once in the engine (its steps): the model runs each
 * wave of them (executionWaves) as one, their k-th phases together (tasks summed: one
 * coordinator dispatches them all, one fleet runs them), planned one after another on the
 * coordinator, the wave ending with the slowest of their reduce steps.
 */
export function modelQuery(p: QueryProfile, sf: number, sfMeasured: number, c: FleetConfig): QueryResult {
  if (!(Number.isInteger(c.workers) && c.workers >= 1)) throw new PuffinError('bad_request', `scale model: workers must be a positive integer, got ${c.workers}`);
  if (!(sf > 0)) throw new PuffinError('bad_request', `scale model: the scale factor must be positive, got ${sf}`);
  const out: QueryResult = { query: p.query, latencyMs: 0, executions: [], busyMs: 0, tasks: 0, tableGets: 0, shuffleGets: 0, puts: 0 };
  let first = true;
  const waves = executionWaves(p.executions);
  const perExecution = p.executions.map((e) => {
    const all = stagesAt(e, sf, sfMeasured, c);
    // A later stage's combining rounds run (together) just before it.
    const groups = [
      all.filter((_, i) => e.stages[i].kind === 'leaf'),
      ...all.filter((_, i) => e.stages[i].kind === 'stage').flatMap((s) => [s.combines ?? [], [s]]),
    ].filter((g) => g.length);
    const red = e.reduceBytes === null ? 0 : reduceMs(at(e.reduceBytes, sf), c, reducePartials(e, all));
    return { groups, red };
  });
  const results: ExecutionResult[] = p.executions.map((e, k) => ({ mode: e.mode, ms: 0, planMs: c.planMs, phases: [], reduceMs: perExecution[k].red, wave: waves[k] }));
  for (let w = 0; w <= Math.max(-1, ...waves); w++) {
    const members = waves.flatMap((x, k) => (x === w ? [k] : []));
    if (!members.length) continue;
    let ms = c.planMs * members.length;
    const depth = Math.max(...members.map((k) => perExecution[k].groups.length));
    for (let i = 0; i < depth; i++) {
      const g = members.flatMap((k) => perExecution[k].groups[i] ?? []);
      if (!g.length) continue;
      const r = phaseMs(g, c);
      let t = r.ms;
      if (c.cold && first) {
        // Lambda adds at most newEnvironmentsPerStep environments per scaling step; each pays a cold start.
        const needed = Math.min(c.workers, r.tasks);
        t += Math.floor((needed - 1) / c.newEnvironmentsPerStep) * c.scalingStepMs + c.coldStartMs;
        out.busyMs += needed * c.coldStartMs;
        first = false;
      }
      // A phase of several executions is listed under the first of them.
      results[members[0]].phases.push({ stages: g.map((s) => s.stage), tasks: r.tasks, ms: t, bound: r.bound });
      ms += t;
      out.busyMs += r.busyMs;
      out.tasks += r.tasks;
      out.tableGets += r.tableGets;
      out.shuffleGets += r.shuffleGets;
      out.puts += r.puts;
    }
    ms += Math.max(...members.map((k) => perExecution[k].red));
    results[members[0]].ms = ms;
    out.latencyMs += ms;
  }
  out.executions = results;
  return out;
}

// ---- calibration -----------------------------------------------------------------------

/**
 * CPU ms per byte for every stage of a profile, from its measured times on the local fleet
 * `local` (which must keep the measured task counts): per phase, the value at which the
 * model gives the measured time (bisection; the phase's stages share it). A phase whose
 * measured time is under the model's fixed costs gets 0.
 */
export function calibrateCpu(p: QueryProfile, sfMeasured: number, local: FleetConfig): QueryProfile {
  if (local.fleetTasks !== null) throw new PuffinError('bad_request', 'scale model: calibrate on a fleet that keeps the measured task counts (fleetTasks null)');
  const executions = p.executions.map((e) => {
    const stages = e.stages.map((s) => ({ ...s }));
    const leaf = stages.filter((s) => s.kind === 'leaf');
    const groups = [leaf, ...stages.filter((s) => s.kind === 'stage').map((s) => [s])].filter((g) => g.length);
    for (const g of groups) {
      const measured = Math.max(...g.map((s) => s.measuredMs));
      // A phase that read nothing is all fixed cost: no CPU per byte to find.
      if (g.every((s) => at(s.splitBytes, sfMeasured) + at(s.broadcastBytesPerTask, sfMeasured) <= 0)) continue;
      const timeWith = (cpu: number) => {
        for (const s of g) s.cpuMsPerByte = cpu;
        return phaseMs(stagesAt({ ...e, stages }, sfMeasured, sfMeasured, local).filter((x) => g.some((s) => s.stage === x.stage)), local).ms;
      };
      if (timeWith(0) >= measured) { timeWith(0); continue; }
      let lo = 0;
      let hi = 1e-6;
      while (timeWith(hi) < measured && hi < 1e3) hi *= 4;
      for (let i = 0; i < 60; i++) {
        const mid = (lo + hi) / 2;
        if (timeWith(mid) < measured) lo = mid;
        else hi = mid;
      }
      timeWith((lo + hi) / 2);
    }
    return { ...e, stages };
  });
  return { ...p, executions };
}

/**
 * The reduce step's cost, fitted over queries by least squares with non-negative terms:
 * reduceMs(query) = fixed x (reduce steps) + perByte x (bytes they read).
 */
export function fitReduce(rows: { reduceMs: number; steps: number; bytes: number }[]): { fixedMs: number; msPerByte: number } {
  const use = rows.filter((r) => r.steps > 0);
  if (!use.length) return { fixedMs: 0, msPerByte: 0 };
  let sxx = 0, sxy = 0, syy = 0, sx1 = 0, sy1 = 0;
  for (const r of use) { sxx += r.steps * r.steps; sxy += r.steps * r.bytes; syy += r.bytes * r.bytes; sx1 += r.steps * r.reduceMs; sy1 += r.bytes * r.reduceMs; }
  const det = sxx * syy - sxy * sxy;
  let fixed = det !== 0 ? (sx1 * syy - sy1 * sxy) / det : sx1 / sxx;
  let perByte = det !== 0 ? (sxx * sy1 - sxy * sx1) / det : 0;
  if (perByte < 0) { perByte = 0; fixed = sx1 / sxx; }
  if (fixed < 0) { fixed = 0; perByte = syy > 0 ? sy1 / syy : 0; }
  return { fixedMs: fixed, msPerByte: perByte };
}

/**
 * The local fleet's fixed cost per task, fitted over every measured phase (an execution's
 * leaf stages together, or one later stage) by the same non-negative least squares:
 * (phase ms - round trip) = fixed x (tasks per worker, at least 1) + perByte x (bytes per worker).
 * perByte is a fleet-wide average, used only to separate the fixed part.
 */
export function fitTaskFixed(queries: QueryMeasure[], workers: number, roundTripMs: number): { fixedMs: number; msPerByte: number } {
  const rows: { reduceMs: number; steps: number; bytes: number }[] = [];
  for (const q of queries) {
    for (const e of q.executions) {
      const leaf = e.stages.filter((s) => s.kind === 'leaf');
      const groups = [leaf, ...e.stages.filter((s) => s.kind === 'stage').map((s) => [s])].filter((g) => g.length);
      for (const g of groups) {
        const tasks = g.reduce((n, s) => n + s.tasks, 0);
        const bytes = g.reduce((n, s) => n + splitBytesOf(s, e.stages) + s.tasks * s.broadcastBytesPerTask, 0);
        rows.push({ reduceMs: Math.max(0, Math.max(...g.map((s) => s.ms)) - roundTripMs), steps: Math.max(1, tasks / workers), bytes: bytes / Math.min(workers, tasks) });
      }
    }
  }
  return fitReduce(rows);
}

// ---- cost ------------------------------------------------------------------------------

export interface CostInputs {
  workerMemoryMb: number;
  pricePerGbSecond: number;
  pricePerRequest: number;
  pricePerGet: number;
  pricePerPut: number;
}

export interface Cost { workers: number; coordinator: number; requests: number; gets: number; puts: number; total: number }

/** Dollars for one query: workers' busy GB-seconds, the coordinator's for the whole query, invokes, S3 GETs and PUTs. */
export function costOf(r: QueryResult, p: CostInputs): Cost {
  const gb = p.workerMemoryMb / 1024;
  const workers = (r.busyMs / 1000) * gb * p.pricePerGbSecond;
  const coordinator = (r.latencyMs / 1000) * gb * p.pricePerGbSecond;
  const requests = (r.tasks + 1) * p.pricePerRequest;
  const gets = (r.tableGets + r.shuffleGets) * p.pricePerGet;
  const puts = r.puts * p.pricePerPut;
  return { workers, coordinator, requests, gets, puts, total: workers + coordinator + requests + gets + puts };
}
