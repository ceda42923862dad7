// `puffindb download` against a real HTTP server (the API app over a control plane, on a
// loopback port) with results over the inline limit kept as Parquet: the stored result
// fetched in several byte ranges equals plain DuckDB's answer; the result route's Range
// support (206, Content-Range, 416); a reader key downloading its own query's result; a
// target in a missing directory refused before anything runs; nothing but the final line on
// a stderr that is not a terminal. The progress line's formatting, as units.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startServer, type RunningServer } from '../../../runtime/api/server.ts';
import { byteRange } from '../../../runtime/api/result-response.ts';
import { download, downloadFormat, downloadSql } from '../../../runtime/cli/download.ts';
import { main } from '../../../runtime/cli/main.ts';
import { formatBytes, formatDemoProgress, formatDownloadProgress, formatQueryProgress, progressLine, queryProgressHooks } from '../../../runtime/cli/progress.ts';
import { ADMIN_KEY, appFor, caller, errorOf, newKey, type Caller } from '../../helpers/api.ts';
import { cliInProcess } from '../../helpers/cli.ts';
import { controlFixture, type ControlFixture } from '../../helpers/control-plane.ts';
import type { Plan } from '../../../runtime/planner/plan.ts';

const SQL = 'SELECT id, d, s FROM t ORDER BY id';
let f: ControlFixture;
let server: RunningServer;
let call: Caller;
const out = mkdtempSync(join(tmpdir(), 'puffindb-download-'));
const cli = cliInProcess(join(out, 'home'), `file://${join(out, 'warehouse')}/`);

before(async () => {
  f = await controlFixture({ PUFFINDB_RESULT_INLINE_LIMIT_BYTES: '2000' });
  const app = await appFor(f);
  call = caller(app);
  server = await startServer(app, { port: 0, host: '127.0.0.1' });
});
after(async () => {
  await server?.close();
  await f?.close();
  rmSync(out, { recursive: true, force: true });
});

/** Rows of a Parquet file as plain DuckDB reads them, next to DuckDB's own answer over the table. */
async function sameAsDuckdb(path: string): Promise<void> {
  const got = await f.fx.engine.query(`SELECT id, d, s FROM read_parquet('${path}') ORDER BY id`);
  const want = await f.fx.engine.query(SQL);
  assert.equal(got.rows.length, 3000);
  assert.deepEqual(got, want);
}

describe('puffindb download from a server', () => {
  test('the stored Parquet comes in several parallel ranges and equals DuckDB\'s answer', async () => {
    const to = join(out, 'big.parquet');
    const summary = await download({ sql: SQL, to, format: 'parquet', url: server.url, key: ADMIN_KEY, partBytes: 4096, parallel: 3 });
    assert.equal(summary.redirected, false);
    assert.ok(summary.ranges >= 3, `ranges: ${summary.ranges} of ${summary.bytes} bytes`);
    assert.equal(summary.ranges, Math.ceil(summary.bytes / 4096));
    await sameAsDuckdb(to);
    assert.deepEqual(readdirSync(out).filter((n) => n.endsWith('.part')), [], 'no temporary file left');
  });

  test('the result route: 206 with Content-Range for a range, 416 outside it, 200 whole without one', async () => {
    const submitted = (await (await call('POST', '/v1/query', { key: ADMIN_KEY, body: { sql: SQL } })).json()) as { result: string };
    const path = `${submitted.result}?format=parquet`;
    const whole = await call('GET', path, { key: ADMIN_KEY });
    assert.equal(whole.status, 200);
    assert.equal(whole.headers.get('accept-ranges'), 'bytes');
    const bytes = new Uint8Array(await whole.arrayBuffer());
    const part = await call('GET', path, { key: ADMIN_KEY, headers: { range: 'bytes=10-19' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 10-19/${bytes.byteLength}`);
    assert.deepEqual(new Uint8Array(await part.arrayBuffer()), bytes.subarray(10, 20));
    const tail = await call('GET', path, { key: ADMIN_KEY, headers: { range: 'bytes=-4' } });
    assert.equal(tail.status, 206);
    assert.equal(Buffer.from(await tail.arrayBuffer()).toString(), 'PAR1');
    const bad = await call('GET', path, { key: ADMIN_KEY, headers: { range: `bytes=${bytes.byteLength}-` } });
    assert.equal(bad.headers.get('content-range'), `bytes */${bytes.byteLength}`);
    assert.match((await errorOf(bad, 416)).message, /outside the result/);
  });

  test('a reader key downloads its own query\'s result; CSV comes whole; stderr that is not a TTY gets only the last line', async () => {
    const { key } = await newKey(call, 'reader', 'downloader');
    process.env.DOWNLOAD_TEST_KEY = key;
    const writes: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((s: string) => writes.push(String(s))) as never;
    const lines: string[] = [];
    const to = join(out, 'reader.csv');
    try {
      await main(['download', SQL, '--to', to, '--url', server.url, '--key-env', 'DOWNLOAD_TEST_KEY'], (s) => lines.push(s));
      await main(['download', 't', '--to', join(out, 'reader.parquet'), '--url', server.url, '--key-env', 'DOWNLOAD_TEST_KEY', '--part-bytes', '8192'], (s) => lines.push(s));
    } finally {
      process.stderr.write = write;
      delete process.env.DOWNLOAD_TEST_KEY;
    }
    assert.deepEqual(lines, []);
    if (!process.stderr.isTTY) {
      assert.equal(writes.length, 2, writes.join(''));
      assert.ok(writes.every((w) => !w.includes('\r')), 'no progress line');
      assert.match(writes[0], /^wrote .*reader\.csv \(csv, 3000 rows, /);
      assert.match(writes[1], /^wrote .*reader\.parquet \(parquet, \d+ KiB in [2-9] ranges\)/);
    }
    const csv = await f.fx.engine.query(`SELECT count(*)::INTEGER AS n, sum(id)::INTEGER AS s FROM read_csv('${to}')`);
    assert.deepEqual(csv.rows, [[3000, 2999 * 1500]]);
    await sameAsDuckdb(join(out, 'reader.parquet'));
  });

  test('a small (inline) result is fetched whole', async () => {
    const to = join(out, 'small.parquet');
    const summary = await download({ sql: 'SELECT id FROM t WHERE id < 5', to, format: 'parquet', url: server.url, key: ADMIN_KEY, partBytes: 64 });
    assert.equal(summary.ranges, 1);
    assert.deepEqual((await f.fx.engine.query(`SELECT count(*)::INTEGER FROM read_parquet('${to}')`)).rows, [[5]]);
  });

  test('a target in a directory that does not exist is refused before the query runs', async () => {
    const before = (await (await call('GET', '/v1/queries?limit=100', { key: ADMIN_KEY })).json()) as { queries: unknown[] };
    await assert.rejects(download({ sql: SQL, to: join(out, 'nope', 'x.parquet'), format: 'parquet', url: server.url, key: ADMIN_KEY }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'bad_request');
      assert.match(err.message, /the directory .*nope does not exist/);
      return true;
    });
    const later = (await (await call('GET', '/v1/queries?limit=100', { key: ADMIN_KEY })).json()) as { queries: unknown[] };
    assert.equal(later.queries.length, before.queries.length);
    assert.equal(existsSync(join(out, 'nope')), false);
  });

  test('a failing query leaves no file', async () => {
    const to = join(out, 'fail.parquet');
    await assert.rejects(download({ sql: 'SELECT nope FROM t', to, format: 'parquet', url: server.url, key: ADMIN_KEY }), /nope/);
    assert.equal(existsSync(to), false);
    assert.deepEqual(readdirSync(out).filter((n) => n.endsWith('.part')), []);
  });
});

describe('puffindb download without --url (the local warehouse)', () => {
  test('writes the result file directly: Parquet equal to DuckDB\'s answer', async () => {
    const data = join(out, 'data');
    mkdirSync(data);
    await f.fx.engine.exec(`COPY (SELECT * FROM t) TO '${join(data, 't.parquet')}' (FORMAT parquet)`);
    await cli('table', 'add', 'tt', join(data, '*.parquet'));
    const to = join(out, 'local.parquet');
    assert.equal(await cli('download', SQL.replace(' t ', ' tt '), '--to', to), '');
    await sameAsDuckdb(to);
    await assert.rejects(cli('download', 'tt', '--to', join(out, 'missing', 'x.csv')), /directory .*missing does not exist/);
  });
});

describe('download arguments', () => {
  test('format from the extension or --format; a table name is read whole', () => {
    assert.equal(downloadFormat('a/b.PARQUET', undefined), 'parquet');
    assert.equal(downloadFormat('x.csv', undefined), 'csv');
    assert.equal(downloadFormat('x.out', 'arrow'), 'arrow');
    assert.throws(() => downloadFormat('x.out', undefined), /--format parquet\|csv\|arrow\|json/);
    assert.throws(() => downloadFormat('x.csv', 'xlsx'), /--format must be/);
    assert.equal(downloadSql('lineitem'), 'SELECT * FROM lineitem');
    assert.equal(downloadSql('lake.db.t'), 'SELECT * FROM lake.db.t');
    assert.equal(downloadSql('SELECT 1'), 'SELECT 1');
  });

  test('Range headers', () => {
    assert.deepEqual(byteRange('bytes=0-9', 100), { start: 0, end: 9 });
    assert.deepEqual(byteRange('bytes=90-', 100), { start: 90, end: 99 });
    assert.deepEqual(byteRange('bytes=95-200', 100), { start: 95, end: 99 });
    assert.deepEqual(byteRange('bytes=-10', 100), { start: 90, end: 99 });
    assert.equal(byteRange('bytes=100-', 100), 'unsatisfiable');
    assert.equal(byteRange('bytes=-0', 100), 'unsatisfiable');
    assert.equal(byteRange(undefined, 100), undefined);
    assert.equal(byteRange('bytes=0-1,5-6', 100), undefined);
    assert.equal(byteRange('items=0-1', 100), undefined);
    assert.equal(byteRange('bytes=9-2', 100), undefined);
  });
});

describe('progress', () => {
  test('formatting', () => {
    assert.equal(formatBytes(512), '512 B');
    assert.equal(formatBytes(1536), '1.5 KiB');
    assert.equal(formatBytes(50 * 1024 * 1024), '50 MiB');
    assert.equal(formatQueryProgress({ stages: 2, tasksDone: 3, tasksTotal: 7, bytesRead: 2048 }, 1500), 'query: 2 stages, tasks 3/7, 2.0 KiB read, 1.5 s');
    assert.equal(formatDownloadProgress(1024, 4096, 200), 'download: 1.0 KiB of 4.0 KiB (25%) fetched, 0.2 s');
    assert.equal(formatDownloadProgress(10, undefined, 0), 'download: 10 B fetched, 0.0 s');
    assert.equal(formatDemoProgress(3, 8, 2000), 'demo: 3/8 tables written, 2.0 s');
  });

  test('one line rewritten in place on a terminal and cleared; nothing when not a terminal', () => {
    const written: string[] = [];
    const tty = progressLine({ isTTY: true, columns: 200, write: (s) => written.push(s) }, 0);
    const hooks = queryProgressHooks(tty, () => 0);
    hooks.onPlan({ fragments: [{}, {}], stages: [{ tasks: 3 }] } as unknown as Plan);
    hooks.onFragment({ bytesScanned: 100 });
    tty.clear();
    assert.deepEqual(written, ['\rquery: 2 stages, tasks 0/5, 0 B read, 0.0 s\x1b[K', '\rquery: 2 stages, tasks 1/5, 100 B read, 0.0 s\x1b[K', '\r\x1b[K']);
    assert.deepEqual(hooks.progress, { stages: 2, tasksDone: 1, tasksTotal: 5, bytesRead: 100 });

    const nothing: string[] = [];
    const pipe = progressLine({ isTTY: false, write: (s) => nothing.push(s) }, 0);
    queryProgressHooks(pipe).onPlan({ fragments: [{}] } as unknown as Plan);
    pipe.update('x', true);
    pipe.clear();
    assert.deepEqual(nothing, []);
  });
});
