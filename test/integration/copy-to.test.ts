// COPY ... TO through one local cluster (in-process workers) and its HTTP API: the rows of
// the files written equal plain DuckDB's answer for the query, read back with DuckDB, in
// Parquet, CSV and JSON, partitioned and not, on local disk and on S3 (s3rver); plain scans
// are written by several fragments, other queries by the coordinator; refused locations
// (traversal, symlinks, other schemes), options and roles write nothing; a failed COPY
// leaves no file behind.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createApp, type ApiApp } from '../../runtime/api/app.ts';
import { bootstrapAdminKey } from '../../runtime/api/auth.ts';
import { WarehouseCatalog } from '../../runtime/catalog/warehouse-catalog.ts';
import { Engine } from '../../runtime/engine/engine.ts';
import { openControlPlane, type ControlPlane } from '../../runtime/exec/control-plane.ts';
import { InProcessInvoker } from '../../runtime/exec/in-process-invoker.ts';
import { PuffinError } from '../../runtime/errors.ts';
import { loadSettings } from '../../runtime/settings.ts';
import { sqlString } from '../../runtime/sql/quote.ts';
import { MemoryStateStore } from '../../runtime/state/memory-store.ts';
import { startS3rver, type TestS3 } from '../helpers/s3rver.ts';
import type { LocalCluster } from '../../runtime/exec/cluster.ts';

const ADMIN_KEY = 'copy-to-admin-key-0123456789';

let dir: string;
let warehouse: string;
let allowed: string;
let outside: string;
let reference: Engine;
let plane: ControlPlane;
let cluster: LocalCluster;
let app: ApiApp;
let s3: TestS3;
const savedEnv = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'puffin-copy-'));
  warehouse = join(dir, 'warehouse');
  allowed = join(dir, 'allowed');
  outside = join(dir, 'outside');
  for (const d of [join(warehouse, 'src', 't'), allowed, outside, join(warehouse, 'exports')]) mkdirSync(d, { recursive: true });
  // A link inside the exports prefix that points out of it.
  symlinkSync(outside, join(warehouse, 'exports', 'link'));
  s3 = await startS3rver();
  process.env.AWS_ACCESS_KEY_ID = s3.credentials.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = s3.credentials.secretAccessKey;

  reference = await Engine.create({ threads: 1 });
  // Three files of 400 rows each: strings with the CSV delimiter, quotes and NULLs, decimals, dates.
  for (let i = 0; i < 3; i++) {
    await reference.exec(`COPY (
      SELECT ${i} * 400 + range AS id, 'k' || (range % 3) AS k,
             CASE WHEN range % 7 = 0 THEN NULL ELSE (range * 1.25)::DECIMAL(10,2) END AS v,
             DATE '2024-01-01' + (range % 40)::INTEGER AS d,
             CASE WHEN range % 5 = 0 THEN 'a|b "q", c' ELSE 's' || range END AS s
      FROM range(400)) TO ${sqlString(join(warehouse, 'src', 't', `t${i}.parquet`))} (FORMAT parquet)`);
  }
  await reference.exec(`CREATE VIEW t AS SELECT * FROM read_parquet(${sqlString(join(warehouse, 'src', 't', '*.parquet'))})`);

  const settings = loadSettings({
    PUFFINDB_HOME: join(dir, 'home'), PUFFINDB_WAREHOUSE: warehouse, PUFFINDB_WORKERS: '3', PUFFINDB_THREADS: '1',
    PUFFINDB_S3_ENDPOINT: s3.endpoint, PUFFINDB_EXPORT_LOCATIONS: `${allowed}, s3://${s3.bucket}/exp/`,
  });
  const engine = await Engine.create({ threads: 1 });
  const catalog = await WarehouseCatalog.open(join(dir, 'home', 'catalog'), engine);
  await catalog.addTable('t', join(warehouse, 'src', 't'));
  const state = new MemoryStateStore();
  plane = await openControlPlane({ settings, catalog, state, invoker: await InProcessInvoker.create(settings), onError: () => undefined });
  cluster = plane.cluster;
  await bootstrapAdminKey(state, ADMIN_KEY);
  app = createApp({ manager: plane.manager, state, catalog: plane.catalog, settings: { ...settings, apiLoginFailureBurst: 0 }, adminKey: ADMIN_KEY });
});

after(async () => {
  await plane?.close();
  reference?.close();
  await s3?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
  process.env.AWS_ACCESS_KEY_ID = savedEnv.id;
  process.env.AWS_SECRET_ACCESS_KEY = savedEnv.secret;
  if (savedEnv.id === undefined) delete process.env.AWS_ACCESS_KEY_ID;
  if (savedEnv.secret === undefined) delete process.env.AWS_SECRET_ACCESS_KEY;
});

/** Every file under a local directory, recursively (paths relative to it). */
function filesUnder(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.isDirectory()) walk(join(d, e.name), `${rel}${e.name}/`);
      else out.push(`${rel}${e.name}`);
    }
  };
  walk(root, '');
  return out.sort();
}

/** Rows of a query as sorted lines of text (every value cast to VARCHAR), for set comparison. */
async function lines(sql: string, ordered = false): Promise<string[]> {
  const result = await reference.query(`SELECT * FROM (${sql})`);
  const text = result.rows.map((r) => JSON.stringify(r.map((v) => (v === null ? null : String(v)))));
  return ordered ? text : text.sort();
}

/** The answer's rows: [path, rows, bytes] per file. */
function answered(outcome: { columns: { name: string }[]; rows: unknown[][] }) {
  assert.deepEqual(outcome.columns.map((c) => c.name), ['path', 'rows', 'bytes']);
  return outcome.rows.map(([path, rows, bytes]) => ({ path: String(path), rows: Number(rows), bytes: Number(bytes) }));
}

async function refused(sql: string, code: string | string[], message?: RegExp): Promise<PuffinError> {
  const err = await cluster.query(sql, { role: 'writer' }).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof PuffinError, `${sql}: expected a refusal, got ${String(err)}`);
  assert.ok((Array.isArray(code) ? code : [code]).includes(err.code), `${sql}: ${err.code}: ${err.message}`);
  if (message) assert.match(err.message, message, sql);
  return err;
}

describe('COPY ... TO', () => {
  test('a plain scan is written by the fragments in parallel, as Parquet (the default), and reads back as DuckDB answers', async () => {
    const query = 'SELECT id, k, v, d FROM t WHERE id % 3 <> 1';
    const outcome = await cluster.query(`COPY (${query}) TO 'scan'`, { fragments: 3, role: 'writer' });
    const files = answered(outcome);
    assert.equal(outcome.plan.shape, 'write');
    assert.equal(outcome.plan.fragments.length, 3, 'three fragments wrote');
    assert.equal(files.length, 3);
    const root = join(warehouse, 'exports', 'scan');
    assert.deepEqual(files.map((f) => f.path), filesUnder(root).map((f) => `file://${root}/${f}`));
    for (const [i, f] of files.entries()) {
      assert.match(f.path, new RegExp(`/${outcome.queryId}-f${i}\\.parquet$`), 'named by query and fragment');
      assert.ok(f.bytes > 0);
    }
    const expected = await lines(query);
    assert.equal(files.reduce((n, f) => n + f.rows, 0), expected.length);
    assert.deepEqual(await lines(`SELECT * FROM read_parquet(${sqlString(`${root}/*.parquet`)})`), expected);
    // Types are kept: DuckDB reads the decimal and the date back as such.
    const types = await reference.query(`SELECT typeof(v), typeof(d) FROM read_parquet(${sqlString(`${root}/*.parquet`)}) LIMIT 1`);
    assert.deepEqual(types.rows[0], ['DECIMAL(10,2)', 'DATE']);
  });

  test('COPY table TO, partitioned CSV with a header and a delimiter: hive directories, each fragment its own files', async () => {
    const outcome = await cluster.query("COPY t TO 'exports/csv' (FORMAT csv, PARTITION_BY (k), DELIMITER '|', HEADER)", { fragments: 3, role: 'writer' });
    const files = answered(outcome);
    assert.equal(outcome.plan.fragments.length, 3);
    // 3 partitions x 3 fragments, no two with one name.
    assert.equal(files.length, 9);
    assert.equal(new Set(files.map((f) => f.path)).size, 9);
    for (const k of ['k0', 'k1', 'k2']) assert.equal(files.filter((f) => f.path.includes(`/csv/k=${k}/`)).length, 3);
    const root = join(warehouse, 'exports', 'csv');
    const got = await lines(`SELECT id, k, v, d, s FROM read_csv(${sqlString(`${root}/**/*.csv`)}, delim = '|', header = true, hive_partitioning = true, columns = {'id': 'BIGINT', 'v': 'DECIMAL(10,2)', 'd': 'DATE', 's': 'VARCHAR'})`);
    assert.deepEqual(got, await lines('SELECT id, k, v, d, s FROM t'));
    // Per-file row counts are exact.
    for (const f of files.slice(0, 2)) {
      const n = await reference.query(`SELECT count(*) FROM read_csv(${sqlString(f.path.slice('file://'.length))}, delim = '|', header = true)`);
      assert.equal(Number(n.rows[0][0]), f.rows);
    }
  });

  test('an aggregate with ORDER BY is written by the coordinator, as JSON, in order', async () => {
    const query = 'SELECT k, count(*) AS n, sum(v) AS total FROM t GROUP BY k ORDER BY k DESC';
    const outcome = await cluster.query(`COPY (${query}) TO 'agg' (FORMAT json)`, { fragments: 3, role: 'writer' });
    const files = answered(outcome);
    assert.equal(files.length, 1);
    assert.match(outcome.plan.reason, /coordinator writes/);
    assert.match(files[0].path, /\/exports\/agg\/.*-c0\.json$/);
    const path = files[0].path.slice('file://'.length);
    assert.deepEqual(await lines(`SELECT k, n, total FROM read_json(${sqlString(path)}, columns = {'k': 'VARCHAR', 'n': 'BIGINT', 'total': 'DECIMAL(38,2)'})`, true), await lines(query, true));
    // ORDER BY over a plain scan is also the coordinator's: the file keeps the order.
    const sorted = await cluster.query("COPY (SELECT id FROM t WHERE id < 50 ORDER BY id DESC) TO 'sorted' (FORMAT csv)", { fragments: 3, role: 'writer' });
    assert.equal(answered(sorted).length, 1);
    const ids = await reference.query(`SELECT id FROM read_csv(${sqlString(join(warehouse, 'exports', 'sorted', '*.csv'))})`);
    assert.deepEqual(ids.rows.map((r) => Number(r[0])), Array.from({ length: 50 }, (_, i) => 49 - i));
  });

  test('an allowed local location (PUFFINDB_EXPORT_LOCATIONS), gzip-compressed CSV', async () => {
    const outcome = await cluster.query(`COPY (SELECT id, s FROM t WHERE id >= 1000) TO ${sqlString(`${allowed}/gz`)} (FORMAT csv, COMPRESSION gzip)`, { fragments: 2, role: 'writer' });
    const files = answered(outcome);
    assert.ok(files.every((f) => f.path.startsWith(`file://${allowed}/gz/`) && f.path.endsWith('.csv.gz')));
    assert.deepEqual(await lines(`SELECT id, s FROM read_csv(${sqlString(`${allowed}/gz/*.csv.gz`)}, columns = {'id': 'BIGINT', 's': 'VARCHAR'}, header = true)`), await lines('SELECT id, s FROM t WHERE id >= 1000'));
  });

  test('S3 (s3rver): partitioned Parquet written by the fragments through the object store', async () => {
    const outcome = await cluster.query(`COPY (SELECT id, k, d, s FROM t WHERE id % 2 = 0) TO 's3://${s3.bucket}/exp/run1' (PARTITION_BY (k), COMPRESSION zstd)`, { fragments: 3, role: 'writer' });
    const files = answered(outcome);
    assert.equal(files.length, 9);
    const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: 'exp/run1/' }));
    const keys = (listed.Contents ?? []).map((o) => o.Key!).sort();
    assert.deepEqual(files.map((f) => f.path).sort(), keys.map((k) => `s3://${s3.bucket}/${k}`));
    const local = join(dir, 'from-s3');
    for (const key of keys) {
      const body = await (await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }))).Body!.transformToByteArray();
      mkdirSync(dirname(join(local, key)), { recursive: true });
      writeFileSync(join(local, key), body);
    }
    const got = await lines(`SELECT id, k, d, s FROM read_parquet(${sqlString(`${local}/exp/run1/**/*.parquet`)}, hive_partitioning = true)`);
    assert.deepEqual(got, await lines('SELECT id, k, d, s FROM t WHERE id % 2 = 0'));
    // Unpartitioned JSON on S3, by the coordinator (LIMIT).
    const one = answered(await cluster.query(`COPY (SELECT id FROM t ORDER BY id LIMIT 3) TO 's3://${s3.bucket}/exp/json' (FORMAT json)`, { role: 'writer' }));
    const body = await (await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: one[0].path.slice(`s3://${s3.bucket}/`.length) }))).Body!.transformToString();
    assert.deepEqual(body.trim().split('\n').map((l) => JSON.parse(l)), [{ id: 0 }, { id: 1 }, { id: 2 }]);
  });

  test('a location with files: refused, OVERWRITE replaces them, OVERWRITE_OR_IGNORE adds beside them', async () => {
    const first = answered(await cluster.query("COPY (SELECT id FROM t WHERE id < 10) TO 'again'", { fragments: 1, role: 'writer' }));
    const root = join(warehouse, 'exports', 'again');
    await refused("COPY (SELECT id FROM t) TO 'again'", 'conflict', /already holds 1 file.*OVERWRITE/);
    assert.deepEqual(filesUnder(root).length, 1);
    const added = answered(await cluster.query("COPY (SELECT id FROM t WHERE id < 5) TO 'again' (OVERWRITE_OR_IGNORE)", { fragments: 1, role: 'writer' }));
    assert.equal(filesUnder(root).length, 2);
    const replaced = answered(await cluster.query("COPY (SELECT id FROM t WHERE id < 3) TO 'again' (OVERWRITE true)", { fragments: 1, role: 'writer' }));
    assert.deepEqual(filesUnder(root).map((f) => `file://${root}/${f}`), replaced.map((f) => f.path));
    assert.ok(![...first, ...added].some((f) => replaced.some((r) => r.path === f.path)));
    assert.deepEqual(await lines(`SELECT id FROM read_parquet(${sqlString(`${root}/*.parquet`)})`), ['["0"]', '["1"]', '["2"]']);
  });

  test('a failed COPY removes every file it wrote, and says why', async () => {
    // One fragment's rows fail a cast; the others write their files first.
    const err = await refused("COPY (SELECT id, CAST(CASE WHEN id = 1199 THEN 'x' ELSE '1' END AS INTEGER) AS c FROM t) TO 'failed'", 'bad_request', /Conversion Error/);
    assert.ok(err);
    assert.deepEqual(filesUnder(join(warehouse, 'exports', 'failed')), []);
  });
});

describe('COPY ... TO refusals (nothing is written)', () => {
  test('locations outside the exports prefix and the allowed ones, traversal, symlinks and other schemes', async () => {
    const attacks = [
      'exports/../x', '../x', 'a/../../x', './x', 'x/./y', 'exports/link/x', 'link/x',
      `${allowed}/../outside/x`, `file://${allowed}/../outside/x`, `${outside}/x`, `file://${outside}/x`, '/etc/puffin', 'file:///tmp/x',
      `file://evil.example/${allowed}/x`, 'http://127.0.0.1/x', 'https://example.com/x', 'gs://b/x', 'hf://datasets/x',
      `s3://other/exp/x`, `s3://${s3.bucket}/expother/x`, `s3://${s3.bucket}/exp/../x`, `s3://${s3.bucket}/x`,
      allowed, `${allowed}/`, `s3://${s3.bucket}/exp/`, 'exports', 'exports/', '', 'a\\b', `${allowed}//x`, 'a//b',
      `${join(dir, 'allowedx')}/y`,
    ];
    for (const location of attacks) {
      // Outside the allowed locations: access_denied; malformed: bad_request.
      const err = await refused(`COPY (SELECT 1 AS one) TO ${sqlString(location)}`, ['access_denied', 'bad_request']);
      assert.match(err.message, /COPY writes below .*exports\/.*allowed.*exp\//s, location);
    }
    assert.deepEqual(filesUnder(outside), []);
    for (const d of [join(warehouse, 'x'), join(warehouse, 'exports', 'x'), join(warehouse, 'exports', 'a'), join(dir, 'x'), join(dir, 'allowedx')]) assert.deepEqual(filesUnder(d), [], d);
    const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket }));
    assert.ok((listed.Contents ?? []).every((o) => o.Key!.startsWith('exp/run1/') || o.Key!.startsWith('exp/json/')), 'nothing else in the bucket');
  });

  test('partition values cannot name a path: DuckDB escapes them into one directory name each', async () => {
    const files = answered(await cluster.query("COPY (SELECT * FROM (VALUES ('../../up', 1), ('a/b', 2), ('..', 3)) v(k, x)) TO 'esc' (FORMAT csv, PARTITION_BY (k))", { role: 'writer' }));
    assert.equal(files.length, 3);
    const root = join(warehouse, 'exports', 'esc');
    assert.deepEqual(filesUnder(root).map((f) => f.split('/')[0]).sort(), ['k=..', 'k=..%2F..%2Fup', 'k=a%2Fb']);
    assert.deepEqual(filesUnder(warehouse).filter((f) => f.startsWith('up')), []);
  });

  test('options that would name files or write elsewhere, and unknown ones, are refused by name', async () => {
    for (const [option, name] of [
      ["FILENAME_PATTERN '../../x{i}'", 'FILENAME_PATTERN'], ["FILE_EXTENSION 'sh'", 'FILE_EXTENSION'], ['PER_THREAD_OUTPUT', 'PER_THREAD_OUTPUT'],
      ['USE_TMP_FILE false', 'USE_TMP_FILE'], ['WRITE_PARTITION_COLUMNS', 'WRITE_PARTITION_COLUMNS'], ['RETURN_FILES', 'RETURN_FILES'], ['FOO 1', 'FOO'],
    ]) {
      await refused(`COPY (SELECT id, k FROM t) TO 'opt' (${option})`, 'unsupported', new RegExp(`option ${name} is not supported`));
    }
    await refused("COPY t TO 'opt' (FORMAT xlsx)", 'unsupported', /FORMAT xlsx/);
    await refused("COPY t TO 'opt' (FORMAT csv, COMPRESSION lzma)", 'unsupported', /lzma/);
    await refused("COPY t TO 'opt' (HEADER)", 'bad_request', /HEADER applies to FORMAT csv/);
    await refused("COPY t TO 'opt' (PARTITION_BY (nope))", 'binder_error', /no column nope/);
    await refused("COPY t TO 'opt' (OVERWRITE, OVERWRITE_OR_IGNORE)", 'bad_request', /exclude each other/);
    await refused("COPY t TO 'opt' FORMAT csv", 'syntax_error');
    await refused("COPY t FROM 'exports/x.csv'", 'unsupported', /FROM/);
    await refused("COPY t TO $$exports/x$$", 'bad_request', /plain/);
    assert.deepEqual(filesUnder(join(warehouse, 'exports', 'opt')), []);
  });

  test('a reader key gets 403; a writer key copies over the API; explain shows the fragments writing', async () => {
    const keyOf = async (role: string) => {
      const res = await app.request('/v1/keys', { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: role, role }) });
      assert.equal(res.status, 201);
      return ((await res.json()) as { key: string }).key;
    };
    const post = (path: string, key: string, sql: string) => app.request(path, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify({ sql, fragments: 2 }) });
    const reader = await keyOf('reader');
    const writer = await keyOf('writer');
    for (const path of ['/v1/query', '/v1/queries', '/v1/explain']) {
      const res = await post(path, reader, "COPY t TO 'byreader'");
      assert.equal(res.status, 403, path);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'forbidden');
    }
    assert.deepEqual(filesUnder(join(warehouse, 'exports', 'byreader')), []);
    const explained = await post('/v1/explain', writer, "COPY (SELECT id FROM t) TO 'bywriter'");
    assert.equal(explained.status, 200);
    const plan = (await explained.json()) as { shape: string; fragments: unknown[] };
    assert.equal(plan.shape, 'write');
    assert.equal(plan.fragments.length, 2);
    assert.deepEqual(filesUnder(join(warehouse, 'exports', 'bywriter')), [], 'explain writes nothing');
    const res = await post('/v1/query', writer, "COPY (SELECT id FROM t WHERE id < 100) TO 'bywriter'");
    const text = await res.text();
    assert.equal(res.status, 200, text);
    const body = JSON.parse(text) as { rows: { path: string; rows: string | number }[] };
    assert.equal(body.rows.reduce((n, r) => n + Number(r.rows), 0), 100);
    const bad = await post('/v1/query', writer, "COPY t TO '../escape'");
    assert.equal(bad.status, 400);
  });
});
