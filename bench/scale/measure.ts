// Measures the stage DAG of the 22 TPC-H queries on the local cluster: for every execution
// of a query (each materialized step, then the query over their results) the stages it ran
// and what each did (runtime/planner/plan.ts StageStats, gathered by the coordinator), what
// the coordinator's reduce step read, and the query's wall time. The scale model
// (model.ts) is driven by these figures.
//
// Plans are made as the planner would make them at the target scale factor: subqueries
// always run as steps (PUFFINDB_SUBQUERY_STAGE_BYTES=0, as they do when they pull up GBs),
// and the broadcast limit is scaled down by measuredScale / targetScale, so a table that
// would be over PUFFINDB_BROADCAST_LIMIT_BYTES at the target scale is over it here too and
// the join is partitioned (shuffled) rather than broadcast. The partial groups from which a
// final aggregate runs in a stage (PUFFINDB_PARTITIONED_AGGREGATE_GROUPS) are scaled alike.

import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { loadTpchQueries } from '../../runtime/demo/tpch-queries.ts';
import type { FileRef, Plan, StageStats } from '../../runtime/planner/plan.ts';
import { SETTINGS } from '../../runtime/settings.ts';
import { ensureTpch, openCluster } from '../data.ts';
import type { ExecutionMeasure, QueryMeasure, StageMeasure } from './model.ts';

export interface MeasureOptions {
  dataDir: string;
  scale: number;
  /** The scale factor whose plans are wanted (the broadcast limit is scaled by scale / targetScale). */
  targetScale: number;
  fragments: number;
  workers: number;
  /** Timed runs per query after one untimed warm-up; the median wall time is kept. */
  reps: number;
  log: (line: string) => void;
}

export interface ScaleMeasurement {
  scale: number;
  fragments: number;
  workers: number;
  broadcastLimitBytes: number;
  /** The machine's 1-minute load average when the run began and ended (other work on it slows the stages). */
  loadAverage: [number, number];
  queries: QueryMeasure[];
}

/** What one execution's plan says about its stages: kind, what they read, broadcast bytes per task. */
function planFacts(plan: Plan): Map<string, { kind: 'leaf' | 'stage'; reads: string[]; broadcastBytesPerTask: number }> {
  const facts = new Map<string, { kind: 'leaf' | 'stage'; reads: string[]; broadcastBytesPerTask: number }>();
  const byOutput = new Map<string, Plan['fragments']>();
  for (const f of plan.fragments) byOutput.set(f.output, [...(byOutput.get(f.output) ?? []), f]);
  for (const [output, frags] of byOutput) {
    // An input whose files are the same in every fragment of the output is read whole by each
    // (broadcast). A row-group split of one file is a different read in every fragment: its
    // row range is part of what it reads.
    let broadcast = 0;
    if (frags.length > 1) {
      for (const input of frags[0].inputs) {
        const key = (fs: FileRef[]) => fs.map((x) => (x.rows ? `${x.uri}#${x.rows.start}-${x.rows.end}` : x.uri)).join('\n');
        const k = key(input.files);
        if (frags.every((f) => f.inputs.some((i) => i.view === input.view && key(i.files) === k))) broadcast += input.files.reduce((s, x) => s + x.sizeBytes, 0);
      }
    }
    facts.set(output, { kind: 'leaf', reads: [], broadcastBytesPerTask: broadcast });
  }
  for (const st of plan.stages ?? []) {
    facts.set(st.id, { kind: 'stage', reads: st.reads.map((r) => r.stage), broadcastBytesPerTask: st.tables.reduce((s, t) => s + t.files.reduce((n, x) => n + x.sizeBytes, 0), 0) });
  }
  return facts;
}

function modeOf(plan: Plan): ExecutionMeasure['mode'] {
  if (plan.stored) return 'table';
  if (/CAST\(count\(\*\) > 0 AS VARCHAR\) AS __v/.test(plan.reduce.sql)) return 'exists';
  if (/SELECT CAST\(__v AS VARCHAR\) AS __v/.test(plan.reduce.sql)) return 'scalar';
  return 'rows';
}

/** The executions of one query run, in the order they ran, with their stages. */
export function executionsOf(plans: Plan[], stages: StageStats[], staged: boolean): ExecutionMeasure[] {
  return plans.map((plan, k) => {
    // cluster.ts runPlan: the first execution of an unstaged query runs under the query's
    // id (stages unprefixed); every other one under <id>-s<n>, n counting executions from 1.
    const prefix = !staged && k === 0 ? '' : `s${k + 1}/`;
    const facts = planFacts(plan);
    const own = stages.filter((s) => (prefix ? s.stage.startsWith(prefix) : !/^s\d+\//.test(s.stage)));
    const measured: StageMeasure[] = own.map((s) => {
      const name = s.stage.slice(prefix.length);
      const f = facts.get(name) ?? { kind: 'leaf' as const, reads: [], broadcastBytesPerTask: 0 };
      return { stage: name, kind: f.kind, reads: f.reads, tasks: s.tasks, ...(s.partitions !== undefined ? { partitions: s.partitions } : {}), rowsOut: s.rowsOut, bytesOut: s.bytesOut, bytesIn: s.bytesIn, broadcastBytesPerTask: f.broadcastBytesPerTask, shuffleGets: s.shuffleGets, shufflePuts: s.shufflePuts, ms: s.ms, output: s.output };
    });
    const mode = modeOf(plan);
    // The reduce step reads every single output's partials; a stored step has no reduce.
    const reduceBytes = mode === 'table' ? null : measured.filter((s) => s.output === 'single').reduce((n, s) => n + s.bytesOut, 0);
    return { mode, shape: plan.shape, reason: plan.reason, stages: measured, reduceBytes };
  });
}

/**
 * For each execution (in the order `plans` ran), the earlier executions it waits for, as the
 * engine runs them (exec/cluster.ts runPlan): a step starts when the steps its SQL names are
 * done (and what its own caller waited for), the rest of a staged query when all of its
 * steps are. Found from the top-level plan's tree of steps, whose leaves are the very plan
 * objects that ran; an execution it cannot place waits for every one before it.
 */
export function executionDependencies(top: Plan, plans: Plan[]): number[][] {
  const deps: (number[] | undefined)[] = plans.map(() => undefined);
  const indexOf = (node: Plan): number => {
    const k = plans.indexOf(node);
    return k >= 0 ? k : plans.findIndex((p) => p.fragments === node.fragments);
  };
  const walk = (node: Plan, after: number[]): number => {
    if (node.materialized) {
      const ends: number[] = [];
      node.materialized.steps.forEach((step, i) => {
        const named = node.materialized!.steps.slice(0, i).flatMap((earlier, j) => (step.sql.includes(earlier.name) && ends[j] >= 0 ? [ends[j]] : []));
        ends[i] = step.plan ? walk(step.plan, [...after, ...named]) : -1;
      });
      const rest = indexOf(node);
      if (rest >= 0 && deps[rest] === undefined) deps[rest] = [...new Set([...after, ...ends.filter((e) => e >= 0)])];
      return rest;
    }
    const k = indexOf(node);
    if (k >= 0 && deps[k] === undefined) deps[k] = [...new Set(after)];
    return k;
  };
  walk(top, []);
  return deps.map((d, k) => (d ?? Array.from({ length: k }, (_, j) => j)).filter((j) => j !== k).sort((a, b) => a - b));
}

/** Run the 22 TPC-H queries at one scale on the local cluster and keep their stage DAGs. */
export async function measureTpch(o: MeasureOptions): Promise<ScaleMeasurement> {
  // Scaled from the settings' defaults: the broadcast limit, and likewise the partial groups
  // from which the final aggregate runs in a stage (groups that grow with the data reach it at
  // the target scale, not here).
  const scaled = (setting: { default: string }) => Math.max(1, Math.round((Number(setting.default) * o.scale) / o.targetScale));
  const broadcastLimitBytes = scaled(SETTINGS.broadcastLimitBytes);
  const planAs: Record<string, string> = {
    [SETTINGS.subqueryStageBytes.env]: '0',
    [SETTINGS.broadcastLimitBytes.env]: String(broadcastLimitBytes),
    [SETTINGS.partitionedAggregateGroups.env]: String(scaled(SETTINGS.partitionedAggregateGroups)),
  };
  const saved = Object.keys(planAs).map((k) => [k, process.env[k]] as const);
  Object.assign(process.env, planAs);
  try {
    const data = await ensureTpch(o.dataDir, o.scale, o.log);
    const { cluster, close } = await openCluster(o.dataDir, data, o.workers);
    const queries: QueryMeasure[] = [];
    const loadBefore = loadavg()[0];
    try {
      for (const q of await loadTpchQueries()) {
        const times: number[] = [];
        let firstPlanMs = 0;
        let last: { plans: Plan[]; out: Awaited<ReturnType<typeof cluster.query>> } | undefined;
        for (let r = 0; r <= o.reps; r++) {
          const plans: Plan[] = [];
          const t0 = performance.now();
          const out = await cluster.query(q.sql, { fragments: o.fragments, role: 'admin', onPlan: (p) => plans.push(p) });
          const ms = performance.now() - t0;
          if (r > 0) times.push(ms);
          // The planner caches plans: only the first run plans from scratch.
          else firstPlanMs = out.stats.planMs;
          last = { plans, out };
        }
        const { plans, out } = last!;
        times.sort((a, b) => a - b);
        const mid = times.length >> 1;
        const wallMs = times.length % 2 ? times[mid] : (times[mid - 1] + times[mid]) / 2;
        const after = executionDependencies(out.plan, plans);
        const executions = executionsOf(plans, out.stats.stages ?? [], !!out.plan.materialized).map((e, k) => ({ ...e, after: after[k] }));
        queries.push({
          query: q.id, shape: out.plan.shape, reason: out.plan.reason, wallMs, planMs: out.stats.planMs, firstPlanMs, executeMs: out.stats.executeMs, reduceMs: out.stats.reduceMs,
          bytesScanned: out.stats.bytesScanned, bytesShuffled: out.stats.bytesShuffled, singleNodeBytes: out.stats.singleNodeBytes ?? 0, executions,
        });
        o.log(`sf ${o.scale} ${q.id}: ${wallMs.toFixed(0)} ms, ${executions.length} execution(s), ${executions.reduce((n, e) => n + e.stages.length, 0)} stage(s)`);
      }
    } finally {
      await close();
    }
    return { scale: o.scale, fragments: o.fragments, workers: o.workers, broadcastLimitBytes, loadAverage: [loadBefore, loadavg()[0]], queries };
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
