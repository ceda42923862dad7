// Materialized subqueries: the rule that turns a query with CTEs, derived tables or
// uncorrelated subqueries into a DAG of steps (docs/ARCHITECTURE.md, "Multi-stage plans").
//
// Each such subquery is planned and run first as a distributed query of its own. Its result
// stays where the workers wrote it (Parquet files under the shuffle prefix, one per task of
// its last stage) and becomes a table the rest of the query reads by name; a scalar or
// EXISTS subquery becomes a constant. The query over those results is then planned with
// their real sizes, like adaptive execution in Spark: a small result is broadcast, a large
// one is split across fragments or hash-partitioned for a join, and a constant prunes files.
//
// A subquery qualifies when it reads a table and binds on its own (so it is not correlated
// with the query around it). What does not qualify stays where it is, and the query runs as
// it did before (pushdown + single-node for what cannot be split).

import type { Column, DataFile, TableSnapshot } from '../catalog/types.ts';
import { PuffinError } from '../errors.ts';
import { sqlIdent, sqlString } from '../sql/quote.ts';
import { baseTable, become, expressionChildren, fromExpressions, selectExpressions, selectNode, someExpression, star, type AstNode } from './ast.ts';
import type { Fragment, Plan, Stage } from './plan.ts';
import { tableReferences } from './scope.ts';
import { visitNodes } from '../sql/parse.ts';

/** Names of materialized results start so; a query's own names never do (see tempName). */
export const MATERIALIZED_PREFIX = '__pdb_m';

/** What a step's result is to the planning of the query that reads it. */
export type MaterializedInput =
  | { kind: 'table'; columns: Column[]; files: DataFile[] }
  /** A constant, as SQL (a typed literal). */
  | { kind: 'constant'; sql: string };

/** A name unique to this planning: the prefix, a per-plan salt, the step's number. */
export function tempName(salt: string, n: number): string {
  return `${MATERIALIZED_PREFIX}${salt}_${n}`;
}

/** The catalog view of a materialized table (plain Parquet files, no statistics). */
export function materializedSnapshot(name: string, input: Extract<MaterializedInput, { kind: 'table' }>): TableSnapshot {
  return { name, kind: 'parquet', columns: input.columns, files: input.files, snapshotId: `materialized:${name}` };
}

/** A subquery of the query's top level that may become a step. */
export interface Candidate {
  kind: 'table' | 'scalar' | 'exists';
  what: string;
  /** Its query node (mutated in place when earlier steps are substituted). */
  body: AstNode;
  /** Make the query read the step's result, named `name`, instead of the subquery. */
  replace(name: string, columns: Column[]): void;
}

function isBaseTable(node: AstNode): boolean {
  return node?.type === 'BASE_TABLE' && !('class' in node);
}

function baseTableNode(name: string, alias: string, columnAliases: string[]): AstNode {
  return { ...baseTable(name, alias), column_name_alias: columnAliases };
}

/** `SELECT * FROM name`: the body of an IN subquery over a step's result, or a constant's placeholder. */
export function selectAllFrom(name: string): AstNode {
  return selectNode([star()], baseTable(name));
}

/** Every BASE_TABLE reference to CTE `name` of `root`'s CTE map (not hidden by an inner CTE of that name). */
function cteReferences(root: AstNode, name: string): AstNode[] {
  const key = name.toLowerCase();
  return tableReferences(root).tables.filter((t) => t.cte === root && String(t.node.table_name).toLowerCase() === key).map((t) => t.node);
}

/**
 * The subqueries of a SELECT's top level that could be steps, in the order they must run:
 * its CTEs (in order, as later ones may read earlier ones), the derived tables of its FROM
 * clause, then the subqueries in its expressions (select list, WHERE, HAVING, QUALIFY,
 * ORDER BY, join conditions). Nested ones are found when a step's own SQL is planned.
 */
export function findCandidates(root: AstNode, aggregates: ReadonlySet<string>): Candidate[] {
  if (root.type === 'SET_OPERATION_NODE') return setOperationCandidates(root, aggregates);
  if (root.type !== 'SELECT_NODE') return [];
  const out: Candidate[] = [];
  for (const entry of (root.cte_map?.map ?? []) as AstNode[]) {
    const body = entry.value?.query?.node as AstNode | undefined;
    if (!body || body.type === 'RECURSIVE_CTE_NODE' || body.type === 'CTE_NODE') continue;
    const name = String(entry.key);
    out.push({
      kind: 'table', what: `CTE ${name}`, body,
      replace: (temp) => {
        const aliases = (entry.value.aliases ?? []) as string[];
        for (const ref of cteReferences(root, name)) {
          const own = (ref.column_name_alias ?? []) as string[];
          become(ref, baseTableNode(temp, String(ref.alias || ref.table_name), own.length ? own : aliases));
        }
        root.cte_map.map = (root.cte_map.map as AstNode[]).filter((e) => e !== entry);
      },
    });
  }
  const derived = (from: AstNode | null | undefined): void => {
    if (!from) return;
    if (from.type === 'JOIN') {
      derived(from.left);
      derived(from.right);
    } else if (from.type === 'SUBQUERY' && !('class' in from)) {
      const alias = String(from.alias ?? '');
      out.push({
        kind: 'table', what: alias ? `derived table ${alias}` : 'derived table', body: from.subquery.node,
        replace: (temp) => become(from, baseTableNode(temp, alias || 'unnamed_subquery', (from.column_name_alias ?? []) as string[])),
      });
    }
  };
  derived(root.from_table);
  const visit = (e: AstNode | null | undefined): void => {
    if (!e || typeof e !== 'object') return;
    if (e.class === 'SUBQUERY') {
      const type = String(e.subquery_type);
      const body = e.subquery.node as AstNode;
      if (type === 'SCALAR') {
        out.push({ kind: 'scalar', what: 'scalar subquery', body, replace: (temp) => become(e, { ...scalarPlaceholder(temp), alias: e.alias ?? '' }) });
      } else if (type === 'ANY') {
        out.push({ kind: 'table', what: e.comparison_type === 'COMPARE_EQUAL' ? 'IN subquery' : 'ANY subquery', body, replace: (temp) => { e.subquery = { ...e.subquery, node: selectAllFrom(temp) }; } });
      } else if (type === 'EXISTS' || type === 'NOT_EXISTS') {
        const negate = type === 'NOT_EXISTS';
        out.push({
          kind: 'exists', what: `${negate ? 'NOT EXISTS' : 'EXISTS'} subquery`, body,
          replace: (temp) => become(e, negate ? { class: 'OPERATOR', type: 'OPERATOR_NOT', alias: e.alias ?? '', query_location: 0, children: [scalarPlaceholder(temp)] } : { ...scalarPlaceholder(temp), alias: e.alias ?? '' }),
        });
      }
      // The comparison's left side (x IN (...)) may hold subqueries of its own.
      visit(e.child);
      return;
    }
    for (const child of expressionChildren(e)) visit(child);
  };
  for (const e of [...selectExpressions(root), ...fromExpressions(root.from_table)]) visit(e);
  return out;
}

/**
 * The branches of a set operation (UNION, EXCEPT, INTERSECT, nested), in order. Undefined
 * when the tree has what spans branches below its top (a branch's own ORDER BY or LIMIT,
 * CTEs) or matches columns by name (UNION BY NAME).
 */
export function setOperationBranches(root: AstNode): AstNode[] | undefined {
  const out: AstNode[] = [];
  const walk = (n: AstNode): boolean => {
    if (n.type !== 'SET_OPERATION_NODE') {
      out.push(n);
      return true;
    }
    if (n.setop_type === 'UNION_BY_NAME' || (n.cte_map?.map ?? []).length) return false;
    if (n !== root && (n.modifiers ?? []).length) return false;
    return walk(n.left) && walk(n.right);
  };
  return walk(root) ? out : undefined;
}

/**
 * A filter and projection of one table and nothing else (no aggregate, window, subquery,
 * DISTINCT, ORDER BY or LIMIT): a branch of a set operation its fragments can compute.
 */
export function plainScan(node: AstNode, aggregates: ReadonlySet<string>): boolean {
  if (node.type !== 'SELECT_NODE' || !isBaseTable(node.from_table) || node.from_table.sample || node.sample) return false;
  if ((node.modifiers ?? []).length || (node.cte_map?.map ?? []).length || (node.group_expressions ?? []).length || node.having || node.qualify) return false;
  if (node.aggregate_handling !== 'STANDARD_HANDLING') return false;
  return ![...(node.select_list ?? []), node.where_clause].some((e: AstNode | null) => someExpression(e, (x) => x.class === 'WINDOW' || x.class === 'SUBQUERY' || (x.class === 'FUNCTION' && aggregates.has(String(x.function_name).toLowerCase()))));
}

/** Each branch of a set operation that is more than a plain scan becomes a step; the set operation then reads its result. */
function setOperationCandidates(root: AstNode, aggregates: ReadonlySet<string>): Candidate[] {
  const branches = setOperationBranches(root);
  if (!branches) return [];
  const out: Candidate[] = [];
  branches.forEach((body, i) => {
    if (plainScan(body, aggregates)) return;
    out.push({ kind: 'table', what: `set operation branch ${i + 1}`, body, replace: (temp) => become(body, selectAllFrom(temp)) });
  });
  return out;
}

/** `(SELECT * FROM name)`: stands for a constant step's value until the query is planned with it. */
function scalarPlaceholder(name: string): AstNode {
  return { class: 'SUBQUERY', type: 'SUBQUERY', alias: '', query_location: 0, subquery_type: 'SCALAR', subquery: { node: selectAllFrom(name), named_param_map: [] }, child: null, comparison_type: 'INVALID' };
}

/** The constant step a scalar subquery placeholder stands for, if it is one. */
function placeholderName(e: AstNode): string | undefined {
  return e.class === 'SUBQUERY' && e.subquery_type === 'SCALAR' ? materializedRead(e.subquery?.node) : undefined;
}

/**
 * Put the constants of steps that ran in place of their placeholders, anywhere in the
 * query. `constant` turns a constant's SQL into an expression node.
 */
export function substituteConstants(root: AstNode, temps: ReadonlyMap<string, MaterializedInput>, constant: (sql: string) => AstNode): void {
  visitNodes(root, (node) => {
    const name = placeholderName(node);
    const input = name ? temps.get(name) : undefined;
    if (input?.kind !== 'constant') return true;
    become(node, { ...constant(input.sql), alias: node.alias ?? '' });
    return false;
  });
}

/**
 * Is this subquery in a WHERE clause a read of a materialized result and nothing else
 * (`x IN (SELECT * FROM __pdb_m...)`)? Such a subquery is evaluated wherever the
 * result's table is read whole: by every fragment, as a broadcast table.
 */
export function materializedRead(subquery: AstNode): string | undefined {
  const from = subquery?.from_table as AstNode | undefined;
  if (subquery?.type !== 'SELECT_NODE' || !from || !isBaseTable(from) || subquery.where_clause || (subquery.modifiers ?? []).length) return undefined;
  if ((subquery.cte_map?.map ?? []).length || (subquery.group_expressions ?? []).length || subquery.having) return undefined;
  const items = subquery.select_list as AstNode[];
  if (items.length !== 1 || items[0].class !== 'STAR' || items[0].relation_name || items[0].exclude_list?.length || Object.keys(items[0].replace_list ?? {}).length) return undefined;
  const name = String(from.table_name);
  return name.startsWith(MATERIALIZED_PREFIX) ? name : undefined;
}

/** Nested types do not round-trip through text exactly; their subqueries are not made constants. */
export function constantType(type: string): boolean {
  return !/[[\]()]|STRUCT|MAP|UNION|LIST/i.test(type.replace(/^DECIMAL\(\d+,\s*\d+\)$/i, 'DECIMAL'));
}

/** A typed literal of the value DuckDB printed as `text` (NULL for null). */
export function typedLiteral(text: string | null, type: string): string {
  return text === null ? `CAST(NULL AS ${type})` : `CAST(${sqlString(text)} AS ${type})`;
}

/**
 * The plan that stores a step's rows rather than answering with them. When the reduce step
 * only passes one output through (`SELECT * FROM v`), that output's tasks store their
 * partials; otherwise what the reduce step would compute runs as a stage of one task on a
 * worker, over every output hash-partitioned into one partition, and that task stores it.
 */
export function storingPlan(plan: Plan): Plan {
  const views = plan.reduce.views;
  if (views.length === 0) throw new PuffinError('internal', 'a plan that reads no table is not materialized');
  const passthrough = views.length === 1
    && new RegExp(`^SELECT \\* FROM (${escapeRegExp(sqlIdent(views[0].name))}|${escapeRegExp(views[0].name)})$`).test(plan.reduce.sql.trim())
    && sameColumns(views[0].columns, plan.output);
  const store = (name: string, fragments: Fragment[], stages: Stage[]): Plan => ({
    ...plan,
    fragments: fragments.map((f) => (f.output === name && !f.shuffleWrite ? { ...f, store: true } : f)),
    stages: stages.map((s) => (s.id === name ? { ...s, output: { ...s.output, store: true } } : s)),
    reduce: { views: [], sql: '' },
    stored: name,
  });
  if (passthrough) return store(views[0].name, plan.fragments, plan.stages ?? []);
  const single = (columns: Column[]) => ({ kind: 'hash' as const, keys: [{ expr: sqlIdent(columns[0].name), type: columns[0].type }], count: 1 });
  const byView = new Map(views.map((v) => [v.name, v]));
  const fragments = plan.fragments.map((f) => (byView.has(f.output) && !f.shuffleWrite ? { ...f, shuffleWrite: { stage: f.output, partitioning: single(byView.get(f.output)!.columns) } } : f));
  const stages = (plan.stages ?? []).map((s) => (byView.has(s.id) && s.output.partitioning.kind === 'single' ? { ...s, output: { ...s.output, partitioning: single(s.output.columns) } } : s));
  const last: Stage = {
    id: STORED_STAGE,
    sql: plan.reduce.sql,
    reads: views.map((v) => ({ view: v.name, stage: v.name, columns: v.columns })),
    tables: [],
    tasks: 1,
    output: { columns: plan.output, partitioning: { kind: 'single' } },
    reason: 'the last step of a materialized subquery, on a worker: one task computes what the reduce step would, and stores it',
  };
  return store(STORED_STAGE, fragments, [...stages, last]);
}

/** The stage that computes and stores a materialized subquery whose last step is not a passthrough. */
export const STORED_STAGE = '__stored';

/** The same columns, names and types, in the same order. */
export function sameColumns(a: readonly Column[], b: readonly Column[]): boolean {
  return a.length === b.length && a.every((c, i) => c.name === b[i].name && c.type === b[i].type);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
