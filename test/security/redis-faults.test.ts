// Finding 7 of issue 11, Redis faults, against a real `puffindb serve` over a real
// redis-server:
// - frozen (SIGSTOP) while clients keep sending: requests in flight and new ones answer 503
//   `unavailable` (or their result) within FREEZE_BOUND_MS, never hang; once Redis has been
//   seen not answering, requests are refused at once; thawed (SIGCONT), the service is back
//   by itself. A query computing through the freeze answers when its work is done.
// - restarted empty: the configured admin key works again at once (never a 401), other keys
//   are gone (401), and health says the state store lost its data; a configured admin key
//   deleted on purpose (the store kept its data) stays deleted.
// The store itself is checked first: every call is bounded while Redis is frozen, blocking
// reads included.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RedisStateStore } from '../../runtime/state/redis-store.ts';
import { startRedisServer, type TestRedis } from '../helpers/redis-server.ts';
import { refusal, serveKey, startServe, type RealServer } from '../helpers/serve.ts';

/**
 * In-flight and new requests must all have answered this long after the freeze. The worst
 * case by design: a command sent just before the store is known frozen (5 s after the first
 * unanswered one) waits out its own 5 s timeout; plus a second for scheduling on a loaded
 * machine (a clean-clone run answered one at 10,001 ms).
 */
const FREEZE_BOUND_MS = 11_000;
/** Once Redis is known not to answer, a request is refused within this. */
const FAST_REFUSAL_MS = 2_000;
/** After the thaw, a query succeeds again within this. */
const RECOVERY_BOUND_MS = 10_000;
/** How long Redis stays frozen while clients keep sending. */
const FREEZE_FOR_MS = 9_000;
/** By then a command has timed out (5 s) and Redis is known frozen. */
const TRIPPED_AFTER_MS = 6_500;
/** A query that computes for a few seconds without touching Redis (orders is 15,000 rows at scale 0.01). */
const SLOW_SQL = 'SELECT count(*) AS n FROM orders a, orders b WHERE a.o_totalprice < b.o_totalprice';
const QUICK_SQL = 'SELECT l_returnflag, count(*) AS n FROM lineitem GROUP BY 1 ORDER BY 1';

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Answer {
  status: number;
  ms: number;
  code?: string;
  text: string;
}

/** Send, and time the answer from `since`; a transport failure is an answer of status 0. */
async function timed(since: number, send: () => Promise<Response>): Promise<Answer> {
  try {
    const res = await send();
    const text = await res.text();
    let code: string | undefined;
    try {
      code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
    } catch {
      code = undefined;
    }
    return { status: res.status, ms: Date.now() - since, code, text: text.slice(0, 300) };
  } catch (err) {
    return { status: 0, ms: Date.now() - since, text: String(err) };
  }
}

interface Sent {
  sentAt: number;
  answeredAt?: number;
  answer: Answer;
}

let redis: TestRedis;
before(async () => {
  redis = await startRedisServer();
});
after(async () => {
  redis?.thaw();
  await redis?.close();
});

describe('the Redis state store under a frozen redis-server', () => {
  test('every call is bounded; after one timeout calls fail at once; thawed, it is back', async () => {
    const store = await RedisStateStore.connect({ url: redis.url, connectTimeoutMs: 1_000, commandTimeoutMs: 1_000, keyPrefix: 'freeze-test:' });
    try {
      await store.ping();
      redis.freeze();
      try {
        let t = Date.now();
        await assert.rejects(store.getQuery('01ARZ3NDEKTSV4RRFFQ69G5FAV'), { code: 'unavailable' });
        const first = Date.now() - t;
        assert.ok(first >= 900 && first < 2_500, `the first call waits out its timeout (${first} ms)`);
        assert.equal(store.stalled, true);
        t = Date.now();
        await assert.rejects(store.ping(), (err: Error & { code?: string }) => err.code === 'unavailable' && /has not answered/.test(err.message));
        await assert.rejects(store.readCompletions('q1', null, { blockMs: 500 }), { code: 'unavailable' });
        await assert.rejects(store.listQueries(), { code: 'unavailable' });
        assert.ok(Date.now() - t < 200, `later calls fail at once (${Date.now() - t} ms)`);
      } finally {
        redis.thaw();
      }
      const thawed = Date.now();
      for (;;) {
        try {
          await store.ping();
          break;
        } catch {
          assert.ok(Date.now() - thawed < 5_000, 'the store is back within 5 s of the thaw');
          await pause(50);
        }
      }
      assert.equal(store.stalled, false);
      const batch = await store.readCompletions('q1', null, { blockMs: 50 });
      assert.deepEqual(batch.items, []);
    } finally {
      await store.close();
    }
  });

  test('frozen past two timeouts: the store reconnects, fails fast meanwhile, and is back after the thaw', async () => {
    const store = await RedisStateStore.connect({ url: redis.url, connectTimeoutMs: 1_000, commandTimeoutMs: 1_000, keyPrefix: 'freeze-test:' });
    try {
      await store.putApiKey({ id: 'k1', name: 'k', role: 'reader', hash: 'a'.repeat(64), createdAt: 1 });
      redis.freeze();
      try {
        await assert.rejects(store.ping(), { code: 'unavailable' });
        // Its PINGs time out too: it drops the connection for a new one (which cannot get ready).
        const until = Date.now() + 3_500;
        while (Date.now() < until) {
          const t = Date.now();
          await assert.rejects(store.findApiKeyByHash('a'.repeat(64)), { code: 'unavailable' });
          assert.ok(Date.now() - t < 200, 'fails fast all along');
          await pause(100);
        }
      } finally {
        redis.thaw();
      }
      const thawed = Date.now();
      for (;;) {
        try {
          assert.equal((await store.findApiKeyByHash('a'.repeat(64)))?.id, 'k1');
          break;
        } catch (err) {
          assert.ok(Date.now() - thawed < 5_000, `the store is back within 5 s of the thaw: ${String(err)}`);
          await pause(50);
        }
      }
      console.log(JSON.stringify({ storeBackAfterLongFreezeThawMs: Date.now() - thawed }));
    } finally {
      await store.close();
    }
  });
});

describe('Redis refusing commands for now (memory full, a demoted primary)', () => {
  test("OOM and READONLY replies are 'unavailable' (503), not internal errors", async () => {
    const full = await startRedisServer({ args: ['--maxmemory', '2mb', '--maxmemory-policy', 'noeviction'] });
    const primary = await startRedisServer();
    const store = await RedisStateStore.connect({ url: full.url, connectTimeoutMs: 1_000, commandTimeoutMs: 2_000 });
    try {
      const big = { uri: undefined, body: 'x'.repeat(256 * 1024), contentType: 'text/plain', rows: 1, createdAt: 1 };
      let refused: unknown;
      for (let i = 0; i < 64 && !refused; i++) await store.putCachedResult(`big-${i}`, big, 60_000).catch((err: unknown) => (refused = err));
      assert.equal((refused as { code?: string })?.code, 'unavailable', String(refused));
      assert.match(String((refused as Error).message), /OOM/);

      // Now a replica (as a primary demoted by a failover is): writes are refused READONLY.
      const admin = await RedisStateStore.connect({ url: full.url, connectTimeoutMs: 1_000, commandTimeoutMs: 2_000, keyPrefix: 'x:' });
      await (admin as unknown as { client: { call(...a: string[]): Promise<unknown> } }).client.call('REPLICAOF', '127.0.0.1', String(primary.port));
      await admin.close();
      await assert.rejects(store.compareAndSwap('v', undefined, 'x'), (err: Error & { code?: string }) => err.code === 'unavailable' && /READONLY/.test(err.message));
    } finally {
      await store.close();
      await full.close();
      await primary.close();
    }
  });
});

describe('puffindb serve over a redis-server that freezes or restarts empty', () => {
  let server: RealServer;
  before(async () => {
    // Rate limiting off: eight clients send as fast as answers come, and a fast machine would
    // otherwise meet the reader key's 50 requests per second before it meets the freeze.
    server = await startServe({ demoScale: 0.01, env: { REDIS_URL: redis.url, PUFFINDB_API_RATE_PER_SECOND: '0' } });
  });
  after(() => server?.close());

  test('frozen: in-flight and new requests answer 503 within the bound; thawed, it serves again', async () => {
    assert.equal((await server.query(QUICK_SQL)).status, 200);
    const reader = await serveKey(server, 'reader');
    const submitted = await server.call('POST', '/v1/queries', { key: reader, body: { sql: QUICK_SQL } });
    assert.equal(submitted.status, 202, await submitted.clone().text());
    const { queryId } = (await submitted.json()) as { queryId: string };

    // Clients that keep sending, before and through the freeze: whatever is in flight when
    // Redis stops is in flight by construction, at whatever step it is (auth, record, plan,
    // compute, result, status).
    const sent: Sent[] = [];
    let sending = true;
    const client = async (send: () => Promise<Response>): Promise<void> => {
      while (sending) {
        const entry: Sent = { sentAt: Date.now(), answer: undefined as unknown as Answer };
        sent.push(entry);
        entry.answer = await timed(entry.sentAt, send);
        entry.answeredAt = Date.now();
        if (entry.answer.status !== 200) await pause(20);
      }
    };
    const clients = [
      client(() => server.query(QUICK_SQL, reader)),
      client(() => server.query(QUICK_SQL, reader, { fragments: 3 })),
      client(() => server.query(`SELECT count(*) AS n FROM nation WHERE n_nationkey < ${Math.floor(Math.random() * 25)}`)),
      client(() => server.call('GET', `/v1/queries/${queryId}`, { key: reader })),
      client(() => server.call('POST', '/v1/queries', { key: reader, body: { sql: QUICK_SQL } })),
      client(() => server.call('GET', '/v1/health')),
      // Two more, so that at least three are mid-request at the freeze on a loaded machine too.
      client(() => server.query(`SELECT count(*) AS n FROM region WHERE r_regionkey < ${Math.floor(Math.random() * 5)}`, reader)),
      client(() => server.call('POST', '/v1/explain', { key: reader, body: { sql: QUICK_SQL } })),
    ];
    // One query that computes for seconds: it answers when its work is done, 503 then.
    const slowSent = Date.now();
    const slow = timed(slowSent, () => server.query(SLOW_SQL, reader, { timeoutMs: 120_000 }));
    await pause(1_500);
    redis.freeze();
    const frozenAt = Date.now();
    try {
      await pause(FREEZE_FOR_MS);
      sending = false;
      await Promise.all(clients);
    } finally {
      redis.thaw();
    }
    const thawedAt = Date.now();

    const inFlight = sent.filter((e) => e.sentAt < frozenAt && (e.answeredAt ?? Infinity) > frozenAt);
    const during = sent.filter((e) => e.sentAt >= frozenAt);
    const late = during.filter((e) => e.sentAt >= frozenAt + TRIPPED_AFTER_MS);
    const ms = (e: Sent) => (e.answeredAt ?? Infinity) - Math.max(e.sentAt, frozenAt);
    console.log(JSON.stringify({
      inFlight: inFlight.map((e) => [e.answer.status, ms(e)]),
      sentDuringFreeze: during.length,
      slowestDuringFreezeMs: Math.max(...during.map(ms)),
      slowestAfterTripMs: Math.max(...late.map(ms)),
      sentAfterTrip: late.length,
    }));
    assert.ok(inFlight.length >= 3, `requests were in flight at the freeze (${inFlight.length})`);
    assert.ok(late.length >= 3, `requests were sent once Redis was known frozen (${late.length})`);
    for (const e of [...inFlight, ...during]) {
      assert.ok(ms(e) <= FREEZE_BOUND_MS, `answered ${ms(e)} ms after the freeze or its sending (bound ${FREEZE_BOUND_MS}): ${e.answer.status} ${e.answer.text}`);
    }
    // In flight: 503 `unavailable`, or the answer if it got through before Redis was needed
    // (200, or 202 for a submission recorded just before the freeze).
    for (const e of inFlight) {
      assert.ok([200, 202].includes(e.answer.status) || (e.answer.status === 503 && e.answer.code === 'unavailable'), `in flight: ${e.answer.status} ${e.answer.text}`);
    }
    assert.ok(inFlight.some((e) => e.answer.status === 503), 'some in-flight request needed Redis');
    for (const e of during) {
      assert.equal(e.answer.status, 503, e.answer.text);
      assert.ok(e.answer.code === 'unavailable' || /"status":"degraded"/.test(e.answer.text), e.answer.text);
    }
    // Once Redis is known not to answer, requests are refused at once, health included.
    for (const e of late) assert.ok(ms(e) < FAST_REFUSAL_MS, `refused in ${ms(e)} ms once Redis is known frozen: ${e.answer.text}`);
    const health = late.find((e) => e.answer.text.includes('"status":"degraded"'));
    assert.ok(health, 'health was asked during the freeze');
    assert.match(health.answer.text, /"state":"Redis at [^"]+ is unavailable[^"]*has not answered for/);

    // Thawed: the service comes back by itself.
    const refusals = new Map<string, number>();
    for (;;) {
      const res = await server.query('SELECT count(*) AS n FROM nation', reader);
      if (res.status === 200) {
        assert.deepEqual(((await res.json()) as { rows: { n: number }[] }).rows.map((r) => Number(r.n)), [25]);
        break;
      }
      const text = await res.text();
      const what = `${res.status} ${text.replace(/[0-9.]+ s\b/g, 'N s').slice(0, 200)}`;
      refusals.set(what, (refusals.get(what) ?? 0) + 1);
      assert.ok(Date.now() - thawedAt < RECOVERY_BOUND_MS, `serving again within ${RECOVERY_BOUND_MS} ms of the thaw (${res.status} ${text})`);
      await pause(50);
    }
    const recoveredMs = Date.now() - thawedAt;
    console.log(JSON.stringify({ refusedAfterThaw: [...refusals] }));
    const h = await server.call('GET', '/v1/health');
    assert.equal(h.status, 200, await h.clone().text());
    const s = await server.call('GET', `/v1/queries/${queryId}`, { key: reader });
    assert.equal(s.status, 200, await s.clone().text());

    // The slow query answered when its work was done (bounded by its own deadline), never hung.
    const slowAnswer = await slow;
    console.log(JSON.stringify({ recoveredAfterThawMs: recoveredMs, slowQuery: [slowAnswer.status, slowAnswer.ms, slowAnswer.text.slice(0, 160)] }));
    assert.ok(slowAnswer.status === 200 || slowAnswer.status === 503, slowAnswer.text);
  });

  test('restarted empty: the configured admin key works at once, other keys are gone, health says why', async () => {
    const reader = await serveKey(server, 'reader', 'reader before the restart');
    assert.equal((await server.call('GET', '/v1/tables', { key: reader })).status, 200);

    for (const first of ['admin key', 'health'] as const) {
      await redis.stop();
      await redis.start(); // empty: no persistence
      const restartedAt = Date.now();
      if (first === 'health') {
        // Health first: it finds the loss, says so, and puts the admin key back.
        let h: Answer;
        do {
          h = await timed(restartedAt, () => server.call('GET', '/v1/health'));
          if (h.status === 503 && /lost its data/.test(h.text)) break;
          assert.ok(h.ms < 10_000, `health reports the loss within 10 s: ${h.status} ${h.text}`);
          await pause(50);
        } while (true);
      }
      // The admin key: 503 while reconnecting is fine, 401 never.
      const seen: number[] = [];
      for (;;) {
        const res = await server.call('GET', '/v1/keys', { key: server.adminKey });
        seen.push(res.status);
        if (res.status === 200) break;
        assert.ok(res.status === 503, `the configured admin key after an empty restart (${first} first): ${res.status} ${await res.text()}`);
        assert.ok(Date.now() - restartedAt < 10_000, 'the admin key works within 10 s');
        await pause(50);
      }
      console.log(JSON.stringify({ emptyRestart: first, adminKeyWorkedAfterMs: Date.now() - restartedAt, statuses: seen }));

      const lost = await refusal(await server.call('GET', '/v1/tables', { key: reader }));
      assert.equal(lost.status, 401, 'a key made before the restart is gone with the data');
      const health = await server.call('GET', '/v1/health');
      const text = await health.text();
      assert.equal(health.status, 503, text);
      const body = JSON.parse(text) as { status: string; state: string };
      assert.equal(body.status, 'degraded');
      assert.match(body.state, /lost its data/);
      assert.match(body.state, /re-create the keys/);
      // Working again: a query runs (503 while its pieces reconnect is fine, within 10 s).
      for (;;) {
        const res = await server.query('SELECT count(*) AS n FROM nation');
        if (res.status === 200) break;
        const text = await res.text();
        assert.equal(res.status, 503, `a query after an empty restart: ${res.status} ${text}`);
        assert.ok(Date.now() - restartedAt < 10_000, `a query runs within 10 s of the restart: ${text}`);
        await pause(50);
      }
    }
  });

  test('the configured admin key, deleted while the store keeps its data, stays deleted', async () => {
    const other = await serveKey(server, 'admin', 'second admin');
    const del = await server.call('DELETE', '/v1/keys/bootstrap-admin', { key: other });
    assert.equal(del.status, 200, await del.clone().text());
    assert.equal((await refusal(await server.call('GET', '/v1/keys', { key: server.adminKey }))).status, 401);
    assert.equal((await refusal(await server.call('GET', '/v1/keys', { key: server.adminKey }))).status, 401);
  });
});
