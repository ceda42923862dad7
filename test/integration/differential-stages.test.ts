// The differential suite for multi-stage plans: with the broadcast limit at 0 every table
// is "large", so joins of two tables are hash-partitioned on their keys and run as a stage
// of one task per partition. The multi-stage queries run at 1, 3 and 8 shuffle partitions,
// TPC-H and the main suite's multi-table queries each at one of them in turn; every answer
// must equal plain DuckDB's.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadTpchQueries } from '../../runtime/demo/tpch-queries.ts';
import { QUERIES, STAGE_QUERIES, assertSameAsDuckDB, openDifferential, type DifferentialFixture } from '../helpers/differential.ts';

const PARTITIONS = [1, 3, 8];
const rotate = (i: number): number => PARTITIONS[i % PARTITIONS.length];

let f: DifferentialFixture;

before(async () => {
  f = await openDifferential({ PUFFINDB_BROADCAST_LIMIT_BYTES: '0' });
});

after(() => f?.close());

async function differential(name: string, sql: string, staged?: boolean, counts: readonly number[] = PARTITIONS): Promise<void> {
  for (const partitions of counts) {
    await assertSameAsDuckDB(f, name, sql, { fragments: 2, partitions }, (plan) => {
      if (staged) {
        assert.equal(plan.stages?.length, 1, `${name}: a partitioned join (${plan.reason})`);
        assert.equal(plan.stages![0].tasks, partitions);
      }
    });
  }
}

describe('multi-stage: queries written for stages', () => {
  for (const q of STAGE_QUERIES) test(q.name, () => differential(q.name, q.sql, q.staged));
});

describe('multi-stage: TPC-H with every table over the broadcast limit', async () => {
  const queries = await loadTpchQueries();
  // Each at one partition count, in turn (the queries written for stages run at all three).
  queries.forEach((q, i) => test(`TPC-H ${q.id} at ${rotate(i)} partition(s)`, () => differential(`TPC-H ${q.id}`, q.sql, false, [rotate(i)])));
});

// A query over one table plans the same whatever the broadcast limit and the partition
// count (nothing is joined), and the main suite runs it already; the ones naming several
// tables are the ones this limit changes.
const MULTI_TABLE = /\bjoin\b|\bfrom\s+\w+(\s+\w+)?\s*,|\bunion\b|\bexcept\b|\bintersect\b|\(\s*select\b/i;

describe('multi-stage: the main suite\'s multi-table queries with every table over the broadcast limit', () => {
  QUERIES.filter((x) => MULTI_TABLE.test(x.sql)).forEach((q, i) => test(`${q.name} at ${rotate(i + 1)} partition(s)`, () => differential(q.name, q.sql, false, [rotate(i + 1)])));
});
