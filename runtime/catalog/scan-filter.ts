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

function columnOf(e: AstNode | undefined): string | undefined {
  if (e?.class !== 'COLUMN_REF' || !Array.isArray(e.column_names)) return undefined;
  return String(e.column_names[e.column_names.length - 1]);
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

function draft(e: AstNode): Draft {
  if (e.class === 'CONJUNCTION') {
    const args = (e.children as AstNode[]).map(draft);
    if (e.type === 'CONJUNCTION_AND') return { kind: 'and', args };
    if (e.type === 'CONJUNCTION_OR') return args.some((a) => a.kind === 'keep') ? { kind: 'keep' } : { kind: 'or', args };
    return { kind: 'keep' };
  }
  if (e.class === 'COMPARISON' && COMPARISONS[e.type]) {
    const { op, flipped } = COMPARISONS[e.type];
    const left = columnOf(e.left);
    const right = columnOf(e.right);
    if (left !== undefined && isConstant(e.right)) return { kind: 'leaf', constants: [e.right], build: ([v]) => ({ op, column: left, value: v }) };
    if (right !== undefined && isConstant(e.left)) return { kind: 'leaf', constants: [e.left], build: ([v]) => ({ op: flipped, column: right, value: v }) };
    return { kind: 'keep' };
  }
  if (e.class === 'OPERATOR' && e.type === 'COMPARE_IN') {
    const [first, ...rest] = e.children as AstNode[];
    const column = columnOf(first);
    if (column === undefined || !rest.every(isConstant)) return { kind: 'keep' };
    return { kind: 'leaf', constants: rest, build: (values) => ({ op: 'in', column, values }) };
  }
  if (e.class === 'BETWEEN') {
    const column = columnOf(e.input);
    if (column === undefined || !isConstant(e.lower) || !isConstant(e.upper)) return { kind: 'keep' };
    return { kind: 'leaf', constants: [e.lower, e.upper], build: ([low, high]) => ({ op: 'between', column, low, high }) };
  }
  if (e.class === 'OPERATOR' && (e.type === 'OPERATOR_IS_NULL' || e.type === 'OPERATOR_IS_NOT_NULL')) {
    const column = columnOf(e.children?.[0]);
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

/**
 * The ScanPredicate for `where` (SQL, as after WHERE), or undefined when nothing in it can
 * prune. Throws 'syntax_error' for text DuckDB cannot parse as a predicate.
 */
export async function scanPredicateFromSql(engine: Engine, where: string): Promise<ScanPredicate | undefined> {
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
  const d = draft(root.where_clause);
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
