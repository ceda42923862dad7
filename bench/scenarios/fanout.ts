// `fanout`: what the coordinator itself costs per fragment. A no-op Invoker answers every
// fragment at once with the same tiny inline partial, so what remains is scheduling,
// landing partials and the reduce over N partials. A second series runs a real tiny
// fragment (count of nation) on a real in-process Worker, the fixed cost of one fragment.
// Async invocation (InvocationType Event + completions), with and without relays, and sync
// through the Invoke API, are measured by bench/fanout-modes.ts with the workers in a child
// process. Per run it records the wall time, the fan-out phase (stats.executeMs), the reduce
// (stats.reduceMs) and this process's CPU time, so the coordinator's own cost per fragment
// (its CPU up to the last fragment's landing) is told apart from the reduce over n partials and from the
// workers' time (which on AWS is spent elsewhere).

import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Engine } from '../../runtime/engine/engine.ts';
import { Coordinator } from '../../runtime/exec/coordinator.ts';
import { InProcessInvoker } from '../../runtime/exec/in-process-invoker.ts';
import type { FragmentRequest, FragmentResult, Invoker } from '../../runtime/exec/invoker.ts';
import type { Plan } from '../../runtime/planner/plan.ts';
import { storeOptionsOf } from '../../runtime/exec/worker.ts';
import { measureInterleaved, summarize, type Contender, type RunContext, type Scenario, type ScenarioResult, type Summary } from '../harness.ts';
import { benchSettings, ensureTpch, planTinyQuery } from '../data.ts';

/** Answers instantly with a fixed partial: the worker's cost taken out of the picture. */
export class NoopInvoker implements Invoker {
  calls = 0;
  constructor(private readonly partialBase64: string, private readonly rows: number) {}
  async invoke(request: FragmentRequest): Promise<FragmentResult> {
    this.calls++;
    return { fragmentId: request.fragment.id, partial: { kind: 'inline', parquetBase64: this.partialBase64 }, rows: this.rows, bytes: 0, bytesScanned: 0, durationMs: 0 };
  }
  async close(): Promise<void> {}
}

/** The tiny plan's single fragment repeated n times (ids f0..f{n-1}), same reduce. */
export function widenPlan(plan: Plan, n: number): Plan {
  const f = plan.fragments[0];
  return { ...plan, fragments: Array.from({ length: n }, (_, i) => ({ ...f, id: `f${i}` })) };
}

/** One run's figures (bench/fanout-modes.ts FanoutRun). */
interface Run { wallMs: number; fanoutMs: number; reduceMs: number; cpuMs: number; fanoutCpuMs?: number; fanoutBusyMs?: number }
/** What bench/fanout-modes.ts exports for the series through the Invoke API. */
type Fanout = (fragments: number, reps: number, options?: { mode?: 'sync' | 'async'; relayed?: boolean }) => Promise<Run[]>;

async function loadFanout(): Promise<Fanout | string> {
  const path = resolve('bench/fanout-modes.ts');
  if (!existsSync(path)) return 'asynchronous invocation is not available: bench/fanout-modes.ts does not exist';
  const mod = (await import(path)) as Record<string, unknown>;
  if (typeof mod.measureFanout !== 'function') return 'bench/fanout-modes.ts exports no measureFanout(fragments, reps, {mode, relayed}): Promise<FanoutRun[]>';
  return mod.measureFanout as Fanout;
}

/** Medians over a series' runs, each ms per fragment. */
export interface PerFragmentSplit {
  /** Wall time of the whole query (what perFragmentMs holds). */
  wallMs: number;
  /** The fan-out phase (the coordinator's stats.executeMs: every task dispatched and landed). */
  fanoutPhaseMs: number;
  /** The coordinator's reduce over the n partials (stats.reduceMs), per partial. */
  reduceMs: number;
  /** The coordinator process's CPU time (user + system, all its threads) over the run. */
  cpuMs: number;
  /** The coordinator's CPU (all its threads) from the start to the last fragment's landing (the fan-out phase of a one-stage plan); where that was not recorded, (cpu - reduce wall) / n, at least 0. */
  fanoutCpuMs: number;
  /** Its event loop's busy ms over the same span (the main thread's serial time, inflated when other processes preempt it). */
  fanoutBusyMs?: number;
  /**
   * The coordinator's own serial cost per task in the fan-out phase: the smaller of the two
   * above, each an upper bound on its main thread's CPU (the one because it also counts GC,
   * libuv and DuckDB threads that run beside it, the other because it counts preemption).
   */
  coordinatorMs: number;
  /** Its CPU after the last landing (the reduce over the n partials, and dropping them), per partial. */
  reduceCpuMs?: number;
}

export interface FanoutRow {
  fragments: number;
  timings: Record<string, Summary>;
  /** Median ms per fragment, per series (wall time of the whole query). */
  perFragmentMs: Record<string, number>;
  /** Per series, the wall time split (absent in results from before it was measured). */
  split?: Record<string, PerFragmentSplit>;
}

const medianOf = (xs: number[]): number => summarize(xs).median;

/** A series' split per fragment, from its runs of n fragments. */
export function splitOf(runs: Run[], n: number): PerFragmentSplit {
  return {
    wallMs: medianOf(runs.map((r) => r.wallMs)) / n,
    fanoutPhaseMs: medianOf(runs.map((r) => r.fanoutMs)) / n,
    reduceMs: medianOf(runs.map((r) => r.reduceMs)) / n,
    cpuMs: medianOf(runs.map((r) => r.cpuMs)) / n,
    fanoutCpuMs: medianOf(runs.map((r) => r.fanoutCpuMs ?? Math.max(0, r.cpuMs - r.reduceMs))) / n,
    ...(runs.every((r) => r.fanoutBusyMs !== undefined) ? { fanoutBusyMs: medianOf(runs.map((r) => r.fanoutBusyMs!)) / n } : {}),
    coordinatorMs: medianOf(runs.map((r) => Math.min(r.fanoutCpuMs ?? Math.max(0, r.cpuMs - r.reduceMs), r.fanoutBusyMs ?? Infinity))) / n,
    reduceCpuMs: medianOf(runs.map((r) => (r.fanoutCpuMs === undefined ? r.reduceMs : r.cpuMs - r.fanoutCpuMs))) / n,
  };
}

/** Runs the coordinator's query, recording its figures (wall, phase, reduce, this process's CPU). */
async function timed(runs: Run[], execute: (onFragment: () => void) => Promise<{ stats: { executeMs: number; reduceMs: number } }>): Promise<void> {
  const cpu = process.cpuUsage();
  const since = () => { const used = process.cpuUsage(cpu); return (used.user + used.system) / 1000; };
  let fanoutCpuMs = 0;
  let fanoutBusyMs = 0;
  const elu = performance.eventLoopUtilization();
  const t = performance.now();
  const o = await execute(() => { fanoutCpuMs = since(); fanoutBusyMs = performance.eventLoopUtilization(elu).active; });
  const wallMs = performance.now() - t;
  runs.push({ wallMs, fanoutMs: o.stats.executeMs, reduceMs: o.stats.reduceMs, cpuMs: since(), fanoutCpuMs, fanoutBusyMs });
}

export const fanoutScenario: Scenario = {
  name: 'fanout',
  async run(ctx: RunContext): Promise<ScenarioResult> {
    const reps = ctx.quick ? 3 : 7;
    const counts = [1, 10, 100, 1000];
    const data = await ensureTpch(ctx.dataDir, 0.1, ctx.log);
    const plan = await planTinyQuery(ctx.dataDir, data);
    const settings = benchSettings(ctx.dataDir, 'fanout', data, { PUFFINDB_WORKERS: '1', PUFFINDB_THREADS: '1' });
    const scratch = join(settings.home, 'coordinator');
    mkdirSync(scratch, { recursive: true });
    const engine = await Engine.create({ threads: 1, allowedDirectories: [scratch] });
    const realInvoker = await InProcessInvoker.create(settings);
    // The no-op's partial is a real worker's answer to the same fragment.
    const sample = await realInvoker.invoke({ queryId: 'sample', fragment: plan.fragments[0], deadline: Date.now() + 60_000 });
    if (sample.partial.kind !== 'inline') throw new Error('the tiny fragment should return its partial inline');
    const noop = new NoopInvoker(sample.partial.parquetBase64, sample.rows);
    const coordinatorOf = (invoker: Invoker) => new Coordinator({
      invoker, engine, scratchDir: join(scratch, 'partials'), concurrency: settings.concurrency, retries: 0,
      queryTimeoutMs: 120_000, inlineLimitBytes: settings.inlineLimitBytes, storeOptions: storeOptionsOf(settings),
    });
    const noopCoordinator = coordinatorOf(noop);
    const realCoordinator = coordinatorOf(realInvoker);
    const fanout = await loadFanout();
    const rows: FanoutRow[] = [];
    const skippedParts: { part: string; reason: string }[] = [];
    if (typeof fanout === 'string') skippedParts.push({ part: 'the Invoke API series (async, relayed, sync)', reason: fanout });
    const warmup = 1;
    const loadBefore = loadavg()[0];
    try {
      for (const n of counts) {
        const wide = widenPlan(plan, n);
        const runs: Record<string, Run[]> = { 'sync no-op worker': [], 'sync in-process worker': [] };
        const contenders: Contender<unknown>[] = [
          { name: 'sync no-op worker', run: () => timed(runs['sync no-op worker'], async (onFragment) => { const o = await noopCoordinator.execute(wide, { onFragment }); if (Number(o.rows[0][0]) !== 25 * n) throw new Error(`fanout reduce gave ${String(o.rows[0][0])}, expected ${25 * n}`); return o; }) },
          { name: 'sync in-process worker', run: () => timed(runs['sync in-process worker'], (onFragment) => realCoordinator.execute(wide, { onFragment })) },
        ];
        const m = await measureInterleaved(contenders, { warmup, reps });
        const timings = { ...m.timings };
        // The warm-up runs come first.
        for (const k of Object.keys(runs)) runs[k] = runs[k].slice(warmup);
        if (typeof fanout !== 'string') {
          for (const [name, options] of [['async no-op worker', { mode: 'async' }], ['async relayed no-op worker', { relayed: true }], ['sync no-op worker, Invoke API', { mode: 'sync' }]] as const) {
            runs[name] = await fanout(n, reps, options);
            timings[name] = summarize(runs[name].map((r) => r.wallMs));
          }
        }
        const perFragmentMs = Object.fromEntries(Object.entries(timings).map(([k, s]) => [k, s.median / n]));
        const split = Object.fromEntries(Object.entries(runs).map(([k, r]) => [k, splitOf(r, n)]));
        rows.push({ fragments: n, timings, perFragmentMs, split });
        ctx.log(`  fanout ${String(n).padStart(4)}: ${Object.entries(split).map(([k, v]) => `${k} wall ${v.wallMs.toFixed(3)}, phase ${v.fanoutPhaseMs.toFixed(3)}, reduce ${v.reduceMs.toFixed(3)} (CPU ${(v.reduceCpuMs ?? 0).toFixed(3)}), coordinator in the fan-out ${v.coordinatorMs.toFixed(3)} (CPU ${v.fanoutCpuMs.toFixed(3)}, busy ${(v.fanoutBusyMs ?? NaN).toFixed(3)}) ms/fragment`).join('; ')}`);
      }
    } finally {
      await realInvoker.close();
      engine.close();
      rmSync(join(scratch, 'partials'), { recursive: true, force: true });
    }
    const at1000 = rows.find((r) => r.fragments === 1000)!;
    const series = Object.keys(at1000.timings);
    const sp = at1000.split!;
    const ms = (x: number) => `${x.toFixed(3)} ms`;
    const splitLine = (k: string) => `${k}: ${ms(sp[k].coordinatorMs)} (CPU ${ms(sp[k].fanoutCpuMs)}, event loop busy ${ms(sp[k].fanoutBusyMs ?? NaN)}; wall ${ms(sp[k].wallMs)}, fan-out phase ${ms(sp[k].fanoutPhaseMs)}; reduce ${ms(sp[k].reduceMs)} wall, ${ms(sp[k].reduceCpuMs ?? 0)} CPU per partial)`;
    const load = [loadBefore, loadavg()[0]].map((x) => x.toFixed(1)).join(' and ');
    return {
      scenario: 'fanout',
      status: 'ok',
      description: `Coordinator overhead for 1/10/100/1,000 fragments of a real one-fragment plan (count of nation) widened N times, concurrency ${settings.concurrency}: a no-op Invoker in-process (the coordinator alone), a real in-process Worker (coordinator + the fixed cost of a tiny fragment), and a no-op worker through the local Lambda Invoke endpoint in a child process (bench/fanout-worker-child.ts), sync, async (Event + completions through redis-server) and async through relays. Per run: wall, the fan-out phase (stats.executeMs), the reduce (stats.reduceMs) and the coordinator process's CPU time. ${reps} repetitions after 1 warm-up.`,
      headline: [
        `The coordinator's own serial cost per fragment at 1,000 fragments, up to the last fragment's landing (the smaller of its process's CPU and its event loop's busy time, per fragment): ${[...(typeof fanout === 'string' ? [] : ['async no-op worker', 'async relayed no-op worker', 'sync no-op worker, Invoke API']), 'sync no-op worker'].filter((k) => sp[k]).map(splitLine).join('; ')}.`,
        `The reduce over 1,000 partials (sync no-op worker): ${ms(sp['sync no-op worker'].reduceMs)} wall, ${ms(sp['sync no-op worker'].reduceCpuMs ?? 0)} CPU per partial; the old headline figure, wall time per fragment of the whole query: ${ms(at1000.perFragmentMs['sync no-op worker'])} sync no-op in-process (aim < 2 ms)${typeof fanout === 'string' ? '' : `, ${ms(at1000.perFragmentMs['async no-op worker'])} async, ${ms(at1000.perFragmentMs['async relayed no-op worker'])} relayed`}.`,
        `a tiny real fragment on an in-process worker at 1,000 fragments: ${ms(at1000.perFragmentMs['sync in-process worker'])} per fragment (wall)`,
        ...(typeof fanout === 'string' ? [`Invoke API series skipped: ${fanout}`] : []),
      ],
      limits: [
        'In-process or loopback: no network, no real Lambda Invoke API round trip (~10-30 ms each on AWS, overlapped up to the concurrency bound); those are modelled in bench/scale, not measured here.',
        `The coordinator's own cost per task is the smaller of its process's CPU time (all its threads: the event loop, GC, libuv, DuckDB) and its event loop's busy time (which counts preemption by other processes), up to the last fragment's landing: each bounds its main thread's serial time from above. The workers, the local Invoke endpoint and the relays' Invoke calls run in the child process and redis-server in its own, so they are not in it; the wall times include them (they share this machine's ${cpus().length} cores). 1-minute load average ${load} at the start and end: other work shared the cores, which inflates the wall times more than the CPU times.`,
        'The in-process worker runs fragments one at a time in this process (its DuckDB uses 1 thread), so that series is the serial fixed cost of a fragment (its CPU includes the worker\'s).',
      ],
      params: { counts, reps, concurrency: settings.concurrency },
      data: rows,
      skipped: skippedParts,
      chart: { title: 'Fan-out: the coordinator\'s own cost in the fan-out phase (min of CPU and event-loop busy), median ms per fragment', unit: 'ms per fragment', series, groups: rows.map((r) => ({ label: `${r.fragments} fragments`, values: series.map((s) => r.split?.[s]?.coordinatorMs ?? null) })), log: true },
    };
  },
};

