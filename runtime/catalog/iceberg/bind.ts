// Binding a ScanPredicate to a table schema (column names -> field ids, literals -> typed
// ranges), and projecting the bound predicate onto a partition spec (spec: Scan Planning,
// inclusive projection). Whatever cannot be bound becomes `true`, which keeps files.

import { parseLiteral, type LiteralInput, type LiteralRange } from './literals.ts';
import type { PartitionSpec } from './metadata.ts';
import { combine, type BoundPredicate, type ScanPredicate, type ValueTest } from './predicate.ts';
import { projectTest, transformResultType } from './transforms.ts';
import { findFieldByName, isPrimitive, type IcebergSchema, type NestedField, type PrimitiveType } from './types.ts';
import { compareValues, isOrdered } from './values.ts';

const TRUE: BoundPredicate = { kind: 'true' };

/** Bind a predicate to a schema. Unknown columns, operators and literals bind to `true`. */
export function bindPredicate(predicate: ScanPredicate | undefined, schema: IcebergSchema): BoundPredicate {
  if (!predicate || typeof predicate !== 'object') return TRUE;
  const p = predicate as ScanPredicate & Record<string, unknown>;
  if (p.op === 'and' || p.op === 'or') {
    if (!Array.isArray(p.args)) return TRUE;
    const args = p.args.map((a) => bindPredicate(a, schema));
    // An `or` with an unbindable branch keeps everything; `combine` folds that.
    return combine(p.op, args);
  }
  if (typeof p.column !== 'string') return TRUE;
  const field = findFieldByName(schema, p.column);
  if (!field || !isPrimitive(field.type)) return TRUE;
  const type = field.type;
  const test = bindTest(p, type);
  return test ? { kind: 'test', fieldId: field.id, test } : TRUE;
}

function literal(type: PrimitiveType, value: unknown): LiteralRange | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'bigint' && typeof value !== 'boolean') return undefined;
  return parseLiteral(type, value as LiteralInput);
}

function bindTest(p: ScanPredicate & Record<string, unknown>, type: PrimitiveType): ValueTest | undefined {
  switch (p.op) {
    case 'is_null': return { kind: 'is_null' };
    case 'not_null': return { kind: 'not_null' };
  }
  if (!isOrdered(type)) return undefined;
  switch (p.op) {
    case '=':
    case '<':
    case '<=':
    case '>':
    case '>=':
    case '!=': {
      const r = literal(type, p.value);
      if (!r) return undefined;
      switch (p.op) {
        case '=': return { kind: 'range', lo: r.lo, loInclusive: true, hi: r.hi, hiInclusive: true };
        case '<': return { kind: 'range', hi: r.hi, hiInclusive: false, loInclusive: true };
        case '<=': return { kind: 'range', hi: r.hi, hiInclusive: true, loInclusive: true };
        case '>': return { kind: 'range', lo: r.lo, loInclusive: false, hiInclusive: true };
        case '>=': return { kind: 'range', lo: r.lo, loInclusive: true, hiInclusive: true };
        case '!=': return compareValues(r.lo, r.hi) === 0 ? { kind: 'ne', value: r.lo } : undefined;
      }
      return undefined;
    }
    case 'in': {
      if (!Array.isArray(p.values)) return undefined;
      // NULL in an IN list matches nothing; it is dropped, not a reason to keep everything.
      const values = p.values.filter((v) => v !== null && v !== undefined);
      if (values.length === 0) return undefined;
      const ranges: LiteralRange[] = [];
      for (const v of values) {
        const r = literal(type, v);
        if (!r) return undefined;
        ranges.push(r);
      }
      return { kind: 'in', ranges };
    }
    case 'between': {
      const low = literal(type, p.low);
      const high = literal(type, p.high);
      if (!low || !high) return undefined;
      return { kind: 'range', lo: low.lo, loInclusive: true, hi: high.hi, hiInclusive: true };
    }
  }
  return undefined;
}

/** A partition field with what pruning needs about it. */
export interface BoundPartitionField {
  fieldId: number;
  name: string;
  /** Position in the spec (and in manifest-list field summaries). */
  index: number;
  sourceId: number;
  /** Type of the partition values; undefined for unknown transforms (ignored). */
  resultType?: PrimitiveType;
  sourceType?: PrimitiveType;
}

/** Resolve a spec's fields against the table's fields (all schemas, for dropped sources). */
export function bindSpec(spec: PartitionSpec, fieldsById: ReadonlyMap<number, NestedField>): BoundPartitionField[] {
  return spec.fields.map((f, index) => {
    const source = fieldsById.get(f.sourceId);
    const sourceType = source && isPrimitive(source.type) ? source.type : undefined;
    const bound: BoundPartitionField = { fieldId: f.fieldId, name: f.name, index, sourceId: f.sourceId };
    if (sourceType) {
      bound.sourceType = sourceType;
      const result = transformResultType(f.transform, sourceType);
      if (result && f.transform.kind !== 'unknown') bound.resultType = result;
    }
    return bound;
  });
}

/**
 * The inclusive projection of a bound predicate onto a spec: a predicate over partition
 * field ids that every partition holding a matching row satisfies.
 */
export function projectPredicate(predicate: BoundPredicate, spec: PartitionSpec, fields: readonly BoundPartitionField[]): BoundPredicate {
  switch (predicate.kind) {
    case 'true':
    case 'false':
      return predicate;
    case 'and':
    case 'or':
      return combine(predicate.kind, predicate.args.map((a) => projectPredicate(a, spec, fields)));
    case 'test': {
      const parts: BoundPredicate[] = [];
      spec.fields.forEach((pf, i) => {
        const bound = fields[i];
        if (pf.sourceId !== predicate.fieldId || !bound.sourceType || !bound.resultType) return;
        const projected = projectTest(pf.transform, bound.sourceType, predicate.test);
        if (projected) parts.push({ kind: 'test', fieldId: pf.fieldId, test: projected });
      });
      return combine('and', parts);
    }
  }
}
