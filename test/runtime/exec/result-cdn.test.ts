// A stored result's Parquet download with a CDN configured (PUFFINDB_CDN_URL, its key pair id
// and the private key's secret): the result keeper answers a redirect to a CloudFront URL of
// the object's whole key, signed with a canned policy that the key pair's public key verifies,
// where it would otherwise presign an S3 URL. The secret is read once.

import assert from 'node:assert/strict';
import { CDN_TEST_PRIVATE_KEY } from '../../helpers/cdn-key.ts';
import { createPublicKey, createVerify } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Engine } from '../../../runtime/engine/engine.ts';
import { ResultKeeper } from '../../../runtime/exec/query-results.ts';
import { MemoryStateStore } from '../../../runtime/state/memory-store.ts';
import { cannedPolicy, resultSignerOf } from '../../../runtime/storage/cloudfront-signer.ts';
import type { ObjectStore } from '../../../runtime/storage/object-store.ts';

const PRIVATE_KEY = CDN_TEST_PRIVATE_KEY;
const dir = mkdtempSync(join(tmpdir(), 'puffin-result-cdn-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The results prefix of an S3 bucket, as far as downloads ask it. */
const results = {
  url: 's3://results-bucket/results/',
  head: async (key: string) => (key === 'q/01J.parquet' ? { key, size: 10 } : undefined),
  presignGet: async (key: string) => `https://results-bucket.s3.amazonaws.com/results/${key}?X-Amz-Signature=x`,
} as unknown as ObjectStore;

describe('result downloads through the CDN', () => {
  test('redirect to a signed CloudFront URL of the object key; without a CDN, the S3 presigned URL', async () => {
    const engine = await Engine.create({ threads: 1 });
    try {
      const asked: string[] = [];
      const cdn = resultSignerOf({ cdnUrl: 'https://results.example.com', cdnKeyPairId: 'K2JCJMDEHXQW5F', cdnPrivateKeySecretArn: 'arn:aws:secretsmanager:us-east-1:1:secret:k', region: 'us-east-1' }, async (arn) => {
        asked.push(arn);
        return PRIVATE_KEY;
      });
      const kept = { kind: 'stored' as const, location: 's3://results-bucket/results/q/01J.parquet', format: 'parquet' as const, rows: 3 };
      const options = { state: new MemoryStateStore(), results, engine, scratchDir: dir, ttlMs: 3_600_000 };
      const before = Math.floor(Date.now() / 1000);
      const body = await new ResultKeeper({ ...options, cdn }).reader.parquet(kept);
      assert.equal(body.kind, 'redirect');
      const url = new URL((body as { url: string }).url);
      assert.equal(`${url.origin}${url.pathname}`, 'https://results.example.com/results/q/01J.parquet');
      const expires = Number(url.searchParams.get('Expires'));
      assert.ok(expires > before && expires <= before + 901, String(expires));
      assert.equal(url.searchParams.get('Key-Pair-Id'), 'K2JCJMDEHXQW5F');
      const signature = Buffer.from(url.searchParams.get('Signature')!.replace(/-/g, '+').replace(/_/g, '=').replace(/~/g, '/'), 'base64');
      assert.ok(createVerify('RSA-SHA1').update(cannedPolicy(`${url.origin}${url.pathname}`, expires)).verify(createPublicKey(PRIVATE_KEY), signature));
      await new ResultKeeper({ ...options, cdn }).reader.parquet(kept);
      assert.equal(asked.length, 1, 'the key is read once');

      const plain = await new ResultKeeper(options).reader.parquet(kept);
      assert.match((plain as { url: string }).url, /X-Amz-Signature/);
      await assert.rejects(new ResultKeeper({ ...options, cdn }).reader.parquet({ ...kept, location: 's3://results-bucket/results/gone.parquet' }), /gone/);
    } finally {
      engine.close();
    }
  });

  test('a CDN URL without its key pair id or secret is refused', () => {
    assert.equal(resultSignerOf({ cdnUrl: undefined, cdnKeyPairId: undefined, cdnPrivateKeySecretArn: undefined, region: 'us-east-1' }), undefined);
    assert.throws(() => resultSignerOf({ cdnUrl: 'https://r.example.com', cdnKeyPairId: 'K', cdnPrivateKeySecretArn: undefined, region: 'us-east-1' }), /PUFFINDB_CDN_PRIVATE_KEY_SECRET_ARN/);
  });
});
