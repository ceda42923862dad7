// SQL in and out through DuckDB's own parser and printer: `json_serialize_sql` gives the
// AST the planner rewrites, `json_deserialize_sql` prints a rewritten AST back as SQL.
// Parsing needs no tables, so it runs on any engine connection.

import type { DuckDBConnection } from '@duckdb/node-api';
import { PuffinError } from '../errors.ts';
import type { Engine } from '../engine/engine.ts';

/** A node of DuckDB's JSON AST. Shapes are DuckDB's; the planner reads them loosely. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AstNode = Record<string, any>;

export interface ParsedStatement {
  /** The statement's query node (SELECT_NODE, SET_OPERATION_NODE, ...). */
  node: AstNode;
  /** The whole serialized statement, for printing back. */
  statement: AstNode;
}

/**
 * DuckDB writes `query_location` as an unsigned 64-bit integer, which JavaScript numbers
 * cannot hold exactly (2^64-1 marks "no location"). Locations only matter for error
 * messages of the original text, which is parsed before any rewrite, so they are zeroed.
 */
function parseAstJson(text: string): AstNode {
  return JSON.parse(text.replace(/"query_location":\d+/g, '"query_location":0')) as AstNode;
}

async function withConnection<T>(engine: Engine | DuckDBConnection, fn: (c: DuckDBConnection) => Promise<T>): Promise<T> {
  if ('instance' in engine) {
    const conn = await engine.connect();
    try {
      return await fn(conn);
    } finally {
      conn.closeSync();
    }
  }
  return fn(engine);
}

/** Parse SQL text into statements; syntax errors carry DuckDB's message and position. */
export async function parseStatements(engine: Engine | DuckDBConnection, sql: string): Promise<ParsedStatement[]> {
  if (typeof sql !== 'string' || sql.trim() === '') throw new PuffinError('bad_request', 'the SQL text is empty');
  const text = await withConnection(engine, async (conn) => {
    const reader = await conn.runAndReadAll('SELECT json_serialize_sql($1::VARCHAR)', [sql]);
    return reader.getRows()[0][0] as string;
  });
  const parsed = parseAstJson(text);
  if (parsed.error) {
    const message = String(parsed.error_message ?? 'cannot parse SQL');
    if (parsed.error_type === 'parser' || /syntax error/i.test(message)) {
      const position = parsed.position !== undefined ? Number(parsed.position) : undefined;
      throw new PuffinError('syntax_error', `Parser Error: ${message}`, position !== undefined ? { position } : undefined);
    }
    if (/Only SELECT statements/i.test(message)) {
      throw new PuffinError('unsupported', 'only SELECT queries can run on this table type; writes (INSERT, UPDATE, DELETE, CREATE TABLE) need Iceberg tables');
    }
    throw new PuffinError('bad_request', message);
  }
  const statements = (parsed.statements ?? []) as AstNode[];
  return statements.map((statement) => ({ statement, node: statement.node as AstNode }));
}

/** Parse exactly one statement. */
export async function parseStatement(engine: Engine | DuckDBConnection, sql: string): Promise<ParsedStatement> {
  const statements = await parseStatements(engine, sql);
  if (statements.length !== 1) {
    throw new PuffinError('bad_request', `expected one SQL statement, got ${statements.length}`);
  }
  return statements[0];
}

/** Print query nodes back to SQL text, in one round trip. */
export async function printNodes(engine: Engine | DuckDBConnection, nodes: AstNode[]): Promise<string[]> {
  if (nodes.length === 0) return [];
  const docs = nodes.map((node) => JSON.stringify({ error: false, statements: [{ node, named_param_map: [] }] }));
  return withConnection(engine, async (conn) => {
    const selects = docs.map((_, i) => `json_deserialize_sql($${i + 1}::JSON) AS s${i}`).join(', ');
    try {
      const reader = await conn.runAndReadAll(`SELECT ${selects}`, docs);
      return reader.getRows()[0].map((v) => String(v));
    } catch (err) {
      throw new PuffinError('internal', `cannot print rewritten SQL: ${(err as Error).message}`);
    }
  });
}

export async function printNode(engine: Engine | DuckDBConnection, node: AstNode): Promise<string> {
  return (await printNodes(engine, [node]))[0];
}
