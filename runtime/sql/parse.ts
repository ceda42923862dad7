// SQL in and out through DuckDB's own parser and printer: `json_serialize_sql` gives the
// AST the planner rewrites, `json_deserialize_sql` prints a rewritten AST back as SQL.
// Parsing needs no tables, so it runs on any engine connection.

import type { DuckDBConnection } from '@duckdb/node-api';
import { PuffinError } from '../errors.ts';
import type { Engine } from '../engine/engine.ts';

/** A node of DuckDB's JSON AST. Shapes are DuckDB's; the planner reads them loosely. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AstNode = Record<string, any>;

/**
 * Visit every object of a JSON AST (nodes and their parts), depth first, parents before
 * children. A visit that returns false does not go into that object (it may have replaced
 * its contents).
 */
export function visitNodes(value: unknown, visit: (node: AstNode) => boolean | void): void {
  if (Array.isArray(value)) {
    for (const v of value) visitNodes(v, visit);
    return;
  }
  if (!value || typeof value !== 'object') return;
  const node = value as AstNode;
  if (visit(node) === false) return;
  for (const key of Object.keys(node)) visitNodes(node[key], visit);
}

export interface ParsedStatement {
  /** The statement's query node (SELECT_NODE, SET_OPERATION_NODE, ...). */
  node: AstNode;
  /** The whole serialized statement, for printing back. */
  statement: AstNode;
}

/**
 * DuckDB's JSON AST holds 64-bit integers (BIGINT constants, the halves of HUGEINTs, and
 * `query_location`, which is 2^64-1 for "none") that a JavaScript number would round.
 * Integer tokens beyond 2^53 are therefore carried through as tagged strings and written
 * back as the same digits. Locations are zeroed: they only matter for errors on the
 * original text, which is parsed before any rewrite.
 */
const BIG_TAG = `__puffindb_int_${process.pid}_${Date.now().toString(36)}__:`;

function protectBigIntegers(text: string): string {
  let out = '';
  let i = 0;
  let last = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch === '"') {
      // Skip a string, honouring escapes.
      i++;
      while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
      i++;
      continue;
    }
    if (ch === '-' || (ch >= '0' && ch <= '9')) {
      let j = i + 1;
      while (j < text.length && /[0-9.eE+-]/.test(text[j])) j++;
      const token = text.slice(i, j);
      // Integers past 2^53, and floating-point tokens with an integral value (DuckDB writes
      // DOUBLE 1e9 as 1000000000.0, and would refuse it back as the integer JSON.stringify
      // makes of it): both are written back as the same characters.
      const integer = /^-?\d+$/.test(token);
      if ((integer && !Number.isSafeInteger(Number(token))) || (!integer && /^-?\d/.test(token) && Number.isInteger(Number(token)))) {
        out += `${text.slice(last, i)}"${BIG_TAG}${token}"`;
        last = j;
      }
      i = j;
      continue;
    }
    i++;
  }
  return out + text.slice(last);
}

function parseAstJson(text: string): AstNode {
  return JSON.parse(protectBigIntegers(text.replace(/"query_location":\d+/g, '"query_location":0'))) as AstNode;
}

/** JSON text of an AST, with protected integers written back as their exact digits. */
export function stringifyAst(node: unknown): string {
  // The tag is letters, digits, '_' and ':', so it needs no escaping inside the pattern.
  return JSON.stringify(node).replace(new RegExp(`"${BIG_TAG}(-?[0-9][0-9.eE+-]*)"`, 'g'), '$1');
}

/** Run `fn` on the connection given, or on a fresh one of the engine given (closed after). */
export async function withConnection<T>(engine: Engine | DuckDBConnection, fn: (c: DuckDBConnection) => Promise<T>): Promise<T> {
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

/**
 * DuckDB's parse of a SQL text is a function of the text alone (json_serialize_sql runs the
 * parser, not the binder), and the same texts come back again and again: a plan's fragments
 * share their SQL, and every task of a stage parses it on its worker. The serialized parse is
 * kept per text, most recently used last, up to SERIALIZED_CACHE_ENTRIES texts of at most
 * SERIALIZED_CACHE_TEXT characters (SQL and parse); each caller gets its own fresh tree from it.
 */
const SERIALIZED_CACHE_ENTRIES = 512;
const SERIALIZED_CACHE_TEXT = 256 * 1024;
const serializedCache = new Map<string, string>();

/** Keep (or move to most recently used) one text's parse; the oldest entries go first. */
function rememberSerialized(sql: string, text: string): void {
  if (sql.length + text.length > SERIALIZED_CACHE_TEXT) return;
  serializedCache.delete(sql);
  serializedCache.set(sql, text);
  while (serializedCache.size > SERIALIZED_CACHE_ENTRIES) serializedCache.delete(serializedCache.keys().next().value as string);
}

/** Parse SQL text into statements; syntax errors carry DuckDB's message and position. */
export async function parseStatements(engine: Engine | DuckDBConnection, sql: string): Promise<ParsedStatement[]> {
  if (typeof sql !== 'string' || sql.trim() === '') throw new PuffinError('bad_request', 'the SQL text is empty');
  const text = serializedCache.get(sql) ?? await withConnection(engine, async (conn) => {
    const reader = await conn.runAndReadAll('SELECT json_serialize_sql($1::VARCHAR)', [sql]);
    return reader.getRows()[0][0] as string;
  });
  rememberSerialized(sql, text);
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
  const docs = nodes.map((node) => stringifyAst({ error: false, statements: [{ node: typedFloats(node), named_param_map: [] }] }));
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

/**
 * DuckDB prints a DOUBLE (or FLOAT) constant as a bare number, which parses back as a
 * DECIMAL (2.5, 1000000000.0) or an INTEGER: the printed statement would compute in another
 * type than the one written (1.5e0 * x). Such constants print as CAST('<digits>' AS DOUBLE).
 */
function typedFloats(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(typedFloats);
  if (!node || typeof node !== 'object') return node;
  const n = node as AstNode;
  const id = n.class === 'CONSTANT' ? n.value?.type?.id : undefined;
  if ((id === 'DOUBLE' || id === 'FLOAT') && !n.value.is_null) {
    const raw = n.value.value;
    const digits = typeof raw === 'string' && raw.startsWith(BIG_TAG) ? raw.slice(BIG_TAG.length) : typeof raw === 'number' && Number.isFinite(raw) ? String(raw) : undefined;
    if (digits !== undefined) {
      return {
        class: 'CAST', type: 'OPERATOR_CAST', alias: n.alias ?? '', query_location: 0, try_cast: false, cast_type: { id, type_info: null },
        child: { class: 'CONSTANT', type: 'VALUE_CONSTANT', alias: '', query_location: 0, value: { type: { id: 'VARCHAR', type_info: null }, is_null: false, value: digits } },
      };
    }
  }
  const out: AstNode = {};
  for (const key of Object.keys(n)) out[key] = typedFloats(n[key]);
  return out;
}

export async function printNode(engine: Engine | DuckDBConnection, node: AstNode): Promise<string> {
  return (await printNodes(engine, [node]))[0];
}
