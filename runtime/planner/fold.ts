// Constant expressions the planner would otherwise have the coordinator's own DuckDB compute:
// table function arguments (DuckDB evaluates them while binding, so DESCRIBE would run them)
// and the constants of pruning predicates (evaluated over the files' statistics). A user can
// make such a constant arbitrarily expensive (levenshtein of two 100 KB strings), and DuckDB's
// interrupt does not stop a scalar call, so they are computed in the SQL runner instead (a
// process killed at the query's deadline) and replaced by literals of the same type.

import type { DuckDBConnection } from '@duckdb/node-api';
import type { Engine, QueryResult } from '../engine/engine.ts';
import { printNodes, parseStatement, type AstNode } from '../sql/parse.ts';
import { sqlString } from '../sql/quote.ts';
import { mapExpression, selectNode, someExpression, withAlias } from './ast.ts';
import { isVolatileFunction } from './scope.ts';

/** Runs statements where they can be stopped (the SQL runner); the result is the last one's. */
export type Evaluate = (job: { setup: string[]; sql: string }, signal?: AbortSignal) => Promise<QueryResult>;

// Types whose VARCHAR form casts back to exactly the same value. Nested types (lists of
// strings, structs) do not round-trip through text, so their parts are folded instead.
const ROUND_TRIP = /^(BOOLEAN|TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE|DECIMAL\(\d+,\d+\)|VARCHAR|BLOB|DATE|TIME|TIMESTAMP|TIMESTAMP WITH TIME ZONE|TIME WITH TIME ZONE|TIMESTAMP_S|TIMESTAMP_MS|TIMESTAMP_NS|INTERVAL|UUID)$/;

function isConstant(expr: AstNode): boolean {
  return !someExpression(expr, (e) =>
    e.class === 'COLUMN_REF' || e.class === 'SUBQUERY' || e.class === 'PARAMETER' || e.class === 'WINDOW' || e.class === 'STAR' || e.class === 'LAMBDA' ||
    e.class === 'COLUMNS' || (e.class === 'FUNCTION' && isVolatileFunction(String(e.function_name))));
}

/** A literal, or casts of one: nothing to compute. */
function isLiteral(expr: AstNode): boolean {
  if (expr.class === 'CONSTANT') return true;
  if (expr.class === 'CAST') return isLiteral(expr.child as AstNode);
  return false;
}

const EMPTY_FROM = { type: 'EMPTY', alias: '', sample: null, query_location: 0 };

/**
 * `exprs` with every computed constant subexpression replaced by a literal of its value,
 * computed by `evaluate`. Returns undefined when the constants cannot be computed (an error
 * the query itself will report); the caller then must not evaluate them itself.
 */
export async function foldConstants(
  conn: Engine | DuckDBConnection,
  exprs: AstNode[],
  evaluate: Evaluate,
  signal?: AbortSignal,
  depth = 0,
): Promise<AstNode[] | { error: string }> {
  const found: AstNode[] = [];
  const marked = exprs.map((expr) => mapExpression(expr, (e) => {
    if (isLiteral(e) || !isConstant(e)) return undefined;
    found.push(e);
    return { class: 'COLUMN_REF', type: 'COLUMN_REF', alias: '', query_location: 0, column_names: [`__fold_${found.length - 1}`] };
  }));
  if (found.length === 0) return exprs;
  const [valuesSql] = await printNodes(conn, [{ ...selectNode(found.map((e, i) => withAlias(e, `v${i}`)), EMPTY_FROM as AstNode) }]);
  const columns = found.map((_, i) => `CAST(v${i} AS VARCHAR), typeof(v${i})`).join(', ');
  let values: QueryResult;
  try {
    values = await evaluate({ setup: [], sql: `SELECT ${columns} FROM (${valuesSql})` }, signal);
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    return { error: (err as Error).message };
  }
  const row = values.rows[0] ?? [];
  const replacements: (AstNode | undefined)[] = new Array(found.length);
  const literalSql: string[] = [];
  const literalAt: number[] = [];
  for (let i = 0; i < found.length; i++) {
    const text = row[2 * i];
    const type = String(row[2 * i + 1] ?? '');
    if (type === '"NULL"' || type === 'NULL') {
      literalSql.push('NULL');
      literalAt.push(i);
    } else if (ROUND_TRIP.test(type)) {
      literalSql.push(text === null ? `CAST(NULL AS ${type})` : `CAST(${sqlString(String(text))} AS ${type})`);
      literalAt.push(i);
    }
  }
  if (literalSql.length) {
    const parsed = await parseStatement(conn, `SELECT ${literalSql.join(', ')}`);
    const list = parsed.node.select_list as AstNode[];
    literalAt.forEach((i, k) => (replacements[i] = list[k]));
  }
  // Nested values: fold their parts (bounded depth).
  for (let i = 0; i < found.length; i++) {
    if (replacements[i]) continue;
    const children = childExpressions(found[i]);
    if (children.length === 0 || depth >= 3) return { error: `a constant of type ${String(row[2 * i + 1])} cannot be evaluated ahead of the query` };
    const folded = await foldConstants(conn, children.map((c) => c.node), evaluate, signal, depth + 1);
    if (!Array.isArray(folded)) return folded;
    replacements[i] = rebuild(found[i], children, folded);
  }
  return marked.map((expr) => mapExpression(expr, (e) => {
    if (e.class !== 'COLUMN_REF' || e.column_names.length !== 1) return undefined;
    const m = /^__fold_(\d+)$/.exec(String(e.column_names[0]));
    return m ? replacements[Number(m[1])] ?? e : undefined;
  }));
}

/** The direct child expressions of a function or operator call, by position. */
function childExpressions(expr: AstNode): { node: AstNode; index: number }[] {
  if ((expr.class === 'FUNCTION' || expr.class === 'OPERATOR') && Array.isArray(expr.children)) {
    return (expr.children as AstNode[]).map((node, index) => ({ node, index }));
  }
  if (expr.class === 'CAST') return [{ node: expr.child as AstNode, index: -1 }];
  return [];
}

function rebuild(expr: AstNode, children: { node: AstNode; index: number }[], folded: AstNode[]): AstNode {
  if (expr.class === 'CAST') return { ...expr, child: folded[0] };
  const next = [...(expr.children as AstNode[])];
  children.forEach((c, k) => (next[c.index] = folded[k]));
  return { ...expr, children: next };
}
