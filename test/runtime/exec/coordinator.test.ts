import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PuffinError } from '../../../runtime/errors.ts';
import { Engine } from '../../../runtime/engine/engine.ts';
import { Coordinator, type CoordinatorOptions } from '../../../runtime/exec/coordinator.ts';
import { InProcessInvoker } from '../../../runtime/exec/in-process-invoker.ts';
import type { FragmentRequest, FragmentResult, Invoker } from '../../../runtime/exec/invoker.ts';
import type { FileRef, Plan } from '../../../runtime/planner/plan.ts';
import { expectedSumByGroup, makeSandbox, slowFragment, sumByGroupPlan, writeTable, type Sandbox } from './fixtures.ts';

/** Wraps a real invoker to observe or disturb calls. */
class ProbeInvoker implements Invoker {
  calls: FragmentRequest[] = [];
  inFlight = 0;
  maxInFlight = 0;
  signals: AbortSignal[] = [];
  constructor(
    private readonly inner: Invoker,
    private readonly before: (request: FragmentRequest, attempt: number, signal?: AbortSignal) => Promise<void> = async () => {},
  ) {}
  attempts(fragmentId: string): number {
    return this.calls.filter((c) => c.fragment.id === fragmentId).length;
  }
  async invoke(request: FragmentRequest, signal?: AbortSignal): Promise<FragmentResult> {
    this.calls.push(request);
    if (signal) this.signals.push(signal);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await this.before(request, this.attempts(request.fragment.id), signal);
      return await this.inner.invoke(request, signal);
    } finally {
      this.inFlight--;
    }
  }
  async close(): Promise<void> {}
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason);
    });
  });

describe('Coordinator', () => {
  let sandbox: Sandbox;
  let engine: Engine;
  let invoker: InProcessInvoker;
  let files: FileRef[];
  let scratchDir: string;

  const coordinator = (inner: Invoker, options: Partial<CoordinatorOptions> = {}) =>
    new Coordinator({
      invoker: inner,
      engine,
      scratchDir,
      concurrency: 4,
      retries: 2,
      queryTimeoutMs: 30_000,
      inlineLimitBytes: 1 << 20,
      storeOptions: {},
      shuffleUrl: sandbox.settings.shuffleUrl,
      retryDelayMs: 1,
      ...options,
    });

  before(async () => {
    sandbox = await makeSandbox();
    files = await writeTable(sandbox, 4, 250);
    scratchDir = join(sandbox.root, 'coordinator');
    engine = await Engine.create({ threads: 1, allowedDirectories: [scratchDir] });
    invoker = await InProcessInvoker.create(sandbox.settings);
  });

  after(async () => {
    await invoker?.close();
    engine?.close();
    await sandbox?.cleanup();
  });

  const scratchIsEmpty = async () => assert.deepEqual((await readdir(scratchDir)).filter((n) => n !== 'duckdb-tmp'), []);

  test('runs partial aggregates in fragments and the final aggregate in the reduce step', async () => {
    const outcome = await coordinator(invoker).execute(sumByGroupPlan(files), { queryId: 'sum1' });
    const expected = await expectedSumByGroup(sandbox, files);
    assert.deepEqual(outcome.rows, expected.rows);
    assert.deepEqual(
      outcome.columns.map((c) => c.name),
      ['g', 'total', 'n'],
    );
    assert.equal(outcome.stats.fragments, 4);
    assert.equal(outcome.stats.retries, 0);
    assert.equal(
      outcome.stats.bytesScanned,
      files.reduce((s, f) => s + f.sizeBytes, 0),
    );
    assert.ok(outcome.stats.bytesShuffled > 0);
    await scratchIsEmpty();
  });

  test('stored partials are fetched, reduced and deleted afterwards', async () => {
    const outcome = await coordinator(invoker, { inlineLimitBytes: 1 }).execute(sumByGroupPlan(files));
    assert.deepEqual(outcome.rows, (await expectedSumByGroup(sandbox, files)).rows);
    const shuffleDir = fileURLToPath(sandbox.settings.shuffleUrl);
    const left = await readdir(shuffleDir, { recursive: true }).catch(() => []);
    assert.deepEqual(
      left.filter((name) => String(name).endsWith('.parquet')),
      [],
    );
    await scratchIsEmpty();
  });

  test('a view with no partials is empty but has its declared columns', async () => {
    const plan: Plan = {
      ...sumByGroupPlan([]),
      reduce: { views: [{ name: 'partials', columns: [{ name: 's', type: 'HUGEINT' }] }], sql: 'SELECT count(*) AS n, sum(s) AS s FROM partials' },
    };
    const outcome = await coordinator(invoker).execute(plan);
    assert.deepEqual(outcome.rows, [['0', null]]);
    assert.equal(outcome.stats.fragments, 0);
  });

  test('a plan without fragments is answered by the reduce step alone', async () => {
    const plan: Plan = { ...sumByGroupPlan([]), shape: 'local', reduce: { views: [], sql: 'SELECT 40 + 2 AS answer' } };
    const outcome = await coordinator(invoker).execute(plan);
    assert.deepEqual(outcome.rows, [[42]]);
  });

  test('failed fragments are retried, and the query succeeds', async () => {
    const flaky = new ProbeInvoker(invoker, async (request, attempt) => {
      if (attempt === 1) throw new PuffinError('unavailable', `worker for ${request.fragment.id} went away`);
    });
    const outcome = await coordinator(flaky).execute(sumByGroupPlan(files));
    assert.deepEqual(outcome.rows, (await expectedSumByGroup(sandbox, files)).rows);
    assert.equal(outcome.stats.retries, 4);
    assert.equal(flaky.calls.length, 8);
    // Only the successful attempts count as scanned.
    assert.equal(
      outcome.stats.bytesScanned,
      files.reduce((s, f) => s + f.sizeBytes, 0),
    );
  });

  test('a straggling task gets a duplicate attempt; the first to finish wins, the other is cancelled', async () => {
    // f3's first attempt hangs (until cancelled) after the other three finish quickly.
    const slow = new ProbeInvoker(invoker, async (request, attempt, signal) => {
      if (request.fragment.id === 'f3' && attempt === 1) await sleep(20_000, signal);
    });
    const outcome = await coordinator(slow, { stragglers: { factor: 2, minMs: 100 } }).execute(sumByGroupPlan(files));
    assert.deepEqual(outcome.rows, (await expectedSumByGroup(sandbox, files)).rows);
    assert.equal(outcome.stats.duplicates, 1);
    assert.equal(outcome.stats.duplicateWins, 1);
    assert.equal(slow.attempts('f3'), 2);
    assert.equal(outcome.stats.retries, 0);
    // The straggler was told to stop; the others were not duplicated.
    const f3First = slow.calls.findIndex((c) => c.fragment.id === 'f3');
    assert.ok(slow.signals[f3First].aborted);
    for (const id of ['f0', 'f1', 'f2']) assert.equal(slow.attempts(id), 1);
    // Only the winning attempt's bytes count.
    assert.equal(outcome.stats.bytesScanned, files.reduce((s, f) => s + f.sizeBytes, 0));
    await scratchIsEmpty();
  });

  test('a duplicate that fails leaves the original attempt to finish; no duplicate without a median to compare', async () => {
    const slowThenBroken = new ProbeInvoker(invoker, async (request, attempt) => {
      if (request.fragment.id !== 'f3') return;
      if (attempt === 1) await sleep(600);
      else throw new PuffinError('unavailable', 'the duplicate\'s worker went away');
    });
    const outcome = await coordinator(slowThenBroken, { stragglers: { factor: 2, minMs: 100 } }).execute(sumByGroupPlan(files));
    assert.deepEqual(outcome.rows, (await expectedSumByGroup(sandbox, files)).rows);
    assert.equal(outcome.stats.duplicates, 1);
    assert.equal(outcome.stats.duplicateWins, 0);
    assert.equal(outcome.stats.retries, 0);
    // One task alone: nothing to compare it with, so it is never duplicated.
    const single = new ProbeInvoker(invoker, async () => sleep(300));
    const one = await coordinator(single, { stragglers: { factor: 1, minMs: 0 } }).execute(sumByGroupPlan(files.slice(0, 1)));
    assert.equal(one.stats.duplicates, 0);
    assert.equal(single.calls.length, 1);
  });

  test('past the retry bound the query fails naming the fragment and the last error', async () => {
    const broken = new ProbeInvoker(invoker, async (request) => {
      if (request.fragment.id === 'f2') throw new Error('disk on fire');
    });
    await assert.rejects(coordinator(broken, { retries: 2 }).execute(sumByGroupPlan(files)), (err: PuffinError) => {
      assert.equal(err.code, 'fragment_failed');
      assert.match(err.message, /fragment f2 .*failed after 3 attempt\(s\).*disk on fire/);
      assert.equal(err.details?.fragmentId, 'f2');
      return true;
    });
    assert.equal(broken.attempts('f2'), 3);
    await scratchIsEmpty();
  });

  test('errors a retry would repeat fail the query at once', async () => {
    const probe = new ProbeInvoker(invoker);
    const plan = sumByGroupPlan(files.slice(0, 1));
    plan.fragments[0].sql = 'SELECT no_such_column FROM t';
    await assert.rejects(coordinator(probe).execute(plan), (err: PuffinError) => {
      assert.equal(err.code, 'binder_error');
      assert.equal(err.details?.fragmentId, 'f0');
      return true;
    });
    assert.equal(probe.calls.length, 1);
  });

  test('the query deadline rejects with timeout and aborts outstanding invocations', async () => {
    // An invoker that never answers and ignores its signal: the coordinator must not wait for it.
    const stuck = new ProbeInvoker(invoker, () => new Promise(() => {}));
    const started = Date.now();
    await assert.rejects(coordinator(stuck).execute(sumByGroupPlan(files), { timeoutMs: 150 }), { code: 'timeout', message: /deadline of 150 ms/ });
    assert.ok(Date.now() - started < 1_000);
    assert.equal(stuck.signals.length, 4);
    assert.ok(stuck.signals.every((s) => s.aborted));
    await scratchIsEmpty();
  });

  test('a deadline that passes inside a worker stops the fragment there too', async () => {
    const plan = { ...sumByGroupPlan([]), fragments: [slowFragment('f0', 100_000)], reduce: { views: [{ name: 'partials', columns: [{ name: 'h', type: 'VARCHAR' }] }], sql: 'SELECT * FROM partials' } };
    const started = Date.now();
    await assert.rejects(coordinator(invoker).execute(plan, { timeoutMs: 200 }), { code: 'timeout' });
    assert.ok(Date.now() - started < 2_000);
  });

  test('the caller can cancel a query through its signal', async () => {
    const controller = new AbortController();
    const slow = new ProbeInvoker(invoker, (_request, _attempt, signal) => sleep(5_000, signal));
    setTimeout(() => controller.abort(new PuffinError('timeout', 'cancelled by the user')), 50);
    await assert.rejects(coordinator(slow).execute(sumByGroupPlan(files), { signal: controller.signal }), { message: 'cancelled by the user' });
  });

  test('no more than `concurrency` fragments run at once', async () => {
    const many = await writeTable(sandbox, 8, 10);
    const probe = new ProbeInvoker(invoker, () => sleep(30));
    const outcome = await coordinator(probe, { concurrency: 3 }).execute(sumByGroupPlan(many));
    assert.deepEqual(outcome.rows, (await expectedSumByGroup(sandbox, many)).rows);
    assert.equal(probe.calls.length, 8);
    assert.equal(probe.maxInFlight, 3);
  });

  test('a plan whose fragment feeds no reduce view is refused', async () => {
    const plan = sumByGroupPlan(files.slice(0, 1));
    plan.fragments[0].output = 'elsewhere';
    await assert.rejects(coordinator(invoker).execute(plan), { code: 'internal', message: /no reduce view declares/ });
  });

  test('a stored partial outside the shuffle prefix is refused, not fetched or deleted', async () => {
    const outside = `${sandbox.settings.warehouse}t/part-0.parquet`;
    const rogue: Invoker = {
      invoke: async (request) => ({ fragmentId: request.fragment.id, partial: { kind: 'stored', uri: outside }, rows: 0, bytes: 0, bytesScanned: 0, durationMs: 0 }),
      close: async () => {},
    };
    await assert.rejects(coordinator(rogue).execute(sumByGroupPlan(files.slice(0, 1))), { message: /outside the shuffle prefix/ });
    assert.ok((await readdir(join(sandbox.warehouseDir, 't'))).includes('part-0.parquet'));
  });

  test('the scratch directory must be inside the engine sandbox', async () => {
    assert.throws(() => coordinator(invoker, { scratchDir: sandbox.root }), { code: 'internal', message: /outside the engine's allowed directories/ });
    const open = await Engine.create({ threads: 1 });
    try {
      assert.throws(() => coordinator(invoker, { engine: open }), { code: 'internal', message: /not sandboxed/ });
    } finally {
      open.close();
    }
  });
});
