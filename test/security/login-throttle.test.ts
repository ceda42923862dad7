// Finding 9 of the attack run (issue 11): 1,000 wrong keys in 0.7 s, all 401. Against a real
// serve (default throttle: 20 failures at once, 60 a minute regained): a burst of wrong keys
// from one address turns into 429 with Retry-After, with the number of keys actually
// checked bounded; while throttled the address is refused for a valid key too (otherwise
// 200 against 429 would reveal a right guess); after the wait the valid key works again; and
// another client address is not affected at all.

import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { refusal, serveKey, startServe, type RealServer } from '../helpers/serve.ts';

const BURST = 20;
const PER_MINUTE = 60;

let server: RealServer;
let reader: string;

before(async () => {
  server = await startServe({ env: { PUFFINDB_API_LOGIN_FAILURE_BURST: String(BURST), PUFFINDB_API_LOGIN_FAILURES_PER_MINUTE: String(PER_MINUTE) } });
  reader = await serveKey(server, 'reader');
});
after(() => server?.close());

/** GET a path from a chosen loopback source address (all of 127/8 is loopback on Linux). */
function getFrom(localAddress: string, path: string, key: string): Promise<{ status: number; retryAfter?: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, path, localAddress, headers: { authorization: `Bearer ${key}` }, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] as string | undefined }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

async function waitUntilServed(path: string, key: string, deadlineMs: number): Promise<Response> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const res = await server.call('GET', path, { key });
    if (res.status !== 429 || Date.now() > until) return res;
    const wait = Number(res.headers.get('retry-after') ?? '1');
    await res.body?.cancel();
    await sleep(Math.min(5, wait) * 1000);
  }
}

/**
 * A valid key sent right after a wrong key was answered 429 must be 429 too. The bucket
 * regains one failure every 60/PER_MINUTE s, so on a loaded machine the valid key may
 * legitimately arrive after a refill; such a try is repeated (a fresh wrong key empties the
 * bucket again), and a 200 sooner than one refill after the 429 fails at once.
 */
async function validKeyWhileThrottled(path: string): Promise<Response> {
  const refillMs = 60_000 / PER_MINUTE;
  for (let attempt = 0; attempt < 5; attempt++) {
    let sentAt = 0;
    for (let i = 0; i < BURST * 2; i++) {
      sentAt = Date.now();
      const wrong = await server.call('GET', path, { key: `pdb_wrong-again-${attempt}-${i}-${'z'.repeat(20)}` });
      await wrong.body?.cancel();
      if (wrong.status === 429) break;
      assert.equal(wrong.status, 401);
    }
    const res = await server.call('GET', path, { key: reader });
    const sinceThrottled = Date.now() - sentAt;
    if (res.status === 429) {
      await res.body?.cancel();
      return res;
    }
    assert.ok(sinceThrottled >= refillMs, `${path}: a valid key was served ${sinceThrottled} ms after a 429, sooner than one refill (${refillMs} ms)`);
  }
  assert.fail(`${path}: a valid key was never refused right after a 429`);
}

test('wrong keys from one address are throttled; key checks stay bounded; a valid key works after the wait', async () => {
  const started = Date.now();
  const statuses: number[] = [];
  let retryAfter: string | null = null;
  // 200 wrong keys, 8 at a time, as fast as the server answers.
  for (let i = 0; i < 200; i += 8) {
    const batch = await Promise.all(Array.from({ length: 8 }, (_, j) => server.call('GET', '/v1/tables', { key: `pdb_wrong-guess-${i + j}-${'x'.repeat(20)}` })));
    for (const res of batch) {
      statuses.push(res.status);
      if (res.status === 429) retryAfter ??= res.headers.get('retry-after');
      const e = await refusal(res);
      assert.ok(res.status === 401 || res.status === 429, `${res.status} ${e.code} ${e.message}`);
      if (res.status === 429) assert.match(e.message, /too many failed logins/);
    }
  }
  const elapsedS = (Date.now() - started) / 1000;
  const checked = statuses.filter((s) => s === 401).length;
  const throttled = statuses.filter((s) => s === 429).length;
  assert.ok(throttled > 0, 'some wrong keys were answered 429');
  assert.ok(retryAfter && Number(retryAfter) >= 1, `429 carries Retry-After (${retryAfter})`);
  // Each 401 is one key looked up; the rest were refused before their key was looked at.
  const bound = BURST + Math.ceil((elapsedS * PER_MINUTE) / 60) + 1;
  assert.ok(checked <= bound, `${checked} keys checked in ${elapsedS.toFixed(1)} s; bound ${bound}`);

  // Throttled: the address is refused for the valid key too (no oracle for a right guess),
  // and the Iceberg mount shares the throttle.
  const during = await validKeyWhileThrottled('/v1/tables');
  await validKeyWhileThrottled('/iceberg/v1/config');
  const wait = Number(during.headers.get('retry-after'));
  assert.ok(wait >= 1 && wait <= 60 / PER_MINUTE + 1, `a short wait (${wait} s)`);

  // After the wait, the valid key is served again (successes take nothing from the bucket).
  await sleep(wait * 1000);
  const res = await waitUntilServed('/v1/tables', reader, 10_000);
  assert.equal(res.status, 200, await res.text());
  for (let i = 0; i < 30; i++) {
    const again = await server.call('GET', '/v1/tables', { key: reader });
    assert.equal(again.status, 200, 'a valid key is never throttled by its own successes');
    await again.body?.cancel();
  }
});

test('another client address is not affected by a throttled one', async (t) => {
  try {
    await getFrom('127.0.0.2', '/v1/health', reader);
  } catch (err) {
    t.skip(`cannot send from 127.0.0.2 here: ${(err as Error).message}`);
    return;
  }
  // Throttle 127.0.0.3 ...
  let throttled = false;
  for (let i = 0; i < BURST + 10 && !throttled; i++) throttled = (await getFrom('127.0.0.3', '/v1/tables', `pdb_wrong-${i}-${'y'.repeat(20)}`)).status === 429;
  assert.ok(throttled, '127.0.0.3 was throttled');
  const refused = await getFrom('127.0.0.3', '/v1/tables', reader);
  assert.equal(refused.status, 429);
  assert.ok(refused.retryAfter);
  // ... while 127.0.0.2 with the real key is served at once.
  assert.equal((await getFrom('127.0.0.2', '/v1/tables', reader)).status, 200);
});

test('requests without any key are 401 and do not use up the address', async () => {
  for (let i = 0; i < BURST * 2; i++) {
    const res = await server.call('GET', '/v1/tables');
    assert.equal(res.status, 401);
    await res.body?.cancel();
  }
  const ok = await waitUntilServed('/v1/tables', reader, 10_000);
  assert.equal(ok.status, 200);
});
