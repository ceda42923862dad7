import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { PuffinError } from '../../../runtime/errors.ts';
import { cacheFileName, CHUNK_BYTES, FileCache } from '../../../runtime/storage/file-cache.ts';
import { LocalObjectStore } from '../../../runtime/storage/local-store.ts';
import type { ObjectInfo, ObjectStore, PutOptions } from '../../../runtime/storage/object-store.ts';
import { rejectsWith } from './object-store-contract.ts';

const dirs: string[] = [];
async function tempDir(tag: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `puffindb-cache-${tag}-`));
  dirs.push(dir);
  return dir;
}
after(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A real local store behind a 'test://' scheme that counts reads and can hold them at a gate. */
class CountingStore implements ObjectStore {
  readonly url: string;
  heads = 0;
  ranges = 0;
  private gate: Promise<void> = Promise.resolve();
  private openGate: () => void = () => undefined;

  constructor(private readonly inner: LocalObjectStore) {
    this.url = inner.url;
  }

  hold(): void {
    this.gate = new Promise((resolve) => (this.openGate = resolve));
  }

  letGo(): void {
    this.openGate();
  }

  get(key: string): Promise<Uint8Array> {
    return this.inner.get(key);
  }
  async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    this.ranges++;
    await this.gate;
    return this.inner.getRange(key, offset, length);
  }
  put(key: string, body: Uint8Array | string, options?: PutOptions): Promise<void> {
    return this.inner.put(key, body, options);
  }
  list(prefix: string): Promise<ObjectInfo[]> {
    return this.inner.list(prefix);
  }
  async head(key: string): Promise<ObjectInfo | undefined> {
    this.heads++;
    await this.gate;
    return this.inner.head(key);
  }
  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }
}

interface Fixture {
  cacheDir: string;
  store: CountingStore;
  uri(key: string): string;
  cache(maxBytes: number): FileCache;
}

async function fixture(): Promise<Fixture> {
  const cacheDir = await tempDir('dir');
  const store = new CountingStore(new LocalObjectStore(await tempDir('src')));
  const resolveUri = (uri: string): { store: ObjectStore; key: string } => {
    if (!uri.startsWith('test://')) throw new PuffinError('bad_request', `not a test URI: ${uri}`);
    return { store, key: uri.slice('test://'.length) };
  };
  return {
    cacheDir,
    store,
    uri: (key) => `test://${key}`,
    cache: (maxBytes) => new FileCache({ dir: cacheDir, maxBytes, resolveUri }),
  };
}

const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

describe('FileCache', () => {
  test('a known size starts the fetch with its ranged GETs, no HEAD; a missing object or a size past its end still fails', async () => {
    const f = await fixture();
    const bytes = new Uint8Array(CHUNK_BYTES + 777).map((_, i) => (i * 7) % 251);
    await f.store.put('t/sized.parquet', bytes);
    const cache = f.cache(1e9);
    const got = await cache.acquire([f.uri('t/sized.parquet')], undefined, [bytes.length]);
    assert.equal(sha(await readFile(got.paths[0])), sha(bytes));
    assert.equal(f.store.heads, 0, 'no HEAD for a file whose size is known');
    assert.equal(f.store.ranges, 2);
    got.release();
    await rejectsWith(cache.acquire([f.uri('t/absent.parquet')], undefined, [100]), 'not_found', 'absent.parquet');
    await f.store.put('t/short.parquet', new Uint8Array(50));
    await rejectsWith(cache.acquire([f.uri('t/short.parquet')], undefined, [100]), 'unavailable', 'changed while being fetched');
    assert.deepEqual((await readdir(f.cacheDir)).filter((n) => n.startsWith('.fetch-')), [], 'no temp file of a failed fetch remains');
  });

  test('files under a direct root are used in place, without a copy', async () => {
    const warehouse = await tempDir('wh');
    const cacheDir = await tempDir('dir');
    await new LocalObjectStore(warehouse).put('t/a.parquet', 'data');
    const cache = new FileCache({ dir: cacheDir, maxBytes: 1000, directRoots: [warehouse] });
    const got = await cache.acquire([pathToFileURL(join(warehouse, 't/a.parquet')).href]);
    assert.deepEqual(got.paths, [join(warehouse, 't/a.parquet')]);
    assert.equal(got.bytesFetched, 0);
    got.release();
    assert.deepEqual(await readdir(cacheDir), []);
    assert.deepEqual(cache.stats(), { files: 0, bytes: 0, hits: 0, misses: 0, evictions: 0 });
    await rejectsWith(cache.acquire([pathToFileURL(join(warehouse, 't/missing.parquet')).href]), 'not_found', 'missing.parquet');
  });

  test('a local file outside the direct roots is hard-linked into the cache', async () => {
    const elsewhere = await tempDir('elsewhere');
    const cacheDir = await tempDir('dir');
    const source = join(elsewhere, 'part-0.parquet');
    await writeFile(source, 'columnar bytes');
    const cache = new FileCache({ dir: cacheDir, maxBytes: 1000, directRoots: [await tempDir('wh')] });
    const uri = pathToFileURL(source).href;
    const first = await cache.acquire([uri]);
    assert.equal(first.paths[0], join(cacheDir, cacheFileName(uri)));
    assert.match(basename(first.paths[0]), /^[0-9a-f]{32}\.parquet$/);
    assert.equal((await stat(first.paths[0])).ino, (await stat(source)).ino);
    assert.equal(first.bytesFetched, 0, 'a hard link copies nothing');
    first.release();
    const again = await cache.acquire([uri]);
    assert.equal(again.paths[0], first.paths[0]);
    again.release();
    assert.deepEqual(cache.stats(), { files: 1, bytes: 14, hits: 1, misses: 1, evictions: 0 });
  });

  test('a remote object is downloaded through its store in ranged parts, whole and intact', async () => {
    const f = await fixture();
    const big = new Uint8Array(2 * CHUNK_BYTES + 12345).map((_, i) => (i * 31 + (i >> 13)) % 256);
    await f.store.put('t/big.parquet', big);
    await f.store.put('t/empty.json', new Uint8Array(0));
    const cache = f.cache(1e9);
    const got = await cache.acquire([f.uri('t/big.parquet'), f.uri('t/empty.json')]);
    assert.equal(sha(await readFile(got.paths[0])), sha(big));
    assert.equal((await readFile(got.paths[1])).length, 0);
    assert.equal(got.bytesFetched, big.length);
    assert.equal(f.store.ranges, 3, 'three ranged parts (two whole, one short), none for the empty object');
    assert.deepEqual((await readdir(f.cacheDir)).sort(), [basename(got.paths[0]), basename(got.paths[1])].sort(), 'no temp files remain');
    got.release();
    assert.deepEqual(cache.stats(), { files: 2, bytes: big.length, hits: 0, misses: 2, evictions: 0 });
  });

  test('a missing object is not_found and leaves nothing behind', async () => {
    const f = await fixture();
    const cache = f.cache(1000);
    await rejectsWith(cache.acquire([f.uri('t/none.parquet')]), 'not_found', 'test://t/none.parquet');
    assert.deepEqual(await readdir(f.cacheDir), []);
    await rejectsWith(new FileCache({ dir: f.cacheDir, maxBytes: 10 }).acquire(['ftp://host/x.parquet']), 'bad_request', 'ftp:');
  });

  test('least recently used files are evicted first, by bytes', async () => {
    const f = await fixture();
    for (const k of ['a', 'b', 'c']) await f.store.put(`${k}.bin`, new Uint8Array(100));
    const cache = f.cache(250);
    const use = async (k: string): Promise<string> => {
      const got = await cache.acquire([f.uri(`${k}.bin`)]);
      got.release();
      return got.paths[0];
    };
    const a = await use('a');
    const b = await use('b');
    await use('a'); // a is now more recent than b
    const c = await use('c');
    assert.deepEqual([existsSync(a), existsSync(b), existsSync(c)], [true, false, true]);
    assert.deepEqual(cache.stats(), { files: 2, bytes: 200, hits: 1, misses: 3, evictions: 1 });
  });

  test('pinned files are never evicted; past the bound the cache still serves', async () => {
    const f = await fixture();
    for (const k of ['a', 'b', 'c']) await f.store.put(`${k}.bin`, new Uint8Array(100));
    const cache = f.cache(150);
    const a = await cache.acquire([f.uri('a.bin')]);
    const bc = await cache.acquire([f.uri('b.bin'), f.uri('c.bin')]);
    assert.ok([...a.paths, ...bc.paths].every((p) => existsSync(p)), 'all held files are on disk');
    assert.equal(cache.stats().bytes, 300, 'over the bound while pinned');
    bc.release();
    assert.deepEqual([existsSync(bc.paths[0]), existsSync(bc.paths[1])], [false, false]);
    assert.ok(existsSync(a.paths[0]), 'a is still held');
    a.release();
    a.release(); // twice is harmless
    assert.ok(existsSync(a.paths[0]), 'a fits the bound once alone');
    assert.deepEqual(cache.stats(), { files: 1, bytes: 100, hits: 0, misses: 3, evictions: 2 });

    const tiny = f.cache(50);
    const held = await tiny.acquire([f.uri('b.bin')]);
    assert.ok(existsSync(held.paths[0]), 'a file larger than the whole bound is served while held');
    held.release();
    assert.ok(!existsSync(held.paths[0]));
  });

  test('concurrent acquires of one URI fetch it once', async () => {
    const f = await fixture();
    await f.store.put('t/shared.parquet', 'shared bytes');
    const cache = f.cache(1000);
    f.store.hold();
    const first = cache.acquire([f.uri('t/shared.parquet')]);
    const second = cache.acquire([f.uri('t/shared.parquet'), f.uri('t/shared.parquet')]);
    await new Promise((resolve) => setImmediate(resolve));
    f.store.letGo();
    const [one, two] = await Promise.all([first, second]);
    assert.equal(f.store.heads, 1);
    assert.equal(f.store.ranges, 1);
    assert.deepEqual(two.paths, [one.paths[0], one.paths[0]]);
    assert.equal(one.bytesFetched + two.bytesFetched, 12, 'the bytes are counted once');
    assert.equal(await readFile(one.paths[0], 'utf8'), 'shared bytes');
    assert.deepEqual(cache.stats(), { files: 1, bytes: 12, hits: 2, misses: 1, evictions: 0 });
    one.release();
    two.release();
  });

  test('an aborted acquire rejects at once; the fetch finishes for the others', async () => {
    const f = await fixture();
    await f.store.put('t/slow.parquet', 'slow bytes');
    const cache = f.cache(1000);
    f.store.hold();
    const controller = new AbortController();
    const impatient = cache.acquire([f.uri('t/slow.parquet')], controller.signal);
    const patient = cache.acquire([f.uri('t/slow.parquet')]);
    controller.abort(new PuffinError('timeout', 'fragment deadline passed'));
    await rejectsWith(impatient, 'timeout', 'deadline');
    f.store.letGo();
    const got = await patient;
    assert.equal(await readFile(got.paths[0], 'utf8'), 'slow bytes');
    got.release();
    await rejectsWith(cache.acquire([f.uri('t/slow.parquet')], AbortSignal.abort()), 'timeout');
  });

  test('a restart indexes the files already on disk, oldest first, and drops half-written ones', async () => {
    const f = await fixture();
    for (const k of ['a', 'b', 'c']) await f.store.put(`${k}.bin`, new Uint8Array(100));
    const before = f.cache(1000);
    const got = await before.acquire(['a', 'b', 'c'].map((k) => f.uri(`${k}.bin`)));
    got.release();
    const [a, b, c] = got.paths;
    const now = Date.now() / 1000;
    await utimes(b, now - 300, now - 300);
    await utimes(c, now - 200, now - 200);
    await utimes(a, now - 100, now - 100);
    await writeFile(join(f.cacheDir, '.fetch-interrupted'), 'half a file');

    const after = f.cache(250);
    assert.deepEqual(after.stats(), { files: 2, bytes: 200, hits: 0, misses: 0, evictions: 1 });
    assert.deepEqual([existsSync(a), existsSync(b), existsSync(c)], [true, false, true], 'the oldest (b) went first');
    assert.ok(!existsSync(join(f.cacheDir, '.fetch-interrupted')));
    const headsBefore = f.store.heads;
    const again = await after.acquire([f.uri('a.bin'), f.uri('c.bin')]);
    assert.deepEqual(again.paths, [a, c]);
    assert.equal(f.store.heads, headsBefore, 'served from disk without asking the store');
    assert.equal(after.stats().hits, 2);
    again.release();
  });

  test('a cached file deleted behind its back is fetched again', async () => {
    const f = await fixture();
    await f.store.put('t/x.parquet', 'x');
    const cache = f.cache(1000);
    const first = await cache.acquire([f.uri('t/x.parquet')]);
    first.release();
    await rm(first.paths[0]);
    const second = await cache.acquire([f.uri('t/x.parquet')]);
    assert.equal(await readFile(second.paths[0], 'utf8'), 'x');
    assert.deepEqual(cache.stats(), { files: 1, bytes: 1, hits: 0, misses: 2, evictions: 0 });
    second.release();
  });

  test('bad options and inputs are bad_request', () => {
    assert.throws(() => new FileCache({ dir: '', maxBytes: 1 }), { code: 'bad_request' });
    assert.throws(() => new FileCache({ dir: '/tmp/x', maxBytes: -1 }), { code: 'bad_request' });
    assert.throws(() => new FileCache({ dir: '/tmp/x', maxBytes: Number.NaN }), { code: 'bad_request' });
  });

  test('cache file names hash the URI and keep a plain extension', () => {
    assert.match(cacheFileName('s3://b/t/data/f.parquet'), /^[0-9a-f]{32}\.parquet$/);
    assert.match(cacheFileName('s3://b/t/metadata/v1.metadata.json'), /^[0-9a-f]{32}\.json$/);
    assert.match(cacheFileName('s3://b/t/no-extension'), /^[0-9a-f]{32}$/);
    assert.match(cacheFileName('s3://b/t/weird.ext with space'), /^[0-9a-f]{32}$/);
    assert.notEqual(cacheFileName('s3://b/1.parquet'), cacheFileName('s3://b/2.parquet'));
  });
});

describe('FileCache freshness of local files', () => {
  test('a local file rewritten in place is fetched anew, not served stale', async () => {
    const root = await mkdtemp(join(tmpdir(), 'puffin-fresh-'));
    try {
      const source = join(root, 'data.parquet');
      await writeFile(source, 'version one');
      const cache = new FileCache({ dir: join(root, 'cache'), maxBytes: 1 << 20 });
      const uri = pathToFileURL(source).href;
      let got = await cache.acquire([uri]);
      assert.equal(await readFile(got.paths[0], 'utf8'), 'version one');
      got.release();
      // Rewrite as a new file (new inode), as generators and copy tools do.
      await rm(source);
      await writeFile(source, 'version two, longer');
      got = await cache.acquire([uri]);
      assert.equal(await readFile(got.paths[0], 'utf8'), 'version two, longer');
      got.release();
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
