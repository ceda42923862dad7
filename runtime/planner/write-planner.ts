// SQL writes to Iceberg tables: recognizing CREATE TABLE, CREATE TABLE AS SELECT, INSERT,
// DELETE and UPDATE and running them through the Iceberg writer. DuckDB's json_serialize_sql
// only serializes SELECT, so the statement head (keywords, table name, column list) is carved
// out here by a small quote- and parenthesis-aware scanner, and every piece of user SQL
// (the SELECT, VALUES, WHERE and SET text) is handed to DuckDB to parse and bind, so a
// malformed piece fails with DuckDB's own message.
//
// Distribution: the SELECT of INSERT/CTAS is turned into something the writer's DuckDB
// connection can read by `resolveSelect` (the coordinator can run it through the query engine
// and return `read_parquet('...')` of the result); by default it runs on the connection
// itself, with the catalog's Iceberg tables it names available as views.

import { PuffinError } from '../errors.ts';
import { lex } from '../sql/lexer.ts';
import { sqlIdent } from '../sql/quote.ts';
import { buildIcebergReadSql } from '../catalog/iceberg/read.ts';
import { planTableScan } from '../catalog/iceberg/scan.ts';
import { loadTable } from '../catalog/iceberg/commit.ts';
import { exposedSchema } from '../catalog/iceberg/column-names.ts';
import { splitTopLevel } from '../catalog/iceberg/writer-schema.ts';
import {
  appendRows,
  createTableAsSelect,
  createTableFromDefinitions,
  deleteRows,
  localReadOptions,
  updateRows,
  type WriterContext,
} from '../catalog/iceberg/writer.ts';

export type WriteStatement =
  | { kind: 'create'; table: string; ifNotExists: boolean; definitions: string; partitionBy?: string }
  | { kind: 'ctas'; table: string; ifNotExists: boolean; select: string; partitionBy?: string }
  | { kind: 'insert'; table: string; columns?: string[]; select: string }
  | { kind: 'delete'; table: string; where?: string }
  | { kind: 'update'; table: string; assignments: { column: string; expression: string }[]; where?: string };

export interface WriteOutcome {
  operation: WriteStatement['kind'];
  table: string;
  rowsAffected: number;
  /** The snapshot the write committed; null when nothing changed (or CREATE of an empty table). */
  snapshotId: string | null;
  metadataLocation: string;
}

export interface WritePlannerContext extends WriterContext {
  /**
   * Turn the SELECT of an INSERT / CTAS into a query the writer's connection can run, e.g.
   * by running it distributed and returning `SELECT * FROM read_parquet('...')`.
   */
  resolveSelect?: (selectSql: string) => Promise<string>;
}

class Scanner {
  pos = 0;
  constructor(readonly sql: string) {}

  skipSpace(): void {
    for (;;) {
      const rest = this.sql.slice(this.pos);
      // Comments were removed by the lexer (DuckDB's rules: block comments nest) before scanning.
      const m = /^\s+/.exec(rest);
      if (!m) return;
      this.pos += m[0].length;
    }
  }

  /** Consume the keyword sequence if it is next (case-insensitive, whole words). */
  keyword(...words: string[]): boolean {
    const save = this.pos;
    for (const w of words) {
      this.skipSpace();
      const m = /^[A-Za-z_]+/.exec(this.sql.slice(this.pos));
      if (!m || m[0].toUpperCase() !== w) {
        this.pos = save;
        return false;
      }
      this.pos += m[0].length;
    }
    return true;
  }

  identifier(what: string): string {
    this.skipSpace();
    const rest = this.sql.slice(this.pos);
    if (rest.startsWith('"')) {
      let i = 1;
      let out = '';
      while (i < rest.length) {
        if (rest[i] === '"') {
          if (rest[i + 1] === '"') {
            out += '"';
            i += 2;
            continue;
          }
          this.pos += i + 1;
          return out;
        }
        out += rest[i++];
      }
      throw new PuffinError('syntax_error', `unterminated quoted ${what}`);
    }
    const m = /^[A-Za-z_][A-Za-z0-9_$]*/.exec(rest);
    if (!m) throw new PuffinError('syntax_error', `expected ${what} at: ${rest.slice(0, 30) || 'end of statement'}`);
    this.pos += m[0].length;
    return m[0];
  }

  qualifiedName(): string {
    const parts = [this.identifier('a table name')];
    for (;;) {
      this.skipSpace();
      if (this.sql[this.pos] !== '.') break;
      this.pos++;
      parts.push(this.identifier('a table name'));
    }
    return parts.join('.');
  }

  peek(): string {
    this.skipSpace();
    return this.sql[this.pos] ?? '';
  }

  /** The text inside the parentheses starting here; moves past the closing one. */
  parenthesized(): string {
    this.skipSpace();
    if (this.sql[this.pos] !== '(') throw new PuffinError('syntax_error', `expected '(' at: ${this.sql.slice(this.pos, this.pos + 30)}`);
    const end = matchingParen(this.sql, this.pos);
    const inner = this.sql.slice(this.pos + 1, end);
    this.pos = end + 1;
    return inner;
  }

  rest(): string {
    return this.sql.slice(this.pos).trim();
  }
}

/** Index of the ')' matching the '(' at `open`, skipping quoted text and comments. */
function matchingParen(sql: string, open: number): number {
  let depth = 0;
  for (let i = open; i < sql.length; i++) {
    const c = sql[i];
    if (c === "'" || c === '"') {
      const close = sql.indexOf(c, i + 1);
      if (close < 0) break;
      i = close;
    } else if (c === '-' && sql[i + 1] === '-') {
      const nl = sql.indexOf('\n', i);
      i = nl < 0 ? sql.length : nl;
    } else if (c === '(') depth++;
    else if (c === ')' && --depth === 0) return i;
  }
  throw new PuffinError('syntax_error', 'unbalanced parentheses');
}

/** Position of a top-level keyword (outside quotes and parentheses), or -1. */
function topLevelKeyword(sql: string, word: string): number {
  let depth = 0;
  const re = new RegExp(`^${word}\\b`, 'i');
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i];
    if (c === "'" || c === '"') {
      const close = sql.indexOf(c, i + 1);
      if (close < 0) return -1;
      i = close;
    } else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (depth === 0 && /[A-Za-z]/.test(c) && (i === 0 || /[^A-Za-z0-9_$]/.test(sql[i - 1])) && re.test(sql.slice(i))) return i;
  }
  return -1;
}

function stripStatement(sql: string): string {
  return sql.trim().replace(/;\s*$/, '').trim();
}

const QUERY_START = /^\s*(\(|SELECT\b|WITH\b|VALUES\b|FROM\b|TABLE\b)/i;

function partitionedBy(s: Scanner): string | undefined {
  return s.keyword('PARTITIONED', 'BY') ? s.parenthesized() : undefined;
}

/** Recognize a write statement; undefined when `sql` is not one (e.g. a SELECT). */
export function parseWrite(sql: string): WriteStatement | undefined {
  const s = new Scanner(stripStatement(lex(sql).withoutComments));
  if (s.keyword('CREATE')) {
    if (s.keyword('OR', 'REPLACE')) throw new PuffinError('unsupported', 'CREATE OR REPLACE TABLE is not supported for Iceberg tables; drop the table first');
    s.keyword('TEMP') || s.keyword('TEMPORARY');
    if (!s.keyword('TABLE')) return undefined;
    const ifNotExists = s.keyword('IF', 'NOT', 'EXISTS');
    const table = s.qualifiedName();
    if (s.peek() === '(') {
      const definitions = s.parenthesized();
      const partitionBy = partitionedBy(s);
      if (s.keyword('AS')) throw new PuffinError('unsupported', 'CREATE TABLE with both a column list and AS SELECT is not supported; use one or the other');
      if (s.rest()) throw new PuffinError('syntax_error', `unexpected text after the column definitions: ${s.rest().slice(0, 40)}`);
      return { kind: 'create', table, ifNotExists, definitions, ...(partitionBy ? { partitionBy } : {}) };
    }
    const partitionBy = partitionedBy(s);
    if (!s.keyword('AS')) throw new PuffinError('syntax_error', `CREATE TABLE ${table} needs a column list '(...)' or 'AS SELECT ...'`);
    const select = s.rest();
    if (!QUERY_START.test(select)) throw new PuffinError('syntax_error', `CREATE TABLE ${table} AS must be followed by a query`);
    return { kind: 'ctas', table, ifNotExists, select, ...(partitionBy ? { partitionBy } : {}) };
  }
  if (s.keyword('INSERT')) {
    if (s.keyword('OR')) throw new PuffinError('unsupported', 'INSERT OR REPLACE / OR IGNORE is not supported for Iceberg tables (they have no primary keys)');
    if (!s.keyword('INTO')) throw new PuffinError('syntax_error', 'expected INSERT INTO');
    const table = s.qualifiedName();
    let columns: string[] | undefined;
    if (s.peek() === '(') {
      const save = s.pos;
      const inner = s.parenthesized();
      if (QUERY_START.test(inner)) s.pos = save;
      else columns = splitTopLevel(inner).map((c) => new Scanner(c).identifier('a column name'));
    }
    if (s.keyword('DEFAULT', 'VALUES')) throw new PuffinError('unsupported', 'INSERT ... DEFAULT VALUES is not supported (Iceberg v2 columns have no defaults)');
    const select = s.rest();
    if (!QUERY_START.test(select)) throw new PuffinError('syntax_error', `INSERT INTO ${table} must be followed by SELECT ... or VALUES ...`);
    if (topLevelKeyword(select, 'RETURNING') >= 0 || topLevelKeyword(select, 'ON') >= 0 && /\bON\s+CONFLICT\b/i.test(select)) {
      throw new PuffinError('unsupported', 'INSERT ... RETURNING / ON CONFLICT is not supported for Iceberg tables');
    }
    return { kind: 'insert', table, ...(columns ? { columns } : {}), select };
  }
  if (s.keyword('DELETE')) {
    if (!s.keyword('FROM')) throw new PuffinError('syntax_error', 'expected DELETE FROM');
    const table = s.qualifiedName();
    const rest = s.rest();
    if (!rest) return { kind: 'delete', table };
    const r = new Scanner(rest);
    if (!r.keyword('WHERE')) throw new PuffinError('unsupported', `DELETE supports only a WHERE clause here, got: ${rest.slice(0, 40)}`);
    return { kind: 'delete', table, where: r.rest() };
  }
  if (s.keyword('UPDATE')) {
    const table = s.qualifiedName();
    if (!s.keyword('SET')) throw new PuffinError('syntax_error', `expected SET after UPDATE ${table}`);
    const rest = s.rest();
    const at = topLevelKeyword(rest, 'WHERE');
    const setText = at < 0 ? rest : rest.slice(0, at);
    if (topLevelKeyword(setText, 'FROM') >= 0) throw new PuffinError('unsupported', 'UPDATE ... FROM is not supported for Iceberg tables');
    const assignments = splitTopLevel(setText).map((a) => {
      const sc = new Scanner(a);
      const column = sc.identifier('a column name');
      sc.skipSpace();
      if (sc.sql[sc.pos] !== '=') throw new PuffinError('syntax_error', `expected 'column = expression' in SET, got: ${a}`);
      sc.pos++;
      const expression = sc.rest();
      if (!expression) throw new PuffinError('syntax_error', `SET ${column} = needs an expression`);
      return { column, expression };
    });
    if (assignments.length === 0) throw new PuffinError('syntax_error', 'UPDATE needs at least one SET assignment');
    const where = at < 0 ? undefined : rest.slice(at + 5).trim();
    if (where !== undefined && !where) throw new PuffinError('syntax_error', 'WHERE needs a condition');
    return { kind: 'update', table, assignments, ...(where !== undefined ? { where } : {}) };
  }
  return undefined;
}

/** Temp views for the catalog's tables a query names, so it can read them on `ctx.conn`. */
async function withTableViews<T>(ctx: WritePlannerContext, selectSql: string, fn: (sql: string) => Promise<T>): Promise<T> {
  if (ctx.resolveSelect) return fn(await ctx.resolveSelect(selectSql));
  const views: string[] = [];
  try {
    for (const p of await ctx.store.list()) {
      if (p.name.includes('.') || !new RegExp(`\\b${p.name.replace(/[^a-z0-9_]/gi, '')}\\b`, 'i').test(selectSql)) continue;
      const t = await loadTable(ctx.store, p.name, ctx.io);
      const scan = await planTableScan({ metadataLocation: t.metadataLocation, tableUri: t.metadata.location, metadata: t.metadata, io: ctx.io });
      await ctx.conn.run(`CREATE OR REPLACE TEMP VIEW ${sqlIdent(p.name)} AS ${buildIcebergReadSql(scan, undefined, await localReadOptions(ctx, scan.dataFiles))}`);
      views.push(p.name);
    }
    return await fn(selectSql);
  } finally {
    for (const v of views) await ctx.conn.run(`DROP VIEW IF EXISTS ${sqlIdent(v)}`).catch(() => undefined);
  }
}

/** The SELECT feeding an INSERT with a column list: named columns in place, NULL elsewhere. */
async function insertProjection(ctx: WritePlannerContext, table: string, columns: string[], selectSql: string): Promise<string> {
  const t = await loadTable(ctx.store, table, ctx.io);
  const schema = t.metadata.schemas.find((s) => s.schemaId === t.metadata.currentSchemaId);
  // By the names reads expose (columns differing only by case renamed, column-names.ts).
  const fields = schema ? exposedSchema(schema).fields : [];
  const index = new Map<number, number>();
  columns.forEach((c, i) => {
    const f = fields.find((x) => x.name === c) ?? fields.find((x) => x.name.toLowerCase() === c.toLowerCase());
    if (!f) throw new PuffinError('binder_error', `table '${table}' has no column '${c}' (columns: ${fields.map((x) => x.name).join(', ')})`);
    if (index.has(f.id)) throw new PuffinError('bad_request', `column '${f.name}' is listed twice`);
    index.set(f.id, i);
  });
  const aliases = columns.map((_, i) => `__c${i}`);
  const projection = fields.map((f) => (index.has(f.id) ? `__i.__c${index.get(f.id)}` : 'NULL'));
  return `SELECT ${projection.join(', ')} FROM (${selectSql}) __i(${aliases.join(', ')})`;
}

/** Run one write statement. Throws PuffinError('unsupported') when `sql` is not a write. */
export async function executeWrite(sql: string, ctx: WritePlannerContext): Promise<WriteOutcome> {
  const st = parseWrite(sql);
  if (!st) throw new PuffinError('unsupported', 'not a write statement (expected CREATE TABLE, INSERT, DELETE or UPDATE)');
  return executeWriteStatement(st, ctx);
}

export async function executeWriteStatement(st: WriteStatement, ctx: WritePlannerContext): Promise<WriteOutcome> {
  const done = (r: { rowsAffected: number; snapshotId: string | null; metadataLocation: string }): WriteOutcome => ({
    operation: st.kind,
    table: st.table,
    rowsAffected: r.rowsAffected,
    snapshotId: r.snapshotId,
    metadataLocation: r.metadataLocation,
  });
  const options = (partitionBy?: string): { partitionBy?: string } => (partitionBy ? { partitionBy } : {});
  switch (st.kind) {
    case 'create': {
      const existing = await ctx.store.get(st.table);
      if (existing && st.ifNotExists) return done({ rowsAffected: 0, snapshotId: null, metadataLocation: existing });
      return done(await createTableFromDefinitions(ctx, st.table, st.definitions, options(st.partitionBy)));
    }
    case 'ctas': {
      const existing = await ctx.store.get(st.table);
      if (existing && st.ifNotExists) return done({ rowsAffected: 0, snapshotId: null, metadataLocation: existing });
      return done(await withTableViews(ctx, st.select, (select) => createTableAsSelect(ctx, st.table, select, options(st.partitionBy))));
    }
    case 'insert':
      return done(
        await withTableViews(ctx, st.select, async (select) => {
          const feed = st.columns ? await insertProjection(ctx, st.table, st.columns, select) : select;
          return appendRows(ctx, st.table, feed);
        }),
      );
    case 'delete':
      return done(await deleteRows(ctx, st.table, st.where ?? 'true'));
    case 'update':
      return done(await updateRows(ctx, st.table, st.assignments, st.where ?? 'true'));
  }
}
