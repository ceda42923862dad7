// Scan predicates: the small JSON-able filter the planner hands to scan planning, and the
// "might any row match?" evaluation of it over what metadata knows about a set of rows
// (a manifest's partition summary, one file's partition tuple, one file's column bounds).
// Evaluation is inclusive: when in doubt a file is kept. Anything not understood is `true`.

import type { LiteralInput, LiteralRange } from './literals.ts';
import { compareValues, type IcebergValue } from './values.ts';

export type ComparisonOp = '=' | '<' | '<=' | '>' | '>=' | '!=';

export type ScanPredicate =
  | { op: 'and' | 'or'; args: ScanPredicate[] }
  | { op: ComparisonOp; column: string; value: LiteralInput | null }
  | { op: 'in'; column: string; values: (LiteralInput | null)[] }
  | { op: 'is_null' | 'not_null'; column: string }
  | { op: 'between'; column: string; low: LiteralInput | null; high: LiteralInput | null };

/** What one predicate leaf demands of a single column's values. */
export type ValueTest =
  | { kind: 'range'; lo?: IcebergValue; loInclusive: boolean; hi?: IcebergValue; hiInclusive: boolean }
  | { kind: 'in'; ranges: LiteralRange[] }
  | { kind: 'ne'; value: IcebergValue }
  | { kind: 'is_null' }
  | { kind: 'not_null' };

/** A predicate compiled against a schema: leaves name field ids and carry typed tests. */
export type BoundPredicate =
  | { kind: 'true' }
  | { kind: 'false' }
  | { kind: 'and' | 'or'; args: BoundPredicate[] }
  | { kind: 'test'; fieldId: number; test: ValueTest };

/**
 * What metadata knows about one column over a set of rows. Bounds cover non-null, non-NaN
 * values only; `undefined` means unknown.
 */
export interface ValueStats {
  lower?: IcebergValue;
  upper?: IcebergValue;
  /** Some value is null. */
  hasNull?: boolean;
  /** Every value is null (so no bound applies). */
  allNull?: boolean;
  /** Some value is NaN (floating point columns only). */
  hasNaN?: boolean;
  /** The column is float or double: NaN compares above everything in DuckDB. */
  floating?: boolean;
}

/** Might some value described by `stats` pass `test`? False only when it surely cannot. */
export function mightMatch(test: ValueTest, stats: ValueStats): boolean {
  switch (test.kind) {
    case 'is_null':
      return stats.hasNull !== false;
    case 'not_null':
      return stats.allNull !== true;
    case 'ne': {
      if (stats.floating && stats.hasNaN !== false) return true;
      const { lower, upper } = stats;
      if (lower === undefined || upper === undefined) return true;
      return !(compareValues(lower, test.value) === 0 && compareValues(upper, test.value) === 0);
    }
    case 'in':
      return test.ranges.some((r) => mightMatch({ kind: 'range', lo: r.lo, loInclusive: true, hi: r.hi, hiInclusive: true }, stats));
    case 'range': {
      if (stats.allNull === true) return false;
      // NaN sorts above every number in DuckDB, so an open-ended `>` may match NaN rows.
      if (stats.floating && test.hi === undefined && stats.hasNaN !== false) return true;
      if (test.hi !== undefined && stats.lower !== undefined) {
        const c = compareValues(stats.lower, test.hi);
        if (c > 0 || (c === 0 && !test.hiInclusive)) return false;
      }
      if (test.lo !== undefined && stats.upper !== undefined) {
        const c = compareValues(stats.upper, test.lo);
        if (c < 0 || (c === 0 && !test.loInclusive)) return false;
      }
      return true;
    }
  }
}

/** Does an exactly known value (a partition value) pass `test`? */
export function valuePasses(test: ValueTest, value: IcebergValue | null): boolean {
  if (value === null) return test.kind === 'is_null';
  // NaN compares above everything in DuckDB but unordered here: keep, rather than guess.
  if (typeof value === 'number' && Number.isNaN(value)) return test.kind !== 'is_null';
  switch (test.kind) {
    case 'is_null': return false;
    case 'not_null': return true;
    case 'ne': return compareValues(value, test.value) !== 0;
    case 'in': return test.ranges.some((r) => compareValues(value, r.lo) >= 0 && compareValues(value, r.hi) <= 0);
    case 'range': {
      if (test.lo !== undefined) {
        const c = compareValues(value, test.lo);
        if (c < 0 || (c === 0 && !test.loInclusive)) return false;
      }
      if (test.hi !== undefined) {
        const c = compareValues(value, test.hi);
        if (c > 0 || (c === 0 && !test.hiInclusive)) return false;
      }
      return true;
    }
  }
}

/** Evaluate a bound predicate, asking `leaf` about each test. */
export function evaluate(predicate: BoundPredicate, leaf: (fieldId: number, test: ValueTest) => boolean): boolean {
  switch (predicate.kind) {
    case 'true': return true;
    case 'false': return false;
    case 'and': return predicate.args.every((p) => evaluate(p, leaf));
    case 'or': return predicate.args.some((p) => evaluate(p, leaf));
    case 'test': return leaf(predicate.fieldId, predicate.test);
  }
}

/** Build and/or nodes, folding constants so `true` leaves cost nothing at evaluation. */
export function combine(kind: 'and' | 'or', args: BoundPredicate[]): BoundPredicate {
  const neutral = kind === 'and' ? 'true' : 'false';
  const absorbing = kind === 'and' ? 'false' : 'true';
  const kept: BoundPredicate[] = [];
  for (const a of args) {
    if (a.kind === absorbing) return a;
    if (a.kind !== neutral) kept.push(a);
  }
  if (kept.length === 0) return { kind: neutral };
  return kept.length === 1 ? kept[0] : { kind, args: kept };
}

/** The field ids a bound predicate reads. */
export function referencedFieldIds(predicate: BoundPredicate, into = new Set<number>()): Set<number> {
  if (predicate.kind === 'test') into.add(predicate.fieldId);
  if (predicate.kind === 'and' || predicate.kind === 'or') for (const a of predicate.args) referencedFieldIds(a, into);
  return into;
}
