// Finding 3 of the attack run: a writer key must not reach outside the warehouse through
// the Iceberg REST catalog (register a metadata file anywhere, create a table located
// anywhere, move one with set-location, point a snapshot at any file) or through SQL writes
// into a table located outside. Every attempt is a 4xx in Iceberg's error form, nothing is
// written outside, and no answer quotes a file's content. Locations the admin lists in
// PUFFINDB_ALLOWED_LOCATIONS are the exception, and work.

import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli, serveKey, startServe, type RealServer } from '../helpers/serve.ts';

let server: RealServer;
let writer: string;
let outside: string;
let allowed: string;
let warehouse: string;

const SCHEMA = { type: 'struct', 'schema-id': 0, fields: [{ id: 1, name: 'id', type: 'long', required: false }] };

before(async () => {
  outside = await mkdtemp(join(tmpdir(), 'puffindb-outside-'));
  allowed = await mkdtemp(join(tmpdir(), 'puffindb-allowed-'));
  server = await startServe({ env: { PUFFINDB_ALLOWED_LOCATIONS: `file://${allowed}/` } });
  warehouse = join(server.home, 'warehouse');
  await mkdir(join(warehouse, 'default'), { recursive: true });
  writer = await serveKey(server, 'writer');
});
after(async () => {
  await server?.close();
  await rm(outside, { recursive: true, force: true });
  await rm(allowed, { recursive: true, force: true });
});

/** Every file under a directory (relative paths), to show nothing was added. */
async function filesUnder(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { recursive: true, withFileTypes: true })).filter((d) => d.isFile()).map((d) => join(d.parentPath, d.name)).sort();
  } catch {
    return [];
  }
}

interface IcebergRefusal { status: number; text: string; type: string; message: string }

async function rest(method: string, path: string, body?: unknown): Promise<IcebergRefusal> {
  const res = await server.call(method, `/iceberg/v1/${path}`, { key: writer, body });
  const text = await res.text();
  let parsed: { error?: { type?: string; message?: string } } = {};
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    // a 2xx may be anything; a refusal must be JSON (checked by the callers)
  }
  return { status: res.status, text, type: String(parsed.error?.type ?? ''), message: String(parsed.error?.message ?? '') };
}

/** A refusal: 4xx, Iceberg's error form, no file content, and the server still answers. */
function assertRefused(r: IcebergRefusal, what: string): void {
  assert.ok(r.status >= 400 && r.status < 500, `${what}: expected a 4xx, got ${r.status} ${r.text}`);
  assert.ok(r.type && r.message, `${what}: Iceberg error form expected, got ${r.text}`);
  assert.ok(!r.text.includes('root:'), `${what}: the answer quotes /etc/passwd: ${r.text}`);
  assert.ok(!r.text.includes('SECRET-CONTENT'), `${what}: the answer quotes a file's content: ${r.text}`);
}

describe('register: metadata-location must lie under the warehouse', () => {
  test('file:///etc/passwd and its spellings are refused without reading it', async () => {
    const spellings = [
      'file:///etc/passwd', 'FILE:///etc/passwd', 'file:/etc/passwd', 'file://localhost/etc/passwd', '/etc/passwd', '../../../../../../etc/passwd',
      `file://${warehouse}/../../../../../../etc/passwd`, `file://${warehouse}//..//..//..//..//..//..//etc/passwd`, `file://${warehouse}/default/./../../../../../../../etc/passwd`,
      `file://${warehouse}/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd`, `file://${warehouse}/..%2f..%2f..%2f..%2f..%2f..%2fetc/passwd`,
      'file://otherhost/etc/passwd', 's3://some-bucket/etc/passwd', 'http://127.0.0.1:1/etc/passwd',
    ];
    for (const [i, location] of spellings.entries()) {
      const r = await rest('POST', 'namespaces/default/register', { name: `x${i}`, 'metadata-location': location });
      assertRefused(r, `register ${location}`);
      // Percent-escapes are part of a name (never decoded), so those spellings stay inside and name nothing.
      if (!location.includes('%')) assert.equal(r.type, 'ForbiddenException', `register ${location}: ${r.text}`);
    }
    const listed = (await rest('GET', 'namespaces/default/tables')).text;
    assert.ok(!/"x\d+"/.test(listed), `no table was registered: ${listed}`);
  });

  test('a symlink inside the warehouse that points out does not let its target in', async () => {
    await symlink('/etc', join(warehouse, 'etc_link'));
    await writeFile(join(outside, 'v1.metadata.json'), 'SECRET-CONTENT');
    await symlink(outside, join(warehouse, 'out_link'));
    for (const location of [`file://${warehouse}/etc_link/passwd`, `file://${warehouse}/out_link/v1.metadata.json`]) {
      assertRefused(await rest('POST', 'namespaces/default/register', { name: 'via_link', 'metadata-location': location }), `register ${location}`);
    }
  });

  test('a file inside the warehouse that is not metadata is refused without quoting it', async () => {
    const file = join(warehouse, 'default', 'fake.metadata.json');
    await writeFile(file, 'root:x:0:0:root:/root:/bin/bash SECRET-CONTENT\n');
    const r = await rest('POST', 'namespaces/default/register', { name: 'fake', 'metadata-location': `file://${file}` });
    assertRefused(r, 'register of a non-metadata file');
    assert.match(r.message, /not an Iceberg metadata file/);
  });

  test('metadata inside the warehouse whose table location is outside is refused', async () => {
    const made = await rest('POST', 'namespaces/default/tables', { name: 'inside', schema: SCHEMA });
    assert.equal(made.status, 200, made.text);
    const loaded = JSON.parse(made.text) as { 'metadata-location': string; metadata: Record<string, unknown> };
    const copy = join(warehouse, 'default', 'moved.metadata.json');
    await writeFile(copy, JSON.stringify({ ...loaded.metadata, location: `file://${outside}/moved` }));
    assertRefused(await rest('POST', 'namespaces/default/register', { name: 'moved', 'metadata-location': `file://${copy}` }), 'register of metadata located outside');
  });
});

describe('create and commit: a table location must lie under the warehouse or an allowed location', () => {
  test('create with a location outside is refused, also through spellings and symlinks; nothing is written', async () => {
    const before = await filesUnder(outside);
    const locations = [
      `file://${outside}/t`, `FILE://${outside}/t`, `file:${outside}/t`, `file://localhost${outside}/t`, outside,
      `file://${warehouse}/../../../../../../${outside}/t`, `file://${warehouse}/out_link/t`, `file://${warehouse}/etc_link/t`,
      `file://${allowed}/../${outside.split('/').pop()}/t`, `file://${allowed}x/t`, 's3://other-bucket/t',
    ];
    for (const [i, location] of locations.entries()) {
      assertRefused(await rest('POST', 'namespaces/default/tables', { name: `ext${i}`, schema: SCHEMA, location }), `create at ${location}`);
      assertRefused(await rest('POST', 'namespaces/default/tables', { name: `stage${i}`, schema: SCHEMA, location, 'stage-create': true }), `stage-create at ${location}`);
    }
    assert.deepEqual(await filesUnder(outside), before, 'nothing written outside');
    assert.deepEqual(await filesUnder('/etc/t'), []);
  });

  test('set-location, a write path property, or a snapshot pointing outside is refused', async () => {
    const table = 'namespaces/default/tables/inside';
    assertRefused(await rest('POST', table, { updates: [{ action: 'set-location', location: `file://${outside}/moved` }] }), 'set-location outside');
    assertRefused(await rest('POST', table, { updates: [{ action: 'set-properties', updates: { 'write.data.path': `file://${outside}/data` } }] }), 'write.data.path outside');
    const snapshot = { 'snapshot-id': 7, 'sequence-number': 1, 'timestamp-ms': Date.now(), 'manifest-list': 'file:///etc/passwd', summary: { operation: 'append' }, 'schema-id': 0 };
    assertRefused(await rest('POST', table, { updates: [{ action: 'add-snapshot', snapshot }] }), 'a snapshot whose manifest list is /etc/passwd');
    assertRefused(await rest('POST', 'namespaces/default/tables/created_moved', { requirements: [{ type: 'assert-create' }], updates: [{ action: 'add-schema', schema: SCHEMA }, { action: 'set-current-schema', 'schema-id': -1 }, { action: 'set-location', location: `file://${outside}/c` }] }), 'create by commit, located outside');
    assert.deepEqual(await filesUnder(outside), [join(outside, 'v1.metadata.json')], 'nothing written outside');
  });

  test('an allowed location works: create there, INSERT writes there', async () => {
    const made = await rest('POST', 'namespaces/default/tables', { name: 'in_allowed', schema: SCHEMA, location: `file://${allowed}/in_allowed` });
    assert.equal(made.status, 200, made.text);
    const ins = await server.query('INSERT INTO in_allowed SELECT 42::BIGINT', writer);
    assert.equal(ins.status, 200, await ins.clone().text());
    const files = await filesUnder(allowed);
    assert.ok(files.some((f) => f.endsWith('.parquet')), `a data file under the allowed location: ${files.join(', ')}`);
    const read = await server.query('SELECT id FROM in_allowed', writer);
    assert.deepEqual(((await read.json()) as { rows: { id: number }[] }).rows.map((r) => Number(r.id)), [42]);
  });
});

describe('SQL writes into a table located outside (adopted by the admin) are refused', () => {
  test('INSERT INTO a table whose location is outside writes nothing there', async () => {
    // The admin adopts a table located outside (`puffindb table register`): readable, but
    // PUFFINDB_ALLOWED_LOCATIONS does not name it, so no key may write there.
    const src = await rest('POST', 'namespaces/default/tables', { name: 'src', schema: SCHEMA });
    assert.equal(src.status, 200, src.text);
    assert.equal((await server.query('INSERT INTO src SELECT 1::BIGINT', writer)).status, 200);
    const loaded = JSON.parse((await rest('GET', 'namespaces/default/tables/src')).text) as { 'metadata-location': string; metadata: Record<string, unknown> };
    const extDir = join(outside, 'ext');
    await cp(join(warehouse, 'default', 'src'), extDir, { recursive: true });
    const metadataName = loaded['metadata-location'].split('/').pop()!;
    const metadataFile = join(extDir, 'metadata', metadataName);
    const metadata = JSON.parse(await readFile(metadataFile, 'utf8')) as Record<string, unknown>;
    await writeFile(metadataFile, JSON.stringify({ ...metadata, location: `file://${extDir}` }));
    await runCli(['table', 'register', 'ext', metadataFile], server.home);
    const read = await server.query('SELECT count(*) AS n FROM ext', writer);
    assert.equal(read.status, 200, await read.clone().text());

    const before = await filesUnder(outside);
    for (const sql of ['INSERT INTO ext SELECT 2::BIGINT', 'INSERT INTO ext VALUES (3)', 'DELETE FROM ext WHERE id = 1', 'UPDATE ext SET id = 5 WHERE id = 1']) {
      const res = await server.query(sql, writer);
      const text = await res.text();
      assert.ok(res.status >= 400 && res.status < 500, `${sql}: expected a 4xx, got ${res.status} ${text}`);
      assert.match(text, /outside the warehouse and the allowed locations/, sql);
    }
    assert.deepEqual(await filesUnder(outside), before, 'nothing written outside');
    const after = await server.query('SELECT count(*) AS n FROM ext', writer);
    assert.deepEqual(((await after.json()) as { rows: { n: number }[] }).rows.map((r) => Number(r.n)), [1]);
  });
});
