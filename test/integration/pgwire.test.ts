// The Postgres wire protocol driven by real clients against a real `puffindb serve
// --pg-port`: node-postgres (a parameterized query over the extended protocol, a cancel),
// psql (\dt, \d lineitem, \l, a query) and Python's psycopg2 (a query). Their answers
// equal the HTTP API's for the same SQL.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from '../helpers/redis-server.ts';
import { serveKey, startServe, type RealServer } from '../helpers/serve.ts';

const run = promisify(execFile);
/** Debian's python3 (with python3-psycopg2), not a pyenv shim that lacks it. */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

let server: RealServer;
let pgPort: number;
let readerKey: string;

before(async () => {
  pgPort = await freePort();
  server = await startServe({ demoScale: 0.01, args: ['--pg-port', String(pgPort)] });
  readerKey = await serveKey(server, 'reader');
});
after(() => server?.close());

function client(password = server.adminKey): pg.Client {
  return new pg.Client({ host: '127.0.0.1', port: pgPort, user: 'analyst', database: 'puffindb', password, connectionTimeoutMillis: 20_000 });
}

/** Rows of the HTTP API's answer, every value as text (as the wire protocol sends it). */
async function httpRows(sql: string): Promise<string[][]> {
  // CSV keeps every value's exact text (JSON numbers would lose a decimal's trailing zeros).
  const res = await server.call('POST', '/v1/query', { key: server.adminKey, body: { sql }, headers: { accept: 'text/csv' } });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return text.trim().split(/\r?\n/).slice(1).map((line) => line.split(','));
}

async function psql(...args: string[]): Promise<string> {
  const { stdout } = await run('psql', ['-h', '127.0.0.1', '-p', String(pgPort), '-U', 'analyst', '-d', 'puffindb', '-X', ...args], {
    env: { ...process.env, PGPASSWORD: readerKey, PGCONNECT_TIMEOUT: '20' },
    timeout: 60_000,
  });
  return stdout;
}

const GROUPED = 'SELECT l_returnflag, l_linestatus, count(*) AS n, sum(l_extendedprice) AS s FROM lineitem WHERE l_orderkey < 1000 GROUP BY 1, 2 ORDER BY 1, 2';

test('node-postgres runs a parameterized query; its answer equals the HTTP API\'s', async () => {
  const c = client(readerKey);
  await c.connect();
  try {
    const res = await c.query({ text: 'SELECT l_returnflag, l_linestatus, count(*) AS n, sum(l_extendedprice) AS s FROM lineitem WHERE l_orderkey < $1 GROUP BY 1, 2 ORDER BY 1, 2', values: [1000], rowMode: 'array' });
    assert.deepEqual(res.fields.map((f) => f.name), ['l_returnflag', 'l_linestatus', 'n', 's']);
    assert.deepEqual(res.fields.map((f) => f.dataTypeID), [1043, 1043, 20, 1700]);
    const rows = (res.rows as unknown[][]).map((r) => r.map((v) => (v === null ? '' : String(v))));
    assert.deepEqual(rows, await httpRows(GROUPED));
    // Typed values come back as the client's types; a string parameter stays one string.
    const typed = await c.query('SELECT $1::int + 1 AS i, $2 AS s, DATE \'2024-01-02\' AS d, true AS b, NULL AS z', [41, "it's; DROP TABLE x --"]);
    assert.equal(typed.rows[0].i, 42);
    assert.equal(typed.rows[0].s, "it's; DROP TABLE x --");
    assert.equal(typed.rows[0].b, true);
    assert.ok(typed.rows[0].d instanceof Date);
    assert.equal(typed.rows[0].z, null);
  } finally {
    await c.end();
  }
});

test('node-postgres cancels a long query (CancelRequest -> SQLSTATE 57014)', async () => {
  const c = client();
  await c.connect();
  try {
    const started = Date.now();
    const long = c.query('SELECT count(*) AS n FROM lineitem a, lineitem b, nation c WHERE a.l_orderkey + b.l_orderkey + c.n_nationkey < 0 AND a.l_comment <> b.l_comment');
    const outcome = long.then(() => ({ code: 'finished without being cancelled' }), (e: unknown) => e);
    await new Promise((r) => setTimeout(r, 1500));
    const canceller = client();
    await new Promise<void>((resolve) => {
      // pg's Client#cancel opens a connection that sends CancelRequest with the backend's key.
      (canceller as unknown as { cancel(client: pg.Client, query: unknown): void }).cancel(c, (c as unknown as { activeQuery: unknown }).activeQuery);
      setTimeout(resolve, 200);
    });
    const err = (await outcome) as { code?: string; message?: string };
    assert.equal(err.code, '57014', err.message);
    assert.ok(Date.now() - started < 30_000, 'the cancel took effect in bounded time');
    // The connection still works after the cancel.
    assert.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1);
    const log = await httpRows("SELECT status FROM puffindb.query_log WHERE sql LIKE '%a.l_comment <> b.l_comment%' AND sql NOT LIKE '%query_log%'");
    assert.ok(log.length === 0 || log.every((r) => r[0] === 'cancelled'), JSON.stringify(log));
  } finally {
    await c.end();
  }
});

test('psql: \\dt, \\d lineitem, \\l and a query equal to the HTTP API\'s', async () => {
  const dt = await psql('-c', '\\dt');
  for (const t of ['customer', 'lineitem', 'nation', 'orders', 'part', 'partsupp', 'region', 'supplier']) assert.match(dt, new RegExp(`\\| ${t}\\s+\\| table`), dt);
  assert.doesNotMatch(dt, /puffindb_pg|query_log/, 'internal and admin-only tables are not listed');

  const d = await psql('-c', '\\d lineitem');
  assert.match(d, /Table "main\.lineitem"/);
  assert.match(d, /l_orderkey\s+\| bigint/);
  assert.match(d, /l_extendedprice\s+\| numeric\(15,2\)/);
  assert.match(d, /l_shipdate\s+\| date/);

  const dplus = await psql('-c', '\\d+ nation');
  assert.match(dplus, /n_nationkey\s+\| integer/);

  const l = await psql('-c', '\\l');
  assert.match(l, /puffindb/);

  const out = await psql('-A', '-t', '-F', '\t', '-c', GROUPED);
  const rows = out.trim().split('\n').map((line) => line.split('\t'));
  assert.deepEqual(rows, await httpRows(GROUPED));
});

test('python3 with psycopg2 runs a query; its answer equals the HTTP API\'s', async () => {
  const script = [
    'import json, sys, psycopg2',
    `c = psycopg2.connect(host="127.0.0.1", port=${pgPort}, user="py", dbname="puffindb", password=sys.argv[1], connect_timeout=20)`,
    'cur = c.cursor()',
    'cur.execute("SELECT l_returnflag, l_linestatus, count(*) AS n, sum(l_extendedprice) AS s FROM lineitem WHERE l_orderkey < %s GROUP BY 1, 2 ORDER BY 1, 2", (1000,))',
    'print(json.dumps([[str(v) for v in row] for row in cur.fetchall()]))',
    'c.close()',
  ].join('\n');
  const { stdout } = await run(PYTHON, ['-c', script, readerKey], { timeout: 60_000 });
  assert.deepEqual(JSON.parse(stdout), await httpRows(GROUPED));
});

test('session statements clients send (SET, BEGIN/COMMIT, SHOW, version()) are answered', async () => {
  const c = client(readerKey);
  await c.connect();
  try {
    await c.query('SET application_name = \'x\'');
    await c.query('BEGIN');
    assert.equal((await c.query('SHOW transaction isolation level')).rows[0].transaction_isolation, 'read committed');
    await c.query('COMMIT');
    assert.match((await c.query('SELECT version()')).rows[0].version, /^PostgreSQL 15/);
    const cols = await c.query("SELECT column_name FROM information_schema.columns WHERE table_name = 'nation' ORDER BY ordinal_position");
    assert.deepEqual(cols.rows.map((r) => r.column_name), ['n_nationkey', 'n_name', 'n_regionkey', 'n_comment']);
  } finally {
    await c.end();
  }
});

test('with a certificate configured: TLS, and a cleartext key over it (psql sslmode=require, pg with ssl)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'puffindb-pgtls-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1'], { timeout: 60_000 });
  const port = await freePort();
  const tls = await startServe({ args: ['--pg-port', String(port)], env: { PUFFINDB_PG_TLS_CERT: cert, PUFFINDB_PG_TLS_KEY: key } });
  try {
    const { stdout } = await run('psql', ['-X', '-A', '-t', '-c', 'SELECT 40 + 2 AS n', `host=127.0.0.1 port=${port} user=x dbname=puffindb sslmode=require`], {
      env: { ...process.env, PGPASSWORD: tls.adminKey, PGCONNECT_TIMEOUT: '20' },
      timeout: 60_000,
    });
    assert.equal(stdout.trim(), '42');
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'x', database: 'puffindb', password: tls.adminKey, ssl: { rejectUnauthorized: false } });
    await c.connect();
    try {
      assert.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1);
    } finally {
      await c.end();
    }
    // A wrong key over TLS is still refused.
    const bad = new pg.Client({ host: '127.0.0.1', port, user: 'x', database: 'puffindb', password: 'wrong-key-0123456789abcdef', ssl: { rejectUnauthorized: false } });
    bad.on('error', () => undefined);
    await assert.rejects(bad.connect(), (err: { code?: string }) => err.code === '28P01');
  } finally {
    await tls.close();
    await rm(dir, { recursive: true, force: true });
  }
});
