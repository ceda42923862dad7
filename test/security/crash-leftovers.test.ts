// Finding 10 of issue 11: a server killed mid-write left its write staging (coordinator and
// worker side) on disk for good. Here a real `puffindb serve` is SIGKILLed while writes run
// (one written by the fragments, one by the coordinator), fake stale scratch is planted
// beside a live process that shares the home, and the restart must remove what no live
// process owns, keep what the live one does, and leave the table whole: its row count is
// that of a committed snapshot, and orphan data files are still listed, not deleted.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { main } from '../../runtime/cli/main.ts';
import { startServe, type RealServer } from '../helpers/serve.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const LEFTOVERS = fileURLToPath(new URL('../../runtime/exec/leftovers.ts', import.meta.url));

let server: RealServer;
let base: number;
before(async () => {
  server = await startServe({ demoScale: 0.01 });
  const created = await server.query('CREATE TABLE li AS SELECT * FROM lineitem');
  assert.equal(created.status, 200, await created.clone().text());
  base = await count();
  assert.ok(base > 0);
});
after(() => server?.close());

/**
 * `puffindb table orphans li --json` over the server's home, run in this process (the command
 * only reads the catalog and lists files; a child process would cost a CLI start-up each time).
 */
async function orphans(home: string): Promise<string> {
  const saved = process.env.PUFFINDB_HOME;
  process.env.PUFFINDB_HOME = home;
  try {
    const lines: string[] = [];
    await main(['table', 'orphans', 'li', '--json'], (s) => lines.push(s));
    return lines.join('\n');
  } finally {
    if (saved === undefined) delete process.env.PUFFINDB_HOME;
    else process.env.PUFFINDB_HOME = saved;
  }
}

async function count(): Promise<number> {
  const res = await server.query(`SELECT count(*) AS n FROM li WHERE l_orderkey <> -${Date.now()}`);
  assert.equal(res.status, 200, await res.clone().text());
  return Number(((await res.json()) as { rows: { n: number }[] }).rows[0].n);
}

/** Every scratch entry (per-query directory or file) under the home's scratch directories. */
function scratchEntries(home: string): string[] {
  const dirs = [join(home, 'coordinator', 'staging'), join(home, 'coordinator', 'partials'), join(home, 'control', 'results'), join(home, 'control', 'logs')];
  const cache = join(home, 'cache');
  if (existsSync(cache)) {
    for (const name of readdirSync(cache)) if (/^pool-\d+$/.test(name)) dirs.push(join(cache, name, 'staging'), join(cache, name, 'partials'));
  }
  return dirs.flatMap((d) => {
    try {
      return readdirSync(d).map((name) => join(d, name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []; // not made yet, or removed meanwhile
      throw err;
    }
  });
}

/** Bytes of the files under a path; what the running server deletes meanwhile counts 0. */
function bytesUnder(path: string): number {
  const info = statSync(path, { throwIfNoEntry: false });
  if (!info) return 0;
  if (!info.isDirectory()) return info.size;
  let names: string[];
  try {
    names = readdirSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  return names.reduce((sum, name) => sum + bytesUnder(join(path, name)), 0);
}

const WRITES = [
  // Written by the fragments: staging under each worker's cache directory.
  'INSERT INTO li SELECT * FROM lineitem',
  // LIMIT makes it a coordinator write: staging under <home>/coordinator/staging/<queryId>.
  'INSERT INTO li SELECT * FROM lineitem LIMIT 100000000',
];

/**
 * Start both kinds of write at once and SIGKILL the server once each has staged bytes on
 * disk or already finished (a finished write stages nothing more, so waiting for it is
 * pointless), or after 20 s; answers how many staging entries and bytes the kill left.
 */
async function killMidWrites(): Promise<{ entries: number; bytes: number; coordinator: boolean; worker: boolean }> {
  const before = new Set(scratchEntries(server.home));
  const finished = WRITES.map(() => false);
  const writes = WRITES.map((sql, i) =>
    server.query(sql).then(
      (r) => {
        finished[i] = true;
        return r.status;
      },
      () => 'killed' as const,
    ),
  );
  let coordinator = false;
  let worker = false;
  for (const until = Date.now() + 20_000; Date.now() < until && !((coordinator || finished[1]) && (worker || finished[0])); ) {
    for (const e of scratchEntries(server.home)) {
      if (before.has(e) || bytesUnder(e) === 0) continue;
      if (e.includes(`${join('coordinator', 'staging')}`)) coordinator = true;
      if (/pool-\d+[/\\]staging/.test(e)) worker = true;
    }
    await sleep(5);
  }
  await server.kill();
  await Promise.all(writes);
  const left = scratchEntries(server.home);
  return { entries: left.length, bytes: left.reduce((sum, e) => sum + bytesUnder(e), 0), coordinator, worker };
}

// One crash, one restart: the restart must remove both what the crash left and the planted
// stale scratch, and keep what a live process sharing the home owns.
test('killed mid-write beside a live process sharing the home: restart removes the staging and stale scratch, keeps the live one\'s, and the table stays at a committed snapshot', async () => {
  const home = server.home;
  const left = await killMidWrites();
  const killedAt = Date.now();
  assert.ok(left.coordinator || left.worker, 'no write was caught with bytes staged');
  console.log(`# killed with staged bytes on the coordinator: ${left.coordinator}, on a worker: ${left.worker}; ${left.entries} entries (${left.bytes} bytes) left by the kill`);
  const orphansBefore = await orphans(home);

  // Stale: planted before the live process registers, as a crashed run would leave them.
  const past = new Date(Date.now() - 60_000);
  const stale = [
    join(home, 'coordinator', 'staging', '01FAKESTALEQUERY000000000'),
    join(home, 'cache', 'pool-0', 'staging', 'write-fakestale01'),
    join(home, 'cache', 'pool-1', 'partials', 'q-f0-fake.parquet'),
    join(home, 'control', 'results', 'rows-fake.ndjson'),
  ];
  for (const path of stale) {
    if (path.endsWith('.parquet') || path.endsWith('.ndjson')) {
      mkdirSync(join(path, '..'), { recursive: true });
      writeFileSync(path, 'x'.repeat(4096));
    } else {
      mkdirSync(path, { recursive: true });
      writeFileSync(join(path, 'part-0.parquet'), 'x'.repeat(65536));
    }
    utimesSync(path, past, past);
  }

  // Live: a real process that registers in the home (as `puffindb query` does) and then
  // creates its own staging, and is still running when the server starts.
  const live = join(home, 'coordinator', 'staging', '01LIVEQUERYOFANOTHERPROC0');
  const script = `
    const { registerProcess } = await import(${JSON.stringify(LEFTOVERS)});
    const { mkdirSync, writeFileSync } = await import('node:fs');
    registerProcess(${JSON.stringify(home)}, 'test');
    mkdirSync(${JSON.stringify(live)}, { recursive: true });
    writeFileSync(${JSON.stringify(join(live, 'part-0.parquet'))}, 'live');
    console.log('ready');
    setInterval(() => {}, 1000);`;
  // The start-up cleanup keeps entries changed up to 2 s (CLOCK_SLACK_MS, runtime/exec/leftovers.ts)
  // before the oldest live registration, so the live process registers more than that after the kill.
  await sleep(Math.max(0, killedAt + 2_500 - Date.now()));
  const other: ChildProcess = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the live process did not start in 30 s')), 30_000);
      other.stdout!.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      other.once('exit', (code) => reject(new Error(`the live process exited (${code})`)));
    });
    // A dead process's registration (pid far beyond pid_max) must not protect anything.
    writeFileSync(join(home, 'run', '999999999.json'), JSON.stringify({ pid: 999_999_999, registeredAt: Date.now() - 3_600_000, what: 'dead' }));

    await server.restart();
    for (const path of stale) assert.equal(existsSync(path), false, `stale ${path} was not removed`);
    // Everything the crash left is older than the live process's registration: removed too.
    assert.deepEqual(scratchEntries(home).filter((e) => e !== live), [], `scratch left after the crash (${left.entries} entries)`);
    assert.equal(existsSync(live), true, "a live process's staging was removed");
    assert.equal(existsSync(join(home, 'run', '999999999.json')), false, 'a dead registration was kept');
    assert.match(server.log(), /removed \d+ leftover scratch entries/);
  } finally {
    other.kill('SIGKILL');
  }

  // Orphan data files are not scratch: still listed, so still on disk.
  const orphansAfter = await orphans(home);
  assert.deepEqual(JSON.parse(orphansAfter), JSON.parse(orphansBefore));
  // Every INSERT adds the whole of lineitem: any other count is a half-written table.
  const n = await count();
  assert.equal(n % base, 0, `row count ${n} is not a whole number of inserts of ${base} rows`);
  // The table still takes writes after the crashes.
  const res = await server.query('INSERT INTO li SELECT * FROM lineitem');
  assert.equal(res.status, 200, await res.clone().text());
  assert.equal((await count()) % base, 0);
});
