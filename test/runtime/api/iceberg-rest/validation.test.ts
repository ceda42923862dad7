// The Iceberg REST catalog refuses what it cannot store with a 400 BadRequestException naming
// the problem, before anything is written: names too long for the pointer store's file names
// (runtime/catalog/names.ts) or not identifiers, and request bodies whose fields have the
// wrong types (each named). Path parameters are decoded once, by the router.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { createIcebergRestApp } from '../../../../runtime/api/iceberg-rest/app.ts';
import { FilePointerStore } from '../../../../runtime/catalog/iceberg/file-pointer-store.ts';
import { MAX_TABLE_NAME_BYTES } from '../../../../runtime/catalog/names.ts';
import { localTableIO } from '../../../../runtime/catalog/iceberg/writer-io.ts';

const SCHEMA = { type: 'struct', fields: [{ id: 1, name: 'a', type: 'int', required: false }] };

describe('Iceberg REST catalog: names and body types', () => {
  let dir: string;
  let server: ServerType;
  let base: string;
  let store: FilePointerStore;
  let namespaces: FilePointerStore;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'puffindb-iceberg-rest-validation-'));
    store = new FilePointerStore(join(dir, 'pointers'));
    namespaces = new FilePointerStore(join(dir, 'namespaces'));
    const root = new Hono();
    root.route('/iceberg', createIcebergRestApp({ pointerStore: store, namespaceStore: namespaces, io: localTableIO(), warehouseUrl: pathToFileURL(join(dir, 'warehouse')).href }));
    server = await new Promise<ServerType>((resolve) => {
      const s = serve({ fetch: root.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/iceberg/v1/`;
  });
  after(async () => {
    await new Promise((resolve) => server?.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  const call = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: { error?: { type: string; message: string; code: number } } & Record<string, unknown> }> => {
    const res = await fetch(`${base}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : {} };
  };

  /** A 400 BadRequestException whose message matches. */
  async function refused(method: string, path: string, body: unknown, message: RegExp): Promise<void> {
    const r = await call(method, path, body);
    assert.equal(r.status, 400, `${method} ${path} ${String(JSON.stringify(body)).slice(0, 100)}: ${JSON.stringify(r.json)}`);
    assert.equal(r.json.error?.type, 'BadRequestException');
    assert.equal(r.json.error?.code, 400);
    assert.match(r.json.error?.message ?? '', message);
  }

  test('namespace names: too long (the whole, dot-joined) or not identifiers are 400, every time, and nothing is written', async () => {
    for (let i = 0; i < 2; i++) await refused('POST', 'namespaces', { namespace: ['a'.repeat(300)] }, /namespace 'a{40}\.\.\.' is 300 bytes long; names are at most 200 bytes/);
    await refused('POST', 'namespaces', { namespace: ['b'.repeat(150), 'c'.repeat(150)] }, /is 301 bytes long/);
    await refused('POST', 'namespaces', { namespace: ['%41'] }, /invalid namespace part "%41"/);
    await refused('POST', 'namespaces', { namespace: ['x/../y'] }, /invalid namespace part/);
    await refused('POST', 'namespaces', { namespace: [5, null] }, /'namespace' must be a list of strings, got "5"/);
    await refused('POST', 'namespaces', { namespace: 'fuzz' }, /'namespace' must be a non-empty list/);
    await refused('POST', 'namespaces', { namespace: ['ok'], properties: { a: 1 } }, /'properties': the value of "a" must be a string, got 1/);
    await refused('POST', 'namespaces', { namespace: ['ok'], properties: 'x' }, /'properties' must be an object of strings/);
    assert.deepEqual(await readdir(dir), [], 'no namespace file written');
    assert.deepEqual(await namespaces.list(), []);
    // The longest allowed name is accepted.
    const longest = 'n'.repeat(MAX_TABLE_NAME_BYTES);
    const ok = await call('POST', 'namespaces', { namespace: [longest] });
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    assert.equal((await call('GET', `namespaces/${longest}`)).status, 200);
    assert.equal((await call('DELETE', `namespaces/${longest}`)).status, 204);
    await refused('GET', `namespaces/${'n'.repeat(MAX_TABLE_NAME_BYTES + 1)}`, undefined, /is 201 bytes long/);
  });

  test('namespace properties: removals a list of strings, updates an object of strings, or 400 naming the field', async () => {
    await refused('POST', 'namespaces/default/properties', { removals: 5, updates: [] }, /'removals' must be a list of strings, got 5/);
    await refused('POST', 'namespaces/default/properties', { removals: [1] }, /'removals' must be a list of strings, got 1 in it/);
    await refused('POST', 'namespaces/default/properties', { updates: 'x' }, /'updates' must be an object of strings, got "x"/);
    await refused('POST', 'namespaces/default/properties', { updates: [] }, /'updates' must be an object of strings/);
    await refused('POST', 'namespaces/default/properties', { updates: { a: 1 } }, /'updates': the value of "a" must be a string/);
    const ok = await call('POST', 'namespaces/default/properties', { removals: ['gone'], updates: { a: 'b' } });
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    assert.deepEqual(ok.json, { updated: ['a'], removed: [], missing: ['gone'] });
    assert.deepEqual((await call('GET', 'namespaces/default')).json.properties, { a: 'b' });
  });

  test('create table: the name (with its namespace, one pointer-store name) and every field checked before anything is written', async () => {
    await refused('POST', 'namespaces/default/tables', { name: 'v'.repeat(300), schema: SCHEMA }, /table name 'v{40}\.\.\.' is 300 bytes long; names are at most 200 bytes/);
    assert.equal((await call('POST', 'namespaces', { namespace: ['n'.repeat(150)] })).status, 200);
    await refused('POST', `namespaces/${'n'.repeat(150)}/tables`, { name: 't'.repeat(50), schema: SCHEMA }, /table name '.*' is 201 bytes long/);
    await refused('POST', 'namespaces/default/tables', { name: 5, schema: SCHEMA }, /'name' must be a string, got "5"/);
    await refused('POST', 'namespaces/default/tables', { name: '../x', schema: SCHEMA }, /invalid table name "\.\.\/x"/);
    await refused('POST', 'namespaces/default/tables', { name: 'fz3', schema: 5, 'partition-spec': 'x' }, /schema is required and must be an object/);
    await refused('POST', 'namespaces/default/tables', { name: 'fz3', schema: SCHEMA, 'partition-spec': 'x' }, /partition-spec must be an object, got "x"/);
    await refused('POST', 'namespaces/default/tables', { name: 'fz3', schema: SCHEMA, properties: { a: 1 } }, /'properties': the value of "a" must be a string/);
    await refused('POST', 'namespaces/default/tables', { name: 'fz3', schema: SCHEMA, location: 5 }, /'location' must be a string/);
    await refused('POST', 'namespaces/default/tables', { name: 'fz3', schema: SCHEMA, 'stage-create': 'yes' }, /'stage-create' must be a boolean/);
    assert.deepEqual(await store.list(), []);
    const longest = 't'.repeat(MAX_TABLE_NAME_BYTES);
    const ok = await call('POST', 'namespaces/default/tables', { name: longest, schema: SCHEMA });
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    assert.equal((await call('GET', `namespaces/default/tables/${longest}`)).status, 200);
    await refused('GET', `namespaces/default/tables/${longest}t`, undefined, /is 201 bytes long/);
  });

  test('commit, register and rename bodies: wrong types are 400 naming the field', async () => {
    assert.equal((await call('POST', 'namespaces/default/tables', { name: 'c', schema: SCHEMA })).status, 200);
    const before = await store.get('c');
    await refused('POST', 'namespaces/default/tables/c', { requirements: 'x', updates: [] }, /'requirements' must be a list of objects, got "x"/);
    await refused('POST', 'namespaces/default/tables/c', { updates: 'x' }, /'updates' must be a list of objects/);
    await refused('POST', 'namespaces/default/tables/c', { updates: [5] }, /'updates' must be a list of objects, got 5 in it/);
    await refused('POST', 'namespaces/default/tables/c', { requirements: [{ type: 5 }], updates: [] }, /a requirement's type must be a string/);
    await refused('POST', 'namespaces/default/tables/c', { updates: [{ action: 'set-properties', updates: { a: 1 } }] }, /set-properties: updates: the value of "a" must be a string/);
    await refused('POST', 'namespaces/default/tables/c', { updates: [{ action: 'set-properties', updates: 'x' }] }, /set-properties: updates must be an object of strings/);
    await refused('POST', 'namespaces/default/tables/c', { updates: [{ action: 'remove-properties', removals: 'x' }] }, /remove-properties: removals must be a list of strings/);
    await refused('POST', 'namespaces/default/tables/c', { updates: [{ action: 'add-schema', schema: 7 }] }, /add-schema\.schema is required and must be an object/);
    await refused('POST', 'namespaces/default/tables/c', { updates: [{ action: 'set-location', location: 5 }] }, /set-location: location must be a string/);
    await refused('POST', 'namespaces/default/tables/c', { updates: [{ action: 'add-sort-order', 'sort-order': { fields: [null] } }] }, /sort-order\.fields must be a list of objects/);
    await refused('POST', 'namespaces/default/tables/c', { updates: [{ action: 'remove-snapshots', 'snapshot-ids': 5 }] }, /snapshot-ids must be a list/);
    await refused('POST', 'namespaces/default/tables/c', { properties: { a: 2 } }, /set-properties: updates: the value of "a" must be a string/);
    await refused('POST', 'namespaces/default/tables/c', { identifier: { namespace: ['default'], name: 'other' }, updates: [] }, /'identifier' names default\.other, not the table of the path/);
    await refused('POST', `namespaces/default/tables/${'c'.repeat(300)}`, { updates: [] }, /is 300 bytes long/);
    assert.equal(await store.get('c'), before, 'nothing committed');
    const ok = await call('POST', 'namespaces/default/tables/c', { identifier: { namespace: ['default'], name: 'c' }, updates: [{ action: 'set-properties', updates: { a: 'b' } }] });
    assert.equal(ok.status, 200, JSON.stringify(ok.json));

    await refused('POST', 'namespaces/default/register', { name: 'v'.repeat(300), 'metadata-location': before }, /is 300 bytes long/);
    await refused('POST', 'namespaces/default/register', { name: 5, 'metadata-location': before }, /'name' must be a string/);
    await refused('POST', 'namespaces/default/register', { name: 'r', 'metadata-location': 5 }, /'metadata-location' is required/);
    await refused('POST', 'namespaces/default/register', { name: 'r', 'metadata-location': before, overwrite: 'no' }, /'overwrite' must be a boolean/);

    await refused('POST', 'tables/rename', { source: 'x', destination: 5 }, /'source' must be a table identifier/);
    await refused('POST', 'tables/rename', { source: { namespace: 'default', name: 'c' }, destination: { namespace: ['default'], name: 'd' } }, /'source'\.namespace must be a list of names/);
    await refused('POST', 'tables/rename', { source: { namespace: ['default'], name: 'c' }, destination: { namespace: ['default'], name: 7 } }, /'destination'\.name must be a string/);
    await refused('POST', 'tables/rename', { source: { namespace: ['default'], name: 'c' }, destination: { namespace: ['default'], name: 'd'.repeat(300) } }, /is 300 bytes long/);
    await refused('POST', 'tables/rename', { source: { namespace: ['default'], name: 'c' } }, /'source' and 'destination' identifiers are required/);
    assert.equal((await call('POST', 'tables/rename', { source: { namespace: ['default'], name: 'c' }, destination: { namespace: ['default'], name: 'd' } })).status, 204);
    assert.ok((await store.get('d')) !== undefined);
  });

  test('path parameters are decoded once: %2561 is the text "%61", not the name "a"', async () => {
    assert.equal((await call('POST', 'namespaces', { namespace: ['a'] })).status, 200);
    assert.equal((await call('POST', 'namespaces/a/tables', { name: 'b', schema: SCHEMA })).status, 200);
    assert.equal((await call('GET', 'namespaces/%61/tables/%62')).status, 200, 'one level of encoding is the name');
    await refused('GET', 'namespaces/%2561', undefined, /invalid namespace part "%61"/);
    await refused('GET', 'namespaces/a/tables/%2562', undefined, /invalid table name "%62"/);
    await refused('GET', 'namespaces?parent=%2561', undefined, /invalid namespace part "%61"/);
    // The unit separator between parts, encoded once.
    assert.equal((await call('POST', 'namespaces', { namespace: ['a', 'q'] })).status, 200);
    assert.deepEqual((await call('GET', 'namespaces/a%1Fq')).json.namespace, ['a', 'q']);
  });
});
