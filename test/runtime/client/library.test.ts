// The Node library in process: open() over a throwaway PUFFINDB_HOME (in-process fragments,
// no child processes) and connect() to the HTTP app served on a loopback port. Both answer
// one interface alike: query with parameters, stream of Arrow batches, explain, tables,
// close; queries run through open() (as `puffindb query`) are in the query log afterwards.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { RecordBatch } from 'apache-arrow';
import { connect, open, PuffinError } from '../../../runtime/client/index.ts';
import type { Database } from '../../../lib/puffindb.js';
import { curlExample } from '../../../runtime/cli/main.ts';
import { startServer, type RunningServer } from '../../../runtime/api/server.ts';
import { ADMIN_KEY, apiFixture, newKey, type Caller } from '../../helpers/api.ts';
import type { ControlFixture } from '../../helpers/control-plane.ts';
import { appFor } from '../../helpers/api.ts';

const home = mkdtempSync(join(tmpdir(), 'puffin-library-'));
/** Settings for open() that do not come from this process's environment. */
const env = { PUFFINDB_THREADS: '1', PUFFINDB_MAX_FRAGMENTS: '2' };
const TABLELESS = "SELECT range AS id, (range * 1.25)::DECIMAL(15,2) AS d, 'k' || range AS s, range % 2 = 0 AS even FROM range(50) WHERE range >= $1 ORDER BY id";

let f: ControlFixture;
let call: Caller;
let server: RunningServer;
let embedded: Database;
let remote: Database;

async function code(work: Promise<unknown>): Promise<string> {
  try {
    await work;
  } catch (err) {
    assert.ok(err instanceof PuffinError, `a PuffinError: ${String(err)}`);
    return `${err.code}: ${err.message}`;
  }
  assert.fail('expected a rejection');
}

async function batches(iterable: AsyncIterable<RecordBatch>): Promise<RecordBatch[]> {
  const out: RecordBatch[] = [];
  for await (const b of iterable) out.push(b);
  return out;
}

before(async () => {
  // The server's results are kept as Parquet past 2000 bytes, so connect() pages through the result route.
  ({ f, call } = await apiFixture({ PUFFINDB_RESULT_INLINE_LIMIT_BYTES: '2000' }));
  server = await startServer(await appFor(f), { port: 0, host: '127.0.0.1' });
  embedded = await open({ home, invoker: 'in-process', workers: 1, env });
  remote = await connect({ url: server.url, key: ADMIN_KEY, pageRows: 700 });
});
after(async () => {
  await embedded?.close();
  await remote?.close();
  await server?.close();
  await f?.close();
  rmSync(home, { recursive: true, force: true });
});

describe('open(): the embedded engine', () => {
  test('writes and reads tables, with $n and ? parameters', async () => {
    await embedded.query("CREATE TABLE trips AS SELECT range AS id, (range % 7)::INTEGER AS zone, (range * 0.5)::DECIMAL(10,2) AS fare FROM range(2000)");
    const r = await embedded.query('SELECT zone, count(*) AS n, sum(fare) AS total FROM trips WHERE id < $1 AND zone = $2 GROUP BY zone', [100, 3]);
    assert.deepEqual(r.columns, [{ name: 'zone', type: 'INTEGER' }, { name: 'n', type: 'BIGINT' }, { name: 'total', type: 'DECIMAL(38,2)' }]);
    assert.deepEqual(r.rows, [{ zone: 3, n: 14, total: 339.5 }]);
    const q = await embedded.query("SELECT ? AS s, ?::BIGINT AS big", ["it's; --", 9007199254740993n]);
    assert.deepEqual(q.rows, [{ s: "it's; --", big: 9007199254740992 }], 'BIGINT is a JSON number, as the HTTP API gives it');
    const tables = await embedded.tables();
    assert.deepEqual(tables.map((t) => [t.name, t.kind]), [['puffindb.materialized_views', 'ndjson'], ['puffindb.query_log', 'parquet'], ['puffindb.refreshes', 'ndjson'], ['trips', 'iceberg']]);
    assert.equal(tables.find((t) => t.name === 'trips')?.rowCount, 2000);
  });

  test('stream() yields Arrow batches with exact int64 and decimals', async () => {
    const got = await batches(embedded.stream('SELECT id, fare FROM trips WHERE id >= ? ORDER BY id', [1990]));
    const ids = got.flatMap((b) => [...b.getChild('id')!.toArray()]);
    assert.deepEqual(ids, Array.from({ length: 10 }, (_, i) => BigInt(1990 + i)));
    assert.equal(String(got[0].schema.fields[1].type), 'Decimal[10e+2]');
    const empty = await batches(embedded.stream('SELECT id FROM trips WHERE id < 0'));
    assert.deepEqual(empty.map((b) => b.numRows), [0], 'an empty result is one empty batch with the schema');
  });

  test('explain and errors', async () => {
    const plan = await embedded.explain('SELECT count(*) FROM trips WHERE id < $1', [10]);
    assert.equal(plan.shape, 'scan-aggregate');
    assert.match(await code(embedded.query('SELEC 1')), /^syntax_error: /);
    assert.match(await code(embedded.query('SELECT * FROM nowhere')), /^unknown_table: .*trips/);
    assert.match(await code(embedded.query('SELECT $1', [])), /^bad_request: .*takes 1 parameter/);
    await assert.rejects(open({ home, workers: 0 }), /workers must be a positive integer/);
  });

  test("query options: a language, Malloy compiled against the warehouse's tables", async () => {
    const malloy = await embedded.query('run: trips -> { where: id < 100; group_by: zone; aggregate: n is count(), total is fare.sum(); order_by: zone }', { language: 'malloy' });
    assert.deepEqual(malloy.rows, (await embedded.query('SELECT zone, count(*) AS n, sum(fare) AS total FROM trips WHERE id < $1 GROUP BY zone ORDER BY zone', { params: [100] })).rows);
    assert.equal((await embedded.explain('from trips | aggregate {n = count this}', { language: 'prql' })).shape, 'scan-aggregate');
    assert.match(await code(embedded.query('run: trips -> { select: id }', { language: 'malloy', params: [1] })), /^bad_request: 'params' apply to DuckDB SQL only/);
    assert.match(await code(embedded.query('run: nowhere -> { select: * }', { language: 'malloy' })), /^unknown_table: Malloy: 'nowhere' is neither a source/);
  });
});

describe('connect(): a server over HTTP', () => {
  test('refuses a bad key or URL at connect', async () => {
    assert.match(await code(connect({ url: server.url, key: 'not-a-key-0123456789' })), /^unauthorized: /);
    assert.match(await code(connect({ url: 'ftp://x', key: ADMIN_KEY })), /^bad_request: url must be http/);
    assert.match(await code(connect({ url: 'http://127.0.0.1:1', key: ADMIN_KEY })), /^unavailable: cannot reach/);
  });

  test('query() answers like open(), small results and large ones fetched in pages', async () => {
    const small = await remote.query(TABLELESS, [45]);
    assert.deepEqual(small, await embedded.query(TABLELESS, [45]));
    assert.deepEqual(small.rows[0], { id: 45, d: 56.25, s: 'k45', even: false });
    // 3000 rows: over the inline limit, so kept as Parquet and read back in pages of 700.
    const large = await remote.query('SELECT id, d, s FROM t WHERE id >= ? ORDER BY id', [0]);
    assert.equal(large.rows.length, 3000);
    assert.ok(large.rows.every((r, i) => r.id === i));
    assert.deepEqual(large.columns.map((c) => c.name), ['id', 'd', 's']);
  });

  test('stream() reads the Arrow stream, inline or stored', async () => {
    const inline = await batches(remote.stream('SELECT count(*) AS n FROM t WHERE id < ?', [10]));
    assert.equal(inline[0].getChild('n')!.get(0), 10n);
    const stored = await batches(remote.stream('SELECT id FROM t ORDER BY id'));
    assert.deepEqual(stored.flatMap((b) => [...b.getChild('id')!.toArray()]).length, 3000);
  });

  test('explain, tables, server errors with their codes, roles, close', async () => {
    assert.equal((await remote.explain('SELECT count(*) FROM t')).shape, 'scan-aggregate');
    assert.deepEqual((await remote.tables()).map((t) => t.name).sort(), ['dim', 'empty', 'puffindb.materialized_views', 'puffindb.query_log', 'puffindb.refreshes', 't']);
    assert.match(await code(remote.query('SELECT * FROM nowhere')), /^unknown_table: /);
    assert.match(await code(remote.query('SELECT ?', [1, 2])), /^bad_request: /);
    const reader = await connect({ url: server.url, key: (await newKey(call, 'reader')).key });
    assert.match(await code(reader.query('CREATE TABLE x AS SELECT 1 AS a')), /^forbidden: /);
    await reader.close();
    await assert.rejects(reader.query('SELECT 1'), /closed/);
  });
});

describe('the query log and serve\'s curl line (small things)', () => {
  test('queries run through open() (as `puffindb query` runs them) are in puffindb.query_log after close', async () => {
    await embedded.close();
    embedded = await open({ home, invoker: 'in-process', workers: 1, env });
    const log = await embedded.query("SELECT sql, \"user\", status, error FROM puffindb.query_log ORDER BY id");
    const sqls = log.rows.map((r) => r.sql as string);
    assert.ok(sqls.some((s) => s.startsWith('CREATE TABLE trips AS')), sqls.join('\n'));
    assert.ok(log.rows.some((r) => r.status === 'failed' && String(r.error).startsWith('syntax_error')));
    assert.ok(log.rows.every((r) => r.user === 'local'));
  });

  test('the printed curl example expands $PUFFINDB_ADMIN_KEY when pasted into a shell', () => {
    const line = curlExample('http://127.0.0.1:8080', '$PUFFINDB_ADMIN_KEY').replace(/^curl /, "printf '%s\\n' ");
    const out = spawnSync('sh', ['-c', line], { env: { PATH: process.env.PATH, PUFFINDB_ADMIN_KEY: 'secret-key-0123456789' }, encoding: 'utf8' });
    assert.match(out.stdout, /^authorization: Bearer secret-key-0123456789$/m);
  });
});
