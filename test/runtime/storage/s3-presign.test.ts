// The SigV4 presigner against AWS's published example ("Authenticating Requests: Using
// Query Parameters", GET examplebucket/test.txt on 2013-05-24, valid 86400 s), and the
// path-style form used with a configured endpoint.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { S3Client } from '@aws-sdk/client-s3';
import { presignGetObject } from '../../../runtime/storage/s3-presign.ts';

const credentials = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' };
const now = new Date('2013-05-24T00:00:00Z');

test("presigned GET URLs match AWS's signing example", async () => {
  const client = new S3Client({ region: 'us-east-1', credentials });
  const url = await presignGetObject(client, { bucket: 'examplebucket', key: 'test.txt', expiresInSeconds: 86400, now });
  client.destroy();
  assert.equal(url, 'https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404');
});

test('a configured endpoint is addressed path-style, keys encoded segment by segment', async () => {
  const client = new S3Client({ region: 'eu-west-1', credentials: { ...credentials, sessionToken: 'tok/en' }, endpoint: 'http://127.0.0.1:9000', forcePathStyle: true });
  const url = new URL(await presignGetObject(client, { bucket: 'b', key: 'results/a b+c.parquet', expiresInSeconds: 60, now }));
  client.destroy();
  assert.equal(url.origin + url.pathname, 'http://127.0.0.1:9000/b/results/a%20b%2Bc.parquet');
  assert.equal(url.searchParams.get('X-Amz-Security-Token'), 'tok/en');
  assert.equal(url.searchParams.get('X-Amz-Credential'), 'AKIAIOSFODNN7EXAMPLE/20130524/eu-west-1/s3/aws4_request');
  assert.match(url.searchParams.get('X-Amz-Signature') ?? '', /^[0-9a-f]{64}$/);
});
