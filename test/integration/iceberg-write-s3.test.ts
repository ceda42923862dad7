// The Iceberg writer against S3 (s3rver through @aws-sdk/client-s3): a table created, appended
// to, and rewritten by DELETE with every file in the bucket, read back through local copies.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { buildIcebergReadSql, openIcebergTable, planTableScan } from '../../runtime/catalog/iceberg/index.ts';
import { findOrphanFiles } from '../../runtime/catalog/iceberg/orphans.ts';
import { uriTableIO } from '../../runtime/catalog/iceberg/writer-io.ts';
import { appendRows, createTableFromDefinitions, deleteRows, localReadOptions, type WriterContext } from '../../runtime/catalog/iceberg/writer.ts';
import { MemoryPointerStore } from '../../runtime/catalog/iceberg/memory-pointer-store.ts';
import { startS3rver, type TestS3 } from '../helpers/s3rver.ts';

describe('Iceberg writes to S3 (s3rver)', () => {
  let s3: TestS3;
  let dir: string;
  let instance: DuckDBInstance;
  let conn: DuckDBConnection;
  let ctx: WriterContext;
  const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };

  before(async () => {
    s3 = await startS3rver();
    process.env.AWS_ACCESS_KEY_ID = s3.credentials.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = s3.credentials.secretAccessKey;
    dir = await mkdtemp(join(tmpdir(), 'puffindb-iceberg-s3-'));
    instance = await DuckDBInstance.create(':memory:');
    conn = await instance.connect();
    const io = uriTableIO({ s3Endpoint: s3.endpoint });
    // Stands in for the worker file cache: each S3 object is downloaded once to a local file.
    const cache = join(dir, 'cache');
    await mkdir(cache, { recursive: true });
    const local = new Map<string, string>();
    ctx = {
      conn,
      store: new MemoryPointerStore(),
      io,
      stagingDir: join(dir, 'staging'),
      warehouseUri: `s3://${s3.bucket}/warehouse`,
      localFile: async (uri) => {
        let path = local.get(uri);
        if (!path) {
          path = join(cache, `${randomUUID()}.parquet`);
          await writeFile(path, await io.read(uri));
          local.set(uri, path);
        }
        return path;
      },
    };
  });
  after(async () => {
    conn?.closeSync();
    instance?.closeSync();
    await s3?.stop();
    await rm(dir, { recursive: true, force: true });
    process.env.AWS_ACCESS_KEY_ID = saved.id;
    process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
    if (saved.id === undefined) delete process.env.AWS_ACCESS_KEY_ID;
    if (saved.secret === undefined) delete process.env.AWS_SECRET_ACCESS_KEY;
  });

  test('create, append, delete and read back, all files in the bucket', async () => {
    const created = await createTableFromDefinitions(ctx, 'events', 'id BIGINT, kind VARCHAR, day DATE', { partitionBy: 'kind, year(day)' });
    assert.match(created.metadataLocation, new RegExp(`^s3://${s3.bucket}/warehouse/events/metadata/00000-.*\\.metadata\\.json$`));
    await appendRows(ctx, 'events', `SELECT i, CASE WHEN i % 2 = 0 THEN 'a' ELSE 'b' END, DATE '2023-12-30' + i::INTEGER FROM range(10) r(i)`);
    const r = await deleteRows(ctx, 'events', `kind = 'a' AND day < DATE '2024-01-01'`);
    assert.equal(r.rowsAffected, 1);

    const table = await openIcebergTable((await ctx.store.get('events')) as string, { io: ctx.io });
    const scan = await planTableScan(table);
    assert.ok(scan.dataFiles.every((f) => f.uri.startsWith(`s3://${s3.bucket}/warehouse/events/data/`)));
    const sql = buildIcebergReadSql(scan, undefined, await localReadOptions(ctx, scan.dataFiles));
    const rows = (await conn.runAndReadAll(`SELECT id FROM (${sql}) ORDER BY id`)).getRowsJson().map((x) => Number(x[0]));
    assert.deepEqual(rows, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual((await findOrphanFiles(ctx.store, 'events', ctx.io)).orphans, []);
  });
});
