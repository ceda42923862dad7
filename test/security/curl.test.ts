// The curl() table function (runtime/exec/curl.ts, runtime/exec/curl-fetch.ts) through a
// real local cluster with in-process workers and a loopback HTTP server: JSON, NDJSON, CSV
// and Parquet read as DuckDB reads the same files, a join with a table over several
// fragments fetching once, the files gone afterwards, and the refusals (prefixes, redirects,
// link-local / metadata / loopback addresses before any connection, size, time, HTTP errors).
// No test sends a packet to anything but 127.0.0.1.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, mock, test } from 'node:test';
import { ParquetCatalog } from '../../runtime/catalog/parquet-catalog.ts';
import { Engine } from '../../runtime/engine/engine.ts';
import { PuffinError } from '../../runtime/errors.ts';
import { LocalCluster } from '../../runtime/exec/cluster.ts';
import { addressClass, checkAllowed, curlFetch } from '../../runtime/exec/curl-fetch.ts';
import { formatOf } from '../../runtime/exec/curl.ts';
import { loadSettings, toRootUrl } from '../../runtime/settings.ts';
import { sqlString } from '../../runtime/sql/quote.ts';

let dir: string;
let engine: Engine;
let cluster: LocalCluster;
let shuffleDir: string;
let server: http.Server;
let base: string;
let warehouse: string;
const hits = new Map<string, number>();
const files: Record<string, { path: string; type: string }> = {};

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'puffin-curl-'));
  warehouse = join(dir, 'warehouse');
  engine = await Engine.create({ threads: 1 });
  mkdirSync(join(warehouse, 'facts'), { recursive: true });
  for (let i = 0; i < 3; i++) {
    await engine.exec(`COPY (SELECT ${i} * 1000 + range AS id, (range % 37)::INTEGER AS k, (range * 0.25)::DECIMAL(12,2) AS v FROM range(1000))
      TO ${sqlString(join(warehouse, 'facts', `part-${i}.parquet`))} (FORMAT parquet)`);
  }
  const served = join(dir, 'served');
  mkdirSync(served);
  const source = `SELECT range::INTEGER AS id, (range % 37)::INTEGER AS k, 'name ' || range AS name, range * 1.5 AS score FROM range(100)`;
  const write = async (name: string, options: string, type: string) => {
    const path = join(served, name);
    await engine.exec(`COPY (${source}) TO ${sqlString(path)} (${options})`);
    files[name] = { path, type };
  };
  await write('data.json', 'FORMAT json, ARRAY true', 'application/json');
  await write('data.ndjson', 'FORMAT json', 'application/x-ndjson; charset=utf-8');
  await write('data.csv', 'FORMAT csv, HEADER true', 'text/csv');
  await write('data.parquet', 'FORMAT parquet', 'application/octet-stream');

  server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const file = path.startsWith('/ok/') || path.startsWith('/other/') ? files[path.split('/').pop()!] : undefined;
    if (file) {
      res.writeHead(200, { 'content-type': file.type });
      res.end(readFileSync(file.path));
    } else if (path === '/ok/redirect-in') {
      res.writeHead(302, { location: '/ok/data.csv' });
      res.end();
    } else if (path === '/ok/redirect-out') {
      res.writeHead(302, { location: `${base}/other/data.json` });
      res.end();
    } else if (path === '/ok/big') {
      res.writeHead(200, { 'content-type': 'text/csv', 'content-length': String(3 * 1024 * 1024) });
      res.end(Buffer.alloc(3 * 1024 * 1024, 0x61));
    } else if (path === '/ok/big-chunked') {
      res.writeHead(200, { 'content-type': 'text/csv' });
      for (let i = 0; i < 24; i++) res.write(Buffer.alloc(128 * 1024, 0x61));
      res.end();
    } else if (path === '/ok/trickle') {
      res.writeHead(200, { 'content-type': 'text/csv' });
      res.write('a,b\n');
      const t = setInterval(() => res.write('1,2\n'), 50);
      res.on('close', () => clearInterval(t));
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('no such thing');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const home = join(dir, 'home');
  const catalog = await ParquetCatalog.open(join(home, 'catalog'), engine);
  await catalog.addTable('facts', join(warehouse, 'facts'));
  shuffleDir = join(home, 'shuffle');
  const settings = loadSettings(
    // Every CTE and uncorrelated subquery runs as a step: curl()'s tables are read by steps too.
    { PUFFINDB_CURL_ALLOW: `${base}/ok/, http://169.254.169.254/, http://[fd00:ec2::254]/, http://[::ffff:169.254.169.254]/`, PUFFINDB_SUBQUERY_STAGE_BYTES: '0' },
    { home, warehouse: toRootUrl(warehouse), shuffleUrl: toRootUrl(shuffleDir), cacheDir: join(home, 'cache'), threads: 1, workers: 2, maxFragments: 3, curlMaxBytes: 1024 * 1024 },
  );
  cluster = await LocalCluster.open({ settings, catalog, invoker: 'in-process' });
});

after(async () => {
  await cluster?.close();
  engine?.close();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function curlFiles(): string[] {
  const root = join(shuffleDir, 'curl');
  if (!existsSync(root)) return [];
  return readdirSync(root, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name);
}

async function refused(sql: string, code: string, pattern: RegExp, options = {}): Promise<void> {
  await assert.rejects(cluster.query(sql, options), (err: unknown) => {
    assert.ok(err instanceof PuffinError, String(err));
    assert.equal(err.code, code, err.message);
    assert.match(err.message, pattern);
    return true;
  });
}

const plain = (rows: unknown[][]) => rows.map((r) => r.map((v) => (v === null ? null : String(v))));

test('JSON, NDJSON, CSV and Parquet read as DuckDB reads the same files; the stored files are gone afterwards', async () => {
  const readers: Record<string, (p: string) => string> = {
    'data.json': (p) => `read_json_auto(${sqlString(p)})`,
    'data.ndjson': (p) => `read_json_auto(${sqlString(p)})`,
    'data.csv': (p) => `read_csv_auto(${sqlString(p)})`,
    'data.parquet': (p) => `read_parquet(${sqlString(p)})`,
  };
  for (const [name, reader] of Object.entries(readers)) {
    const got = await cluster.query(`SELECT * FROM curl('${base}/ok/${name}') ORDER BY id`, { role: 'reader' });
    const want = await engine.query(`SELECT * FROM ${reader(files[name].path)} ORDER BY id`);
    assert.deepEqual(got.columns.map((c) => [c.name, c.type]), want.columns.map((c) => [c.name, c.type]), name);
    assert.deepEqual(plain(got.rows), plain(want.rows), name);
    assert.equal(got.rows.length, 100);
  }
  // Filters, aggregates, a subquery, an alias with column names.
  const agg = await cluster.query(`SELECT count(*) AS n, sum(c.x) AS s FROM curl('${base}/ok/data.parquet') AS c(x, y) WHERE y IN (SELECT k FROM curl('${base}/ok/data.csv') WHERE id < 5)`);
  const want = await engine.query(`SELECT count(*) AS n, sum(id) AS s FROM read_parquet(${sqlString(files['data.parquet'].path)}) WHERE k IN (SELECT k FROM read_csv_auto(${sqlString(files['data.csv'].path)}) WHERE id < 5)`);
  assert.deepEqual(plain(agg.rows), plain(want.rows));
  assert.deepEqual(curlFiles(), []);
});

test('a join with a table over several fragments fetches the URL once', async () => {
  hits.clear();
  const url = `${base}/ok/data.parquet`;
  const sql = `SELECT f.k, count(*) AS n, sum(f.v) AS total FROM facts f JOIN curl('${url}') c ON f.k = c.k WHERE c.id < 20 GROUP BY f.k ORDER BY f.k`;
  const got = await cluster.query(sql);
  assert.equal(hits.get('/ok/data.parquet'), 1);
  assert.ok(got.plan.fragments.length >= 2, `fragments: ${got.plan.fragments.length}`);
  const want = await engine.query(`SELECT f.k, count(*) AS n, sum(f.v) AS total FROM read_parquet(${sqlString(join(warehouse, 'facts', '*.parquet'))}) f
    JOIN read_parquet(${sqlString(files['data.parquet'].path)}) c ON f.k = c.k WHERE c.id < 20 GROUP BY f.k ORDER BY f.k`);
  assert.deepEqual(plain(got.rows), plain(want.rows));
  // The same URL twice in one statement is fetched once too.
  hits.clear();
  await cluster.query(`SELECT count(*) FROM curl('${url}') a JOIN curl('${url}') b ON a.id = b.id`);
  assert.equal(hits.get('/ok/data.parquet'), 1);
  assert.deepEqual(curlFiles(), []);
});

test('a CTE over curl() joined with a table runs as a step of a staged plan', async () => {
  hits.clear();
  const sql = `WITH c AS (SELECT k, count(*) AS m FROM curl('${base}/ok/data.ndjson') GROUP BY k)
    SELECT count(*) AS n, sum(f.v * c.m) AS t FROM facts f JOIN c ON f.k = c.k WHERE f.id IN (SELECT id * 7 FROM curl('${base}/ok/data.csv'))`;
  const got = await cluster.query(sql);
  assert.ok(got.plan.materialized && got.plan.materialized.steps.length >= 1, got.plan.reason);
  assert.equal(hits.get('/ok/data.ndjson'), 1);
  assert.equal(hits.get('/ok/data.csv'), 1);
  const want = await engine.query(`WITH c AS (SELECT k, count(*) AS m FROM read_json_auto(${sqlString(files['data.ndjson'].path)}) GROUP BY k)
    SELECT count(*) AS n, sum(f.v * c.m) AS t FROM read_parquet(${sqlString(join(warehouse, 'facts', '*.parquet'))}) f JOIN c ON f.k = c.k
    WHERE f.id IN (SELECT id * 7 FROM read_csv_auto(${sqlString(files['data.csv'].path)}))`);
  assert.deepEqual(plain(got.rows), plain(want.rows));
  assert.deepEqual(curlFiles(), []);
});

test('explain fetches nothing: the plan is made when the query runs', async () => {
  hits.clear();
  const plan = await cluster.explain(`SELECT * FROM curl('${base}/ok/data.json')`);
  assert.equal(plan.shape, 'staged');
  assert.match(plan.reason, /fetched on the coordinator when the query runs/);
  assert.doesNotMatch(plan.sql, /curl\(/);
  assert.equal(hits.size, 0);
  // A plan explain made is not reused: the query fetches and plans itself.
  const got = await cluster.query(`SELECT count(*) FROM curl('${base}/ok/data.json')`, { plan });
  assert.equal(String(got.rows[0][0]), '100');
});

test('refusals: not allowed, a redirect out, HTTP errors, a URL that is not a constant', async () => {
  hits.clear();
  await refused(`SELECT * FROM curl('${base}/other/data.json')`, 'access_denied', /PUFFINDB_CURL_ALLOW/);
  assert.equal(hits.size, 0, 'nothing is fetched outside the allowed prefixes');
  await refused(`SELECT * FROM curl('${base}/ok/redirect-out')`, 'access_denied', /redirects to .*\/other\/data\.json.*PUFFINDB_CURL_ALLOW/);
  assert.equal(hits.get('/other/data.json'), undefined, 'the redirect is not followed');
  const inside = await cluster.query(`SELECT count(*) FROM curl('${base}/ok/redirect-in')`);
  assert.equal(String(inside.rows[0][0]), '100');
  await refused(`SELECT * FROM curl('${base}/ok/missing')`, 'bad_request', /answered HTTP 404/);
  await refused(`SELECT * FROM curl('${base}/ok/' || 'data.json')`, 'bad_request', /constant string/);
  await refused(`SELECT * FROM curl('file:///etc/passwd')`, 'access_denied', /http and https/);
  // A query that fails after the fetch leaves no file either.
  await refused(`SELECT nope FROM curl('${base}/ok/data.json')`, 'binder_error', /nope/);
  // Other file readers stay refused by the planner.
  await refused(`SELECT * FROM read_json_auto('${base}/ok/data.json')`, 'access_denied', /reads files directly/);
  assert.deepEqual(curlFiles(), []);
});

test('size and time limits answer with clear errors', async () => {
  await refused(`SELECT * FROM curl('${base}/ok/big')`, 'payload_too_large', /larger than the 1048576 bytes/);
  await refused(`SELECT * FROM curl('${base}/ok/big-chunked')`, 'payload_too_large', /larger than/);
  const started = Date.now();
  await refused(`SELECT * FROM curl('${base}/ok/trickle')`, 'timeout', /did not answer within|deadline/, { timeoutMs: 600 });
  assert.ok(Date.now() - started < 3000);
  assert.deepEqual(curlFiles(), []);
});

test('link-local and instance-metadata addresses are refused before any connection', async (t) => {
  const request = t.mock.method(http, 'request');
  await refused(`SELECT * FROM curl('http://169.254.169.254/latest/meta-data/')`, 'access_denied', /link-local or instance-metadata/);
  await refused(`SELECT * FROM curl('http://[fd00:ec2::254]/latest/meta-data/')`, 'access_denied', /link-local or instance-metadata/);
  await refused(`SELECT * FROM curl('http://[::ffff:169.254.169.254]/latest/meta-data/')`, 'access_denied', /link-local or instance-metadata/);
  // A host name resolving to the metadata address (a resolver of the test's own: no DNS).
  const resolve = async (host: string) => (host === 'metadata.test' ? [{ address: '169.254.169.254', family: 4 }] : [{ address: '93.184.216.34', family: 4 }, { address: '::ffff:a9fe:a9fe', family: 6 }]);
  await assert.rejects(curlFetch('http://metadata.test/latest/', { allow: ['http://metadata.test/'], resolve }), /link-local or instance-metadata/);
  // Every address is checked, not only the first.
  await assert.rejects(curlFetch('http://mixed.test/x', { allow: ['http://mixed.test/'], resolve }), /link-local or instance-metadata/);
  assert.equal(request.mock.callCount(), 0, 'no connection was attempted');
});

test('loopback only under a loopback prefix; the connection goes to the address that was checked', async () => {
  const port = (server.address() as AddressInfo).port;
  let lookups = 0;
  const resolve = async () => {
    lookups++;
    return [{ address: '127.0.0.1', family: 4 }];
  };
  const request = mock.method(http, 'request');
  try {
    await assert.rejects(curlFetch(`http://loop.test:${port}/ok/data.json`, { allow: [`http://loop.test:${port}/`], resolve }), (err: PuffinError) => err.code === 'access_denied' && /loopback/.test(err.message));
    assert.equal(request.mock.callCount(), 0);
  } finally {
    request.mock.restore();
  }
  hits.clear();
  lookups = 0;
  const got = await curlFetch(`http://localhost:${port}/ok/data.csv`, { allow: [`http://localhost:${port}/ok/`], resolve });
  assert.equal(lookups, 1, 'resolved once: the connection used the checked address, not a second lookup');
  assert.equal(hits.get('/ok/data.csv'), 1);
  assert.equal(formatOf(got), 'csv');
});

test('address classes, prefixes and formats', () => {
  for (const a of ['169.254.169.254', '169.254.0.1', '::ffff:169.254.169.254', '::ffff:a9fe:a9fe', 'fd00:ec2::254', 'fe80::1', '64:ff9b::a9fe:a9fe', '::169.254.169.254']) assert.equal(addressClass(a), 'link-local', a);
  for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1', '::ffff:7f00:1']) assert.equal(addressClass(a), 'loopback', a);
  for (const a of ['0.0.0.0', '::']) assert.equal(addressClass(a), 'unspecified', a);
  for (const a of ['8.8.8.8', '10.0.0.1', '2001:db8::1', 'fd00:ec2::253']) assert.equal(addressClass(a), 'ok', a);
  assert.throws(() => checkAllowed('https://api.example.com/v1/x', []), /not enabled.*PUFFINDB_CURL_ALLOW/);
  assert.ok(checkAllowed('https://api.example.com/v1/x', ['https://api.example.com/v1']));
  assert.throws(() => checkAllowed('https://api.example.com/v1evil', ['https://api.example.com/v1']), /not under/);
  assert.throws(() => checkAllowed('https://api.example.com.evil.test/v1/', ['https://api.example.com']), /not under/);
  assert.throws(() => checkAllowed('https://user:pw@api.example.com/v1/', ['https://api.example.com/']), /credentials/);
  assert.throws(() => checkAllowed('http://api.example.com/v1/', ['https://api.example.com/']), /not under/);
  const body = Buffer.from('');
  assert.equal(formatOf({ url: 'https://h/x', contentType: 'application/vnd.apache.parquet', body }), 'parquet');
  assert.equal(formatOf({ url: 'https://h/x.jsonl', contentType: '', body }), 'ndjson');
  assert.equal(formatOf({ url: 'https://h/x', contentType: 'text/plain', body: Buffer.from('PAR1....') }), 'parquet');
  assert.equal(formatOf({ url: 'https://h/x', contentType: 'text/plain', body: Buffer.from(' [{"a":1}]') }), 'json');
  assert.throws(() => formatOf({ url: 'https://h/x', contentType: 'text/plain', body: Buffer.from('hello') }), /cannot tell the format/);
});
