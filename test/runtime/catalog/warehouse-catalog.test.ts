// The warehouse catalog: Iceberg tables registered beside Parquet ones, snapshots the planner
// can prune (bounds and identity-partition constants as statistics), time travel, bad input
// refused by file name with the catalog unchanged, and SQL predicates for `table scan`.

import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { scanPredicateFromSql } from '../../../runtime/catalog/scan-filter.ts';
import { WarehouseCatalog } from '../../../runtime/catalog/warehouse-catalog.ts';
import { Engine } from '../../../runtime/engine/engine.ts';
import { PuffinError } from '../../../runtime/errors.ts';
import { sqlString } from '../../../runtime/sql/quote.ts';
import { LINEITEM, MYTABLE_PARTITIONED, PARTITION_INTEGER, tempDir } from './iceberg/fixtures.ts';

const dir = tempDir('warehouse-catalog');
let engine: Engine;
let catalog: WarehouseCatalog;

before(async () => {
  engine = await Engine.create({ threads: 1 });
  catalog = await WarehouseCatalog.open(join(dir.path, 'catalog'), engine);
  const parquet = join(dir.path, 'plain.parquet');
  await engine.query(`COPY (SELECT 1 AS x) TO ${sqlString(parquet)} (FORMAT parquet)`);
  await catalog.addTable('plain', parquet);
});
after(() => {
  engine.close();
  dir.remove();
});

function isError(code: string, pattern: RegExp) {
  return (err: unknown) => err instanceof PuffinError && err.code === code && pattern.test(err.message);
}

describe('WarehouseCatalog', () => {
  test('registers Iceberg tables beside Parquet ones', async () => {
    const t = await catalog.registerIceberg('lineitem', LINEITEM, { reroot: true });
    assert.equal(t.kind, 'iceberg');
    assert.equal(t.snapshotId, '2354745328521181395');
    assert.equal(t.files.length, 1);
    assert.deepEqual(t.files[0].stats.l_quantity, { min: '6.00', max: '50.00', nulls: 0 });
    assert.equal(t.iceberg?.fields.length, t.columns.length);
    await catalog.registerIceberg('Partition_Integer', PARTITION_INTEGER, { reroot: true });
    assert.deepEqual(await catalog.listTables(), ['lineitem', 'partition_integer', 'plain']);
    const summaries = await catalog.summaries();
    assert.deepEqual(summaries.map((s) => [s.name, s.kind, s.fileCount, s.rowCount]), [['lineitem', 'iceberg', 1, 51793], ['partition_integer', 'iceberg', 2, 2], ['plain', 'parquet', 1, 1]]);
    // A fresh catalog over the same directory opens them the same way (re-rooting remembered).
    const again = await WarehouseCatalog.open(join(dir.path, 'catalog'), engine);
    assert.equal((await again.getTable('lineitem'))?.files[0].rowCount, 51793);
  });

  test('identity-partition values become statistics, so the planner prunes on them', async () => {
    const t = await catalog.getTable('partition_integer');
    assert.deepEqual(t?.files.map((f) => f.stats.partition_col).sort((a, b) => Number(a?.min) - Number(b?.min)), [{ min: '42', max: '42', nulls: 0 }, { min: '1337', max: '1337', nulls: 0 }]);
    assert.deepEqual(t?.files.map((f) => f.iceberg?.partition.partition_col).sort(), ['1337', '42']);
  });

  test('time travel picks the older snapshot; Parquet tables refuse it', async () => {
    const old = await catalog.getTableAt('lineitem', { snapshotId: '7817332053627255703' });
    assert.equal(old?.snapshotId, '7817332053627255703');
    assert.equal(old?.files.reduce((s, f) => s + f.rowCount, 0), 60175);
    assert.equal((await catalog.getTableAt('lineitem', { timestampMs: 1746188479500 }))?.snapshotId, '7817332053627255703');
    await assert.rejects(catalog.getTableAt('lineitem', { snapshotId: '1' }), isError('not_found', /snapshot 1 does not exist/));
    await assert.rejects(catalog.getTableAt('plain', { snapshotId: '1' }), isError('unsupported', /keeps no history/));
    assert.equal(await catalog.getTableAt('nope', { snapshotId: '1' }), undefined);
  });

  test('equality delete files ride along with the data files they apply to', async () => {
    await catalog.registerIceberg('eq', MYTABLE_PARTITIONED, { reroot: true });
    const t = await catalog.getTable('eq');
    const withDeletes = t?.files.filter((f) => (f.iceberg?.deletes.length ?? 0) > 0) ?? [];
    assert.ok(withDeletes.length > 0);
    assert.ok(withDeletes.every((f) => f.iceberg?.deletes.every((d) => d.content === 'equality' && d.sequenceNumber > (f.iceberg?.sequenceNumber ?? 0))));
    await catalog.dropTable('eq');
    assert.equal(await catalog.getTable('eq'), undefined);
  });

  test('names are one kind at a time', async () => {
    await assert.rejects(catalog.registerIceberg('plain', LINEITEM, { reroot: true }), isError('conflict', /already exists \(a Parquet table\)/));
    await assert.rejects(catalog.registerIceberg('lineitem', LINEITEM, { reroot: true }), isError('conflict', /already exists \(an Iceberg table\)/));
    await assert.rejects(catalog.addTable('lineitem', join(dir.path, 'plain.parquet')), isError('conflict', /is an Iceberg table/));
    await assert.rejects(catalog.registerIceberg('bad name!', LINEITEM), isError('bad_request', /invalid table name/));
  });

  test('bad input: each error names the file, and the catalog is unchanged', async () => {
    const before = await catalog.listTables();
    const registrations = readdirSync(join(dir.path, 'catalog', 'iceberg-registrations')).sort();
    const missing = join(dir.path, 'missing', 'metadata', 'v1.metadata.json');
    const corrupt = join(dir.path, 'corrupt', 'metadata', 'v1.metadata.json');
    const future = join(dir.path, 'future', 'metadata', 'v1.metadata.json');
    const empty = join(dir.path, 'empty');
    for (const f of [corrupt, future]) mkdirSync(join(f, '..'), { recursive: true });
    mkdirSync(join(empty, 'metadata'), { recursive: true });
    writeFileSync(corrupt, '{"format-version": 2, "table-uuid": ');
    writeFileSync(future, JSON.stringify({ 'format-version': 99, 'table-uuid': '9c12d441-03fe-4693-9a96-a0705ddf69c1', location: 'file:///x', 'last-updated-ms': 0, 'last-column-id': 1, schemas: [], 'current-schema-id': 0 }));
    await assert.rejects(catalog.registerIceberg('t1', missing), isError('not_found', /missing\/metadata\/v1\.metadata\.json does not exist/));
    await assert.rejects(catalog.registerIceberg('t2', corrupt), isError('bad_request', /corrupt\/metadata\/v1\.metadata\.json is not an Iceberg metadata file \(not valid JSON\)/));
    await assert.rejects(catalog.registerIceberg('t3', future), (err: unknown) => err instanceof PuffinError && /future\/metadata\/v1\.metadata\.json/.test(err.message) && /format.version|99/i.test(err.message));
    await assert.rejects(catalog.registerIceberg('t4', empty), isError('not_found', /has no Iceberg metadata/));
    // Relative paths without --reroot: refused while planning, before anything is recorded.
    await assert.rejects(catalog.registerIceberg('t5', LINEITEM), isError('bad_request', /is relative/));
    assert.deepEqual(await catalog.listTables(), before);
    assert.deepEqual(readdirSync(join(dir.path, 'catalog', 'iceberg-registrations')).sort(), registrations);
  });

  test('scan with a SQL predicate', async () => {
    const filter = await scanPredicateFromSql(engine, 'partition_col = 42');
    const scan = await catalog.scanIceberg('partition_integer', { filter });
    assert.equal(scan.counts.filesKept, 1);
    await assert.rejects(catalog.scanIceberg('plain'), isError('unsupported', /not an Iceberg table/));
    await assert.rejects(catalog.scanIceberg('nope'), isError('unknown_table', /nope/));
  });
});

describe('scanPredicateFromSql', () => {
  test('comparisons, IN, BETWEEN, IS NULL, AND and OR; constants as DuckDB evaluates them', async () => {
    assert.deepEqual(
      await scanPredicateFromSql(engine, "l_shipdate >= DATE '1994-01-01' AND l_discount BETWEEN 0.05 AND 0.07 AND 24 > l_quantity"),
      { op: 'and', args: [
        { op: '>=', column: 'l_shipdate', value: '1994-01-01' },
        { op: 'between', column: 'l_discount', low: '0.05', high: '0.07' },
        { op: '<', column: 'l_quantity', value: '24' },
      ] },
    );
    assert.deepEqual(await scanPredicateFromSql(engine, "k IN ('a', 'b', NULL) OR t.x IS NULL OR y IS NOT NULL OR z <> -3"), { op: 'or', args: [
      { op: 'in', column: 'k', values: ['a', 'b', null] },
      { op: 'is_null', column: 'x' },
      { op: 'not_null', column: 'y' },
      { op: '!=', column: 'z', value: '-3' },
    ] });
  });

  test('what it does not understand keeps files', async () => {
    // An AND drops the part it cannot use; an OR with such a part keeps everything.
    assert.deepEqual(await scanPredicateFromSql(engine, "a = 1 AND name LIKE 'x%'"), { op: '=', column: 'a', value: '1' });
    assert.equal(await scanPredicateFromSql(engine, "a = 1 OR name LIKE 'x%'"), undefined);
    assert.equal(await scanPredicateFromSql(engine, 'a = b'), undefined);
    assert.equal(await scanPredicateFromSql(engine, 'a NOT IN (1, 2)'), undefined);
    assert.equal(await scanPredicateFromSql(engine, 'NOT (a = 1 OR b = 2)'), undefined);
    // DuckDB's parser itself turns NOT (a = 1) into a <> 1, which prunes soundly.
    assert.deepEqual(await scanPredicateFromSql(engine, 'NOT (a = 1)'), { op: '!=', column: 'a', value: '1' });
    assert.equal(await scanPredicateFromSql(engine, ''), undefined);
  });

  test('text that is not a predicate is refused', async () => {
    await assert.rejects(scanPredicateFromSql(engine, 'a = '), isError('syntax_error', /--where "a = "/));
    await assert.rejects(scanPredicateFromSql(engine, 'a = 1; DROP TABLE x'), isError('bad_request', /one predicate/));
  });
});
