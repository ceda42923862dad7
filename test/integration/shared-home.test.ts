// Processes sharing one PUFFINDB_HOME (`puffindb serve` beside `puffindb query`) keep their
// scratch apart: SQL runner slots, the worker pool's per-child caches and sandboxes and the
// coordinator's file cache live in per-process directories (<pid>-<start time>,
// runtime/exec/leftovers.ts). Before, a `puffindb query` started beside a server emptied
// coordinator/runners and coordinator/planning and reused <cache>/pool-<n> (wiping the
// sandbox a server's child was running a fragment in), so the two failed each other's
// queries. Here both run queries at once and must all answer correctly, and a server
// starting beside a running `puffindb query` removes dead processes' directories only.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { runCli, startServe, type RealServer } from '../helpers/serve.ts';

const CLI = resolve(import.meta.dirname, '../../bin/puffindb.js');
const ENV = { PUFFINDB_WORKERS: '2', PUFFINDB_THREADS: '2' };
const GROUPED = 'SELECT l_returnflag AS f, count(*) AS n, sum(l_quantity) AS q FROM lineitem GROUP BY 1 ORDER BY 1';

let server: RealServer;
let expectedGrouped: unknown;
before(async () => {
  server = await startServe({ demoScale: 0.01, env: ENV });
  const res = await server.query(GROUPED);
  assert.equal(res.status, 200, await res.clone().text());
  expectedGrouped = ((await res.json()) as { rows: unknown[] }).rows;
});
after(() => server?.close());

async function serveCount(i: number): Promise<{ status: number; n?: number; text: string }> {
  const res = await server.query(`SELECT count(*) AS n FROM lineitem WHERE l_orderkey <> -${i}`);
  const text = await res.text();
  return { status: res.status, n: res.status === 200 ? Number((JSON.parse(text) as { rows: { n: number }[] }).rows[0].n) : undefined, text };
}

/** The per-process directory names (<pid>-<start>) under a root of per-process directories. */
function processDirs(root: string): string[] {
  return existsSync(root) ? readdirSync(root).filter((n) => /^\d+-t?[0-9a-z]+$/.test(n)) : [];
}

function deadPid(): number {
  for (let pid = 4_000_000; ; pid++) {
    try {
      process.kill(pid, 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') return pid;
    }
  }
}

test('a `puffindb query` run beside `puffindb serve` on one home: both answer correctly while running at once', async () => {
  const expectedCount = (await serveCount(0)).n!;
  let running = true;
  const served: { status: number; n?: number; text: string }[] = [];
  // Two clients keep the server busy (fragments in its children, reduce steps in its runners).
  const loops = [1, 2].map(async (k) => {
    for (let i = k * 100_000; running; i++) served.push(await serveCount(i));
  });
  try {
    // The CLI run starts a pool, runner slots and a file cache of its own in the same home.
    const out = await runCli(['query', GROUPED, '--format', 'json'], server.home, ENV);
    assert.deepEqual(JSON.parse(out), expectedGrouped, 'the CLI run');
  } finally {
    running = false;
    await Promise.all(loops);
  }
  assert.ok(served.length > 0);
  for (const r of served) {
    assert.equal(r.status, 200, `a server query beside the CLI failed: ${r.text}`);
    assert.equal(r.n, expectedCount);
  }
  // The CLI's directories went with it; the server's own are there.
  const serverDir = new RegExp(`^${server.pid()}-`);
  for (const root of [join(server.home, 'coordinator', 'runners'), join(server.home, 'cache', 'procs')]) {
    const dirs = processDirs(root);
    assert.ok(dirs.some((d) => serverDir.test(d)), `${root}: ${dirs}`);
  }
});

test('a server starting beside a running `puffindb query` removes dead processes\' directories, never the live one\'s', async () => {
  // Directories of a process that is gone, as a SIGKILL leaves them.
  const dead = `${deadPid()}-12345`;
  const planted = [
    join(server.home, 'coordinator', 'runners', dead, '0', 'slot-0', 'job-1'),
    join(server.home, 'coordinator', 'planning', dead, '0', 'slot-0'),
    join(server.home, 'coordinator', 'files', dead),
    join(server.home, 'cache', 'procs', dead, '0', 'pool-0', 'sandbox', '0'),
  ];
  for (const dir of planted) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'x.parquet'), 'left by a killed process');
  }
  // A query slow enough to still run while the server restarts.
  const slow = `SELECT count(*) AS n FROM lineitem, range(40) r WHERE hash(l_comment || r.range::VARCHAR) % 7 = 0`;
  const cli = spawn(process.execPath, [CLI, 'query', slow, '--format', 'json'], {
    env: { ...process.env, PUFFINDB_HOME: server.home, ...ENV },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  cli.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  cli.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((r) => cli.once('exit', (code) => r(code)));
  try {
    // Wait until the CLI has its pool's directory (its children have started).
    const cliDirs = () => processDirs(join(server.home, 'cache', 'procs')).filter((d) => d.startsWith(`${cli.pid}-`));
    for (const until = Date.now() + 60_000; cliDirs().length === 0; ) {
      assert.ok(Date.now() < until, `the CLI never made its directory: ${stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    await server.restart(); // start-up cleanup runs beside the live CLI
    if (cli.exitCode === null) assert.deepEqual(cliDirs().length, 1, 'the live CLI\'s directory was removed');
    for (const dir of planted) assert.ok(!existsSync(dir), `${dir} of a dead process was kept`);
    assert.equal(await exited, 0, stderr);
    const rows = JSON.parse(stdout) as { n: number }[];
    assert.equal(rows.length, 1);
    assert.ok(Number(rows[0].n) > 0);
    // The restarted server answers too.
    assert.equal((await serveCount(7)).status, 200);
  } finally {
    cli.kill('SIGKILL');
  }
});
