// The one contract every StateStore passes: the in-memory store in-process, the Redis store
// against a real redis-server. A behaviour that differs between them is a bug in one.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { PuffinError } from '../../../runtime/errors.ts';
import type { CompletionMessage, QueryLogEntry, QueryRecord, StateStore, StateStoreLimits } from '../../../runtime/state/state-store.ts';

/** Opens a fresh, empty store (its own key space) with the given limits. */
export type StateStoreFactory = (limits?: Partial<StateStoreLimits>) => Promise<StateStore>;

const sha = (secret: string) => createHash('sha256').update(secret).digest('hex');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let nextId = 0;
function queryRecord(overrides: Partial<QueryRecord> = {}): QueryRecord {
  const now = Date.now();
  return {
    id: `q${String(++nextId).padStart(4, '0')}`,
    user: 'local',
    sql: 'SELECT 1',
    status: 'queued',
    submittedAt: now,
    deadline: now + 60_000,
    progress: { fragmentsDone: 0, fragmentsTotal: 4, bytesScanned: 0 },
    ...overrides,
  };
}

function logEntry(i: number): QueryLogEntry {
  return { id: `L${i}`, user: 'u', sql: `SELECT ${i}`, status: 'succeeded', submittedAt: 1_700_000_000_000 + i, durationMs: i, bytesScanned: i * 10, fragments: 1, cacheHit: false, error: null };
}

function completion(fragmentId: string, attempt = 1): CompletionMessage {
  return { fragmentId, attempt, ok: true, payload: { fragmentId, rows: attempt } };
}

export function stateStoreContract(name: string, factory: StateStoreFactory): void {
  describe(`StateStore contract: ${name}`, () => {
    let store: StateStore;

    before(async () => {
      store = await factory();
    });
    after(async () => {
      await store?.close();
    });

    describe('query registry', () => {
      test('a created query reads back with every field', async () => {
        const record = queryRecord({
          startedAt: Date.now(),
          error: { code: 'timeout', message: 'too slow' },
          resultUri: 's3://b/results/x.parquet',
          resultFormat: 'parquet',
          cacheHit: false,
          shape: 'scan-aggregate',
          progress: { fragmentsDone: 1, fragmentsTotal: 8, bytesScanned: 12_345_678_901 },
        });
        await store.createQuery(record);
        assert.deepEqual(await store.getQuery(record.id), record);
        assert.equal(await store.getQuery('no-such-query'), undefined);
      });

      test('creating an existing id is a conflict', async () => {
        const record = queryRecord();
        await store.createQuery(record);
        await assert.rejects(store.createQuery({ ...record, sql: 'SELECT 2' }), { code: 'conflict' });
        assert.equal((await store.getQuery(record.id))?.sql, 'SELECT 1');
      });

      test('an update applies its fields and leaves the others', async () => {
        const record = queryRecord();
        await store.createQuery(record);
        const updated = await store.updateQuery(record.id, { status: 'running', startedAt: 123, shape: 'top-k', error: undefined });
        assert.deepEqual(updated, { ...record, status: 'running', startedAt: 123, shape: 'top-k' });
        assert.deepEqual(await store.getQuery(record.id), updated);
        const progressed = await store.updateQuery(record.id, { progress: { fragmentsDone: 2, fragmentsTotal: 4, bytesScanned: 99 } });
        assert.deepEqual(progressed?.progress, { fragmentsDone: 2, fragmentsTotal: 4, bytesScanned: 99 });
      });

      test('a cancelled query is not overwritten by a late success', async () => {
        const record = queryRecord({ status: 'running' });
        await store.createQuery(record);
        const cancelled = await store.updateQuery(record.id, { status: 'cancelled', finishedAt: 5 }, ['queued', 'running']);
        assert.equal(cancelled?.status, 'cancelled');
        assert.equal(await store.updateQuery(record.id, { status: 'succeeded', resultUri: 'file:///late' }), undefined);
        const after = await store.getQuery(record.id);
        assert.equal(after?.status, 'cancelled');
        assert.equal(after?.resultUri, undefined);
        assert.equal(after?.finishedAt, 5);
      });

      test('fromStatuses decides which statuses an update may leave', async () => {
        const record = queryRecord({ status: 'succeeded' });
        await store.createQuery(record);
        assert.equal(await store.updateQuery(record.id, { status: 'failed' }, ['running']), undefined);
        assert.equal((await store.updateQuery(record.id, { cacheHit: true }, ['succeeded']))?.cacheHit, true);
        assert.equal(await store.updateQuery(record.id, { cacheHit: false }, []), undefined);
        assert.equal(await store.updateQuery('no-such-query', { status: 'failed' }), undefined);
      });

      test('racing updates from one status: exactly one wins', async () => {
        const record = queryRecord({ status: 'running' });
        await store.createQuery(record);
        const finals = ['succeeded', 'failed', 'cancelled', 'succeeded', 'failed', 'cancelled'] as const;
        const results = await Promise.all(finals.map((status) => store.updateQuery(record.id, { status }, ['running'])));
        const winners = results.filter((r) => r !== undefined);
        assert.equal(winners.length, 1);
        assert.equal((await store.getQuery(record.id))?.status, winners[0]?.status);
      });

      test('concurrent progress increments all count', async () => {
        const record = queryRecord({ progress: { fragmentsDone: 0, fragmentsTotal: 100, bytesScanned: 5 } });
        await store.createQuery(record);
        await Promise.all(Array.from({ length: 100 }, () => store.addProgress(record.id, { fragmentsDone: 1, bytesScanned: 1_000 })));
        await store.addProgress(record.id, { fragmentsTotal: 1 });
        assert.deepEqual((await store.getQuery(record.id))?.progress, { fragmentsDone: 100, fragmentsTotal: 101, bytesScanned: 100_005 });
        await store.addProgress('no-such-query', { fragmentsDone: 1 });
        assert.equal(await store.getQuery('no-such-query'), undefined);
      });

      test('listing is most recent first, with a limit and a status filter', async () => {
        const listing = await factory();
        try {
          const base = Date.now();
          const records = [
            queryRecord({ submittedAt: base + 1, status: 'running' }),
            queryRecord({ submittedAt: base + 3, status: 'succeeded' }),
            queryRecord({ submittedAt: base + 2, status: 'running' }),
          ];
          for (const r of records) await listing.createQuery(r);
          assert.deepEqual(
            (await listing.listQueries()).map((q) => q.id),
            [records[1].id, records[2].id, records[0].id],
          );
          assert.deepEqual(
            (await listing.listQueries({ limit: 2 })).map((q) => q.id),
            [records[1].id, records[2].id],
          );
          assert.deepEqual(
            (await listing.listQueries({ status: 'running' })).map((q) => q.id),
            [records[2].id, records[0].id],
          );
          assert.deepEqual(await listing.listQueries({ status: 'failed' }), []);
        } finally {
          await listing.close();
        }
      });

      test('malformed records and patches are bad requests', async () => {
        await assert.rejects(store.createQuery({ ...queryRecord(), status: 'done' as never }), { code: 'bad_request', message: /status/ });
        await assert.rejects(store.createQuery({ ...queryRecord(), id: '' }), { code: 'bad_request', message: /query id/ });
        await assert.rejects(store.updateQuery('x', { status: 'weird' as never }), { code: 'bad_request' });
        await assert.rejects(store.addProgress('x', { fragmentsDone: 1.5 }), { code: 'bad_request', message: /fragmentsDone/ });
        await assert.rejects(store.listQueries({ limit: 0 }), { code: 'bad_request', message: /limit/ });
      });

      test('records expire after the query TTL', async () => {
        const short = await factory({ queryTtlMs: 150 });
        try {
          const record = queryRecord();
          await short.createQuery(record);
          assert.ok(await short.getQuery(record.id));
          await sleep(300);
          assert.equal(await short.getQuery(record.id), undefined);
          assert.deepEqual(await short.listQueries(), []);
        } finally {
          await short.close();
        }
      });
    });

    describe('completion streams', () => {
      test('messages read back in order, after a cursor, in batches of count', async () => {
        for (let i = 0; i < 5; i++) await store.publishCompletion('s-order', completion(`f${i}`));
        const first = await store.readCompletions('s-order', null, { count: 3 });
        assert.deepEqual(
          first.items.map((m) => m.fragmentId),
          ['f0', 'f1', 'f2'],
        );
        assert.deepEqual(first.items[0], completion('f0'));
        const rest = await store.readCompletions('s-order', first.cursor);
        assert.deepEqual(
          rest.items.map((m) => m.fragmentId),
          ['f3', 'f4'],
        );
        const none = await store.readCompletions('s-order', rest.cursor);
        assert.deepEqual(none, { items: [], cursor: rest.cursor });
        assert.deepEqual(await store.readCompletions('s-never-written', null), { items: [], cursor: null });
      });

      test('a blocked read wakes as soon as a message is published', async () => {
        const started = Date.now();
        const reading = store.readCompletions('s-wake', null, { blockMs: 5_000 });
        await sleep(100);
        await store.publishCompletion('s-wake', completion('late', 2));
        const batch = await reading;
        const elapsed = Date.now() - started;
        assert.deepEqual(batch.items, [completion('late', 2)]);
        assert.ok(elapsed >= 90 && elapsed < 2_000, `woke after ${elapsed} ms`);
      });

      test('an idle blocked read returns empty after blockMs', async () => {
        await store.publishCompletion('s-idle', completion('f0'));
        const { cursor } = await store.readCompletions('s-idle', null);
        const started = Date.now();
        const batch = await store.readCompletions('s-idle', cursor, { blockMs: 200 });
        const elapsed = Date.now() - started;
        assert.deepEqual(batch, { items: [], cursor });
        assert.ok(elapsed >= 180 && elapsed < 2_000, `returned after ${elapsed} ms`);
      });

      test('concurrent blocked readers of different streams do not delay each other', async () => {
        const started = Date.now();
        const readers = Array.from({ length: 6 }, (_, i) => store.readCompletions(`s-many-${i}`, null, { blockMs: 3_000 }));
        await sleep(50);
        await Promise.all(Array.from({ length: 6 }, (_, i) => store.publishCompletion(`s-many-${i}`, completion(`f${i}`))));
        const batches = await Promise.all(readers);
        assert.deepEqual(
          batches.map((b) => b.items[0]?.fragmentId),
          ['f0', 'f1', 'f2', 'f3', 'f4', 'f5'],
        );
        assert.ok(Date.now() - started < 2_000);
        // Other commands are not stuck behind a blocked reader either.
        const blocked = store.readCompletions('s-quiet', null, { blockMs: 1_000 });
        const pingStarted = Date.now();
        await store.ping();
        assert.ok(Date.now() - pingStarted < 500);
        await blocked;
      });

      test('streams are separate, deletable, and expire after their TTL', async () => {
        await store.publishCompletion('s-a', completion('a'));
        await store.publishCompletion('s-b', completion('b'));
        assert.deepEqual(
          (await store.readCompletions('s-a', null)).items.map((m) => m.fragmentId),
          ['a'],
        );
        await store.deleteCompletions('s-a');
        assert.deepEqual((await store.readCompletions('s-a', null)).items, []);
        assert.equal((await store.readCompletions('s-b', null)).items.length, 1);

        const short = await factory({ completionTtlMs: 150 });
        try {
          await short.publishCompletion('s-ttl', completion('x'));
          assert.equal((await short.readCompletions('s-ttl', null)).items.length, 1);
          await sleep(300);
          assert.deepEqual((await short.readCompletions('s-ttl', null)).items, []);
        } finally {
          await short.close();
        }
      });

      test('a malformed cursor or wait is a bad request', async () => {
        await assert.rejects(store.readCompletions('s-a', 'not-a-cursor'), { code: 'bad_request', message: /cursor/ });
        await assert.rejects(store.readCompletions('s-a', null, { blockMs: -1 }), { code: 'bad_request', message: /blockMs/ });
      });
    });

    describe('query log', () => {
      test('entries read in order from a cursor, and trimming drops up to the cursor', async () => {
        const log = await factory();
        try {
          for (let i = 0; i < 5; i++) await log.appendLog(logEntry(i));
          const first = await log.readLog(null, 2);
          assert.deepEqual(first.items, [logEntry(0), logEntry(1)]);
          assert.ok(first.cursor);
          const next = await log.readLog(first.cursor, 10);
          assert.deepEqual(
            next.items.map((e) => e.id),
            ['L2', 'L3', 'L4'],
          );
          assert.deepEqual(await log.readLog(next.cursor, 10), { items: [], cursor: next.cursor });

          await log.trimLog(first.cursor!);
          assert.deepEqual(
            (await log.readLog(null, 10)).items.map((e) => e.id),
            ['L2', 'L3', 'L4'],
          );
          // A cursor into the trimmed part still reads what follows it.
          assert.deepEqual(
            (await log.readLog(first.cursor, 10)).items.map((e) => e.id),
            ['L2', 'L3', 'L4'],
          );
          await log.appendLog(logEntry(5));
          await log.trimLog(next.cursor!);
          assert.deepEqual(
            (await log.readLog(null, 10)).items.map((e) => e.id),
            ['L5'],
          );
          await assert.rejects(log.trimLog('bogus'), { code: 'bad_request' });
        } finally {
          await log.close();
        }
      });

      test('the log stops growing at about logMaxEntries', async () => {
        const capped = await factory({ logMaxEntries: 10 });
        try {
          for (let i = 0; i < 400; i++) await capped.appendLog(logEntry(i));
          const all = await capped.readLog(null, 1_000);
          // Redis trims approximately (whole stream nodes of 100 entries), memory exactly.
          assert.ok(all.items.length >= 10 && all.items.length < 400, `${all.items.length} entries kept`);
          assert.equal(all.items.at(-1)?.id, 'L399');
        } finally {
          await capped.close();
        }
      });
    });

    describe('API keys', () => {
      const key = (id: string, secret: string, role: 'admin' | 'writer' | 'reader' = 'reader') => ({ id, name: `key ${id}`, role, hash: sha(secret), createdAt: Date.now() });

      test('keys are found by the hash of their secret, never by anything else', async () => {
        const keys = await factory();
        try {
          const k1 = key('k1', 'secret-1', 'admin');
          const k2 = key('k2', 'secret-2');
          await keys.putApiKey(k1);
          await keys.putApiKey(k2);
          assert.deepEqual(await keys.findApiKeyByHash(sha('secret-1')), k1);
          assert.deepEqual(await keys.findApiKeyByHash(sha('secret-2')), k2);
          assert.equal(await keys.findApiKeyByHash(sha('secret-3')), undefined);
          assert.equal(await keys.findApiKeyByHash('secret-1'), undefined);
          assert.deepEqual(
            (await keys.listApiKeys()).map((k) => k.id).sort(),
            ['k1', 'k2'],
          );

          // Replacing a key's secret retires the old hash.
          const rotated = { ...k2, hash: sha('secret-2b') };
          await keys.putApiKey(rotated);
          assert.equal(await keys.findApiKeyByHash(sha('secret-2')), undefined);
          assert.deepEqual(await keys.findApiKeyByHash(sha('secret-2b')), rotated);

          await assert.rejects(keys.putApiKey(key('k3', 'secret-1')), { code: 'conflict' });
          assert.deepEqual(await keys.findApiKeyByHash(sha('secret-1')), k1);

          assert.equal(await keys.deleteApiKey('k1'), true);
          assert.equal(await keys.deleteApiKey('k1'), false);
          assert.equal(await keys.findApiKeyByHash(sha('secret-1')), undefined);
          assert.deepEqual(
            (await keys.listApiKeys()).map((k) => k.id),
            ['k2'],
          );
        } finally {
          await keys.close();
        }
      });

      test('a key whose hash is not sha256 hex is refused', async () => {
        await assert.rejects(store.putApiKey({ id: 'k9', name: 'n', role: 'reader', hash: 'plain-secret', createdAt: 0 }), { code: 'bad_request', message: /sha256/ });
        await assert.rejects(store.putApiKey({ ...key('k9', 's'), role: 'root' as never }), { code: 'bad_request', message: /role/ });
      });
    });

    describe('query generators', () => {
      test('put (create or replace by name), list sorted by name, delete', async () => {
        await store.putGenerator({ name: 'zeta', url: 'https://z.example/sql', createdAt: 2 });
        await store.putGenerator({ name: 'alpha', url: 'http://127.0.0.1:9/sql', keyEnv: 'ALPHA_TOKEN', createdAt: 1 });
        await store.putGenerator({ name: 'zeta', url: 'https://z2.example/sql', createdAt: 3 });
        assert.deepEqual(await store.listGenerators(), [
          { name: 'alpha', url: 'http://127.0.0.1:9/sql', keyEnv: 'ALPHA_TOKEN', createdAt: 1 },
          { name: 'zeta', url: 'https://z2.example/sql', createdAt: 3 },
        ]);
        assert.equal(await store.deleteGenerator('zeta'), true);
        assert.equal(await store.deleteGenerator('zeta'), false);
        assert.deepEqual((await store.listGenerators()).map((g) => g.name), ['alpha']);
        assert.equal(await store.deleteGenerator('alpha'), true);
      });

      test('bad names and records are refused', async () => {
        await assert.rejects(store.putGenerator({ name: '../x', url: 'https://x', createdAt: 0 }), { code: 'bad_request', message: /generator name/ });
        await assert.rejects(store.putGenerator({ name: 'x', url: 'https://x', keyEnv: 'A B', createdAt: 0 }), { code: 'bad_request', message: /keyEnv/ });
        await assert.rejects(store.deleteGenerator(''), { code: 'bad_request' });
      });
    });

    describe('locks', () => {
      test('a lock is exclusive until released by its holder', async () => {
        const lease = await store.acquireLock('lock-a', 5_000);
        assert.ok(lease);
        assert.ok(lease.expiresAt > Date.now());
        assert.equal(await store.acquireLock('lock-a', 5_000), undefined);
        const forged = { ...lease, token: 'not-the-token' };
        assert.equal(await store.releaseLock(forged), false);
        assert.equal(await store.renewLock(forged, 5_000), undefined);
        assert.equal(await store.acquireLock('lock-a', 5_000), undefined);
        assert.equal(await store.releaseLock(lease), true);
        assert.equal(await store.releaseLock(lease), false);
        const again = await store.acquireLock('lock-a', 5_000);
        assert.ok(again);
        assert.notEqual(again.token, lease.token);
        await store.releaseLock(again);
      });

      test('concurrent acquirers: exactly one holds the lock', async () => {
        const leases = await Promise.all(Array.from({ length: 10 }, () => store.acquireLock('lock-race', 5_000)));
        assert.equal(leases.filter(Boolean).length, 1);
      });

      test('a lease expires unless renewed, and an expired lease cannot be renewed once taken', async () => {
        const lease = await store.acquireLock('lock-b', 150);
        assert.ok(lease);
        await sleep(80);
        const renewed = await store.renewLock(lease, 300);
        assert.ok(renewed);
        assert.ok(renewed.expiresAt > lease.expiresAt);
        await sleep(150);
        assert.equal(await store.acquireLock('lock-b', 1_000), undefined, 'the renewal kept the lock');
        await sleep(250);
        const taker = await store.acquireLock('lock-b', 1_000);
        assert.ok(taker, 'the lease expired');
        assert.equal(await store.renewLock(lease, 1_000), undefined);
        assert.equal(await store.releaseLock(lease), false);
        assert.equal(await store.releaseLock(taker), true);
      });

      test('a lease needs a positive TTL', async () => {
        await assert.rejects(store.acquireLock('lock-c', 0), { code: 'bad_request', message: /ttlMs/ });
      });
    });

    describe('result cache', () => {
      test('entries read back until their TTL passes', async () => {
        const value = { uri: 's3://b/results/r.parquet', contentType: 'application/json', rows: 3, createdAt: 1 };
        await store.putCachedResult('cache-a', value, 150);
        await store.putCachedResult('cache-b', { body: '[[1]]', contentType: 'application/json', rows: 1, createdAt: 2 }, 60_000);
        assert.deepEqual(await store.getCachedResult('cache-a'), value);
        assert.equal(await store.getCachedResult('cache-missing'), undefined);
        await sleep(300);
        assert.equal(await store.getCachedResult('cache-a'), undefined);
        assert.equal((await store.getCachedResult('cache-b'))?.body, '[[1]]');
      });
    });

    describe('compare-and-swap', () => {
      test('a swap happens only from the expected value', async () => {
        assert.equal(await store.getValue('v-a'), undefined);
        assert.equal(await store.compareAndSwap('v-a', 'something', 'x'), false);
        assert.equal(await store.compareAndSwap('v-a', undefined, 'one'), true);
        assert.equal(await store.compareAndSwap('v-a', undefined, 'other'), false);
        assert.equal(await store.compareAndSwap('v-a', 'wrong', 'two'), false);
        assert.equal(await store.compareAndSwap('v-a', 'one', 'two'), true);
        assert.equal(await store.getValue('v-a'), 'two');
        assert.equal(await store.compareAndSwap('v-a', 'two', ''), true);
        assert.equal(await store.getValue('v-a'), '');
        assert.equal(await store.compareAndSwap('v-a', undefined, 'x'), false, 'an empty string is a value, not absence');
      });

      test('N concurrent swaps from the same value: exactly one wins', async () => {
        await store.compareAndSwap('v-race', undefined, 'v0');
        const outcomes = await Promise.all(Array.from({ length: 20 }, (_, i) => store.compareAndSwap('v-race', 'v0', `v1-${i}`)));
        const winners = outcomes.flatMap((won, i) => (won ? [i] : []));
        assert.equal(winners.length, 1);
        assert.equal(await store.getValue('v-race'), `v1-${winners[0]}`);

        const fromAbsent = await Promise.all(Array.from({ length: 20 }, (_, i) => store.compareAndSwap('v-race-new', undefined, `n${i}`)));
        assert.equal(fromAbsent.filter(Boolean).length, 1);
      });
    });

    test('ping answers, and a closed store refuses with unavailable', async () => {
      const closing = await factory();
      await closing.ping();
      const blocked = closing.readCompletions('s-closing', null, { blockMs: 10_000 });
      const settled = blocked.then(
        () => undefined,
        (err: unknown) => err,
      );
      await sleep(50);
      const closedAt = Date.now();
      await closing.close();
      // A reader blocked at that moment is released, not left waiting out its blockMs.
      assert.equal(((await settled) as PuffinError | undefined)?.code, 'unavailable');
      assert.ok(Date.now() - closedAt < 1_000);
      await assert.rejects(closing.getValue('x'), (err: PuffinError) => {
        assert.ok(err instanceof PuffinError);
        assert.equal(err.code, 'unavailable');
        return true;
      });
    });
  });
}
