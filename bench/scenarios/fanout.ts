// `fanout`: what the coordinator itself costs per fragment. A no-op Invoker answers every
// fragment at once with the same tiny inline partial, so what remains is scheduling,
// landing partials and the reduce over N partials. A second series runs a real tiny
// fragment (count of nation) on a real in-process Worker, the fixed cost of one fragment.
// Async invocation (InvocationType Event + completions) is measured when bench/fanout-modes.ts
// provides it.

import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
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

/** What bench/fanout-modes.ts must export for the async series (proposed contract). */
type AsyncFanout = (fragments: number, reps: number, relayed?: boolean) => Promise<number[]>;

async function loadAsyncFanout(): Promise<AsyncFanout | string> {
  const path = resolve('bench/fanout-modes.ts');
  if (!existsSync(path)) return 'asynchronous invocation is not available yet: bench/fanout-modes.ts (the async-invocation helper) does not exist';
  const mod = (await import(path)) as Record<string, unknown>;
  if (typeof mod.measureAsyncFanout !== 'function') return 'bench/fanout-modes.ts exports no measureAsyncFanout(fragments, reps): Promise<number[]> (ms per run) to measure the async mode with';
  return mod.measureAsyncFanout as AsyncFanout;
}

export interface FanoutRow {
  fragments: number;
  timings: Record<string, Summary>;
  /** Median ms per fragment, per series. */
  perFragmentMs: Record<string, number>;
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
    const asyncFanout = await loadAsyncFanout();
    const rows: FanoutRow[] = [];
    const skippedParts: { part: string; reason: string }[] = [];
    if (typeof asyncFanout === 'string') skippedParts.push({ part: 'async invocation mode', reason: asyncFanout });
    try {
      for (const n of counts) {
        const wide = widenPlan(plan, n);
        const contenders: Contender<unknown>[] = [
          { name: 'sync no-op worker', run: async () => { const o = await noopCoordinator.execute(wide); if (Number(o.rows[0][0]) !== 25 * n) throw new Error(`fanout reduce gave ${String(o.rows[0][0])}, expected ${25 * n}`); } },
          { name: 'sync in-process worker', run: () => realCoordinator.execute(wide) },
        ];
        const m = await measureInterleaved(contenders, { warmup: 1, reps });
        const timings = { ...m.timings };
        if (typeof asyncFanout !== 'string') {
          timings['async no-op worker'] = summarize(await asyncFanout(n, reps));
          timings['async relayed no-op worker'] = summarize(await asyncFanout(n, reps, true));
        }
        const perFragmentMs = Object.fromEntries(Object.entries(timings).map(([k, s]) => [k, s.median / n]));
        rows.push({ fragments: n, timings, perFragmentMs });
        ctx.log(`  fanout ${String(n).padStart(4)}: ${Object.entries(perFragmentMs).map(([k, v]) => `${k} ${v.toFixed(3)} ms/fragment`).join(', ')}`);
      }
    } finally {
      await realInvoker.close();
      engine.close();
      rmSync(join(scratch, 'partials'), { recursive: true, force: true });
    }
    const at1000 = rows.find((r) => r.fragments === 1000)!;
    const series = Object.keys(at1000.timings);
    return {
      scenario: 'fanout',
      status: 'ok',
      description: `Coordinator overhead for 1/10/100/1,000 fragments of a real one-fragment plan (count of nation) widened N times, concurrency ${settings.concurrency}: a no-op Invoker (coordinator alone), and a real in-process Worker (coordinator + the fixed cost of a tiny fragment). ${reps} repetitions after 1 warm-up.`,
      headline: [
        `coordinator overhead at 1,000 fragments (sync, no-op worker): ${at1000.perFragmentMs['sync no-op worker'].toFixed(3)} ms per fragment (aim < 2 ms)`,
        `a tiny real fragment on an in-process worker at 1,000 fragments: ${at1000.perFragmentMs['sync in-process worker'].toFixed(3)} ms per fragment`,
        ...(typeof asyncFanout === 'string' ? [`async mode skipped: ${asyncFanout}`] : [`async no-op worker at 1,000 fragments: ${at1000.perFragmentMs['async no-op worker'].toFixed(3)} ms per fragment; through relays (an invocation tree, from 256 fragments): ${at1000.perFragmentMs['async relayed no-op worker'].toFixed(3)} ms per fragment at the coordinator`]),
      ],
      limits: [
        'In-process: no network, no Lambda Invoke API round trip (~10-30 ms each on AWS, overlapped up to the concurrency bound); those are modelled in bench/scale, not measured here.',
        'The in-process worker runs fragments one at a time in this process (its DuckDB uses 1 thread), so that series is the serial fixed cost of a fragment.',
      ],
      params: { counts, reps, concurrency: settings.concurrency },
      data: rows,
      skipped: skippedParts,
      chart: { title: 'Fan-out: median ms per fragment', unit: 'ms per fragment', series, groups: rows.map((r) => ({ label: `${r.fragments} fragments`, values: series.map((s) => r.perFragmentMs[s] ?? null) })), log: true },
    };
  },
};

