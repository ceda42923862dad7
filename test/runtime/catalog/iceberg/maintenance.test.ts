// Table maintenance on real Iceberg tables (written by the writer, read back by plain DuckDB
// over the files scan planning lists): expire snapshots, compaction, rewrite manifests,
// remove orphan files. What a maintenance run deletes is checked against an independent
// walk of the remaining metadata (JSON.parse and avsc's own Avro decoder, none of the
// runtime's readers). Concurrency: a commit landing between the maintenance's read and its
// compare-and-swap (a store that lets one in at that moment).

import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { loadTable } from '../../../../runtime/catalog/iceberg/commit.ts';
import { buildIcebergReadSql, planTableScan } from '../../../../runtime/catalog/iceberg/index.ts';
import { expireSnapshots, removeOrphanFiles, retainedSnapshots, rewriteDataFiles, rewriteManifests } from '../../../../runtime/catalog/iceberg/maintenance.ts';
import { MemoryPointerStore } from '../../../../runtime/catalog/iceberg/memory-pointer-store.ts';
import type { PointerStore } from '../../../../runtime/catalog/iceberg/pointer-store.ts';
import { localTableIO } from '../../../../runtime/catalog/iceberg/writer-io.ts';
import { appendRows, createTableAsSelect, deleteRows, type WriterContext } from '../../../../runtime/catalog/iceberg/writer.ts';
import { PuffinError } from '../../../../runtime/errors.ts';
import { rawRecords, tempDir } from './fixtures.ts';

const dir = tempDir('maintenance');
const io = localTableIO();
let db: DuckDBInstance;
let conn: DuckDBConnection;

/** A store that runs `hook` once, just before the next compare-and-swap of `name`. */
class RacingStore extends MemoryPointerStore {
  hook?: () => Promise<void>;
  override async compareAndSwap(name: string, expected: string | undefined, next: string): Promise<boolean> {
    const h = this.hook;
    if (h) {
      this.hook = undefined;
      await h();
    }
    return super.compareAndSwap(name, expected, next);
  }
}

function ctxOf(store: PointerStore, sub: string): WriterContext {
  return { conn, store, io, stagingDir: join(dir.path, 'staging', sub), warehouseUri: `file://${join(dir.path, 'warehouse', sub)}` };
}

/** Rows of the table at its current snapshot (or `snapshotId`), read by DuckDB over the planned files, sorted. */
async function rows(store: PointerStore, name: string, snapshotId?: string): Promise<string[]> {
  const t = await loadTable(store, name, io);
  const scan = await planTableScan({ metadataLocation: t.metadataLocation, tableUri: t.metadata.location, metadata: t.metadata, io }, snapshotId ? { snapshotId } : {});
  const r = await conn.runAndReadAll(`SELECT * FROM (${buildIcebergReadSql(scan)}) ORDER BY ALL`);
  return r.getRowsJson().map((x) => JSON.stringify(x));
}

async function expected(sql: string): Promise<string[]> {
  return (await conn.runAndReadAll(`SELECT * FROM (${sql}) ORDER BY ALL`)).getRowsJson().map((x) => JSON.stringify(x));
}

const pathOf = (uri: string): string => fileURLToPath(uri);

/** Every file the table's current metadata references, walked independently (JSON + avsc). */
async function referenced(store: PointerStore, name: string): Promise<Set<string>> {
  const loc = (await store.get(name)) as string;
  const meta = JSON.parse(readFileSync(pathOf(loc), 'utf8')) as { snapshots: { 'manifest-list': string }[] };
  const out = new Set<string>();
  for (const s of meta.snapshots) {
    out.add(pathOf(s['manifest-list']));
    for (const mf of (await rawRecords(pathOf(s['manifest-list']))).records) {
      const p = pathOf(String(mf.manifest_path));
      out.add(p);
      for (const e of (await rawRecords(p)).records) {
        if (Number(e.status) !== 2) out.add(pathOf(String((e.data_file as { file_path: string }).file_path)));
      }
    }
  }
  return out;
}

/** Files under the table's location, metadata.json files aside. */
async function filesOf(store: PointerStore, name: string): Promise<string[]> {
  const t = await loadTable(store, name, io);
  return (await io.listRecursive(t.metadata.location)).filter((u) => !u.endsWith('.metadata.json')).map(pathOf).sort();
}

before(async () => {
  db = await DuckDBInstance.create(':memory:');
  conn = await db.connect();
});
after(() => {
  conn.closeSync();
  db.closeSync();
  dir.remove();
});

describe('expire snapshots', () => {
  const store = new RacingStore();
  const ctx = () => ctxOf(store, 'expire');
  let first: string;
  let third: string;

  test('deletes exactly the files only the expired snapshots referenced; time travel to a retained one works', async () => {
    const c = await createTableAsSelect(ctx(), 'e', 'SELECT i AS id, i % 3 AS g FROM range(30) r(i)', { partitionBy: 'g' });
    first = c.snapshotId as string;
    await appendRows(ctx(), 'e', 'SELECT i AS id, i % 3 AS g FROM range(30, 40) r(i)');
    third = (await deleteRows(ctx(), 'e', 'id < 5')).snapshotId as string;
    await appendRows(ctx(), 'e', 'SELECT i AS id, 7 AS g FROM range(40, 45) r(i)');
    const before = await rows(store, 'e');
    assert.deepEqual(before, await expected('SELECT i AS id, i % 3 AS g FROM range(5, 40) r(i) UNION ALL SELECT i, 7 FROM range(40, 45) r(i)'));
    const filesBefore = await filesOf(store, 'e');
    const atThird = await rows(store, 'e', third);

    const r = await expireSnapshots(store, 'e', io, { olderThanMs: Date.now() + 60_000, retainLast: 2 });
    assert.equal(r.snapshotsExpired, 2);
    assert.equal(r.snapshotsRetained, 2);
    assert.ok(r.dataFilesDeleted >= 1, JSON.stringify(r));
    const remaining = await referenced(store, 'e');
    const filesAfter = await filesOf(store, 'e');
    // Deleted = the files that were there minus those still there; none is referenced, and every unreferenced one went.
    const gone = filesBefore.filter((f) => !filesAfter.includes(f));
    assert.deepEqual(r.deleted.map(pathOf).sort(), gone);
    for (const f of gone) assert.ok(!remaining.has(f), `deleted but referenced: ${f}`);
    for (const f of remaining) assert.ok(existsSync(f), `referenced but missing: ${f}`);
    assert.deepEqual(filesAfter.filter((f) => !remaining.has(f)), [], 'every unreferenced file is gone');
    assert.deepEqual(await rows(store, 'e'), before);
    assert.deepEqual(await rows(store, 'e', third), atThird, 'time travel to a retained snapshot');
    await assert.rejects(rows(store, 'e', first), (err: unknown) => err instanceof PuffinError && err.code === 'not_found' && new RegExp(`snapshot ${first} does not exist`).test(err.message));
    // Nothing more to expire: no commit.
    const again = await expireSnapshots(store, 'e', io, { olderThanMs: Date.now() + 60_000, retainLast: 2 });
    assert.equal(again.snapshotsExpired, 0);
    assert.equal(again.metadataLocation, r.metadataLocation);
  });

  test('a commit landing during the expiry: retried on the new base, the new snapshot\'s files kept; a long read keeps its files', async () => {
    // A read of the current snapshot planned before the expiry (its files must survive: it is retained).
    const t = await loadTable(store, 'e', io);
    const planned = await planTableScan({ metadataLocation: t.metadataLocation, tableUri: t.metadata.location, metadata: t.metadata, io });
    store.hook = async () => {
      await appendRows(ctx(), 'e', 'SELECT 100 AS id, 1 AS g');
    };
    const r = await expireSnapshots(store, 'e', io, { olderThanMs: Date.now() + 60_000, retainLast: 1 });
    assert.equal(r.snapshotsExpired, 2, 'the two older ones (the new append is current)');
    const remaining = await referenced(store, 'e');
    for (const f of remaining) assert.ok(existsSync(f), `referenced but missing: ${f}`);
    for (const f of planned.dataFiles) assert.ok(existsSync(pathOf(f.uri)), `the planned read's file is still there: ${f.uri}`);
    const got = await conn.runAndReadAll(`SELECT count(*) FROM (${buildIcebergReadSql(planned)})`);
    assert.equal(Number(got.getRows()[0][0]), 40);
    assert.equal((await rows(store, 'e')).length, 41);
    const meta = (await loadTable(store, 'e', io)).metadata;
    assert.equal(meta.snapshots.length, 1);
  });

  test('refs keep their snapshots; retain_last must be at least 1', async () => {
    const snap = (id: bigint, parent: bigint | undefined, ts: number) => ({ snapshotId: id, ...(parent ? { parentSnapshotId: parent } : {}), sequenceNumber: id, timestampMs: ts, summary: {} });
    const m = (await loadTable(store, 'e', io)).metadata;
    const fake = { ...m, currentSnapshotId: 5n, snapshots: [snap(1n, undefined, 1), snap(2n, 1n, 2), snap(3n, 2n, 3), snap(4n, 3n, 4), snap(5n, 4n, 5), snap(9n, 2n, 6)], refs: { main: { snapshotId: 5n, type: 'branch' as const }, v1: { snapshotId: 1n, type: 'tag' as const }, dev: { snapshotId: 9n, type: 'branch' as const, minSnapshotsToKeep: 2 } } };
    assert.deepEqual([...retainedSnapshots(fake, 100, 2)].sort(), [1n, 2n, 4n, 5n, 9n], 'main keeps 2, tag v1, branch dev keeps 2 (9 and its parent 2)');
    assert.deepEqual([...retainedSnapshots(fake, 4, 1)].sort(), [1n, 2n, 4n, 5n, 9n], 'newer than the bound: 4, 5 and 9');
    await assert.rejects(expireSnapshots(store, 'e', io, { retainLast: 0 }), (err: unknown) => err instanceof PuffinError && err.code === 'bad_request');
  });
});

describe('compaction (rewrite_data_files)', () => {
  const store = new RacingStore();
  const ctx = () => ctxOf(store, 'compact');

  test('small files per partition become one, rows unchanged, a replace snapshot; a concurrent append lands too', async () => {
    await createTableAsSelect(ctx(), 'c', 'SELECT i AS id, i % 2 AS g, i * 1.5 AS v FROM range(20) r(i)', { partitionBy: 'g' });
    for (let k = 0; k < 3; k++) await appendRows(ctx(), 'c', `SELECT i AS id, i % 2 AS g, i * 1.5 AS v FROM range(${20 + k * 10}, ${30 + k * 10}) r(i)`);
    await deleteRows(ctx(), 'c', 'id = 3');
    const before = await rows(store, 'c');
    const filesBefore = (await planTableScan({ ...(await loadTable(store, 'c', io)), tableUri: '', io } as never)).dataFiles.length;
    assert.equal(filesBefore, 8);
    store.hook = async () => {
      await appendRows(ctx(), 'c', 'SELECT 1000 AS id, 0 AS g, 0.5 AS v');
    };
    const r = await rewriteDataFiles(ctx(), 'c');
    assert.equal(r.filesRewritten, 8);
    assert.equal(r.filesAdded, 2, 'one file per partition');
    assert.equal(r.rows, before.length);
    const after = await rows(store, 'c');
    assert.equal(after.length, before.length + 1);
    assert.deepEqual(after, await expected('SELECT i AS id, i % 2 AS g, i * 1.5 AS v FROM range(50) r(i) WHERE i <> 3 UNION ALL SELECT 1000, 0, 0.5'));
    const m = (await loadTable(store, 'c', io)).metadata;
    const snap = m.snapshots.find((s) => String(s.snapshotId) === r.snapshotId);
    assert.equal(snap?.summary.operation, 'replace');
    assert.equal(m.currentSnapshotId, snap?.snapshotId, 'the compaction retried on top of the append');
  });

  test('a concurrent delete of a file being rewritten is a conflict, and nothing is committed', async () => {
    await appendRows(ctx(), 'c', 'SELECT 2000 AS id, 1 AS g, 1.0 AS v');
    const before = await loadTable(store, 'c', io);
    store.hook = async () => {
      await deleteRows(ctx(), 'c', 'id = 2000');
    };
    await assert.rejects(rewriteDataFiles(ctx(), 'c'), (err: unknown) => err instanceof PuffinError && err.code === 'conflict' && /rewrite_data_files on 'c'.*run the compaction again/.test(err.message));
    const now = await loadTable(store, 'c', io);
    assert.equal(now.metadata.snapshots.length, before.metadata.snapshots.length + 1, 'only the delete landed');
  });

  test('nothing to do: large files, or one small file alone', async () => {
    const r = await rewriteDataFiles(ctx(), 'c', { targetFileSize: 10 });
    assert.equal(r.snapshotId, null);
  });
});

describe('rewrite manifests and remove orphan files', () => {
  const store = new MemoryPointerStore();
  const ctx = () => ctxOf(store, 'manifests');

  test('many small manifests become one, same data files, a replace snapshot', async () => {
    await createTableAsSelect(ctx(), 'm', 'SELECT i AS id FROM range(5) r(i)');
    for (let k = 1; k < 5; k++) await appendRows(ctx(), 'm', `SELECT ${k * 10} AS id`);
    const before = await rows(store, 'm');
    const t = await loadTable(store, 'm', io);
    const scanBefore = await planTableScan({ metadataLocation: t.metadataLocation, tableUri: t.metadata.location, metadata: t.metadata, io });
    const r = await rewriteManifests(store, 'm', io);
    assert.equal(r.manifestsRewritten, 5);
    assert.equal(r.manifestsAdded, 1);
    assert.equal(r.entries, 5);
    const t2 = await loadTable(store, 'm', io);
    const scan = await planTableScan({ metadataLocation: t2.metadataLocation, tableUri: t2.metadata.location, metadata: t2.metadata, io });
    assert.equal(scan.counts.manifestsTotal, 1);
    assert.deepEqual(scan.dataFiles.map((f) => f.uri).sort(), scanBefore.dataFiles.map((f) => f.uri).sort());
    assert.deepEqual(scan.dataFiles.map((f) => f.sequenceNumber).sort(), scanBefore.dataFiles.map((f) => f.sequenceNumber).sort(), 'data sequence numbers kept');
    assert.equal(t2.metadata.snapshots.at(-1)?.summary.operation, 'replace');
    assert.deepEqual(await rows(store, 'm'), before);
    // Expiring everything but the current snapshot now deletes the old manifests too.
    const e = await expireSnapshots(store, 'm', io, { olderThanMs: Date.now() + 1000 });
    assert.equal(e.manifestsDeleted, 5);
    assert.equal(e.dataFilesDeleted, 0, 'the data files are all still live');
    assert.deepEqual(await rows(store, 'm'), before);
  });

  test('orphans older than the bound are deleted, newer ones kept; referenced files never', async () => {
    const t = await loadTable(store, 'm', io);
    const loc = pathOf(t.metadata.location);
    const old = join(loc, 'data', 'old-orphan.parquet');
    const fresh = join(loc, 'data', 'fresh-orphan.parquet');
    writeFileSync(old, 'x'.repeat(10));
    writeFileSync(fresh, 'y');
    const hourAgo = (Date.now() - 3600_000) / 1000;
    utimesSync(old, hourAgo, hourAgo);
    const stat = async (uri: string) => (await import('node:fs/promises')).stat(pathOf(uri)).then((s) => s.mtimeMs);
    const dflt = await removeOrphanFiles(store, 'm', io, { modifiedMs: stat });
    assert.equal(dflt.filesDeleted, 0, 'default bound: 3 days');
    assert.equal(dflt.orphansKeptTooNew, 2);
    const refsBefore = await referenced(store, 'm');
    const r = await removeOrphanFiles(store, 'm', io, { olderThanMs: Date.now() - 60_000, modifiedMs: stat });
    assert.deepEqual(r.deleted.map(pathOf), [old]);
    assert.equal(r.bytesDeleted, 10);
    assert.ok(existsSync(fresh));
    for (const f of refsBefore) assert.ok(existsSync(f), `referenced file kept: ${f}`);
    assert.equal((await rows(store, 'm')).length, 9);
  });
});
