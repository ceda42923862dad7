// Result comparison for differential tests: same columns, same rows as a multiset (or in
// order, where ORDER BY fixes it), floating point within a relative tolerance.

import assert from 'node:assert/strict';
import type { JsonValue, QueryResult } from '../../runtime/engine/engine.ts';

const FLOAT_TYPES = /^(DOUBLE|FLOAT|REAL)$/i;

function close(a: number, b: number, tolerance: number): boolean {
  if (a === b) return true;
  return Math.abs(a - b) <= tolerance * Math.max(Math.abs(a), Math.abs(b), 1e-300);
}

function valuesEqual(a: JsonValue, b: JsonValue, isFloat: boolean, tolerance: number): boolean {
  if (a === b) return true;
  if (isFloat && typeof a === 'number' && typeof b === 'number') return close(a, b, tolerance);
  return JSON.stringify(a) === JSON.stringify(b);
}

/** A sort key for rows that keeps floats comparable within tolerance (rounded to 9 significant digits). */
function rowKey(row: JsonValue[], floats: boolean[]): string {
  return JSON.stringify(row.map((v, i) => (floats[i] && typeof v === 'number' ? Number(v.toPrecision(9)) : v)));
}

export interface CompareOptions {
  /** The query's ORDER BY fixes the row order. */
  ordered?: boolean;
  tolerance?: number;
}

export function assertSameResult(actual: QueryResult, expected: QueryResult, options: CompareOptions = {}, label = ''): void {
  const tolerance = options.tolerance ?? 1e-9;
  assert.deepEqual(actual.columns, expected.columns, `${label}: columns differ`);
  assert.equal(actual.rows.length, expected.rows.length, `${label}: row count differs`);
  const floats = expected.columns.map((c) => FLOAT_TYPES.test(c.type));
  let a = actual.rows;
  let e = expected.rows;
  if (!options.ordered) {
    // Each row's key is computed once (a comparator that builds keys costs n log n of them).
    const sort = (rows: JsonValue[][]) =>
      rows
        .map((row) => ({ row, key: rowKey(row, floats) }))
        .sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0))
        .map((x) => x.row);
    a = sort(a);
    e = sort(e);
  }
  for (let r = 0; r < e.length; r++) {
    for (let c = 0; c < e[r].length; c++) {
      if (!valuesEqual(a[r][c], e[r][c], floats[c], tolerance)) {
        assert.fail(`${label}: row ${r} column ${expected.columns[c].name}: got ${JSON.stringify(a[r][c])}, want ${JSON.stringify(e[r][c])}`);
      }
    }
  }
}

/** Does the query's outermost statement end in ORDER BY (so row order is part of the answer)? */
export function isOrdered(sql: string): boolean {
  const stripped = sql.replace(/--.*$/gm, '').replace(/'[^']*'/g, "''").replace(/\([^()]*\)/g, '()');
  let prev = '';
  let s = stripped;
  while (s !== prev) { prev = s; s = s.replace(/\([^()]*\)/g, ''); }
  return /\border\s+by\b/i.test(s);
}
