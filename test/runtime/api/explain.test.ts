// POST /v1/explain: the plan without running it; with analyze, the query runs like
// POST /v1/query (authorized the same way) and every stage reports its actual figures.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ADMIN_KEY, apiFixture, errorOf, newKey, type Caller } from '../../helpers/api.ts';
import type { ControlFixture } from '../../helpers/control-plane.ts';

let f: ControlFixture;
let call: Caller;

before(async () => {
  ({ f, call } = await apiFixture());
});
after(() => f?.close());

describe('POST /v1/explain', () => {
  test('plans without running: no query is recorded', async () => {
    const before = (await f.state.listQueries({ limit: 1000 })).length;
    const res = await call('POST', '/v1/explain', { key: ADMIN_KEY, body: { sql: 'SELECT g, count(*) FROM t GROUP BY g' } });
    assert.equal(res.status, 200);
    const plan = (await res.json()) as { shape: string; fragments: unknown[] };
    assert.equal(plan.shape, 'scan-aggregate');
    assert.ok(plan.fragments.length >= 1);
    assert.equal((await f.state.listQueries({ limit: 1000 })).length, before);
  });

  test('analyze runs the query and reports each stage and singleNodeBytes', async () => {
    const res = await call('POST', '/v1/explain', { key: ADMIN_KEY, body: { sql: 'SELECT g, count(*) FROM t GROUP BY g', analyze: true } });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    const body = JSON.parse(text) as { queryId: string; plan: { shape: string }; stats: { stages: { stage: string; tasks: number; rowsOut: number; bytesIn: number }[]; singleNodeBytes: number } };
    assert.match(body.queryId, /^[0-9A-Z]{26}$/);
    assert.equal(body.plan.shape, 'scan-aggregate');
    assert.ok(body.stats.stages.length >= 1, text);
    const leaf = body.stats.stages[0];
    assert.ok(leaf.tasks >= 1 && leaf.rowsOut >= 1 && leaf.bytesIn > 0, JSON.stringify(leaf));
    assert.ok(body.stats.singleNodeBytes > 0, 'the reduce step read the partials');
    const record = await f.state.getQuery(body.queryId);
    assert.equal(record?.status, 'succeeded');
    assert.equal(record?.singleNodeBytes, body.stats.singleNodeBytes);
  });

  test('a reader cannot analyze a write, and nothing runs', async () => {
    const { key } = await newKey(call, 'reader');
    const e = await errorOf(await call('POST', '/v1/explain', { key, body: { sql: 'DELETE FROM t', analyze: true } }), 403);
    assert.equal(e.code, 'forbidden');
  });

  test('analyze must be a boolean', async () => {
    const e = await errorOf(await call('POST', '/v1/explain', { key: ADMIN_KEY, body: { sql: 'SELECT 1', analyze: 'yes' } }), 400);
    assert.match(e.message, /analyze/);
  });
});
