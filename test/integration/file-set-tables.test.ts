// CSV, TSV, JSON and NDJSON files added as tables (`table add`, through the CLI's main() and
// the catalog) and queried through the local cluster in-process: the format from the name
// endings or --format, reader options, hive partition directories as typed columns that
// prune, and the schema sniffed once at registration holding for every fragment (a file
// whose own sniffing would type a column differently still reads with the table's type).
// The sandbox holds: user SQL cannot read the files (or any other) directly, and options
// outside the allow-list are refused as bad requests.

import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WarehouseCatalog } from '../../runtime/catalog/warehouse-catalog.ts';
import { Engine, type JsonValue } from '../../runtime/engine/engine.ts';
import { PuffinError } from '../../runtime/errors.ts';
import { LocalCluster } from '../../runtime/exec/cluster.ts';
import { loadSettings, toRootUrl } from '../../runtime/settings.ts';
import { tempDir } from '../runtime/catalog/iceberg/fixtures.ts';
import { cliInProcess } from '../helpers/cli.ts';

const dir = tempDir('file-sets');
const data = (...p: string[]) => join(dir.path, 'data', ...p);
let engine: Engine;
let catalog: WarehouseCatalog;
let cluster: LocalCluster;
const rows = async (sql: string, fragments = 3): Promise<JsonValue[][]> => (await cluster.query(sql, { fragments })).rows;

function write(path: string, body: string): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, body);
}

before(async () => {
  // Sales: semicolon-separated, hive partitioned by region and day; the first file's `code`
  // column is text, the second's looks like integers.
  write(data('sales', 'region=eu', 'day=2024-01-01', 'a.csv'), 'id;code;amount\n1;A1;1.5\n2;"B;2";2\n');
  write(data('sales', 'region=us', 'day=2024-01-02', 'b.csv'), 'id;code;amount\n3;7;3\n');
  write(data('sales', 'region=us', 'day=2024-01-03', 'c.csv'), 'id;code;amount\n4;8;\n');
  write(data('noheader.csv'), '1|x|NA\n2|y|5\n');
  write(data('t.tsv'), 'a\tb\n1\tx y\n2\tz\n');
  write(data('events', 'e1.ndjson'), '{"id": 1, "tags": ["a", "b"], "ts": "2024-01-01 10:00:00"}\n{"id": 2, "tags": [], "ts": null}\n');
  write(data('events', 'e2.ndjson'), '{"id": 3, "tags": ["c"], "ts": "2024-01-02 11:00:00"}\n');
  write(data('objs.json'), '[{"id": 1, "o": {"x": 1}}, {"id": 2, "o": {"x": 2}}]');
  write(data('other', 'secret.csv'), 'secret\nhunter2\n');

  engine = await Engine.create({ threads: 2 });
  catalog = await WarehouseCatalog.open(join(dir.path, 'home', 'catalog'), engine);
  await catalog.addTable('sales', data('sales', '**', '*.csv'));
  await catalog.addTable('noheader', data('noheader.csv'), { readerOptions: { delim: '|', header: false, nullstr: 'NA' } });
  await catalog.addTable('tabs', data('t.tsv'));
  await catalog.addTable('events', data('events'), { format: 'ndjson' });
  await catalog.addTable('objs', data('objs.json'));
  const home = join(dir.path, 'home');
  const settings = loadSettings({}, { home, warehouse: toRootUrl(join(dir.path, 'warehouse')), shuffleUrl: toRootUrl(join(home, 'shuffle')), cacheDir: join(home, 'cache'), threads: 1, workers: 2, maxFragments: 3 });
  cluster = await LocalCluster.open({ settings, catalog, invoker: 'in-process' });
});

after(async () => {
  await cluster.close();
  engine.close();
  dir.remove();
});

describe('text files as tables', () => {
  test('the sniffed schema is kept: columns, kinds, partition columns after the files\' own', async () => {
    const sales = await catalog.getTable('sales');
    assert.equal(sales?.kind, 'csv');
    assert.deepEqual(sales?.columns, [{ name: 'id', type: 'BIGINT' }, { name: 'code', type: 'VARCHAR' }, { name: 'amount', type: 'DOUBLE' }, { name: 'region', type: 'VARCHAR' }, { name: 'day', type: 'DATE' }]);
    assert.equal(sales?.fileSet?.options.delim, ';');
    assert.deepEqual(sales?.files.map((f) => f.partitionValues), [['eu', '2024-01-01'], ['us', '2024-01-02'], ['us', '2024-01-03']]);
    assert.deepEqual((await catalog.summaries()).map((s) => [s.name, s.kind, s.fileCount]), [['events', 'ndjson', 2], ['noheader', 'csv', 1], ['objs', 'json', 1], ['sales', 'csv', 3], ['tabs', 'tsv', 1]]);
  });

  test('CSV with hive partitions: every fragment reads the table\'s schema; partition filters prune', async () => {
    for (const fragments of [1, 3]) {
      assert.deepEqual(await rows('SELECT region, day, id, code, amount FROM sales ORDER BY id', fragments), [
        ['eu', '2024-01-01', '1', 'A1', 1.5], ['eu', '2024-01-01', '2', 'B;2', 2], ['us', '2024-01-02', '3', '7', 3], ['us', '2024-01-03', '4', '8', null],
      ]);
    }
    const r = await cluster.query("SELECT id FROM sales WHERE region = 'us' AND day >= DATE '2024-01-03'", { fragments: 3 });
    assert.deepEqual(r.rows, [['4']]);
    assert.equal(r.plan.scans[0].filesTotal, 3);
    assert.equal(r.plan.scans[0].filesKept, 1);
    assert.deepEqual(await rows("SELECT typeof(code), count(*) FROM sales WHERE region = 'us' GROUP BY 1"), [['VARCHAR', '2']]);
  });

  test('reader options, TSV, NDJSON, JSON', async () => {
    assert.deepEqual(await rows('SELECT * FROM noheader ORDER BY 1'), [['1', 'x', null], ['2', 'y', '5']]);
    assert.deepEqual((await catalog.getTable('noheader'))?.columns.map((c) => c.name), ['column0', 'column1', 'column2']);
    assert.deepEqual(await rows('SELECT a, b FROM tabs ORDER BY a'), [['1', 'x y'], ['2', 'z']]);
    assert.deepEqual(await rows('SELECT id, tags, ts FROM events ORDER BY id'), [['1', ['a', 'b'], '2024-01-01 10:00:00'], ['2', [], null], ['3', ['c'], '2024-01-02 11:00:00']]);
    assert.deepEqual(await rows('SELECT id, o.x FROM objs ORDER BY id'), [['1', '1'], ['2', '2']]);
    assert.deepEqual(await rows('SELECT s.id, e.tags FROM sales s JOIN events e ON s.id = e.id ORDER BY 1'), [['1', ['a', 'b']], ['2', []], ['3', ['c']]]);
  });

  test('the sandbox: user SQL reads no file directly, registered or not', async () => {
    for (const sql of [
      `SELECT * FROM read_csv('${data('other', 'secret.csv')}')`,
      `SELECT * FROM read_csv_auto('${data('sales', 'region=eu', 'day=2024-01-01', 'a.csv')}')`,
      `SELECT * FROM read_json('${data('objs.json')}')`,
      `SELECT * FROM sniff_csv('${data('other', 'secret.csv')}')`,
      `SELECT * FROM '${data('other', 'secret.csv')}'`,
    ]) {
      await assert.rejects(cluster.query(sql), (e: unknown) => e instanceof PuffinError && e.code === 'access_denied', sql);
    }
  });

  test('refused at registration: options off the allow-list (400), options for Parquet, a non-matching pattern', async () => {
    for (const readerOptions of [{ rejects_table: 'x' }, { filename: true }, { files_to_sniff: -1 }, { columns: { a: 'VARCHAR' } }, { delim: ';', header: 'yes' }]) {
      await assert.rejects(catalog.addTable('bad', data('noheader.csv'), { readerOptions }), (e: unknown) => e instanceof PuffinError && e.code === 'bad_request' && e.httpStatus === 400);
    }
    await assert.rejects(catalog.addTable('bad', data('noheader.csv'), { format: 'parquet', readerOptions: { delim: ';' } }), /--options applies to csv, tsv, json, ndjson tables/);
    await assert.rejects(catalog.addTable('bad', data('nothing', '*.csv')), /no CSV files match/);
    assert.equal(await catalog.getTable('bad'), undefined);
  });
});

describe('puffindb table add', () => {
  const run = cliInProcess(join(dir.path, 'cli-home'), `file://${join(dir.path, 'cli-warehouse')}/`);

  test('a CSV glob (the format from its ending), --format and --options; queried', async () => {
    assert.match(await run('table', 'add', 'sales', data('sales', '*', '*', '*.csv')), /^table sales: 3 CSV file\(s\), columns id BIGINT, code VARCHAR, amount DOUBLE, region VARCHAR, day DATE$/);
    assert.match(await run('table', 'add', 'nh', data('noheader.csv'), '--format', 'csv', '--options', '{"delim": "|", "header": false}'), /table nh: 1 CSV file\(s\), columns column0 BIGINT, column1 VARCHAR, column2 VARCHAR/);
    assert.match(await run('query', '--format', 'json', "SELECT count(*) AS n FROM sales WHERE region = 'us'"), /"n":\s*"?2/);
  });

  test('refusals are bad requests: an option off the allow-list, bad JSON, an unknown format', async () => {
    await assert.rejects(run('table', 'add', 'x', data('noheader.csv'), '--options', '{"rejects_table": "t"}'), (e: unknown) => e instanceof PuffinError && e.code === 'bad_request' && /unknown csv reader option 'rejects_table'/.test(e.message));
    await assert.rejects(run('table', 'add', 'x', data('noheader.csv'), '--options', '{delim'), (e: unknown) => e instanceof PuffinError && e.code === 'bad_request' && /--options must be a JSON object/.test(e.message));
    await assert.rejects(run('table', 'add', 'x', data('noheader.csv'), '--format', 'xml'), (e: unknown) => e instanceof PuffinError && e.code === 'bad_request' && /--format must be one of parquet, csv, tsv, json, ndjson/.test(e.message));
  });
});
