// Coordinator overhead per fragment, synchronous vs asynchronous fan-out, through the real
// transport: the local Lambda Invoke endpoint (RequestResponse vs Event) and a real
// redis-server for the completions. Three workers: the real worker handler running a no-op
// fragment (`SELECT 1`); a no-op handler that answers a fixed partial at once (transport and
// coordinator alone); and the same no-op called in-process, without the Invoke API's HTTP
// round trip (the coordinator plus the no-op, plus Redis in async mode). The endpoint and its
// two workers run in a child process (bench/fanout-worker-child.ts), so this process's CPU
// time over a run is the coordinator's own (its Invoke client, landing results and
// completions, the reduce); on AWS the workers run elsewhere.
//
//   node --import tsx bench/fanout-modes.ts [--reps 5] [10 100 ...]
//
// bench/scenarios/fanout.ts imports measureAsyncFanout() for its async series.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Engine } from '../runtime/engine/engine.ts';
import { Coordinator } from '../runtime/exec/coordinator.ts';
import type { AsyncFragmentRequest, AsyncInvoker, CompletionTarget, FragmentRequest, FragmentResult, Invoker } from '../runtime/exec/invoker.ts';
import { DEFAULT_RELAY_ABOVE } from '../runtime/exec/async-fanout.ts';
import { LambdaInvoker } from '../runtime/exec/lambda-invoker.ts';
import { completionOf } from '../runtime/exec/wire.ts';
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

/**
 * One query of the rig: wall ms, the fan-out phase (stats.executeMs), the reduce
 * (stats.reduceMs), and the coordinator process's CPU ms (user + system) over the run and up
 * to the last fragment's landing (the end of the fan-out phase of a one-stage plan).
 */
export interface FanoutRun {
  wallMs: number;
  fanoutMs: number;
  reduceMs: number;
  cpuMs: number;
  fanoutCpuMs: number;
  /** The event loop's busy (not idle) ms up to the last landing: the main thread's serial time, preemption by other processes included. */
  fanoutBusyMs: number;
}

/** CPU ms (user + system) since `from`. */
export const cpuMsSince = (from: NodeJS.CpuUsage): number => {
  const used = process.cpuUsage(from);
  return (used.user + used.system) / 1000;
};

export interface FanoutRig {
  /** One query of n fragments in `mode` on `worker`. */
  run(mode: FanoutModeName, worker: FanoutWorker, n: number): Promise<FanoutRun>;
  close(): Promise<void>;
}

/** The worker side (bench/fanout-worker-child.ts) in a child process: its endpoint's URL, and how to stop it. */
async function startWorkerChild(redisUrl: string): Promise<{ url: string; child: ChildProcess; stop(): Promise<void> }> {
  const script = fileURLToPath(new URL('./fanout-worker-child.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script, redisUrl], { stdio: ['pipe', 'pipe', 'inherit'], cwd: fileURLToPath(new URL('..', import.meta.url)) });
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
  };
  try {
    const url = await new Promise<string>((resolveUrl, reject) => {
      let buffered = '';
      const timer = setTimeout(() => reject(new Error('the fan-out worker child did not start within 60 s')), 60_000);
      child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`the fan-out worker child exited (${code}) before it listened`)); });
      child.stdout!.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('utf8');
        const nl = buffered.indexOf('\n');
        if (nl < 0) return;
        clearTimeout(timer);
        try {
          resolveUrl((JSON.parse(buffered.slice(0, nl)) as { url: string }).url);
        } catch (err) {
          reject(err as Error);
        }
      });
    });
    return { url, child, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * redis-server, the local Lambda endpoint with both workers in a child process, and a
 * coordinator per worker in this one. 'no-op-direct' runs the no-op in this process (no HTTP):
 * the coordinator plus the no-op's own cost.
 */
export async function openFanoutRig(): Promise<FanoutRig> {
  const root = await mkdtemp(join(tmpdir(), 'puffindb-fanout-modes-'));
  let redis: TestRedis | undefined;
  let worker: Awaited<ReturnType<typeof startWorkerChild>> | undefined;
  const closers: (() => Promise<void> | void)[] = [];
  try {
    redis = await startRedisServer();
    const settings = loadSettings({}, { home: root, warehouse: toRootUrl(join(root, 'warehouse')), shuffleUrl: toRootUrl(join(root, 'shuffle')), cacheDir: join(root, 'cache'), threads: 1, redisUrl: redis.url });
    worker = await startWorkerChild(redis.url);
    const coordinatorStore = await RedisStateStore.connect({ url: redis.url });
    closers.push(() => coordinatorStore.close());
    // The in-process no-op ('no-op-direct') answers with the child's partial for the same fragment.
    const sampleInvoker = new LambdaInvoker({ functionName: 'select-1', region: 'us-east-1', endpoint: worker.url, credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' }, invokeTimeoutMs: 60_000 });
    closers.push(() => sampleInvoker.close());
    const sample = await sampleInvoker.invoke({ queryId: 'sample', fragment: selectOnePlan(1).fragments[0], deadline: Date.now() + 60_000 });
    const directStore = await RedisStateStore.connect({ url: redis.url });
    closers.push(() => directStore.close());
    const noop = async (event: FragmentRequest | AsyncFragmentRequest): Promise<FragmentResult | null> => {
      const e = event as { fragment: { id: string }; report?: CompletionTarget };
      const result: FragmentResult = { ...sample, fragmentId: e.fragment.id };
      if (!e.report) return result;
      await directStore.publishCompletion(e.report.stream, completionOf(e.fragment.id, e.report.attempt, { result }));
      return null;
    };
    // The no-op without HTTP: a direct call, and a dispatch that reports in the background.
    const direct: Invoker & AsyncInvoker = {
      invoke: async (request: FragmentRequest) => (await noop(request))!,
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
    for (const name of ['select-1', 'no-op', 'no-op-direct', 'no-op-relayed'] as const) {
      const invoker =
        name === 'no-op-direct'
          ? direct
          : new LambdaInvoker({ functionName: name === 'no-op-relayed' ? 'no-op' : name, region: 'us-east-1', endpoint: worker.url, credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' }, invokeTimeoutMs: 60_000 });
      closers.push(() => invoker.close());
      coordinators.set(
        name,
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
          // Direct dispatch except for the relayed series (relays from DEFAULT_RELAY_ABOVE fragments, the default).
          asyncFanout: { invoker, store: coordinatorStore, threshold: settings.asyncThreshold, completionTimeoutMs: 60_000, relayAbove: name === 'no-op-relayed' ? DEFAULT_RELAY_ABOVE : 0 },
        }),
      );
    }
    const opened = { redis, worker };
    return {
      async run(mode, name, n) {
        const cpu = process.cpuUsage();
        let fanoutCpuMs = 0;
        let fanoutBusyMs = 0;
        const elu = performance.eventLoopUtilization();
        const started = performance.now();
        const onFragment = () => {
          fanoutCpuMs = cpuMsSince(cpu);
          fanoutBusyMs = performance.eventLoopUtilization(elu).active;
        };
        const outcome = await coordinators.get(name)!.execute(selectOnePlan(n), { mode, onFragment });
        const wallMs = performance.now() - started;
        const cpuMs = cpuMsSince(cpu);
        if (Number(outcome.rows[0][0]) !== n || outcome.stats.mode !== mode) {
          throw new Error(`${mode} ${name} x${n} answered ${String(outcome.rows[0][0])} in ${outcome.stats.mode} mode`);
        }
        return { wallMs, fanoutMs: outcome.stats.executeMs, reduceMs: outcome.stats.reduceMs, cpuMs, fanoutCpuMs, fanoutBusyMs };
      },
      async close() {
        for (const close of closers.reverse()) await close();
        await opened.worker.stop();
        await opened.redis.close();
        await rm(root, { recursive: true, force: true });
      },
    };
  } catch (err) {
    for (const close of closers.reverse()) await Promise.resolve(close()).catch(() => undefined);
    await worker?.stop();
    await redis?.close();
    await rm(root, { recursive: true, force: true });
    throw err;
  }
}

/**
 * For bench/scenarios/fanout.ts: `reps` queries of n fragments in `mode` on the no-op worker
 * (in the child process, through the Invoke API), after one warm-up; `relayed`: first attempts
 * through relays (async, from DEFAULT_RELAY_ABOVE fragments). Every run's wall, fan-out phase, reduce and
 * this process's CPU.
 */
export async function measureFanout(fragments: number, reps: number, options: { mode?: FanoutModeName; relayed?: boolean } = {}): Promise<FanoutRun[]> {
  const rig = await openFanoutRig();
  const name = options.relayed ? 'no-op-relayed' : 'no-op';
  const mode = options.relayed ? 'async' : (options.mode ?? 'async');
  try {
    await rig.run(mode, name, fragments);
    const runs: FanoutRun[] = [];
    for (let i = 0; i < reps; i++) runs.push(await rig.run(mode, name, fragments));
    return runs;
  } finally {
    await rig.close();
  }
}

/** Wall ms of `reps` async queries (measureFanout); the array also carries every run's figures (`runs`). */
export async function measureAsyncFanout(fragments: number, reps: number, relayed = false): Promise<number[] & { runs: FanoutRun[] }> {
  const runs = await measureFanout(fragments, reps, { mode: 'async', relayed });
  return Object.assign(runs.map((r) => r.wallMs), { runs });
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
    console.log('worker        fragments  mode   wall ms  fan-out ms  reduce ms  coordinator CPU ms  wall ms/fragment  fan-out ms/fragment  CPU ms/fragment');
    for (const worker of ['no-op-direct', 'no-op', 'select-1'] as const) {
      for (const n of counts) {
        const runs: Record<FanoutModeName, FanoutRun[]> = { sync: [], async: [] };
        for (const mode of ['sync', 'async'] as const) await rig.run(mode, worker, n);
        // Interleaved, so drift (GC, caches) falls on both modes alike.
        for (let i = 0; i < reps; i++) for (const mode of ['sync', 'async'] as const) runs[mode].push(await rig.run(mode, worker, n));
        for (const mode of ['sync', 'async'] as const) {
          const wall = median(runs[mode].map((r) => r.wallMs));
          const fanout = median(runs[mode].map((r) => r.fanoutMs));
          const reduce = median(runs[mode].map((r) => r.reduceMs));
          const cpu = median(runs[mode].map((r) => r.cpuMs));
          console.log(
            `${worker.padEnd(13)} ${String(n).padStart(9)}  ${mode.padEnd(5)} ${wall.toFixed(1).padStart(8)} ${fanout.toFixed(1).padStart(11)} ${reduce.toFixed(1).padStart(10)} ${cpu.toFixed(1).padStart(19)} ${(wall / n).toFixed(3).padStart(17)} ${(fanout / n).toFixed(3).padStart(20)} ${(cpu / n).toFixed(3).padStart(16)}`,
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
