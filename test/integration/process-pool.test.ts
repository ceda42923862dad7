import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PuffinError } from '../../runtime/errors.ts';
import { Engine } from '../../runtime/engine/engine.ts';
import { Coordinator } from '../../runtime/exec/coordinator.ts';
import { ProcessPoolInvoker } from '../../runtime/exec/process-pool-invoker.ts';
import type { Plan } from '../../runtime/planner/plan.ts';
import { expectedSumByGroup, makeSandbox, slowFragment, sumByGroupPlan, writeTable, type Sandbox } from '../runtime/exec/fixtures.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Running (a zombie nobody has reaped yet counts as gone: it runs nothing). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = readFileSync(`/proc/${pid}/stat`, { encoding: 'utf8', flag: 'r' });
  return !/^\d+ \(.*\) Z/.test(stat);
}

async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** A plan with one slow fragment 'slow' (~millions × 5 ms) and quick ones over the table. */
function planWithSlowFragment(quick: Plan, millions: number): Plan {
  return {
    ...quick,
    fragments: [slowFragment('slow', millions, 'slow'), ...quick.fragments],
    reduce: {
      views: [...quick.reduce.views, { name: 'slow', columns: [{ name: 'h', type: 'VARCHAR' }] }],
      sql: `SELECT (SELECT count(*) FROM slow) AS slow_rows, * FROM (${quick.reduce.sql})`,
    },
  };
}

describe('ProcessPoolInvoker', () => {
  let sandbox: Sandbox;
  let pool: ProcessPoolInvoker;
  let engine: Engine;
  let scratchDir: string;

  const coordinator = (retries: number, invoker: ProcessPoolInvoker = pool) =>
    new Coordinator({
      invoker,
      engine,
      scratchDir,
      concurrency: 4,
      retries,
      queryTimeoutMs: 30_000,
      inlineLimitBytes: 1 << 20,
      storeOptions: {},
      retryDelayMs: 1,
    });

  before(async () => {
    sandbox = await makeSandbox({ workers: 2, threads: 1 });
    scratchDir = join(sandbox.root, 'coordinator');
    engine = await Engine.create({ threads: 1, allowedDirectories: [scratchDir] });
    pool = await ProcessPoolInvoker.start({ settings: sandbox.settings, size: 2 });
  });

  after(async () => {
    await pool?.close();
    engine?.close();
    await sandbox?.cleanup();
  });

  test('starts one child process per slot', () => {
    const children = pool.children();
    assert.equal(children.length, 2);
    const pids = children.map((c) => c.pid!);
    assert.equal(new Set(pids).size, 2);
    assert.ok(pids.every((pid) => pid !== process.pid && isAlive(pid)));
    assert.ok(children.every((c) => c.state === 'idle'));
  });

  test('fragments of a query spread over both children', async () => {
    const files = await writeTable(sandbox, 6, 200);
    const before = pool.children().map((c) => c.fragmentsRun);
    // A slow first fragment keeps one child busy, so the other must take the rest.
    const plan = planWithSlowFragment(sumByGroupPlan(files), 40);
    const outcome = await coordinator(0).execute(plan);
    assert.deepEqual(
      outcome.rows,
      (await expectedSumByGroup(sandbox, files)).rows.map((row) => ['1', ...row]),
    );
    const ran = pool.children().map((c, i) => c.fragmentsRun - before[i]);
    assert.equal(ran[0] + ran[1], 7);
    assert.ok(ran.every((n) => n >= 1), `each child ran fragments: ${ran}`);
  });

  test('a child killed mid-fragment is replaced and the fragment retried', async () => {
    const files = await writeTable(sandbox, 2, 100);
    const plan = planWithSlowFragment(sumByGroupPlan(files), 50);
    const query = coordinator(1).execute(plan);
    query.catch(() => {}); // awaited below; a failure must not count as unhandled meanwhile
    const victim = await waitFor('a child running the slow fragment', () => pool.children().find((c) => c.fragmentId === 'slow')?.pid);
    process.kill(victim, 'SIGKILL');
    const outcome = await query;
    assert.equal(outcome.stats.retries, 1);
    assert.deepEqual(
      outcome.rows,
      (await expectedSumByGroup(sandbox, files)).rows.map((row) => ['1', ...row]),
    );
    const pids = await waitFor('a replacement child', () => {
      const children = pool.children();
      return children.every((c) => c.state === 'idle') ? children.map((c) => c.pid) : undefined;
    });
    assert.ok(!pids.includes(victim));
    assert.equal(pids.length, 2);
  });

  /** Run `plan` on `invoker` while every child that runs fragment 'slow' is SIGKILLed; the kills. */
  async function failWithKilledChildren(invoker: ProcessPoolInvoker, plan: Plan): Promise<Set<number>> {
    const killed = new Set<number>();
    let done = false;
    const killer = (async () => {
      while (!done) {
        const pid = invoker.children().find((c) => c.fragmentId === 'slow' && c.state === 'busy')?.pid;
        if (pid && !killed.has(pid)) {
          killed.add(pid);
          process.kill(pid, 'SIGKILL');
        }
        await sleep(10);
      }
    })();
    try {
      await assert.rejects(coordinator(1, invoker).execute(plan), (err: PuffinError) => {
        assert.equal(err.code, 'fragment_failed');
        assert.match(err.message, /fragment slow .*failed after 2 attempt\(s\).*exited \(signal SIGKILL\) while running fragment slow/);
        return true;
      });
    } finally {
      done = true;
      await killer;
    }
    return killed;
  }

  test('a fragment whose child dies on every attempt fails the query naming it', async () => {
    const files = await writeTable(sandbox, 1, 10);
    const killed = await failWithKilledChildren(pool, planWithSlowFragment(sumByGroupPlan(files), 50));
    assert.equal(killed.size, 2);
    // Children that died running a fragment are replaced at once, not after a backoff: the
    // next query is served (it waits only for the replacements to start, however long that
    // takes on a loaded machine).
    assert.ok(pool.children().every((c) => c.state !== 'waiting'), JSON.stringify(pool.children()));
    assert.equal(pool.health(), 'ok');
    const outcome = await coordinator(0).execute(sumByGroupPlan(files));
    assert.deepEqual(outcome.rows, (await expectedSumByGroup(sandbox, files)).rows);
  });

  test('one slot whose children a fragment kills twice in a row does not back off: the next query is served', async () => {
    // With one slot both attempts die in it, back to back: deaths while running a fragment
    // say nothing about the slot's ability to start, so they must not earn a backoff (which
    // would answer the next query 503 at once).
    const one = await ProcessPoolInvoker.start({ settings: { ...sandbox.settings, cacheDir: join(sandbox.root, 'one-slot-cache') }, size: 1 });
    try {
      const files = await writeTable(sandbox, 1, 10);
      const killed = await failWithKilledChildren(one, planWithSlowFragment(sumByGroupPlan(files), 50));
      assert.equal(killed.size, 2);
      assert.notEqual(one.children()[0].state, 'waiting');
      assert.equal(one.health(), 'ok');
      const outcome = await coordinator(0, one).execute(sumByGroupPlan(files));
      assert.deepEqual(outcome.rows, (await expectedSumByGroup(sandbox, files)).rows);
    } finally {
      await one.close();
    }
  });

  test('errors from a child keep their code', async () => {
    const files = await writeTable(sandbox, 1, 10);
    const plan = sumByGroupPlan(files);
    plan.fragments[0].sql = `SELECT * FROM read_csv('/etc/passwd')`;
    await assert.rejects(coordinator(2).execute(plan), { code: 'access_denied' });
  });

  test('an invocation over its timeout kills the child and rejects with timeout', async () => {
    const slowPool = await ProcessPoolInvoker.start({ settings: { ...sandbox.settings, invokeTimeoutMs: 300 }, size: 1 });
    try {
      const pid = slowPool.children()[0].pid!;
      const started = Date.now();
      await assert.rejects(slowPool.invoke({ queryId: 'q', fragment: slowFragment('f0', 100_000), deadline: Date.now() + 30_000 }), {
        code: 'timeout',
        message: /fragment f0 of query q timed out/,
      });
      assert.ok(Date.now() - started < 2_000);
      await waitFor('the child to die', () => (isAlive(pid) ? undefined : true));
      // The replacement serves the next fragment.
      const result = await slowPool.invoke({ queryId: 'q', fragment: slowFragment('f1', 0.001), deadline: Date.now() + 30_000 });
      assert.equal(result.rows, 1);
      assert.notEqual(slowPool.children()[0].pid, pid);
    } finally {
      await slowPool.close();
    }
  });

  test('children exit when their parent process is killed', async () => {
    const poolModule = fileURLToPath(new URL('../../runtime/exec/process-pool-invoker.ts', import.meta.url));
    const fixtures = fileURLToPath(new URL('../runtime/exec/fixtures.ts', import.meta.url));
    // The parent starts a pool, keeps one child busy, prints the pids and waits to be killed.
    const script = `
      const { ProcessPoolInvoker } = await import(${JSON.stringify(poolModule)});
      const { slowFragment } = await import(${JSON.stringify(fixtures)});
      const pool = await ProcessPoolInvoker.start({ settings: JSON.parse(process.env.POOL_SETTINGS), size: 2 });
      pool.invoke({ queryId: 'q', fragment: slowFragment('f0', 100000), deadline: Date.now() + 60000 }).catch(() => {});
      setTimeout(() => console.log(JSON.stringify(pool.children().map((c) => c.pid))), 100);
      setInterval(() => {}, 1000);`;
    const settings = { ...sandbox.settings, cacheDir: join(sandbox.root, 'orphan-cache') };
    const parent = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      env: { ...process.env, POOL_SETTINGS: JSON.stringify(settings) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const pids = await new Promise<number[]>((resolve, reject) => {
        let out = '';
        parent.stdout!.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes('\n')) resolve(JSON.parse(out) as number[]);
        });
        parent.once('exit', (code) => reject(new Error(`parent exited early with ${code}`)));
      });
      assert.equal(pids.length, 2);
      assert.ok(pids.every(isAlive));
      parent.kill('SIGKILL');
      await waitFor('the children to exit', () => (pids.some(isAlive) ? undefined : true), 5_000);
    } finally {
      parent.kill('SIGKILL');
    }
  });

  // Last: it closes the shared pool.
  test('close() kills every child, failing the fragment it was running, and refuses further work', async () => {
    const pids = pool.children().map((c) => c.pid!);
    assert.ok(pids.every(isAlive));
    const running = pool.invoke({ queryId: 'q', fragment: slowFragment('f0', 100_000), deadline: Date.now() + 30_000 });
    running.catch(() => {}); // awaited below
    await waitFor('the fragment to start', () => (pool.children().some((c) => c.state === 'busy') ? true : undefined));
    await pool.close();
    await assert.rejects(running, { code: 'unavailable' });
    assert.deepEqual(pids.filter(isAlive), []);
    await assert.rejects(pool.invoke({ queryId: 'q', fragment: slowFragment('f1', 0.001), deadline: Date.now() + 1_000 }), {
      code: 'unavailable',
    });
  });
});
