// The statement classifier: DuckDB decides how many statements a text holds and whether it
// is a SELECT; the lexer names the kind of the rest and removes comments; any disagreement
// is refused. These are the cases that once let a reader's write through.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Engine } from '../../../runtime/engine/engine.ts';
import { PuffinError } from '../../../runtime/errors.ts';
import { classifyStatement } from '../../../runtime/sql/classify.ts';
import { lex, splitStatements } from '../../../runtime/sql/lexer.ts';

let engine: Engine;
before(async () => {
  engine = await Engine.create({ threads: 1 });
});
after(() => engine.close());

async function refused(sql: string, code: string, pattern?: RegExp): Promise<void> {
  await assert.rejects(classifyStatement(engine, sql), (err: unknown) => {
    assert.ok(err instanceof PuffinError, String(err));
    assert.equal(err.code, code, `${JSON.stringify(sql)}: ${err.message}`);
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}

describe('lexer', () => {
  test('block comments nest, line comments end at the line, quotes hide comment marks', () => {
    const { withoutComments } = lex("/* a /* b */ c */ SELECT '/*', \"--x\", $$ -- $$, E'\\' /*' -- tail\n, 1");
    assert.equal(withoutComments.replace(/\s+/g, ' ').trim(), "SELECT '/*', \"--x\", $$ -- $$, E'\\' /*' , 1");
  });

  test('semicolons split statements only outside quotes and comments', () => {
    const statements = splitStatements(lex("SELECT ';'; /* ; */ SELECT $t$;$t$;;").tokens);
    assert.equal(statements.length, 2);
  });

  test('unterminated comments and strings are syntax errors', () => {
    for (const sql of ['SELECT 1 /* /* */', "SELECT 'x", 'SELECT "x', 'SELECT $a$ x']) {
      assert.throws(() => lex(sql), (err: unknown) => err instanceof PuffinError && err.code === 'syntax_error', sql);
    }
  });
});

describe('classifyStatement', () => {
  test('SELECT-like statements are reads, with DuckDB\'s parse', async () => {
    for (const sql of ['SELECT 1', 'select * from t', 'WITH x AS (SELECT 1) SELECT * FROM x', 'FROM t', 'VALUES (1)', '(SELECT 1)', 'SELECT 1;', '-- hi\nSELECT 1 /* c */']) {
      const s = await classifyStatement(engine, sql);
      assert.equal(s.kind, 'select', sql);
      assert.equal(s.access, 'read', sql);
      assert.ok(s.parsed, sql);
    }
  });

  test('writes are named by kind and need a writer', async () => {
    const cases: [string, string][] = [
      ['INSERT INTO t SELECT 1', 'insert'],
      ['DELETE FROM t WHERE a = 1', 'delete'],
      ['UPDATE t SET a = 1', 'update'],
      ['CREATE TABLE t AS SELECT 1', 'create_table'],
      ['create table if not exists t (a int)', 'create_table'],
      ['CREATE VIEW v AS SELECT 1', 'create_view'],
      ['MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE', 'merge'],
      ['DROP TABLE t', 'drop'],
      ['ALTER TABLE t ADD COLUMN b INT', 'alter'],
      ["COPY t TO 'x.parquet'", 'copy'],
      ['SET threads = 1', 'other'],
      ['PRAGMA version', 'other'],
      ["ATTACH 'x.db'", 'other'],
      ['WITH a AS (SELECT 1) INSERT INTO t SELECT * FROM a', 'other'],
    ];
    for (const [sql, kind] of cases) {
      const s = await classifyStatement(engine, sql);
      assert.equal(s.kind, kind, sql);
      assert.equal(s.access, 'write', sql);
      assert.equal(s.parsed, undefined, sql);
    }
  });

  test('a write hidden behind nested comments is a write, and the write path reads DuckDB\'s statement', async () => {
    const hidden = await classifyStatement(engine, '/* /* */ INSERT INTO t SELECT * FROM t LIMIT 5 -- */ SELECT 1');
    assert.equal(hidden.kind, 'select', 'DuckDB sees only SELECT 1: the INSERT is inside the nested comment');
    assert.equal(hidden.text, 'SELECT 1');
    const exposed = await classifyStatement(engine, '/* /* */ SELECT 1 -- */ INSERT INTO t SELECT 1');
    assert.equal(exposed.kind, 'insert');
    assert.equal(exposed.access, 'write');
    assert.equal(exposed.text, 'INSERT INTO t SELECT 1');
    const deleting = await classifyStatement(engine, "DELETE FROM t WHERE a = 1 AND '*/ SELECT 1 --' <> ''");
    assert.equal(deleting.kind, 'delete');
  });

  test('more than one statement is refused, however it is hidden', async () => {
    for (const sql of ['SELECT 1; SELECT 2', 'SELECT 1; DELETE FROM t', 'SELECT 1; /* x */ DROP TABLE t', "SELECT ';'; SELECT 2"]) {
      await refused(sql, 'bad_request', /one SQL statement/);
    }
  });

  test('a NUL character is refused, not a truncation point', async () => {
    await refused('SELECT 1\u0000; SELECT 2', 'bad_request', /NUL/);
    await refused('\u0000', 'bad_request', /NUL/);
  });

  test('empty text and syntax errors', async () => {
    await refused('', 'bad_request');
    await refused('  -- only a comment', 'bad_request');
    await refused('SELEC 1', 'syntax_error');
    await refused('INSERT INTO t SELEC 1', 'syntax_error');
  });

  test('DDL and MERGE are writes of their kinds; DROP TABLE ... PURGE too, and PURGE hides nothing', async () => {
    for (const [sql, kind] of [
      ['ALTER TABLE t ADD COLUMN x INTEGER', 'alter'],
      ['ALTER TABLE t SET PARTITIONED BY (bucket(4, id))', 'alter'],
      ["ALTER TABLE t SET ('write.delete.mode' = 'merge-on-read')", 'alter'],
      ['TRUNCATE t', 'truncate'],
      ['DROP TABLE IF EXISTS t', 'drop'],
      ['DROP TABLE t PURGE', 'drop'],
      ['drop table "a"."t" purge;', 'drop'],
      ['MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE', 'merge'],
    ] as const) {
      const c = await classifyStatement(engine, sql);
      assert.equal(c.kind, kind, sql);
      assert.equal(c.access, 'write', sql);
    }
    assert.equal((await classifyStatement(engine, 'DROP TABLE t /* x */ PURGE')).text, 'DROP TABLE t   PURGE');
    // Only a final PURGE of a lone DROP TABLE is blanked for DuckDB's parse.
    await refused('DROP VIEW v PURGE', 'syntax_error');
    await refused('DROP TABLE t PURGE; SELECT 1', 'syntax_error');
    await refused('DROP TABLE t PURGE PURGE', 'syntax_error');
  });

  test('volatile functions make a SELECT non-deterministic (never cached)', async () => {
    assert.equal((await classifyStatement(engine, 'SELECT 1')).deterministic, true);
    assert.equal((await classifyStatement(engine, 'SELECT random()')).deterministic, false);
    assert.equal((await classifyStatement(engine, 'SELECT current_date')).deterministic, false);
    assert.equal((await classifyStatement(engine, 'INSERT INTO t SELECT 1')).deterministic, false);
  });
});
