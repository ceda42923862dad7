// The differential suite: every query runs through the local cluster (a pool of two worker
// processes) with 1, 2 and 7 fragments, and must equal plain DuckDB's answer over the same
// files: same columns and types, same rows as a multiset, same order where the outermost
// ORDER BY fixes it, floating point within a relative 1e-9.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadTpchQueries } from '../../runtime/demo/tpch-queries.ts';
import { QUERIES, assertSameAsDuckDB, openDifferential, skippedIdenticalPlans, type DifferentialFixture } from '../helpers/differential.ts';

const FRAGMENTS = [1, 2, 7];

let f: DifferentialFixture;

before(async () => {
  // At scale 0.01, customer is ~128 KB and orders ~580 KB: a 256 KB broadcast limit keeps
  // the small tables broadcastable and makes orders x lineitem a join of two large tables.
  f = await openDifferential({ PUFFINDB_BROADCAST_LIMIT_BYTES: String(256 * 1024), PUFFINDB_SUBQUERY_STAGE_BYTES: '0' });
});

after(async () => {
  console.log(`runs skipped for a plan identical to one already run: ${skippedIdenticalPlans.count}`);
  await f?.close();
});

async function differential(name: string, sql: string, shape?: string, materialized?: boolean): Promise<void> {
  for (const fragments of FRAGMENTS) {
    await assertSameAsDuckDB(f, name, sql, { fragments }, (plan) => {
      if (shape) assert.equal(plan.shape, shape, `${name}: shape (${plan.reason})`);
      // What explain shows before the run is 'staged'; after it, the plan of what ran last.
      if (materialized) assert.ok(plan.shape === 'staged' || (plan.materialized?.steps.length ?? 0) > 0, `${name}: subqueries run first as steps (${plan.reason})`);
    });
  }
}
describe('differential: TPC-H over the demo data', async () => {
  const queries = await loadTpchQueries();
  test('all 22 queries are here', () => assert.equal(queries.length, 22));
  for (const q of queries) test(`TPC-H ${q.id}`, () => differential(`TPC-H ${q.id}`, q.sql));
});

describe('differential: shapes, types, NULLs, empty inputs', () => {
  for (const q of QUERIES) test(q.name, () => differential(q.name, q.sql, q.shape, q.materialized));
});
