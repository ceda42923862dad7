// Finding 4 of issue 11: SIGKILLs of worker processes as they start used to leave the pool
// dead for good (every table query 502 until a restart) while /v1/health said 200. Here
// every new worker process of a real `puffindb serve` is killed the moment it appears, eight
// times; meanwhile health must say 503 with the reason and queries must get 503
// `unavailable` (never 502 or 500), and once the killing stops the pool must come back by
// itself: health 200 and correct answers, without a restart.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { startServe, type RealServer } from '../helpers/serve.ts';

/** At least this many kills; the killing goes on (to 20 at most, 12 s at most) until a query has seen the 503. */
const KILLS = 8;
const MAX_KILLS = 20;
const KILL_PHASE_MS = 12_000;
const RECOVERY_MS = 60_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Health {
  status: string;
  state: string;
  workers: string;
  error?: { code: string; message: string };
}

let server: RealServer;
let expected: number;
before(async () => {
  // Two worker processes: the tests kill one while the other serves.
  server = await startServe({ demoScale: 0.01, env: { PUFFINDB_WORKERS: '2' } });
  const res = await server.query('SELECT count(*) AS n FROM lineitem');
  assert.equal(res.status, 200, await res.clone().text());
  expected = Number(((await res.json()) as { rows: { n: number }[] }).rows[0].n);
  assert.ok(expected > 0);
});
after(() => server?.close());

/** A query the result cache cannot answer (its text differs each time), and its expected count. */
function freshCount(i: number): string {
  return `SELECT count(*) AS n FROM lineitem WHERE l_orderkey <> -${i}`;
}

/**
 * The server's worker processes (pool-child.ts); its SQL runner processes (the reduce step's
 * sandbox, sql-runner-child.ts) have their own restart rules and are left alone here.
 */
async function workerPids(): Promise<number[]> {
  return (await server.workerPids()).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('pool-child');
    } catch {
      return false; // gone already
    }
  });
}

async function health(): Promise<{ status: number; body: Health }> {
  const res = await server.call('GET', '/v1/health', { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: (await res.json()) as Health };
}

test('workers killed as they start: health and queries say 503 meanwhile, and the pool recovers by itself', async () => {
  const seen = new Set<number>(await workerPids());
  let kills = 0;
  // The pool's children alive now are killed first, then every one that replaces them.
  for (const pid of seen) {
    process.kill(pid, 'SIGKILL');
    kills++;
  }
  const healthSeen: { status: number; body: Health }[] = [];
  const queryStatuses: { status: number; code?: string; message?: string; n?: number }[] = [];
  let killing = true;
  // Observers while the pool is being killed: health every 100 ms, and a fresh query every
  // 300 ms (not waiting for the previous one, bounded in number).
  const healthLoop = (async () => {
    while (killing) {
      healthSeen.push(await health());
      await sleep(100);
    }
  })();
  const queries: Promise<void>[] = [];
  const queryLoop = (async () => {
    for (let i = 1; killing && i <= 100; i++) {
      queries.push(
        (async () => {
          const res = await server.query(freshCount(i), undefined, { timeoutMs: 30_000 });
          const body = JSON.parse(await res.text()) as { error?: { code: string; message: string }; rows?: { n: number }[] };
          queryStatuses.push({ status: res.status, code: body.error?.code, message: body.error?.message, n: body.rows ? Number(body.rows[0].n) : undefined });
        })(),
      );
      await sleep(300);
    }
  })();

  const killStarted = Date.now();
  const refused = () => queryStatuses.some((q) => q.status === 503);
  while ((kills < KILLS || (!refused() && kills < MAX_KILLS)) && Date.now() - killStarted < KILL_PHASE_MS) {
    for (const pid of await workerPids()) {
      if (seen.has(pid)) continue;
      seen.add(pid);
      try {
        process.kill(pid, 'SIGKILL');
        kills++;
      } catch {
        // already gone
      }
    }
    await sleep(20);
  }
  // Health is looked at once more right after the last kill, while the slots back off.
  healthSeen.push(await health());
  const stoppedAt = Date.now();
  const killPhaseMs = stoppedAt - killStarted;
  killing = false;
  await Promise.all([healthLoop, queryLoop]);
  await Promise.all(queries);
  assert.ok(kills >= KILLS, `only ${kills} worker processes appeared to kill in ${KILL_PHASE_MS} ms`);

  // The server never died, and no query answered anything but 200 or a clear 503.
  process.kill(server.pid(), 0); // throws if the server itself died
  for (const q of queryStatuses) {
    assert.ok(q.status === 200 || q.status === 503, `a query during the kills answered ${q.status} ${q.code}: ${q.message}`);
    if (q.status === 503) {
      assert.equal(q.code, 'unavailable');
      assert.match(q.message ?? '', /no worker process is running/);
    } else {
      assert.equal(q.n, expected, 'a query answered during the kills answered correctly');
    }
  }
  const degraded = healthSeen.filter((h) => h.status === 503);
  assert.ok(degraded.length > 0, `health never said 503 during ${kills} kills: ${JSON.stringify(healthSeen.map((h) => h.status))}`);
  for (const h of degraded) {
    assert.equal(h.body.status, 'degraded');
    assert.match(h.body.workers, /no worker process is running/);
    assert.equal(h.body.error?.code, 'unavailable');
  }
  for (const h of healthSeen.filter((x) => x.status === 200)) assert.equal(h.body.workers, 'ok');

  // Recovery without a restart: health 200, then correct answers.
  let recoveredMs = -1;
  for (let i = 0; Date.now() - stoppedAt < RECOVERY_MS; i++) {
    const h = await health();
    if (h.status === 200) {
      assert.deepEqual({ status: h.body.status, workers: h.body.workers }, { status: 'ok', workers: 'ok' });
      recoveredMs = Date.now() - stoppedAt;
      break;
    }
    await sleep(100);
  }
  assert.ok(recoveredMs >= 0, `health still 503 ${RECOVERY_MS} ms after the kills stopped: ${JSON.stringify((await health()).body)}`);
  for (let i = 0; i < 3; i++) {
    const res = await server.query(freshCount(1_000 + i));
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(Number(((await res.json()) as { rows: { n: number }[] }).rows[0].n), expected);
  }
  const fresh = await workerPids();
  assert.equal(fresh.filter((pid) => seen.has(pid)).length, 0, 'the workers serving now are new processes');
  console.log(`# ${kills} kills in ${killPhaseMs} ms; health 503 in ${degraded.length} of ${healthSeen.length} looks; ${queryStatuses.filter((q) => q.status === 503).length} of ${queryStatuses.length} queries 503; healthy ${recoveredMs} ms after the last kill`);
});

test('one worker killed while idle costs no query: the other serves and the slot is replaced at once', async () => {
  const [victim] = await workerPids();
  assert.ok(victim);
  process.kill(victim, 'SIGKILL');
  for (let i = 0; i < 5; i++) {
    const res = await server.query(freshCount(2_000 + i));
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(Number(((await res.json()) as { rows: { n: number }[] }).rows[0].n), expected);
  }
  assert.equal((await health()).status, 200);
});

/** The server's SQL runner processes (sql-runner-child.ts: reduce steps and planning). */
async function runnerPids(): Promise<number[]> {
  return (await server.workerPids()).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('sql-runner-child');
    } catch {
      return false;
    }
  });
}

test('SQL runner processes killed again and again: health says 503 naming them, and recovers by itself', async () => {
  assert.equal((await health()).status, 200);
  const seen = new Set<number>();
  const healthSeen: { status: number; body: Health }[] = [];
  let kills = 0;
  for (const started = Date.now(); Date.now() - started < KILL_PHASE_MS && (kills < KILLS || !healthSeen.some((h) => h.status === 503)); ) {
    for (const pid of await runnerPids()) {
      if (seen.has(pid)) continue;
      seen.add(pid);
      try {
        process.kill(pid, 'SIGKILL');
        kills++;
      } catch {
        // already gone
      }
    }
    // A query now and then makes the runners start children to kill (the reduce step).
    if (kills % 3 === 0) await server.query(freshCount(3_000 + kills)).then((r) => r.text(), () => undefined);
    healthSeen.push(await health());
    await sleep(20);
  }
  const degraded = healthSeen.filter((h) => h.status === 503);
  assert.ok(degraded.length > 0, `health never said 503 during ${kills} runner kills`);
  for (const h of degraded) {
    assert.equal(h.body.status, 'degraded');
    assert.match(h.body.workers, /no SQL runner process is running: \d+ consecutive failure\(s\)/);
  }
  let recovered = false;
  for (const stopped = Date.now(); !recovered && Date.now() - stopped < RECOVERY_MS; ) {
    recovered = (await health()).status === 200;
    if (!recovered) await sleep(100);
  }
  assert.ok(recovered, `health still 503 after the runner kills stopped: ${JSON.stringify((await health()).body)}`);
  const res = await server.query(freshCount(4_000));
  assert.equal(res.status, 200, await res.clone().text());
  assert.equal(Number(((await res.json()) as { rows: { n: number }[] }).rows[0].n), expected);
});
