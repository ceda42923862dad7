// Remote query generators (issue 14, item 6) against a local generator server (node:http on
// 127.0.0.1): a reader's generated query answers what the same SQL answers; the generator
// is sent only the tables the caller may read; the SQL it makes runs under the caller's role
// (a reader's generated write is 403); its failures are 502 naming it; an unknown one 404;
// the registry is admin-only to change; the query record and the log keep the source; the
// URL checks; and the CLI's file registry is the one a local server reads.

import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createApp } from '../../runtime/api/app.ts';
import { bootstrapAdminKey } from '../../runtime/api/auth.ts';
import { runGeneratorCommand } from '../../runtime/cli/generator-commands.ts';
import { callGenerator, checkedLookup, checkGeneratorUrl, type GeneratorInput } from '../../runtime/sql/generators.ts';
import { openGeneratorRegistry } from '../../runtime/state/generator-file.ts';
import { MemoryStateStore } from '../../runtime/state/memory-store.ts';
import { ADMIN_KEY, caller, errorOf, newKey, type Caller } from '../helpers/api.ts';
import { controlFixture, eventually, type ControlFixture } from '../helpers/control-plane.ts';

let f: ControlFixture;
let call: Caller;
let reader: string;
let gen: Server;
let genUrl = '';
/** What the generator server was last sent, and with which headers. */
let lastBody: GeneratorInput | undefined;
let lastAuth: string | undefined;
const hanging: ServerResponse[] = [];

/** Answers by the input: `sql:<SQL>` -> {"sql": SQL}; `fail`: 500; `garbage`: not JSON; `nosql`: JSON without sql; `slow`: never; `big`: over 1 MiB. */
function answer(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    lastBody = JSON.parse(Buffer.concat(chunks).toString('utf8')) as GeneratorInput;
    lastAuth = req.headers.authorization;
    const input = lastBody.input;
    if (input.startsWith('sql:')) return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ sql: input.slice(4) }));
    if (input === 'fail') return void res.writeHead(500).end('model overloaded');
    if (input === 'garbage') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"sql": SELECT');
    if (input === 'nosql') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"query": "SELECT 1"}');
    if (input === 'big') return void res.writeHead(200).end(JSON.stringify({ sql: `SELECT '${'x'.repeat(1024 * 1024)}'` }));
    if (input === 'slow') return void hanging.push(res);
    res.writeHead(400).end('unknown input');
  });
}

before(async () => {
  gen = createServer(answer);
  await new Promise<void>((resolve) => gen.listen(0, '127.0.0.1', resolve));
  genUrl = `http://127.0.0.1:${(gen.address() as AddressInfo).port}/sql`;
  f = await controlFixture();
  await bootstrapAdminKey(f.state, ADMIN_KEY);
  // A short generator deadline, so the timeout test waits 300 ms, not 10 s.
  call = caller(createApp({ manager: f.plane.manager, state: f.state, catalog: f.plane.catalog, settings: { ...f.settings, apiLoginFailureBurst: 0 }, adminKey: ADMIN_KEY, generatorTimeoutMs: 300 }));
  reader = (await newKey(call, 'reader')).key;
  const res = await call('POST', '/v1/generators', { key: ADMIN_KEY, body: { name: 'local', url: genUrl } });
  assert.equal(res.status, 201, await res.text());
});
after(async () => {
  for (const res of hanging) res.destroy();
  gen?.closeAllConnections();
  await new Promise((resolve) => gen?.close(resolve));
  await f?.close();
});

async function run(body: Record<string, unknown>, key = reader, path = '/v1/query'): Promise<Response> {
  return call('POST', path, { key, body });
}

describe('queries made by a generator', () => {
  test("a reader's generated query answers what the same SQL answers", async () => {
    const sql = 'SELECT g, count(*) AS n, sum(d) AS total FROM t WHERE id < 2000 GROUP BY g ORDER BY g';
    const generated = await run({ generator: 'local', input: `sql:${sql}`, params: { lang: 'en' } });
    const text = await generated.text();
    assert.equal(generated.status, 200, text);
    const direct = await run({ sql });
    assert.equal(direct.status, 200);
    assert.deepEqual((JSON.parse(text) as { rows: unknown[] }).rows, ((await direct.json()) as { rows: unknown[] }).rows);
    assert.deepEqual(lastBody?.params, { lang: 'en' });
    assert.equal(lastAuth, undefined);
  });

  test('the generator is sent only the tables the caller may read, with their columns', async () => {
    await run({ generator: 'local', input: 'sql:SELECT 1' });
    const names = lastBody!.tables.map((t) => t.name);
    assert.ok(names.includes('t') && names.includes('dim'), names.join(', '));
    assert.ok(!names.includes('puffindb.query_log'), 'a reader is not told of the query log');
    assert.deepEqual(lastBody!.tables.find((t) => t.name === 'dim')?.columns, [{ name: 'g', type: 'INTEGER' }, { name: 'gname', type: 'VARCHAR' }]);
    assert.deepEqual(lastBody!.params, {});
    const res = await run({ generator: 'local', input: 'sql:SELECT 1' }, ADMIN_KEY);
    assert.equal(res.status, 200);
    assert.ok(lastBody!.tables.some((t) => t.name === 'puffindb.query_log'), 'an admin is');
  });

  test("a reader's generated write is refused like the write (403), before it runs", async () => {
    const before = (await f.state.listQueries({ limit: 1000 })).length;
    const e = await errorOf(await run({ generator: 'local', input: 'sql:DELETE FROM t WHERE id < 10' }), 403);
    assert.equal(e.code, 'forbidden');
    assert.equal((await f.state.listQueries({ limit: 1000 })).length, before, 'nothing recorded');
    // The sandbox applies too: a generated file read is refused as a submitted one would be.
    const read = await run({ generator: 'local', input: "sql:SELECT * FROM read_csv('/etc/passwd')" });
    assert.ok(read.status >= 400 && read.status < 500, String(read.status));
  });

  test('a failing generator is a 502 naming it: HTTP 500, not JSON, no sql, too big, too slow', async () => {
    for (const input of ['fail', 'garbage', 'nosql', 'big', 'slow']) {
      const started = Date.now();
      const e = await errorOf(await run({ generator: 'local', input }), 502);
      assert.equal(e.code, 'bad_gateway', input);
      assert.match(e.message, /query generator 'local'/, input);
      if (input === 'fail') assert.match(e.message, /HTTP 500/);
      if (input === 'slow') assert.ok(Date.now() - started < 2000, 'the deadline cut it short');
    }
    await call('POST', '/v1/generators', { key: ADMIN_KEY, body: { name: 'down', url: 'http://127.0.0.1:9/nothing' } });
    const e = await errorOf(await run({ generator: 'down', input: 'x' }), 502);
    assert.match(e.message, /query generator 'down' could not be reached/);
  });

  test('an unknown generator is 404; sql and generator together, or input without generator, 400', async () => {
    assert.equal((await errorOf(await run({ generator: 'nope', input: 'x' }), 404)).code, 'not_found');
    await errorOf(await run({ generator: 'local', input: 'sql:SELECT 1', sql: 'SELECT 1' }), 400);
    await errorOf(await run({}), 400);
    await errorOf(await run({ sql: 'SELECT 1', input: 'x' }), 400);
    await errorOf(await run({ generator: 'local' }), 400);
    await errorOf(await run({ generator: 'local', input: 'sql:SELECT 1', params: [1] }), 400);
    await errorOf(await run({ generator: 'local', input: 'sql:SELECT 1', dialect: 'tsql' }), 400);
    await errorOf(await run({ sql: 'SELECT $1 AS a', params: { a: 1 } }), 400);
    // sql with params still works as before.
    const res = await run({ sql: 'SELECT $1 AS a', params: [7] });
    assert.deepEqual(((await res.json()) as { rows: unknown[] }).rows, [{ a: 7 }]);
  });

  test('the query record and the query log keep the generated SQL and its source; async and explain take generators too', async () => {
    const sql = 'SELECT id FROM t WHERE id < 3 ORDER BY id';
    const res = await run({ generator: 'local', input: `sql:${sql}`, params: { k: 1 } }, reader, '/v1/queries');
    assert.equal(res.status, 202);
    const queued = (await res.json()) as { queryId: string; sql: string; source: unknown };
    const source = { language: 'generator', generator: 'local', text: `sql:${sql}`, params: { k: 1 } };
    assert.equal(queued.sql, sql);
    assert.deepEqual(queued.source, source);
    const done = await eventually('the query to finish', async () => {
      const s = (await (await call('GET', `/v1/queries/${queued.queryId}`, { key: reader })).json()) as { status: string; sql: string; source: unknown };
      return s.status === 'succeeded' || s.status === 'failed' ? s : undefined;
    });
    assert.equal(done.status, 'succeeded');
    assert.equal(done.sql, sql);
    assert.deepEqual(done.source, source);
    const entry = (await f.state.readLog(null, 1000)).items.find((e) => e.id === queued.queryId);
    assert.equal(entry?.sql, sql);
    assert.deepEqual(entry?.source, source);

    const plan = await run({ generator: 'local', input: 'sql:SELECT count(*) FROM t' }, reader, '/v1/explain');
    assert.equal(plan.status, 200, await plan.clone().text());
    assert.ok(JSON.stringify(await plan.json()).includes('"t"'));
  });
});

describe('the registry', () => {
  test('any key lists generators; only admins add and remove them', async () => {
    const list = (await (await call('GET', '/v1/generators', { key: reader })).json()) as { generators: { name: string; url: string }[] };
    assert.ok(list.generators.some((g) => g.name === 'local' && g.url === genUrl));
    assert.equal((await errorOf(await call('POST', '/v1/generators', { key: reader, body: { name: 'mine', url: genUrl } }), 403)).code, 'forbidden');
    assert.equal((await errorOf(await call('DELETE', '/v1/generators/local', { key: reader }), 403)).code, 'forbidden');
    const added = await call('POST', '/v1/generators', { key: ADMIN_KEY, body: { name: 'tmp', url: genUrl, keyEnv: 'PUFFINDB_TEST_GEN_TOKEN' } });
    assert.equal(added.status, 201);
    // The token is read from the server's environment at each call; without it, a 502 naming the variable.
    assert.match((await errorOf(await run({ generator: 'tmp', input: 'sql:SELECT 1' }), 502)).message, /PUFFINDB_TEST_GEN_TOKEN/);
    process.env.PUFFINDB_TEST_GEN_TOKEN = 'tok-123';
    try {
      assert.equal((await run({ generator: 'tmp', input: 'sql:SELECT 1' })).status, 200);
      assert.equal(lastAuth, 'Bearer tok-123');
    } finally {
      delete process.env.PUFFINDB_TEST_GEN_TOKEN;
    }
    assert.equal((await call('DELETE', '/v1/generators/tmp', { key: ADMIN_KEY })).status, 200);
    await errorOf(await call('DELETE', '/v1/generators/tmp', { key: ADMIN_KEY }), 404);
    await errorOf(await call('DELETE', '/v1/generators/..%2Fx', { key: ADMIN_KEY }), 400);
  });

  test('URLs: http(s) only, no credentials, no link-local or metadata address; loopback only when the URL names it', async () => {
    for (const url of ['ftp://example.com/x', 'file:///etc/passwd', 'http://169.254.169.254/latest/meta-data', 'http://[fd00:ec2::254]/', 'http://[::ffff:169.254.169.254]/', 'http://u:p@example.com/', 'not a url']) {
      assert.equal((await errorOf(await call('POST', '/v1/generators', { key: ADMIN_KEY, body: { name: 'bad', url } }), 400)).code, 'bad_request', url);
    }
    // A record that got past registration (written by hand) is still refused before connecting.
    const input = { input: 'x', params: {}, tables: [] };
    await assert.rejects(callGenerator({ name: 'meta', url: 'http://169.254.169.254/', createdAt: 0 }, input), (e: Error & { code?: string }) => e.code === 'bad_gateway');
    assert.ok(checkGeneratorUrl('https://generator.example.com/sql'));
    // localhost names loopback: allowed (it resolves to it).
    const sql = await callGenerator({ name: 'lh', url: genUrl.replace('127.0.0.1', 'localhost'), createdAt: 0 }, { ...input, input: 'sql:SELECT 2' });
    assert.equal(sql, 'SELECT 2');
    // Names are resolved and every address checked before connecting: a public name resolving to
    // loopback is refused (unless the URL named loopback), to metadata always.
    const fakeDns = (answers: Record<string, string[]>) => ((host: string, _o: unknown, cb: (e: null, a: { address: string; family: number }[]) => void) =>
      cb(null, (answers[host] ?? []).map((address) => ({ address, family: address.includes(':') ? 6 : 4 })))) as never;
    const dns = fakeDns({ 'evil.example': ['203.0.113.5', '127.0.0.1'], 'meta.example': ['::ffff:169.254.169.254'], 'ok.example': ['203.0.113.7'] });
    const resolved = (allowLoopback: boolean, host: string) => new Promise<string>((resolve, reject) =>
      checkedLookup(allowLoopback, dns)(host, { all: true }, (err, addresses) => (err ? reject(err) : resolve(JSON.stringify(addresses)))));
    await assert.rejects(resolved(false, 'evil.example'), /loopback/);
    assert.match(await resolved(true, 'evil.example'), /127\.0\.0\.1/);
    await assert.rejects(resolved(true, 'meta.example'), /link-local/);
    assert.match(await resolved(false, 'ok.example'), /203\.0\.113\.7/);
  });

  test('the CLI writes the registry a local server (no Redis) reads', async () => {
    const settings = { ...f.settings, home: join(f.fx.dir, 'cli-home'), redisUrl: undefined };
    const lines: string[] = [];
    await runGeneratorCommand(['add', 'nl', genUrl, '--key-env', 'NL_TOKEN'], settings, (s) => lines.push(s));
    await runGeneratorCommand(['list'], settings, (s) => lines.push(s));
    assert.match(lines.at(-1) ?? '', /^nl\s+http:\/\/127\.0\.0\.1:\d+\/sql\s+\(token from \$NL_TOKEN\)$/);
    // What `serve` opens: a MemoryStateStore of its own, and this file for generators.
    const served = openGeneratorRegistry(settings, new MemoryStateStore());
    assert.deepEqual((await served.listGenerators()).map((g) => [g.name, g.url, g.keyEnv]), [['nl', genUrl, 'NL_TOKEN']]);
    await runGeneratorCommand(['remove', 'nl'], settings, (s) => lines.push(s));
    assert.deepEqual(await served.listGenerators(), []);
    await assert.rejects(runGeneratorCommand(['add', 'x', 'http://169.254.169.254/'], settings, () => undefined), /link-local/);
    await assert.rejects(runGeneratorCommand(['remove', 'nl'], settings, () => undefined), /no query generator/);
  });

  test('the OpenAPI document lists the generator fields and routes', async () => {
    const doc = (await (await call('GET', '/v1/openapi.json', { key: reader })).json()) as { paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { properties: Record<string, unknown> } }> } }>> };
    for (const path of ['/v1/query', '/v1/queries', '/v1/explain']) {
      const props = doc.paths[path].post.requestBody!.content['application/json'].schema.properties;
      assert.ok('generator' in props && 'input' in props && 'sql' in props, path);
    }
    assert.ok(doc.paths['/v1/generators'].get && doc.paths['/v1/generators'].post && doc.paths['/v1/generators/{name}'].delete);
  });
});
