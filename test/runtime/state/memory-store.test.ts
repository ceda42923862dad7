import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStateStore } from '../../../runtime/state/memory-store.ts';
import { openStateStore } from '../../../runtime/state/open.ts';
import { loadSettings } from '../../../runtime/settings.ts';
import { stateStoreContract } from './state-store-contract.ts';

stateStoreContract('memory', async (limits) => new MemoryStateStore(limits));

describe('MemoryStateStore', () => {
  test('what it returns is a copy: mutating it changes nothing stored', async () => {
    const store = new MemoryStateStore();
    const now = Date.now();
    await store.createQuery({ id: 'q1', user: 'u', sql: 'SELECT 1', status: 'queued', submittedAt: now, deadline: now + 1, progress: { fragmentsDone: 0, fragmentsTotal: 1, bytesScanned: 0 } });
    const record = await store.getQuery('q1');
    record!.progress.fragmentsDone = 99;
    record!.status = 'failed';
    assert.equal((await store.getQuery('q1'))?.status, 'queued');
    assert.equal((await store.getQuery('q1'))?.progress.fragmentsDone, 0);
  });

  test('openStateStore without REDIS_URL is the in-memory store', async () => {
    const store = await openStateStore(loadSettings({}));
    assert.ok(store instanceof MemoryStateStore);
    await store.close();
  });
});
