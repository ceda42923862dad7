// The process pool never gives up on a slot: children that cannot start are started again
// after a bounded, growing pause; meanwhile health() says why and invoke() refuses at once
// with `unavailable` (and when to come back); once the cause is gone the pool serves again
// by itself. Real child processes; the cause of failure is real too: a regular file where a
// child's cache directory must be created.

import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { join } from 'node:path';
import type { PuffinError } from '../../runtime/errors.ts';
import { ProcessPoolInvoker } from '../../runtime/exec/process-pool-invoker.ts';
import { makeSandbox, slowFragment, type Sandbox } from '../runtime/exec/fixtures.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

let sandbox: Sandbox;
before(async () => {
  sandbox = await makeSandbox({ workers: 1, threads: 1 });
});
after(() => sandbox?.cleanup());

test('start() reports a pool whose children cannot start, naming the cause', async () => {
  const cacheDir = join(sandbox.root, 'blocked-cache');
  writeFileSync(cacheDir, 'not a directory');
  try {
    await assert.rejects(ProcessPoolInvoker.start({ settings: { ...sandbox.settings, cacheDir }, size: 1, restartBaseMs: 10, restartMaxMs: 50 }), (err: PuffinError) => {
      assert.equal(err.code, 'unavailable');
      assert.match(err.message, /no worker process is running: \d+ consecutive failure/);
      assert.match(err.message, /not a directory/);
      return true;
    });
  } finally {
    rmSync(cacheDir, { force: true });
  }
});

test('a slot that keeps failing backs off, health says why, invoke answers 503 at once, and the pool recovers', async () => {
  const cacheDir = join(sandbox.root, 'cache-later');
  writeFileSync(cacheDir, 'not a directory yet');
  const pool = new ProcessPoolInvoker({ settings: { ...sandbox.settings, cacheDir }, size: 1, restartBaseMs: 100, restartMaxMs: 400 });
  try {
    const pids = new Set<number>();
    const seenWaiting = await waitFor('the slot to back off after repeated failures', () => {
      const [child] = pool.children();
      if (child.pid) pids.add(child.pid);
      return child.state === 'waiting' && pids.size >= 3 ? true : undefined;
    });
    assert.ok(seenWaiting);
    assert.match(pool.health(), /no worker process is running: \d+ consecutive failure\(s\) across 1 slot\(s\) \(last: .*not a directory.*\); the pool restarts them, (next in \d+ ms|one is starting now)/);
    const started = Date.now();
    await assert.rejects(pool.invoke({ queryId: 'q', fragment: slowFragment('f0', 0.001), deadline: Date.now() + 30_000 }), (err: PuffinError) => {
      assert.equal(err.code, 'unavailable');
      assert.equal(typeof err.details?.retryAfterMs, 'number');
      return true;
    });
    assert.ok(Date.now() - started < 1_000, 'refused at once, not after waiting');

    // It keeps trying (never gives up), at most restartMaxMs apart plus a start.
    const before = pids.size;
    await waitFor('more attempts', () => {
      const pid = pool.children()[0].pid;
      if (pid) pids.add(pid);
      return pids.size >= before + 2 ? true : undefined;
    });

    // The cause goes away: the next start succeeds and fragments run again.
    rmSync(cacheDir, { force: true });
    await waitFor('the pool to serve again', () => (pool.health() === 'ok' && pool.children()[0].state === 'idle' ? true : undefined), 60_000);
    const result = await pool.invoke({ queryId: 'q', fragment: slowFragment('f1', 0.001), deadline: Date.now() + 30_000 });
    assert.equal(result.rows, 1);
  } finally {
    await pool.close();
  }
  assert.equal(pool.health(), 'the worker process pool is closed');
});
