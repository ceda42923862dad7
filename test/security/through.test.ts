// Attack tests of SELECT ... THROUGH and remote tables (issue 14, item 4), against node:http
// servers on 127.0.0.1 playing a remote PuffinDB that misbehaves: a URL under no registered
// remote is refused before any connection; only admins change the registry; URLs that are not
// http(s) are refused; an answer that is neither Arrow nor the API's JSON is a 502 naming the
// remote; a remote that hangs is bounded by PUFFINDB_REMOTE_TIMEOUT_MS; the remote's key never
// shows in an error or in the query log, even when the remote echoes it back; THROUGH goes
// with SELECT only and writes never read a remote table; a statement that has passed through
// too many instances (a cycle) is refused; a remote's name cannot be a local namespace.

import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createApp } from '../../runtime/api/app.ts';
import { bootstrapAdminKey } from '../../runtime/api/auth.ts';
import { runRemoteCommand } from '../../runtime/cli/remote-commands.ts';
import { throughClause } from '../../runtime/sql/through.ts';
import { ADMIN_KEY, caller, errorOf, newKey, type Caller } from '../helpers/api.ts';
import { controlFixture, type ControlFixture } from '../helpers/control-plane.ts';

const SECRET = 'remote-secret-key-7f3a9c1e5b';

let f: ControlFixture;
let call: Caller;
let reader: string;
let fake: Server;
let fakeUrl = '';
let connections = 0;
const hanging: ServerResponse[] = [];

/** A remote that misbehaves by path: /garbage/ answers junk, /badarrow/ junk typed as Arrow, /echo/ echoes the key, /hang/ never answers. */
function answer(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  req.on('end', () => {
    const path = req.url ?? '';
    if (path.startsWith('/garbage/')) return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"rows": [1, 2');
    if (path.startsWith('/badarrow/')) return void res.writeHead(200, { 'content-type': 'application/vnd.apache.arrow.stream' }).end('definitely not arrow');
    if (path.startsWith('/echo/')) return void res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'bad_request', message: `you sent ${req.headers.authorization}` } }));
    if (path.startsWith('/hang/')) return void hanging.push(res);
    res.writeHead(404).end();
  });
}

before(async () => {
  fake = createServer(answer);
  fake.on('connection', () => connections++);
  await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
  fakeUrl = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;
  process.env.PUFFINDB_TEST_FAKE_KEY = SECRET;
  // A short remote timeout, so the hanging remote costs 300 ms.
  f = await controlFixture({ PUFFINDB_REMOTE_TIMEOUT_MS: '300' });
  await bootstrapAdminKey(f.state, ADMIN_KEY);
  call = caller(createApp({ manager: f.plane.manager, state: f.state, catalog: f.plane.catalog, settings: { ...f.settings, apiLoginFailureBurst: 0 }, adminKey: ADMIN_KEY }));
  reader = (await newKey(call, 'reader')).key;
  for (const name of ['garbage', 'badarrow', 'echo', 'hang']) {
    const res = await call('POST', '/v1/remotes', { key: ADMIN_KEY, body: { name, url: `${fakeUrl}/${name}/`, keyEnv: 'PUFFINDB_TEST_FAKE_KEY' } });
    assert.equal(res.status, 201, await res.text());
  }
});

after(async () => {
  for (const res of hanging) res.destroy();
  fake?.closeAllConnections();
  await new Promise((resolve) => fake?.close(resolve));
  await f?.close();
});

function run(sql: string, key = reader): Promise<Response> {
  return call('POST', '/v1/query', { key, body: { sql } });
}

describe('who may reach what', () => {
  test('a URL under no registered remote is refused before any connection is made', async () => {
    const before = connections;
    for (const url of [`${fakeUrl}/other/`, `${fakeUrl}/garbagex/`, 'http://127.0.0.1:1/']) {
      const error = await errorOf(await run(`SELECT * THROUGH '${url}' FROM t`), 403);
      assert.equal(error.code, 'access_denied');
      assert.match(error.message, /not under a registered remote/);
    }
    // Nor does explain connect to one.
    assert.equal((await errorOf(await call('POST', '/v1/explain', { key: reader, body: { sql: `SELECT 1 AS x THROUGH '${fakeUrl}/nope/'` } }), 403)).code, 'access_denied');
    assert.equal(connections, before);
  });

  test('a statement that has passed through too many instances is refused (a cycle), before connecting', async () => {
    const before = connections;
    const error = await errorOf(await run(`/* puffindb hop 8 */ SELECT * THROUGH '${fakeUrl}/echo/' FROM t`), 400);
    assert.match(error.message, /already passed through 8 PuffinDB instances/);
    assert.match((await errorOf(await run('/* puffindb hop 8 */ SELECT * FROM echo.orders'), 400)).message, /already passed through 8/);
    assert.equal(connections, before);
  });

  test('a reader key cannot add, list or remove remotes', async () => {
    assert.equal((await errorOf(await call('POST', '/v1/remotes', { key: reader, body: { name: 'mine', url: fakeUrl, keyEnv: 'X' } }), 403)).code, 'forbidden');
    assert.equal((await errorOf(await call('GET', '/v1/remotes', { key: reader }), 403)).code, 'forbidden');
    assert.equal((await errorOf(await call('DELETE', '/v1/remotes/echo', { key: reader }), 403)).code, 'forbidden');
    const listed = (await (await call('GET', '/v1/remotes', { key: ADMIN_KEY })).json()) as { remotes: { name: string; keyEnv: string }[] };
    assert.deepEqual(listed.remotes.map((r) => r.name).filter((n) => n !== 'cli_added'), ['badarrow', 'echo', 'garbage', 'hang']);
    assert.ok(!JSON.stringify(listed).includes(SECRET), 'the registry shows the variable, never the key');
  });

  test('URLs that are not http(s), carry credentials or name link-local addresses are refused', async () => {
    for (const url of ['ftp://127.0.0.1/', 'file:///etc/', 'http://user:pw@127.0.0.1/', 'http://169.254.169.254/', 'http://127.0.0.1/?x=1', 'not a url']) {
      const res = await call('POST', '/v1/remotes', { key: ADMIN_KEY, body: { name: 'bad', url, keyEnv: 'X' } });
      assert.equal((await errorOf(res, 400)).code, 'bad_request', url);
    }
    for (const url of ['ftp://127.0.0.1/', 'file:///etc/passwd']) {
      assert.equal((await errorOf(await run(`SELECT * THROUGH '${url}' FROM t`), 400)).code, 'bad_request', url);
    }
  });

  test('the CLI registers into the registry the server reads, and requires --key-env', async () => {
    const out: string[] = [];
    await runRemoteCommand(['add', 'cli_added', `${fakeUrl}/cli`, '--key-env', 'PUFFINDB_TEST_FAKE_KEY'], f.settings, (s) => out.push(s));
    assert.match(out[0], /registered remote cli_added -> http:\/\/127\.0\.0\.1:\d+\/cli\/ \(API key from \$PUFFINDB_TEST_FAKE_KEY\)/);
    const listed = (await (await call('GET', '/v1/remotes', { key: ADMIN_KEY })).json()) as { remotes: { name: string }[] };
    assert.ok(listed.remotes.some((r) => r.name === 'cli_added'));
    await assert.rejects(runRemoteCommand(['add', 'nokey', fakeUrl], f.settings, () => undefined), /--key-env/);
    await runRemoteCommand(['remove', 'cli_added'], f.settings, (s) => out.push(s));
    assert.equal((await errorOf(await call('DELETE', '/v1/remotes/cli_added', { key: ADMIN_KEY }), 404)).code, 'not_found');
  });

  test("a remote's name cannot be a local namespace or a reserved schema", async () => {
    f.fx.catalog.set({ name: 'sales.items', kind: 'parquet', columns: [{ name: 'x', type: 'INTEGER' }], files: [], snapshotId: 's' });
    const taken = await errorOf(await call('POST', '/v1/remotes', { key: ADMIN_KEY, body: { name: 'sales', url: fakeUrl, keyEnv: 'X' } }), 409);
    assert.match(taken.message, /local namespace of table sales\.items/);
    assert.equal((await errorOf(await call('POST', '/v1/remotes', { key: ADMIN_KEY, body: { name: 'puffindb', url: fakeUrl, keyEnv: 'X' } }), 409)).code, 'conflict');
  });

  test('THROUGH goes with SELECT statements only, and only where it belongs', async () => {
    for (const sql of [`INSERT INTO t SELECT * THROUGH '${fakeUrl}/echo/' FROM t`, `SELECT * FROM t THROUGH '${fakeUrl}/echo/'`, `SELECT * FROM (SELECT * THROUGH '${fakeUrl}/echo/' FROM t) s`]) {
      assert.equal((await errorOf(await run(sql), 400)).code, 'bad_request', sql);
    }
    assert.throws(() => throughClause("SELECT a THROUGH 'x' FROM t THROUGH 'y'"), /THROUGH/);
    assert.deepEqual(throughClause("SELECT a, b THROUGH 'https://a/' THROUGH 'https://b/' FROM t WHERE x = 'THROUGH'"), {
      url: 'https://a/', chain: ['https://a/', 'https://b/'],
      forward: "SELECT a, b THROUGH 'https://b/' FROM t WHERE x = 'THROUGH'",
      statement: "SELECT a, b FROM t WHERE x = 'THROUGH'",
    });
    // Not THROUGH clauses: a column named through, a string mentioning it.
    assert.equal(throughClause('SELECT through FROM t'), undefined);
  });
});

describe('writes', () => {
  test('a write that reads a remote table is refused, and nothing is sent', async () => {
    const error = await errorOf(await run('INSERT INTO t SELECT * FROM echo.orders', ADMIN_KEY), 400);
    assert.equal(error.code, 'unsupported');
    assert.match(error.message, /remote 'echo'/);
  });
});

describe('a remote that misbehaves', () => {
  test('an answer that is neither Arrow nor JSON is a 502 naming the remote', async () => {
    for (const name of ['garbage', 'badarrow']) {
      const error = await errorOf(await run(`SELECT * THROUGH '${fakeUrl}/${name}/' FROM t`), 502);
      assert.equal(error.code, 'bad_gateway');
      assert.match(error.message, new RegExp(`remote '${name}'`));
    }
  });

  test('a remote that hangs is cut off by the timeout, with an error naming it', async () => {
    const started = Date.now();
    const error = await errorOf(await run(`SELECT * THROUGH '${fakeUrl}/hang/' FROM t`), 504);
    assert.equal(error.code, 'timeout');
    assert.match(error.message, /remote 'hang' .* did not answer within 300 ms/);
    assert.ok(Date.now() - started < 5000);
  });

  test("the remote's key never shows in an error or in the query log, even when the remote echoes it", async () => {
    const res = await run(`SELECT * THROUGH '${fakeUrl}/echo/' FROM t`);
    const text = await res.text();
    assert.equal(res.status, 400, text);
    assert.ok(!text.includes(SECRET), text);
    assert.match(text, /<remote key>/);
    // Remote tables too (their columns are asked for first).
    const table = await run('SELECT * FROM echo.orders');
    const tableText = await table.text();
    assert.ok(!tableText.includes(SECRET) && table.status === 400, tableText);
    const log = await (await call('GET', '/v1/logs?limit=1000', { key: ADMIN_KEY })).text();
    assert.ok(log.includes('echo'), 'the failed queries are logged');
    assert.ok(!log.includes(SECRET), 'the log holds no key');
    const queries = await (await call('GET', '/v1/queries?limit=100', { key: ADMIN_KEY })).text();
    assert.ok(!queries.includes(SECRET));
  });
});
