// The Redis PointerStore against a real redis-server: compare-and-swap semantics, names
// stored lower-case, and a clear error when Redis is unreachable.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PuffinError } from '../../runtime/errors.ts';
import { RedisPointerStore } from '../../runtime/catalog/iceberg/redis-pointer-store.ts';
import { freePort, startRedisServer, type TestRedis } from '../helpers/redis-server.ts';

describe('RedisPointerStore on a real redis-server', () => {
  let redis: TestRedis;
  let store: RedisPointerStore;
  before(async () => {
    redis = await startRedisServer();
    store = RedisPointerStore.connect(redis.url, { key: 'test:pointers' });
  });
  after(async () => {
    await store?.close();
    await redis?.close();
  });

  test('create, swap, refuse stale swaps, list and remove', async () => {
    assert.equal(await store.get('Db.Trips'), undefined);
    assert.equal(await store.compareAndSwap('Db.Trips', undefined, 'file:///m/1.json'), true);
    assert.equal(await store.compareAndSwap('db.trips', undefined, 'file:///m/x.json'), false, 'create refuses an existing table');
    assert.equal(await store.get('db.trips'), 'file:///m/1.json');
    assert.equal(await store.compareAndSwap('db.trips', 'file:///m/0.json', 'file:///m/2.json'), false, 'a stale expected location loses');
    assert.equal(await store.compareAndSwap('db.trips', 'file:///m/1.json', 'file:///m/2.json'), true);
    assert.equal(await store.compareAndSwap('other', undefined, 'file:///o/1.json'), true);
    assert.deepEqual(await store.list(), [
      { name: 'db.trips', metadataLocation: 'file:///m/2.json' },
      { name: 'other', metadataLocation: 'file:///o/1.json' },
    ]);
    assert.equal(await store.remove('db.trips', 'file:///m/1.json'), false);
    assert.equal(await store.remove('db.trips', 'file:///m/2.json'), true);
    assert.equal(await store.get('db.trips'), undefined);
  });

  test('concurrent swaps from one base: exactly one wins', async () => {
    await store.compareAndSwap('race', undefined, 'v0');
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.compareAndSwap('race', 'v0', `v1-${i}`)));
    assert.equal(results.filter(Boolean).length, 1);
  });

  test('an unreachable Redis is a clear unavailable error, not a hang', async () => {
    const port = await freePort();
    const dead = RedisPointerStore.connect(`redis://127.0.0.1:${port}`);
    const started = Date.now();
    await assert.rejects(dead.get('x'), (err: unknown) => err instanceof PuffinError && err.code === 'unavailable' && /unreachable/.test(err.message));
    assert.ok(Date.now() - started < 10_000);
    await dead.close();
  });
});
