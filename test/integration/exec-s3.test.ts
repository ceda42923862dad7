import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { Engine } from '../../runtime/engine/engine.ts';
import { Coordinator } from '../../runtime/exec/coordinator.ts';
import { InProcessInvoker } from '../../runtime/exec/in-process-invoker.ts';
import type { FileRef } from '../../runtime/planner/plan.ts';
import type { Invoker } from '../../runtime/exec/invoker.ts';
import { startS3rver, type TestS3 } from '../helpers/s3rver.ts';
import { expectedSumByGroup, makeSandbox, sumByGroupPlan, writeTable, type Sandbox } from '../runtime/exec/fixtures.ts';

describe('execution over S3 (s3rver)', () => {
  let s3: TestS3;
  let sandbox: Sandbox;
  let localFiles: FileRef[];
  let s3Files: FileRef[];
  let invoker: InProcessInvoker;
  let engine: Engine;
  const savedEnv = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };

  before(async () => {
    s3 = await startS3rver();
    // The stores build their S3 clients from the default credential chain.
    process.env.AWS_ACCESS_KEY_ID = s3.credentials.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = s3.credentials.secretAccessKey;
    sandbox = await makeSandbox();
    localFiles = await writeTable(sandbox, 3, 200);
    s3Files = [];
    for (const [i, file] of localFiles.entries()) {
      const key = `warehouse/t/part-${i}.parquet`;
      await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: await readFile(fileURLToPath(file.uri)) }));
      s3Files.push({ ...file, uri: `s3://${s3.bucket}/${key}` });
    }
    const settings = {
      ...sandbox.settings,
      warehouse: `s3://${s3.bucket}/warehouse/`,
      shuffleUrl: `s3://${s3.bucket}/shuffle/`,
      s3Endpoint: s3.endpoint,
    };
    invoker = await InProcessInvoker.create(settings);
    const scratchDir = join(sandbox.root, 'coordinator');
    engine = await Engine.create({ threads: 1, allowedDirectories: [scratchDir] });
  });

  after(async () => {
    await invoker?.close();
    engine?.close();
    await sandbox?.cleanup();
    await s3?.stop();
    process.env.AWS_ACCESS_KEY_ID = savedEnv.id;
    process.env.AWS_SECRET_ACCESS_KEY = savedEnv.secret;
    if (savedEnv.id === undefined) delete process.env.AWS_ACCESS_KEY_ID;
    if (savedEnv.secret === undefined) delete process.env.AWS_SECRET_ACCESS_KEY;
  });

  test('workers read S3 inputs through the cache; large partials shuffle through S3 and are deleted after', async () => {
    const uris: string[] = [];
    const recording: Invoker = {
      invoke: async (request, signal) => {
        const result = await invoker.invoke(request, signal);
        if (result.partial.kind === 'stored') uris.push(result.partial.uri);
        return result;
      },
      close: async () => {},
    };
    const coordinator = new Coordinator({
      invoker: recording,
      engine,
      scratchDir: join(sandbox.root, 'coordinator'),
      concurrency: 3,
      retries: 0,
      queryTimeoutMs: 30_000,
      inlineLimitBytes: 1,
      storeOptions: { s3Endpoint: s3.endpoint, region: 'us-east-1' },
      shuffleUrl: `s3://${s3.bucket}/shuffle/`,
    });
    const outcome = await coordinator.execute(sumByGroupPlan(s3Files));
    assert.deepEqual(outcome.rows, (await expectedSumByGroup(sandbox, localFiles)).rows);
    assert.equal(
      outcome.stats.bytesScanned,
      s3Files.reduce((s, f) => s + f.sizeBytes, 0),
    );
    assert.equal(uris.length, 3);
    assert.ok(uris.every((uri) => uri.startsWith(`s3://${s3.bucket}/shuffle/`)));
    const left = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: 'shuffle/' }));
    assert.deepEqual(left.Contents ?? [], []);
  });
});
