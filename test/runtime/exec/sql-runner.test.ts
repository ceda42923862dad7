// The coordinator's SQL runner (runtime/exec/sql-runner.ts): a job reads the files it was
// handed and nothing else, not even files of the job before it in the same slot, and a
// process slot stops a long scalar call at once when the job's signal aborts.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { PuffinError, registerInternalPath, scrubInternalPaths } from '../../../runtime/errors.ts';
import { SqlRunnerPool } from '../../../runtime/exec/sql-runner.ts';

const root = mkdtempSync(join(tmpdir(), 'sql-runner-'));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
after(() => rmSync(root, { recursive: true, force: true }));

function csv(name: string, value: string): string {
  const path = join(root, name);
  writeFileSync(path, `v\n${value}\n`);
  return path;
}

for (const kind of ['in-process', 'process'] as const) {
  test(`${kind} slots: a job reads its own files only`, async () => {
    const pool = new SqlRunnerPool({ dir: join(root, `runners-${kind}`), size: 1, kind, threads: 1 });
    try {
      const a = csv(`a-${kind}.csv`, 'first');
      const b = csv(`b-${kind}.csv`, 'second');
      let aPath = '';
      const first = await pool.run({ files: [a], build: ([p]) => ((aPath = p), { setup: [], sql: `SELECT v FROM read_csv('${p}')` }) });
      assert.deepEqual(first.rows, [['first']]);
      // The next job in the same slot: the first job's file is gone, the original is outside.
      for (const path of [aPath, a, b, join(root, '*.csv')]) {
        await assert.rejects(pool.run({ files: [b], build: () => ({ setup: [], sql: `SELECT v FROM read_csv('${path}')` }) }), (err: PuffinError) => {
          assert.ok(['access_denied', 'bad_request', 'internal'].includes(err.code), `${err.code}: ${err.message}`);
          assert.ok(!/first|second/.test(err.message));
          return true;
        });
      }
      const again = await pool.run({ files: [b], build: ([p]) => ({ setup: [], sql: `SELECT v FROM read_csv('${p}')` }) });
      assert.deepEqual(again.rows, [['second']]);
    } finally {
      await pool.close();
    }
  });
}

test('process slots: jobs one after another reuse the slot whose process is up', async () => {
  const pool = new SqlRunnerPool({ dir: join(root, 'runners-reuse'), size: 2, kind: 'process', threads: 1, warm: false });
  try {
    for (let i = 0; i < 3; i++) assert.deepEqual((await pool.run({ build: () => ({ setup: [], sql: `SELECT ${i} AS v` }) })).rows, [[i]]);
    assert.equal(pool.runningProcesses(), 1);
    // Overlapping jobs take the other slot.
    await Promise.all([0, 1].map((i) => pool.run({ build: () => ({ setup: [], sql: `SELECT ${i} AS v` }) })));
    assert.equal(pool.runningProcesses(), 2);
  } finally {
    await pool.close();
  }
});

test('process slots: an abort stops a long scalar call at once and the slot serves the next job', async () => {
  const pool = new SqlRunnerPool({ dir: join(root, 'runners-kill'), size: 1, kind: 'process', threads: 1 });
  try {
    await pool.run({ build: () => ({ setup: [], sql: 'SELECT 1' }) }); // started
    const started = Date.now();
    const signal = AbortSignal.timeout(500);
    await assert.rejects(
      pool.run({ build: () => ({ setup: [], sql: "SELECT levenshtein(repeat('a', 120000), repeat('b', 120000))" }) }, signal),
      (err: unknown) => (err as Error).name === 'TimeoutError' || err instanceof PuffinError,
    );
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 2_000, `abort took ${elapsed} ms`);
    const next = await pool.run({ build: () => ({ setup: [], sql: 'SELECT 42 AS x' }) });
    assert.deepEqual(next.rows, [[42]]);
  } finally {
    await pool.close();
  }
});

/** This process's SQL runner children (sql-runner-child.ts), from /proc. */
function runnerChildren(): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && readFileSync(`/proc/${name}/cmdline`, 'utf8').includes('sql-runner-child')) pids.push(Number(name));
    } catch {
      // gone
    }
  }
  return pids;
}

test('process slots killed again and again: health says why meanwhile, and the runner recovers by itself', async () => {
  const pool = new SqlRunnerPool({ dir: join(root, 'runners-health'), size: 2, kind: 'process', threads: 1 });
  try {
    await pool.run({ build: () => ({ setup: [], sql: 'SELECT 1' }) }); // started
    assert.equal(pool.health(), 'ok');
    const seen = new Set<number>();
    const healths: string[] = [];
    let kills = 0;
    for (const until = Date.now() + 20_000; Date.now() < until && (kills < 4 || healths.every((h) => h === 'ok')); ) {
      for (const pid of runnerChildren()) {
        if (seen.has(pid)) continue;
        seen.add(pid);
        try {
          process.kill(pid, 'SIGKILL');
          kills++;
        } catch {
          // gone already
        }
      }
      healths.push(pool.health());
      await sleep(20);
    }
    const degraded = healths.filter((h) => h !== 'ok');
    assert.ok(degraded.length > 0, `health stayed ok through ${kills} kills`);
    for (const h of degraded) assert.match(h, /^no SQL runner process is running: \d+ consecutive failure\(s\) \(last: the SQL runner process .*exited.*\); they are restarted$/);
    // Nobody runs a job: the runner restarts its children by itself and health comes back.
    for (const until = Date.now() + 60_000; pool.health() !== 'ok'; ) {
      assert.ok(Date.now() < until, `health still ${pool.health()} 60 s after the kills stopped`);
      await sleep(50);
    }
    const next = await pool.run({ build: () => ({ setup: [], sql: 'SELECT 42 AS x' }) });
    assert.deepEqual(next.rows, [[42]]);
  } finally {
    await pool.close();
  }
  assert.equal(pool.health(), 'the SQL runner is closed');
});

test('a pool started by another process over the same directory leaves this process\'s running job alone', async () => {
  const dir = join(root, 'runners-shared');
  const pool = new SqlRunnerPool({ dir, size: 1, kind: 'in-process', threads: 1 });
  const controller = new AbortController();
  try {
    let jobPath = '';
    const running = pool.run(
      { files: [csv('shared.csv', 'mine')], build: ([p]) => ((jobPath = p), { setup: [], sql: 'SELECT sum(hash(range)) FROM range(100000000000)' }) },
      controller.signal,
    );
    running.catch(() => undefined); // aborted below
    for (const until = Date.now() + 30_000; !jobPath; ) {
      assert.ok(Date.now() < until, 'the job never started');
      await sleep(10);
    }
    // Another process (a `puffindb query` beside a server) starts and closes a pool over the same directory.
    const module = fileURLToPath(new URL('../../../runtime/exec/sql-runner.ts', import.meta.url));
    const script = `const { SqlRunnerPool } = await import(${JSON.stringify(module)});
      const p = new SqlRunnerPool({ dir: ${JSON.stringify(dir)}, size: 1, kind: 'in-process', threads: 1 });
      await p.run({ build: () => ({ setup: [], sql: 'SELECT 1' }) });
      await p.close();`;
    const other = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'inherit', 'inherit'] });
    assert.equal(await new Promise((r) => other.once('exit', r)), 0);
    assert.ok(existsSync(jobPath), 'the other process removed the running job\'s file');
    controller.abort(new PuffinError('timeout', 'done'));
    await assert.rejects(running, { code: 'timeout' });
  } finally {
    controller.abort();
    await pool.close();
  }
});

test('internal paths are scrubbed from error messages', () => {
  registerInternalPath(join(root, 'home'), '<PUFFINDB_HOME>');
  const err = new PuffinError('access_denied', `Permission Error: Cannot access file "${join(root, 'home', 'coordinator', 'x.csv')}"`);
  assert.equal(err.message, 'Permission Error: Cannot access file "<PUFFINDB_HOME>/coordinator/x.csv"');
  assert.equal(scrubInternalPaths('no path here'), 'no path here');
});
