// Materialized subqueries (runtime/planner/materialize.ts) through a real local cluster with
// in-process workers: what runs as a step and what stays inline, that the results' files
// are gone once the query is over (also when it fails), the "more than one row" error of a
// scalar subquery, the names a user cannot reach, and what explain shows. The answers of
// many such queries are checked against DuckDB by the differential suites.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ParquetCatalog } from '../../runtime/catalog/parquet-catalog.ts';
import { Engine } from '../../runtime/engine/engine.ts';
import { LocalCluster } from '../../runtime/exec/cluster.ts';
import { formatPlan } from '../../runtime/planner/explain.ts';
import { loadSettings, toRootUrl } from '../../runtime/settings.ts';
import { sqlString } from '../../runtime/sql/quote.ts';

let dir: string;
let engine: Engine;
let cluster: LocalCluster;
let shuffleDir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'puffin-mat-'));
  const warehouse = join(dir, 'warehouse');
  engine = await Engine.create({ threads: 1 });
  for (const [table, rows] of [['facts', 3000], ['dims', 40]] as const) {
    mkdirSync(join(warehouse, table), { recursive: true });
    for (let i = 0; i < 3; i++) {
      await engine.exec(`COPY (SELECT ${i} * ${rows} + range AS id, (range % 37)::INTEGER AS k, (range * 0.25)::DECIMAL(12,2) AS v, 'n' || (range % 5) AS label
        FROM range(${rows})) TO ${sqlString(join(warehouse, table, `part-${i}.parquet`))} (FORMAT parquet)`);
    }
  }
  const home = join(dir, 'home');
  const catalog = await ParquetCatalog.open(join(home, 'catalog'), engine);
  await catalog.addTable('facts', join(warehouse, 'facts'));
  await catalog.addTable('dims', join(warehouse, 'dims'));
  shuffleDir = join(home, 'shuffle');
  const settings = loadSettings({ PUFFINDB_SUBQUERY_STAGE_BYTES: '0' }, { home, warehouse: toRootUrl(warehouse), shuffleUrl: toRootUrl(shuffleDir), cacheDir: join(home, 'cache'), threads: 1, workers: 2, maxFragments: 3 });
  cluster = await LocalCluster.open({ settings, catalog, invoker: 'in-process' });
});

after(async () => {
  await cluster?.close();
  engine?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Every file under the shuffle prefix (results of steps, shuffle objects, stored partials). */
function shuffleFiles(): string[] {
  if (!existsSync(shuffleDir)) return [];
  return readdirSync(shuffleDir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath ?? '', e.name));
}

test('a CTE, an IN subquery and a scalar subquery run as steps; their files are gone afterwards', async () => {
  const sql = `WITH big AS (SELECT k, sum(v) AS total FROM facts GROUP BY k)
    SELECT count(*) AS n, sum(total) AS t FROM big
    WHERE k IN (SELECT k FROM dims WHERE label = 'n1') AND total > (SELECT avg(v) FROM facts)`;
  const planned = await cluster.explain(sql, { role: 'admin' });
  assert.equal(planned.shape, 'staged');
  assert.deepEqual(planned.materialized!.steps.map((s) => [s.kind, s.what]), [['table', 'CTE big'], ['table', 'IN subquery'], ['scalar', 'scalar subquery']]);
  const text = formatPlan(planned);
  assert.match(text, /step __pdb_m[0-9a-f]+_1: CTE big, materialized as a table/);
  assert.match(text, /then, planned once the steps ran/);

  const out = await cluster.query(sql, { role: 'admin' });
  const want = await engine.query(sql.replace(/\bfacts\b/g, `read_parquet(${sqlString(join(dir, 'warehouse', 'facts', '*.parquet'))})`).replace(/\bdims\b/g, `read_parquet(${sqlString(join(dir, 'warehouse', 'dims', '*.parquet'))})`));
  assert.deepEqual(out.rows, want.rows);
  const steps = out.plan.materialized!.steps;
  assert.equal(steps.length, 3);
  for (const step of steps) assert.ok(step.plan && step.result, `${step.what} ran and says how`);
  assert.equal(steps[0].result!.rows, 37, 'one row per group of the CTE');
  assert.ok(steps[0].result!.files >= 1);
  // The rest of the query read the CTE's result as a table of those files.
  assert.ok(out.plan.scans.every((s) => !s.table.startsWith('__pdb_m')), 'scans name catalog tables only');
  assert.ok(out.stats.stages!.some((s) => /^s\d+\//.test(s.stage)), 'the steps\' stages are in the stats');
  assert.deepEqual(shuffleFiles(), [], 'no result file or shuffle object is left');
  assert.match(formatPlan(out.plan), /\[actual: 37 rows/);
});

test('a correlated subquery stays inline (unless decorrelated), an uncorrelated one beside it becomes a step', async () => {
  // g.id <> f.id is a correlation other than an equality: no rewrite applies.
  const sql = 'SELECT count(*) FROM facts f WHERE k IN (SELECT k FROM dims WHERE id < 20) AND v > (SELECT avg(v) FROM facts g WHERE g.k = f.k AND g.id <> f.id)';
  const planned = await cluster.explain(sql, { role: 'admin' });
  assert.deepEqual(planned.materialized!.steps.map((s) => s.what), ['IN subquery']);
  assert.match(planned.materialized!.sql, /g\.k = f\.k/);
  assert.doesNotMatch(planned.reason, /decorrelated/);
  // With an equality correlation only, the scalar subquery is a join with its aggregate.
  const decorrelated = await cluster.explain('SELECT count(*) FROM facts f WHERE v > (SELECT avg(v) FROM facts g WHERE g.k = f.k)', { role: 'admin' });
  assert.match(decorrelated.reason, /decorrelated: a correlated scalar subquery as a join with its aggregate grouped by 1 key/);
  assert.deepEqual(decorrelated.materialized!.steps.map((s) => s.what), ['derived table __pdb_d1']);
  const out = await cluster.query(sql, { role: 'admin' });
  assert.equal(out.plan.shape, 'single-node', out.plan.reason);
  assert.deepEqual(shuffleFiles(), []);
});

test('a scalar subquery of more than one row fails as DuckDB does, and leaves no file behind', async () => {
  await assert.rejects(
    cluster.query('SELECT count(*) FROM facts WHERE k = (SELECT k FROM dims WHERE id < 5)', { role: 'admin' }),
    (err: Error & { code?: string }) => err.code === 'bad_request' && /More than one row returned by a subquery/.test(err.message),
  );
  const want = await engine.query(`SELECT count(*) FROM range(3) WHERE range = (SELECT range FROM range(2))`).then(() => 'ran', (err: Error) => err.message);
  assert.match(want, /More than one row returned by a subquery/, 'DuckDB refuses it the same way');
  assert.deepEqual(shuffleFiles(), []);
});

test('a failing rest of the query deletes the results of the steps that ran', async () => {
  // The CTE step runs and stores its result; the rest fails (text that is no integer) and
  // must not leave the result's files behind.
  await assert.rejects(
    cluster.query("WITH t AS (SELECT k, sum(v) AS s FROM facts GROUP BY k) SELECT sum(CAST('x' || s AS INTEGER)) FROM t", { role: 'admin' }),
    /Could not convert string/,
  );
  assert.deepEqual(shuffleFiles(), []);
});

test('materialized results are not reachable by name from a query', async () => {
  const planned = await cluster.explain('WITH t AS (SELECT k FROM facts) SELECT count(*) FROM t', { role: 'admin' });
  const name = planned.materialized!.steps[0].name;
  await assert.rejects(cluster.query(`SELECT * FROM ${name}`, { role: 'admin' }), (err: Error & { code?: string }) => err.code === 'unknown_table');
  await assert.rejects(cluster.query(`SELECT count(*) FROM facts WHERE k IN (SELECT * FROM ${name})`, { role: 'admin' }), (err: Error & { code?: string }) => err.code === 'unknown_table');
});

test('below PUFFINDB_SUBQUERY_STAGE_BYTES nothing is staged', async () => {
  const home = join(dir, 'home2');
  const catalog = await ParquetCatalog.open(join(home, 'catalog'), engine);
  await catalog.addTable('facts', join(dir, 'warehouse', 'facts'));
  const settings = loadSettings({ PUFFINDB_SUBQUERY_STAGE_BYTES: String(1 << 30) }, { home, warehouse: toRootUrl(join(dir, 'warehouse')), shuffleUrl: toRootUrl(join(home, 'shuffle')), cacheDir: join(home, 'cache'), threads: 1, workers: 1 });
  const small = await LocalCluster.open({ settings, catalog, invoker: 'in-process' });
  try {
    const plan = await small.explain('WITH t AS (SELECT k, count(*) AS n FROM facts GROUP BY k) SELECT max(n) FROM t', { role: 'admin' });
    assert.equal(plan.shape, 'single-node');
    assert.equal(plan.materialized, undefined);
  } finally {
    await small.close();
  }
});

test('a query cancelled between its steps stops, and leaves no result file or shuffle object behind', async () => {
  // Cancelled when the second execution is about to start (the first step has stored its result).
  const controller = new AbortController();
  let executions = 0;
  const sql = `WITH a AS (SELECT k, sum(v) AS s FROM facts GROUP BY k), b AS (SELECT k, count(*) AS n FROM a WHERE s > 0 GROUP BY k)
    SELECT count(*) FROM b WHERE n > 0`;
  await assert.rejects(
    cluster.query(sql, {
      role: 'admin', signal: controller.signal,
      onPlan: () => {
        if (++executions === 2) controller.abort();
      },
    }),
    (err: Error & { code?: string }) => err.code === 'timeout' && /cancelled/.test(err.message),
  );
  assert.equal(executions, 2, 'the first step ran, the second was cancelled as it started');
  assert.deepEqual(shuffleFiles(), []);
  // The cluster answers the same query afterwards.
  const out = await cluster.query(sql, { role: 'admin' });
  assert.equal(out.rows.length, 1);
  assert.deepEqual(shuffleFiles(), []);
});

test('a stored step\'s result files carry their integer columns\' statistics: the planner estimates groups over them', async () => {
  // A second cluster on the same home whose final aggregates run in a stage from 20 estimated
  // partial groups. Without statistics on the step's files the groups over g could not be
  // estimated, and the final aggregate would stay on the coordinator.
  const home = join(dir, 'home');
  const catalog = await ParquetCatalog.open(join(home, 'catalog'), engine);
  const settings = loadSettings({ PUFFINDB_SUBQUERY_STAGE_BYTES: '0', PUFFINDB_PARTITIONED_AGGREGATE_GROUPS: '20' }, { home, warehouse: toRootUrl(join(dir, 'warehouse')), shuffleUrl: toRootUrl(shuffleDir), cacheDir: join(home, 'cache-stats'), threads: 1, workers: 2, maxFragments: 3 });
  const staged = await LocalCluster.open({ settings, catalog, invoker: 'in-process' });
  try {
    const sql = 'WITH big AS (SELECT id % 100 AS g, v FROM facts WHERE v > 1) SELECT g, sum(v) AS s, count(*) AS n FROM big GROUP BY g ORDER BY g';
    const out = await staged.query(sql, { role: 'admin' });
    assert.ok((out.plan.materialized?.steps.length ?? 0) > 0, out.plan.reason);
    assert.match(out.plan.reason, /partitioned aggregation \(about 100 estimated/, out.plan.reason);
    const expected = await engine.query(`SELECT id % 100 AS g, sum(v) AS s, count(*) AS n FROM read_parquet(${sqlString(join(dir, 'warehouse', 'facts', '*.parquet'))}) WHERE v > 1 GROUP BY g ORDER BY g`);
    assert.deepEqual(out.rows.map((r) => r.map(String)), expected.rows.map((r) => r.map(String)));
  } finally {
    await staged.close();
  }
});
