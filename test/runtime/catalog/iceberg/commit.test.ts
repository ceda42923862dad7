// Commit conflict rules: a DELETE/UPDATE racing an append or another DELETE. The race is made
// deterministic by a pointer store that runs the "concurrent" commit just before the first
// compare-and-swap of the commit under test.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { PuffinError } from '../../../../runtime/errors.ts';
import { buildIcebergReadSql, openIcebergTable, planTableScan } from '../../../../runtime/catalog/iceberg/index.ts';
import type { PointerStore, TablePointer } from '../../../../runtime/catalog/iceberg/pointer-store.ts';
import { findOrphanFiles } from '../../../../runtime/catalog/iceberg/orphans.ts';
import { localTableIO } from '../../../../runtime/catalog/iceberg/writer-io.ts';
import { appendRows, createTableFromDefinitions, deleteRows, updateRows, type WriterContext } from '../../../../runtime/catalog/iceberg/writer.ts';
import { MemoryPointerStore } from '../../../../runtime/catalog/iceberg/memory-pointer-store.ts';

/** Runs `beforeFirstSwap` once, right before the first compare-and-swap it sees. */
class RacingStore implements PointerStore {
  beforeFirstSwap: (() => Promise<void>) | undefined;
  constructor(readonly inner: PointerStore) {}
  get(name: string): Promise<string | undefined> {
    return this.inner.get(name);
  }
  list(): Promise<TablePointer[]> {
    return this.inner.list();
  }
  async compareAndSwap(name: string, expected: string | undefined, next: string): Promise<boolean> {
    const hook = this.beforeFirstSwap;
    this.beforeFirstSwap = undefined;
    if (hook) await hook();
    return this.inner.compareAndSwap(name, expected, next);
  }
  remove(name: string, expected: string): Promise<boolean> {
    return this.inner.remove(name, expected);
  }
}

describe('commit conflict rules', () => {
  let dir: string;
  let instance: DuckDBInstance;
  let conn: DuckDBConnection;
  let inner: MemoryPointerStore;
  let racing: RacingStore;
  let ctx: WriterContext;
  let other: WriterContext;
  let n = 0;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'puffindb-iceberg-commit-'));
    instance = await DuckDBInstance.create(':memory:');
    conn = await instance.connect();
    inner = new MemoryPointerStore();
    racing = new RacingStore(inner);
    const base = { io: localTableIO(), warehouseUri: pathToFileURL(join(dir, 'warehouse')).href };
    ctx = { ...base, conn, store: racing, stagingDir: join(dir, 'staging-a') };
    other = { ...base, conn: await instance.connect(), store: inner, stagingDir: join(dir, 'staging-b') };
  });
  after(async () => {
    other?.conn.closeSync();
    conn?.closeSync();
    instance?.closeSync();
    await rm(dir, { recursive: true, force: true });
  });

  async function freshTable(): Promise<string> {
    const name = `t${n++}`;
    await createTableFromDefinitions(other, name, 'k INTEGER, v VARCHAR');
    await appendRows(other, name, `SELECT i, 'a' FROM range(10) r(i)`);
    return name;
  }

  async function rows(name: string): Promise<number[]> {
    const scan = await planTableScan(await openIcebergTable((await inner.get(name)) as string));
    return (await conn.runAndReadAll(`SELECT k FROM (${buildIcebergReadSql(scan)}) ORDER BY k`)).getRowsJson().map((r) => Number(r[0]));
  }

  test('an append racing a DELETE never conflicts: the DELETE retries on the new base', async () => {
    const name = await freshTable();
    racing.beforeFirstSwap = async () => void (await appendRows(other, name, `SELECT 100, 'late'`));
    const r = await deleteRows(ctx, name, 'k < 5');
    assert.equal(r.rowsAffected, 5);
    assert.equal(r.attempts, 2);
    assert.deepEqual(await rows(name), [5, 6, 7, 8, 9, 100]);
  });

  test('a DELETE racing an append retries the append (appends never conflict)', async () => {
    const name = await freshTable();
    racing.beforeFirstSwap = async () => void (await deleteRows(other, name, 'k >= 8'));
    const r = await appendRows(ctx, name, `SELECT 50, 'x'`);
    assert.equal(r.attempts, 2);
    assert.deepEqual(await rows(name), [0, 1, 2, 3, 4, 5, 6, 7, 50]);
  });

  test('serializable DELETE conflicts with a concurrent append of rows its predicate matches; nothing changes and its files are removed', async () => {
    const name = await freshTable();
    let appended = '';
    racing.beforeFirstSwap = async () => {
      appended = (await appendRows(other, name, `SELECT 1, 'matching'`)).metadataLocation;
    };
    await assert.rejects(deleteRows(ctx, name, 'k < 5'), (err: unknown) => {
      assert.ok(err instanceof PuffinError);
      assert.equal(err.code, 'conflict');
      assert.match(err.message, new RegExp(`table '${name}'.*serializable`));
      return true;
    });
    assert.equal(await inner.get(name), appended, 'the table is as the append left it');
    assert.deepEqual(await rows(name), [0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual((await findOrphanFiles(inner, name, localTableIO())).orphans, [], 'the refused DELETE left no files behind');
  });

  test('snapshot-isolation DELETE commits over a concurrent matching append; the appended row survives', async () => {
    const name = await freshTable();
    racing.beforeFirstSwap = async () => void (await appendRows(other, name, `SELECT 1, 'matching'`));
    const r = await deleteRows(ctx, name, 'k < 5', { isolation: 'snapshot' });
    assert.equal(r.rowsAffected, 5);
    assert.deepEqual(await rows(name), [1, 5, 6, 7, 8, 9]);
  });

  test('two DELETEs (or an UPDATE) rewriting the same file: the second conflicts and the table keeps the first', async () => {
    const name = await freshTable();
    let first = '';
    racing.beforeFirstSwap = async () => {
      first = (await deleteRows(other, name, 'k = 9')).metadataLocation;
    };
    await assert.rejects(updateRows(ctx, name, [{ column: 'v', expression: `'b'` }], 'k = 0'), (err: unknown) => {
      assert.ok(err instanceof PuffinError);
      assert.equal(err.code, 'conflict');
      assert.match(err.message, /removed or rewrote/);
      assert.equal((err.details?.files as string[]).length, 1);
      return true;
    });
    assert.equal(await inner.get(name), first);
    assert.deepEqual(await rows(name), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  });
});
