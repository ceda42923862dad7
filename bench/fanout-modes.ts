// Coordinator overhead per fragment, synchronous vs asynchronous fan-out, through the real
// transport: the local Lambda Invoke endpoint (RequestResponse vs Event) and a real
// redis-server for the completions. Three workers: the real worker handler running a no-op
// fragment (`SELECT 1`); a no-op handler that answers a fixed partial at once (transport and
// coordinator alone); and the same no-op called in-process, without the Invoke API's HTTP
// round trip (the coordinator alone, plus Redis in async mode).
//
//   node --import tsx bench/fanout-modes.ts [--reps 5] [10 100 ...]
//
// bench/scenarios/fanout.ts imports measureAsyncFanout() for its async series.

import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Engine } from '../runtime/engine/engine.ts';
import { Coordinator } from '../runtime/exec/coordinator.ts';
import type { AsyncFragmentRequest, AsyncInvoker, CompletionTarget, FragmentRequest, FragmentResult, Invoker } from '../runtime/exec/invoker.ts';
import { DEFAULT_RELAY_ABOVE } from '../runtime/exec/async-fanout.ts';
import { LambdaInvoker } from '../runtime/exec/lambda-invoker.ts';
import { startLocalLambda, type LambdaHandler, type LocalLambda } from '../runtime/exec/local-lambda.ts';
import { completionOf } from '../runtime/exec/wire.ts';
import { createWorkerHandler } from '../runtime/functions/worker.ts';
import type { Plan } from '../runtime/planner/plan.ts';
import { loadSettings, toRootUrl } from '../runtime/settings.ts';
import { RedisStateStore } from '../runtime/state/redis-store.ts';
import { startRedisServer, type TestRedis } from '../test/helpers/redis-server.ts';

export type FanoutWorker = 'select-1' | 'no-op' | 'no-op-direct' | 'no-op-relayed';
export type FanoutModeName = 'sync' | 'async';

/** `SELECT 1` in n fragments; the reduce counts the partials' rows, so the answer is n. */
export function selectOnePlan(n: number): Plan {
  return {
    shape: 'scan-aggregate',
    sql: 'SELECT 1',
    output: [{ name: 'n', type: 'BIGINT' }],
    fragments: Array.from({ length: n }, (_, i) => ({ id: `f${i}`, output: 'partials', inputs: [], sql: 'SELECT 1 AS one' })),
    reduce: { views: [{ name: 'partials', columns: [{ name: 'one', type: 'INTEGER' }] }], sql: 'SELECT count(*) AS n FROM partials' },
    scans: [],
    join: null,
    reason: 'fan-out benchmark',
  };
}

export interface FanoutRig {
  /** One query of n fragments in `mode` on `worker`: wall ms, and ms of the fan-out phase alone. */
  run(mode: FanoutModeName, worker: FanoutWorker, n: number): Promise<{ wallMs: number; fanoutMs: number }>;
  close(): Promise<void>;
}

/** redis-server, a local Lambda endpoint with both workers, and a coordinator per worker. */
export async function openFanoutRig(): Promise<FanoutRig> {
  const root = await mkdtemp(join(tmpdir(), 'puffindb-fanout-modes-'));
  let redis: TestRedis | undefined;
  let lambda: LocalLambda | undefined;
  const closers: (() => Promise<void> | void)[] = [];
  try {
    redis = await startRedisServer();
    const settings = loadSettings({}, { home: root, warehouse: toRootUrl(join(root, 'warehouse')), shuffleUrl: toRootUrl(join(root, 'shuffle')), cacheDir: join(root, 'cache'), threads: 1, redisUrl: redis.url });
    // The worker side has its own connection, as a Lambda container would.
    const workerStore = await RedisStateStore.connect({ url: redis.url });
    closers.push(() => workerStore.close());
    const coordinatorStore = await RedisStateStore.connect({ url: redis.url });
    closers.push(() => coordinatorStore.close());
    const real = createWorkerHandler(() => settings, { stateStore: async () => workerStore });
    const sample = await real({ queryId: 'sample', fragment: selectOnePlan(1).fragments[0], deadline: Date.now() + 60_000 });
    if (!sample) throw new Error('the sample fragment failed');
    const noop: LambdaHandler = async (event) => {
      // A relay (exec/async-fanout.ts): on AWS its Invoke calls run on the relaying worker, not
      // the coordinator; here each relayed fragment is started in-process, so what is measured
      // is the coordinator's part (its ~sqrt(n) relay invocations and n landings).
      const relay = (event as { relay?: AsyncFragmentRequest[] }).relay;
      if (relay) {
        for (const request of relay) setImmediate(() => void noop(request));
        return null;
      }
      const e = event as { fragment: { id: string }; report?: CompletionTarget };
      const result: FragmentResult = { ...sample, fragmentId: e.fragment.id };
      if (!e.report) return result;
      await workerStore.publishCompletion(e.report.stream, completionOf(e.fragment.id, e.report.attempt, { result }));
      return null;
    };
    lambda = await startLocalLambda({ 'select-1': real, 'no-op': noop });
    // The no-op without HTTP: a direct call, and a dispatch that reports in the background.
    const direct: Invoker & AsyncInvoker = {
      invoke: async (request: FragmentRequest) => (await noop(request)) as FragmentResult,
      dispatch: async (request: AsyncFragmentRequest) => {
        setImmediate(() => void noop(request));
      },
      close: async () => {},
    };
    const scratch = join(root, 'coordinator');
    await mkdir(scratch, { recursive: true });
    const engine = await Engine.create({ threads: 1, allowedDirectories: [scratch] });
    closers.push(() => engine.close());
    const coordinators = new Map<FanoutWorker, Coordinator>();
    for (const worker of ['select-1', 'no-op', 'no-op-direct', 'no-op-relayed'] as const) {
      const invoker =
        worker === 'no-op-direct'
          ? direct
          : new LambdaInvoker({ functionName: worker === 'no-op-relayed' ? 'no-op' : worker, region: 'us-east-1', endpoint: lambda.url, credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' }, invokeTimeoutMs: 60_000 });
      closers.push(() => invoker.close());
      coordinators.set(
        worker,
        new Coordinator({
          invoker,
          engine,
          scratchDir: join(scratch, 'partials'),
          concurrency: settings.concurrency,
          retries: 0,
          queryTimeoutMs: 120_000,
          inlineLimitBytes: settings.inlineLimitBytes,
          storeOptions: {},
          shuffleUrl: settings.shuffleUrl,
          // Direct dispatch except for the relayed series (relays from 256 fragments, the default).
          asyncFanout: { invoker, store: coordinatorStore, threshold: settings.asyncThreshold, completionTimeoutMs: 60_000, relayAbove: worker === 'no-op-relayed' ? DEFAULT_RELAY_ABOVE : 0 },
        }),
      );
    }
    const opened = { redis, lambda };
    return {
      async run(mode, worker, n) {
        const started = performance.now();
        const outcome = await coordinators.get(worker)!.execute(selectOnePlan(n), { mode });
        const wallMs = performance.now() - started;
        if (Number(outcome.rows[0][0]) !== n || outcome.stats.mode !== mode) {
          throw new Error(`${mode} ${worker} x${n} answered ${String(outcome.rows[0][0])} in ${outcome.stats.mode} mode`);
        }
        return { wallMs, fanoutMs: outcome.stats.executeMs };
      },
      async close() {
        for (const close of closers.reverse()) await close();
        await opened.lambda.close();
        await opened.redis.close();
        await rm(root, { recursive: true, force: true });
      },
    };
  } catch (err) {
    for (const close of closers.reverse()) await Promise.resolve(close()).catch(() => undefined);
    await lambda?.close();
    await redis?.close();
    await rm(root, { recursive: true, force: true });
    throw err;
  }
}

/**
 * For bench/scenarios/fanout.ts: wall ms of `reps` async queries of n fragments on the no-op
 * worker, after one warm-up; `relayed`: first attempts through relays (from 256 fragments).
 */
export async function measureAsyncFanout(fragments: number, reps: number, relayed = false): Promise<number[]> {
  const rig = await openFanoutRig();
  const worker = relayed ? 'no-op-relayed' : 'no-op';
  try {
    await rig.run('async', worker, fragments);
    const times: number[] = [];
    for (let i = 0; i < reps; i++) times.push((await rig.run('async', worker, fragments)).wallMs);
    return times;
  } finally {
    await rig.close();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ options: { reps: { type: 'string', default: '5' } }, allowPositionals: true });
  const reps = Math.max(1, Number(values.reps));
  const counts = positionals.length ? positionals.map(Number) : [10, 100];
  const rig = await openFanoutRig();
  try {
    console.log(`fan-out overhead, local Lambda endpoint + redis-server, ${reps} reps after 1 warm-up (median)`);
    console.log('worker        fragments  mode   wall ms  fan-out ms  wall ms/fragment  fan-out ms/fragment');
    for (const worker of ['no-op-direct', 'no-op', 'select-1'] as const) {
      for (const n of counts) {
        const runs: Record<FanoutModeName, { wallMs: number; fanoutMs: number }[]> = { sync: [], async: [] };
        for (const mode of ['sync', 'async'] as const) await rig.run(mode, worker, n);
        // Interleaved, so drift (GC, caches) falls on both modes alike.
        for (let i = 0; i < reps; i++) for (const mode of ['sync', 'async'] as const) runs[mode].push(await rig.run(mode, worker, n));
        for (const mode of ['sync', 'async'] as const) {
          const wall = median(runs[mode].map((r) => r.wallMs));
          const fanout = median(runs[mode].map((r) => r.fanoutMs));
          console.log(
            `${worker.padEnd(13)} ${String(n).padStart(9)}  ${mode.padEnd(5)} ${wall.toFixed(1).padStart(8)} ${fanout.toFixed(1).padStart(11)} ${(wall / n).toFixed(3).padStart(17)} ${(fanout / n).toFixed(3).padStart(20)}`,
          );
        }
      }
    }
  } finally {
    await rig.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
