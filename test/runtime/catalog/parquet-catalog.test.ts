import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Engine } from '../../../runtime/engine/engine.ts';
import { PuffinError, type ErrorCode } from '../../../runtime/errors.ts';
import { ParquetCatalog } from '../../../runtime/catalog/parquet-catalog.ts';
import { sqlString } from '../../../runtime/sql/quote.ts';

const rejectsWith = (promise: Promise<unknown>, code: ErrorCode, ...fragments: string[]) =>
  assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof PuffinError, `expected a PuffinError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    for (const f of fragments) assert.ok(err.message.includes(f), `'${err.message}' should mention '${f}'`);
    return true;
  });

describe('ParquetCatalog', () => {
  let engine: Engine;
  let dir: string;
  let data: string;
  let catalogDir: string;
  const writeParquet = async (path: string, select: string) => {
    await mkdir(join(path, '..'), { recursive: true });
    await engine.exec(`COPY (${select}) TO ${sqlString(path)} (FORMAT parquet)`);
  };
  const events = (i: number) =>
    `SELECT (${i} * 1000 + r)::BIGINT AS id, DATE '2024-01-01' + ${i}::INTEGER AS day, 'e' || r AS label FROM range(10) t(r)`;

  before(async () => {
    engine = await Engine.create({ threads: 2 });
    dir = await mkdtemp(join(tmpdir(), 'puffin-catalog-'));
    data = join(dir, 'data');
    catalogDir = join(dir, 'home', 'catalog');
    // events/day-{0,1,2}.parquet, a nested file, and entries a walk must ignore.
    for (let i = 0; i < 3; i++) await writeParquet(join(data, 'events', `day-${i}.parquet`), events(i));
    await writeParquet(join(data, 'events', 'late', 'day-9.parquet'), events(9));
    await writeFile(join(data, 'events', '_SUCCESS'), '');
    await writeParquet(join(data, 'events', '_temporary', 'partial.parquet'), events(7));
    await writeParquet(join(data, 'events', '.hidden.parquet'), events(8));
    await writeFile(join(data, 'events', 'README.txt'), 'not data');
    await writeParquet(join(data, 'wrongtype', 'a.parquet'), events(0));
    await writeParquet(join(data, 'wrongtype', 'b.parquet'), `SELECT r::INTEGER AS id, DATE '2024-01-01' AS day, 'x' AS label FROM range(3) t(r)`);
    await writeParquet(join(data, 'missingcol', 'a.parquet'), events(0));
    await writeParquet(join(data, 'missingcol', 'b.parquet'), `SELECT r::BIGINT AS id, 'x' AS label FROM range(3) t(r)`);
    await writeParquet(join(data, 'extracol', 'a.parquet'), events(0));
    await writeParquet(join(data, 'extracol', 'b.parquet'), `SELECT r::BIGINT AS id, DATE '2024-01-01' AS day, 'x' AS label, 1 AS extra FROM range(3) t(r)`);
    await writeParquet(join(data, 'reordered', 'a.parquet'), events(0));
    await writeParquet(join(data, 'reordered', 'b.parquet'), `SELECT 'x' AS label, r::BIGINT AS id, DATE '2024-01-01' AS day FROM range(3) t(r)`);
    await mkdir(join(data, 'nothing'), { recursive: true });
  });

  after(async () => {
    engine.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('adds a directory: every *.parquet under it, sorted, skipping _ and . entries', async () => {
    const catalog = await ParquetCatalog.open(catalogDir, engine);
    const snap = await catalog.addTable('events', join(data, 'events'));
    assert.equal(snap.name, 'events');
    assert.equal(snap.kind, 'parquet');
    assert.deepEqual(snap.files.map((f) => f.uri), [
      pathToFileURL(join(data, 'events', 'day-0.parquet')).href,
      pathToFileURL(join(data, 'events', 'day-1.parquet')).href,
      pathToFileURL(join(data, 'events', 'day-2.parquet')).href,
      pathToFileURL(join(data, 'events', 'late', 'day-9.parquet')).href,
    ]);
    assert.deepEqual(snap.columns, [
      { name: 'id', type: 'BIGINT' },
      { name: 'day', type: 'DATE' },
      { name: 'label', type: 'VARCHAR' },
    ]);
    assert.deepEqual(snap.files[1].stats.id, { min: '1000', max: '1009', nulls: 0 });
    assert.deepEqual(snap.files[3].stats.day, { min: '2024-01-10', max: '2024-01-10', nulls: 0 });
    assert.ok(snap.files.every((f) => f.rowCount === 10 && f.sizeBytes > 0));
    assert.match(snap.snapshotId, /^[0-9a-f]{16}$/);
  });

  test('adds a glob, with * inside one directory and ** across directories', async () => {
    const catalog = await ParquetCatalog.open(catalogDir, engine);
    const flat = await catalog.addTable('flat', join(data, 'events', '*.parquet'));
    assert.equal(flat.files.length, 3);
    const deep = await catalog.addTable('deep', join(data, 'events', '**', 'day-*.parquet'));
    assert.equal(deep.files.length, 4);
    const some = await catalog.addTable('some', join(data, 'events', 'day-{0,2}.parquet'));
    assert.deepEqual(some.files.map((f) => f.uri.split('/').pop()), ['day-0.parquet', 'day-2.parquet']);
  });

  test('adds a single file by path or file:// URL', async () => {
    const catalog = await ParquetCatalog.open(catalogDir, engine);
    const path = join(data, 'events', 'day-1.parquet');
    const byPath = await catalog.addTable('one', path);
    const byUrl = await catalog.addTable('one_url', pathToFileURL(path).href);
    assert.deepEqual(byPath.files, byUrl.files);
    assert.equal(byPath.files.length, 1);
    assert.equal(byPath.files[0].rowCount, 10);
  });

  test('persists across reopen, with case-insensitive names stored lower-case', async () => {
    const first = await ParquetCatalog.open(catalogDir, engine);
    const added = await first.addTable('Mixed_Case', join(data, 'events', 'day-0.parquet'));
    assert.equal(added.name, 'mixed_case');
    const second = await ParquetCatalog.open(catalogDir, engine);
    assert.ok((await second.listTables()).includes('mixed_case'));
    assert.deepEqual(await second.getTable('MIXED_CASE'), added);
    assert.deepEqual(await second.getTable('mixed_case'), added);
    assert.equal(await second.getTable('no_such_table'), undefined);
    assert.equal(await second.getTable('../../etc/passwd'), undefined);
    const documents = await readdir(join(catalogDir, 'tables'));
    assert.ok(documents.includes('mixed_case.json'));
    assert.ok(!documents.some((f) => f.endsWith('.tmp')), 'no temporary files are left behind');
    const doc = JSON.parse(await readFile(join(catalogDir, 'tables', 'mixed_case.json'), 'utf8'));
    assert.equal(doc.name, 'mixed_case');
  });

  test('another catalog on the same directory sees adds, replacements and drops', async () => {
    const writer = await ParquetCatalog.open(catalogDir, engine);
    const reader = await ParquetCatalog.open(catalogDir, engine);
    await writer.addTable('shared', join(data, 'events', 'day-0.parquet'));
    assert.equal((await reader.getTable('shared'))!.files.length, 1);
    await writer.addTable('shared', join(data, 'events', '*.parquet'));
    assert.equal((await reader.getTable('shared'))!.files.length, 3);
    await writer.dropTable('shared');
    assert.equal(await reader.getTable('shared'), undefined);
  });

  test('lists tables sorted and summarizes them', async () => {
    const catalog = await ParquetCatalog.open(join(dir, 'other-home', 'catalog'), engine);
    assert.deepEqual(await catalog.listTables(), []);
    await catalog.addTable('zeta', join(data, 'events', 'day-0.parquet'));
    await catalog.addTable('alpha', join(data, 'events'));
    assert.deepEqual(await catalog.listTables(), ['alpha', 'zeta']);
    const summaries = await catalog.summaries();
    assert.deepEqual(summaries.map((s) => [s.name, s.fileCount, s.rowCount]), [['alpha', 4, 40], ['zeta', 1, 10]]);
    const alpha = (await catalog.getTable('alpha'))!;
    assert.equal(summaries[0].sizeBytes, alpha.files.reduce((n, f) => n + f.sizeBytes, 0));
    assert.equal(summaries[0].snapshotId, alpha.snapshotId);
    assert.deepEqual(summaries[0].columns, alpha.columns);
  });

  test('re-adding a name replaces the table; the snapshot id follows the files', async () => {
    const catalog = await ParquetCatalog.open(catalogDir, engine);
    const path = join(data, 'replace', 'a.parquet');
    await writeParquet(path, events(0));
    const first = await catalog.addTable('replaced', path);
    const again = await catalog.addTable('replaced', path);
    assert.equal(again.snapshotId, first.snapshotId, 'same files, same snapshot');

    await utimes(path, new Date(), new Date(Date.now() + 60_000));
    const touched = await catalog.addTable('replaced', path);
    assert.notEqual(touched.snapshotId, first.snapshotId, 'a touched file is a new snapshot');

    await writeParquet(join(data, 'replace', 'b.parquet'), events(1));
    const grown = await catalog.addTable('replaced', join(data, 'replace'));
    assert.equal(grown.files.length, 2);
    assert.notEqual(grown.snapshotId, touched.snapshotId);
    assert.deepEqual(await catalog.getTable('replaced'), grown);
  });

  test('drops a table, and dropping an unknown one is unknown_table', async () => {
    const catalog = await ParquetCatalog.open(catalogDir, engine);
    await catalog.addTable('doomed', join(data, 'events', 'day-0.parquet'));
    await catalog.dropTable('DOOMED');
    assert.equal(await catalog.getTable('doomed'), undefined);
    assert.ok(!(await catalog.listTables()).includes('doomed'));
    await rejectsWith(catalog.dropTable('doomed'), 'unknown_table', 'doomed');
  });

  test('files with different columns are a bad_request naming the file and column', async () => {
    const catalog = await ParquetCatalog.open(catalogDir, engine);
    await rejectsWith(catalog.addTable('bad', join(data, 'wrongtype')), 'bad_request', 'b.parquet', "'id'", 'INTEGER', 'BIGINT');
    await rejectsWith(catalog.addTable('bad', join(data, 'missingcol')), 'bad_request', 'b.parquet', "'day'");
    await rejectsWith(catalog.addTable('bad', join(data, 'extracol')), 'bad_request', 'b.parquet', "'extra'");
    await assert.rejects(catalog.addTable('bad', join(data, 'wrongtype')), (err: unknown) =>
      err instanceof PuffinError && (err.details as { column?: string }).column === 'id');
    assert.equal(await catalog.getTable('bad'), undefined, 'a failed add leaves nothing behind');
    // The same columns in another order are the same schema.
    const reordered = await catalog.addTable('reordered', join(data, 'reordered'));
    assert.equal(reordered.files.length, 2);
  });

  test('invalid table names are a bad_request', async () => {
    const catalog = await ParquetCatalog.open(catalogDir, engine);
    for (const name of ['', '1abc', 'a-b', 'a b', '../x', 'x.json', 'lineitem;drop']) {
      await rejectsWith(catalog.addTable(name, join(data, 'events')), 'bad_request', 'invalid table name');
    }
    await rejectsWith(catalog.dropTable('a-b'), 'bad_request', 'invalid table name');
  });

  test('a missing path, an empty match and a remote URL are errors naming the pattern', async () => {
    const catalog = await ParquetCatalog.open(catalogDir, engine);
    const missing = join(data, 'does-not-exist');
    await rejectsWith(catalog.addTable('t', missing), 'bad_request', missing);
    const noMatch = join(data, 'events', '*.csv');
    await rejectsWith(catalog.addTable('t', noMatch), 'bad_request', noMatch);
    await rejectsWith(catalog.addTable('t', join(data, 'nothing')), 'bad_request', join(data, 'nothing'));
    await rejectsWith(catalog.addTable('t', join(data, 'no-dir', '*.parquet')), 'bad_request', 'no-dir');
    await rejectsWith(catalog.addTable('t', 's3://bucket/t/*.parquet'), 'unsupported', 's3://bucket');
    await rejectsWith(catalog.addTable('t', join(data, 'events', 'README.txt')), 'bad_request', 'README.txt');
    assert.equal(await catalog.getTable('t'), undefined);
  });
});
