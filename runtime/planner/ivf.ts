// Approximate nearest-neighbour search over an IVF index (runtime/exec/vector-index.ts builds
// and keeps them): the planner's side. A query of the shape
//
//   SELECT ... FROM t [WHERE ...] ORDER BY array_distance(v, <constant vector>) LIMIT k
//
// (array_cosine_distance and array_negative_inner_product too, the vector on either side, the
// ORDER BY naming the expression or its select-list alias) over a table with an IVF index on
// `v` is rewritten to read the index's table instead (a copy of t's rows with the list id of
// each vector, partitioned by that id) with `__ivf_list IN (the nprobe lists whose centroids
// are nearest the query vector)` added to its WHERE clause. The rewritten SQL is planned like
// any query: Iceberg scan planning prunes the files of every other list by their partition
// values, and the top-k shape distributes the rest. The user's own filters stay and combine.
// `SELECT *` does not show the list id (it is excluded).
//
// Nothing else is rewritten: joins, GROUP BY, DISTINCT, set operations, an ORDER BY whose
// first key is not a distance to a constant, or no LIMIT plan exactly as written. An index
// whose table changed since it was built (an append, a delete) is not used: the query is
// exact until the index is rebuilt (see vector-index.ts).

import { PuffinError } from '../errors.ts';
import type { Engine } from '../engine/engine.ts';
import { lex } from '../sql/lexer.ts';
import { parseStatement, printNodes } from '../sql/parse.ts';
import { colRef, conjunction, integerConstant, type AstNode } from './ast.ts';

/** The list-id column of an index's table. */
export const IVF_LIST_COLUMN = '__ivf_list';

/** Distance functions a query may order by (ascending), and the metric each ranks centroids with. */
export const DISTANCE_FUNCTIONS: Record<string, 'l2' | 'cosine' | 'ip'> = {
  array_distance: 'l2',
  array_cosine_distance: 'cosine',
  array_negative_inner_product: 'ip',
};

/** What the planner needs of an index to use it. */
export interface IvfIndexUse {
  name: string;
  /** The Iceberg table holding the base table's rows and IVF_LIST_COLUMN. */
  indexTable: string;
  lists: number;
  /** Lists probed when the query sets none. */
  nprobe: number;
  /** False when the base table changed since the index was built: the query stays exact. */
  current: boolean;
  /** The probed lists: the `nprobe` whose centroids are nearest `vector` under `metric`. */
  nearestLists(vector: number[], nprobe: number, metric: 'l2' | 'cosine' | 'ip'): Promise<number[]>;
}

/** Where the planner finds the IVF index of a table's column (exec/vector-index.ts). */
export interface IvfIndexSource {
  indexOn(table: string, column: string): Promise<IvfIndexUse | undefined>;
}

/** A vector top-k query: its table reference, vector column, query vector and metric. */
export interface VectorTopK {
  table: AstNode;
  column: string;
  vector: AstNode;
  metric: 'l2' | 'cosine' | 'ip';
}

function isConstantExpr(e: AstNode): boolean {
  if (!e || typeof e !== 'object') return false;
  if (e.class === 'CONSTANT') return true;
  if (e.class === 'CAST') return isConstantExpr(e.child);
  if (e.class === 'FUNCTION' && e.function_name === 'list_value') return (e.children as AstNode[]).every(isConstantExpr);
  return false;
}

/** The vector top-k a query is, or undefined. */
export function matchVectorTopK(root: AstNode): VectorTopK | undefined {
  if (root.type !== 'SELECT_NODE' || root.from_table?.type !== 'BASE_TABLE' || root.from_table.at_clause) return undefined;
  if ((root.cte_map?.map ?? []).length || root.group_expressions?.length || root.having || root.qualify || root.sample || root.from_table.sample) return undefined;
  const mods = (root.modifiers ?? []) as AstNode[];
  const order = mods.find((m) => m.type === 'ORDER_MODIFIER');
  const limit = mods.find((m) => m.type === 'LIMIT_MODIFIER');
  if (!order || !limit || limit.limit?.class !== 'CONSTANT' || mods.some((m) => m.type === 'DISTINCT_MODIFIER')) return undefined;
  const first = (order.orders as AstNode[])[0];
  if (!first || first.type === 'ORDER_DESCENDING') return undefined;
  let expr = first.expression as AstNode;
  if (expr.class === 'COLUMN_REF' && expr.column_names.length === 1) {
    const aliased = (root.select_list as AstNode[]).find((s) => s.alias && s.alias.toLowerCase() === String(expr.column_names[0]).toLowerCase());
    if (aliased) expr = aliased;
  }
  if (expr.class !== 'FUNCTION' || expr.children?.length !== 2) return undefined;
  const metric = DISTANCE_FUNCTIONS[String(expr.function_name).toLowerCase()];
  if (!metric) return undefined;
  const [a, b] = expr.children as AstNode[];
  const [col, vector] = a.class === 'COLUMN_REF' ? [a, b] : [b, a];
  if (col.class !== 'COLUMN_REF' || !isConstantExpr(vector)) return undefined;
  const names = col.column_names as string[];
  return { table: root.from_table, column: names[names.length - 1], vector, metric };
}

/** The query vector's values, computed by DuckDB. */
async function vectorValues(engine: Engine, vector: AstNode): Promise<number[]> {
  const conn = await engine.connect();
  try {
    const select = (await parseStatement(conn, 'SELECT 1')).node;
    select.select_list = [vector];
    const [text] = await printNodes(conn, [select]);
    const r = await conn.runAndReadAll(`SELECT CAST((${text}) AS DOUBLE[])::VARCHAR`);
    const value = r.getRows()[0]?.[0];
    const parsed = JSON.parse(String(value)) as unknown;
    if (!Array.isArray(parsed) || parsed.some((x) => typeof x !== 'number')) throw new PuffinError('bad_request', 'the query vector must be a list of numbers');
    return parsed as number[];
  } finally {
    conn.closeSync();
  }
}

export interface IvfRewrite {
  sql: string;
  /** What the plan's reason says about it. */
  note: string;
}

/**
 * A per-query nprobe written in the SQL as an optimizer hint comment, `/*+ ivf_nprobe(8) *\/`
 * (or `ivf_nprobe = 8`): reaches the planner from every front end (HTTP, the PostgreSQL wire
 * protocol, the shell), where a session SET could not (each statement stands alone).
 */
export function nprobeHint(sql: string): number | undefined {
  for (const [start, end] of lex(sql).comments) {
    const m = /^\/\*\+\s*ivf_nprobe\s*(?:\(\s*(\d+)\s*\)|=\s*(\d+))\s*\*\/$/i.exec(sql.slice(start, end));
    if (m) return Number(m[1] ?? m[2]);
  }
  return undefined;
}

/**
 * `sql` rewritten to probe the IVF index on its vector column, or undefined when it is not a
 * vector top-k over an indexed table (or `nprobe` is 0: exact). `nprobe` (the query's option)
 * wins over a hint comment in the SQL, which wins over the index's own.
 */
export async function rewriteForIvf(engine: Engine, source: IvfIndexSource, sql: string, nprobe?: number): Promise<IvfRewrite | undefined> {
  if (!/array_(cosine_distance|distance|negative_inner_product)/i.test(sql) || !/\blimit\b/i.test(sql)) return undefined;
  const parsed = await parseStatement(engine, sql).catch(() => undefined);
  if (!parsed) return undefined;
  const match = matchVectorTopK(parsed.node);
  if (!match) return undefined;
  const table = [match.table.catalog_name, match.table.schema_name, match.table.table_name].filter((p) => p && !/^(main|memory|temp)$/i.test(p)).join('.');
  const index = await source.indexOn(table, match.column);
  if (!index) return undefined;
  if (!index.current) return { sql, note: `IVF index ${index.name} is stale (its table changed since it was built; rebuild it with DROP INDEX and CREATE INDEX): exact search` };
  const probe = nprobe ?? nprobeHint(sql) ?? index.nprobe;
  if (probe <= 0) return { sql, note: `IVF index ${index.name} not used (nprobe 0): exact search` };
  if (probe >= index.lists) return { sql, note: `IVF index ${index.name}: nprobe ${probe} covers all ${index.lists} lists: exact search` };
  const lists = await index.nearestLists(await vectorValues(engine, match.vector), probe, match.metric);
  const root = parsed.node;
  const ref = root.from_table as AstNode;
  // Column references qualified by the table's name keep working through the alias.
  if (!ref.alias) ref.alias = String(ref.table_name);
  ref.table_name = index.indexTable;
  ref.schema_name = '';
  ref.catalog_name = '';
  const inList: AstNode = { class: 'OPERATOR', type: 'COMPARE_IN', alias: '', query_location: 0, children: [colRef(IVF_LIST_COLUMN), ...lists.map((l) => integerConstant(l))] };
  root.where_clause = root.where_clause ? conjunction('AND', [inList, root.where_clause]) : inList;
  for (const item of root.select_list as AstNode[]) {
    if (item.class === 'STAR' && !item.columns && !(item.exclude_list as unknown[]).includes(IVF_LIST_COLUMN)) item.exclude_list = [...item.exclude_list, IVF_LIST_COLUMN];
  }
  const [rewritten] = await printNodes(engine, [root]);
  return { sql: rewritten, note: `IVF index ${index.name}: probed ${lists.length} of ${index.lists} lists (nprobe ${probe})` };
}
