// External catalogs are a new way in (issue 15, item 4): the registry is admin-only; a reader
// may read an external table but not write, drop or re-register it; a catalog's name cannot
// shadow local tables or reach outside its place (reserved names, dots, path traversal);
// catalog URLs must be http(s) without credentials or link-local hosts; and the registry
// refuses secrets in plaintext (only environment-variable names and Secrets Manager ARNs).

import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { createApp } from '../../runtime/api/app.ts';
import { bootstrapAdminKey } from '../../runtime/api/auth.ts';
import { ExternalCatalogs } from '../../runtime/catalog/external/external-catalog.ts';
import { FilePointerStore } from '../../runtime/catalog/iceberg/file-pointer-store.ts';
import { MemoryPointerStore } from '../../runtime/catalog/iceberg/memory-pointer-store.ts';
import { uriFileIO } from '../../runtime/catalog/iceberg/uri-file-io.ts';
import { uriTableIO } from '../../runtime/catalog/iceberg/writer-io.ts';
import { WarehouseCatalog } from '../../runtime/catalog/warehouse-catalog.ts';
import { Engine } from '../../runtime/engine/engine.ts';
import { openControlPlane, type ControlPlane } from '../../runtime/exec/control-plane.ts';
import { InProcessInvoker } from '../../runtime/exec/in-process-invoker.ts';
import { loadSettings } from '../../runtime/settings.ts';
import { MemoryStateStore } from '../../runtime/state/memory-store.ts';
import { ADMIN_KEY, caller, errorOf, newKey, type Caller } from '../helpers/api.ts';

let dir: string;
let engine: Engine;
let plane: ControlPlane;
let call: Caller;
let reader: string;
let writer: string;
let location: string;
const store = new MemoryPointerStore();
let local: WarehouseCatalog;

async function sql(text: string, key = ADMIN_KEY): Promise<Response> {
  return call('POST', '/v1/query', { key, body: { sql: text } });
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'puffindb-external-sec-'));
  location = pathToFileURL(join(dir, 'ext')).href;
  const settings = loadSettings({
    PUFFINDB_HOME: join(dir, 'home'),
    PUFFINDB_WAREHOUSE: `${pathToFileURL(join(dir, 'warehouse')).href}/`,
    PUFFINDB_WORKERS: '1',
    PUFFINDB_THREADS: '1',
    PUFFINDB_ALLOWED_LOCATIONS: `${location}/`,
  });
  engine = await Engine.create({ threads: 1 });
  let catalog: WarehouseCatalog | undefined;
  const external = new ExternalCatalogs(new FilePointerStore(join(settings.home, 'catalog', 'external-catalogs')), {
    io: uriFileIO(),
    tableIO: uriTableIO(),
    localTables: async () => (catalog ? catalog.listTables() : []),
    openPointerStore: async () => store,
  });
  catalog = await WarehouseCatalog.open(join(settings.home, 'catalog'), engine, { external });
  local = catalog;
  plane = await openControlPlane({ settings, catalog, state: new MemoryStateStore(), invoker: await InProcessInvoker.create(settings), onError: () => undefined });
  await bootstrapAdminKey(plane.state, ADMIN_KEY);
  call = caller(createApp({ manager: plane.manager, state: plane.state, catalog: plane.catalog, settings: { ...settings, apiLoginFailureBurst: 0 }, adminKey: ADMIN_KEY }));
  reader = (await newKey(call, 'reader')).key;
  writer = (await newKey(call, 'writer')).key;
  const res = await call('POST', '/v1/catalogs', { key: ADMIN_KEY, body: { name: 'ext', type: 'dynamodb', region: 'us-east-1', location, options: { table: 'pointers' } } });
  assert.equal(res.status, 201, await res.text());
  assert.equal((await sql('CREATE TABLE ext.db.t AS SELECT 1 AS x')).status, 200);
  assert.equal((await sql('CREATE TABLE shadow.t AS SELECT 1 AS y')).status, 200);
});

after(async () => {
  await plane?.close();
  engine?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('who may change the registry and external tables', () => {
  test('reader and writer keys may not list, add or remove catalogs', async () => {
    for (const key of [reader, writer]) {
      assert.equal((await call('GET', '/v1/catalogs', { key })).status, 403);
      assert.equal((await call('POST', '/v1/catalogs', { key, body: { name: 'evil', type: 'rest', uri: 'https://evil.example.com' } })).status, 403);
      assert.equal((await call('DELETE', '/v1/catalogs/ext', { key })).status, 403);
    }
    assert.equal((await call('GET', '/v1/catalogs')).status, 401);
    const list = (await (await call('GET', '/v1/catalogs', { key: ADMIN_KEY })).json()) as { catalogs: { name: string }[] };
    assert.deepEqual(list.catalogs.map((c) => c.name), ['ext']);
  });

  test('a reader reads an external table but cannot write, delete, drop or replace it', async () => {
    const read = await sql('SELECT x FROM ext.db.t', reader);
    assert.equal(read.status, 200, await read.clone().text());
    const before = await store.get('db.t');
    for (const text of ['INSERT INTO ext.db.t VALUES (2)', 'DELETE FROM ext.db.t', 'UPDATE ext.db.t SET x = 3', 'DROP TABLE ext.db.t', 'CREATE TABLE ext.db.u AS SELECT 1 AS z', 'ALTER TABLE ext.db.t ADD COLUMN w INTEGER']) {
      const res = await sql(text, reader);
      assert.equal(res.status, 403, `${text}: ${await res.text()}`);
    }
    assert.equal(await store.get('db.t'), before, 'the pointer did not move');
    assert.equal(await store.get('db.u'), undefined);
  });

  test('a write naming two catalogs cannot commit into the other one', async () => {
    const res = await sql('ALTER TABLE ext.db.t RENAME TO shadow.t2');
    assert.ok(res.status >= 400 && res.status < 500, await res.text());
    assert.ok(await store.get('db.t'), 'still there');
  });
});

describe('names', () => {
  const add = (body: Record<string, unknown>) => call('POST', '/v1/catalogs', { key: ADMIN_KEY, body: { type: 'rest', uri: 'https://catalog.example.com/api', ...body } });

  test('path traversal, dots, reserved names and names of local namespaces are refused', async () => {
    for (const name of ['..', '../x', 'a/b', 'a.b', 'a\\b', '%2e%2e', '', ' ', 'x'.repeat(64), '1abc', 'puffindb', 'information_schema', 'main', 'system', 'pg_catalog', 'ext\u0000']) {
      const res = await add({ name });
      assert.equal(res.status, 400, `${JSON.stringify(name)}: ${await res.clone().text()}`);
      await errorOf(res);
    }
    const shadow = await add({ name: 'shadow' });
    assert.equal(shadow.status, 409, 'local table shadow.t uses the name');
    const twice = await call('POST', '/v1/catalogs', { key: ADMIN_KEY, body: { name: 'ext', type: 'dynamodb', options: { table: 'other' } } });
    assert.equal(twice.status, 409, 'an existing catalog is not replaced without replace');
    for (const path of ['/v1/catalogs/..', '/v1/catalogs/..%2F..%2Fhome', '/v1/catalogs/a.b', '/v1/catalogs/%00']) {
      const res = await call('DELETE', path, { key: ADMIN_KEY });
      assert.ok(res.status === 400 || res.status === 404, `${path}: ${res.status}`);
    }
    // The registry directory holds only the one record, named after it.
    const files = await readdir(join(dir, 'home', 'catalog', 'external-catalogs'));
    assert.deepEqual(files.filter((f) => !f.startsWith('.')), ['ext']);
  });

  test('a local table cannot be registered under an external catalog\'s name', async () => {
    await assert.rejects(local.registerIceberg('ext.db.shadowed', join(dir, 'nowhere')), (err: Error & { code?: string }) => err.code === 'conflict' && /external catalog 'ext'/.test(err.message));
    await assert.rejects(local.addTable('EXT.db.t', join(dir, '*.parquet')), (err: Error & { code?: string }) => err.code === 'conflict');
  });

  test('SQL names that try to leave the catalog name no table', async () => {
    for (const text of ['SELECT * FROM ext."..".t', 'SELECT * FROM ext."../../etc"."passwd"', 'SELECT * FROM "ext"."db"."t/../../x"']) {
      const res = await sql(text, reader);
      assert.ok([400, 403, 404].includes(res.status), `${text}: ${res.status} ${await res.text()}`);
    }
  });
});

describe('URLs and secrets', () => {
  const add = (body: Record<string, unknown>) => call('POST', '/v1/catalogs', { key: ADMIN_KEY, body: { name: 'bad', type: 'rest', ...body } });

  test('catalog URLs must be http(s), without credentials, query or link-local hosts', async () => {
    for (const uri of ['file:///etc/passwd', 'ftp://catalog.example.com', 'javascript:alert(1)', 'gopher://x', 'http://user:pw@catalog.example.com', 'http://169.254.169.254/latest/meta-data', 'http://[fe80::1]/', 'http://[fd00:ec2::254]/', 'http://[::ffff:169.254.169.254]/', 'http://[::ffff:a9fe:1]/', 'http://[64:ff9b::169.254.1.1]/', 'http://[fe9f::1]/', 'not a url', 'https://c.example.com/?token=abc']) {
      const res = await add({ uri });
      assert.equal(res.status, 400, `${uri}: ${await res.clone().text()}`);
    }
    assert.equal((await add({ uri: 'https://c.example.com', oauthTokenUrl: 'file:///x', clientId: 'a', clientSecretEnv: 'S' })).status, 400);
    for (const l of ['http://x/y', '/tmp/x', 'file:///tmp/../etc', 's3://b/../x']) assert.equal((await add({ uri: 'https://c.example.com', location: l })).status, 400, l);
  });

  test('the registry refuses secrets in plaintext and stores only references', async () => {
    const refused = [
      { uri: 'https://c.example.com', token: 'abc' },
      { uri: 'https://c.example.com', tokenEnv: 'ghp abc def' },
      { uri: 'https://c.example.com', tokenSecretArn: 'hunter2' },
      { uri: 'https://c.example.com', clientId: 'a', clientSecret: 'hunter2' },
      { type: 'postgres', options: { url: 'postgres://u@h/db', catalogName: 'c', password: 'hunter2' } },
      { type: 'postgres', options: { url: 'postgres://u:hunter2@h/db', catalogName: 'c' } },
      { type: 'dynamodb', options: { table: 't', secretAccessKey: 'wJalr' } },
      { type: 'dynamodb', options: { table: 't', 'aws.token': 'x' } },
    ];
    for (const body of refused) {
      const res = await add(body);
      assert.equal(res.status, 400, `${JSON.stringify(body)}: ${await res.clone().text()}`);
    }
    process.env.EXT_TEST_TOKEN = 'the-real-token-value';
    try {
      const ok = await add({ name: 'byref', uri: 'https://c.example.com', tokenEnv: 'EXT_TEST_TOKEN' });
      assert.equal(ok.status, 201, await ok.clone().text());
      const pg = await add({ name: 'pg', type: 'postgres', options: { url: 'postgres://u@h/db', catalogName: 'c', passwordEnv: 'PG_PASSWORD' } });
      assert.equal(pg.status, 201, await pg.clone().text());
      const stored = await Promise.all((await readdir(join(dir, 'home', 'catalog', 'external-catalogs'), { recursive: true })).map((f) => readFile(join(dir, 'home', 'catalog', 'external-catalogs', f)).then(String).catch(() => '')));
      assert.ok(stored.join('').includes('EXT_TEST_TOKEN'), 'the reference is stored');
      assert.ok(!stored.join('').includes('the-real-token-value'), 'the value is not');
      assert.ok(!JSON.stringify(await (await call('GET', '/v1/catalogs', { key: ADMIN_KEY })).json()).includes('the-real-token-value'));
    } finally {
      delete process.env.EXT_TEST_TOKEN;
      await call('DELETE', '/v1/catalogs/byref', { key: ADMIN_KEY });
      await call('DELETE', '/v1/catalogs/pg', { key: ADMIN_KEY });
    }
  });
});
