import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createWorkerHandler } from '../../../runtime/functions/worker.ts';
import { decodeCompletion } from '../../../runtime/exec/wire.ts';
import { MemoryStateStore } from '../../../runtime/state/memory-store.ts';
import type { FileRef } from '../../../runtime/planner/plan.ts';
import { makeSandbox, tFragment, writeTable, type Sandbox } from '../exec/fixtures.ts';

describe('worker Lambda handler', () => {
  let sandbox: Sandbox;
  let files: FileRef[];
  let store: MemoryStateStore;
  let opened = 0;
  let handler: ReturnType<typeof createWorkerHandler>;

  before(async () => {
    sandbox = await makeSandbox();
    files = await writeTable(sandbox, 1, 50);
    store = new MemoryStateStore();
    handler = createWorkerHandler(() => sandbox.settings, {
      stateStore: async () => {
        opened++;
        return store;
      },
    });
  });
  after(async () => {
    await store?.close();
    await sandbox?.cleanup();
  });

  const event = (id: string, sql: string, report?: unknown) => ({ queryId: 'q1', fragment: tFragment(id, files, sql), deadline: Date.now() + 30_000, ...(report ? { report } : {}) });

  test('a synchronous invocation answers the result and opens no state store', async () => {
    const result = await handler(event('f1', 'SELECT count(*) AS n FROM t'));
    assert.equal(result?.fragmentId, 'f1');
    assert.equal(opened, 0);
    await assert.rejects(handler(event('f1', 'SELEC 1')), (err: Error) => {
      assert.equal(JSON.parse(err.message).error.code, 'syntax_error');
      return true;
    });
  });

  test('an asynchronous invocation publishes its result, or its error, to the named stream', async () => {
    const ok = await handler(event('f2', 'SELECT count(*) AS n FROM t', { stream: 'run-1', attempt: 3 }));
    assert.equal(ok?.fragmentId, 'f2');
    // A failure is reported, not thrown: Lambda must not retry what the coordinator already knows.
    assert.equal(await handler(event('f3', 'SELECT nope FROM t', { stream: 'run-1', attempt: 1 })), null);
    const { items } = await store.readCompletions('run-1', null);
    assert.deepEqual(
      items.map((m) => [m.fragmentId, m.attempt, m.ok]),
      [
        ['f2', 3, true],
        ['f3', 1, false],
      ],
    );
    const first = decodeCompletion(items[0]);
    assert.ok(first.ok && first.result.rows === 1);
    const second = decodeCompletion(items[1]);
    assert.ok(!second.ok && second.error.code === 'binder_error');
    assert.equal(opened, 1, 'the store is opened once per container');
  });

  test('a relay dispatches each fragment; what it cannot dispatch is reported failed, never thrown', async () => {
    const dispatched: string[] = [];
    const relaying = createWorkerHandler(() => sandbox.settings, {
      stateStore: async () => store,
      relayInvoker: async () => ({
        dispatch: async (request) => {
          if (request.fragment.id === 'r3') throw new Error('injected: Invoke refused');
          dispatched.push(request.fragment.id);
        },
        close: async () => {},
      }),
    });
    const report = { stream: 'run-relay', attempt: 1 };
    const answer = await relaying({
      relay: [
        event('r1', 'SELECT 1', report),
        event('r2', 'SELECT 1'), // no completion target: nothing to report it to
        event('r3', 'SELECT 1', report), // the invoker refuses it
        { ...event('r4', 'SELECT 1', report), relay: [event('r5', 'SELECT 1', report)] }, // a relay inside a relay
        { ...event('r6', 'SELECT 1', report), queryId: '../x' }, // malformed
      ],
    });
    assert.equal(answer, null);
    assert.deepEqual(dispatched, ['r1']);
    const { items } = await store.readCompletions('run-relay', null);
    assert.deepEqual(items.map((m) => [m.fragmentId, m.ok]).sort(), [['r3', false], ['r4', false], ['r6', false]]);
    // Not an array: refused as a whole (the event is malformed, not one of its fragments).
    await assert.rejects(relaying({ relay: 'everything' }), /relay must be an array/);
  });

  test('a malformed request with a valid report is reported as bad_request', async () => {
    assert.equal(await handler({ queryId: '../x', fragment: tFragment('f4', files, 'SELECT 1'), deadline: Date.now() + 30_000, report: { stream: 'run-2', attempt: 1 } }), null);
    const { items } = await store.readCompletions('run-2', null);
    const outcome = decodeCompletion(items[0]);
    assert.ok(!outcome.ok && outcome.error.code === 'bad_request' && /queryId/.test(outcome.error.message));
  });

  test('a malformed report is refused', async () => {
    await assert.rejects(handler(event('f5', 'SELECT 1', { stream: 'run/../3', attempt: 1 })), (err: Error) => {
      assert.match(JSON.parse(err.message).error.message, /request\.report\.stream/);
      return true;
    });
    await assert.rejects(handler(event('f5', 'SELECT 1', { stream: 'run-3', attempt: 0 })), /attempt number/);
  });

  test('when the report cannot be published the invocation fails, so Lambda retries it', async () => {
    const down = new MemoryStateStore();
    await down.close();
    const cut = createWorkerHandler(() => sandbox.settings, { stateStore: async () => down });
    await assert.rejects(cut(event('f6', 'SELECT 1 AS one', { stream: 'run-4', attempt: 1 })), (err: Error) => {
      const body = JSON.parse(err.message).error;
      assert.equal(body.code, 'unavailable');
      assert.match(body.message, /could not report fragment f6 of query q1/);
      return true;
    });
  });
});
