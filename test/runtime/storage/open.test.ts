import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { fileUriToPath } from '../../../runtime/storage/locations.ts';
import { LocalObjectStore } from '../../../runtime/storage/local-store.ts';
import { joinUrl, openStore, resolveUri } from '../../../runtime/storage/open.ts';

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'puffindb-open-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('openStore', () => {
  test('file:// opens a LocalObjectStore on that directory', async () => {
    const store = openStore(pathToFileURL(root).href);
    assert.ok(store instanceof LocalObjectStore);
    assert.equal(store.url, `${pathToFileURL(root).href}/`);
    await store.put('x/y.txt', 'hi');
    assert.equal(Buffer.from(await openStore(`${pathToFileURL(root).href}/x/`).get('y.txt')).toString(), 'hi');
  });

  test('s3:// opens a store on the bucket and prefix, which loads the S3 client on first use', async () => {
    const store = openStore('s3://lake-bucket/warehouse/db', { s3Endpoint: 'http://127.0.0.1:1' });
    assert.equal(store.url, 's3://lake-bucket/warehouse/db/');
    assert.equal(openStore('s3://lake-bucket').url, 's3://lake-bucket/');
    // Its first request is an S3 request (without credentials here it stops before sending;
    // with them, nothing listens on port 1).
    await assert.rejects(store.get('k'), (err: { code: string; message: string }) => ['unauthorized', 'unavailable'].includes(err.code) && err.message.includes('s3://lake-bucket/warehouse/db/'));
  });

  test('other schemes and malformed URLs are bad_request', () => {
    for (const url of ['http://example.com/x/', 'gs://bucket/', '/plain/path', 's3:///no-bucket/', 's3://bad bucket/', 'file://host/x/']) {
      assert.throws(() => openStore(url), { code: 'bad_request' }, url);
    }
    assert.throws(() => openStore('s3://bucket/a/../b/'), { code: 'access_denied' });
  });
});

describe('resolveUri', () => {
  test('a file URI resolves to one store per filesystem root and the path as key', () => {
    // A file: URI names its file literally (see locations.ts): 'sub dir' and 'x%20y' as written.
    const a = resolveUri(`file://${join(root, 'a.parquet')}`);
    const b = resolveUri(`file://${join(root, 'sub dir', 'b.parquet')}`);
    assert.equal(resolveUri(`file://${join(root, 'x%20y', 'c.parquet')}`).key, join(root, 'x%20y', 'c.parquet').slice(1));
    assert.equal(a.store, b.store);
    assert.equal(a.store.url, 'file:///');
    assert.equal(a.key, join(root, 'a.parquet').slice(1));
    assert.equal(b.key, join(root, 'sub dir', 'b.parquet').slice(1));
  });

  test('an s3 URI resolves to one store per bucket and endpoint', () => {
    const options = { s3Endpoint: 'http://127.0.0.1:1' };
    const a = resolveUri('s3://bucket-a/t/data/1.parquet', options);
    const b = resolveUri('s3://bucket-a/other.json', options);
    const c = resolveUri('s3://bucket-b/t/1.parquet', options);
    assert.equal(a.store, b.store);
    assert.notEqual(a.store, c.store);
    assert.equal(a.store.url, 's3://bucket-a/');
    assert.deepEqual([a.key, b.key, c.key], ['t/data/1.parquet', 'other.json', 't/1.parquet']);
    assert.notEqual(resolveUri('s3://bucket-a/x', {}).store, a.store, 'another endpoint is another store');
  });

  test('URIs that name no object are refused', () => {
    assert.throws(() => resolveUri('s3://bucket/'), { code: 'bad_request' });
    assert.throws(() => resolveUri('s3://bucket/dir/'), { code: 'bad_request' });
    assert.throws(() => resolveUri(`${pathToFileURL(root).href}/`), { code: 'bad_request' });
    assert.throws(() => resolveUri('https://example.com/a.parquet'), { code: 'bad_request' });
  });
});

describe('joinUrl', () => {
  test('joins keys to s3 roots as they are', () => {
    assert.equal(joinUrl('s3://b/p/', 't/x=1/f.parquet'), 's3://b/p/t/x=1/f.parquet');
    assert.equal(joinUrl('s3://b/p', 'f'), 's3://b/p/f');
  });

  test('file URIs round-trip to the same path, byte for byte (no percent-encoding either way)', () => {
    const rootUrl = `file://${root}/`;
    for (const key of ['t/f.parquet', 'odd name/100% #1?.csv', 's=a%3Ab/x.parquet', 'dir/']) {
      const uri = joinUrl(rootUrl, key);
      assert.equal(uri, rootUrl + key);
      assert.equal(fileUriToPath(uri), join(root, key));
    }
    const uri = joinUrl(rootUrl, 'odd name/100% #1?.csv');
    assert.equal(resolveUri(uri).key, join(root, 'odd name/100% #1?.csv').slice(1));
  });

  test('keys that climb out of the root are refused', () => {
    assert.throws(() => joinUrl('s3://b/p/', '../q/x'), { code: 'access_denied' });
    assert.throws(() => joinUrl('file:///tmp/w/', '/etc/passwd'), { code: 'access_denied' });
  });
});
