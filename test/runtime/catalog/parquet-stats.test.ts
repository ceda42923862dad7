import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Engine } from '../../../runtime/engine/engine.ts';
import { PuffinError } from '../../../runtime/errors.ts';
import { readParquetFileInfo, readParquetFilesInfo } from '../../../runtime/catalog/parquet-stats.ts';
import { sqlString } from '../../../runtime/sql/quote.ts';

describe('Parquet footer statistics', () => {
  let engine: Engine;
  let dir: string;
  const file = (name: string) => join(dir, name);
  const write = (name: string, select: string, options = '') =>
    engine.exec(`COPY (${select}) TO ${sqlString(file(name))} (FORMAT parquet${options})`);

  before(async () => {
    engine = await Engine.create({ threads: 2 });
    dir = await mkdtemp(join(tmpdir(), 'puffin-stats-'));
    await write(
      'scalars.parquet',
      `SELECT i::INTEGER AS i, (i * 1.25)::DECIMAL(15,2) AS d, DATE '1994-01-01' + i::INTEGER AS dt,
              'name-' || i AS s, i / 4.0 AS f, NULL::INTEGER AS n,
              CASE WHEN i % 10 = 0 THEN NULL ELSE i END::BIGINT AS sparse,
              [i, i] AS l, {'a': i} AS st
         FROM range(1, 101) t(i)`,
    );
    // Two row groups whose bounds sort differently as text than as values.
    await write(
      'groups.parquet',
      `SELECT CASE WHEN r < 2048 THEN 9 ELSE 10 + (r - 2048) % 91 END::INTEGER AS n,
              CASE WHEN r < 2048 THEN 9.5 ELSE 10.25 END::DECIMAL(15,2) AS d,
              CASE WHEN r < 2048 THEN DATE '1999-12-31' ELSE DATE '2000-01-01' END AS dt,
              CASE WHEN r < 2048 THEN -5 ELSE -10 END::INTEGER AS neg
         FROM range(4096) t(r)`,
      ', ROW_GROUP_SIZE 2048',
    );
    // DuckDB writes no bounds for a row group holding a NaN; the other group has bounds.
    await write(
      'nan.parquet',
      `SELECT CASE WHEN r = 3000 THEN 'NaN'::DOUBLE ELSE r::DOUBLE END AS x, r::INTEGER AS r FROM range(4096) t(r)`,
      ', ROW_GROUP_SIZE 2048',
    );
    await write('empty.parquet', `SELECT 1::INTEGER AS a, 'x' AS b WHERE false`);
    await write('other.parquet', `SELECT 'only' AS z`);
    await writeFile(file('not-parquet.parquet'), 'this is not a parquet file');
  });

  after(async () => {
    engine.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('reads row count, size, columns and typed bounds of scalar columns', async () => {
    const path = file('scalars.parquet');
    const uri = pathToFileURL(path).href;
    const { file: info, columns } = await readParquetFileInfo(engine, path, uri);
    assert.equal(info.uri, uri);
    assert.equal(info.rowCount, 100);
    assert.equal(info.sizeBytes, (await stat(path)).size);
    assert.deepEqual(columns, [
      { name: 'i', type: 'INTEGER' },
      { name: 'd', type: 'DECIMAL(15,2)' },
      { name: 'dt', type: 'DATE' },
      { name: 's', type: 'VARCHAR' },
      { name: 'f', type: 'DOUBLE' },
      { name: 'n', type: 'INTEGER' },
      { name: 'sparse', type: 'BIGINT' },
      { name: 'l', type: 'BIGINT[]' },
      { name: 'st', type: 'STRUCT(a BIGINT)' },
    ]);
    assert.deepEqual(info.stats.i, { min: '1', max: '100', nulls: 0 });
    assert.deepEqual(info.stats.d, { min: '1.25', max: '125.00', nulls: 0 });
    assert.deepEqual(info.stats.dt, { min: '1994-01-02', max: '1994-04-11', nulls: 0 });
    // Strings compare as strings: 'name-99' sorts after 'name-100'.
    assert.deepEqual(info.stats.s, { min: 'name-1', max: 'name-99', nulls: 0 });
    assert.deepEqual(info.stats.f, { min: '0.25', max: '25.0', nulls: 0 });
    assert.deepEqual(info.stats.sparse, { min: '1', max: '99', nulls: 10 });
    // An all-NULL column has no bounds but a known null count.
    assert.deepEqual(info.stats.n, { min: null, max: null, nulls: 100 });
    // Nested columns are described but carry no statistics.
    assert.equal(info.stats.l, undefined);
    assert.equal(info.stats.st, undefined);
  });

  test('combines row groups as values of the column type, not as text', async () => {
    const path = file('groups.parquet');
    const groups = await engine.query(`SELECT count(DISTINCT row_group_id) FROM parquet_metadata(${sqlString(path)})`);
    assert.equal(Number(groups.rows[0][0]), 2, 'fixture must have two row groups');
    const { file: info } = await readParquetFileInfo(engine, path, pathToFileURL(path).href);
    assert.equal(info.rowCount, 4096);
    assert.deepEqual(info.stats.n, { min: '9', max: '100', nulls: 0 });
    assert.deepEqual(info.stats.d, { min: '9.50', max: '10.25', nulls: 0 });
    assert.deepEqual(info.stats.dt, { min: '1999-12-31', max: '2000-01-01', nulls: 0 });
    assert.deepEqual(info.stats.neg, { min: '-10', max: '-5', nulls: 0 });
  });

  test('a bound missing from any row group makes the bound unknown', async () => {
    const path = file('nan.parquet');
    const { file: info } = await readParquetFileInfo(engine, path, pathToFileURL(path).href);
    assert.deepEqual(info.stats.x, { min: null, max: null, nulls: 0 });
    assert.deepEqual(info.stats.r, { min: '0', max: '4095', nulls: 0 });
  });

  test('an empty file has zero rows and no bounds', async () => {
    const path = file('empty.parquet');
    const { file: info, columns } = await readParquetFileInfo(engine, path, pathToFileURL(path).href);
    assert.equal(info.rowCount, 0);
    assert.deepEqual(columns.map((c) => c.name), ['a', 'b']);
    assert.deepEqual(info.stats.a, { min: null, max: null, nulls: 0 });
  });

  test('reads many files in one batch, in the order given, whatever their schemas', async () => {
    const infos = await readParquetFilesInfo(engine, [
      file('other.parquet'),
      { path: file('scalars.parquet'), uri: 's3://bucket/scalars.parquet' },
      file('groups.parquet'),
      file('other.parquet'),
    ]);
    assert.deepEqual(infos.map((i) => i.file.uri), [
      pathToFileURL(file('other.parquet')).href,
      's3://bucket/scalars.parquet',
      pathToFileURL(file('groups.parquet')).href,
      pathToFileURL(file('other.parquet')).href,
    ]);
    assert.deepEqual(infos[0].columns, [{ name: 'z', type: 'VARCHAR' }]);
    assert.deepEqual(infos[0].file.stats, { z: { min: 'only', max: 'only', nulls: 0 } });
    assert.deepEqual(infos[1].file.stats.i, { min: '1', max: '100', nulls: 0 });
    assert.deepEqual(infos[2].file.stats.n, { min: '9', max: '100', nulls: 0 });
    assert.deepEqual(infos[3], infos[0]);
    assert.deepEqual(await readParquetFilesInfo(engine, []), []);
  });

  test('a file that is not Parquet, or is missing, is a bad_request naming it', async () => {
    for (const name of ['not-parquet.parquet', 'missing.parquet']) {
      await assert.rejects(
        readParquetFilesInfo(engine, [file('scalars.parquet'), file(name)]),
        (err: unknown) => err instanceof PuffinError && err.code === 'bad_request' && err.message.includes(name),
      );
    }
  });
});
