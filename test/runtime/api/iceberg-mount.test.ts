// The Iceberg REST catalog as `puffindb serve` serves it: mounted at /iceberg in the API app
// over the control plane of a warehouse catalog, on a loopback port, driven by iceberg-js.
// Tables it creates are the SQL catalog's tables and the other way round; it needs an API
// key like every other route (reads: reader; creates and commits: writer). Rows are written
// with SQL through POST /v1/query, which commits to the same pointer store.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { IcebergError, IcebergRestCatalog } from 'iceberg-js';
import { createApp } from '../../../runtime/api/app.ts';
import { bootstrapAdminKey } from '../../../runtime/api/auth.ts';
import { startServer, type RunningServer } from '../../../runtime/api/server.ts';
import { WarehouseCatalog } from '../../../runtime/catalog/warehouse-catalog.ts';
import { Engine } from '../../../runtime/engine/engine.ts';
import { openControlPlane, type ControlPlane } from '../../../runtime/exec/control-plane.ts';
import { InProcessInvoker } from '../../../runtime/exec/in-process-invoker.ts';
import { loadSettings } from '../../../runtime/settings.ts';
import { MemoryStateStore } from '../../../runtime/state/memory-store.ts';

const ADMIN_KEY = 'test-admin-key-0123456789';

let dir: string;
let engine: Engine;
let plane: ControlPlane;
let server: RunningServer;
let writerKey: string;
let readerKey: string;

async function api(method: string, path: string, key: string | undefined, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = {};
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  return fetch(`${server.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(30_000) });
}

async function json<T>(res: Response, status = 200): Promise<T> {
  const text = await res.text();
  assert.equal(res.status, status, text);
  return JSON.parse(text) as T;
}

async function newKey(role: 'reader' | 'writer'): Promise<string> {
  return (await json<{ key: string }>(await api('POST', '/v1/keys', ADMIN_KEY, { name: `${role} key`, role }), 201)).key;
}

async function query(sql: string, key = writerKey): Promise<{ rows: Record<string, unknown>[] }> {
  return json(await api('POST', '/v1/query', key, { sql }));
}

const catalogFor = (key?: string) => new IcebergRestCatalog({ baseUrl: `${server.url}/iceberg/`, ...(key ? { auth: { type: 'bearer' as const, token: key } } : {}) });

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'puffindb-iceberg-mount-'));
  const settings = loadSettings({
    PUFFINDB_HOME: join(dir, 'home'),
    PUFFINDB_WAREHOUSE: pathToFileURL(join(dir, 'warehouse')).href + '/',
    PUFFINDB_WORKERS: '1',
    PUFFINDB_THREADS: '1',
    PUFFINDB_MAX_FRAGMENTS: '2',
  });
  engine = await Engine.create({ threads: 1 });
  const catalog = await WarehouseCatalog.open(join(settings.home, 'catalog'), engine);
  plane = await openControlPlane({ settings, catalog, state: new MemoryStateStore(), invoker: await InProcessInvoker.create(settings), onError: () => undefined });
  assert.ok(plane.iceberg, 'a warehouse catalog gives the control plane an Iceberg REST catalog');
  await bootstrapAdminKey(plane.state, ADMIN_KEY);
  server = await startServer(createApp({ manager: plane.manager, state: plane.state, catalog: plane.catalog, settings, iceberg: plane.iceberg }), { port: 0 });
  writerKey = await newKey('writer');
  readerKey = await newKey('reader');
});

after(async () => {
  await server?.close();
  await plane?.close();
  engine?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('Iceberg REST catalog mounted at /iceberg', () => {
  test('without a key: 401 in the Iceberg error form, for raw requests and iceberg-js', async () => {
    const res = await api('GET', '/iceberg/v1/config', undefined);
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), 'Bearer');
    const body = (await res.json()) as { error: { type: string; code: number; message: string } };
    assert.equal(body.error.type, 'NotAuthorizedException');
    assert.equal(body.error.code, 401);
    assert.match(body.error.message, /API key/);
    assert.equal((await api('POST', '/iceberg/v1/namespaces', 'not-a-key', { namespace: ['x'] })).status, 401);
    await assert.rejects(catalogFor().listNamespaces(), (err: unknown) => err instanceof IcebergError && err.status === 401);
  });

  test('a writer creates a namespace and a table; SQL lists and queries it', async () => {
    const config = await json<{ overrides: { warehouse: string } }>(await api('GET', '/iceberg/v1/config', writerKey));
    assert.equal(config.overrides.warehouse, plane.settings.warehouse.replace(/\/+$/, ''));

    const rest = catalogFor(writerKey);
    await rest.createNamespace({ namespace: ['ns'] }, { properties: { owner: 'ops' } });
    const created = await rest.createTable({ namespace: ['ns'] }, {
      name: 'events',
      schema: { type: 'struct', 'schema-id': 0, fields: [{ id: 1, name: 'id', type: 'long', required: true }, { id: 2, name: 'label', type: 'string', required: false }] } as never,
    });
    assert.equal(created.location, `${plane.settings.warehouse.replace(/\/+$/, '')}/ns/events`);

    // The REST table is the SQL catalog's table 'ns.events'.
    const listed = await json<{ tables: { name: string; kind: string; columns: { name: string }[] }[] }>(await api('GET', '/v1/tables', readerKey));
    const events = listed.tables.find((t) => t.name === 'ns.events');
    assert.ok(events, `ns.events in ${JSON.stringify(listed.tables.map((t) => t.name))}`);
    assert.equal(events.kind, 'iceberg');
    assert.deepEqual(events.columns.map((c) => c.name), ['id', 'label']);
    assert.deepEqual((await query('SELECT count(*) AS n FROM ns.events', readerKey)).rows.map((r) => Number(r.n)), [0]);

    // SQL appends to it; iceberg-js sees the new snapshot, and SQL counts the rows.
    const inserted = await query(`INSERT INTO ns.events SELECT i::BIGINT, 'e' || i FROM range(5) r(i)`);
    assert.equal(Number(inserted.rows[0].rows_affected), 5);
    const loaded = await rest.loadTable({ namespace: ['ns'], name: 'events' });
    assert.equal(loaded.snapshots?.length, 1);
    assert.deepEqual((await query('SELECT count(*) AS n FROM ns.events', readerKey)).rows.map((r) => Number(r.n)), [5]);
  });

  test('a table created without a namespace (as SQL CREATE TABLE makes it) is in the default namespace over REST', async () => {
    await query('CREATE TABLE made_by_sql AS SELECT 1 AS x');
    const rest = catalogFor(readerKey);
    assert.deepEqual(await rest.listTables({ namespace: ['default'] }), [{ namespace: ['default'], name: 'made_by_sql' }]);
    const t = await rest.loadTable({ namespace: ['default'], name: 'made_by_sql' });
    assert.equal(t.snapshots?.length, 1);
  });

  test('a reader may read but not create or commit: 403 ForbiddenException', async () => {
    const rest = catalogFor(readerKey);
    assert.ok((await rest.listNamespaces()).some((n) => n.namespace.join('.') === 'ns'));
    await assert.rejects(rest.createNamespace({ namespace: ['other'] }), (err: unknown) => err instanceof IcebergError && err.status === 403 && err.icebergType === 'ForbiddenException');
    const res = await api('DELETE', '/iceberg/v1/namespaces/ns/tables/events', readerKey);
    assert.equal(res.status, 403);
    assert.match(((await res.json()) as { error: { message: string } }).error.message, /needs the writer role/);
    assert.equal((await api('HEAD', '/iceberg/v1/namespaces/ns/tables/events', readerKey)).status, 204, 'HEAD is a read, answered 204 as the spec says');
    assert.equal((await api('HEAD', '/iceberg/v1/namespaces/ns', readerKey)).status, 204);
    assert.equal((await api('HEAD', '/iceberg/v1/namespaces/ns/tables/absent', readerKey)).status, 404);
  });

  test('a SQL write from a reader key is 403 and changes nothing', async () => {
    const res = await api('POST', '/v1/query', readerKey, { sql: `INSERT INTO ns.events SELECT 99::BIGINT, 'x'` });
    assert.equal(res.status, 403);
    assert.deepEqual((await query('SELECT count(*) AS n FROM ns.events', readerKey)).rows.map((r) => Number(r.n)), [5]);
  });

  test('namespaces are kept under <home>/catalog/iceberg-namespaces, beside the table pointers', async () => {
    const props = await catalogFor(readerKey).loadNamespaceMetadata({ namespace: ['ns'] });
    assert.deepEqual(props, { properties: { owner: 'ops' } });
    const ns = await plane.iceberg?.namespaceStore?.get('ns');
    assert.ok(ns, 'the namespace pointer is stored');
  });
});
