// View merging: a query whose only FROM item is a derived table that filters and projects a
// join of tables (no aggregate, window, DISTINCT, ORDER BY or LIMIT of its own) is the same
// query over that join, with the derived table's WHERE ANDed into its own and every
// reference to the derived table's columns replaced by the expression that computes it:
//
//   SELECT l_year, sum(volume) FROM (SELECT extract(year FROM l_shipdate) AS l_year,
//     l_extendedprice * (1 - l_discount) AS volume FROM lineitem, orders WHERE ...) AS shipping
//   GROUP BY l_year
//
// is `SELECT extract(year FROM l_shipdate) AS l_year, sum(l_extendedprice * (1 - l_discount))
// FROM lineitem, orders WHERE ... GROUP BY extract(year FROM l_shipdate)`, which the split
// rules plan as one aggregate over a join (TPC-H Q07, Q08, Q09), instead of running the
// derived table first as a step of its own and aggregating its result after.
//
// Only what is plainly the same query is merged: a name the outer query reads that is not a
// column of the derived table must not be a column of the tables merged in (it could bind
// to one after), a select alias that names a derived column must be that column (and may
// not name a column a derived column's expression reads), and the outer query may hold no
// subquery or lambda (whose names bind in scopes of their own). The caller checks that the
// merged query binds to the same columns, and undoes it otherwise.

import type { Column } from '../catalog/types.ts';
import { clone, collectJoinRefs, conjunction, mapExpression, selectExpressions, someExpression, type AstNode } from './ast.ts';

export interface Flattened {
  /** What was merged, for the plan's reason. */
  what: string;
  undo(): void;
}

/** The body of the derived table a query could be merged with (its only FROM item), if any. */
export function flattenCandidate(root: AstNode): AstNode | undefined {
  if (root?.type !== 'SELECT_NODE' || root.cte_map?.map?.length || root.sample) return undefined;
  const from = root.from_table;
  if (from?.type !== 'SUBQUERY' || 'class' in from || from.sample) return undefined;
  const body = from.subquery?.node;
  return body?.type === 'SELECT_NODE' ? body : undefined;
}

/**
 * Merge the derived table of `root` (see flattenCandidate) into it, in place. `outputNames`:
 * the query's output column names as DuckDB gives them (unaliased select items keep them);
 * `columnsOf`: a base table reference's columns; `aggregates`: aggregate function names.
 * Undefined (nothing changed) when the query is not of the form merged.
 */
export function flattenDerivedTable(
  root: AstNode,
  outputNames: readonly string[],
  columnsOf: (ref: AstNode) => Column[] | undefined,
  aggregates: ReadonlySet<string>,
): Flattened | undefined {
  const body = flattenCandidate(root);
  if (!body) return undefined;
  const ref = root.from_table;
  // The body: a filter and projection of a join of tables.
  if (body.cte_map?.map?.length || body.sample || body.having || body.qualify || body.group_expressions?.length) return undefined;
  if (body.aggregate_handling !== 'STANDARD_HANDLING' || (body.modifiers ?? []).length) return undefined;
  const refs: AstNode[] = [];
  if (!collectJoinRefs(body.from_table, refs) || refs.some((r) => r.sample)) return undefined;
  const baseColumns = new Set<string>();
  for (const r of refs) {
    const columns = columnsOf(r);
    if (!columns) return undefined;
    for (const c of columns) baseColumns.add(c.name.toLowerCase());
  }
  const items = body.select_list as AstNode[];
  const unsafe = (e: AstNode) => e.class === 'STAR' || e.class === 'COLUMNS' || e.class === 'WINDOW' || e.class === 'LAMBDA'
    || (e.class === 'FUNCTION' && aggregates.has(String(e.function_name).toLowerCase()));
  if (items.some((i) => someExpression(i, unsafe))) return undefined;

  // The derived table's columns by name: alias, else a column's own name; renamed by
  // `AS d(a, b)` in order.
  const names = items.map((i) => (i.alias ? String(i.alias) : i.class === 'COLUMN_REF' ? String(i.column_names.at(-1)) : undefined));
  (ref.column_name_alias ?? []).forEach((a: string, i: number) => { if (i < names.length) names[i] = a; });
  if (names.some((n) => n === undefined)) return undefined;
  const byName = new Map<string, AstNode>();
  for (const [i, n] of names.entries()) {
    const key = n!.toLowerCase();
    if (byName.has(key)) return undefined;
    byName.set(key, { ...clone(items[i]), alias: '' });
  }
  const alias = String(ref.alias ?? '').toLowerCase();

  // The outer query: no subquery, lambda or star; each name it reads either a derived column
  // or no column of the tables merged in.
  const outer = selectExpressions(root);
  if (outer.some((e) => someExpression(e, (x) => x.class === 'SUBQUERY' || x.class === 'LAMBDA' || x.class === 'STAR' || x.class === 'COLUMNS'))) return undefined;
  const derivedColumn = (e: AstNode): AstNode | undefined => {
    const parts = (e.column_names as string[]).map((p) => String(p).toLowerCase());
    if (parts.length === 1) return byName.get(parts[0]);
    if (parts.length === 2 && alias && parts[0] === alias) return byName.get(parts[1]);
    return undefined;
  };
  let refused = false;
  const substitute = (expr: AstNode | null | undefined): AstNode | null => {
    if (!expr) return expr ?? null;
    return mapExpression(expr, (e) => {
      if (e.class !== 'COLUMN_REF') return undefined;
      const found = derivedColumn(e);
      if (found) return clone(found);
      // A select alias (ORDER BY, HAVING) stays, unless a merged table has a column of
      // that name; a qualified name that is not the derived table's is refused.
      if (e.column_names.length !== 1 || baseColumns.has(String(e.column_names[0]).toLowerCase())) refused = true;
      return undefined;
    });
  };
  // A select alias that names a derived column must be that column: ORDER BY and GROUP BY
  // may bind the name to the alias.
  // Nor may it be a name a derived column's expression reads (ORDER BY may bind that name
  // to the alias once the expression stands in the outer query).
  const readByDerived = new Set<string>();
  for (const e of byName.values()) someExpression(e, (x) => { if (x.class === 'COLUMN_REF') readByDerived.add(String(x.column_names.at(-1)).toLowerCase()); return false; });
  for (const item of root.select_list as AstNode[]) {
    const a = item.alias ? String(item.alias).toLowerCase() : '';
    if (!a || (!byName.has(a) && !readByDerived.has(a))) continue;
    if (item.class !== 'COLUMN_REF' || !byName.has(a) || derivedColumn(item) !== byName.get(a)) return undefined;
  }

  const saved = {
    from_table: root.from_table, where_clause: root.where_clause, select_list: root.select_list,
    group_expressions: root.group_expressions, having: root.having, qualify: root.qualify, modifiers: root.modifiers,
  };
  const selectList = (root.select_list as AstNode[]).map((item, i) => ({ ...substitute(item)!, alias: item.alias || outputNames[i] }));
  const where = substitute(root.where_clause);
  const groups = ((root.group_expressions ?? []) as AstNode[]).map((g) => substitute(g)!);
  const having = substitute(root.having);
  const qualify = substitute(root.qualify);
  const modifiers = ((root.modifiers ?? []) as AstNode[]).map((m) => {
    if (m.type === 'ORDER_MODIFIER') return { ...m, orders: (m.orders as AstNode[]).map((o) => ({ ...o, expression: substitute(o.expression) })) };
    if (m.type === 'DISTINCT_MODIFIER') return { ...m, distinct_on_targets: ((m.distinct_on_targets ?? []) as AstNode[]).map((t) => substitute(t)) };
    if (m.type === 'LIMIT_MODIFIER' || m.type === 'LIMIT_PERCENT_MODIFIER') return { ...m, limit: substitute(m.limit), offset: substitute(m.offset) };
    return m;
  });
  if (refused || selectList.length !== outputNames.length) return undefined;
  const filters = [body.where_clause, where].filter((w): w is AstNode => !!w);
  Object.assign(root, {
    from_table: body.from_table,
    where_clause: filters.length === 0 ? null : filters.length === 1 ? filters[0] : conjunction('AND', filters),
    select_list: selectList, group_expressions: groups, having, qualify, modifiers,
  });
  return {
    what: `derived table ${ref.alias ? String(ref.alias) : '(unnamed)'} merged into the query`,
    undo: () => { Object.assign(root, saved); },
  };
}
