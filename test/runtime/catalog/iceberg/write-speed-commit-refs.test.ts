// Every snapshot-producing commit moves the main branch through one helper (commit.ts
// appendSnapshot), which keeps the ref's other properties: a table whose main ref carries
// retention settings (min-snapshots-to-keep, max-snapshot-age-ms, max-ref-age-ms) keeps them
// across appends, copy-on-write deletes and rewrite_manifests, and other refs are untouched.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { loadTable, writeMetadataFile } from '../../../../runtime/catalog/iceberg/commit.ts';
import { rewriteManifests } from '../../../../runtime/catalog/iceberg/maintenance.ts';
import { MemoryPointerStore } from '../../../../runtime/catalog/iceberg/memory-pointer-store.ts';
import { localTableIO } from '../../../../runtime/catalog/iceberg/writer-io.ts';
import { appendRows, createTableAsSelect, deleteRows, type WriterContext } from '../../../../runtime/catalog/iceberg/writer.ts';
import { tempDir } from './fixtures.ts';

const dir = tempDir('commit-refs');
const io = localTableIO();
const store = new MemoryPointerStore();
let db: DuckDBInstance;
let conn: DuckDBConnection;
const ctx = (): WriterContext => ({ conn, store, io, stagingDir: join(dir.path, 'staging'), warehouseUri: `file://${join(dir.path, 'warehouse')}` });

before(async () => {
  db = await DuckDBInstance.create(':memory:');
  conn = await db.connect();
});
after(() => {
  conn.closeSync();
  db.closeSync();
  dir.remove();
});

/** The refs of the current metadata file, as JSON (what other engines read). */
async function refsJson(): Promise<Record<string, Record<string, unknown>>> {
  const location = (await store.get('t')) as string;
  return (JSON.parse(readFileSync(fileURLToPath(location), 'utf8')) as { refs: Record<string, Record<string, unknown>> }).refs;
}

test('appends, deletes and rewrite_manifests keep the main ref\'s retention properties and other refs', async () => {
  await createTableAsSelect(ctx(), 't', 'SELECT i AS id FROM range(10) r(i)');
  // Give main retention settings and add a tag, as another engine (or an admin) would.
  const base = await loadTable(store, 't', io);
  const main = base.metadata.refs.main;
  const withRetention = {
    ...base.metadata,
    refs: {
      main: { ...main, minSnapshotsToKeep: 3, maxSnapshotAgeMs: 86_400_000, maxRefAgeMs: 604_800_000 },
      v1: { snapshotId: main.snapshotId, type: 'tag' as const, maxRefAgeMs: 1000 },
    },
  };
  const next = await writeMetadataFile(io, withRetention, base.metadataLocation, 't');
  assert.ok(await store.compareAndSwap('t', base.metadataLocation, next));
  const tagged = main.snapshotId.toString();

  const check = async (after: string): Promise<void> => {
    const refs = await refsJson();
    const t = await loadTable(store, 't', io);
    assert.equal(t.metadata.refs.main.snapshotId, t.metadata.currentSnapshotId, `${after}: main moved to the new snapshot`);
    assert.equal(t.metadata.refs.v1.snapshotId.toString(), tagged, `${after}: the tag still names its snapshot`);
    assert.equal(refs.main.type, 'branch');
    assert.equal(refs.main['min-snapshots-to-keep'], 3, `${after}: min-snapshots-to-keep kept`);
    assert.equal(refs.main['max-snapshot-age-ms'], 86_400_000, `${after}: max-snapshot-age-ms kept`);
    assert.equal(refs.main['max-ref-age-ms'], 604_800_000, `${after}: max-ref-age-ms kept`);
    assert.deepEqual({ ...refs.v1, 'snapshot-id': undefined }, { 'snapshot-id': undefined, type: 'tag', 'max-ref-age-ms': 1000 }, `${after}: the tag is untouched`);
  };
  await appendRows(ctx(), 't', 'SELECT 10 AS id');
  await check('append');
  await deleteRows(ctx(), 't', 'id = 3');
  await check('delete');
  await appendRows(ctx(), 't', 'SELECT 11 AS id');
  const r = await rewriteManifests(store, 't', io);
  assert.ok(r.snapshotId !== null, `rewrite_manifests committed: ${JSON.stringify(r)}`);
  await check('rewrite_manifests');
});
