// The one answer to "what is this statement?": made once per request, from DuckDB's parse
// of the whole text, and handed to everything that asks (authorization, the result cache,
// the choice between the query planner and the write path). Two answers to the same
// question once disagreed: the reader check parsed with DuckDB, whose block comments
// nest, while the write path scanned the text without nesting, so a reader's write hidden
// in a comment ran. Here DuckDB decides how many statements there are and whether the
// statement is a SELECT; the lexer (DuckDB's comment and quoting rules) only names the
// kind of a non-SELECT and removes comments, and any disagreement between the two is
// refused rather than guessed at.

import type { DuckDBConnection } from '@duckdb/node-api';
import type { Engine } from '../engine/engine.ts';
import { PuffinError } from '../errors.ts';
import { lex, sliceWithoutComments, splitStatements, type Token } from './lexer.ts';
import { parseStatements, withConnection, type ParsedStatement } from './parse.ts';
import { mentionsVolatile } from './volatile.ts';
import { catalogStatementOf, type CatalogStatement } from './catalog-statements.ts';
import { throughClause, type ThroughClause } from './through.ts';

export type StatementKind =
  | 'select'
  | 'insert'
  | 'delete'
  | 'update'
  | 'merge'
  | 'create_table'
  | 'create_view'
  | 'drop_view'
  | 'refresh_view'
  | 'create'
  | 'alter'
  | 'drop'
  | 'truncate'
  | 'copy'
  | 'call'
  | 'other';

export interface ClassifiedStatement {
  /** The text as the client sent it. */
  sql: string;
  /** The statement without comments and without trailing semicolons: what the write path reads. */
  text: string;
  kind: StatementKind;
  /** The statement's leading keyword(s) as a user would name them, e.g. 'SELECT', 'CREATE TABLE', 'SET'. */
  keyword: string;
  /** 'read' for SELECT statements only; every other statement needs a writer key (and may still be unsupported). */
  access: 'read' | 'write';
  /** SELECT statements: DuckDB's parse. */
  parsed?: ParsedStatement;
  /** SELECT statements that call no volatile function: two runs over the same tables give the same answer. */
  deterministic: boolean;
  /**
   * DESCRIBE, SHOW TABLES, SUMMARIZE, information_schema queries: answered from the catalog
   * (runtime/exec/catalog-statements.ts), not planned over tables.
   */
  catalog?: CatalogStatement;
  /**
   * `SELECT ... THROUGH 'url' ...` (runtime/sql/through.ts): the statement runs on the PuffinDB
   * at that URL. Everything above describes the statement without its THROUGH clauses; `sql`
   * stays the text as sent.
   */
  through?: ThroughClause;
}

/** Statement heads DuckDB serializes as a SELECT (a query). WITH may head either. */
const QUERY_HEADS = new Set(['SELECT', 'FROM', 'VALUES', 'TABLE', 'SHOW', 'DESCRIBE', 'DESC', 'SUMMARIZE', 'UNPIVOT', '(']);

const WRITE_HEADS: Record<string, StatementKind> = {
  INSERT: 'insert',
  DELETE: 'delete',
  UPDATE: 'update',
  MERGE: 'merge',
  ALTER: 'alter',
  DROP: 'drop',
  TRUNCATE: 'truncate',
  COPY: 'copy',
  CALL: 'call',
};

/** How many statements DuckDB's parser finds in the text. */
async function duckdbStatementCount(engine: Engine | DuckDBConnection, sql: string): Promise<number> {
  return withConnection(engine, async (conn) => {
    try {
      return (await conn.extractStatements(sql)).count;
    } catch (err) {
      const message = (err as Error).message.replace(/^Failed to extract statements:\s*/, '');
      throw new PuffinError('syntax_error', message);
    }
  });
}

function word(t: Token | undefined): string {
  return t && t.kind === 'word' ? t.text.toUpperCase() : t?.text ?? '';
}

/** The kind and keyword of a statement from its leading tokens. */
function headOf(tokens: Token[]): { kind: StatementKind | 'query' | 'with'; keyword: string } {
  const first = word(tokens[0]);
  if (QUERY_HEADS.has(first)) return { kind: 'query', keyword: first === '(' ? 'SELECT' : first };
  if (first === 'WITH') return { kind: 'with', keyword: 'WITH' };
  // Views (runtime/exec/view-statements.ts): DROP [MATERIALIZED] VIEW, REFRESH MATERIALIZED VIEW.
  if (first === 'DROP' && (word(tokens[1]) === 'VIEW' || (word(tokens[1]) === 'MATERIALIZED' && word(tokens[2]) === 'VIEW'))) {
    return { kind: 'drop_view', keyword: word(tokens[1]) === 'VIEW' ? 'DROP VIEW' : 'DROP MATERIALIZED VIEW' };
  }
  if (first === 'REFRESH') return { kind: 'refresh_view', keyword: 'REFRESH MATERIALIZED VIEW' };
  // A materialized view's refresh schedule (ALTER MATERIALIZED VIEW v SET REFRESH ...): a refresh setting, not an ALTER TABLE.
  if (first === 'ALTER' && word(tokens[1]) === 'MATERIALIZED' && word(tokens[2]) === 'VIEW') return { kind: 'refresh_view', keyword: 'ALTER MATERIALIZED VIEW' };
  if (first in WRITE_HEADS) return { kind: WRITE_HEADS[first], keyword: first };
  if (first === 'CREATE') {
    let i = 1;
    if (word(tokens[i]) === 'OR' && word(tokens[i + 1]) === 'REPLACE') i += 2;
    let materialized = false;
    while (['TEMP', 'TEMPORARY', 'PERSISTENT', 'TRANSIENT', 'MATERIALIZED'].includes(word(tokens[i]))) materialized ||= word(tokens[i++]) === 'MATERIALIZED';
    const object = word(tokens[i]);
    if (object === 'TABLE') return { kind: 'create_table', keyword: 'CREATE TABLE' };
    if (object === 'VIEW') return { kind: 'create_view', keyword: materialized ? 'CREATE MATERIALIZED VIEW' : 'CREATE VIEW' };
    return { kind: 'create', keyword: object ? `CREATE ${object}` : 'CREATE' };
  }
  return { kind: 'other', keyword: first || 'an empty statement' };
}

/**
 * `DROP TABLE name PURGE` (Iceberg's: the table's files are deleted too) is not DuckDB
 * syntax: for DuckDB's parse and statement count, a final PURGE word of a text whose only
 * statement starts with DROP TABLE is blanked out. Everything else reaches DuckDB as sent.
 */
function withoutPurge(sql: string): string {
  const lexed = lex(sql);
  const statements = splitStatements(lexed.tokens);
  if (statements.length !== 1) return sql;
  const own = statements[0];
  if (word(own[0]) !== 'DROP' || word(own[1]) !== 'TABLE') return sql;
  let last = own.length - 1;
  while (last > 0 && own[last].kind === 'semicolon') last--;
  const t = own[last];
  if (last < 3 || word(t) !== 'PURGE') return sql;
  return sql.slice(0, t.start) + ' '.repeat(t.end - t.start) + sql.slice(t.end);
}

/**
 * DuckDB has no materialized views: for its parse and statement count, CREATE MATERIALIZED
 * VIEW reads as CREATE TABLE (PARTITIONED BY and AS SELECT parse there), DROP MATERIALIZED
 * VIEW as DROP VIEW, REFRESH MATERIALIZED VIEW v and ALTER MATERIALIZED VIEW v SET REFRESH
 * ... as DROP VIEW v (what follows the name blanked; runtime/sql/views.ts reads it), each
 * word replaced by one of the same length or blanks (positions in messages stay right).
 */
function withoutMaterialized(sql: string): string {
  const statements = splitStatements(lex(sql).tokens);
  if (statements.length !== 1) return sql;
  const own = statements[0];
  const put = (text: string, t: Token, by: string) => text.slice(0, t.start) + by.padEnd(t.end - t.start) + text.slice(t.end);
  let i = 1;
  if (word(own[0]) === 'CREATE') {
    if (word(own[1]) === 'OR' && word(own[2]) === 'REPLACE') i = 3;
    if (word(own[i]) === 'MATERIALIZED' && word(own[i + 1]) === 'VIEW') return put(put(sql, own[i + 1], ''), own[i], 'TABLE');
  } else if (word(own[0]) === 'DROP' && word(own[1]) === 'MATERIALIZED' && word(own[2]) === 'VIEW') {
    return put(sql, own[1], '');
  } else if (word(own[0]) === 'REFRESH' && word(own[1]) === 'MATERIALIZED' && word(own[2]) === 'VIEW') {
    return put(put(sql, own[1], ''), own[0], 'DROP');
  } else if (word(own[0]) === 'ALTER' && word(own[1]) === 'MATERIALIZED' && word(own[2]) === 'VIEW') {
    const set = own.findIndex((t, k) => k > 3 && word(t) === 'SET');
    let last = own.length - 1;
    while (last > 0 && own[last].kind === 'semicolon') last--;
    const rest = set > 0 ? sql.slice(0, own[set].start) + ' '.repeat(own[last].end - own[set].start) + sql.slice(own[last].end) : sql;
    return put(put(rest, own[1], ''), own[0], 'DROP');
  }
  return sql;
}

/**
 * Classify one SQL statement. Refuses (4xx) empty text, NUL characters, more than one
 * statement, syntax errors (with DuckDB's message and position), and text whose comments
 * or quoting DuckDB and the lexer read differently.
 */
export async function classifyStatement(engine: Engine | DuckDBConnection, sql: string): Promise<ClassifiedStatement> {
  if (typeof sql !== 'string' || sql.trim() === '') throw new PuffinError('bad_request', 'the SQL text is empty');
  // DuckDB's parser reads C strings: it would silently stop at a NUL and run what came before.
  const nul = sql.indexOf('\u0000');
  if (nul >= 0) throw new PuffinError('bad_request', `the SQL text contains a NUL character (U+0000) at position ${nul}; remove it`, { position: nul });

  // THROUGH is not DuckDB's: the statement is classified without it, and runs elsewhere
  // (never cached: what another instance answers is not a function of local snapshots).
  const through = throughClause(sql);
  if (through) {
    const inner = await classifyStatement(engine, through.statement);
    if (inner.kind !== 'select' || inner.through) throw new PuffinError('bad_request', `THROUGH runs a SELECT on another PuffinDB; this statement is ${inner.keyword}`);
    return { ...inner, catalog: undefined, sql, deterministic: false, through };
  }

  // DuckDB's own parse first, so syntax errors carry its message and position.
  const duckText = withoutMaterialized(withoutPurge(sql));
  let parsed: ParsedStatement[] | undefined;
  try {
    parsed = await parseStatements(engine, duckText);
  } catch (err) {
    // DuckDB parsed the text but serializes SELECT statements only: this is something else.
    if (!(err instanceof PuffinError && err.code === 'unsupported')) throw err;
  }
  const count = parsed ? parsed.length : await duckdbStatementCount(engine, duckText);
  if (count !== 1) {
    throw new PuffinError('bad_request', count === 0 ? 'the SQL text holds no statement' : `send one SQL statement per request; this text holds ${count}`);
  }

  const lexed = lex(sql);
  const statements = splitStatements(lexed.tokens);
  if (statements.length !== 1) {
    throw new PuffinError('bad_request', 'the statement\'s comments or quotes could not be read consistently; remove the comments and send the statement again');
  }
  const own = statements[0];
  const text = sliceWithoutComments(sql, lexed, own[0].start, own[own.length - 1].end).trim();
  const head = headOf(own);
  const isSelect = parsed !== undefined;
  const consistent = head.kind === 'with' || (head.kind === 'query') === isSelect;
  if (!consistent) {
    throw new PuffinError('bad_request', `the statement's comments or quotes could not be read consistently (it starts with ${head.keyword} but parses as ${isSelect ? 'a SELECT' : 'another statement'}); remove the comments and send the statement again`);
  }
  if (isSelect) {
    const statement = parsed![0];
    const catalog = catalogStatementOf(statement.node);
    return {
      sql,
      text,
      kind: 'select',
      keyword: head.kind === 'with' ? 'SELECT' : head.keyword,
      access: 'read',
      parsed: statement,
      // A catalog answer reads no table snapshot a result cache key could name: never cached.
      deterministic: catalog?.kind !== 'mirror' && !(await mentionsVolatile(engine, statement.node)),
      ...(catalog ? { catalog } : {}),
    };
  }
  const kind: StatementKind = head.kind === 'query' || head.kind === 'with' ? 'other' : head.kind;
  // CALL puffindb.snapshots(...) only reads the table's metadata (runtime/exec/maintenance.ts); other CALLs write.
  const readOnlyCall = kind === 'call' && own.length > 3 && word(own[1]) === 'PUFFINDB' && own[2].text === '.' && word(own[3]) === 'SNAPSHOTS';
  return { sql, text, kind, keyword: head.keyword, access: readOnlyCall ? 'read' : 'write', deterministic: false };
}

/** The message of a statement the engine recognizes but does not run. */
export function unsupportedStatement(statement: ClassifiedStatement): PuffinError {
  const hint =
    statement.kind === 'other'
      ? ` (${statement.keyword} statements change or inspect the engine itself, which queries may not do)`
      : '';
  return new PuffinError('unsupported', `${statement.keyword} statements are not supported${hint}; PuffinDB runs SELECT queries, and CREATE TABLE, CREATE TABLE AS, INSERT, DELETE, UPDATE, MERGE INTO, ALTER TABLE, DROP TABLE and TRUNCATE on Iceberg tables, CALL puffindb.<procedure>(...) for their maintenance, and COPY (query) TO a location`);
}
