// The Iceberg REST catalog sub-app, served on a loopback port and driven by iceberg-js (a
// client written by others), plus raw requests for what iceberg-js does not send
// (commit requirements and updates, register).

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { IcebergError, IcebergRestCatalog } from 'iceberg-js';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { createIcebergRestApp } from '../../../../runtime/api/iceberg-rest/app.ts';
import { FilePointerStore } from '../../../../runtime/catalog/iceberg/file-pointer-store.ts';
import { loadTable } from '../../../../runtime/catalog/iceberg/commit.ts';
import { buildIcebergReadSql, openIcebergTable, planTableScan } from '../../../../runtime/catalog/iceberg/index.ts';
import { localTableIO } from '../../../../runtime/catalog/iceberg/writer-io.ts';
import { appendRows } from '../../../../runtime/catalog/iceberg/writer.ts';

describe('Iceberg REST catalog (iceberg-js client)', () => {
  let dir: string;
  let server: ServerType;
  let base: string;
  let catalog: IcebergRestCatalog;
  let store: FilePointerStore;
  let instance: DuckDBInstance;
  let conn: DuckDBConnection;
  const io = localTableIO();
  let warehouseUrl: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'puffindb-iceberg-rest-'));
    store = new FilePointerStore(join(dir, 'pointers'));
    warehouseUrl = pathToFileURL(join(dir, 'warehouse')).href;
    const root = new Hono();
    root.route('/iceberg', createIcebergRestApp({ pointerStore: store, namespaceStore: new FilePointerStore(join(dir, 'namespaces')), io, warehouseUrl }));
    server = await new Promise<ServerType>((resolve) => {
      const s = serve({ fetch: root.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/iceberg/`;
    catalog = new IcebergRestCatalog({ baseUrl: base });
    instance = await DuckDBInstance.create(':memory:');
    conn = await instance.connect();
  });
  after(async () => {
    conn?.closeSync();
    instance?.closeSync();
    await new Promise((resolve) => server?.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  const post = (path: string, body: string): Promise<Response> => fetch(`${base}v1/${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });

  test('config, namespaces: create, list, load, properties, conflicts', async () => {
    const config = (await (await fetch(`${base}v1/config`)).json()) as { defaults: Record<string, string> };
    assert.deepEqual(config.defaults, {});
    await catalog.createNamespace({ namespace: ['sales'] }, { properties: { owner: 'ops' } });
    assert.deepEqual(await catalog.listNamespaces(), [{ namespace: ['default'] }, { namespace: ['sales'] }] as never);
    assert.deepEqual(await catalog.loadNamespaceMetadata({ namespace: ['sales'] }), { properties: { owner: 'ops' } });
    await assert.rejects(catalog.createNamespace({ namespace: ['sales'] }), (err: unknown) => err instanceof IcebergError && err.status === 409 && err.icebergType === 'AlreadyExistsException');
    await assert.rejects(catalog.loadNamespaceMetadata({ namespace: ['nope'] }), (err: unknown) => err instanceof IcebergError && err.status === 404 && err.icebergType === 'NoSuchNamespaceException');
  });

  test('tables: create (partitioned), load, list, commit with requirements and updates, data written by PuffinDB is visible', async () => {
    const created = await catalog.createTable({ namespace: ['sales'] }, {
      name: 'orders',
      schema: { type: 'struct', 'schema-id': 0, fields: [{ id: 1, name: 'id', type: 'long', required: true }, { id: 2, name: 'amount', type: 'decimal(10,2)', required: false }] } as never,
      'partition-spec': { 'spec-id': 0, fields: [{ 'source-id': 1, 'field-id': 1000, name: 'id_bucket', transform: 'bucket[4]' }] } as never,
      properties: { team: 'a' },
    });
    assert.equal(created['format-version'], 2);
    assert.equal(created.location, `${warehouseUrl}/sales/orders`);
    assert.deepEqual(await catalog.listTables({ namespace: ['sales'] }), [{ namespace: ['sales'], name: 'orders' }]);

    // PuffinDB's own writer appends through the same pointer store.
    const ctx = { conn, store, io, stagingDir: join(dir, 'staging'), warehouseUri: warehouseUrl };
    await appendRows(ctx, 'sales.orders', `SELECT i, i * 1.5 FROM range(6) r(i)`);
    const loaded = await catalog.loadTable({ namespace: ['sales'], name: 'orders' });
    assert.equal(loaded.snapshots?.length, 1);
    assert.equal((loaded['partition-specs'][0] as { fields: unknown[] }).fields.length, 1);

    // iceberg-js's own updateTable (its shorthand body) commits a property change.
    const viaClient = await catalog.updateTable({ namespace: ['sales'], name: 'orders' }, { properties: { team: 'c' } });
    assert.equal(viaClient.metadata.properties.team, 'c');
    assert.match(viaClient['metadata-location'], /\/metadata\/00002-.*\.metadata\.json$/);
    assert.equal((await catalog.loadTable({ namespace: ['sales'], name: 'orders' })).properties.team, 'c');

    // Commit: requirements on the current schema, then schema evolution and properties.
    const commit = (body: unknown): Promise<Response> => post('namespaces/sales/tables/orders', JSON.stringify(body));
    const evolve = {
      requirements: [{ type: 'assert-current-schema-id', 'current-schema-id': 0 }, { type: 'assert-table-uuid', uuid: loaded['table-uuid'] }],
      updates: [
        { action: 'add-schema', schema: { type: 'struct', 'schema-id': 1, fields: [{ id: 1, name: 'id', type: 'long', required: true }, { id: 2, name: 'amount', type: 'decimal(10,2)', required: false }, { id: 3, name: 'note', type: 'string', required: false }] } },
        { action: 'set-current-schema', 'schema-id': -1 },
        { action: 'set-properties', updates: { team: 'b', tier: 'gold' } },
      ],
    };
    const ok = await commit(evolve);
    assert.equal(ok.status, 200, await ok.clone().text());
    const after = (await ok.json()) as { metadata: { 'current-schema-id': number; properties: Record<string, string>; 'last-column-id': number } };
    assert.equal(after.metadata['current-schema-id'], 1);
    assert.equal(after.metadata['last-column-id'], 3);
    assert.deepEqual(after.metadata.properties.tier, 'gold');

    // The same requirements again are stale: 409 CommitFailedException, table unchanged.
    const before = await store.get('sales.orders');
    const stale = await commit(evolve);
    assert.equal(stale.status, 409);
    const err = (await stale.json()) as { error: { type: string; code: number; message: string } };
    assert.equal(err.error.type, 'CommitFailedException');
    assert.equal(err.error.code, 409);
    assert.match(err.error.message, /current schema id is 1, expected 0/);
    assert.equal(await store.get('sales.orders'), before);

    // add-snapshot + set-snapshot-ref (what another engine's append sends), exact 63-bit ids.
    const t = await loadTable(store, 'sales.orders', io);
    const current = t.metadata.snapshots[0];
    const newId = 7_123_456_789_012_345_678n;
    const body = `{"requirements":[{"type":"assert-ref-snapshot-id","ref":"main","snapshot-id":${current.snapshotId}}],"updates":[{"action":"add-snapshot","snapshot":{"snapshot-id":${newId},"parent-snapshot-id":${current.snapshotId},"sequence-number":2,"timestamp-ms":${Date.now()},"manifest-list":"${current.manifestList}","summary":{"operation":"append"},"schema-id":1}},{"action":"set-snapshot-ref","ref-name":"main","type":"branch","snapshot-id":${newId}}]}`;
    const added = await post('namespaces/sales/tables/orders', body);
    assert.equal(added.status, 200, await added.clone().text());
    const t2 = await loadTable(store, 'sales.orders', io);
    assert.equal(t2.metadata.currentSnapshotId, newId);
    assert.equal(t2.metadata.lastSequenceNumber, 2n);
    const scan = await planTableScan(await openIcebergTable(t2.metadataLocation));
    const rows = (await conn.runAndReadAll(`SELECT count(*), sum(amount)::VARCHAR, count(note) FROM (${buildIcebergReadSql(scan)})`)).getRowsJson();
    assert.deepEqual(rows, [['6', '22.50', '0']]);
    // The same ref assertion again fails: main moved.
    assert.equal((await post('namespaces/sales/tables/orders', body)).status, 409);
  });

  test('HEAD of a namespace or table: 204 when it exists, 404 when not (the spec), no body', async () => {
    const head = (path: string): Promise<Response> => fetch(`${base}v1/${path}`, { method: 'HEAD' });
    for (const [path, status] of [['namespaces/sales', 204], ['namespaces/default', 204], ['namespaces/nope', 404], ['namespaces/sales/tables/orders', 204], ['namespaces/sales/tables/missing', 404], ['namespaces/nope/tables/orders', 404]] as const) {
      const res = await head(path);
      assert.equal(res.status, status, `HEAD ${path}`);
      assert.equal(await res.text(), '', `HEAD ${path} has no body`);
    }
  });

  test('register, load errors, drop table and namespace', async () => {
    const t = await loadTable(store, 'sales.orders', io);
    const reg = await post('namespaces/sales/register', JSON.stringify({ name: 'orders_copy', 'metadata-location': t.metadataLocation }));
    assert.equal(reg.status, 200, await reg.clone().text());
    assert.equal(await store.get('sales.orders_copy'), t.metadataLocation);
    await assert.rejects(catalog.loadTable({ namespace: ['sales'], name: 'missing' }), (err: unknown) => err instanceof IcebergError && err.status === 404 && err.icebergType === 'NoSuchTableException');
    await assert.rejects(catalog.dropNamespace({ namespace: ['sales'] }), (err: unknown) => err instanceof IcebergError && err.status === 409 && err.icebergType === 'NamespaceNotEmptyException');
    await catalog.dropTable({ namespace: ['sales'], name: 'orders_copy' });
    await catalog.dropTable({ namespace: ['sales'], name: 'orders' });
    assert.deepEqual(await catalog.listTables({ namespace: ['sales'] }), []);
    await catalog.dropNamespace({ namespace: ['sales'] });
    assert.deepEqual(await catalog.listNamespaces(), [{ namespace: ['default'] }] as never);
    const bad = await post('namespaces/default/tables', '{not json');
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { error: { type: string } }).error.type, 'BadRequestException');
  });
});
