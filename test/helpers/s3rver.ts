// A real S3-compatible server (s3rver) in this process on a free loopback port, for tests
// of everything that speaks S3. One bucket, 'test', credentials S3RVER/S3RVER.

import { S3Client } from '@aws-sdk/client-s3';
import type * as crypto from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface S3rverOptions {
  port: number;
  address: string;
  silent: boolean;
  directory: string;
  configureBuckets: { name: string }[];
}

interface S3rverInstance {
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
}

export interface TestS3 {
  endpoint: string;
  bucket: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** A client for the server; destroyed by stop(). */
  client: S3Client;
  stop(): Promise<void>;
}

const require = createRequire(import.meta.url);

/**
 * s3rver 3.7 mints ListObjectsV2 continuation tokens with DES, which OpenSSL 3 (Node 17+)
 * refuses, so every truncated listing fails with a 500. Inside the test process only, map
 * that one cipher to AES; the token stays opaque to the client either way.
 */
function allowS3rverContinuationTokens(): void {
  const cjsCrypto = require('node:crypto') as typeof crypto & { __s3rverDes?: boolean };
  if (cjsCrypto.__s3rverDes) return;
  const createCipheriv = cjsCrypto.createCipheriv;
  const createDecipheriv = cjsCrypto.createDecipheriv;
  const widen = (b: crypto.BinaryLike | crypto.CipherKey | null): Buffer => {
    const bytes = Buffer.from(b as Uint8Array);
    return Buffer.concat([bytes, bytes]);
  };
  Object.assign(cjsCrypto, {
    __s3rverDes: true,
    createCipheriv: (alg: string, key: crypto.CipherKey, iv: crypto.BinaryLike | null, opts?: unknown) =>
      alg === 'des' ? createCipheriv('aes-128-cbc', widen(key), widen(iv)) : createCipheriv(alg, key, iv, opts as never),
    createDecipheriv: (alg: string, key: crypto.CipherKey, iv: crypto.BinaryLike | null, opts?: unknown) =>
      alg === 'des' ? createDecipheriv('aes-128-cbc', widen(key), widen(iv)) : createDecipheriv(alg, key, iv, opts as never),
  });
}

export async function startS3rver(bucket = 'test'): Promise<TestS3> {
  allowS3rverContinuationTokens();
  const S3rver = require('s3rver') as new (options: S3rverOptions) => S3rverInstance;
  const directory = await mkdtemp(join(tmpdir(), 'puffindb-s3rver-'));
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory, configureBuckets: [{ name: bucket }] });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials });
  return {
    endpoint,
    bucket,
    credentials,
    client,
    async stop() {
      client.destroy();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
