// Delta tables on S3 (s3rver): registered by s3:// URI, the log listed and read through the
// object store, a Parquet checkpoint fetched to a temporary file for DuckDB, data files and
// deletion vector files fetched by the workers. One table written with the test writer
// (checkpoint, then a commit with a file deletion vector and an inline one) and the
// table-with-dv-small fixture, uploaded as they are.

import assert from 'node:assert/strict';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { WarehouseCatalog } from '../../runtime/catalog/warehouse-catalog.ts';
import { Engine } from '../../runtime/engine/engine.ts';
import { LocalCluster } from '../../runtime/exec/cluster.ts';
import { loadSettings, toRootUrl } from '../../runtime/settings.ts';
import { commitInfo, deletionVectorFile, inlineDeletionVector, metaData, protocol, version20, writeCheckpoint, writeCommit, writeDataFile } from '../helpers/delta-writer.ts';
import { startS3rver, type TestS3 } from '../helpers/s3rver.ts';
import { tempDir } from '../runtime/catalog/iceberg/fixtures.ts';
import { rmSync } from 'node:fs';

const FIXTURES = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../shared/fixtures/delta');
const dir = tempDir('delta-s3');
const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
let s3: TestS3;
let engine: Engine;
let catalog: WarehouseCatalog;
let cluster: LocalCluster;

function files(root: string): string[] {
  return readdirSync(root, { recursive: true, encoding: 'utf8' }).filter((p) => statSync(join(root, p)).isFile());
}

async function upload(root: string, prefix: string): Promise<void> {
  for (const p of files(root)) await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `${prefix}/${relative(root, join(root, p))}`, Body: readFileSync(join(root, p)) }));
}

before(async () => {
  s3 = await startS3rver();
  process.env.AWS_ACCESS_KEY_ID = s3.credentials.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = s3.credentials.secretAccessKey;
  engine = await Engine.create({ threads: 1 });
  const t = join(dir.path, 't');
  const fields = [{ name: 'id', type: 'long' }];
  const a = await writeDataFile(engine, t, 'a.parquet', 'SELECT i::BIGINT AS id FROM range(0, 10) t(i)');
  writeCommit(t, 0, [commitInfo(0), protocol(3, ['deletionVectors']), metaData(fields), a]);
  await writeCheckpoint(engine, t, 0, [protocol(3, ['deletionVectors']), metaData(fields), a]);
  rmSync(join(t, '_delta_log', `${version20(0)}.json`));
  const [dv] = deletionVectorFile(t, [[0, 1]], { prefix: 'xy' });
  writeCommit(t, 1, [commitInfo(1), await writeDataFile(engine, t, 'b.parquet', 'SELECT i::BIGINT AS id FROM range(10, 20) t(i)', { deletionVector: dv }), await writeDataFile(engine, t, 'c.parquet', 'SELECT i::BIGINT AS id FROM range(20, 30) t(i)', { deletionVector: inlineDeletionVector([9]) })]);
  await upload(t, 'lake/t');
  await upload(join(FIXTURES, 'table-with-dv-small'), 'lake/dv-small');
  catalog = await WarehouseCatalog.open(join(dir.path, 'home', 'catalog'), engine, { storeOptions: { s3Endpoint: s3.endpoint, region: 'us-east-1' } });
  const home = join(dir.path, 'home');
  const settings = loadSettings({}, { home, warehouse: toRootUrl(join(dir.path, 'warehouse')), shuffleUrl: toRootUrl(join(home, 'shuffle')), cacheDir: join(home, 'cache'), threads: 1, workers: 1, maxFragments: 2, s3Endpoint: s3.endpoint, region: 'us-east-1' });
  cluster = await LocalCluster.open({ settings, catalog, invoker: 'in-process' });
});

after(async () => {
  await cluster?.close();
  engine?.close();
  await s3?.stop();
  dir.remove();
  for (const [k, v] of [['AWS_ACCESS_KEY_ID', saved.id], ['AWS_SECRET_ACCESS_KEY', saved.secret]] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

test('Delta tables on S3 register and read (checkpoint, deletion vectors in a file and inline)', async () => {
  assert.equal(await catalog.isDelta(`s3://${s3.bucket}/lake/t`), true);
  const snap = await catalog.registerDelta('t', `s3://${s3.bucket}/lake/t/`);
  assert.match(snap.snapshotId, /^1:/);
  assert.ok(snap.files.every((f) => f.uri.startsWith(`s3://${s3.bucket}/lake/t/`)));
  assert.deepEqual((await cluster.query('SELECT count(*), min(id), max(id), sum(id) FROM t')).rows, [['27', '0', '28', String(435 - 10 - 11 - 29)]]);
  await catalog.registerDelta('dv_small', `s3://${s3.bucket}/lake/dv-small`);
  assert.deepEqual((await cluster.query('SELECT count(*) FROM dv_small')).rows, [['8']]);
});
