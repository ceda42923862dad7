// Item 4 of the interop run: a path in Iceberg metadata names its file byte for byte, on
// local disk as on S3. Partition values are URL-encoded into directory names (Java's
// convention), so a value `a:b` lives in the directory literally named `s=a%3Ab` and is
// recorded as `.../s=a%3Ab/x.parquet`: what is recorded is what is on disk, which other
// engines (PyIceberg, Java's HadoopFileIO) open as written. Values with ':', '/', '%', ' ',
// '*' and non-ASCII characters round-trip through write (on the coordinator and in the
// fragments), read and DELETE.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WarehouseCatalog } from '../../runtime/catalog/warehouse-catalog.ts';
import { Engine } from '../../runtime/engine/engine.ts';
import { LocalCluster } from '../../runtime/exec/cluster.ts';
import { loadSettings } from '../../runtime/settings.ts';
import { sqlString } from '../../runtime/sql/quote.ts';
import { fileUriToPath } from '../../runtime/storage/locations.ts';

const VALUES = ['08:21:09', 'a/b', '100%', 'two words', 'x*y?', 'éte\u00e9 ☃', '%3A', '..', 'plain'];

let dir: string;
let engine: Engine;
let catalog: WarehouseCatalog;
let cluster: LocalCluster;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'puffin-partition-paths-'));
  const warehouse = join(dir, 'warehouse');
  mkdirSync(join(warehouse, 'src'), { recursive: true });
  engine = await Engine.create({ threads: 2 });
  const values = VALUES.map((v, i) => `(${sqlString(v)}, ${i})`).join(', ');
  await engine.exec(`COPY (SELECT * FROM (VALUES ${values}) t(s, v)) TO ${sqlString(join(warehouse, 'src', 'src.parquet'))} (FORMAT parquet)`);
  catalog = await WarehouseCatalog.open(join(dir, 'home', 'catalog'), engine);
  await catalog.addTable('src', join(warehouse, 'src', 'src.parquet'));
  const settings = loadSettings({ PUFFINDB_HOME: join(dir, 'home'), PUFFINDB_WAREHOUSE: warehouse, PUFFINDB_WORKERS: '2', PUFFINDB_THREADS: '1' });
  cluster = await LocalCluster.open({ settings, catalog, invoker: 'in-process' });
});

after(async () => {
  await cluster?.close();
  engine?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const sorted = (xs: string[]): string[] => [...xs].sort();

async function values(table: string): Promise<string[]> {
  return sorted((await cluster.query(`SELECT s FROM ${table}`)).rows.map((r) => String(r[0])));
}

/** Every data file the table's current snapshot lists exists under exactly its recorded path. */
async function assertPathsLiteral(table: string): Promise<string[]> {
  const scan = await catalog.scanIceberg(table);
  const dirs: string[] = [];
  for (const f of scan.dataFiles) {
    const path = fileUriToPath(f.path);
    assert.ok(existsSync(path), `${f.path} is on disk under its recorded name`);
    dirs.push(path.split('/').slice(-2, -1)[0]);
  }
  return dirs;
}

describe('partition values in paths: recorded as written, written as recorded', () => {
  for (const [how, load] of [
    ['INSERT VALUES (on the coordinator)', (t: string) => `INSERT INTO ${t} VALUES ${VALUES.map((v, i) => `(${sqlString(v)}, ${i})`).join(', ')}`],
    ['INSERT ... SELECT (in the fragments)', (t: string) => `INSERT INTO ${t} SELECT s, v FROM src`],
  ] as const) {
    test(how, async () => {
      const t = how.startsWith('INSERT VALUES') ? 'pv_coord' : 'pv_frag';
      await cluster.query(`CREATE TABLE ${t} (s VARCHAR, v INTEGER) PARTITIONED BY (s)`);
      await cluster.query(load(t));
      assert.deepEqual(await values(t), sorted(VALUES));
      const dirs = await assertPathsLiteral(t);
      assert.equal(dirs.length, VALUES.length);
      // Java's convention: the directory is `s=` + the URL-encoded value, literally.
      for (const v of VALUES) assert.ok(dirs.includes(`s=${encodeURIComponent(v)}`), `directory for ${JSON.stringify(v)} among ${dirs.join(', ')}`);
      assert.ok(dirs.includes('s=08%3A21%3A09') && dirs.includes('s=a%2Fb'), dirs.join(', '));

      // Filters on the partition column prune and read the right files.
      for (const v of VALUES) {
        const got = (await cluster.query(`SELECT v FROM ${t} WHERE s = ${sqlString(v)}`)).rows.map((r) => Number(r[0]));
        assert.deepEqual(got, [VALUES.indexOf(v)], `WHERE s = ${JSON.stringify(v)}`);
      }

      // DELETE rewrites (drops) the files holding those values, found by their recorded paths.
      const gone = ['08:21:09', 'a/b', '100%', 'éte\u00e9 ☃'];
      for (const v of gone) await cluster.query(`DELETE FROM ${t} WHERE s = ${sqlString(v)}`);
      assert.deepEqual(await values(t), sorted(VALUES.filter((v) => !gone.includes(v))));
      await cluster.query(`UPDATE ${t} SET v = v + 100 WHERE s = 'two words'`);
      assert.deepEqual((await cluster.query(`SELECT v FROM ${t} WHERE s = 'two words'`)).rows.map((r) => Number(r[0])), [VALUES.indexOf('two words') + 100]);
      await assertPathsLiteral(t);
    });
  }
});
