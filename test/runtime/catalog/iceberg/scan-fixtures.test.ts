// Scan planning and reading over the real tables Spark wrote (../shared/fixtures/iceberg),
// with DuckDB running the SQL that read.ts builds.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildIcebergReadSql } from '../../../../runtime/catalog/iceberg/read.ts';
import { planTableScan, type PlanScanOptions } from '../../../../runtime/catalog/iceberg/scan.ts';
import { openIcebergTable, type IcebergTable } from '../../../../runtime/catalog/iceberg/table.ts';
import { Engine, rowObjects, type JsonValue } from '../../../../runtime/engine/engine.ts';
import { PuffinError } from '../../../../runtime/errors.ts';
import { FIXTURES, LINEITEM, MYTABLE, MYTABLE_PARTITIONED, NULL_STATS, PARTITION_INTEGER, rawRecords, tempDir } from './fixtures.ts';

const Q6 = `SELECT sum(l_extendedprice * l_discount) AS revenue FROM lineitem
  WHERE l_shipdate >= DATE '1994-01-01' AND l_shipdate < DATE '1995-01-01'
    AND l_discount BETWEEN 0.05 AND 0.07 AND l_quantity < 24`;

const scratch = tempDir('iceberg-scan');
let engine: Engine;
before(async () => {
  // Sandboxed as a fragment is: the SQL may read the fixtures and nothing else.
  engine = await Engine.create({ threads: 2, allowedDirectories: [scratch.path, FIXTURES] });
});
after(() => {
  engine.close();
  scratch.remove();
});

async function readRows(table: IcebergTable, options: PlanScanOptions = {}, columns?: string[]): Promise<Record<string, JsonValue>[]> {
  const scan = await planTableScan(table, options);
  return rowObjects(await engine.query(`${buildIcebergReadSql(scan, columns)} ORDER BY ALL`));
}

describe('lineitem_iceberg (Spark 3.3, a DELETE rewrote the table)', () => {
  let table: IcebergTable;
  before(async () => {
    table = await openIcebergTable(LINEITEM, { reroot: true });
  });

  test('TPC-H Q6 over the current snapshot is 1077536.9101', async () => {
    const scan = await planTableScan(table);
    assert.equal(scan.snapshotId, '2354745328521181395');
    assert.deepEqual(scan.counts, { manifestsTotal: 2, manifestsSkipped: 0, filesTotal: 1, filesKept: 1, deleteFiles: 0, deleteFilesTotal: 0, rowsKept: 51793, bytesKept: 1225526 });
    const r = await engine.query(`WITH lineitem AS (${buildIcebergReadSql(scan)}) ${Q6}`);
    assert.equal(r.rows[0][0], '1077536.9101');
  });

  test('the snapshot before the DELETE, by id and by time, has more rows', async () => {
    const count = async (options: PlanScanOptions): Promise<number> => {
      const scan = await planTableScan(table, options);
      return Number((await engine.query(`SELECT count(*) FROM (${buildIcebergReadSql(scan, ['l_orderkey'])})`)).rows[0][0]);
    };
    assert.equal(await count({}), 51793);
    assert.equal(await count({ snapshotId: 7817332053627255703n }), 60175);
    assert.equal(await count({ asOfTimestampMs: 1746188479500 }), 60175);
    const old = await planTableScan(table, { snapshotId: 7817332053627255703n });
    const r = await engine.query(`WITH lineitem AS (${buildIcebergReadSql(old)}) ${Q6}`);
    assert.notEqual(r.rows[0][0], '1077536.9101');
    // The rows the DELETE removed are exactly those under 10000 in extendedprice.
    const removed = await engine.query(`SELECT count(*) FROM (${buildIcebergReadSql(old, ['l_extendedprice'])}) WHERE l_extendedprice < 10000`);
    assert.equal(Number(removed.rows[0][0]), 60175 - 51793);
  });

  test('column bounds prune the file when the predicate cannot match', async () => {
    // l_shipdate's lower bound is 1992-01-04 (also DuckDB's min over the file).
    const none = await planTableScan(table, { filter: { op: '<', column: 'l_shipdate', value: '1992-01-04' } });
    assert.equal(none.counts.filesKept, 0);
    const some = await planTableScan(table, { filter: { op: '<=', column: 'l_shipdate', value: '1992-01-04' } });
    assert.equal(some.counts.filesKept, 1);
    const q6 = await planTableScan(table, { filter: { op: 'and', args: [
      { op: '>=', column: 'l_shipdate', value: '1994-01-01' },
      { op: 'between', column: 'l_discount', low: '0.05', high: '0.07' },
      { op: '<', column: 'l_quantity', value: 24 },
    ] } });
    assert.equal(q6.counts.filesKept, 1);
    assert.deepEqual(q6.dataFiles[0].stats.l_quantity, { min: '6.00', max: '50.00', nulls: 0 }); // DuckDB agrees: min, max over the file
  });

  test('without re-rooting, the relative paths are refused with a clear message', async () => {
    const plain = await openIcebergTable(LINEITEM);
    await assert.rejects(planTableScan(plain), (err: unknown) => err instanceof PuffinError && err.code === 'bad_request' && /path 'lineitem_iceberg\/metadata\/snap-.*' in the table's metadata is relative/.test(err.message));
  });
});

/** Live files of one snapshot, found with plain avsc (none of the reader's code). */
async function liveFilesIndependently(tableDir: string, manifestListPath: string, tablePrefix: string) {
  const local = (path: string): string => join(tableDir, path.slice(path.indexOf(tablePrefix) + tablePrefix.length));
  const list = await rawRecords(local(manifestListPath));
  const files: { path: string; local: string; content: number; seq: bigint; partition: Record<string, unknown>; equalityIds: number[] | null }[] = [];
  for (const m of list.records as { manifest_path: string; sequence_number: bigint }[]) {
    for (const e of (await rawRecords(local(m.manifest_path))).records as { status: number; sequence_number: bigint | null; data_file: { content: number; file_path: string; partition: Record<string, unknown>; equality_ids: number[] | null } }[]) {
      if (e.status === 2) continue;
      // Sequence number inheritance: a null data sequence number on an ADDED entry is the
      // manifest's, from the manifest list.
      const seq = e.sequence_number ?? m.sequence_number;
      files.push({ path: e.data_file.file_path, local: local(e.data_file.file_path), content: e.data_file.content, seq, partition: e.data_file.partition, equalityIds: e.data_file.equality_ids });
    }
  }
  return files;
}

/**
 * The expected rows of a snapshot, worked out by hand from the raw files: read every data
 * file and every equality delete file with DuckDB (no field-id mapping: these Spark files
 * keep the column names), then drop a data row when some equality delete file
 *   - has a strictly higher data sequence number than the row's data file, and
 *   - is in the same partition, or its spec is unpartitioned (then it deletes everywhere), and
 *   - has a row equal to the data row on every column the delete file holds (its
 *     equality columns; NULL equals NULL).
 */
async function expectedRows(tableDir: string, manifestListPath: string, tablePrefix: string, partitioned: boolean): Promise<Record<string, JsonValue>[]> {
  const files = await liveFilesIndependently(tableDir, manifestListPath, tablePrefix);
  const rowsOf = async (path: string) => rowObjects(await engine.query(`SELECT * FROM read_parquet('${path}', hive_partitioning = false)`));
  const deletes = [];
  for (const f of files.filter((x) => x.content === 2)) deletes.push({ ...f, rows: await rowsOf(f.local) });
  const out: Record<string, JsonValue>[] = [];
  for (const f of files.filter((x) => x.content === 0)) {
    for (const row of await rowsOf(f.local)) {
      const deleted = deletes.some((d) => {
        if (d.seq <= f.seq) return false;
        if (partitioned && JSON.stringify(d.partition) !== JSON.stringify(f.partition)) return false;
        return d.rows.some((del) => Object.keys(del).every((col) => del[col] === row[col]));
      });
      if (!deleted) out.push(row);
    }
  }
  const key = (r: Record<string, JsonValue>): string => JSON.stringify(Object.values(r));
  return out.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

describe('equality deletes (Spark)', () => {
  const cases = [
    { name: 'mytable', dir: MYTABLE, prefix: '/mydb/mytable/', partitioned: false, expectedCounts: [4, 'missing', 2, 1, 3, 2], current: [[4, 'd'], [5, 'e']] },
    { name: 'mytable_partitioned', dir: MYTABLE_PARTITIONED, prefix: '/mydb/mytable_partitioned/', partitioned: true, expectedCounts: [4, 3, 2, 4, 3], current: [[1, 'a'], [4, 'd'], [5, 'e']] },
  ] as const;

  for (const c of cases) {
    test(`${c.name}: every snapshot reads the rows worked out from the raw files`, async () => {
      const table = await openIcebergTable(c.dir, { reroot: true });
      const counts: (number | string)[] = [];
      for (const snapshot of table.metadata.snapshots) {
        const local = join(c.dir, (snapshot.manifestList as string).split(c.prefix)[1]);
        let listExists = true;
        try {
          readFileSync(local);
        } catch {
          listExists = false;
        }
        if (!listExists) {
          // The fixture lacks this snapshot's manifest list (Spark retried that commit and only
          // the retry's file was kept, under another name): the error must name the file.
          await assert.rejects(planTableScan(table, { snapshotId: snapshot.snapshotId }), (err: unknown) =>
            err instanceof PuffinError && err.code === 'not_found' && err.message.includes((snapshot.manifestList as string).split('/').pop() as string));
          counts.push('missing');
          continue;
        }
        const actual = await readRows(table, { snapshotId: snapshot.snapshotId });
        const expected = await expectedRows(c.dir, snapshot.manifestList as string, c.prefix, c.partitioned);
        assert.deepEqual(actual, expected, `snapshot ${snapshot.snapshotId} (sequence ${snapshot.sequenceNumber})`);
        counts.push(actual.length);
      }
      assert.deepEqual(counts, c.expectedCounts);
      const current = await readRows(table, {}, ['id', 'name']);
      assert.deepEqual(current.map((r) => [r.id, r.name]), c.current);
    });
  }

  test('a data file gets only the delete files the spec says apply to it', async () => {
    const scan = await planTableScan(await openIcebergTable(MYTABLE_PARTITIONED, { reroot: true }));
    const deletesOf = (partition: string) => scan.dataFiles.find((d) => d.partition.name === partition)?.deletes.map((x) => [x.content, x.sequenceNumber, x.equalityColumns]);
    assert.deepEqual(deletesOf('a'), []);
    assert.deepEqual(deletesOf('b'), [['equality', 2, ['name']]]);
    assert.deepEqual(deletesOf('c'), [['equality', 3, ['name', 'id']]]);
    assert.deepEqual(deletesOf('f'), [['equality', 5, ['name']]]); // f was added at 4, deleted at 5
    assert.equal(scan.counts.deleteFiles, 3);
  });
});

describe('partition_integer (identity partition, column not stored in the files)', () => {
  let table: IcebergTable;
  before(async () => {
    table = await openIcebergTable(PARTITION_INTEGER, { reroot: true });
  });

  test('a predicate on partition_col keeps only the matching partition', async () => {
    const scan = await planTableScan(table, { filter: { op: '=', column: 'partition_col', value: 42 } });
    assert.deepEqual(scan.counts, { manifestsTotal: 1, manifestsSkipped: 0, filesTotal: 2, filesKept: 1, deleteFiles: 0, deleteFilesTotal: 0, rowsKept: 1, bytesKept: 930 });
    assert.deepEqual(scan.dataFiles[0].partition, { partition_col: '42' });
    // The files were written without partition_col; its value comes from the partition tuple.
    const rows = rowObjects(await engine.query(buildIcebergReadSql(scan)));
    assert.deepEqual(rows, [{ partition_col: 42, user_id: '12345', event_type: 'click' }]);
  });

  test('a value outside every partition skips the manifest from its summary alone', async () => {
    const scan = await planTableScan(table, { filter: { op: '=', column: 'partition_col', value: 7 } });
    assert.equal(scan.counts.manifestsSkipped, 1);
    assert.equal(scan.counts.filesKept, 0);
    assert.equal(scan.counts.filesTotal, 2); // from the manifest list's counts
    assert.deepEqual(rowObjects(await engine.query(buildIcebergReadSql(scan))), []);
  });

  test('IN, ranges and OR keep what they should', async () => {
    const kept = async (filter: PlanScanOptions['filter']): Promise<string[]> =>
      (await planTableScan(table, { filter })).dataFiles.map((d) => d.partition.partition_col as string).sort();
    assert.deepEqual(await kept({ op: 'in', column: 'partition_col', values: [42, 1337] }), ['1337', '42']);
    assert.deepEqual(await kept({ op: '>', column: 'partition_col', value: 100 }), ['1337']);
    assert.deepEqual(await kept({ op: 'or', args: [{ op: '=', column: 'partition_col', value: 1 }, { op: '=', column: 'partition_col', value: 42 }] }), ['42']);
    assert.deepEqual(await kept({ op: '!=', column: 'partition_col', value: 42 }), ['1337']);
    assert.deepEqual(await kept({ op: 'is_null', column: 'partition_col' }), []);
    // Unknown columns and operators keep everything.
    assert.deepEqual(await kept({ op: '=', column: 'no_such_column', value: 1 }), ['1337', '42']);
    assert.deepEqual(await kept({ op: 'like', column: 'event_type', value: 'c%' } as never), ['1337', '42']);
    assert.deepEqual(await kept({ op: '=', column: 'event_type', value: 'click' }), ['42']);
  });
});

describe('null_stats (PyIceberg-style names, statistics left null)', () => {
  let table: IcebergTable;
  before(async () => {
    table = await openIcebergTable(NULL_STATS, { reroot: true });
  });

  test('reads all nine rows', async () => {
    const rows = await readRows(table, {}, ['id', 'name', 'flag']);
    assert.equal(rows.length, 9);
    assert.deepEqual(rows.map((r) => r.id), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(rows.filter((r) => r.flag === null).map((r) => r.id), [4, 5, 7, 8, 9]);
  });

  test('files whose bounds or null counts are missing are kept', async () => {
    const kept = async (filter: PlanScanOptions['filter']): Promise<number> => (await planTableScan(table, { filter })).counts.filesKept;
    // One file has no bounds for `flag` (all its flags are NULL) and no file has null counts.
    assert.equal(await kept({ op: '=', column: 'flag', value: true }), 3);
    assert.equal(await kept({ op: '=', column: 'flag', value: false }), 2); // [true, true] excludes false
    assert.equal(await kept({ op: 'is_null', column: 'flag' }), 3);
    assert.equal(await kept({ op: 'is_null', column: 'id' }), 3);
    // Where bounds exist they still prune.
    assert.equal(await kept({ op: '=', column: 'name', value: 'h' }), 1);
    assert.equal(await kept({ op: '>', column: 'id', value: 100 }), 0);
    assert.equal(await kept({ op: '>=', column: 'ts', value: '2024-03-08 12:13:20+00' }), 1);
    const scan = await planTableScan(table);
    assert.deepEqual(scan.dataFiles.map((d) => d.stats.flag ?? null), [null, { min: 'true', max: 'true' }, { min: 'false', max: 'true' }]);
  });
});
