// External catalogs end to end (issue 15, items 4 and 5): a second local server serves this
// project's own Iceberg REST catalog (runtime/api/iceberg-rest/app.ts) over a warehouse of
// its own, behind OAuth2 client credentials and a static bearer token. The CLI registers it
// as catalog `lake`; the HTTP API then creates, writes (INSERT, DELETE, UPDATE, through the
// catalog's commit endpoint), reads, prunes and joins its tables with a local one, and
// iceberg-js, talking to that server directly, sees every commit. Concurrent INSERTs lose
// and double no commit. A pointer-store catalog (type dynamodb, with the in-memory pointer
// store injected where openExternalPointerStore would open DynamoDB) does the same.

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { Hono } from 'hono';
import { IcebergRestCatalog } from 'iceberg-js';
import { createApp } from '../../runtime/api/app.ts';
import { bootstrapAdminKey } from '../../runtime/api/auth.ts';
import { createIcebergRestApp } from '../../runtime/api/iceberg-rest/app.ts';
import { startServer, type RunningServer } from '../../runtime/api/server.ts';
import { ExternalCatalogs } from '../../runtime/catalog/external/external-catalog.ts';
import { RestCatalogClient } from '../../runtime/catalog/external/rest-client.ts';
import { RestPointerStore } from '../../runtime/catalog/external/rest-store.ts';
import { commitTable, liveDataFileInfos, loadTable } from '../../runtime/catalog/iceberg/commit.ts';
import { FilePointerStore } from '../../runtime/catalog/iceberg/file-pointer-store.ts';
import { MemoryPointerStore } from '../../runtime/catalog/iceberg/memory-pointer-store.ts';
import { uriFileIO } from '../../runtime/catalog/iceberg/uri-file-io.ts';
import { uriTableIO } from '../../runtime/catalog/iceberg/writer-io.ts';
import { WarehouseCatalog } from '../../runtime/catalog/warehouse-catalog.ts';
import { runCatalogCommand } from '../../runtime/cli/catalog-commands.ts';
import { main } from '../../runtime/cli/main.ts';
import { Engine } from '../../runtime/engine/engine.ts';
import { openControlPlane, type ControlPlane } from '../../runtime/exec/control-plane.ts';
import { InProcessInvoker } from '../../runtime/exec/in-process-invoker.ts';
import { loadSettings, type Settings } from '../../runtime/settings.ts';
import { MemoryStateStore } from '../../runtime/state/memory-store.ts';
import { ADMIN_KEY, caller, type Caller } from '../helpers/api.ts';

const STATIC_TOKEN = 'remote-static-token';
const CLIENT_SECRET = 'remote-client-secret';

let dir: string;
let remote: RunningServer;
let remoteWarehouse: string;
let tokensIssued = 0;
let settings: Settings;
let engine: Engine;
let plane: ControlPlane;
let call: Caller;
const dynamo = new MemoryPointerStore();
let external: ExternalCatalogs;
let local: WarehouseCatalog;
const FIXTURES = join(import.meta.dirname, '..', '..', '..', 'shared', 'fixtures');

const lakeJs = () => new IcebergRestCatalog({ baseUrl: `${remote.url}/`, auth: { type: 'bearer', token: STATIC_TOKEN } });

async function sql(text: string): Promise<Record<string, unknown>[]> {
  const res = await call('POST', '/v1/query', { key: ADMIN_KEY, body: { sql: text } });
  const body = await res.text();
  assert.equal(res.status, 200, `${text}: ${body}`);
  return (JSON.parse(body) as { rows: Record<string, unknown>[] }).rows;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'puffindb-external-'));
  // The other catalog: its own warehouse and pointers, OAuth2 tokens and one static token.
  remoteWarehouse = pathToFileURL(join(dir, 'remote-warehouse')).href;
  const rest = createIcebergRestApp({ pointerStore: new FilePointerStore(join(dir, 'remote-pointers')), io: uriTableIO(), warehouseUrl: remoteWarehouse });
  const tokens = new Set<string>([STATIC_TOKEN]);
  const outer = new Hono();
  outer.post('/v1/oauth/tokens', async (c) => {
    const form = new URLSearchParams(await c.req.text());
    if (form.get('grant_type') !== 'client_credentials' || form.get('client_secret') !== CLIENT_SECRET) return c.json({ error: 'invalid_client' }, 401);
    const token = `issued-${++tokensIssued}`;
    tokens.add(token);
    return c.json({ access_token: token, token_type: 'bearer', expires_in: 3600 });
  });
  outer.use('*', async (c, next) => {
    const auth = c.req.header('authorization') ?? '';
    if (!tokens.has(auth.replace(/^Bearer /, ''))) return c.json({ error: { message: 'not authorized', type: 'NotAuthorizedException', code: 401 } }, 401);
    await next();
  });
  // A second catalog that behaves as Glue's endpoint does: no `endpoints` in /v1/config, and
  // HTTP 200 with an error body for an endpoint it does not implement (register).
  const gluey = createIcebergRestApp({ pointerStore: new FilePointerStore(join(dir, 'gluey-pointers')), io: uriTableIO(), warehouseUrl: remoteWarehouse });
  outer.get('/gluey/v1/config', (c) => c.json({ defaults: {}, overrides: { warehouse: remoteWarehouse } }));
  outer.post('/gluey/v1/namespaces/:ns/register', (c) => c.json({ error: { message: 'RegisterTable is not implemented', type: 'UnsupportedOperationException', code: 501 } }));
  outer.route('/gluey', gluey);
  outer.route('/', rest);
  remote = await startServer(outer, { port: 0 });

  settings = loadSettings({
    PUFFINDB_HOME: join(dir, 'home'),
    PUFFINDB_WAREHOUSE: `${pathToFileURL(join(dir, 'local-warehouse')).href}/`,
    PUFFINDB_WORKERS: '1',
    PUFFINDB_THREADS: '1',
    PUFFINDB_MAX_FRAGMENTS: '2',
    // Writes to external tables go where their catalogs keep them: allowed like any location outside the warehouse.
    PUFFINDB_ALLOWED_LOCATIONS: `${remoteWarehouse}/,${pathToFileURL(join(dir, 'dyn-warehouse')).href}/`,
  });
  engine = await Engine.create({ threads: 1 });
  // As runtime/catalog/open.ts makes it (the same registry directory the CLI writes), with
  // the pointer-store seam pointed at an in-memory store for the 'dynamodb' type.
  let catalog: WarehouseCatalog | undefined;
  external = new ExternalCatalogs(new FilePointerStore(join(settings.home, 'catalog', 'external-catalogs')), {
    io: uriFileIO(),
    tableIO: uriTableIO(),
    localTables: async () => (catalog ? catalog.listTables() : []),
    openPointerStore: async (type) => {
      assert.equal(type, 'dynamodb');
      return dynamo;
    },
  });
  catalog = await WarehouseCatalog.open(join(settings.home, 'catalog'), engine, { external });
  local = catalog;
  plane = await openControlPlane({ settings, catalog, state: new MemoryStateStore(), invoker: await InProcessInvoker.create(settings), onError: () => undefined });
  await bootstrapAdminKey(plane.state, ADMIN_KEY);
  call = caller(createApp({ manager: plane.manager, state: plane.state, catalog: plane.catalog, settings: { ...settings, apiLoginFailureBurst: 0 }, adminKey: ADMIN_KEY }));
  process.env.LAKE_CLIENT_SECRET = CLIENT_SECRET;
  await sql(`CREATE TABLE customers AS SELECT * FROM (VALUES (10, 'ann'), (11, 'bob')) v(id, name)`);
});

after(async () => {
  delete process.env.LAKE_CLIENT_SECRET;
  await plane?.close();
  engine?.close();
  await remote?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('an Iceberg REST catalog registered as `lake`', () => {
  test('the CLI registers it (OAuth2 client credentials by reference) and lists it; the server sees it', async () => {
    const out: string[] = [];
    await runCatalogCommand(['add', 'lake', '--type', 'rest', '--uri', remote.url, '--client-id', 'puffin', '--client-secret-env', 'LAKE_CLIENT_SECRET'], settings, (s) => out.push(s));
    await runCatalogCommand(['list'], settings, (s) => out.push(s));
    assert.match(out.join('\n'), /lake\s+rest\s+http:\/\/127\.0\.0\.1:\d+\s+auth oauth2 \(client puffin, \$LAKE_CLIENT_SECRET\)/);
    const listed = (await (await call('GET', '/v1/catalogs', { key: ADMIN_KEY })).json()) as { catalogs: { name: string; clientSecretEnv?: string }[] };
    assert.deepEqual(listed.catalogs.map((c) => [c.name, c.clientSecretEnv]), [['lake', 'LAKE_CLIENT_SECRET']]);
    assert.ok(!JSON.stringify(listed).includes(CLIENT_SECRET), 'the secret is stored nowhere');
  });

  test('CREATE TABLE and INSERT commit through the catalog; iceberg-js sees the table and its snapshot', async () => {
    await lakeJs().createNamespace({ namespace: ['sales'] });
    await sql('CREATE TABLE lake.sales.orders (id INTEGER, customer INTEGER, amount DOUBLE)');
    await sql('INSERT INTO lake.sales.orders VALUES (1, 10, 5.0), (2, 11, 7.5)');
    await sql('INSERT INTO lake.sales.orders VALUES (3, 10, 1.0)');
    assert.ok(tokensIssued >= 1, 'the client fetched an OAuth2 token');
    const t = await lakeJs().loadTable({ namespace: ['sales'], name: 'orders' });
    assert.equal(t.snapshots?.length, 2);
    assert.equal(t.location, `${remoteWarehouse}/lake/sales/orders`);
    // The catalog wrote the current metadata file itself (commit endpoint), not this client.
    const raw = (await (await fetch(`${remote.url}/v1/namespaces/sales/tables/orders`, { headers: { authorization: `Bearer ${STATIC_TOKEN}` } })).json()) as { 'metadata-location': string };
    assert.match(raw['metadata-location'], /\/lake\/sales\/orders\/metadata\/0000[2-9]-/);
  });

  test('a join of the external table with a local one; the scan is pruned by the manifests statistics', async () => {
    const rows = await sql('SELECT c.name, sum(o.amount) AS total, count(*) AS n FROM lake.sales.orders o JOIN customers c ON o.customer = c.id GROUP BY c.name ORDER BY c.name');
    assert.deepEqual(rows.map((r) => [r.name, Number(r.total), Number(r.n)]), [['ann', 6, 2], ['bob', 7.5, 1]]);
    const res = await call('POST', '/v1/explain', { key: ADMIN_KEY, body: { sql: 'SELECT * FROM lake.sales.orders WHERE id = 3' } });
    const plan = (await res.json()) as { plan?: { scans: { table: string; filesTotal: number; filesKept: number }[] }; scans?: { table: string; filesTotal: number; filesKept: number }[] };
    const scans = plan.plan?.scans ?? plan.scans ?? [];
    const scan = scans.find((s) => s.table === 'lake.sales.orders');
    assert.ok(scan, JSON.stringify(plan).slice(0, 400));
    assert.deepEqual([scan.filesTotal, scan.filesKept], [2, 1]);
  });

  test('DELETE and UPDATE commit through the catalog; time travel reads the first snapshot', async () => {
    // iceberg-js reads 63-bit snapshot ids as JavaScript numbers: the first one from the raw answer.
    const raw = await (await fetch(`${remote.url}/v1/namespaces/sales/tables/orders`, { headers: { authorization: `Bearer ${STATIC_TOKEN}` } })).text();
    const first = /"snapshots":\[\{"snapshot-id":(\d+)/.exec(raw)![1];
    await sql('DELETE FROM lake.sales.orders WHERE id = 2');
    await sql('UPDATE lake.sales.orders SET amount = amount * 10 WHERE id = 1');
    assert.deepEqual((await sql('SELECT id, amount FROM lake.sales.orders ORDER BY id')).map((r) => [Number(r.id), Number(r.amount)]), [[1, 50], [3, 1]]);
    assert.deepEqual((await sql(`SELECT count(*) AS n FROM lake.sales.orders AT (VERSION => ${String(first)})`)).map((r) => Number(r.n)), [2]);
    assert.equal((await lakeJs().loadTable({ namespace: ['sales'], name: 'orders' })).snapshots?.length, 4);
    // A schema change is add-schema + set-current-schema under assert-last-assigned-field-id.
    await sql('ALTER TABLE lake.sales.orders ADD COLUMN note VARCHAR');
    const t = await lakeJs().loadTable({ namespace: ['sales'], name: 'orders' });
    const schema = t.schemas.find((x) => x['schema-id'] === t['current-schema-id']);
    assert.deepEqual(schema?.fields.map((f) => f.name), ['id', 'customer', 'amount', 'note']);
    assert.deepEqual((await sql('SELECT count(*) AS n, count(note) AS notes FROM lake.sales.orders')).map((r) => [Number(r.n), Number(r.notes)]), [[2, 0]]);
  });

  test('concurrent INSERTs through the client: every commit lands once', async () => {
    const before = (await lakeJs().loadTable({ namespace: ['sales'], name: 'orders' })).snapshots!.length;
    await Promise.all([0, 1, 2].map((i) => sql(`INSERT INTO lake.sales.orders VALUES (${100 + i}, 11, 1.0, NULL)`)));
    const ids = (await sql('SELECT id FROM lake.sales.orders WHERE id >= 100 ORDER BY id')).map((r) => Number(r.id));
    assert.deepEqual(ids, [100, 101, 102]);
    const t = await lakeJs().loadTable({ namespace: ['sales'], name: 'orders' });
    assert.equal(t.snapshots!.length, before + 3);
    // One chain: each snapshot's parent is the one before it.
    const snaps = t.snapshots as { 'snapshot-id': unknown; 'parent-snapshot-id'?: unknown }[];
    for (let i = 1; i < snaps.length; i++) assert.equal(String(snaps[i]['parent-snapshot-id']), String(snaps[i - 1]['snapshot-id']));
  });

  test('the CLI (openCatalog as every entry point opens it) reads the external table', async () => {
    const keys = ['PUFFINDB_HOME', 'PUFFINDB_WAREHOUSE', 'PUFFINDB_WORKERS', 'PUFFINDB_ALLOWED_LOCATIONS'] as const;
    const saved = keys.map((k) => process.env[k]);
    Object.assign(process.env, { PUFFINDB_HOME: settings.home, PUFFINDB_WAREHOUSE: settings.warehouse, PUFFINDB_WORKERS: '1', PUFFINDB_ALLOWED_LOCATIONS: settings.allowedLocations.join(',') });
    try {
      const lines: string[] = [];
      await main(['query', '--format', 'json', 'SELECT count(*) AS n, sum(amount) AS total FROM lake.sales.orders o JOIN customers c ON o.customer = c.id'], (s) => lines.push(s));
      assert.deepEqual(JSON.parse(lines.join('')).map((r: Record<string, unknown>) => [Number(r.n), Number(r.total)]), [[5, 54]]);
    } finally {
      keys.forEach((k, i) => (saved[i] === undefined ? delete process.env[k] : (process.env[k] = saved[i])));
    }
  });

  test('several writers, each with a client of its own, commit at once: none lost, none doubled', async () => {
    const record = (await external.registry.get('lake'))!;
    const io = uriTableIO();
    const writers = [0, 1, 2].map(() => new RestPointerStore(new RestCatalogClient(record), io));
    const base = await loadTable(writers[0], 'sales.orders', io);
    const file = [...(await liveDataFileInfos(io, base)).values()][0].info;
    const rowsBefore = Number((await sql('SELECT count(*) AS n FROM lake.sales.orders'))[0].n);
    const results = await Promise.all(writers.map((w) => commitTable(w, 'sales.orders', { operation: 'append', files: [file] }, { io })));
    assert.equal(new Set(results.map((r) => String(r.sequenceNumber))).size, 3, 'three sequence numbers');
    assert.ok(results.some((r) => r.attempts > 1), 'at least one writer lost a race and retried');
    const t = await lakeJs().loadTable({ namespace: ['sales'], name: 'orders' });
    assert.equal(t.snapshots!.length, base.metadata.snapshots.length + 3);
    assert.equal(Number((await sql('SELECT count(*) AS n FROM lake.sales.orders'))[0].n), rowsBefore + 3 * file.recordCount);
  });

  test('DROP TABLE drops it from the catalog', async () => {
    await sql('CREATE TABLE lake.sales.scratch AS SELECT 1 AS x');
    assert.ok((await lakeJs().listTables({ namespace: ['sales'] })).some((t) => t.name === 'scratch'));
    await sql('DROP TABLE lake.sales.scratch');
    assert.ok(!(await lakeJs().listTables({ namespace: ['sales'] })).some((t) => t.name === 'scratch'));
    const res = await call('POST', '/v1/query', { key: ADMIN_KEY, body: { sql: 'SELECT * FROM lake.sales.scratch' } });
    assert.equal(res.status, 404);
  });
});

describe('a catalog that behaves as Glue does (no endpoints list, HTTP 200 errors)', () => {
  test('register is probed and found missing; CREATE falls back to the create endpoint, then writes commit', async () => {
    process.env.GLUEY_TOKEN = STATIC_TOKEN;
    try {
      const res = await call('POST', '/v1/catalogs', { key: ADMIN_KEY, body: { name: 'gluey', type: 'rest', uri: `${remote.url}/gluey`, tokenEnv: 'GLUEY_TOKEN' } });
      assert.equal(res.status, 201, await res.text());
      const ns = await fetch(`${remote.url}/gluey/v1/namespaces`, { method: 'POST', headers: { authorization: `Bearer ${STATIC_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ namespace: ['db'] }) });
      assert.equal(ns.status, 200, await ns.text());
      await sql('CREATE TABLE gluey.db.t AS SELECT * FROM (VALUES (1, 10), (2, 11)) v(id, customer)');
      await sql('INSERT INTO gluey.db.t VALUES (3, 10)');
      const rows = await sql('SELECT c.name, count(*) AS n FROM gluey.db.t t JOIN customers c ON t.customer = c.id GROUP BY c.name ORDER BY c.name');
      assert.deepEqual(rows.map((r) => [r.name, Number(r.n)]), [['ann', 2], ['bob', 1]]);
      const catalog = await external.catalog('gluey');
      assert.deepEqual(catalog?.client?.missingEndpoints(), ['POST /v1/{prefix}/namespaces/{namespace}/register']);
      const raw = (await (await fetch(`${remote.url}/gluey/v1/namespaces/db/tables/t`, { headers: { authorization: `Bearer ${STATIC_TOKEN}` } })).json()) as { metadata: { snapshots: unknown[] } };
      assert.equal(raw.metadata.snapshots.length, 2, 'the CTAS rows and the INSERT, committed through the catalog');
    } finally {
      delete process.env.GLUEY_TOKEN;
    }
  });
});

describe('a pointer-store catalog (type dynamodb, store injected)', () => {
  test('registered over HTTP; CTAS, concurrent INSERTs and a join with local and REST tables', async () => {
    const location = pathToFileURL(join(dir, 'dyn-warehouse')).href;
    const res = await call('POST', '/v1/catalogs', { key: ADMIN_KEY, body: { name: 'dyn', type: 'dynamodb', region: 'us-east-1', location, options: { table: 'iceberg_pointers' } } });
    assert.equal(res.status, 201, await res.text());
    await sql('CREATE TABLE dyn.db.events AS SELECT * FROM (VALUES (1, 10), (2, 11)) v(id, customer)');
    await Promise.all([3, 4, 5].map((i) => sql(`INSERT INTO dyn.db.events VALUES (${i}, 10)`)));
    const pointer = await dynamo.get('db.events');
    assert.ok(pointer?.startsWith(`${location}/dyn/db/events/metadata/`), pointer);
    const t = await lakeJs().loadTable({ namespace: ['sales'], name: 'orders' }); // untouched by these writes
    assert.ok(t.snapshots!.length >= 7);
    const rows = await sql(`SELECT c.name, count(DISTINCT e.id) AS events, count(DISTINCT o.id) AS orders
      FROM dyn.db.events e JOIN customers c ON e.customer = c.id LEFT JOIN lake.sales.orders o ON o.customer = c.id GROUP BY c.name ORDER BY c.name`);
    assert.deepEqual(rows.map((r) => [r.name, Number(r.events), Number(r.orders)]), [['ann', 4, 2], ['bob', 1, 3]]);
  });

  test('one query joins an external table with a Delta, a Hudi, a CSV and a local Iceberg table (issue 15, item 5)', async () => {
    await local.registerDelta('delta_ids', join(FIXTURES, 'delta', 'simple_table'));
    await local.registerHudi('hudi_people', join(FIXTURES, 'hudi', 'v6_nonpartitioned'));
    const csv = join(dir, 'regions.csv');
    await writeFile(csv, 'id,region\n10,north\n11,south\n');
    await local.addTable('regions', csv, { format: 'csv' });
    // events (1,10) (2,11) (3,10) (4,10) (5,10); Hudi ids 1-4 (Alice, Bob, Carol, Diana); Delta ids 5, 7, 9.
    const rows = await sql(`SELECT h.name AS person, c.name AS customer, r.region
      FROM dyn.db.events e JOIN hudi_people h ON h.id = e.id JOIN customers c ON c.id = e.customer JOIN regions r ON r.id = c.id
      WHERE e.id + 4 IN (SELECT id FROM delta_ids) ORDER BY person`);
    assert.deepEqual(rows.map((r) => [r.person, r.customer, r.region]), [['Alice', 'ann', 'north'], ['Carol', 'ann', 'north']]);

    // Each scan pruned by its own format's statistics, in one plan: the external Iceberg
    // table by its manifests' bounds (the CTAS file holds ids 1-2), Delta by its log's
    // partition values, Hudi by its hive-style directories, CSV by its hive directories.
    await local.registerDelta('delta_parts', join(FIXTURES, 'delta', 'delta-0.8.0-partitioned'));
    await local.registerHudi('hudi_hive', join(FIXTURES, 'hudi', 'v6_complexkeygen_hivestyle'));
    for (const [region, id] of [['north', 10], ['south', 11]] as const) {
      await mkdir(join(dir, 'by-region', `region=${region}`), { recursive: true });
      await writeFile(join(dir, 'by-region', `region=${region}`, 'r.csv'), `id\n${id}\n`);
    }
    await local.addTable('by_region', join(dir, 'by-region', '*', '*.csv'));
    const res = await call('POST', '/v1/explain', { key: ADMIN_KEY, body: { sql: `SELECT e.id, h.name, d.value, r.region
      FROM dyn.db.events e JOIN hudi_hive h ON h.id = e.id JOIN by_region r ON r.id = e.customer JOIN delta_parts d ON d.value = h.name
      WHERE e.id >= 3 AND h.byteField >= 10 AND h.byteField < 20 AND r.region = 'north' AND d.year = '2021' AND d.month = '12'` } });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    const scans = (JSON.parse(text) as { scans: { table: string; filesTotal: number; filesKept: number }[] }).scans;
    const kept = Object.fromEntries(scans.map((x) => [x.table, [x.filesKept, x.filesTotal]]));
    assert.deepEqual(kept, { 'dyn.db.events': [3, 4], hudi_hive: [1, 3], by_region: [1, 2], delta_parts: [2, 6] }, JSON.stringify(scans));
  });

  test('catalog remove forgets it; its tables are then unknown', async () => {
    assert.equal((await call('DELETE', '/v1/catalogs/dyn', { key: ADMIN_KEY })).status, 200);
    const res = await call('POST', '/v1/query', { key: ADMIN_KEY, body: { sql: 'SELECT * FROM dyn.db.events' } });
    assert.equal(res.status, 404);
    assert.ok(await dynamo.get('db.events'), 'the table itself stays in its catalog');
  });
});
