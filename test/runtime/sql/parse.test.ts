// DuckDB's JSON AST through JavaScript and back: numbers that JSON.parse would change (integers
// past 2^53, floating-point constants with an integral value) print back as they were parsed.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Engine } from '../../../runtime/engine/engine.ts';
import { parseStatement, printNodes } from '../../../runtime/sql/parse.ts';

let engine: Engine;
before(async () => {
  engine = await Engine.create({ threads: 1 });
});
after(() => engine?.close());

async function roundTrip(sql: string): Promise<string> {
  const parsed = await parseStatement(engine, sql);
  return (await printNodes(engine, [parsed.node]))[0];
}

test('a DOUBLE constant with an integral value prints back as a DOUBLE', async () => {
  // 1e9 is DOUBLE 1000000000.0 in the AST; printed as the integer 1000000000 DuckDB refuses it.
  const printed = await roundTrip('SELECT 1e9 AS a, -2e3 AS b, 2.5e0 AS c, 1e300 AS d WHERE 1e9 > 0');
  const answer = await engine.query(printed);
  assert.deepEqual(answer.rows, [[1e9, -2000, 2.5, 1e300]]);
  const types = await engine.query(`SELECT typeof(a), typeof(b), typeof(c) FROM (${printed})`);
  assert.deepEqual(types.rows, [['DOUBLE', 'DOUBLE', 'DOUBLE']]);
});

test('integers past 2^53 keep every digit', async () => {
  const printed = await roundTrip('SELECT 9007199254740993 AS a, -9223372036854775807 AS b');
  const answer = await engine.query(`SELECT a::VARCHAR, b::VARCHAR FROM (${printed})`);
  assert.deepEqual(answer.rows, [['9007199254740993', '-9223372036854775807']]);
});

test('a text parsed again gives an equal, separate tree, and a syntax error again', async () => {
  const sql = 'SELECT 41 + 1 AS answer FROM range(3) WHERE range > 0';
  const first = await parseStatement(engine, sql);
  const again = await parseStatement(engine, sql);
  assert.deepEqual(again.node, first.node);
  assert.notEqual(again.node, first.node, 'each caller gets its own tree');
  // A caller that rewrites its tree (the planner does) changes nobody else's parse.
  (first.node as Record<string, unknown>).where_clause = null;
  const third = await parseStatement(engine, sql);
  assert.deepEqual(third.node, again.node);
  assert.equal(await roundTrip(sql), (await printNodes(engine, [again.node]))[0]);
  for (let i = 0; i < 2; i++) await assert.rejects(parseStatement(engine, 'SELECT FROM WHERE ('), (err: Error & { code?: string }) => err.code === 'syntax_error');
});
