// S3ObjectStore and the file cache against a real S3-compatible server (s3rver) on loopback.
// s3rver 3.7 ignores If-None-Match on PUT, so create-only conflicts are checked here only
// as far as S3 is concerned: the header is sent and S3's 412 maps to conflict. The race
// itself is tested on the local store.

import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Engine } from '../../runtime/engine/engine.ts';
import { sqlString } from '../../runtime/sql/quote.ts';
import { FileCache } from '../../runtime/storage/file-cache.ts';
import { openStore } from '../../runtime/storage/open.ts';
import { S3ObjectStore, s3ErrorToPuffin } from '../../runtime/storage/s3-store.ts';
import { startS3rver, type TestS3 } from '../helpers/s3rver.ts';
import { objectStoreContract, rejectsWith } from '../runtime/storage/object-store-contract.ts';

let s3: TestS3;
let tmp: string;
let storeCount = 0;

before(async () => {
  s3 = await startS3rver();
  tmp = await mkdtemp(join(tmpdir(), 'puffindb-s3-store-'));
});
after(async () => {
  await s3.stop();
  await rm(tmp, { recursive: true, force: true });
});

/** A store on a fresh prefix of the one bucket. */
function freshStore(listPageSize?: number): S3ObjectStore {
  storeCount += 1;
  return new S3ObjectStore({ bucket: s3.bucket, prefix: `contract-${storeCount}/`, client: s3.client, listPageSize });
}

objectStoreContract('S3ObjectStore on s3rver', async () => freshStore(), { enforcesIfNoneMatch: false });

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe('S3ObjectStore', () => {
  test('keys live under the prefix and come back relative to it', async () => {
    const a = new S3ObjectStore({ bucket: s3.bucket, prefix: 'scoped/a', client: s3.client });
    const b = new S3ObjectStore({ bucket: s3.bucket, prefix: '/scoped/b/', client: s3.client });
    assert.equal(a.url, `s3://${s3.bucket}/scoped/a/`);
    assert.equal(b.url, `s3://${s3.bucket}/scoped/b/`);
    await a.put('x/1.txt', 'one');
    await b.put('x/1.txt', 'two');
    assert.deepEqual((await a.list('')).map((o) => o.key), ['x/1.txt']);
    assert.equal(Buffer.from(await b.get('x/1.txt')).toString(), 'two');
    const root = new S3ObjectStore({ bucket: s3.bucket, client: s3.client });
    assert.equal(Buffer.from(await root.get('scoped/a/x/1.txt')).toString(), 'one');
  });

  test('list follows continuation tokens across pages', async () => {
    const store = freshStore(3);
    const keys = Array.from({ length: 11 }, (_, i) => `many/k${String(i).padStart(2, '0')}`);
    await Promise.all(keys.map((key) => store.put(key, 'v')));
    let requests = 0;
    const countLists = (next: (args: unknown) => Promise<unknown>) => async (args: unknown) => {
      requests += 1;
      return next(args);
    };
    s3.client.middlewareStack.add(countLists as never, { step: 'initialize', name: 'countLists' });
    try {
      assert.deepEqual((await store.list('many/')).map((o) => o.key), keys);
    } finally {
      s3.client.middlewareStack.remove('countLists');
    }
    assert.equal(requests, 4, '11 keys in pages of 3');
  });

  test('keys with spaces and non-ASCII characters round-trip', async () => {
    const store = freshStore();
    await store.put('t/région=île de france/part 0.csv', 'ok');
    assert.deepEqual((await store.list('t/')).map((o) => o.key), ['t/région=île de france/part 0.csv']);
    assert.equal(Buffer.from(await store.get('t/région=île de france/part 0.csv')).toString(), 'ok');
  });

  test('create-only puts send If-None-Match: *', async () => {
    const client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: s3.credentials });
    const seen: (string | undefined)[] = [];
    client.middlewareStack.add(
      (next) => async (args) => {
        const headers = (args.request as { headers?: Record<string, string> }).headers ?? {};
        seen.push(headers['if-none-match']);
        return next(args);
      },
      { step: 'finalizeRequest', name: 'captureIfNoneMatch' },
    );
    try {
      const store = new S3ObjectStore({ bucket: s3.bucket, prefix: 'inm/', client });
      await store.put('a.json', '{}', { ifNoneMatch: true });
      await store.put('b.json', '{}');
      assert.deepEqual(seen, ['*', undefined]);
    } finally {
      client.destroy();
    }
  });

  test("S3's answers map to stable error codes", () => {
    const meta = (httpStatusCode: number) => ({ $metadata: { httpStatusCode } });
    assert.equal(s3ErrorToPuffin({ name: 'PreconditionFailed', ...meta(412) }, 'k').code, 'conflict');
    assert.equal(s3ErrorToPuffin({ name: 'ConditionalRequestConflict', ...meta(409) }, 'k').code, 'conflict');
    assert.equal(s3ErrorToPuffin({ name: 'NoSuchKey', ...meta(404) }, 'k').code, 'not_found');
    assert.equal(s3ErrorToPuffin({ name: 'AccessDenied', ...meta(403) }, 'k').code, 'access_denied');
    assert.equal(s3ErrorToPuffin({ name: 'SlowDown', ...meta(503) }, 'k').code, 'unavailable');
    assert.equal(s3ErrorToPuffin({ name: 'InternalError', ...meta(500) }, 'k').code, 'unavailable');
    assert.equal(s3ErrorToPuffin(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), 'k').code, 'unavailable');
    assert.equal(s3ErrorToPuffin({ name: 'CredentialsProviderError' }, 'k').code, 'unauthorized');
    assert.equal(s3ErrorToPuffin({ name: 'InvalidArgument', ...meta(400) }, 'k').code, 'internal');
  });

  test('a missing bucket is not_found naming the bucket', async () => {
    const store = new S3ObjectStore({ bucket: 'no-such-bucket', client: s3.client });
    await rejectsWith(store.get('k'), 'not_found', 'no-such-bucket');
  });

  test('an unreachable endpoint is unavailable', async () => {
    const store = new S3ObjectStore({
      bucket: s3.bucket,
      endpoint: `http://127.0.0.1:${await closedPort()}`,
      credentials: s3.credentials,
    });
    try {
      await rejectsWith(store.get('k'), 'unavailable', "'k'");
      await rejectsWith(store.list(''), 'unavailable');
    } finally {
      store.destroy();
    }
  });
});

describe('FileCache over s3rver', () => {
  test('fetches objects through openStore, and DuckDB reads the cached Parquet', async () => {
    // openStore's shared clients take credentials from the environment, as on Lambda.
    process.env.AWS_ACCESS_KEY_ID = s3.credentials.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = s3.credentials.secretAccessKey;
    const storeOptions = { s3Endpoint: s3.endpoint, region: 'us-east-1' };
    const lake = openStore(`s3://${s3.bucket}/lake/`, storeOptions);

    const writer = await Engine.create();
    const source = join(tmp, 'orders.parquet');
    try {
      await writer.exec(`COPY (SELECT range AS id, range % 7 AS g FROM range(100000)) TO ${sqlString(source)} (FORMAT parquet)`);
    } finally {
      writer.close();
    }
    const parquet = await readFile(source);
    await lake.put('orders/data/part-0.parquet', parquet);
    // An object larger than one 8 MiB part, to assemble from several ranged reads.
    const big = new Uint8Array(9 * 1024 * 1024).map((_, i) => i % 253);
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'lake/big.bin', Body: big }));

    const cacheDir = join(tmp, 'cache');
    const cache = new FileCache({ dir: cacheDir, maxBytes: 64 * 1024 * 1024, storeOptions });
    const uris = [`s3://${s3.bucket}/lake/orders/data/part-0.parquet`, `s3://${s3.bucket}/lake/big.bin`];
    const got = await cache.acquire(uris);
    try {
      assert.equal(got.bytesFetched, parquet.length + big.length);
      assert.deepEqual(await readFile(got.paths[0]), parquet);
      assert.ok(Buffer.from(big).equals(await readFile(got.paths[1])), 'the big object is intact');

      const reader = await Engine.create({ allowedDirectories: [cacheDir] });
      try {
        const result = await reader.query(`SELECT count(*)::INTEGER AS n, sum(g)::INTEGER AS s FROM read_parquet(${sqlString(got.paths[0])})`);
        assert.deepEqual(result.rows, [[100000, 299995]]);
      } finally {
        reader.close();
      }
    } finally {
      got.release();
    }
    const again = await cache.acquire(uris);
    again.release();
    assert.equal(again.bytesFetched, 0);
    assert.deepEqual(cache.stats(), { files: 2, bytes: parquet.length + big.length, hits: 2, misses: 2, evictions: 0 });
    await rejectsWith(cache.acquire([`s3://${s3.bucket}/lake/missing.parquet`]), 'not_found', 'missing.parquet');
  });
});
