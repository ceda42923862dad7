// Small tools over DuckDB's JSON AST: constructors for the nodes the planner emits, a
// structural key for comparing expressions, and walkers that know which fields of a node
// hold expressions, table references or nested queries.

import { visitNodes, type AstNode } from '../sql/parse.ts';

export type { AstNode };

const NO_ORDER = { type: 'ORDER_MODIFIER', orders: [] };

export function colRef(...names: string[]): AstNode {
  return { class: 'COLUMN_REF', type: 'COLUMN_REF', alias: '', query_location: 0, column_names: names };
}

export function func(name: string, children: AstNode[], options: { distinct?: boolean; filter?: AstNode | null; operator?: boolean } = {}): AstNode {
  return {
    class: 'FUNCTION',
    type: 'FUNCTION',
    alias: '',
    query_location: 0,
    function_name: name,
    schema: '',
    children,
    filter: options.filter ?? null,
    order_bys: structuredClone(NO_ORDER),
    distinct: options.distinct ?? false,
    is_operator: options.operator ?? false,
    export_state: false,
    catalog: '',
  };
}

export function integerConstant(value: number): AstNode {
  return {
    class: 'CONSTANT', type: 'VALUE_CONSTANT', alias: '', query_location: 0,
    value: { type: { id: 'INTEGER', type_info: null }, is_null: false, value },
  };
}

export function bigintConstant(value: number): AstNode {
  return {
    class: 'CONSTANT', type: 'VALUE_CONSTANT', alias: '', query_location: 0,
    value: { type: { id: 'BIGINT', type_info: null }, is_null: false, value },
  };
}

export function booleanConstant(value: boolean): AstNode {
  return {
    class: 'CONSTANT', type: 'VALUE_CONSTANT', alias: '', query_location: 0,
    value: { type: { id: 'BOOLEAN', type_info: null }, is_null: false, value },
  };
}

export function conjunction(kind: 'AND' | 'OR', children: AstNode[]): AstNode {
  if (children.length === 1) return children[0];
  return { class: 'CONJUNCTION', type: `CONJUNCTION_${kind}`, alias: '', query_location: 0, children };
}

export function baseTable(name: string, alias = ''): AstNode {
  return {
    type: 'BASE_TABLE', alias, sample: null, query_location: 0, schema_name: '', table_name: name,
    column_name_alias: [], catalog_name: '', at_clause: null,
  };
}

export function selectNode(selectList: AstNode[], from: AstNode, extra: Partial<AstNode> = {}): AstNode {
  return {
    type: 'SELECT_NODE',
    modifiers: [],
    cte_map: { map: [] },
    select_list: selectList,
    from_table: from,
    where_clause: null,
    group_expressions: [],
    group_sets: [],
    aggregate_handling: 'STANDARD_HANDLING',
    having: null,
    sample: null,
    qualify: null,
    ...extra,
  };
}

/** `*` in a select list. */
export function star(): AstNode {
  return { class: 'STAR', type: 'STAR', alias: '', query_location: 0, relation_name: '', exclude_list: [], replace_list: [], columns: false, expr: null, qualified_exclude_list: [], rename_list: [] };
}

export function withAlias(expr: AstNode, alias: string): AstNode {
  return { ...expr, alias };
}

export function clone<T>(node: T): T {
  return structuredClone(node);
}

/** Replace a node's contents in place (its parent keeps pointing at it). */
export function become(node: AstNode, replacement: AstNode): void {
  for (const key of Object.keys(node)) delete node[key];
  Object.assign(node, replacement);
}

/** Collect base-table refs of a FROM tree made only of joins and base tables. */
export function collectJoinRefs(from: AstNode | null | undefined, out: AstNode[]): boolean {
  if (!from) return false;
  if (from.type === 'BASE_TABLE') {
    out.push(from);
    return true;
  }
  if (from.type === 'JOIN') return collectJoinRefs(from.left, out) && collectJoinRefs(from.right, out);
  return false;
}

/** The SELECT bodies of every derived table, expression subquery and CTE inside `root` (not `root` itself), outermost first. */
export function subqueryBodies(root: AstNode): AstNode[] {
  const bodies: AstNode[] = [];
  visitNodes(root, (n) => {
    const body = n !== root && n.type === 'SUBQUERY' ? n.subquery?.node : undefined;
    if (body?.type === 'SELECT_NODE') bodies.push(body);
    for (const entry of (n.cte_map?.map ?? []) as AstNode[]) if (entry.value?.query?.node?.type === 'SELECT_NODE') bodies.push(entry.value.query.node);
  });
  return bodies;
}

/** A key equal for expressions DuckDB would treat as the same (ignores alias and location). */
export function exprKey(expr: AstNode | null | undefined): string {
  return JSON.stringify(expr ?? null, (key, value) => {
    if (key === 'alias' || key === 'query_location') return undefined;
    if (key === 'column_names' && Array.isArray(value)) return value.map((s: string) => s.toLowerCase());
    if (key === 'function_name' && typeof value === 'string') return value.toLowerCase();
    return value;
  });
}

/** Is this a query node (the body of a SELECT, a set operation, ...)? */
export function isQueryNode(node: AstNode): boolean {
  return typeof node?.type === 'string' && /_NODE$/.test(node.type) && !('class' in node);
}

/**
 * Visit every expression directly owned by an expression (not descending into nested
 * queries). The callback receives each child; return value ignored.
 */
export function expressionChildren(expr: AstNode): AstNode[] {
  const out: AstNode[] = [];
  const push = (x: unknown) => {
    if (x && typeof x === 'object' && 'class' in (x as AstNode)) out.push(x as AstNode);
  };
  switch (expr.class) {
    case 'FUNCTION':
      (expr.children ?? []).forEach(push);
      push(expr.filter);
      for (const o of expr.order_bys?.orders ?? []) push(o.expression);
      break;
    case 'WINDOW':
      (expr.children ?? []).forEach(push);
      (expr.partitions ?? []).forEach(push);
      for (const o of expr.orders ?? []) push(o.expression);
      for (const o of expr.arg_orders ?? []) push(o.expression);
      push(expr.start_expr); push(expr.end_expr); push(expr.offset_expr); push(expr.default_expr); push(expr.filter_expr);
      break;
    case 'CASE':
      for (const c of expr.case_checks ?? []) { push(c.when_expr); push(c.then_expr); }
      push(expr.else_expr);
      break;
    case 'CAST':
      push(expr.child);
      break;
    case 'BETWEEN':
      push(expr.input); push(expr.lower); push(expr.upper);
      break;
    case 'COMPARISON':
      push(expr.left); push(expr.right);
      break;
    case 'SUBQUERY':
      push(expr.child);
      break;
    case 'COLLATE':
      push(expr.child);
      break;
    case 'LAMBDA':
      push(expr.lhs); push(expr.expr);
      break;
    case 'STAR':
      push(expr.expr);
      for (const r of Object.values(expr.replace_list ?? {})) push(r);
      break;
    default:
      (expr.children ?? []).forEach(push);
  }
  return out;
}

/** Rebuild an expression bottom-up: `fn` may return a replacement for any node (top-down first). */
export function mapExpression(expr: AstNode, fn: (e: AstNode) => AstNode | undefined): AstNode {
  const replaced = fn(expr);
  if (replaced !== undefined) return replaced;
  const e: AstNode = { ...expr };
  const m = (x: AstNode | null | undefined) => (x && typeof x === 'object' && 'class' in x ? mapExpression(x, fn) : x);
  switch (e.class) {
    case 'FUNCTION':
      e.children = (e.children ?? []).map(m);
      e.filter = m(e.filter);
      if (e.order_bys?.orders) e.order_bys = { ...e.order_bys, orders: e.order_bys.orders.map((o: AstNode) => ({ ...o, expression: m(o.expression) })) };
      break;
    case 'WINDOW':
      e.children = (e.children ?? []).map(m);
      e.partitions = (e.partitions ?? []).map(m);
      e.orders = (e.orders ?? []).map((o: AstNode) => ({ ...o, expression: m(o.expression) }));
      e.arg_orders = (e.arg_orders ?? []).map((o: AstNode) => ({ ...o, expression: m(o.expression) }));
      for (const k of ['start_expr', 'end_expr', 'offset_expr', 'default_expr', 'filter_expr']) e[k] = m(e[k]);
      break;
    case 'CASE':
      e.case_checks = (e.case_checks ?? []).map((c: AstNode) => ({ when_expr: m(c.when_expr), then_expr: m(c.then_expr) }));
      e.else_expr = m(e.else_expr);
      break;
    case 'CAST':
    case 'COLLATE':
      e.child = m(e.child);
      break;
    case 'BETWEEN':
      e.input = m(e.input); e.lower = m(e.lower); e.upper = m(e.upper);
      break;
    case 'COMPARISON':
      e.left = m(e.left); e.right = m(e.right);
      break;
    case 'SUBQUERY':
      e.child = m(e.child);
      break;
    default:
      if (Array.isArray(e.children)) e.children = e.children.map(m);
  }
  return e;
}

/** Does any node in the expression (not inside nested queries) satisfy `pred`? */
export function someExpression(expr: AstNode | null | undefined, pred: (e: AstNode) => boolean): boolean {
  if (!expr) return false;
  if (pred(expr)) return true;
  return expressionChildren(expr).some((c) => someExpression(c, pred));
}

/** Split an AND tree into its conjuncts. */
export function conjuncts(expr: AstNode | null | undefined): AstNode[] {
  if (!expr) return [];
  if (expr.class === 'CONJUNCTION' && expr.type === 'CONJUNCTION_AND') return expr.children.flatMap(conjuncts);
  return [expr];
}

/** Every SUBQUERY expression directly inside an expression, not recursing into their bodies. */
export function subqueryExpressions(expr: AstNode | null | undefined): AstNode[] {
  const out: AstNode[] = [];
  const visit = (e: AstNode | null | undefined) => {
    if (!e) return;
    if (e.class === 'SUBQUERY') out.push(e);
    expressionChildren(e).forEach(visit);
  };
  visit(expr);
  return out;
}

/** Every nested query directly inside an expression (subqueries), not recursing into them. */
export function subqueriesOf(expr: AstNode | null | undefined): AstNode[] {
  return subqueryExpressions(expr).map((e) => e.subquery.node);
}

/** The expressions a SELECT node owns directly (select list, where, group, having, qualify, order, limits). */
export function selectExpressions(node: AstNode): AstNode[] {
  const out: AstNode[] = [...(node.select_list ?? [])];
  for (const k of ['where_clause', 'having', 'qualify']) if (node[k]) out.push(node[k]);
  out.push(...(node.group_expressions ?? []));
  out.push(...modifierExpressions(node));
  return out;
}

export function modifierExpressions(node: AstNode): AstNode[] {
  const out: AstNode[] = [];
  for (const mod of node.modifiers ?? []) {
    if (mod.type === 'ORDER_MODIFIER') for (const o of mod.orders) out.push(o.expression);
    if (mod.type === 'LIMIT_MODIFIER' || mod.type === 'LIMIT_PERCENT_MODIFIER') {
      if (mod.limit) out.push(mod.limit);
      if (mod.offset) out.push(mod.offset);
    }
    if (mod.type === 'DISTINCT_MODIFIER') out.push(...(mod.distinct_on_targets ?? []));
  }
  return out;
}

/** Expressions inside a FROM tree (join conditions, table function arguments). */
export function fromExpressions(from: AstNode | null | undefined): AstNode[] {
  if (!from) return [];
  switch (from.type) {
    case 'JOIN':
      return [...fromExpressions(from.left), ...fromExpressions(from.right), ...(from.condition ? [from.condition] : [])];
    case 'TABLE_FUNCTION':
      return from.function ? [from.function] : [];
    case 'PIVOT':
      return fromExpressions(from.source);
    default:
      return [];
  }
}

/** Nested queries in a FROM tree (derived tables, pivots' sources). */
export function fromSubqueries(from: AstNode | null | undefined): AstNode[] {
  if (!from) return [];
  switch (from.type) {
    case 'JOIN':
      return [...fromSubqueries(from.left), ...fromSubqueries(from.right)];
    case 'SUBQUERY':
      return [from.subquery.node];
    case 'PIVOT':
      return fromSubqueries(from.source);
    default:
      return [];
  }
}

/** Is the value a plain integer constant (as in ORDER BY 1 / GROUP BY 2)? */
export function integerValue(expr: AstNode | null | undefined): number | undefined {
  if (!expr || expr.class !== 'CONSTANT' || expr.value?.is_null) return undefined;
  const v = expr.value?.value;
  const id = expr.value?.type?.id;
  if (typeof v === 'number' && Number.isInteger(v) && ['INTEGER', 'BIGINT', 'SMALLINT', 'TINYINT', 'UBIGINT', 'HUGEINT'].includes(id)) return v;
  return undefined;
}

/** Is a DuckDB column type one of the integer types, signed or unsigned (TINYINT ... HUGEINT)? */
export function isIntegerType(type: string): boolean {
  return /^U?(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT)$/i.test(type);
}

/** An operator node (OPERATOR_NOT, OPERATOR_IS_NULL, COMPARE_IN, ...) over `children`. */
export function operator(type: string, children: AstNode[]): AstNode {
  return { class: 'OPERATOR', type, alias: '', query_location: 0, children };
}
