// The behaviour every ObjectStore must show, as one suite run against each implementation
// (the local filesystem here, S3 through s3rver in test/integration/s3-store.test.ts).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PuffinError } from '../../../runtime/errors.ts';
import type { ObjectStore } from '../../../runtime/storage/object-store.ts';

export interface ContractOptions {
  /** Whether the backend enforces create-only writes (s3rver ignores If-None-Match). */
  enforcesIfNoneMatch: boolean;
}

export async function rejectsWith(promise: Promise<unknown>, code: string, messagePart?: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof PuffinError, `expected a PuffinError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (messagePart) assert.ok(err.message.includes(messagePart), `'${err.message}' should mention '${messagePart}'`);
    return true;
  });
}

const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString('utf8');

/** Each test gets a fresh, empty store from `makeStore`. */
export function objectStoreContract(name: string, makeStore: () => Promise<ObjectStore>, options: ContractOptions): void {
  describe(`ObjectStore contract: ${name}`, () => {
    test('url names the root and ends with a slash', async () => {
      const store = await makeStore();
      assert.match(store.url, /^(file|s3):\/\/.*\/$/);
    });

    test('put then get returns the same text and bytes', async () => {
      const store = await makeStore();
      await store.put('t/hello.txt', 'héllo wörld ✓');
      assert.equal(text(await store.get('t/hello.txt')), 'héllo wörld ✓');
      const every = new Uint8Array(512).map((_, i) => (i * 7) % 256);
      await store.put('t/bytes.bin', every, { contentType: 'application/octet-stream' });
      assert.deepEqual(new Uint8Array(await store.get('t/bytes.bin')), every);
      await store.put('t/empty', new Uint8Array(0));
      assert.equal((await store.get('t/empty')).length, 0);
    });

    test('put replaces an existing object', async () => {
      const store = await makeStore();
      await store.put('k', 'first, longer value');
      await store.put('k', 'second');
      assert.equal(text(await store.get('k')), 'second');
    });

    test('get of a missing key is not_found naming the key', async () => {
      const store = await makeStore();
      await rejectsWith(store.get('no/such/key.parquet'), 'not_found', 'no/such/key.parquet');
    });

    test('getRange returns the bytes asked for, clipped at the end', async () => {
      const store = await makeStore();
      const body = new Uint8Array(300).map((_, i) => i % 251);
      await store.put('r.bin', body);
      assert.deepEqual(new Uint8Array(await store.getRange('r.bin', 10, 5)), body.subarray(10, 15));
      assert.deepEqual(new Uint8Array(await store.getRange('r.bin', 0, 300)), body);
      assert.deepEqual(new Uint8Array(await store.getRange('r.bin', 290, 100)), body.subarray(290));
      assert.equal((await store.getRange('r.bin', 300, 10)).length, 0);
      assert.equal((await store.getRange('r.bin', 1000, 10)).length, 0);
      assert.equal((await store.getRange('r.bin', 5, 0)).length, 0);
      await rejectsWith(store.getRange('missing.bin', 0, 10), 'not_found', 'missing.bin');
      await rejectsWith(store.getRange('missing.bin', 0, 0), 'not_found', 'missing.bin');
      await rejectsWith(store.getRange('r.bin', -1, 10), 'bad_request');
      await rejectsWith(store.getRange('r.bin', 0, 1.5), 'bad_request');
    });

    test('list returns every object under a prefix, recursively, in key order', async () => {
      const store = await makeStore();
      const keys = ['b/2.txt', 'a/x/1.txt', 'a/1.txt', 'ab.txt', 'a/x/y/z.txt', 'a-b/q.txt', 'c.txt'];
      for (const key of keys) await store.put(key, key);
      const all = await store.list('');
      assert.deepEqual(all.map((o) => o.key), ['a-b/q.txt', 'a/1.txt', 'a/x/1.txt', 'a/x/y/z.txt', 'ab.txt', 'b/2.txt', 'c.txt']);
      assert.deepEqual((await store.list('a/')).map((o) => o.key), ['a/1.txt', 'a/x/1.txt', 'a/x/y/z.txt']);
      // A prefix is a string prefix, not a directory: 'a' also matches 'ab.txt' and 'a-b/'.
      assert.deepEqual((await store.list('a')).map((o) => o.key), ['a-b/q.txt', 'a/1.txt', 'a/x/1.txt', 'a/x/y/z.txt', 'ab.txt']);
      assert.deepEqual((await store.list('a/x/y')).map((o) => o.key), ['a/x/y/z.txt']);
      assert.deepEqual(await store.list('nothing/here/'), []);
      const one = all.find((o) => o.key === 'a/x/y/z.txt');
      assert.equal(one?.size, 'a/x/y/z.txt'.length);
      assert.ok(Math.abs((one?.lastModified ?? 0) - Date.now()) < 120_000, 'lastModified is about now');
    });

    test('head describes an object, and is undefined when absent', async () => {
      const store = await makeStore();
      await store.put('h/one.bin', new Uint8Array(42));
      const info = await store.head('h/one.bin');
      assert.equal(info?.key, 'h/one.bin');
      assert.equal(info?.size, 42);
      assert.ok(Math.abs((info?.lastModified ?? 0) - Date.now()) < 120_000, 'lastModified is about now');
      assert.equal(await store.head('h/absent.bin'), undefined);
      assert.equal(await store.head('h'), undefined, 'a prefix is not an object');
    });

    test('delete removes an object; deleting an absent one is fine', async () => {
      const store = await makeStore();
      await store.put('d/x', 'x');
      await store.put('d/y', 'y');
      await store.delete('d/x');
      await rejectsWith(store.get('d/x'), 'not_found');
      assert.equal(await store.head('d/x'), undefined);
      assert.deepEqual((await store.list('d/')).map((o) => o.key), ['d/y']);
      await store.delete('d/x');
      await store.delete('never/existed');
    });

    test('ifNoneMatch creates an absent object', async () => {
      const store = await makeStore();
      await store.put('once/commit.json', '{"v":1}', { ifNoneMatch: true });
      assert.equal(text(await store.get('once/commit.json')), '{"v":1}');
    });

    if (options.enforcesIfNoneMatch) {
      test('ifNoneMatch refuses to replace an existing object with conflict', async () => {
        const store = await makeStore();
        await store.put('once/commit.json', '{"v":1}', { ifNoneMatch: true });
        await rejectsWith(store.put('once/commit.json', '{"v":2}', { ifNoneMatch: true }), 'conflict', 'once/commit.json');
        assert.equal(text(await store.get('once/commit.json')), '{"v":1}');
      });
    }

    test('keys cannot leave the root', async () => {
      const store = await makeStore();
      for (const key of ['../outside', 'a/../../outside', 'a/..', '/etc/passwd']) {
        await rejectsWith(store.get(key), 'access_denied');
        await rejectsWith(store.put(key, 'x'), 'access_denied');
        await rejectsWith(store.delete(key), 'access_denied');
        await rejectsWith(store.head(key), 'access_denied');
      }
      await rejectsWith(store.list('../'), 'access_denied');
      await rejectsWith(store.list('/'), 'access_denied');
    });

    test('malformed keys are bad_request', async () => {
      const store = await makeStore();
      for (const key of ['', 'a//b', 'a/./b', 'dir/']) {
        await rejectsWith(store.put(key, 'x'), 'bad_request');
        await rejectsWith(store.get(key), 'bad_request');
      }
    });
  });
}
