// Attacks on the Postgres wire protocol of a real `puffindb serve --pg-port`: a reader key
// cannot write through it (simple query, extended protocol, a write hidden in comments,
// a write after a SELECT in one multi-statement Query), parameters cannot inject SQL, a
// wrong key is refused with 28P01, and malformed or hostile traffic (huge lengths,
// garbage, a stalled startup, a wrong cancel key) gets an ErrorResponse or a close within
// bounds while the server keeps serving.

import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { freePort } from '../helpers/redis-server.ts';
import { serveKey, startServe, type RealServer } from '../helpers/serve.ts';

let server: RealServer;
let pgPort: number;
let readerKey: string;
let writerKey: string;
/**
 * A stalled startup (slowloris), opened as soon as the server serves: the server's startup
 * bound (10 s) runs out while the other tests run, instead of being waited out on its own.
 */
let stalled: Promise<{ data: Buffer; closed: boolean; ms: number }>;

before(async () => {
  pgPort = await freePort();
  server = await startServe({ demoScale: 0.01, args: ['--pg-port', String(pgPort)] });
  readerKey = await serveKey(server, 'reader');
  writerKey = await serveKey(server, 'writer');
  stalled = raw([Buffer.from([0, 0])], 20_000);
  const res = await server.query('CREATE TABLE pg_target AS SELECT * FROM nation');
  assert.equal(res.status, 200, await res.text());
});
after(() => server?.close());

function client(password: string): pg.Client {
  return new pg.Client({ host: '127.0.0.1', port: pgPort, user: 'attacker', database: 'puffindb', password, connectionTimeoutMillis: 20_000 });
}

async function withClient<T>(password: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = client(password);
  c.on('error', () => undefined);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

async function targetRows(): Promise<number> {
  return withClient(server.adminKey, async (c) => Number((await c.query('SELECT count(*) AS n FROM pg_target')).rows[0].n));
}

async function refusedWith(promise: Promise<unknown>, code: string): Promise<string> {
  let message = '';
  await assert.rejects(promise, (err: { code?: string; message?: string }) => {
    assert.equal(err.code, code, err.message);
    message = err.message ?? '';
    return true;
  });
  return message;
}

test('a reader session with a dialect or PRQL set cannot write either: translated statements meet the same roles', async () => {
  const before = await targetRows();
  await withClient(readerKey, async (c) => {
    await c.query("SET puffindb.dialect = 'snowflake'");
    assert.match(await refusedWith(c.query('DELETE FROM pg_target WHERE n_nationkey = 0'), '42501'), /reader .* DELETE .*snowflake/);
    await refusedWith(c.query('INSERT INTO pg_target SELECT * FROM nation WHERE n_nationkey < $1', [100]), '42501');
    // Refused before anything runs, with the SELECT ahead of it in the same message.
    await refusedWith(c.query('SELECT TOP 1 n_name FROM nation; INSERT INTO pg_target SELECT * FROM nation'), '42501');
    // A SET earlier in the message does not let a write after it through.
    await refusedWith(c.query("SET puffindb.dialect = 'tsql'; DELETE FROM pg_target"), '42501');
    await c.query('RESET puffindb.dialect');
    await c.query("SET puffindb.language = 'prql'");
    // SQL embedded in PRQL (an s-string) meets the same sandbox after compiling: no file readers.
    assert.match(await refusedWith(c.query(`from pg_target | derive x = s"(SELECT content FROM read_text('/etc/passwd'))"`), '42501'), /read_text\(\) reads files directly/);
  });
  assert.equal(await targetRows(), before, 'nothing was written');
});

test('a reader key cannot write: simple, extended, hidden in comments, after a SELECT', async () => {
  const before = await targetRows();
  assert.equal(before, 25);
  await withClient(readerKey, async (c) => {
    assert.match(await refusedWith(c.query('INSERT INTO pg_target SELECT * FROM nation'), '42501'), /reader/);
    // Extended protocol (Parse/Bind/Execute) with a parameter.
    await refusedWith(c.query('INSERT INTO pg_target SELECT * FROM nation WHERE n_nationkey < $1', [100]), '42501');
    await refusedWith(c.query('DELETE FROM pg_target'), '42501');
    // The comment trick that once fooled a scanner without nesting: DuckDB's comments nest.
    await assert.rejects(c.query('/* /* */ SELECT 1 -- */ INSERT INTO pg_target SELECT * FROM nation'));
    // Several statements in one simple Query: each is classified and authorized before any runs.
    await refusedWith(c.query('SELECT 1; INSERT INTO pg_target SELECT * FROM nation'), '42501');
    await refusedWith(c.query('SELECT 1; /* x */ DELETE FROM pg_target; SELECT 2'), '42501');
    // Engine statements are not session statements, whatever their case.
    await assert.rejects(c.query("ATTACH '/etc/passwd' AS x"));
    await assert.rejects(c.query("COPY pg_target TO '/tmp/out.csv'"));
    // Session statements (SET) touch no engine: DuckDB's settings stay locked.
    await c.query("SET enable_external_access = true");
    await assert.rejects(c.query("SELECT * FROM read_csv('/etc/passwd')"));
    // Metadata queries run on the catalog mirror with the planner's call checks: no SQL run
    // from a value (which could change what other sessions see), no file readers.
    await refusedWith(c.query("SELECT * FROM pg_class, query('CREATE TABLE main.fake (x INT)')"), '42501');
    await refusedWith(c.query("SELECT * FROM pg_class, read_csv('/etc/passwd')"), '42501');
    await refusedWith(c.query("SELECT query('DROP VIEW puffindb_pg.pg_class') FROM pg_namespace"), '42501');
    assert.doesNotMatch(JSON.stringify((await c.query("SELECT relname FROM pg_class WHERE relkind = 'r'")).rows), /fake/);
    // The admin-only query log is refused to a reader here too.
    await refusedWith(c.query('SELECT count(*) FROM puffindb.query_log'), '42501');
  });
  assert.equal(await targetRows(), before, 'nothing was written');
});

test('a writer runs several statements of one Query one by one; a refused one stops the rest', async () => {
  const before = await targetRows();
  await withClient(writerKey, async (c) => {
    const results = (await c.query('SELECT 1 AS a; INSERT INTO pg_target SELECT * FROM nation WHERE n_nationkey < 2; SELECT 2 AS b')) as unknown as pg.QueryResult[];
    assert.equal(results.length, 3);
    assert.equal(results[0].rows[0].a, 1);
    assert.equal(results[2].rows[0].b, 2);
    // An engine statement anywhere in the message refuses all of it before anything runs.
    await refusedWith(c.query('INSERT INTO pg_target SELECT * FROM nation WHERE n_nationkey < 2; PRAGMA version'), '0A000');
    // A statement failing as it runs stops the ones after it; the ones before it stay
    // committed (PuffinDB has no transactions: each statement commits on its own).
    await refusedWith(c.query('INSERT INTO pg_target SELECT * FROM nation WHERE n_nationkey < 2; SELECT * FROM no_such_table; INSERT INTO pg_target SELECT * FROM nation'), '42P01');
  });
  assert.equal(await targetRows(), before + 4);
});

test('parameters are values, never SQL', async () => {
  const before = await targetRows();
  await withClient(readerKey, async (c) => {
    const hostile = ["x'); INSERT INTO pg_target SELECT * FROM nation; --", "'' OR 1=1 --", '$1', "\\'; DROP TABLE pg_target; --", "E'\\x27'"];
    for (const h of hostile) {
      const res = await c.query('SELECT $1::varchar AS v, count(*) AS n FROM nation WHERE n_name = $1', [h]);
      assert.equal(res.rows[0].v, h);
      assert.equal(Number(res.rows[0].n), 0);
    }
    await refusedWith(c.query('SELECT $1::int AS i', ['1; DROP TABLE pg_target']), '42000');
    await assert.rejects(c.query('SELECT $1 AS v', ['a\u0000b']));
  });
  assert.equal(await targetRows(), before);
});

test('a wrong key, or a key of no one, is refused with 28P01', async () => {
  await refusedWith(withClient('not-a-key-at-all-0123456789', async () => undefined), '28P01');
  await refusedWith(withClient(`${readerKey}x`, async () => undefined), '28P01');
});

/** Raw bytes to the port; resolves with everything the server sent before it closed (or the bound passed). */
function raw(chunks: Buffer[], boundMs: number): Promise<{ data: Buffer; closed: boolean; ms: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const got: Buffer[] = [];
    const socket: Socket = connect(pgPort, '127.0.0.1', () => {
      for (const c of chunks) socket.write(c);
    });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ data: Buffer.concat(got), closed: false, ms: Date.now() - started });
    }, boundMs);
    socket.on('data', (d) => got.push(d));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(got), closed: true, ms: Date.now() - started });
    });
  });
}

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

function startupPacket(user: string): Buffer {
  const body = Buffer.concat([int32(196608), Buffer.from(`user\0${user}\0database\0puffindb\0\0`)]);
  return Buffer.concat([int32(body.length + 4), body]);
}

test('hostile framing gets an ErrorResponse or a close within bounds', async () => {
  // A startup length of 2 GiB: refused before any of it is buffered.
  const huge = await raw([int32(0x7fffffff), int32(196608)], 5000);
  assert.ok(huge.closed, 'closed');
  assert.equal(String.fromCharCode(huge.data[0]), 'E');
  assert.match(huge.data.toString('latin1'), /08P01/);

  // Garbage bytes.
  const garbage = await raw([Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')], 5000);
  assert.ok(garbage.closed);

  // A length below the header's own size.
  const tiny = await raw([int32(2)], 5000);
  assert.ok(tiny.closed);

  // An unknown protocol version.
  const v2 = await raw([int32(8), int32(0x00020000)], 5000);
  assert.ok(v2.closed);
  assert.match(v2.data.toString('latin1'), /0A000/);

  // A query before authentication: the server is waiting for a password message.
  const early = await raw([startupPacket('x'), Buffer.concat([Buffer.from('Q'), int32(13), Buffer.from('SELECT 1\0')])], 5000);
  assert.ok(early.closed);
  assert.match(early.data.toString('latin1'), /08P01/);

  // SSLRequest without a certificate: 'N'.
  const ssl = await raw([int32(8), int32(80877103)], 1000);
  assert.equal(ssl.data.toString('latin1', 0, 1), 'N');
});

test('a stalled startup (slowloris) is closed within the startup bound', async () => {
  const slow = await stalled;
  assert.ok(slow.closed, 'closed before the bound');
  assert.ok(slow.ms < 15_000, `closed after ${slow.ms} ms`);
});

test('an authenticated client sending a huge message or an unknown type is closed with 08P01', async () => {
  for (const bytes of [Buffer.concat([Buffer.from('Q'), int32(0x7ffffff0)]), Buffer.concat([Buffer.from('~'), int32(4)])]) {
    const c = client(readerKey);
    const ended = new Promise<string>((resolve) => {
      c.on('error', (err: Error & { code?: string }) => resolve(err.code ?? err.message));
      c.on('end', () => resolve('end'));
    });
    await c.connect();
    (c as unknown as { connection: { stream: Socket } }).connection.stream.write(bytes);
    const how = await Promise.race([ended, new Promise<string>((r) => setTimeout(() => r('still open'), 10_000))]);
    assert.notEqual(how, 'still open');
    await c.end().catch(() => undefined);
  }
});

test('a CancelRequest with the wrong secret cancels nothing; the server keeps serving', async () => {
  await withClient(readerKey, async (c) => {
    const key = c as unknown as { processID: number; secretKey: number };
    const query = c.query('SELECT count(*) AS n FROM lineitem a, nation b WHERE a.l_orderkey + b.n_nationkey > 0');
    await raw([int32(16), int32(80877102), int32(key.processID), int32((key.secretKey + 1) | 0)], 1000);
    const res = await query;
    assert.ok(Number(res.rows[0].n) > 0);
  });
  const health = await server.call('GET', '/v1/health');
  assert.equal(health.status, 200);
  assert.equal(await withClient(readerKey, async (c) => (await c.query('SELECT 1 AS one')).rows[0].one), 1);
});
