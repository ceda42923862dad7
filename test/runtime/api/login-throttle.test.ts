// The failed-login throttle in isolation, on a fake clock: the burst, the refill, the wait
// it names, address grouping (IPv4-mapped, IPv6 by /64) and the bound on memory.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PuffinError } from '../../../runtime/errors.ts';
import { addressGroup, LoginThrottle } from '../../../runtime/api/login-throttle.ts';

function throttled(fn: () => void): number | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    assert.ok(err instanceof PuffinError && err.code === 'rate_limited', String(err));
    return err.details?.retryAfterSeconds as number;
  }
}

test('burst failures pass, then the address waits one refill interval', () => {
  let now = 0;
  const t = new LoginThrottle({ burst: 3, perMinute: 6, now: () => now });
  for (let i = 0; i < 3; i++) {
    assert.equal(throttled(() => t.check('10.0.0.1')), undefined);
    t.fail('10.0.0.1');
  }
  assert.equal(throttled(() => t.check('10.0.0.1')), 10, '6 a minute: one every 10 s');
  assert.equal(throttled(() => t.check('10.0.0.2')), undefined, 'other addresses are unaffected');
  now = 9_000;
  assert.equal(throttled(() => t.check('10.0.0.1')), 1);
  now = 10_000;
  assert.equal(throttled(() => t.check('10.0.0.1')), undefined);
});

test('guard counts only failed logins that presented a key, and refuses before authenticating', async () => {
  const t = new LoginThrottle({ burst: 2, perMinute: 60, now: () => 0 });
  let checks = 0;
  const wrong = () => {
    checks++;
    return Promise.reject(new PuffinError('unauthorized', 'the API key is not valid'));
  };
  await assert.rejects(t.guard('a', false, wrong), /not valid/);
  await assert.rejects(t.guard('a', false, wrong), /not valid/);
  await assert.rejects(t.guard('a', true, wrong), /not valid/);
  await assert.rejects(t.guard('a', true, wrong), /not valid/);
  await assert.rejects(t.guard('a', true, wrong), (err: PuffinError) => err.code === 'rate_limited');
  await assert.rejects(t.guard('a', true, () => Promise.resolve('ok')), (err: PuffinError) => err.code === 'rate_limited');
  assert.equal(checks, 4, 'no key looked at while throttled');
  await assert.rejects(t.guard('b', true, () => Promise.reject(new PuffinError('unavailable', 'redis down'))), /redis down/);
  assert.equal(await t.guard('b', true, () => Promise.resolve('ok')), 'ok');
});

test('addresses are grouped as an attacker gets them', () => {
  assert.equal(addressGroup('::ffff:127.0.0.1'), '127.0.0.1');
  assert.equal(addressGroup('192.0.2.7'), '192.0.2.7');
  assert.equal(addressGroup('2001:db8:0:1:aaaa::1'), '2001:db8:0:1::/64');
  assert.equal(addressGroup('2001:0db8:0000:0001:ffff:ffff:ffff:ffff'), '2001:db8:0:1::/64');
  assert.equal(addressGroup('2001:db8::1'), '2001:db8:0:0::/64');
  assert.equal(addressGroup('::1'), '0:0:0:0::/64');
  assert.equal(addressGroup(undefined), 'unknown');
});

test('memory is bounded: many addresses evict the least recently failing', () => {
  let now = 0;
  const t = new LoginThrottle({ burst: 1, perMinute: 1, maxAddresses: 100, now: () => now });
  for (let i = 0; i < 10_000; i++) {
    now++;
    t.fail(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
  }
  assert.equal(t.size, 100);
  assert.ok(throttled(() => t.check('10.0.39.15')), 'the most recent addresses are still throttled'); // i = 9999
  assert.equal(throttled(() => t.check('10.0.0.0')), undefined, 'the oldest was forgotten');
});

test('a refilled bucket is forgotten; burst 0 turns the throttle off', () => {
  let now = 0;
  const t = new LoginThrottle({ burst: 2, perMinute: 60, now: () => now });
  t.fail('a');
  assert.equal(t.size, 1);
  now = 5_000;
  t.check('a');
  assert.equal(t.size, 0);
  const off = new LoginThrottle({ burst: 0, perMinute: 60 });
  for (let i = 0; i < 100; i++) off.fail('a');
  assert.equal(throttled(() => off.check('a')), undefined);
  assert.equal(off.size, 0);
});
