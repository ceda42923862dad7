// Concurrent writers and crashed writers against both pointer stores: the local-file one and
// Redis (a real redis-server). Writers are child processes, each with its own DuckDB.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { FilePointerStore } from '../../runtime/catalog/iceberg/file-pointer-store.ts';
import type { PointerStore } from '../../runtime/catalog/iceberg/pointer-store.ts';
import { RedisPointerStore } from '../../runtime/catalog/iceberg/redis-pointer-store.ts';
import { loadTable } from '../../runtime/catalog/iceberg/commit.ts';
import { findOrphanFiles } from '../../runtime/catalog/iceberg/orphans.ts';
import { localTableIO } from '../../runtime/catalog/iceberg/writer-io.ts';
import { appendRows, createTableFromDefinitions, type WriterContext } from '../../runtime/catalog/iceberg/writer.ts';
import { buildIcebergReadSql, openIcebergTable, planTableScan } from '../../runtime/catalog/iceberg/index.ts';
import { startRedisServer, type TestRedis } from '../helpers/redis-server.ts';
import type { WriterChildConfig } from '../helpers/iceberg-writer-child.ts';

const CHILD = fileURLToPath(new URL('../helpers/iceberg-writer-child.ts', import.meta.url));
// Five processes committing at once on two cores keep every commit contended (most attempts
// lose the compare-and-swap at least once); 25 appends each made this the slowest file.
const WRITERS = 5;
const APPENDS = 8;
const ROWS = 3;
const CHILD_TIMEOUT_MS = 90_000;

function runChild(config: WriterChildConfig): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`writer ${config.writer} timed out; stderr: ${err}`));
    }, CHILD_TIMEOUT_MS);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`writer ${config.writer} exited with ${code}: ${err}`));
    });
  });
}

/** Start a crash-mode writer, wait until its data files are written, then SIGKILL it. */
function crashChild(config: WriterChildConfig): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`crash writer never got ready; stderr: ${err}`));
    }, CHILD_TIMEOUT_MS);
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^READY (.*)$/m.exec(out);
      if (m) {
        child.kill('SIGKILL');
        child.once('exit', (_code, signal) => {
          clearTimeout(timer);
          if (signal !== 'SIGKILL') reject(new Error(`crash writer exited by ${signal}`));
          else resolve(JSON.parse(m[1]) as string[]);
        });
      }
    });
  });
}

interface Harness {
  name: string;
  store: () => PointerStore;
  childStore: () => WriterChildConfig['store'];
}

function scenario(h: Harness, dirOf: () => string): void {
  test(`${h.name}: ${WRITERS} writers x ${APPENDS} appends commit ${WRITERS * APPENDS} snapshots, none lost, none twice`, async () => {
    const dir = dirOf();
    const store = h.store();
    const instance = await DuckDBInstance.create(':memory:');
    const conn = await instance.connect();
    try {
      const ctx: WriterContext = { conn, store, io: localTableIO(), stagingDir: join(dir, 'staging'), warehouseUri: pathToFileURL(join(dir, 'warehouse')).href };
      await createTableFromDefinitions(ctx, 'events', 'w INTEGER, seq INTEGER, k INTEGER');
      const outputs = await Promise.all(
        Array.from({ length: WRITERS }, (_, writer) =>
          runChild({ store: h.childStore(), table: 'events', warehouseUri: ctx.warehouseUri, stagingDir: join(dir, `staging-${writer}`), writer, mode: 'append', appends: APPENDS, rows: ROWS }),
        ),
      );
      const reported = outputs.map((o) => JSON.parse(o) as { commits: { snapshotId: string; attempts: number }[] });
      const snapshotIds = reported.flatMap((r) => r.commits.map((c) => c.snapshotId));
      assert.equal(new Set(snapshotIds).size, WRITERS * APPENDS);
      assert.ok(reported.some((r) => r.commits.some((c) => c.attempts > 1)), 'writers really raced (some commit retried)');

      const t = await loadTable(store, 'events', ctx.io);
      // The current snapshot's ancestry holds every reported snapshot, each once, in sequence.
      const chain: bigint[] = [];
      let s = t.metadata.snapshots.find((x) => x.snapshotId === t.metadata.currentSnapshotId);
      while (s) {
        chain.push(s.snapshotId);
        s = s.parentSnapshotId === undefined ? undefined : t.metadata.snapshots.find((x) => x.snapshotId === s?.parentSnapshotId);
      }
      assert.equal(chain.length, WRITERS * APPENDS);
      assert.deepEqual(new Set(chain.map(String)), new Set(snapshotIds));
      assert.deepEqual(t.metadata.snapshots.map((x) => x.sequenceNumber), Array.from({ length: WRITERS * APPENDS }, (_, i) => BigInt(i + 1)));
      const current = t.metadata.snapshots.find((x) => x.snapshotId === t.metadata.currentSnapshotId);
      assert.equal(current?.summary['total-records'], String(WRITERS * APPENDS * ROWS));

      const table = await openIcebergTable(t.metadataLocation);
      const scan = await planTableScan(table);
      const r = await conn.runAndReadAll(`SELECT count(*) AS n, count(DISTINCT (w, seq)) AS batches, max(c) AS maxc, min(c) AS minc FROM (SELECT w, seq, count(*) AS c FROM (${buildIcebergReadSql(scan)}) GROUP BY w, seq)`);
      const [row] = r.getRowObjectsJson();
      assert.equal(Number(row.n), WRITERS * APPENDS, 'one group per (writer, seq)');
      assert.equal(Number(row.batches), WRITERS * APPENDS);
      assert.equal(Number(row.minc), ROWS, 'no batch lost rows');
      assert.equal(Number(row.maxc), ROWS, 'no batch applied twice');
    } finally {
      conn.closeSync();
      instance.closeSync();
      if (store instanceof RedisPointerStore) await store.close();
    }
  });

  test(`${h.name}: a writer killed after writing data files and before committing leaves the table at its previous snapshot, with orphans listed`, async () => {
    const dir = dirOf();
    const store = h.store();
    const instance = await DuckDBInstance.create(':memory:');
    const conn = await instance.connect();
    try {
      const ctx: WriterContext = { conn, store, io: localTableIO(), stagingDir: join(dir, 'staging'), warehouseUri: pathToFileURL(join(dir, 'warehouse')).href };
      await createTableFromDefinitions(ctx, 'crashy', 'w INTEGER, seq INTEGER, k INTEGER', { partitionBy: 'k' });
      await appendRows(ctx, 'crashy', `SELECT 99, 0, 1`);
      const before = await store.get('crashy');
      const orphaned = await crashChild({ store: h.childStore(), table: 'crashy', warehouseUri: ctx.warehouseUri, stagingDir: join(dir, 'staging-crash'), writer: 1, mode: 'crash', appends: 1, rows: 4 });
      assert.equal(orphaned.length, 4, 'one data file per partition was written');
      for (const f of orphaned) assert.ok((await stat(fileURLToPath(f))).isFile());

      assert.equal(await store.get('crashy'), before, 'the pointer did not move');
      const table = await openIcebergTable(before as string);
      const scan = await planTableScan(table);
      const rows = (await conn.runAndReadAll(buildIcebergReadSql(scan))).getRowsJson();
      assert.deepEqual(rows, [[99, 0, 1]]);

      const report = await findOrphanFiles(store, 'crashy', ctx.io);
      assert.deepEqual(report.orphans, [...orphaned].sort());
      // The table stays writable after the crash.
      await appendRows(ctx, 'crashy', `SELECT 2, 0, 5`);
      assert.deepEqual((await findOrphanFiles(store, 'crashy', ctx.io)).orphans, [...orphaned].sort());
    } finally {
      conn.closeSync();
      instance.closeSync();
      if (store instanceof RedisPointerStore) await store.close();
    }
  });
}

describe('Iceberg writes under concurrency and crashes', () => {
  let root: string;
  let redis: TestRedis;
  let n = 0;
  let current = '';
  const nextDir = (): string => (current = join(root, `case-${n++}`));
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'puffindb-iceberg-concurrency-'));
    redis = await startRedisServer();
  });
  after(async () => {
    await redis?.close();
    await rm(root, { recursive: true, force: true });
  });

  scenario(
    {
      name: 'file pointer store',
      store: () => new FilePointerStore(join(current, 'pointers')),
      childStore: () => ({ kind: 'file', dir: join(current, 'pointers') }),
    },
    nextDir,
  );
  scenario(
    {
      name: 'redis pointer store',
      store: () => RedisPointerStore.connect(redis.url, { key: `pointers:${current}` }),
      childStore: () => ({ kind: 'redis', url: redis.url, key: `pointers:${current}` }),
    },
    nextDir,
  );
});
