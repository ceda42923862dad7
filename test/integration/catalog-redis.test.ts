// The deployed catalog: with REDIS_URL set, Iceberg tables' metadata pointers live in
// Redis, so two processes with nothing on disk in common but the lake (two Lambdas, say)
// see the same tables: one creates and writes, the other reads.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { openCatalog } from '../../runtime/catalog/open.ts';
import type { WarehouseCatalog } from '../../runtime/catalog/warehouse-catalog.ts';
import { Engine } from '../../runtime/engine/engine.ts';
import { LocalCluster } from '../../runtime/exec/cluster.ts';
import { loadSettings } from '../../runtime/settings.ts';
import { startRedisServer, type TestRedis } from '../helpers/redis-server.ts';

let dir: string;
let redis: TestRedis;
let engine: Engine;
const clusters: LocalCluster[] = [];
const catalogs: WarehouseCatalog[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'puffin-catalog-redis-'));
  redis = await startRedisServer();
  engine = await Engine.create({ threads: 1 });
});

after(async () => {
  for (const c of clusters) await c.close();
  for (const c of catalogs) await c.close();
  engine?.close();
  await redis?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function node(name: string): Promise<LocalCluster> {
  const settings = loadSettings({
    PUFFINDB_HOME: join(dir, name),
    PUFFINDB_WAREHOUSE: join(dir, 'lake'),
    REDIS_URL: redis.url,
    PUFFINDB_WORKERS: '1',
    PUFFINDB_THREADS: '1',
  });
  const catalog = await openCatalog(settings, engine);
  catalogs.push(catalog);
  const cluster = await LocalCluster.open({ settings, catalog, invoker: 'in-process' });
  clusters.push(cluster);
  return cluster;
}

test('a table written through one process is read through another that shares only Redis and the lake', async () => {
  const a = await node('a');
  const b = await node('b');
  await a.query('CREATE TABLE shared AS SELECT range AS id, range % 3 AS k FROM range(100)');
  assert.deepEqual((await b.query('SELECT count(*), sum(id) FROM shared')).rows, [['100', '4950']]);
  await b.query('INSERT INTO shared SELECT 1000, 1');
  assert.deepEqual((await a.query('SELECT count(*) FROM shared WHERE k = 1')).rows, [['34']]);
  assert.deepEqual((await b.listTables()).map((t) => t.name), ['shared']);
});

// Views live in Redis beside the tables' pointers: a view created through one process is
// expanded by another that shares only Redis and the lake.
test('a view created through one process is read through another', async () => {
  const a = await node('views-a');
  const b = await node('views-b');
  const bCatalog = catalogs[catalogs.length - 1];
  await a.query('CREATE TABLE t AS SELECT range AS id FROM range(10)', { role: 'admin' });
  await a.query('CREATE VIEW evens AS SELECT id FROM t WHERE id % 2 = 0', { role: 'admin' });
  assert.deepEqual((await b.query('SELECT count(*) FROM evens')).rows, [['5']]);
  assert.deepEqual(await bCatalog.listViews().then((v) => v.map((x) => x.name)), ['evens']);
  await b.query('DROP VIEW evens', { role: 'admin' });
  await assert.rejects(a.query('SELECT * FROM evens'), /unknown table/i);
});
