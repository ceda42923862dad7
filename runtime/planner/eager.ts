// Eager aggregation (aggregation pushed below a join): a grouped SELECT over `a JOIN b ON
// a.k = b.j` (INNER, or LEFT with b the null-supplying side) whose aggregates read only b's
// columns and whose groups only a's, aggregates b by j first:
//
//   SELECT c_custkey, count(o_orderkey) FROM customer LEFT JOIN orders
//     ON c_custkey = o_custkey AND o_comment NOT LIKE '%special%requests%' GROUP BY c_custkey
//
// is `... FROM customer LEFT JOIN (SELECT o_custkey, count(o_orderkey) AS __eager0 FROM orders
// WHERE o_comment NOT LIKE ... GROUP BY o_custkey) AS orders ON c_custkey = o_custkey`, with
// count(o_orderkey) read as coalesce(sum(__eager0), 0). Each row of a meets the one row of its
// key's partial instead of every row of b with that key, and the aggregate over a group of
// a's rows is the same: a sum of per-key sums, a count the sum of per-key counts (0 for an
// unmatched row, whose partial is NULL), a min of per-key mins. The planner applies it to a
// query that runs on one node, where b's partial aggregate can then be computed by fragments
// (Planner.aggregatedSubqueries) instead of b's rows being pulled up: TPC-H Q13's orders.
//
// Only count, count(*) (inner joins), sum, min and max without DISTINCT, FILTER or ORDER BY;
// the ON clause is the one equality and conjuncts over b alone (which filter b before it is
// aggregated); WHERE, GROUP BY and everything outside the aggregates read a alone. The
// caller checks that the rewritten query binds to the same columns, and undoes it otherwise.

import type { Column } from '../catalog/types.ts';
import {
  bigintConstant, booleanConstant, clone, colRef, conjunction, conjuncts, expressionChildren, exprKey, func, mapExpression, operator, selectExpressions,
  selectNode, someExpression, withAlias, type AstNode,
} from './ast.ts';
import { visitNodes } from '../sql/parse.ts';

export interface EagerRewrite {
  /** What was rewritten, for the plan's reason. */
  what: string[];
  /** The references of the tables aggregated first (each now inside a derived table). */
  aggregated: AstNode[];
  undo(): void;
}

const RULES: Record<string, 'count' | 'sum' | 'min' | 'max'> = { count: 'count', count_star: 'count', sum: 'sum', min: 'min', max: 'max' };

/**
 * Apply eager aggregation to every eligible SELECT of `root` (the root and the bodies of its
 * subqueries and derived tables), in place. `columnsOf`: a base table reference's columns;
 * `rootNames`: the root's output column names (an unaliased select item of the root keeps
 * its name); `aggregates`: the aggregate function names. Undefined when none is eligible.
 */
export function eagerAggregation(root: AstNode, rootNames: readonly string[], columnsOf: (ref: AstNode) => Column[] | undefined, aggregates: ReadonlySet<string>): EagerRewrite | undefined {
  // Each SELECT with the names its unaliased items must keep (the root's, or a derived
  // table's column aliases).
  const selects: { node: AstNode; names?: readonly string[] }[] = [{ node: root, names: rootNames }];
  visitNodes(root, (n) => {
    if (n.type === 'SUBQUERY' && n.subquery?.node?.type === 'SELECT_NODE') selects.push({ node: n.subquery.node, names: 'class' in n ? undefined : n.column_name_alias });
    for (const entry of (n.cte_map?.map ?? []) as AstNode[]) if (entry.value?.query?.node?.type === 'SELECT_NODE') selects.push({ node: entry.value.query.node, names: entry.value.aliases });
  });
  const undos: (() => void)[] = [];
  const what: string[] = [];
  const aggregated: AstNode[] = [];
  for (const { node, names } of selects) {
    const done = rewrite(node, names ?? [], columnsOf, aggregates);
    if (!done) continue;
    undos.push(done.undo);
    what.push(done.what);
    aggregated.push(done.ref);
  }
  if (undos.length === 0) return undefined;
  return { what, aggregated, undo: () => { for (const u of undos.reverse()) u(); } };
}

interface Side { ref: AstNode; names: Set<string>; qualifier: string }

function rewrite(select: AstNode, names: readonly string[], columnsOf: (ref: AstNode) => Column[] | undefined, aggregates: ReadonlySet<string>): { undo: () => void; what: string; ref: AstNode } | undefined {
  if (select.cte_map?.map?.length || select.sample || select.qualify || select.aggregate_handling !== 'STANDARD_HANDLING') return undefined;
  if (!(select.group_expressions?.length > 0) || (select.group_sets?.length ?? 0) > 1) return undefined;
  const join = select.from_table;
  if (join?.type !== 'JOIN' || 'class' in join || join.ref_type !== 'REGULAR' || (join.using_columns ?? []).length) return undefined;
  if (join.join_type !== 'INNER' && join.join_type !== 'LEFT') return undefined;
  const side = (ref: AstNode): Side | undefined => {
    if (ref?.type !== 'BASE_TABLE' || 'class' in ref || ref.sample) return undefined;
    const columns = columnsOf(ref);
    if (!columns) return undefined;
    return { ref, names: new Set(columns.map((c) => c.name.toLowerCase())), qualifier: String(ref.alias || ref.table_name).toLowerCase() };
  };
  const left = side(join.left);
  const right = side(join.right);
  if (!left || !right || left.qualifier === right.qualifier) return undefined;

  // Which side a column reference reads; undefined when it cannot be told.
  const owner = (e: AstNode): Side | undefined => {
    const parts = (e.column_names as string[]).map((p) => String(p).toLowerCase());
    if (parts.length === 1) {
      const inL = left.names.has(parts[0]);
      const inR = right.names.has(parts[0]);
      return inL && !inR ? left : inR && !inL ? right : undefined;
    }
    if (parts.length === 2) {
      const s = parts[0] === left.qualifier ? left : parts[0] === right.qualifier ? right : undefined;
      return s?.names.has(parts[1]) ? s : undefined;
    }
    return undefined;
  };
  const isAgg = (e: AstNode) => e.class === 'FUNCTION' && aggregates.has(String(e.function_name).toLowerCase());
  // The sides an expression's columns read ('?' when one cannot be told, or it holds a
  // subquery, an aggregate, a window or a lambda).
  const sidesIn = (e: AstNode): Set<Side | '?'> => {
    const reads = new Set<Side | '?'>();
    someExpression(e, (x) => {
      if (x.class === 'COLUMN_REF') reads.add(owner(x) ?? '?');
      if (x.class === 'SUBQUERY' || isAgg(x) || x.class === 'WINDOW' || x.class === 'LAMBDA') reads.add('?');
      return false;
    });
    return reads;
  };
  // The sides an expression's columns read outside aggregates ('?' when one cannot be told).
  const readsOutside = (e: AstNode | null | undefined): Set<Side | '?'> => {
    const out = new Set<Side | '?'>();
    const visit = (x: AstNode | null | undefined) => {
      if (!x) return;
      if (isAgg(x)) return;
      // A name of neither table is a select alias (ORDER BY, HAVING) or a column of an
      // enclosing query: it binds where it is, which does not move.
      if (x.class === 'COLUMN_REF') {
        const o = owner(x);
        if (o) out.add(o);
        else if (x.column_names.length !== 1 || left.names.has(String(x.column_names[0]).toLowerCase()) || right.names.has(String(x.column_names[0]).toLowerCase())) out.add('?');
      }
      if (x.class === 'SUBQUERY' || x.class === 'WINDOW' || x.class === 'LAMBDA' || x.class === 'STAR' || x.class === 'COLUMNS') out.add('?');
      expressionChildren(x).forEach(visit);
    };
    visit(e);
    return out;
  };

  // The aggregates: one side's columns only, that side is b.
  const calls: AstNode[] = [];
  const collect = (e: AstNode | null | undefined) => {
    if (!e) return;
    if (isAgg(e)) {
      calls.push(e);
      return;
    }
    expressionChildren(e).forEach(collect);
  };
  const exprs = selectExpressions(select);
  exprs.forEach(collect);
  if (calls.length === 0) return undefined;
  let b: Side | undefined;
  for (const call of calls) {
    const rule = RULES[String(call.function_name).toLowerCase()];
    if (!rule || call.distinct || call.filter || call.order_bys?.orders?.length || call.export_state) return undefined;
    if (String(call.function_name).toLowerCase() === 'count_star') {
      if (join.join_type !== 'INNER') return undefined;
      continue;
    }
    if ((call.children as AstNode[]).length !== 1) return undefined;
    const reads = sidesIn(call.children[0]);
    if (reads.has('?') || reads.size !== 1) return undefined;
    const s = [...reads][0] as Side;
    if (b && b !== s) return undefined;
    b = s;
  }
  if (!b) return undefined;
  // LEFT JOIN: b must be the null-supplying side.
  if (join.join_type === 'LEFT' && b !== right) return undefined;
  // Everything outside the aggregates reads a alone.
  for (const e of exprs) {
    const reads = readsOutside(e);
    if (reads.has('?') || reads.has(b)) return undefined;
  }
  // The ON clause: one equality a.k = b.j, and conjuncts over b alone.
  let key: AstNode | undefined;
  const bOnly: AstNode[] = [];
  for (const c of conjuncts(join.condition)) {
    if (c.class === 'COMPARISON' && c.type === 'COMPARE_EQUAL' && c.left?.class === 'COLUMN_REF' && c.right?.class === 'COLUMN_REF' && !key) {
      const l = owner(c.left);
      const r = owner(c.right);
      if (l && r && l !== r) {
        key = l === b ? c.left : c.right;
        continue;
      }
    }
    const reads = sidesIn(c);
    if (reads.size !== 1 || !reads.has(b)) return undefined;
    bOnly.push(c);
  }
  if (!key) return undefined;
  const keyName = String((key.column_names as string[]).at(-1));

  // Every select item holding an aggregate keeps its name: its alias, or the one given.
  const items = select.select_list as AstNode[];
  const itemNames = items.map((item, i) => (item.alias ? String(item.alias) : names[i]));
  if (items.some((item, i) => someExpression(item, isAgg) && !itemNames[i])) return undefined;
  // b's partial aggregates, one per distinct call.
  const partials = new Map<string, { alias: string; call: AstNode }>();
  const partialOf = (call: AstNode) => {
    const k = exprKey(call);
    let p = partials.get(k);
    if (!p) {
      p = { alias: `__eager${partials.size}`, call };
      partials.set(k, p);
    }
    return p;
  };
  const qualifier = String(b.ref.alias || b.ref.table_name);
  const finalOf = (call: AstNode): AstNode => {
    const name = String(call.function_name).toLowerCase();
    const p = colRef(qualifier, partialOf(call).alias);
    // A count is a BIGINT, 0 for a row of a no partial matched; a sum of BIGINTs is not.
    if (RULES[name] === 'count') return { class: 'CAST', type: 'OPERATOR_CAST', alias: '', query_location: 0, child: operator('OPERATOR_COALESCE', [func('sum', [p]), bigintConstant(0)]), cast_type: { id: 'BIGINT', type_info: null }, try_cast: false };
    return func(RULES[name], [p]);
  };
  const replace = (e: AstNode | null | undefined): AstNode | null => (e ? mapExpression(e, (x) => (isAgg(x) ? finalOf(x) : undefined)) : null);

  const saved = {
    select_list: select.select_list, having: select.having, modifiers: select.modifiers, right: join.right, left: join.left, condition: join.condition,
  };
  const selectList = items.map((item, i) => (someExpression(item, isAgg) ? { ...replace(item)!, alias: itemNames[i] } : item));
  const having = replace(select.having);
  const modifiers = ((select.modifiers ?? []) as AstNode[]).map((m) => (m.type === 'ORDER_MODIFIER' ? { ...m, orders: (m.orders as AstNode[]).map((o) => ({ ...o, expression: replace(o.expression) })) } : m));
  const inner = selectNode(
    [withAlias(colRef(qualifier, keyName), keyName), ...[...partials.values()].map((p) => withAlias(clone(p.call), p.alias))],
    b.ref,
    { where_clause: bOnly.length === 0 ? null : bOnly.length === 1 ? bOnly[0] : conjunction('AND', bOnly), group_expressions: [colRef(qualifier, keyName)], group_sets: [[0]] },
  );
  const derived = { type: 'SUBQUERY', alias: qualifier, sample: null, query_location: 0, subquery: { node: inner, named_param_map: [] }, column_name_alias: [] };
  const condition = conjuncts(join.condition).map((c) => (bOnly.includes(c) ? booleanConstant(true) : c));
  Object.assign(select, { select_list: selectList, having, modifiers });
  Object.assign(join, { [b === right ? 'right' : 'left']: derived, condition: condition.length === 1 ? condition[0] : conjunction('AND', condition) });
  return {
    what: `eager aggregation: ${qualifier} aggregated by ${keyName} before its join`,
    ref: b.ref,
    undo: () => {
      Object.assign(select, { select_list: saved.select_list, having: saved.having, modifiers: saved.modifiers });
      Object.assign(join, { left: saved.left, right: saved.right, condition: saved.condition });
    },
  };
}
