// A SQL predicate (the text after WHERE) turned into the scan planner's ScanPredicate, for
// `puffindb table scan NAME --where "..."`. DuckDB parses it (SELECT 1 FROM t WHERE <pred>,
// through json_serialize_sql) and evaluates every constant, so literals mean what they
// mean in a query (DATE '1994-01-01', 0.05, -3, 'x'). Pruning may only drop files that cannot
// match, so anything not understood means "keep": an unsupported conjunct of an AND is left
// out, and an OR with an unsupported branch keeps everything.

import type { Engine } from '../engine/engine.ts';
import { PuffinError, toPuffinError } from '../errors.ts';
import { parseStatement, printNodes, type AstNode } from '../sql/parse.ts';
import type { ComparisonOp, ScanPredicate } from './iceberg/predicate.ts';
import type { LiteralInput } from './iceberg/literals.ts';

const COMPARISONS: Record<string, { op: ComparisonOp; flipped: ComparisonOp }> = {
  COMPARE_EQUAL: { op: '=', flipped: '=' },
  COMPARE_NOTEQUAL: { op: '!=', flipped: '!=' },
  COMPARE_LESSTHAN: { op: '<', flipped: '>' },
  COMPARE_LESSTHANOREQUALTO: { op: '<=', flipped: '>=' },
  COMPARE_GREATERTHAN: { op: '>', flipped: '<' },
  COMPARE_GREATERTHANOREQUALTO: { op: '>=', flipped: '<=' },
};

const EMPTY_FROM = { type: 'EMPTY', alias: '', sample: null, query_location: 0 };

/**
 * The column a reference names, when it names one (not a struct field below it). A name
 * alone is a column. `q.c`, with q one of `qualifiers` (the names the predicate's table
 * answers to), is its column c: DuckDB binds a table's name with that column first (one
 * without it binds to nothing here: no file is dropped). Every other dotted name is a
 * struct field path (`s.a`: the field a of column s) or names something else, and is not
 * understood: it keeps files, and is never read as column `a`. The planner's references
 * are relative to their table (scope.ts unqualify): `qualifiers` is empty for them.
 */
function columnOf(e: AstNode | undefined, qualifiers: readonly string[]): string | undefined {
  if (e?.class !== 'COLUMN_REF' || !Array.isArray(e.column_names)) return undefined;
  const names = e.column_names.map(String);
  if (names.length === 1) return names[0];
  // (Not `t."x.y"`, which could be t's field "x.y" when t has no such column; scan planning
  // would read it as the field y of a column x.)
  if (names.length === 2 && qualifiers.includes(names[0].toLowerCase()) && !names[1].includes('.')) return names[1];
  return undefined;
}

function isConstant(e: AstNode | undefined): boolean {
  if (!e) return false;
  if (e.class === 'CONSTANT') return true;
  // Typed literals (DATE '...', -5, CAST('x' AS ...)) are casts and operators over constants.
  if (e.class === 'CAST') return isConstant(e.child);
  if (e.class === 'FUNCTION' && e.function_name === '-' && e.children?.length === 1) return isConstant(e.children[0]);
  return false;
}

/** A leaf waiting for its constants' values. */
type Draft =
  | { kind: 'keep' }
  | { kind: 'and' | 'or'; args: Draft[] }
  | { kind: 'leaf'; build: (values: (LiteralInput | null)[]) => ScanPredicate; constants: AstNode[] };

/** Whether comparing `column` with constant `value` may be judged from the constant's text
 *  parsed as the column's type (the planner's filters: see scanPredicateFromAst). */
type Accept = (column: string, value: AstNode) => boolean;

function draft(e: AstNode, qualifiers: readonly string[], accept?: Accept): Draft {
  if (e.class === 'CONJUNCTION') {
    const args = (e.children as AstNode[]).map((c) => draft(c, qualifiers, accept));
    if (e.type === 'CONJUNCTION_AND') return { kind: 'and', args };
    if (e.type === 'CONJUNCTION_OR') return args.some((a) => a.kind === 'keep') ? { kind: 'keep' } : { kind: 'or', args };
    return { kind: 'keep' };
  }
  if (e.class === 'COMPARISON' && COMPARISONS[e.type]) {
    const { op, flipped } = COMPARISONS[e.type];
    const left = columnOf(e.left, qualifiers);
    const right = columnOf(e.right, qualifiers);
    if (accept && !(left !== undefined ? accept(left, e.right) : right !== undefined && accept(right, e.left))) return { kind: 'keep' };
    if (left !== undefined && isConstant(e.right)) return { kind: 'leaf', constants: [e.right], build: ([v]) => ({ op, column: left, value: v }) };
    if (right !== undefined && isConstant(e.left)) return { kind: 'leaf', constants: [e.left], build: ([v]) => ({ op: flipped, column: right, value: v }) };
    return { kind: 'keep' };
  }
  if (e.class === 'OPERATOR' && e.type === 'COMPARE_IN') {
    const [first, ...rest] = e.children as AstNode[];
    const column = columnOf(first, qualifiers);
    if (column === undefined || !rest.every(isConstant) || (accept && !rest.every((v) => accept(column, v)))) return { kind: 'keep' };
    return { kind: 'leaf', constants: rest, build: (values) => ({ op: 'in', column, values }) };
  }
  if (e.class === 'BETWEEN') {
    const column = columnOf(e.input, qualifiers);
    if (column === undefined || !isConstant(e.lower) || !isConstant(e.upper) || (accept && !(accept(column, e.lower) && accept(column, e.upper)))) return { kind: 'keep' };
    return { kind: 'leaf', constants: [e.lower, e.upper], build: ([low, high]) => ({ op: 'between', column, low, high }) };
  }
  if (e.class === 'OPERATOR' && (e.type === 'OPERATOR_IS_NULL' || e.type === 'OPERATOR_IS_NOT_NULL')) {
    const column = columnOf(e.children?.[0], qualifiers);
    if (column === undefined) return { kind: 'keep' };
    const op = e.type === 'OPERATOR_IS_NULL' ? 'is_null' : 'not_null';
    return { kind: 'leaf', constants: [], build: () => ({ op, column }) };
  }
  return { kind: 'keep' };
}

function constantsOf(d: Draft, into: AstNode[] = []): AstNode[] {
  if (d.kind === 'leaf') into.push(...d.constants);
  if (d.kind === 'and' || d.kind === 'or') for (const a of d.args) constantsOf(a, into);
  return into;
}

function finish(d: Draft, values: (LiteralInput | null)[], next: { i: number }): ScanPredicate | undefined {
  switch (d.kind) {
    case 'keep':
      return undefined;
    case 'leaf': {
      const mine = values.slice(next.i, next.i + d.constants.length);
      next.i += d.constants.length;
      return d.build(mine);
    }
    case 'and': {
      const args = d.args.map((a) => finish(a, values, next)).filter((a): a is ScanPredicate => a !== undefined);
      return args.length === 0 ? undefined : args.length === 1 ? args[0] : { op: 'and', args };
    }
    case 'or': {
      const args = d.args.map((a) => finish(a, values, next));
      if (args.some((a) => a === undefined)) return undefined;
      return { op: 'or', args: args as ScanPredicate[] };
    }
  }
}

const NUMERIC = new Set(['TINYINT', 'SMALLINT', 'INTEGER', 'BIGINT', 'HUGEINT', 'UTINYINT', 'USMALLINT', 'UINTEGER', 'UBIGINT', 'UHUGEINT', 'DECIMAL', 'FLOAT', 'DOUBLE', 'REAL', 'INT', 'INT4', 'INT8', 'INT2', 'INT1', 'LONG', 'NUMERIC', 'FLOAT4', 'FLOAT8']);
const TIMESTAMP = new Set(['TIMESTAMP', 'DATETIME', 'TIMESTAMP_US']);
const TIMESTAMPTZ = new Set(['TIMESTAMP WITH TIME ZONE', 'TIMESTAMPTZ', 'TIMESTAMP_TZ']);

/** A type's family for comparisons: numbers together, each other type by itself. */
function family(type: string): string {
  const base = type.toUpperCase().replace(/\(.*$/, '').trim();
  if (NUMERIC.has(base)) return 'number';
  if (TIMESTAMP.has(base)) return 'timestamp';
  if (TIMESTAMPTZ.has(base)) return 'timestamptz';
  if (base === 'STRING' || base === 'TEXT') return 'VARCHAR';
  return base;
}

/** The type a constant expression has before DuckDB compares it (CONSTANT, CAST, negation). */
function constantType(e: AstNode): string | undefined {
  if (e.class === 'CONSTANT') return (e.value as { type?: { id?: string } } | undefined)?.type?.id;
  if (e.class === 'CAST') return (e.cast_type as { id?: string } | undefined)?.id;
  if (e.class === 'FUNCTION' && e.function_name === '-' && e.children?.length === 1) return constantType(e.children[0]);
  return undefined;
}

/**
 * The ScanPredicate for a query's pushable filter `where` (a planner AST, column references
 * unqualified, constants already folded to literals), or undefined when nothing in it can
 * prune. Only comparisons whose outcome DuckDB decides the way scan planning would are
 * kept: the constant's text read as the column's type, so a bare string literal (which
 * DuckDB casts to the column's type) against any column, or a constant of the column's own
 * family (numbers with numbers, dates with dates, ...). `'05' = 5` style mixtures, where
 * DuckDB would cast the column instead, keep every file. `constants` returns each
 * constant's value as text (NULL as null), evaluated the caller's way.
 */
export async function scanPredicateFromAst(
  where: AstNode,
  columnType: (column: string) => string | undefined,
  constants: (exprs: AstNode[]) => Promise<(string | null)[]>,
): Promise<ScanPredicate | undefined> {
  const accept: Accept = (column, value) => {
    const type = columnType(column);
    const ct = constantType(value);
    if (type === undefined || ct === undefined) return false;
    if (value.class === 'CONSTANT' && ct === 'VARCHAR') return true;
    return family(type) === family(ct);
  };
  const d = draft(where, [], accept);
  const exprs = constantsOf(d);
  const values = exprs.length ? await constants(exprs) : [];
  return finish(d, values, { i: 0 });
}

/**
 * The ScanPredicate for `where` (SQL, as after WHERE), or undefined when nothing in it can
 * prune. Throws 'syntax_error' for text DuckDB cannot parse as a predicate. `qualifiers`:
 * the names the predicate's table answers to, so `t.c` is its column c (by default `t`, as
 * `puffindb table scan --where` reads the predicate: SELECT 1 FROM t WHERE ...); no other
 * dotted name prunes (see columnOf). A DELETE or UPDATE predicate, bound over an aliased
 * read of the table (writer.ts: FROM (...) __t), answers to no name: pass [].
 */
export async function scanPredicateFromSql(engine: Engine, where: string, qualifiers: readonly string[] = ['t']): Promise<ScanPredicate | undefined> {
  if (typeof where !== 'string' || where.trim() === '') return undefined;
  if (/;/.test(where.replace(/'(?:[^']|'')*'/g, ''))) throw new PuffinError('bad_request', `--where takes one predicate, not statements: ${where}`);
  let parsed;
  try {
    parsed = await parseStatement(engine, `SELECT 1 FROM t WHERE ${where}`);
  } catch (err) {
    const e = toPuffinError(err);
    throw new PuffinError(e.code === 'internal' ? 'syntax_error' : e.code, `--where "${where}" is not a predicate DuckDB can parse: ${e.message}`);
  }
  const root = parsed.node;
  if (root.type !== 'SELECT_NODE' || !root.where_clause) throw new PuffinError('syntax_error', `--where "${where}" is not a single predicate`);
  const d = draft(root.where_clause, qualifiers.map((q) => q.toLowerCase()));
  const constants = constantsOf(d);
  let values: (LiteralInput | null)[] = [];
  if (constants.length > 0) {
    const casts = constants.map((c) => ({ class: 'CAST', type: 'OPERATOR_CAST', alias: '', query_location: 0, child: c, cast_type: { id: 'VARCHAR', type_info: null }, try_cast: false }));
    const select = { type: 'SELECT_NODE', modifiers: [], cte_map: { map: [] }, select_list: casts, from_table: EMPTY_FROM, where_clause: null, group_expressions: [], group_sets: [], aggregate_handling: 'STANDARD_HANDLING', having: null, sample: null, qualify: null };
    const [sql] = await printNodes(engine, [select]);
    const r = await engine.query(sql).catch((err: unknown) => {
      throw new PuffinError('bad_request', `--where "${where}": ${toPuffinError(err).message}`);
    });
    values = (r.rows[0] ?? []).map((v) => (v === null || v === undefined ? null : String(v)));
  }
  return finish(d, values, { i: 0 });
}
