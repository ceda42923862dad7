// SQL writes to Iceberg tables: recognizing CREATE TABLE, CREATE TABLE AS SELECT, INSERT,
// DELETE, UPDATE, MERGE INTO, ALTER TABLE, TRUNCATE and DROP TABLE and running them through
// the Iceberg writer (DDL: catalog/iceberg/ddl.ts; MERGE: catalog/iceberg/merge.ts). DuckDB's json_serialize_sql
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
import { lex, topLevelKeyword } from '../sql/lexer.ts';
import { sqlIdent } from '../sql/quote.ts';
import { buildIcebergReadSql } from '../catalog/iceberg/read.ts';
import { planTableScan } from '../catalog/iceberg/scan.ts';
import { loadTable } from '../catalog/iceberg/commit.ts';
import { exposedSchema } from '../catalog/iceberg/column-names.ts';
import { splitTopLevel } from '../catalog/iceberg/writer-schema.ts';
import { alterTable, checkSettableProperties, dropTable, truncateTable, type AlterAction } from '../catalog/iceberg/ddl.ts';
import { mergeRows, type MergeContext, type MergeStatement } from '../catalog/iceberg/merge.ts';
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
  | { kind: 'create'; table: string; ifNotExists: boolean; definitions: string; partitionBy?: string; properties?: Record<string, string> }
  | { kind: 'ctas'; table: string; ifNotExists: boolean; select: string; partitionBy?: string; properties?: Record<string, string> }
  | { kind: 'insert'; table: string; columns?: string[]; select: string }
  | { kind: 'delete'; table: string; where?: string }
  | { kind: 'update'; table: string; assignments: { column: string; expression: string }[]; where?: string }
  | { kind: 'alter'; table: string; ifExists: boolean; action: AlterAction }
  | { kind: 'drop'; table: string; ifExists: boolean; purge: boolean }
  | { kind: 'truncate'; table: string }
  | { kind: 'merge'; table: string; merge: MergeStatement };

export interface WriteOutcome {
  operation: WriteStatement['kind'];
  table: string;
  rowsAffected: number;
  /** The snapshot the write committed; null when nothing changed (or CREATE of an empty table). */
  snapshotId: string | null;
  metadataLocation: string;
}

export interface WritePlannerContext extends WriterContext, MergeContext {
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

function stripStatement(sql: string): string {
  return sql.trim().replace(/;\s*$/, '').trim();
}

const QUERY_START = /^\s*(\(|SELECT\b|WITH\b|VALUES\b|FROM\b|TABLE\b)/i;

function partitionedBy(s: Scanner): string | undefined {
  return s.keyword('PARTITIONED', 'BY') ? s.parenthesized() : undefined;
}

/** `('property' = 'value', ...)`, as ALTER TABLE ... SET and CREATE TABLE ... WITH take it. */
function propertyList(s: Scanner, what: string): Record<string, string> {
  const properties: Record<string, string> = {};
  for (const item of splitTopLevel(s.parenthesized())) {
    const eq = item.indexOf('=', item.startsWith("'") ? item.indexOf("'", 1) : 0);
    const key = stringLiteral(item.slice(0, eq)) ?? item.slice(0, eq).trim();
    const value = eq < 0 ? undefined : stringLiteral(item.slice(eq + 1));
    if (eq < 0 || value === undefined || !/^[A-Za-z0-9_.-]+$/.test(key)) throw new PuffinError('syntax_error', `expected 'property' = 'value' in ${what} (...), got: ${item}`);
    properties[key] = value;
  }
  return properties;
}

/** CREATE TABLE's `[PARTITIONED BY (...)] [WITH ('property' = 'value', ...)]`. */
function createOptions(s: Scanner): { partitionBy?: string; properties?: Record<string, string> } {
  const partitionBy = partitionedBy(s);
  const properties = s.keyword('WITH') && s.peek() === '(' ? propertyList(s, 'CREATE TABLE ... WITH') : undefined;
  if (properties) {
    // format-version is checked where the table is made (commit.ts requestedFormatVersion).
    const { 'format-version': _version, ...rest } = properties;
    checkSettableProperties(rest, 'CREATE TABLE ... WITH');
  }
  return { ...(partitionBy ? { partitionBy } : {}), ...(properties ? { properties } : {}) };
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
      const options = createOptions(s);
      if (s.keyword('AS')) throw new PuffinError('unsupported', 'CREATE TABLE with both a column list and AS SELECT is not supported; use one or the other');
      if (s.rest()) throw new PuffinError('syntax_error', `unexpected text after the column definitions: ${s.rest().slice(0, 40)}`);
      return { kind: 'create', table, ifNotExists, definitions, ...options };
    }
    const options = createOptions(s);
    if (!s.keyword('AS')) throw new PuffinError('syntax_error', `CREATE TABLE ${table} needs a column list '(...)' or 'AS SELECT ...'`);
    const select = s.rest();
    if (!QUERY_START.test(select)) throw new PuffinError('syntax_error', `CREATE TABLE ${table} AS must be followed by a query`);
    return { kind: 'ctas', table, ifNotExists, select, ...options };
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
  if (s.keyword('ALTER')) return parseAlter(s);
  if (s.keyword('DROP')) {
    if (!s.keyword('TABLE')) return undefined;
    const ifExists = s.keyword('IF', 'EXISTS');
    const table = s.qualifiedName();
    const purge = s.keyword('PURGE');
    if (s.rest()) throw new PuffinError('unsupported', `DROP TABLE supports only [IF EXISTS] name [PURGE], got: ${s.rest().slice(0, 40)}`);
    return { kind: 'drop', table, ifExists, purge };
  }
  if (s.keyword('TRUNCATE')) {
    s.keyword('TABLE');
    const table = s.qualifiedName();
    if (s.rest()) throw new PuffinError('unsupported', `TRUNCATE supports only one table name, got: ${s.rest().slice(0, 40)}`);
    return { kind: 'truncate', table };
  }
  if (s.keyword('MERGE')) return parseMerge(s);
  return undefined;
}

/** A SQL string literal's value ('it''s' -> it's), or undefined when `text` is not one. */
function stringLiteral(text: string): string | undefined {
  const m = /^'((?:[^']|'')*)'$/.exec(text.trim());
  return m ? m[1].replace(/''/g, "'") : undefined;
}

/** ALTER TABLE [IF EXISTS] name <action> (after ALTER). */
function parseAlter(s: Scanner): WriteStatement | undefined {
  if (!s.keyword('TABLE')) return undefined;
  const ifExists = s.keyword('IF', 'EXISTS');
  const table = s.qualifiedName();
  const done = (action: AlterAction): WriteStatement => {
    if (s.rest()) throw new PuffinError('unsupported', `unexpected text in ALTER TABLE ${table}: ${s.rest().slice(0, 40)}`);
    return { kind: 'alter', table, ifExists, action };
  };
  if (s.keyword('ADD')) {
    if (s.keyword('PARTITION')) throw new PuffinError('unsupported', 'ALTER TABLE ... ADD PARTITION FIELD is not supported; use ALTER TABLE ... SET PARTITIONED BY (...) with the whole new partitioning');
    s.keyword('COLUMN');
    const ifNotExists = s.keyword('IF', 'NOT', 'EXISTS');
    const definition = s.rest();
    const column = new Scanner(definition).identifier('a column name');
    s.pos = s.sql.length;
    return done({ op: 'add_column', column, definition, ifNotExists });
  }
  if (s.keyword('DROP')) {
    s.keyword('COLUMN');
    const colIfExists = s.keyword('IF', 'EXISTS');
    const column = s.identifier('a column name');
    if (s.keyword('CASCADE')) throw new PuffinError('unsupported', 'DROP COLUMN ... CASCADE is not supported');
    s.keyword('RESTRICT');
    return done({ op: 'drop_column', column, ifExists: colIfExists });
  }
  if (s.keyword('RENAME')) {
    if (s.keyword('TO')) return done({ op: 'rename_table', to: s.qualifiedName() });
    s.keyword('COLUMN');
    const column = s.identifier('a column name');
    if (!s.keyword('TO')) throw new PuffinError('syntax_error', `expected RENAME COLUMN ${column} TO new_name`);
    return done({ op: 'rename_column', column, to: s.identifier('a column name') });
  }
  if (s.keyword('ALTER')) {
    s.keyword('COLUMN');
    const column = s.identifier('a column name');
    if (s.keyword('SET', 'NOT', 'NULL')) return done({ op: 'set_not_null', column });
    if (s.keyword('DROP', 'NOT', 'NULL')) return done({ op: 'drop_not_null', column });
    if (s.keyword('SET', 'DEFAULT') || s.keyword('DROP', 'DEFAULT')) throw new PuffinError('unsupported', 'column defaults are not supported (Iceberg format v2 has none)');
    s.keyword('SET', 'DATA');
    if (!s.keyword('TYPE')) throw new PuffinError('syntax_error', `expected ALTER COLUMN ${column} TYPE type, SET NOT NULL or DROP NOT NULL`);
    const type = s.rest();
    if (topLevelKeyword(type, 'USING') >= 0) throw new PuffinError('unsupported', 'ALTER COLUMN ... TYPE ... USING is not supported: Iceberg changes a type only by promotion, without rewriting the data');
    if (!type) throw new PuffinError('syntax_error', `ALTER COLUMN ${column} TYPE needs a type`);
    s.pos = s.sql.length;
    return done({ op: 'set_type', column, type });
  }
  if (s.keyword('SET', 'PARTITIONED', 'BY')) return done({ op: 'set_partitioning', partitionBy: s.parenthesized() });
  if (s.keyword('RESET', 'PARTITIONED', 'BY')) return done({ op: 'set_partitioning', partitionBy: '' });
  if (s.keyword('SET') && s.peek() === '(') return done({ op: 'set_properties', properties: propertyList(s, 'ALTER TABLE ... SET') });
  throw new PuffinError('unsupported', `ALTER TABLE ${table}: supported are ADD COLUMN, DROP COLUMN, RENAME COLUMN, RENAME TO, ALTER COLUMN ... TYPE / SET NOT NULL / DROP NOT NULL, SET PARTITIONED BY (...), RESET PARTITIONED BY and SET ('property' = 'value')`);
}

const MERGE_WORDS = new Set(['USING', 'ON', 'WHEN', 'AS']);

/** An optional `[AS] alias` before one of `stop` (MERGE's target and source). */
function optionalAlias(s: Scanner): string | undefined {
  if (s.keyword('AS')) return s.identifier('an alias');
  const save = s.pos;
  s.skipSpace();
  const m = /^[A-Za-z_][A-Za-z0-9_$]*/.exec(s.sql.slice(s.pos));
  if ((m && !MERGE_WORDS.has(m[0].toUpperCase())) || s.sql[s.pos] === '"') return s.identifier('an alias');
  s.pos = save;
  return undefined;
}

/** MERGE INTO target [[AS] t] USING source [[AS] s [(cols)]] ON ... WHEN ... (after MERGE). */
function parseMerge(s: Scanner): WriteStatement {
  if (!s.keyword('INTO')) throw new PuffinError('syntax_error', 'expected MERGE INTO');
  const table = s.qualifiedName();
  const targetAlias = optionalAlias(s);
  if (!s.keyword('USING')) throw new PuffinError('syntax_error', `expected USING after MERGE INTO ${table}`);
  let sourceSql: string;
  let sourceName: string | undefined;
  if (s.peek() === '(') {
    sourceSql = s.parenthesized().trim();
    if (!QUERY_START.test(sourceSql)) throw new PuffinError('syntax_error', 'MERGE ... USING ( ... ) must hold a query');
  } else {
    sourceName = s.qualifiedName();
    sourceSql = `SELECT * FROM ${sourceName.split('.').map(sqlIdent).join('.')}`;
  }
  const sourceAlias = optionalAlias(s);
  const sourceColumns = sourceAlias && s.peek() === '(' ? s.parenthesized() : undefined;
  const rest = s.rest();
  if (!/^ON\b/i.test(rest)) throw new PuffinError('syntax_error', `expected ON <condition> after MERGE ... USING source, got: ${rest.slice(0, 40)}`);
  if (topLevelKeyword(rest, 'RETURNING') >= 0) throw new PuffinError('unsupported', 'MERGE ... RETURNING is not supported for Iceberg tables');
  if (topLevelKeyword(rest, 'WHEN') < 0) throw new PuffinError('syntax_error', 'MERGE needs at least one WHEN [NOT] MATCHED clause');
  const last = (name: string) => name.split('.').pop()!;
  return {
    kind: 'merge',
    table,
    merge: {
      table,
      targetAlias: targetAlias ?? last(table),
      sourceSql,
      sourceAlias: sourceAlias ?? (sourceName ? last(sourceName) : '__source'),
      ...(sourceColumns ? { sourceColumns } : {}),
      clauses: rest,
    },
  };
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
async function insertProjection(t: Awaited<ReturnType<typeof loadTable>>, table: string, columns: string[], selectSql: string): Promise<string> {
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
  if (!st) throw new PuffinError('unsupported', 'not a write statement (expected CREATE TABLE, INSERT, DELETE, UPDATE, MERGE INTO, ALTER TABLE, TRUNCATE or DROP TABLE)');
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
  const options = (partitionBy?: string, properties?: Record<string, string>): { partitionBy?: string; properties?: Record<string, string> } =>
    ({ ...(partitionBy ? { partitionBy } : {}), ...(properties ? { properties } : {}) });
  switch (st.kind) {
    case 'create': {
      const existing = await ctx.store.get(st.table);
      if (existing && st.ifNotExists) return done({ rowsAffected: 0, snapshotId: null, metadataLocation: existing });
      return done(await createTableFromDefinitions(ctx, st.table, st.definitions, options(st.partitionBy, st.properties)));
    }
    case 'ctas': {
      const existing = await ctx.store.get(st.table);
      if (existing && st.ifNotExists) return done({ rowsAffected: 0, snapshotId: null, metadataLocation: existing });
      return done(await withTableViews(ctx, st.select, (select) => createTableAsSelect(ctx, st.table, select, options(st.partitionBy, st.properties))));
    }
    case 'insert':
      return done(
        await withTableViews(ctx, st.select, async (select) => {
          // One version of the table for both the column list and the write: an ALTER
          // committed in between must not leave rows shaped for the old schema.
          const base = st.columns ? await loadTable(ctx.store, st.table, ctx.io) : undefined;
          const feed = st.columns && base ? await insertProjection(base, st.table, st.columns, select) : select;
          return appendRows(ctx, st.table, feed, base);
        }),
      );
    case 'delete':
      return done(await deleteRows(ctx, st.table, st.where ?? 'true'));
    case 'update':
      return done(await updateRows(ctx, st.table, st.assignments, st.where ?? 'true'));
    case 'alter': {
      if (st.ifExists && !(await ctx.store.get(st.table))) return done({ rowsAffected: 0, snapshotId: null, metadataLocation: '' });
      return done(await alterTable(ctx, st.table, st.action));
    }
    case 'drop':
      return done(await dropTable(ctx, st.table, { ifExists: st.ifExists, purge: st.purge }));
    case 'truncate':
      return done(
        await truncateTable(ctx, st.table, async (base) => {
          const scan = await planTableScan({ metadataLocation: base.metadataLocation, tableUri: base.metadata.location, metadata: base.metadata, io: ctx.io });
          if (scan.dataFiles.every((f) => f.deletes.length === 0)) return scan.dataFiles.reduce((n, f) => n + f.rowCount, 0);
          const read = buildIcebergReadSql(scan, undefined, await localReadOptions(ctx, scan.dataFiles));
          return Number((await ctx.conn.runAndReadAll(`SELECT count(*) FROM (${read}) __t`)).getRowsJson()[0][0]);
        }),
      );
    case 'merge':
      return done(await withTableViews(ctx, st.merge.sourceSql, (source) => mergeRows(ctx, { ...st.merge, sourceSql: source })));
  }
}
