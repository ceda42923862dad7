// File pruning with min/max statistics. Each conjunct that compares a column with a
// constant becomes a predicate over per-file statistics (`col = c` keeps a file when
// min <= c <= max, ...), and DuckDB evaluates it over a table of all files' statistics, so
// constants are cast and compared exactly as DuckDB would compare the data itself.
// Unknown statistics keep a file; anything the rules do not cover keeps every file.

import type { DuckDBConnection } from '@duckdb/node-api';
import type { Column, DataFile } from '../catalog/types.ts';
import { PuffinError } from '../errors.ts';
import { sqlIdent } from '../sql/quote.ts';
import { booleanConstant, colRef, conjunction, someExpression, type AstNode } from './ast.ts';
import { isVolatileFunction } from './scope.ts';

const FLIP: Record<string, string> = {
  COMPARE_EQUAL: 'COMPARE_EQUAL',
  COMPARE_LESSTHAN: 'COMPARE_GREATERTHAN',
  COMPARE_LESSTHANOREQUALTO: 'COMPARE_GREATERTHANOREQUALTO',
  COMPARE_GREATERTHAN: 'COMPARE_LESSTHAN',
  COMPARE_GREATERTHANOREQUALTO: 'COMPARE_LESSTHANOREQUALTO',
};

// Float statistics in Parquet leave NaN out of min/max while DuckDB orders NaN above every
// number, so `x > 1e9` can match a file whose max is 5: float columns are never pruned.
const UNPRUNABLE_TYPES = /^(FLOAT|DOUBLE|REAL)\b/i;

/** coalesce(a, b): an operator, not a function, in DuckDB's AST. */
function coalesce(...children: AstNode[]): AstNode {
  return { class: 'OPERATOR', type: 'OPERATOR_COALESCE', alias: '', query_location: 0, children };
}

function comparison(type: string, left: AstNode, right: AstNode): AstNode {
  return { class: 'COMPARISON', type, alias: '', query_location: 0, left, right };
}

function isConstant(expr: AstNode): boolean {
  return !someExpression(expr, (e) =>
    e.class === 'COLUMN_REF' || e.class === 'SUBQUERY' || e.class === 'PARAMETER' || e.class === 'WINDOW' || e.class === 'STAR' || e.class === 'LAMBDA' ||
    (e.class === 'FUNCTION' && isVolatileFunction(String(e.function_name))));
}

export interface PruneResult {
  /** Indices of the files that may hold matching rows, ascending. */
  kept: number[];
  /** The predicate that was applied, in SQL over the table's columns; null if none. */
  applied: AstNode | null;
}

/** Statistics columns of the i-th table column in the stats relation. */
const minCol = (i: number) => `__min_${i}`;
const maxCol = (i: number) => `__max_${i}`;
const nullsCol = (i: number) => `__nulls_${i}`;

/**
 * Translate conjuncts (column references unqualified, naming the table's columns) into a
 * predicate over the stats relation. Returns the predicate, the source conjuncts it
 * covers, and the columns it reads.
 */
export function pruningPredicate(filters: readonly AstNode[], columns: readonly Column[]): { predicate: AstNode | null; used: AstNode[]; columnIndexes: Set<number> } {
  const index = new Map(columns.map((c, i) => [c.name.toLowerCase(), i]));
  const columnIndexes = new Set<number>();

  const columnOf = (e: AstNode): number | undefined => {
    if (e.class !== 'COLUMN_REF' || e.column_names.length !== 1) return undefined;
    const i = index.get(String(e.column_names[0]).toLowerCase());
    if (i === undefined || UNPRUNABLE_TYPES.test(columns[i].type)) return undefined;
    return i;
  };

  /** A leaf over column i: false when the file holds only NULLs, else the range test (unknown stats keep). */
  const leaf = (i: number, range: AstNode): AstNode => {
    columnIndexes.add(i);
    const allNull = comparison('COMPARE_EQUAL', colRef(nullsCol(i)), colRef('__rows'));
    return {
      class: 'CASE', type: 'CASE_EXPR', alias: '', query_location: 0,
      case_checks: [{ when_expr: allNull, then_expr: booleanConstant(false) }],
      else_expr: coalesce(range, booleanConstant(true)),
    };
  };

  const compare = (type: string, i: number, value: AstNode): AstNode | null => {
    const min = colRef(minCol(i));
    const max = colRef(maxCol(i));
    switch (type) {
      case 'COMPARE_EQUAL':
        return leaf(i, conjunction('AND', [
          comparison('COMPARE_LESSTHANOREQUALTO', min, value),
          comparison('COMPARE_GREATERTHANOREQUALTO', max, structuredClone(value)),
        ]));
      case 'COMPARE_LESSTHAN': return leaf(i, comparison('COMPARE_LESSTHAN', min, value));
      case 'COMPARE_LESSTHANOREQUALTO': return leaf(i, comparison('COMPARE_LESSTHANOREQUALTO', min, value));
      case 'COMPARE_GREATERTHAN': return leaf(i, comparison('COMPARE_GREATERTHAN', max, value));
      case 'COMPARE_GREATERTHANOREQUALTO': return leaf(i, comparison('COMPARE_GREATERTHANOREQUALTO', max, value));
      default: return null;
    }
  };

  const translate = (e: AstNode): AstNode | null => {
    if (e.class === 'CONJUNCTION') {
      const parts = (e.children as AstNode[]).map(translate);
      if (e.type === 'CONJUNCTION_AND') {
        const known = parts.filter((p): p is AstNode => p !== null);
        return known.length ? conjunction('AND', known) : null;
      }
      if (e.type === 'CONJUNCTION_OR') return parts.every((p) => p !== null) ? conjunction('OR', parts as AstNode[]) : null;
      return null;
    }
    if (e.class === 'COMPARISON' && e.type in FLIP) {
      const l = columnOf(e.left);
      if (l !== undefined && isConstant(e.right)) return compare(e.type, l, e.right);
      const r = columnOf(e.right);
      if (r !== undefined && isConstant(e.left)) return compare(FLIP[e.type], r, e.left);
      return null;
    }
    if (e.class === 'BETWEEN') {
      const i = columnOf(e.input);
      if (i === undefined || !isConstant(e.lower) || !isConstant(e.upper)) return null;
      return leaf(i, conjunction('AND', [
        comparison('COMPARE_GREATERTHANOREQUALTO', colRef(maxCol(i)), e.lower),
        comparison('COMPARE_LESSTHANOREQUALTO', colRef(minCol(i)), e.upper),
      ]));
    }
    if (e.class === 'OPERATOR' && e.type === 'COMPARE_IN') {
      const [target, ...values] = e.children as AstNode[];
      const i = columnOf(target);
      if (i === undefined || values.length === 0 || values.length > 1000 || !values.every(isConstant)) return null;
      return conjunction('OR', values.map((v) => compare('COMPARE_EQUAL', i, v)!));
    }
    if (e.class === 'OPERATOR' && (e.type === 'OPERATOR_IS_NULL' || e.type === 'OPERATOR_IS_NOT_NULL')) {
      const target = e.children[0] as AstNode;
      if (target.class !== 'COLUMN_REF' || target.column_names.length !== 1) return null;
      const i = index.get(String(target.column_names[0]).toLowerCase());
      if (i === undefined) return null;
      columnIndexes.add(i);
      const test = e.type === 'OPERATOR_IS_NULL'
        ? comparison('COMPARE_GREATERTHAN', colRef(nullsCol(i)), { class: 'CONSTANT', type: 'VALUE_CONSTANT', alias: '', query_location: 0, value: { type: { id: 'BIGINT', type_info: null }, is_null: false, value: 0 } })
        : comparison('COMPARE_LESSTHAN', colRef(nullsCol(i)), colRef('__rows'));
      return coalesce(test, booleanConstant(true));
    }
    return null;
  };

  const used: AstNode[] = [];
  const parts: AstNode[] = [];
  for (const f of filters) {
    const p = translate(f);
    if (p) {
      parts.push(p);
      used.push(f);
    }
  }
  return { predicate: parts.length ? conjunction('AND', parts) : null, used, columnIndexes };
}

/**
 * Evaluate the pruning predicate over the files' statistics. `printSelect` prints a SELECT
 * AST (the planner's printer), so the predicate is evaluated as DuckDB SQL.
 */
export async function pruneFiles(
  conn: DuckDBConnection,
  files: readonly DataFile[],
  columns: readonly Column[],
  filters: readonly AstNode[],
  printWhere: (predicate: AstNode) => Promise<string>,
): Promise<PruneResult> {
  const all = files.map((_, i) => i);
  if (filters.length === 0 || files.length === 0) return { kept: all, applied: null };
  const { predicate, used, columnIndexes } = pruningPredicate(filters, columns);
  if (!predicate) return { kept: all, applied: null };

  const cols = [...columnIndexes].sort((a, b) => a - b);
  const table = `__prune_${Math.random().toString(36).slice(2)}`;
  const defs = ['"__i" INTEGER', '"__rows" BIGINT', ...cols.flatMap((i) => [`"${minCol(i)}" VARCHAR`, `"${maxCol(i)}" VARCHAR`, `"${nullsCol(i)}" BIGINT`])];
  await conn.run(`CREATE TEMP TABLE ${table} (${defs.join(', ')})`);
  try {
    const appender = await conn.createAppender(table, 'main', 'temp');
    files.forEach((file, fi) => {
      appender.appendInteger(fi);
      appender.appendBigInt(BigInt(file.rowCount));
      for (const i of cols) {
        const s = file.stats[columns[i].name];
        if (s?.min === undefined || s.min === null) appender.appendNull(); else appender.appendVarchar(String(s.min));
        if (s?.max === undefined || s.max === null) appender.appendNull(); else appender.appendVarchar(String(s.max));
        if (s?.nulls === undefined || s.nulls === null) appender.appendNull(); else appender.appendBigInt(BigInt(s.nulls));
      }
      appender.endRow();
    });
    appender.closeSync();
    const typed = cols.flatMap((i) => {
      const t = columns[i].type;
      return [`TRY_CAST("${minCol(i)}" AS ${t}) AS "${minCol(i)}"`, `TRY_CAST("${maxCol(i)}" AS ${t}) AS "${maxCol(i)}"`, `"${nullsCol(i)}"`];
    });
    const where = await printWhere(predicate);
    const sql = `SELECT "__i" FROM (SELECT "__i", "__rows", ${typed.join(', ')} FROM temp.${sqlIdent(table)}) WHERE ${where} ORDER BY "__i"`;
    let kept: number[];
    try {
      const reader = await conn.runAndReadAll(sql);
      kept = reader.getRows().map((r) => Number(r[0]));
    } catch (err) {
      // A constant DuckDB cannot compare with the column (a type error the query itself
      // will report) prunes nothing rather than failing the plan here.
      if (/Conversion Error|Binder Error|Invalid Input/.test((err as Error).message)) return { kept: all, applied: null };
      throw new PuffinError('internal', `pruning failed: ${(err as Error).message}`);
    }
    return { kept, applied: conjunction('AND', used) };
  } finally {
    await conn.run(`DROP TABLE IF EXISTS temp.${sqlIdent(table)}`);
  }
}
