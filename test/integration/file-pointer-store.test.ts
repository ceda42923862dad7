// The embedded PointerStore: compare-and-swap semantics, and atomicity under contention from
// several processes (exactly one winner per round, nothing lost, nothing applied twice).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { FilePointerStore } from '../../runtime/catalog/iceberg/file-pointer-store.ts';
import { PuffinError } from '../../runtime/errors.ts';
import { tempDir } from '../runtime/catalog/iceberg/fixtures.ts';

const dir = tempDir('pointers');
after(() => dir.remove());

describe('FilePointerStore', () => {
  test('create, swap, refuse a stale expectation, list, remove, re-create', async () => {
    const store = new FilePointerStore(join(dir.path, 'basic'));
    assert.equal(await store.get('db.trips'), undefined);
    assert.deepEqual(await store.list(), []);
    assert.equal(await store.compareAndSwap('db.trips', 'file:///x', 'file:///a'), false); // does not exist
    assert.equal(await store.compareAndSwap('DB.Trips', undefined, 'file:///a'), true);
    assert.equal(await store.compareAndSwap('db.trips', undefined, 'file:///b'), false); // exists
    assert.equal(await store.compareAndSwap('db.trips', 'file:///b', 'file:///c'), false); // stale
    assert.equal(await store.compareAndSwap('db.trips', 'file:///a', 'file:///b'), true);
    assert.equal(await store.get('db.trips'), 'file:///b');
    assert.equal(await store.compareAndSwap('other', undefined, 'file:///o'), true);
    assert.deepEqual(await store.list(), [{ name: 'db.trips', metadataLocation: 'file:///b' }, { name: 'other', metadataLocation: 'file:///o' }]);
    assert.equal(await store.remove('db.trips', 'file:///a'), false);
    assert.equal(await store.remove('db.trips', 'file:///b'), true);
    assert.equal(await store.get('db.trips'), undefined);
    assert.deepEqual((await store.list()).map((p) => p.name), ['other']);
    assert.equal(await store.compareAndSwap('db.trips', undefined, 'file:///d'), true);
    assert.equal(await new FilePointerStore(join(dir.path, 'basic')).get('db.trips'), 'file:///d'); // another instance sees it
    await assert.rejects(store.get('../escape'), (err: unknown) => err instanceof PuffinError && err.code === 'bad_request');
    await assert.rejects(store.compareAndSwap('x', undefined, ''), (err: unknown) => err instanceof PuffinError && err.code === 'bad_request');
  });

  test('a lost hint costs nothing: readers probe forward from what they find', async () => {
    const store = new FilePointerStore(join(dir.path, 'hint'));
    let prev: string | undefined;
    for (let i = 0; i < 5; i++) {
      assert.equal(await store.compareAndSwap('t', prev, `file:///v${i}`), true);
      prev = `file:///v${i}`;
    }
    const { rmSync } = await import('node:fs');
    rmSync(join(dir.path, 'hint', 't', 'version-hint'));
    assert.equal(await store.get('t'), 'file:///v4');
    assert.equal(await store.compareAndSwap('t', 'file:///v3', 'file:///late'), false);
  });

  test('child processes racing: exactly one compare-and-swap wins per round', async () => {
    const storeDir = join(dir.path, 'race');
    const store = new FilePointerStore(storeDir);
    const rounds = 40;
    const children = 6;
    assert.equal(await store.compareAndSwap('contended', undefined, '0:seed'), true);
    const child = fileURLToPath(new URL('../helpers/pointer-cas-child.ts', import.meta.url));
    const run = (id: number) => new Promise<{ id: string; won: number[]; attempts: number }>((resolve, reject) => {
      const p = spawn(process.execPath, ['--import', 'tsx', child, storeDir, `c${id}`, String(rounds)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      const timer = setTimeout(() => { p.kill(); reject(new Error(`child ${id} timed out`)); }, 60_000);
      p.stdout.on('data', (d) => (out += d));
      p.stderr.on('data', (d) => (err += d));
      p.on('exit', (code) => {
        clearTimeout(timer);
        if (code === 0) resolve(JSON.parse(out));
        else reject(new Error(`child ${id} exited ${code}: ${err}`));
      });
    });
    const results = await Promise.all(Array.from({ length: children }, (_, i) => run(i)));
    const wins = results.flatMap((r) => r.won).sort((a, b) => a - b);
    assert.deepEqual(wins, Array.from({ length: rounds }, (_, r) => r), 'each round has exactly one winner');
    const final = await store.get('contended');
    const lastWinner = results.find((r) => r.won.includes(rounds - 1))?.id;
    assert.equal(final, `${rounds}:${lastWinner}`);
    // One version per successful swap (plus the seed), none half-written.
    const versions = readdirSync(join(storeDir, 'contended')).filter((n) => /^v\d{20}\.json$/.test(n));
    assert.equal(versions.length, rounds + 1);
    const attempts = results.reduce((s, r) => s + r.attempts, 0);
    assert.ok(attempts >= rounds, `attempts ${attempts}`);
  });
});
