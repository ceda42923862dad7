// The external catalogs' pointer stores against real or protocol-faithful servers: Glue's
// JSON API served on loopback (VersionId semantics included), DynamoDB as dynalite, and a
// real Postgres cluster in Iceberg's JDBC-catalog schema. Each keeps the PointerStore
// contract, and several writers racing through separate clients neither lose nor double a
// commit: read-CAS-retry increments of one pointer, and Iceberg appends by the commit path,
// whose table then reads through a registered catalog (ExternalCatalogs opening the store).
// Stores are opened through openExternalPointerStore, as `puffindb catalog add` does.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { GlueClient, UpdateTableCommand } from '@aws-sdk/client-glue';
import pg from 'pg';
import { PuffinError } from '../../runtime/errors.ts';
import type { PointerStore } from '../../runtime/catalog/iceberg/pointer-store.ts';
import { openExternalPointerStore, type PointerCatalogOptions, type PointerCatalogType } from '../../runtime/catalog/external/stores.ts';
import { DynamoDbPointerStore } from '../../runtime/catalog/external/dynamodb-pointer-store.ts';
import { DROPPING_PARAMETER } from '../../runtime/catalog/external/glue-data-catalog-store.ts';
import { commitTable, createTable, liveDataFileInfos, loadTable } from '../../runtime/catalog/iceberg/commit.ts';
import type { IcebergSchema } from '../../runtime/catalog/iceberg/types.ts';
import type { DataFileInfo } from '../../runtime/catalog/iceberg/writer-manifest.ts';
import { uriTableIO } from '../../runtime/catalog/iceberg/writer-io.ts';
import { addCatalog } from '../../runtime/api/catalogs.ts';
import { ExternalCatalogs } from '../../runtime/catalog/external/external-catalog.ts';
import type { CatalogInput } from '../../runtime/catalog/external/registry.ts';
import { MemoryPointerStore } from '../../runtime/catalog/iceberg/memory-pointer-store.ts';
import { uriFileIO } from '../../runtime/catalog/iceberg/uri-file-io.ts';
import { startLocalGlue, type LocalGlue } from '../helpers/glue-server.ts';
import { startPostgresServer, type TestPostgres } from '../helpers/postgres-server.ts';
import { freePort } from '../helpers/redis-server.ts';
import { startLocalSecretsManager } from '../helpers/secrets-manager.ts';

// The SDK's default credential chain finds these (this test file is its own process).
process.env.AWS_ACCESS_KEY_ID = 'test';
process.env.AWS_SECRET_ACCESS_KEY = 'test';
process.env.AWS_EC2_METADATA_DISABLED = 'true';
const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

const WRITERS = 3;
const INCREMENTS = 4;

// initdb and Postgres's start run beside the Glue and DynamoDB suites.
// Table files of the Iceberg races (metadata, manifests; the data files are only named).
const scratch = mkdtempSync(join(tmpdir(), 'puffindb-pointer-stores-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

const POSTGRES_PASSWORD = 'catalog-pw';
const postgresStarting = startPostgresServer({ password: POSTGRES_PASSWORD });
postgresStarting.catch(() => undefined); // reported by the Postgres suite's before()

const badRequest = (pattern: RegExp) => (err: unknown) => err instanceof PuffinError && err.code === 'bad_request' && pattern.test(err.message);

/** The PointerStore contract every store keeps (names lower-case, CAS, list, remove). */
async function checkContract(store: PointerStore, ns: string): Promise<void> {
  const t = `${ns}.Trips`;
  assert.equal(await store.get(t), undefined);
  assert.equal(await store.compareAndSwap(t, undefined, 's3://b/trips/metadata/1.metadata.json'), true);
  assert.equal(await store.compareAndSwap(t.toLowerCase(), undefined, 's3://b/x.json'), false, 'create refuses an existing table');
  assert.equal(await store.get(t.toLowerCase()), 's3://b/trips/metadata/1.metadata.json');
  assert.equal(await store.compareAndSwap(t, 's3://b/trips/metadata/0.metadata.json', 's3://b/trips/metadata/2.metadata.json'), false, 'a stale expected location loses');
  assert.equal(await store.compareAndSwap(t, 's3://b/trips/metadata/1.metadata.json', 's3://b/trips/metadata/2.metadata.json'), true);
  assert.equal(await store.compareAndSwap(`${ns}.other`, 's3://b/none.json', 's3://b/o.json'), false, 'a swap of a missing table loses');
  assert.equal(await store.compareAndSwap(`${ns}.other`, undefined, 's3://b/other/metadata/1.metadata.json'), true);
  const mine = (await store.list()).filter((p) => p.name.startsWith(`${ns}.`));
  assert.deepEqual(mine, [
    { name: `${ns}.other`, metadataLocation: 's3://b/other/metadata/1.metadata.json' },
    { name: `${ns}.trips`, metadataLocation: 's3://b/trips/metadata/2.metadata.json' },
  ]);
  assert.equal(await store.remove(t, 's3://b/trips/metadata/1.metadata.json'), false, 'a drop at a stale location loses');
  assert.equal(await store.remove(t, 's3://b/trips/metadata/2.metadata.json'), true);
  assert.equal(await store.get(t), undefined);
  assert.equal(await store.remove(t, 's3://b/trips/metadata/2.metadata.json'), false, 'a second drop finds nothing');
  assert.equal(await store.compareAndSwap(t, undefined, 's3://b/trips/metadata/9.metadata.json'), true, 'a dropped table can be created again');
  await assert.rejects(store.get('bare'), badRequest(/needs a namespace/));
  await assert.rejects(store.compareAndSwap('bad-name.t', undefined, 'x'), badRequest(/invalid table name/));
}

/**
 * `stores.length` writers, each through its own client, raise a counter kept in one pointer
 * ('<count>:<writer>:<i>') `increments` times by read, compare-and-swap, retry on loss.
 */
async function raceIncrements(stores: PointerStore[], name: string, increments: number): Promise<void> {
  assert.equal(await stores[0]!.compareAndSwap(name, undefined, '0:init:0'), true);
  const won: number[] = [];
  let losses = 0;
  await Promise.all(stores.map(async (store, w) => {
    for (let i = 0; i < increments; i++) {
      for (;;) {
        const current = await store.get(name);
        assert.ok(current, 'the pointer never disappears');
        const count = Number(current.split(':')[0]);
        if (await store.compareAndSwap(name, current, `${count + 1}:${w}:${i}`)) {
          won.push(count + 1);
          break;
        }
        losses++;
      }
    }
  }));
  const total = stores.length * increments;
  assert.equal(Number((await stores[0]!.get(name))!.split(':')[0]), total, 'no commit lost');
  assert.deepEqual(won.sort((a, b) => a - b), Array.from({ length: total }, (_, i) => i + 1), 'each count won exactly once');
  assert.ok(losses > 0, 'the writers did race');
}

/**
 * Iceberg commits, not just pointer swaps: one table created through the first store, then
 * `stores.length` writers, each through its own client, append `appends` snapshots each by
 * the commit path (iceberg/commit.ts: write the metadata file, compare-and-swap, on a lost
 * race re-read and retry). Every snapshot lands once, in one parent chain, every file is live.
 */
async function raceIcebergAppends(stores: PointerStore[], name: string, appends: number, where: string): Promise<void> {
  const io = uriTableIO();
  const location = pathToFileURL(join(scratch, where, name.replace('.', '-'))).href;
  const schema: IcebergSchema = { schemaId: 0, fields: [{ id: 1, name: 'id', required: false, type: { kind: 'long' } }], identifierFieldIds: [] };
  await createTable(stores[0]!, name, { schema, lastColumnId: 1, spec: { specId: 0, fields: [] }, location }, io);
  const file = (w: number, i: number): DataFileInfo => ({ path: `${location}/data/w${w}-${i}.parquet`, format: 'PARQUET', partition: [], recordCount: 1, fileSizeInBytes: 100 });
  const results = await Promise.all(stores.map(async (store, w) => {
    const mine = [];
    for (let i = 0; i < appends; i++) mine.push(await commitTable(store, name, { operation: 'append', files: [file(w, i)] }, { io }));
    return mine;
  }));
  const all = results.flat();
  const total = stores.length * appends;
  assert.equal(new Set(all.map((r) => String(r.sequenceNumber))).size, total, 'one sequence number per commit');
  assert.ok(all.some((r) => r.attempts > 1), 'the writers did race');
  const table = await loadTable(stores[stores.length - 1]!, name, io);
  assert.equal(table.metadata.snapshots.length, total, 'no commit lost or doubled');
  const snaps = table.metadata.snapshots;
  for (let i = 1; i < snaps.length; i++) assert.equal(String(snaps[i]!.parentSnapshotId), String(snaps[i - 1]!.snapshotId), 'one chain');
  const live = [...(await liveDataFileInfos(io, table)).keys()].sort();
  assert.deepEqual(live, stores.flatMap((_, w) => Array.from({ length: appends }, (_, i) => file(w, i).path)).sort(), 'every appended file live, once');
}

/**
 * The raced table through the path SQL takes: a catalog record as `catalog add` makes it,
 * ExternalCatalogs opening the store itself (openExternalPointerStore), the table answered
 * as CATALOG.race.appends with every appended file.
 */
async function readThroughRegistry(input: Omit<CatalogInput, 'name'>, files: number): Promise<void> {
  const external = new ExternalCatalogs(new MemoryPointerStore(), { io: uriFileIO(), tableIO: uriTableIO() });
  try {
    await addCatalog(external, { name: 'ext', ...input });
    const table = await external.getTable('ext.race.appends');
    assert.ok(table, 'the table is found through the registered catalog');
    assert.equal(table.files.length, files);
    assert.deepEqual(table.columns.map((c) => c.name), ['id']);
    assert.equal(await external.getTable('ext.race.missing'), undefined);
  } finally {
    await external.close();
  }
}

async function openMany(type: PointerCatalogType, options: PointerCatalogOptions, n: number): Promise<PointerStore[]> {
  return Promise.all(Array.from({ length: n }, () => openExternalPointerStore(type, options)));
}

async function closeAll(stores: PointerStore[]): Promise<void> {
  await Promise.all(stores.map((s) => s.close?.()));
}

describe('Glue Data Catalog store against a local Glue endpoint', () => {
  let glue: LocalGlue;
  const options = (): PointerCatalogOptions => ({ region: 'us-east-1', endpoint: glue.endpoint, catalogId: '123456789012' });
  before(async () => {
    glue = await startLocalGlue({ pageSize: 2 });
  });
  after(async () => {
    await glue?.close();
  });

  test('keeps the PointerStore contract, creating the database; lists page by page', async () => {
    const [store] = await openMany('glue', options(), 1);
    try {
      await checkContract(store!, 'sales');
      for (const db of ['a1', 'a2']) for (const t of ['t1', 't2', 't3']) assert.equal(await store!.compareAndSwap(`${db}.${t}`, undefined, `s3://b/${db}/${t}.json`), true);
      const names = (await store!.list()).map((p) => p.name);
      assert.deepEqual(names, ['a1.t1', 'a1.t2', 'a1.t3', 'a2.t1', 'a2.t2', 'a2.t3', 'sales.other', 'sales.trips']);
      assert.ok(glue.requests.every((r) => r.catalogId === '123456789012'), 'every call names the catalog id');
      await assert.rejects(store!.get('a.b.c'), badRequest(/at most 1/));
    } finally {
      await store!.close?.();
    }
  });

  test('writes the table as Iceberg does: table_type, metadata_location, previous_metadata_location, VersionId', async () => {
    const [store] = await openMany('glue', options(), 1);
    try {
      assert.equal(await store!.compareAndSwap('db.events', undefined, 's3://lake/events/metadata/00000-a.metadata.json'), true);
      let table = glue.table('db', 'events')!;
      assert.deepEqual(table.Parameters, { table_type: 'ICEBERG', metadata_location: 's3://lake/events/metadata/00000-a.metadata.json' });
      assert.equal(table.TableType, 'EXTERNAL_TABLE');
      assert.deepEqual(table.StorageDescriptor, { Location: 's3://lake/events' });
      assert.equal(table.VersionId, '0');
      glue.table('db', 'events')!.Parameters.owner_note = 'kept'; // another engine's parameter
      assert.equal(await store!.compareAndSwap('db.events', 's3://lake/events/metadata/00000-a.metadata.json', 's3://lake/events/metadata/00001-b.metadata.json'), true);
      table = glue.table('db', 'events')!;
      assert.equal(table.VersionId, '1');
      assert.equal(table.Parameters.previous_metadata_location, 's3://lake/events/metadata/00000-a.metadata.json');
      assert.equal(table.Parameters.owner_note, 'kept', 'the rest of the definition is carried over');
      assert.deepEqual(table.StorageDescriptor, { Location: 's3://lake/events' });
    } finally {
      await store!.close?.();
    }
  });

  test('a stale VersionId is ConcurrentModificationException: a write that came between the read and the update wins', async () => {
    const client = new GlueClient({ region: 'us-east-1', endpoint: glue.endpoint, credentials, maxAttempts: 1 });
    const [store] = await openMany('glue', options(), 1);
    try {
      assert.equal(await store!.compareAndSwap('db.vers', undefined, 's3://l/1.json'), true);
      await assert.rejects(
        client.send(new UpdateTableCommand({ DatabaseName: 'db', TableInput: { Name: 'vers', Parameters: { table_type: 'ICEBERG', metadata_location: 's3://l/x.json' } }, VersionId: '7' })),
        (err: unknown) => (err as Error).name === 'ConcurrentModificationException',
      );
      // Another engine's update lands after our GetTable, with the same metadata_location.
      glue.beforeNext('UpdateTable', () => glue.updateBehind('db', 'vers', { comment: 'altered' }));
      assert.equal(await store!.compareAndSwap('db.vers', 's3://l/1.json', 's3://l/2.json'), false);
      assert.equal(await store!.get('db.vers'), 's3://l/1.json');
      assert.equal(await store!.compareAndSwap('db.vers', 's3://l/1.json', 's3://l/2.json'), true, 'the retry at the new version wins');
      // A drop loses to a commit between its read and its mark, and leaves the table whole.
      glue.beforeNext('UpdateTable', () => glue.updateBehind('db', 'vers', { metadata_location: 's3://l/3.json' }));
      assert.equal(await store!.remove('db.vers', 's3://l/2.json'), false);
      assert.equal(glue.table('db', 'vers')!.Parameters[DROPPING_PARAMETER], undefined);
      assert.equal(await store!.get('db.vers'), 's3://l/3.json');
      // A table marked by an interrupted drop reads, refuses commits, and drops when asked again.
      glue.updateBehind('db', 'vers', { [DROPPING_PARAMETER]: 'x' });
      assert.equal(await store!.get('db.vers'), 's3://l/3.json');
      assert.equal(await store!.compareAndSwap('db.vers', 's3://l/3.json', 's3://l/4.json'), false);
      assert.equal(await store!.remove('db.vers', 's3://l/3.json'), true);
      assert.equal(glue.table('db', 'vers'), undefined);
    } finally {
      client.destroy();
      await store!.close?.();
    }
  });

  test('a throttled write is sent again; one whose outcome is unknown is an error, never replayed', async () => {
    const [store] = await openMany('glue', options(), 1);
    try {
      assert.equal(await store!.compareAndSwap('db.retry', undefined, 's3://l/1.json'), true);
      glue.failNext('UpdateTable', 'ThrottlingException');
      assert.equal(await store!.compareAndSwap('db.retry', 's3://l/1.json', 's3://l/2.json'), true);
      assert.equal(glue.table('db', 'retry')!.VersionId, '1');
      // A 500 may come after the update ran: sent again, it would fail its own version check
      // and report this commit as lost.
      glue.failNext('UpdateTable', 'InternalServiceException');
      const before = glue.requests.length;
      await assert.rejects(store!.compareAndSwap('db.retry', 's3://l/2.json', 's3://l/3.json'), (err: unknown) => err instanceof PuffinError && err.code === 'unavailable');
      assert.deepEqual(glue.requests.slice(before).map((r) => r.operation), ['GetTable', 'UpdateTable'], 'sent once');
    } finally {
      await store!.close?.();
    }
  });

  test('a non-Iceberg table is refused by name and left out of the list', async () => {
    const [store] = await openMany('glue', options(), 1);
    try {
      assert.equal(await store!.compareAndSwap('hive.placeholder', undefined, 's3://l/p.json'), true);
      glue.updateBehind('hive', 'placeholder', { table_type: 'HIVE' });
      await assert.rejects(store!.get('hive.placeholder'), (err: unknown) => err instanceof PuffinError && err.code === 'unsupported' && /not an Iceberg table/.test(err.message));
      assert.ok(!(await store!.list()).some((p) => p.name === 'hive.placeholder'));
      assert.equal(await store!.compareAndSwap('hive.placeholder', 's3://l/p.json', 's3://l/q.json'), false);
    } finally {
      await store!.close?.();
    }
  });

  test(`${WRITERS} writers racing through separate clients: no lost or doubled commit`, async () => {
    const stores = await openMany('glue', options(), WRITERS);
    try {
      await raceIncrements(stores, 'race.counter', INCREMENTS);
      assert.equal(glue.table('race', 'counter')!.VersionId, String(WRITERS * INCREMENTS), 'one Glue version per commit');
    } finally {
      await closeAll(stores);
    }
  });

  test(`${WRITERS} writers committing Iceberg appends through separate clients: every snapshot once, read through a registered catalog`, async () => {
    const stores = await openMany('glue', options(), WRITERS);
    try {
      await raceIcebergAppends(stores, 'race.appends', 3, 'glue');
      await readThroughRegistry({ type: 'glue-catalog', region: 'us-east-1', options: { endpoint: glue.endpoint, catalogId: '123456789012' } }, WRITERS * 3);
    } finally {
      await closeAll(stores);
    }
  });

  test('an unreachable endpoint is unavailable, at open', async () => {
    const dead = await startLocalGlue();
    const endpoint = dead.endpoint;
    await dead.close();
    await assert.rejects(openExternalPointerStore('glue', { region: 'us-east-1', endpoint }), (err: unknown) => err instanceof PuffinError && err.code === 'unavailable');
  });
});

describe('DynamoDB store against dynalite', () => {
  let server: Server;
  let endpoint: string;
  let client: DynamoDBClient;
  before(async () => {
    const dynalite = createRequire(import.meta.url)('dynalite') as (options: Record<string, number>) => Server;
    server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    client = new DynamoDBClient({ region: 'us-east-1', endpoint, credentials });
  });
  after(async () => {
    client?.destroy();
    await new Promise((resolve) => server?.close(resolve));
  });

  test('a missing table is refused unless create=true, which makes it with the Iceberg DynamoDbCatalog key schema', async () => {
    await assert.rejects(openExternalPointerStore('dynamodb', { region: 'us-east-1', endpoint, table: 'iceberg' }), badRequest(/does not exist.*create=true/));
    const store = await openExternalPointerStore('dynamodb', { region: 'us-east-1', endpoint, table: 'iceberg', create: 'true' });
    try {
      const table = (await client.send(new DescribeTableCommand({ TableName: 'iceberg' }))).Table!;
      assert.deepEqual(table.KeySchema, [{ AttributeName: 'identifier', KeyType: 'HASH' }, { AttributeName: 'namespace', KeyType: 'RANGE' }]);
      assert.equal(table.GlobalSecondaryIndexes?.[0]?.IndexName, 'namespace-identifier');
      await checkContract(store, 'sales');
    } finally {
      await store.close?.();
    }
    // Opened again: the table is there, nothing to create.
    const again = await openExternalPointerStore('dynamodb', { region: 'us-east-1', endpoint, table: 'iceberg' });
    assert.equal(await again.get('sales.other'), 's3://b/other/metadata/1.metadata.json');
    await again.close?.();
  });

  test('items as Iceberg writes them: namespace item, p.* attributes, v moved by every commit; list pages through the scan', async () => {
    const store = await DynamoDbPointerStore.open({ region: 'us-east-1', endpoint, credentials, table: 'iceberg', scanPageSize: 2 });
    try {
      assert.equal(await store.compareAndSwap('db.events', undefined, 's3://l/1.json'), true);
      const item = async (identifier: string, namespace: string) =>
        (await client.send(new GetItemCommand({ TableName: 'iceberg', Key: { identifier: { S: identifier }, namespace: { S: namespace } }, ConsistentRead: true }))).Item;
      assert.ok(await item('NAMESPACE', 'db'), 'the namespace item Iceberg needs');
      const first = (await item('db.events', 'db'))!;
      assert.equal(first['p.table_type']?.S, 'ICEBERG');
      assert.equal(first['p.metadata_location']?.S, 's3://l/1.json');
      assert.equal(await store.compareAndSwap('db.events', 's3://l/1.json', 's3://l/2.json'), true);
      const second = (await item('db.events', 'db'))!;
      assert.equal(second['p.previous_metadata_location']?.S, 's3://l/1.json');
      assert.notEqual(second.v?.S, first.v?.S);
      for (const t of ['a', 'b', 'c', 'd']) assert.equal(await store.compareAndSwap(`pages.${t}`, undefined, `s3://l/${t}.json`), true);
      const names = (await store.list()).map((p) => p.name);
      for (const n of ['db.events', 'pages.a', 'pages.b', 'pages.c', 'pages.d']) assert.ok(names.includes(n), n);
      assert.ok(!names.some((n) => n.startsWith('namespace')), 'namespace items are not tables');
    } finally {
      await store.close();
    }
  });

  test('a table with another key schema is refused, naming the one expected', async () => {
    await client.send(new CreateTableCommand({
      TableName: 'other', KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }], AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }], BillingMode: 'PAY_PER_REQUEST',
    }));
    await assert.rejects(openExternalPointerStore('dynamodb', { region: 'us-east-1', endpoint, table: 'other' }), badRequest(/key schema pk:HASH.*partition key 'identifier'/));
  });

  test(`${WRITERS} writers racing through separate clients: no lost or doubled commit`, async () => {
    const stores = await openMany('dynamodb', { region: 'us-east-1', endpoint, table: 'iceberg' }, WRITERS);
    try {
      await raceIncrements(stores, 'race.counter', INCREMENTS);
    } finally {
      await closeAll(stores);
    }
  });

  test(`${WRITERS} writers committing Iceberg appends through separate clients: every snapshot once, read through a registered catalog`, async () => {
    const stores = await openMany('dynamodb', { region: 'us-east-1', endpoint, table: 'iceberg' }, WRITERS);
    try {
      await raceIcebergAppends(stores, 'race.appends', 3, 'dynamodb');
      await readThroughRegistry({ type: 'dynamodb', region: 'us-east-1', options: { endpoint, table: 'iceberg' } }, WRITERS * 3);
    } finally {
      await closeAll(stores);
    }
  });
});

describe('Postgres store in the Iceberg JDBC catalog schema, on a real Postgres', () => {
  const PASSWORD = POSTGRES_PASSWORD;
  let postgres: TestPostgres;
  let admin: pg.Client;
  const options = (catalogName = 'lake'): PointerCatalogOptions => ({ url: postgres.url, catalogName, passwordEnv: 'PUFFINDB_CATALOG_TEST_PASSWORD' });
  before(async () => {
    process.env.PUFFINDB_CATALOG_TEST_PASSWORD = PASSWORD;
    postgres = await postgresStarting;
    admin = new pg.Client({ host: '127.0.0.1', port: postgres.port, user: postgres.user, database: 'postgres', password: PASSWORD });
    await admin.connect();
  });
  after(async () => {
    await admin?.end().catch(() => undefined);
    await postgres?.close();
  });

  test("creates Iceberg's tables and keeps the contract; catalogs of other names are apart", async () => {
    const store = await openExternalPointerStore('postgres', options());
    const other = await openExternalPointerStore('postgres', options('spark_other'));
    try {
      const columns = await admin.query(
        "SELECT table_name, column_name, data_type, character_maximum_length AS len, is_nullable FROM information_schema.columns WHERE table_name IN ('iceberg_tables', 'iceberg_namespace_properties') ORDER BY table_name, ordinal_position",
      );
      assert.deepEqual(columns.rows.map((r) => `${r.table_name}.${r.column_name} ${r.data_type}(${r.len}) ${r.is_nullable}`), [
        'iceberg_namespace_properties.catalog_name character varying(255) NO',
        'iceberg_namespace_properties.namespace character varying(255) NO',
        'iceberg_namespace_properties.property_key character varying(255) NO',
        'iceberg_namespace_properties.property_value character varying(1000) YES',
        'iceberg_tables.catalog_name character varying(255) NO',
        'iceberg_tables.table_namespace character varying(255) NO',
        'iceberg_tables.table_name character varying(255) NO',
        'iceberg_tables.metadata_location character varying(1000) YES',
        'iceberg_tables.previous_metadata_location character varying(1000) YES',
      ]);
      await checkContract(store, 'sales');
      assert.equal(await store.compareAndSwap('a.b.deep', undefined, 's3://l/d.json'), true, 'namespaces of several levels');
      const rows = await admin.query("SELECT table_namespace, table_name, metadata_location, previous_metadata_location FROM iceberg_tables WHERE catalog_name = 'lake' ORDER BY 1, 2");
      assert.deepEqual(rows.rows.find((r) => r.table_name === 'other'), { table_namespace: 'sales', table_name: 'other', metadata_location: 's3://b/other/metadata/1.metadata.json', previous_metadata_location: null });
      assert.deepEqual(rows.rows.find((r) => r.table_name === 'deep'), { table_namespace: 'a.b', table_name: 'deep', metadata_location: 's3://l/d.json', previous_metadata_location: null });
      assert.deepEqual(await other.list(), []);
      assert.equal(await other.get('sales.other'), undefined);
      await store.compareAndSwap('sales.other', 's3://b/other/metadata/1.metadata.json', 's3://b/other/metadata/2.metadata.json');
      const moved = await admin.query("SELECT previous_metadata_location FROM iceberg_tables WHERE catalog_name = 'lake' AND table_name = 'other'");
      assert.equal(moved.rows[0].previous_metadata_location, 's3://b/other/metadata/1.metadata.json');
    } finally {
      await store.close?.();
      await other.close?.();
    }
  });

  test("a catalog at Iceberg's schema V1 (iceberg_type): views are not tables, creates are typed TABLE", async () => {
    await admin.query('CREATE DATABASE v1catalog');
    const url = postgres.url.replace(/\/postgres$/, '/v1catalog');
    const first = await openExternalPointerStore('postgres', { ...options(), url });
    await first.close?.();
    const v1 = new pg.Client({ host: '127.0.0.1', port: postgres.port, user: postgres.user, database: 'v1catalog', password: PASSWORD });
    await v1.connect();
    try {
      await v1.query('ALTER TABLE iceberg_tables ADD COLUMN iceberg_type VARCHAR(5)');
      await v1.query("INSERT INTO iceberg_tables VALUES ('lake', 'db', 'a_view', 's3://l/view.json', null, 'VIEW'), ('lake', 'db', 'old', 's3://l/old.json', null, null)");
      const store = await openExternalPointerStore('postgres', { ...options(), url });
      try {
        assert.equal(await store.get('db.a_view'), undefined);
        assert.equal(await store.compareAndSwap('db.a_view', 's3://l/view.json', 's3://l/x.json'), false, 'a view is not committed as a table');
        assert.equal(await store.compareAndSwap('db.a_view', undefined, 's3://l/x.json'), false, 'its name is taken');
        assert.equal(await store.get('db.old'), 's3://l/old.json', 'an untyped row (written at V0) is a table');
        assert.equal(await store.compareAndSwap('db.new', undefined, 's3://l/new.json'), true);
        assert.deepEqual((await store.list()).map((p) => p.name), ['db.new', 'db.old']);
        const typed = await v1.query("SELECT iceberg_type FROM iceberg_tables WHERE table_name = 'new'");
        assert.equal(typed.rows[0].iceberg_type, 'TABLE');
      } finally {
        await store.close?.();
      }
    } finally {
      await v1.end();
    }
  });

  test('the password comes from the named variable or Secrets Manager (RDS JSON form); a wrong one is refused', async () => {
    const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:rds-catalog';
    const secrets = await startLocalSecretsManager({ [arn]: JSON.stringify({ username: 'puffin', password: PASSWORD }) });
    process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = secrets.endpoint;
    try {
      const store = await openExternalPointerStore('postgres', { url: postgres.url, catalogName: 'lake', passwordSecretArn: arn });
      assert.equal(await store.get('sales.other'), 's3://b/other/metadata/2.metadata.json');
      await store.close?.();
      assert.deepEqual(secrets.asked, [arn]);
    } finally {
      delete process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER;
      await secrets.close();
    }
    process.env.PUFFINDB_CATALOG_WRONG = 'wrong';
    await assert.rejects(openExternalPointerStore('postgres', { url: postgres.url, catalogName: 'lake', passwordEnv: 'PUFFINDB_CATALOG_WRONG' }), badRequest(/password authentication failed/));
  });

  test('an unreachable server is unavailable, at open', async () => {
    const port = await freePort();
    await assert.rejects(
      openExternalPointerStore('postgres', { url: `postgres://puffin@127.0.0.1:${port}/postgres`, catalogName: 'lake' }),
      (err: unknown) => err instanceof PuffinError && err.code === 'unavailable' && /ECONNREFUSED/.test(err.message),
    );
  });

  test(`${WRITERS} writers racing through separate pools: no lost or doubled commit`, async () => {
    const stores = await openMany('postgres', options(), WRITERS);
    try {
      await raceIncrements(stores, 'race.counter', INCREMENTS);
    } finally {
      await closeAll(stores);
    }
  });

  test(`${WRITERS} writers committing Iceberg appends through separate pools: every snapshot once, read through a registered catalog`, async () => {
    const stores = await openMany('postgres', options(), WRITERS);
    try {
      await raceIcebergAppends(stores, 'race.appends', 3, 'postgres');
      await readThroughRegistry({ type: 'postgres', options: { url: postgres.url, catalogName: 'lake', passwordEnv: 'PUFFINDB_CATALOG_TEST_PASSWORD' } }, WRITERS * 3);
    } finally {
      await closeAll(stores);
    }
  });
});
