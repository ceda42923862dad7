// Finding 2, 8c and 11 of the attack run: user SQL must read no file it was not handed for its
// query (the server's working files hold other users' partials, write staging and cached
// table copies), may call no function that runs SQL from a value or shows the engine's
// internals (settings, secrets), and error messages show no internal path. Every attack
// runs against a real `puffindb serve` with a reader key and must be a 4xx that leaks no
// planted secret and no server path.

import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { refusal, serveKey, startServe, type RealServer } from '../helpers/serve.ts';

const SECRET = 'planted-secret-7f3a9c';
let server: RealServer;
let reader: string;
let planted: string[] = [];

before(async () => {
  server = await startServe({ demoScale: 0.01 });
  reader = await serveKey(server, 'reader');
  // Files where the server keeps its own work; none may be readable by any query.
  const dirs = ['coordinator', 'coordinator/partials', 'coordinator/files', 'coordinator/staging/x', 'coordinator/planner', 'coordinator/runners/slot-0', 'coordinator/runners/slot-0/job', 'cache', 'cache/pool-0', 'cache/pool-0/files'];
  planted = dirs.map((d) => {
    mkdirSync(join(server.home, d), { recursive: true });
    const path = join(server.home, d, 'x.csv');
    writeFileSync(path, `secret\n${SECRET}\n`);
    return path;
  });
});
after(() => server?.close());

function q(s: string): string {
  return s.replace(/'/g, "''");
}

/** Every way of reaching a file we know of, for one path. */
function fileAttacks(path: string): string[] {
  const inner = `SELECT * FROM read_csv('${path}')`;
  return [
    inner,
    `SELECT * FROM '${path}'`,
    `SELECT * FROM read_csv_auto('${path}')`,
    `SELECT * FROM read_text('${path}')`,
    `SELECT * FROM json_execute_serialized_sql(json_serialize_sql('${q(inner)}'))`,
    `SELECT (SELECT count(*) FROM json_execute_serialized_sql(json_serialize_sql('${q(inner)}')))`,
    `WITH x AS (SELECT * FROM query('${q(inner)}')) SELECT * FROM x`,
    `SELECT * FROM nation WHERE n_name IN (SELECT * FROM query_table('${q(path)}'))`,
    `SELECT * FROM nation, LATERAL (SELECT * FROM read_csv('${path}')) t`,
    `SELECT query('${q(inner)}')`,
  ];
}

async function assertRefused(sql: string): Promise<void> {
  const res = await server.query(sql, reader);
  const text = await res.clone().text();
  assert.ok(res.status >= 400 && res.status < 500, `${sql}\n-> ${res.status} ${text.slice(0, 300)}`);
  const body = await refusal(res);
  assert.ok(body.code, `no error code: ${text}`);
  assert.ok(!text.includes(SECRET), `${sql} leaked the planted file: ${text}`);
  assert.ok(!text.includes(server.home), `${sql}: the error shows the server's home: ${text}`);
  assert.ok(!text.includes(join(homedir(), '.duckdb')), `${sql}: the error shows DuckDB's home: ${text}`);
}

test('no query reads the server working files, directly, by glob or through SQL run from a value', async () => {
  // Every attack on the directories that matter most; the direct read and SQL-from-a-value on the rest.
  for (const [i, path] of planted.entries()) for (const sql of i < 3 ? fileAttacks(path) : fileAttacks(path).slice(4, 6)) await assertRefused(sql);
  for (const glob of [`${server.home}/coordinator/**`, `${server.home}/**/*.csv`, `${server.home}/cache/**`]) {
    await assertRefused(`SELECT * FROM glob('${glob}')`);
    await assertRefused(`SELECT * FROM read_csv('${glob}')`);
    await assertRefused(`SELECT * FROM json_execute_serialized_sql(json_serialize_sql('SELECT * FROM read_csv(''${glob}'')'))`);
  }
});

test('system table functions and settings are refused with a 4xx, every time', async () => {
  const attacks = [
    'SELECT * FROM duckdb_secrets()',
    'SELECT * FROM duckdb_secrets()', // the second call used to be a 500
    'SELECT * FROM duckdb_settings()',
    "SELECT * FROM duckdb_settings() WHERE name = 'allowed_directories'",
    'SELECT * FROM duckdb_extensions()',
    'SELECT * FROM duckdb_databases()',
    'SELECT * FROM pragma_database_list()',
    "SELECT * FROM which_secret('s3://x/y', 's3')",
    "SELECT current_setting('allowed_directories')",
    "SELECT current_setting('temp_directory')",
    "SELECT current_setting('home_directory')",
    "SELECT getenv('HOME')",
    "SELECT (SELECT current_setting('extension_directory'))",
    "SELECT * FROM nation WHERE n_name = current_setting('secret_directory')",
    "SELECT * FROM sniff_csv('/etc/passwd')",
    'SELECT * FROM test_all_types()',
  ];
  for (const sql of attacks) await assertRefused(sql);
});

test('what users may legitimately call still works', async () => {
  for (const [sql, rows] of [
    ['SELECT * FROM range(3)', 3],
    ['SELECT * FROM generate_series(1, 4)', 4],
    ['SELECT * FROM unnest([1, 2])', 2],
    ['SELECT n_name, x FROM nation, range(2) t(x) WHERE n_nationkey < 2', 4],
  ] as const) {
    const res = await server.query(sql, reader);
    assert.equal(res.status, 200, `${sql}: ${await res.clone().text()}`);
    assert.equal(((await res.json()) as { rows: unknown[] }).rows.length, rows, sql);
  }
});
