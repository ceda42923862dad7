// The parser and printer as an API (POST /v1/parse, POST /v1/format): DuckDB's own JSON AST
// of a statement (json_serialize_sql) and SQL printed back from one (json_deserialize_sql).
// Nothing here runs a statement: parsing and printing are functions over text. DuckDB
// serializes SELECT statements only, so those are what parse and format take.
//
// Printing is pretty when it can be proven harmless: the printed SQL is laid out by the
// dialect translator's formatter, and that layout is kept only if DuckDB parses it back to
// exactly the same AST; otherwise DuckDB's own one-line printing is answered.

import type { Engine } from '../engine/engine.ts';
import { PuffinError } from '../errors.ts';
import { loadPolyglot } from './frontends.ts';
import { parseStatements, stringifyAst, withConnection, type AstNode } from './parse.ts';

/** DuckDB's AST of the one SELECT statement in `sql`: `{node, named_param_map}` as json_serialize_sql writes it. */
export async function parseToAst(engine: Engine, sql: string): Promise<AstNode> {
  let statements;
  try {
    statements = await parseStatements(engine, sql);
  } catch (err) {
    // DuckDB serializes SELECT statements only.
    if (err instanceof PuffinError && err.code === 'unsupported') throw new PuffinError('bad_request', 'POST /v1/parse takes one SELECT statement: DuckDB serializes no other kind');
    throw err;
  }
  if (statements.length !== 1) throw new PuffinError('bad_request', statements.length === 0 ? 'the SQL text holds no statement' : `send one SQL statement per request; this text holds ${statements.length}`);
  return statements[0].statement;
}

/** The statement of a /v1/parse answer (or a whole json_serialize_sql document) as DuckDB's deserializer takes it. */
function documentOf(ast: unknown): string {
  if (!ast || typeof ast !== 'object' || Array.isArray(ast)) throw new PuffinError('bad_request', "'ast' must be a JSON object: a statement as POST /v1/parse answers it ({node, ...})");
  const value = ast as AstNode;
  if (Array.isArray(value.statements)) {
    if (value.statements.length !== 1) throw new PuffinError('bad_request', `'ast' must hold one statement; it holds ${value.statements.length}`);
    return stringifyAst({ error: false, statements: value.statements });
  }
  if (!value.node || typeof value.node !== 'object') throw new PuffinError('bad_request', "'ast' has no 'node': pass a statement as POST /v1/parse answers it");
  return stringifyAst({ error: false, statements: [{ named_param_map: [], ...value }] });
}

/** SQL printed back from a statement's AST (DuckDB's printer), laid out on several lines when `pretty`. */
export async function formatAst(engine: Engine, ast: unknown, pretty = true): Promise<string> {
  const doc = documentOf(ast);
  const sql = await withConnection(engine, async (conn) => {
    try {
      const reader = await conn.runAndReadAll('SELECT json_deserialize_sql($1::JSON)', [doc]);
      return String(reader.getRows()[0][0]);
    } catch (err) {
      throw new PuffinError('bad_request', `'ast' is not a statement DuckDB can print: ${(err as Error).message.split('\n')[0].slice(0, 300)}`);
    }
  });
  // What was printed must parse back to one SELECT: it is what a client will run.
  const [again, ...more] = await parseStatements(engine, sql);
  if (!again || more.length) throw new PuffinError('bad_request', "'ast' printed as something other than one statement");
  if (!pretty) return sql;
  return (await laidOut(engine, sql, stringifyAst(again.statement))) ?? sql;
}

/** `sql` on several lines, if the layout parses back to the same AST; else undefined. */
async function laidOut(engine: Engine, sql: string, ast: string): Promise<string | undefined> {
  try {
    const lib = await loadPolyglot();
    const formatted = lib.format(sql, 'duckdb' as never);
    if (!formatted.success || formatted.sql?.length !== 1) return undefined;
    const pretty = formatted.sql[0];
    const parsed = await parseStatements(engine, pretty);
    return parsed.length === 1 && stringifyAst(parsed[0].statement) === ast ? pretty : undefined;
  } catch {
    return undefined;
  }
}
