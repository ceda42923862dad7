import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { objectStoreFileIO, resolveLocation } from '../../../../runtime/catalog/iceberg/io.ts';
import { planTableScan } from '../../../../runtime/catalog/iceberg/scan.ts';
import { openIcebergTable } from '../../../../runtime/catalog/iceberg/table.ts';
import { PuffinError } from '../../../../runtime/errors.ts';
import type { ObjectInfo, ObjectStore } from '../../../../runtime/storage/object-store.ts';
import { FIXTURES, LINEITEM } from './fixtures.ts';

/** An in-memory ObjectStore holding a copy of a directory tree. */
function memoryStore(url: string, root: string): ObjectStore {
  const objects = new Map<string, Uint8Array>();
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else objects.set(relative(root, path), new Uint8Array(readFileSync(path)));
    }
  };
  walk(root);
  const info = (key: string): ObjectInfo => ({ key, size: objects.get(key)?.length ?? 0, lastModified: 0 });
  return {
    url,
    async get(key) {
      const v = objects.get(key);
      if (!v) throw new PuffinError('not_found', `${key} not found`);
      return v;
    },
    async getRange(key, offset, length) {
      return (await this.get(key)).subarray(offset, offset + length);
    },
    async put(key, body) {
      objects.set(key, typeof body === 'string' ? new TextEncoder().encode(body) : body);
    },
    async list(prefix) {
      return [...objects.keys()].filter((k) => k.startsWith(prefix)).sort().map(info);
    },
    async head(key) {
      return objects.has(key) ? info(key) : undefined;
    },
    async delete(key) {
      objects.delete(key);
    },
  };
}

describe('re-rooting recorded paths', () => {
  test('a relative location moves under the directory the table was opened from', () => {
    const reroot = { from: './lineitem_iceberg', to: '/data/tables/lineitem' };
    assert.equal(resolveLocation('lineitem_iceberg/metadata/x.avro', reroot), 'file:///data/tables/lineitem/metadata/x.avro');
    assert.equal(resolveLocation('./lineitem_iceberg/data/y.parquet', reroot), 'file:///data/tables/lineitem/data/y.parquet');
    assert.equal(resolveLocation('s3://b/t/data/z.parquet', { from: 's3://b/t', to: 's3://c/copy/' }), 's3://c/copy/data/z.parquet');
    assert.equal(resolveLocation('file:/tmp/t/data/a.parquet', { from: 'file:///tmp/t', to: '/elsewhere' }), 'file:///elsewhere/data/a.parquet');
  });

  test('absolute paths stand as written; relative ones outside the location are refused', () => {
    assert.equal(resolveLocation('s3://bucket/wh/t/data/a.parquet'), 's3://bucket/wh/t/data/a.parquet');
    assert.equal(resolveLocation('/abs/path/a.parquet'), 'file:///abs/path/a.parquet');
    assert.equal(resolveLocation('s3://other/a.parquet', { from: 's3://b/t', to: '/x' }), 's3://other/a.parquet');
    assert.throws(() => resolveLocation('other_table/data/a.parquet', { from: 'lineitem_iceberg', to: '/x' }), (err: unknown) =>
      err instanceof PuffinError && /'other_table\/data\/a\.parquet' .* is relative and not under the table location 'lineitem_iceberg'/.test(err.message));
    assert.throws(() => resolveLocation('relative/a.parquet'), /open the table with the reroot option/);
  });
});

describe('tables in an ObjectStore', () => {
  test('open and plan lineitem through objectStoreFileIO, re-rooted onto the store', async () => {
    const store = memoryStore('mem://bucket/', FIXTURES);
    const io = objectStoreFileIO(store);
    const table = await openIcebergTable('mem://bucket/lineitem_iceberg', { io, reroot: true });
    assert.equal(table.metadataLocation, 'mem://bucket/lineitem_iceberg/metadata/v2.metadata.json');
    const scan = await planTableScan(table);
    assert.equal(scan.dataFiles.length, 1);
    assert.equal(scan.dataFiles[0].uri, 'mem://bucket/lineitem_iceberg/data/00000-5-dad9988f-2a3b-464c-adb6-6034de93da19-00001.parquet');
    await assert.rejects(io.read('mem://bucket/lineitem_iceberg/metadata/nope.avro'), (err: unknown) => err instanceof PuffinError && err.code === 'not_found' && /nope\.avro does not exist/.test(err.message));
    await assert.rejects(io.read('s3://elsewhere/x'), /outside the object store mem:\/\/bucket\//);
  });

  test('the reroot option of a scan overrides the table\'s', async () => {
    const plain = await openIcebergTable(LINEITEM);
    const scan = await planTableScan(plain, { reroot: true });
    assert.match(scan.dataFiles[0].uri, /^file:\/\/\/.*lineitem_iceberg\/data\/00000-5-/);
  });
});
