// The seed marker and StateSeed (runtime/api/auth.ts) over an in-memory store that can be
// emptied, as a Redis restarted without persistence is: the configured admin key comes back
// at once (compared by hash), health says what was lost, a key deleted while the store kept
// its data stays deleted, and a process that never saw the store seeded does not cry loss.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { bootstrapAdminKey, BOOTSTRAP_KEY_ID, hashSecret, StateSeed } from '../../../runtime/api/auth.ts';
import { MemoryStateStore } from '../../../runtime/state/memory-store.ts';
import { readSeedMarker } from '../../../runtime/state/seed-marker.ts';
import type { StateStore } from '../../../runtime/state/state-store.ts';

const ADMIN = 'configured-admin-key-0123456789';

/** One StateStore whose contents can be thrown away at once (empty()). */
function emptiable(): { state: StateStore; empty(): void } {
  let current = new MemoryStateStore();
  const state = new Proxy({} as StateStore, {
    get: (_, name) => {
      const value = (current as unknown as Record<string | symbol, unknown>)[name];
      return typeof value === 'function' ? value.bind(current) : value;
    },
  });
  return { state, empty: () => void (current = new MemoryStateStore()) };
}

describe('StateSeed', () => {
  test('emptied: the configured admin key is put back on its first use; health reports the loss for a while', async () => {
    const { state, empty } = emptiable();
    await bootstrapAdminKey(state, ADMIN);
    const losses: string[] = [];
    const seed = new StateSeed(state, ADMIN, { onLoss: (m) => losses.push(m) });
    assert.equal(await seed.problem(), undefined);
    assert.equal((await readSeedMarker(state))?.lostAt, undefined);

    empty();
    assert.equal(await state.findApiKeyByHash(hashSecret(ADMIN)), undefined);
    assert.equal(await seed.recover(hashSecret('some-other-key-0123456789')), undefined, 'another key is not put back');
    const recovered = await Promise.all(Array.from({ length: 5 }, () => seed.recover(hashSecret(ADMIN))));
    for (const r of recovered) assert.equal(r?.id, BOOTSTRAP_KEY_ID);
    assert.equal(recovered[0]?.role, 'admin');
    assert.equal(losses.length, 1, 'one loss, told once');
    assert.match(losses[0], /lost its data/);
    const marker = await readSeedMarker(state);
    assert.equal(typeof marker?.lostAt, 'number');

    const problem = await seed.problem();
    assert.equal(problem?.code, 'unavailable');
    assert.match(problem!.message, /lost its data.*the configured admin key was put back.*re-create the keys/);
    // Another server over the same store reports it too (the time of the loss is in the marker).
    assert.match((await new StateSeed(state, ADMIN).problem())?.message ?? '', /lost its data/);
    // After the report window, health is ok again.
    assert.equal(await new StateSeed(state, ADMIN, { lossReportMs: 0 }).problem(), undefined);
  });

  test('emptied: health finds the loss first and puts the admin key back', async () => {
    const { state, empty } = emptiable();
    await bootstrapAdminKey(state, ADMIN);
    const seed = new StateSeed(state, ADMIN, { onLoss: () => undefined });
    empty();
    assert.match((await seed.problem())?.message ?? '', /lost its data/);
    assert.equal((await state.findApiKeyByHash(hashSecret(ADMIN)))?.role, 'admin');
  });

  test('the configured key deleted while the store kept its data stays deleted', async () => {
    const { state } = emptiable();
    await bootstrapAdminKey(state, ADMIN);
    const seed = new StateSeed(state, ADMIN);
    assert.equal(await state.deleteApiKey(BOOTSTRAP_KEY_ID), true);
    assert.equal(await seed.recover(hashSecret(ADMIN)), undefined);
    assert.equal(await seed.problem(), undefined);
  });

  test('without a configured admin key nothing is put back, and health stays degraded', async () => {
    const { state, empty } = emptiable();
    await bootstrapAdminKey(state, undefined);
    const losses: string[] = [];
    const seed = new StateSeed(state, undefined, { onLoss: (m) => losses.push(m) });
    empty();
    for (let i = 0; i < 3; i++) assert.match((await seed.problem())?.message ?? '', /no admin key is configured/);
    assert.equal(losses.length, 1);
    assert.deepEqual(await state.listApiKeys(), []);
  });

  test('a process that never saw the store seeded takes an empty store as new', async () => {
    const { state } = emptiable();
    const seed = new StateSeed(state, ADMIN);
    assert.equal(await seed.problem(), undefined);
    assert.ok(await readSeedMarker(state), 'it seeds the marker');
  });

  test('an unreachable store is the problem, with its own error', async () => {
    const state = new MemoryStateStore();
    await state.close();
    const broken = new Proxy(state, { get: (t, n) => (n === 'ping' ? async () => Promise.reject(new Error('gone')) : (t as unknown as Record<string | symbol, unknown>)[n]) });
    assert.match((await new StateSeed(broken, ADMIN).problem())?.message ?? '', /gone/);
  });
});
