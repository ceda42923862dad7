// Asynchronous fan-out end to end: the coordinator invokes the real worker handler through the
// local Lambda Invoke endpoint with InvocationType Event, and gathers the completions from a
// real redis-server (and, in the second suite, from an in-memory store shared in-process).

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { PuffinError } from '../../runtime/errors.ts';
import { Engine } from '../../runtime/engine/engine.ts';
import { Coordinator, type CoordinatorOptions } from '../../runtime/exec/coordinator.ts';
import type { AsyncFragmentRequest } from '../../runtime/exec/invoker.ts';
import { LambdaInvoker } from '../../runtime/exec/lambda-invoker.ts';
import { startLocalLambda, type LambdaHandler, type LocalLambda } from '../../runtime/exec/local-lambda.ts';
import { completionOf } from '../../runtime/exec/wire.ts';
import { asyncFanoutFor } from '../../runtime/exec/async-fanout.ts';
import { loadSettings } from '../../runtime/settings.ts';
import { createWorkerHandler } from '../../runtime/functions/worker.ts';
import type { FileRef } from '../../runtime/planner/plan.ts';
import { MemoryStateStore } from '../../runtime/state/memory-store.ts';
import { openStateStore } from '../../runtime/state/open.ts';
import { RedisStateStore } from '../../runtime/state/redis-store.ts';
import type { StateStore } from '../../runtime/state/state-store.ts';
import { expectedSumByGroup, makeSandbox, sumByGroupPlan, writeTable, type Sandbox } from '../runtime/exec/fixtures.ts';
import { startRedisServer, type TestRedis } from '../helpers/redis-server.ts';

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
/** What relays dispatched (fragment ids), and a fragment whose first attempt a relay refuses to invoke. */
const relayed: string[] = [];
let relayRefuses: string | undefined;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Everything a suite needs: data, a local Lambda with the worker variants, coordinators. */
interface Rig {
  sandbox: Sandbox;
  files: FileRef[];
  lambda: LocalLambda;
  engine: Engine;
  scratchDir: string;
  invokers: LambdaInvoker[];
  /** The store the coordinator reads completions from. */
  store: StateStore;
}

/**
 * Worker functions: the real handler, one that fails f1's first attempt (and then sends a
 * bogus success for that superseded attempt), one that never reports f2, one that never reports.
 */
function workerFunctions(real: LambdaHandler, reportStore: () => StateStore): Record<string, LambdaHandler> {
  return {
    'puffin-worker': real,
    'flaky-worker': async (event) => {
      const request = event as AsyncFragmentRequest;
      if (request.fragment.id !== 'f1' || request.report?.attempt !== 1) return real(event);
      // A success for the superseded attempt, with wrong numbers: it must never reach the answer.
      // Made first and sent right after the failure, so it arrives while the query still listens.
      const { report: _report, ...sync } = request;
      const bogus = await real({ ...sync, fragment: { ...request.fragment, sql: 'SELECT g, sum(x) * 1000 AS s, count(*) * 1000 AS n FROM t GROUP BY g' } });
      const store = reportStore();
      await store.publishCompletion(request.report.stream, completionOf('f1', 1, { error: new PuffinError('unavailable', 'injected: the worker lost its connection') }));
      await store.publishCompletion(request.report.stream, { fragmentId: 'f1', attempt: 1, ok: true, payload: bogus });
      return null;
    },
    'silent-f2': async (event) => ((event as AsyncFragmentRequest).fragment.id === 'f2' ? null : real(event)),
    'silent-worker': async () => null,
  };
}

async function openRig(store: StateStore, makeHandler: (sandbox: Sandbox) => LambdaHandler, overrides: Parameters<typeof makeSandbox>[0] = {}): Promise<Rig> {
  const sandbox = await makeSandbox(overrides);
  const files = await writeTable(sandbox, 6, 200);
  const lambda = await startLocalLambda(workerFunctions(makeHandler(sandbox), () => store));
  const scratchDir = join(sandbox.root, 'coordinator');
  const engine = await Engine.create({ threads: 1, allowedDirectories: [scratchDir] });
  return { sandbox, files, lambda, engine, scratchDir, invokers: [], store };
}

async function closeRig(rig: Rig | undefined): Promise<void> {
  if (!rig) return;
  await Promise.all(rig.invokers.map((i) => i.close()));
  rig.engine.close();
  await rig.lambda.close();
  await rig.sandbox.cleanup();
}

function coordinatorOn(rig: Rig, functionName: string, options: Partial<CoordinatorOptions> & { completionTimeoutMs?: number; threshold?: number; relayAbove?: number; relays?: number[] } = {}): Coordinator {
  const invoker = new LambdaInvoker({ functionName, region: 'us-east-1', endpoint: rig.lambda.url, credentials, invokeTimeoutMs: 30_000, maxAttempts: 1 });
  rig.invokers.push(invoker);
  const { completionTimeoutMs = 10_000, threshold = 1_000, relayAbove, relays, ...rest } = options;
  if (relays) {
    // Count the relays the coordinator sends (their sizes), through the real invoker.
    const send = invoker.dispatchRelay.bind(invoker);
    invoker.dispatchRelay = (relay, signal) => {
      relays.push(relay.relay.length);
      return send(relay, signal);
    };
  }
  return new Coordinator({
    invoker,
    engine: rig.engine,
    scratchDir: rig.scratchDir,
    concurrency: 4,
    retries: 2,
    queryTimeoutMs: 30_000,
    inlineLimitBytes: 1 << 20,
    storeOptions: {},
    shuffleUrl: rig.sandbox.settings.shuffleUrl,
    retryDelayMs: 1,
    asyncFanout: { invoker, store: rig.store, threshold, completionTimeoutMs, pollMs: 200, ...(relayAbove !== undefined ? { relayAbove } : {}) },
    ...rest,
  });
}

async function storedPartialsLeft(rig: Rig): Promise<string[]> {
  const dir = fileURLToPath(rig.sandbox.settings.shuffleUrl);
  // Discarded partials are deleted in the background: give that a moment.
  for (let i = 0; ; i++) {
    const left = (await readdir(dir, { recursive: true }).catch(() => [])).map(String).filter((n) => n.endsWith('.parquet'));
    if (left.length === 0 || i >= 20) return left;
    await sleep(25);
  }
}

describe('asynchronous fan-out through the local Lambda endpoint and a real redis-server', () => {
  let redis: TestRedis;
  let store: RedisStateStore;
  let workerStore: Promise<StateStore> | undefined;
  let rig: Rig;

  before(async () => {
    redis = await startRedisServer();
    store = await RedisStateStore.connect({ url: redis.url });
    // The worker handler opens its own state store from its settings (REDIS_URL), as a
    // Lambda container does; kept here only so the test can close it.
    rig = await openRig(store, (sandbox) => createWorkerHandler(() => sandbox.settings, {
      stateStore: () => (workerStore ??= openStateStore(sandbox.settings)),
      // A relay dispatches through the same local Lambda endpoint, to the same function.
      relayInvoker: async () => {
        const inner = new LambdaInvoker({ functionName: 'puffin-worker', region: 'us-east-1', endpoint: rig.lambda.url, credentials, invokeTimeoutMs: 30_000, maxAttempts: 1 });
        rig.invokers.push(inner);
        return {
          dispatch: async (request, signal) => {
            relayed.push(request.fragment.id);
            if (request.fragment.id === relayRefuses && request.report.attempt === 1) throw new PuffinError('unavailable', 'injected: the relay could not invoke');
            return inner.dispatch(request, signal);
          },
          close: () => inner.close(),
        };
      },
    }), { redisUrl: redis.url });
  });
  after(async () => {
    await closeRig(rig);
    await (await workerStore)?.close();
    await store?.close();
    await redis?.close();
  });

  test('async and sync fan-out answer the same rows over the same plan', async () => {
    const plan = sumByGroupPlan(rig.files);
    const coordinator = coordinatorOn(rig, 'puffin-worker');
    const seen: Record<'sync' | 'async', string[]> = { sync: [], async: [] };
    const sync = await coordinator.execute(plan, { mode: 'sync', onFragment: (d) => seen.sync.push(d.fragmentId) });
    const async = await coordinator.execute(plan, { mode: 'async', onFragment: (d) => seen.async.push(d.fragmentId) });
    // Progress is reported fragment by fragment in both modes.
    assert.deepEqual(seen.sync.sort(), plan.fragments.map((f) => f.id).sort());
    assert.deepEqual(seen.async.sort(), plan.fragments.map((f) => f.id).sort());
    assert.equal(sync.stats.mode, 'sync');
    assert.equal(async.stats.mode, 'async');
    assert.deepEqual(async.rows, sync.rows);
    assert.deepEqual(async.rows, (await expectedSumByGroup(rig.sandbox, rig.files)).rows);
    assert.equal(async.stats.retries, 0);
    assert.equal(async.stats.bytesScanned, sync.stats.bytesScanned);

    // Stored partials travel the same way and are cleaned up the same way.
    const stored = await coordinatorOn(rig, 'puffin-worker', { inlineLimitBytes: 1 }).execute(plan, { mode: 'async' });
    assert.deepEqual(stored.rows, sync.rows);
    assert.deepEqual(await storedPartialsLeft(rig), []);

    // The run's completion stream is gone once the query is over.
    const raw = new Redis(redis.url);
    try {
      assert.deepEqual(await raw.keys('puffindb:c:*'), []);
    } finally {
      raw.disconnect();
    }
  });

  test('a wide fan-out goes out through relays (an invocation tree); a fragment a relay cannot dispatch is retried', async () => {
    const plan = sumByGroupPlan(rig.files);
    const want = (await expectedSumByGroup(rig.sandbox, rig.files)).rows;
    const relays: number[] = [];
    relayed.length = 0;
    const outcome = await coordinatorOn(rig, 'puffin-worker', { relayAbove: 4, relays }).execute(plan, { mode: 'async' });
    assert.deepEqual(outcome.rows, want);
    // 6 fragments in relays of ceil(sqrt(6)) = 3: two Invoke calls from the coordinator.
    assert.deepEqual(relays, [3, 3]);
    assert.deepEqual(relayed.sort(), plan.fragments.map((f) => f.id).sort());
    assert.equal(outcome.stats.retries, 0);
    // Under the bound, or with relays off, fragments are dispatched one by one as before.
    relays.length = 0;
    assert.deepEqual((await coordinatorOn(rig, 'puffin-worker', { relayAbove: 0, relays }).execute(plan, { mode: 'async' })).rows, want);
    assert.deepEqual(relays, []);
    // The relay reports the fragment it could not invoke as failed; the coordinator retries it directly.
    relayRefuses = plan.fragments[2].id;
    try {
      const retried = await coordinatorOn(rig, 'puffin-worker', { relayAbove: 4 }).execute(plan, { mode: 'async' });
      assert.deepEqual(retried.rows, want);
      assert.equal(retried.stats.retries, 1);
    } finally {
      relayRefuses = undefined;
    }
  });

  test("'auto' picks asynchronous fan-out at the threshold", async () => {
    const plan = sumByGroupPlan(rig.files);
    assert.equal((await coordinatorOn(rig, 'puffin-worker', { threshold: 6 }).execute(plan)).stats.mode, 'async');
    assert.equal((await coordinatorOn(rig, 'puffin-worker', { threshold: 7 }).execute(plan)).stats.mode, 'sync');
    assert.equal((await coordinatorOn(rig, 'puffin-worker', { threshold: 0 }).execute(plan)).stats.mode, 'sync', 'threshold 0 turns it off');
  });

  test('a fragment that fails is retried, and the superseded attempt’s late success is ignored', async () => {
    const outcome = await coordinatorOn(rig, 'flaky-worker', { inlineLimitBytes: 1 }).execute(sumByGroupPlan(rig.files), { mode: 'async' });
    assert.deepEqual(outcome.rows, (await expectedSumByGroup(rig.sandbox, rig.files)).rows);
    assert.equal(outcome.stats.retries, 1);
    // The bogus partial was stored too; it is deleted, not left behind.
    assert.deepEqual(await storedPartialsLeft(rig), []);
  });

  test('a worker that never reports times out, is retried, and the query fails naming the fragment', async () => {
    const started = Date.now();
    await assert.rejects(coordinatorOn(rig, 'silent-f2', { completionTimeoutMs: 400, retries: 1 }).execute(sumByGroupPlan(rig.files), { mode: 'async' }), (err: PuffinError) => {
      assert.equal(err.code, 'fragment_failed');
      assert.match(err.message, /fragment f2 of query \S+ failed after 2 attempt\(s\); last error \(timeout\): fragment f2 .*sent no completion within 400 ms \(attempt 2\)/);
      assert.equal(err.details?.fragmentId, 'f2');
      return true;
    });
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 800 && elapsed < 3_000, `failed after ${elapsed} ms`);
  });

  test('cancellation stops waiting at once', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(new PuffinError('timeout', 'query cancelled by its user')), 200);
    const started = Date.now();
    await assert.rejects(
      coordinatorOn(rig, 'silent-worker', { completionTimeoutMs: 60_000 }).execute(sumByGroupPlan(rig.files), { mode: 'async', signal: controller.signal }),
      { message: 'query cancelled by its user' },
    );
    assert.ok(Date.now() - started < 1_000, `stopped after ${Date.now() - started} ms`);
  });

  test("the query's deadline holds in async mode too", async () => {
    const started = Date.now();
    await assert.rejects(
      coordinatorOn(rig, 'silent-worker', { completionTimeoutMs: 60_000 }).execute(sumByGroupPlan(rig.files), { mode: 'async', timeoutMs: 300 }),
      { code: 'timeout', message: /exceeded its deadline of 300 ms/ },
    );
    assert.ok(Date.now() - started < 1_500);
  });

  test('an invocation Lambda refuses is retried, then fails the query as unavailable', async () => {
    await assert.rejects(coordinatorOn(rig, 'no-such-worker', { retries: 1 }).execute(sumByGroupPlan(rig.files), { mode: 'async' }), (err: PuffinError) => {
      assert.equal(err.code, 'fragment_failed');
      assert.match(err.message, /failed after 2 attempt\(s\); last error \(unavailable\): worker Lambda function 'no-such-worker' does not exist/);
      return true;
    });
  });

  test('settings turn asynchronous fan-out on only with Lambda workers, Redis and a threshold', () => {
    coordinatorOn(rig, 'puffin-worker');
    const invoker = rig.invokers.at(-1)!;
    const env = { PUFFINDB_WORKER_FUNCTION: 'w', REDIS_URL: redis.url, PUFFINDB_INVOKE_TIMEOUT_MS: '9000' };
    assert.deepEqual(asyncFanoutFor(loadSettings(env), invoker, store), { invoker, store, threshold: 64, completionTimeoutMs: 9_000, relayAbove: 64 });
    assert.equal(asyncFanoutFor(loadSettings({ ...env, PUFFINDB_ASYNC_THRESHOLD: '500' }), invoker, store)?.threshold, 500);
    assert.equal(asyncFanoutFor(loadSettings({ ...env, PUFFINDB_ASYNC_THRESHOLD: '0' }), invoker, store), undefined);
    assert.equal(asyncFanoutFor(loadSettings({ ...env, REDIS_URL: '' }), invoker, store), undefined, 'Lambda workers cannot reach an in-memory store');
    assert.equal(asyncFanoutFor(loadSettings({ ...env, PUFFINDB_WORKER_FUNCTION: '' }), invoker, store), undefined);
    assert.equal(asyncFanoutFor(loadSettings(env), { invoke: invoker.invoke.bind(invoker), close: async () => {} }, store), undefined, 'the invoker must dispatch');
  });

  test('a coordinator without a state store refuses async mode clearly', async () => {
    const plain = coordinatorOn(rig, 'puffin-worker', { asyncFanout: undefined });
    await assert.rejects(plain.execute(sumByGroupPlan(rig.files), { mode: 'async' }), { code: 'bad_request', message: /asynchronous fan-out needs a state store/ });
    assert.equal((await plain.execute(sumByGroupPlan(rig.files))).stats.mode, 'sync');
  });
});

describe('asynchronous fan-out with the in-memory store, handler in-process', () => {
  let store: MemoryStateStore;
  let rig: Rig;

  before(async () => {
    store = new MemoryStateStore();
    rig = await openRig(store, (sandbox) => createWorkerHandler(() => sandbox.settings, { stateStore: async () => store }));
  });
  after(async () => {
    await closeRig(rig);
    await store?.close();
  });

  test('async and sync answer the same rows', async () => {
    const plan = sumByGroupPlan(rig.files);
    const coordinator = coordinatorOn(rig, 'puffin-worker');
    const sync = await coordinator.execute(plan, { mode: 'sync' });
    const async = await coordinator.execute(plan, { mode: 'async' });
    assert.equal(async.stats.mode, 'async');
    assert.deepEqual(async.rows, sync.rows);
  });

  test('a failed fragment is retried with the in-memory store too', async () => {
    const outcome = await coordinatorOn(rig, 'flaky-worker').execute(sumByGroupPlan(rig.files), { mode: 'async' });
    assert.deepEqual(outcome.rows, (await expectedSumByGroup(rig.sandbox, rig.files)).rows);
    assert.equal(outcome.stats.retries, 1);
  });

  test('a worker error is reported on the stream and keeps its code', async () => {
    const plan = sumByGroupPlan(rig.files);
    plan.fragments[3] = { ...plan.fragments[3], sql: 'SELEC nonsense' };
    await assert.rejects(coordinatorOn(rig, 'puffin-worker').execute(plan, { mode: 'async' }), (err: PuffinError) => {
      assert.equal(err.code, 'syntax_error');
      assert.equal(err.details?.fragmentId, 'f3');
      return true;
    });
  });

  test('an unreadable completion stream fails the query as unavailable after a grace period', async () => {
    const closed = new MemoryStateStore();
    await closed.close();
    const invoker = new LambdaInvoker({ functionName: 'silent-worker', region: 'us-east-1', endpoint: rig.lambda.url, credentials, invokeTimeoutMs: 30_000, maxAttempts: 1 });
    rig.invokers.push(invoker);
    const coordinator = coordinatorOn(rig, 'silent-worker', { asyncFanout: { invoker, store: closed, threshold: 1, completionTimeoutMs: 10_000, storeOutageGraceMs: 200 } });
    const started = Date.now();
    await assert.rejects(coordinator.execute(sumByGroupPlan(rig.files)), (err: PuffinError) => {
      assert.equal(err.code, 'unavailable');
      assert.match(err.message, /cannot read its workers' completions/);
      return true;
    });
    assert.ok(Date.now() - started < 2_000);
  });

  test('a request too large for an Event invocation runs synchronously instead', async () => {
    const plan = sumByGroupPlan(rig.files);
    // Over Lambda's 1 MB asynchronous payload limit, under its 6 MB synchronous one.
    const padding = `/* ${'x'.repeat(1_100_000)} */`;
    plan.fragments[2] = { ...plan.fragments[2], sql: `${plan.fragments[2].sql} ${padding}` };
    const outcome = await coordinatorOn(rig, 'puffin-worker').execute(plan, { mode: 'async' });
    assert.equal(outcome.stats.mode, 'async');
    assert.deepEqual(outcome.rows, (await expectedSumByGroup(rig.sandbox, rig.files)).rows);
  });
});
