// Decorrelation: correlated subqueries of a WHERE clause rewritten into uncorrelated ones,
// which then run as materialized steps (materialize.ts) instead of keeping the whole query
// on one node. Three rewrites, each only where it is exact:
//
// - `EXISTS (SELECT ... FROM T WHERE T.a = outer.b AND <T only>)`, a conjunct of the WHERE
//   clause, is `outer.b IN (SELECT T.a FROM T WHERE <T only>)`: a conjunct that is NULL
//   rejects the row as FALSE does, so IN's NULL for a missing match changes nothing.
// - `NOT EXISTS (...)` likewise is `outer.b IS NULL OR NOT (outer.b IN (SELECT T.a FROM T
//   WHERE <T only> AND T.a IS NOT NULL))`: with no NULL in the set, IN is TRUE or FALSE; a
//   NULL outer.b matches nothing, so NOT EXISTS holds for it.
// - `EXISTS (... T.a = outer.b AND ... AND T.c <> outer.x AND <T only>)`: some non-NULL
//   c of the group differs from x exactly when the group's min or max does, so it is a join
//   with `(SELECT T.a AS __k1, ..., min(T.c) AS __mn, max(T.c) AS __mx FROM T WHERE <T only>
//   AND T.c IS NOT NULL GROUP BY T.a, ...) AS d` on the keys and `(d.__mn <> x OR d.__mx <>
//   x)`; NOT EXISTS is a LEFT JOIN of it to the whole FROM clause and `(x IS NULL OR
//   d.__k1 IS NULL OR (d.__mn = x AND d.__mx = x))` (no such group, or all of it equals x).
//   Not for floating point (-0.0 = 0.0) or nested types. (TPC-H Q21.)
// - `x <op> (SELECT f(agg(...)) FROM T WHERE T.a1 = outer.b1 AND ... AND <T only>)`, a
//   conjunct, with aggregates that are NULL over no rows (sum, avg, min, max, ...; never
//   count), is a join with `(SELECT T.a1 AS __k1, ..., f(agg(...)) AS __v FROM T WHERE
//   <T only> GROUP BY T.a1, ...) AS d` on `outer.b1 = d.__k1 AND ...`, the subquery replaced
//   by `d.__v`: a key with no rows gives NULL there and no row of d here, and the comparison
//   rejects both; a NULL outer key matches nothing either way; one row of d per key keeps
//   the row count. Not when the query selects `*` (d's columns would show).
//
// Each rewrite also carries the outer query's restrictions of a key over to the derived
// table or IN set (`transferred`): a conjunct of the WHERE clause that names one outer key
// column alone, `outer.b IN (uncorrelated subquery)` or `outer.b <op> constant`, holds for
// every outer row that survives, and the derived table's rows are only ever matched on
// `inner.a = outer.b`, so `inner.a` may be filtered alike (same column type, so equality is
// plain). TPC-H Q20: lineitem grouped by (partkey, suppkey) only for the 'forest%' parts.
//
// The correlation must be those equalities (and the one inequality) and nothing else: any other reference to the
// outer query, a subquery inside, GROUP BY, LIMIT, DISTINCT or a window in the subquery, or
// a name that cannot be told inner or outer, and the subquery is left as it is.

import type { Column } from '../catalog/types.ts';
import { booleanConstant, colRef, conjunction, conjuncts, expressionChildren, func, mapExpression, operator as op, selectNode, someExpression, withAlias, type AstNode } from './ast.ts';
import { fromBindings, isVolatileFunction, resolveName, type Binding } from './scope.ts';

/** Aggregates whose value over no rows is NULL (so "no group" and "NULL" compare alike). */
const NULL_ON_EMPTY = new Set([
  'sum', 'avg', 'mean', 'min', 'max', 'any_value', 'first', 'last', 'arbitrary', 'median', 'quantile_cont', 'quantile_disc',
  'stddev', 'stddev_samp', 'stddev_pop', 'variance', 'var_samp', 'var_pop', 'arg_min', 'arg_max', 'min_by', 'max_by', 'product', 'fsum', 'kahan_sum', 'sumkahan',
]);

type Side = 'inner' | 'outer' | undefined;

/**
 * Which query a column reference of the subquery names: its own (inner), the outer one, or
 * unknown. DuckDB's order (scope.ts resolveName): every reading in the subquery's own FROM
 * (`x.a` is its table x's column a, else the field a of its column x) before the outer query's.
 */
function sideOf(e: AstNode, inner: Binding[], outer: Binding[]): Side {
  const names = e.column_names as string[];
  const own = resolveName(names, inner);
  if (own !== 'none') return own === 'unknown' ? undefined : 'inner';
  return typeof resolveName(names, outer) === 'string' ? undefined : 'outer';
}

/** The sides of every column an expression references; undefined if it holds a subquery, star or parameter. */
function sidesOf(e: AstNode, inner: Binding[], outer: Binding[]): Set<Side> | undefined {
  const out = new Set<Side>();
  let ok = true;
  const visit = (x: AstNode) => {
    if (!ok) return;
    if (x.class === 'SUBQUERY' || x.class === 'STAR' || x.class === 'PARAMETER' || x.class === 'LAMBDA' || x.class === 'COLUMNS') { ok = false; return; }
    if (x.class === 'COLUMN_REF') out.add(sideOf(x, inner, outer));
    expressionChildren(x).forEach(visit);
  };
  visit(e);
  return ok ? out : undefined;
}

interface Correlation {
  /** Pairs inner column ref = outer column ref. */
  keys: { inner: AstNode; outer: AstNode }[];
  /** At most one pair inner column ref <> outer column ref (see the min/max rewrite of EXISTS). */
  unequal?: { inner: AstNode; outer: AstNode };
  /** The subquery's conjuncts that reference only its own columns. */
  local: AstNode[];
}

/** A subquery's correlation, when it is equalities inner = outer and nothing else. */
function correlationOf(body: AstNode, outer: Binding[], columnsOf: (node: AstNode) => Column[] | undefined): { correlation: Correlation; inner: Binding[] } | undefined {
  if (body?.type !== 'SELECT_NODE') return undefined;
  if ((body.cte_map?.map ?? []).length || (body.group_expressions ?? []).length || body.having || body.qualify || body.sample) return undefined;
  if ((body.modifiers ?? []).length) return undefined;
  const inner = fromBindings(body.from_table, columnsOf, true);
  if (!inner || inner.length === 0) return undefined;
  const keys: Correlation['keys'] = [];
  const local: AstNode[] = [];
  let unequal: Correlation['unequal'];
  for (const c of conjuncts(body.where_clause)) {
    const sides = sidesOf(c, inner, outer);
    if (!sides || sides.has(undefined)) return undefined;
    if (!sides.has('outer')) {
      local.push(c);
      continue;
    }
    if (c.class !== 'COMPARISON' || (c.type !== 'COMPARE_EQUAL' && c.type !== 'COMPARE_NOTEQUAL') || c.left.class !== 'COLUMN_REF' || c.right.class !== 'COLUMN_REF') return undefined;
    const l = sideOf(c.left, inner, outer);
    const r = sideOf(c.right, inner, outer);
    let pair: { inner: AstNode; outer: AstNode };
    if (l === 'inner' && r === 'outer') pair = { inner: c.left, outer: c.right };
    else if (l === 'outer' && r === 'inner') pair = { inner: c.right, outer: c.left };
    else return undefined;
    if (c.type === 'COMPARE_EQUAL') keys.push(pair);
    else if (unequal) return undefined;
    else unequal = pair;
  }
  if (keys.length === 0) return undefined;
  // Nothing else of the subquery may name the outer query.
  for (const item of body.select_list ?? []) {
    const sides = sidesOf(item, inner, outer);
    if (sides && (sides.has('outer') || sides.has(undefined))) return undefined;
  }
  return { correlation: { keys, local, ...(unequal ? { unequal } : {}) }, inner };
}

function selectFrom(list: AstNode[], from: AstNode, where: AstNode[], groups: AstNode[] = []): AstNode {
  return selectNode(list, from, { where_clause: where.length ? conjunction('AND', where) : null, group_expressions: groups, group_sets: groups.length ? [groups.map((_, i) => i)] : [] });
}

function inSubquery(child: AstNode, body: AstNode): AstNode {
  return { class: 'SUBQUERY', type: 'SUBQUERY', alias: '', query_location: 0, subquery_type: 'ANY', subquery: { node: body, named_param_map: [] }, child, comparison_type: 'COMPARE_EQUAL' };
}

export interface Decorrelated {
  /** What was rewritten, for the plan's reason. */
  rewrites: string[];
  /** Put the query back as it was (when the rewritten one does not bind alike). */
  undo(): void;
}

/**
 * Rewrite the correlated subqueries of `root`'s WHERE conjuncts that can be (see above), in
 * place; the nodes of the original query are reused, never changed, so `undo` restores it.
 */
export function decorrelate(root: AstNode, columnsOf: (node: AstNode) => Column[] | undefined, aggregates: ReadonlySet<string>): Decorrelated | undefined {
  if (root.type !== 'SELECT_NODE' || !root.where_clause) return undefined;
  const outer = fromBindings(root.from_table, columnsOf, false);
  if (!outer) return undefined;
  const starred = (root.select_list as AstNode[]).some((i) => someExpression(i, (e) => e.class === 'STAR' || e.class === 'COLUMNS'));
  const originalWhere = root.where_clause;
  const originalFrom = root.from_table;
  const rewrites: string[] = [];
  const derived: AstNode[] = [];
  /** Derived tables LEFT JOINed to the whole FROM clause (NOT EXISTS with an inequality). */
  const leftJoined: { ref: AstNode; on: AstNode }[] = [];
  const out: AstNode[] = [];
  const all = conjuncts(originalWhere);
  for (const c of all) {
    /** The WHERE's other conjuncts, whose restrictions of a key `transferred` carries over. */
    const others = all.filter((x) => x !== c);
    const negated = (c.class === 'OPERATOR' && c.type === 'OPERATOR_NOT' && c.children?.[0]?.class === 'SUBQUERY' && c.children[0].subquery_type === 'EXISTS')
      || (c.class === 'SUBQUERY' && c.subquery_type === 'NOT_EXISTS');
    const exists = negated ? (c.class === 'SUBQUERY' ? c : c.children[0]) : c.class === 'SUBQUERY' && c.subquery_type === 'EXISTS' ? c : undefined;
    if (exists) {
      const found = correlationOf(exists.subquery.node, outer, columnsOf);
      const unequal = found?.correlation.unequal;
      if (found && unequal && orderedType(unequal.inner, found.inner, columnsOf)) {
        // EXISTS (... k = b AND c <> x): some non-NULL c of group b differs from x, i.e. the
        // group's min or max does. NOT EXISTS: no such group, or min = max = x, or x is NULL.
        const n = derived.length + 1;
        const alias = `__pdb_d${n}`;
        const keys = found.correlation.keys;
        const c = unequal.inner;
        const list = [
          ...keys.map((k, i) => withAlias(k.inner, `__k${i + 1}`)),
          withAlias(func('min', [c]), '__mn'), withAlias(func('max', [c]), '__mx'),
        ];
        const table = selectFrom(list, exists.subquery.node.from_table, [...found.correlation.local, ...transferred(keys, others, found.inner, outer, columnsOf), op('OPERATOR_IS_NOT_NULL', [c])], keys.map((k) => k.inner));
        const on = keys.map((k, i) => compare('COMPARE_EQUAL', k.outer, colRef(alias, `__k${i + 1}`)));
        const x = unequal.outer;
        const mn = colRef(alias, '__mn');
        const mx = colRef(alias, '__mx');
        if (negated) {
          leftJoined.push({ ref: derivedRef(alias, table), on: conjunction('AND', on) });
          out.push(conjunction('OR', [op('OPERATOR_IS_NULL', [x]), op('OPERATOR_IS_NULL', [colRef(alias, '__k1')]), conjunction('AND', [compare('COMPARE_EQUAL', mn, x), compare('COMPARE_EQUAL', mx, x)])]));
        } else {
          derived.push(derivedRef(alias, table));
          out.push(...on, conjunction('OR', [compare('COMPARE_NOTEQUAL', mn, x), compare('COMPARE_NOTEQUAL', mx, x)]));
        }
        rewrites.push(`${negated ? 'NOT EXISTS' : 'EXISTS'} with an inequality as a ${negated ? 'left ' : ''}join with its group's min and max`);
        continue;
      }
      if (found && !unequal && found.correlation.keys.length === 1) {
        const [{ inner, outer: o }] = found.correlation.keys;
        const local = [...found.correlation.local, ...transferred(found.correlation.keys, others, found.inner, outer, columnsOf)];
        if (negated) local.push(op('OPERATOR_IS_NOT_NULL', [inner]));
        const body = selectFrom([inner], exists.subquery.node.from_table, local);
        out.push(negated ? conjunction('OR', [op('OPERATOR_IS_NULL', [o]), op('OPERATOR_NOT', [inSubquery(o, body)])]) : inSubquery(o, body));
        rewrites.push(`${negated ? 'NOT EXISTS' : 'EXISTS'} as ${negated ? 'an anti' : 'a semi'}-join IN subquery`);
        continue;
      }
    }
    if (!starred && c.class === 'COMPARISON') {
      const scalarSide = [c.left, c.right].find((s: AstNode) => s?.class === 'SUBQUERY' && s.subquery_type === 'SCALAR');
      const body = scalarSide?.subquery.node as AstNode | undefined;
      const found = body ? correlationOf(body, outer, columnsOf) : undefined;
      const items = (body?.select_list ?? []) as AstNode[];
      const fns: string[] = [];
      const collect = (e: AstNode) => {
        if (e.class === 'FUNCTION' && aggregates.has(String(e.function_name).toLowerCase())) fns.push(String(e.function_name).toLowerCase());
        if (e.class === 'WINDOW') fns.push('window');
        expressionChildren(e).forEach(collect);
      };
      items.forEach(collect);
      // The value must come from aggregates alone (every column inside one), NULL over no rows.
      const onlyAggregated = items.length === 1 && fns.length > 0 && fns.every((f) => NULL_ON_EMPTY.has(f)) && !columnsOutsideAggregates(items[0], aggregates);
      if (found && !found.correlation.unequal && onlyAggregated) {
        const n = derived.length + 1;
        const alias = `__pdb_d${n}`;
        const keys = found.correlation.keys;
        const list = [...keys.map((k, i) => withAlias(k.inner, `__k${i + 1}`)), withAlias(items[0], '__v')];
        const table = selectFrom(list, body!.from_table, [...found.correlation.local, ...transferred(keys, others, found.inner, outer, columnsOf)], keys.map((k) => k.inner));
        derived.push(derivedRef(alias, table));
        const value = colRef(alias, '__v');
        out.push({ ...c, left: c.left === scalarSide ? value : c.left, right: c.right === scalarSide ? value : c.right });
        keys.forEach((k, i) => out.push({ class: 'COMPARISON', type: 'COMPARE_EQUAL', alias: '', query_location: 0, left: k.outer, right: colRef(alias, `__k${i + 1}`) }));
        rewrites.push(`a correlated scalar subquery as a join with its aggregate grouped by ${keys.length} key(s)`);
        continue;
      }
    }
    out.push(c);
  }
  if (rewrites.length === 0) return undefined;
  root.where_clause = conjunction('AND', out);
  // SQL text has no parentheses for a join tree: `a, b LEFT JOIN d ON a.k = d.k` reads as
  // `a, (b LEFT JOIN d ...)`. With a LEFT JOIN to add, every comma join becomes INNER JOIN
  // ... ON true, which reads left to right as the tree is (new JOIN nodes; the tables are the same).
  const explicit = (from: AstNode): AstNode => {
    if (from.type !== 'JOIN') return from;
    const join = { ...from, left: explicit(from.left), right: explicit(from.right) };
    return from.ref_type === 'CROSS' ? { ...join, ref_type: 'REGULAR', join_type: 'INNER', condition: booleanConstant(true) } : join;
  };
  const crossed = derived.reduce((left: AstNode, right: AstNode) => {
    const join: AstNode = { type: 'JOIN', alias: '', sample: null, query_location: 0, left, right, condition: null, join_type: 'INNER', ref_type: 'CROSS', using_columns: [], delim_flipped: false, duplicate_eliminated_columns: [] };
    return leftJoined.length ? explicit(join) : join;
  }, leftJoined.length ? explicit(originalFrom) : originalFrom);
  // Each key matches at most one row of a grouped derived table: the rows stay as many.
  root.from_table = leftJoined.reduce((left, { ref, on }) => ({
    type: 'JOIN', alias: '', sample: null, query_location: 0, left, right: ref, condition: on, join_type: 'LEFT', ref_type: 'REGULAR', using_columns: [], delim_flipped: false, duplicate_eliminated_columns: [],
  }), crossed);
  return {
    rewrites,
    undo: () => {
      root.where_clause = originalWhere;
      root.from_table = originalFrom;
    },
  };
}

function derivedRef(alias: string, node: AstNode): AstNode {
  return { type: 'SUBQUERY', alias, sample: null, query_location: 0, subquery: { node, named_param_map: [] }, column_name_alias: [] };
}

function compare(type: string, left: AstNode, right: AstNode): AstNode {
  return { class: 'COMPARISON', type, alias: '', query_location: 0, left, right };
}

/**
 * Is the column (of one of the subquery's tables, `inner`) of a type whose min and max order
 * the values as <> compares them? Not floating point (-0.0 = 0.0, NaN) nor nested types, nor
 * a struct field (its type is not looked into).
 */
function orderedType(col: AstNode, inner: Binding[], columnsOf: (node: AstNode) => Column[] | undefined): boolean {
  const type = plainColumn(col, inner, columnsOf)?.type;
  return type !== undefined && !/FLOAT|DOUBLE|REAL|\[|STRUCT|MAP|UNION|LIST/i.test(type);
}

/** Does the expression reference a column outside every aggregate call? */
function columnsOutsideAggregates(e: AstNode, aggregates: ReadonlySet<string>): boolean {
  if (e.class === 'FUNCTION' && aggregates.has(String(e.function_name).toLowerCase())) return false;
  if (e.class === 'COLUMN_REF') return true;
  return expressionChildren(e).some((x) => columnsOutsideAggregates(x, aggregates));
}

/** The resolved (binding, column) of a plain column reference among `bindings`, with its catalog type. */
function plainColumn(col: AstNode, bindings: Binding[], columnsOf: (node: AstNode) => Column[] | undefined): { binding: Binding; column: string; type: string } | undefined {
  if (col.class !== 'COLUMN_REF') return undefined;
  const r = resolveName(col.column_names as string[], bindings);
  if (typeof r === 'string' || r.path.length > 0 || !r.binding.ref) return undefined;
  const types = (columnsOf(r.binding.ref) ?? []).filter((c) => c.name.toLowerCase() === r.column).map((c) => c.type);
  return types.length === 1 ? { binding: r.binding, column: r.column, type: types[0] } : undefined;
}

/** Is a subquery's body a plain SELECT over catalog tables that names nothing of the outer query? */
function uncorrelated(body: AstNode, outer: Binding[], columnsOf: (node: AstNode) => Column[] | undefined): boolean {
  if (body?.type !== 'SELECT_NODE' || (body.cte_map?.map ?? []).length || (body.modifiers ?? []).length || body.qualify || body.sample) return false;
  const own = fromBindings(body.from_table, columnsOf, true);
  if (!own || own.length === 0) return false;
  const exprs = [...(body.select_list ?? []), body.where_clause, ...(body.group_expressions ?? []), body.having].filter(Boolean) as AstNode[];
  return exprs.every((e) => {
    const sides = sidesOf(e, own, outer);
    return sides !== undefined && !sides.has('outer') && !sides.has(undefined) && !someExpression(e, (x) => x.class === 'FUNCTION' && isVolatileFunction(String(x.function_name)));
  });
}

/**
 * The outer WHERE's restrictions of each key's outer column (conjuncts naming that column
 * alone, with constants or one uncorrelated IN subquery), rewritten onto the key's inner
 * column, for the derived table or IN set (see the head of this file). Only where both
 * columns are catalog columns of one type.
 */
function transferred(keys: Correlation['keys'], others: AstNode[], inner: Binding[], outer: Binding[], columnsOf: (node: AstNode) => Column[] | undefined): AstNode[] {
  const out: AstNode[] = [];
  for (const k of keys) {
    const o = plainColumn(k.outer, outer, columnsOf);
    const i = plainColumn(k.inner, inner, columnsOf);
    if (!o || !i || o.type !== i.type) continue;
    for (const c of others) {
      let refs = 0;
      let ok = true;
      const visit = (e: AstNode) => {
        if (!ok) return;
        if (e.class === 'COLUMN_REF') {
          const r = plainColumn(e, outer, columnsOf);
          if (r && r.binding === o.binding && r.column === o.column) refs++;
          else ok = false;
          return;
        }
        if (e.class === 'SUBQUERY') {
          if (e.subquery_type !== 'ANY' || e.child?.class !== 'COLUMN_REF' || !uncorrelated(e.subquery.node, outer, columnsOf)) ok = false;
          else visit(e.child);
          return;
        }
        if (e.class === 'STAR' || e.class === 'PARAMETER' || e.class === 'LAMBDA' || e.class === 'COLUMNS' || e.class === 'WINDOW' || (e.class === 'FUNCTION' && isVolatileFunction(String(e.function_name)))) { ok = false; return; }
        expressionChildren(e).forEach(visit);
      };
      visit(c);
      // An OR or NOT of it is fine too: the conjunct as a whole is a predicate of the key alone.
      if (ok && refs > 0) out.push(mapExpression(c, (e) => (e.class === 'COLUMN_REF' ? k.inner : undefined)));
    }
  }
  return out;
}
