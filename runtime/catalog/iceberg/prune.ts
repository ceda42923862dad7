// The pruning steps of scan planning, cheapest first: a manifest's partition summaries in the
// manifest list, then per entry its partition tuple and its column metrics. Everything decoded
// for a cached manifest (partition values, metrics of the fields a predicate reads) is kept
// beside it, so a warm scan evaluates predicates without decoding anything again.

import { bindSpec, projectPredicate, type BoundPartitionField } from './bind.ts';
import { decodeBound } from './bounds.ts';
import { lookup, partitionValueFromAvro, type ContentFile, type FieldSummary, type Manifest, type ManifestFile } from './manifest.ts';
import type { PartitionSpec } from './metadata.ts';
import { evaluate, mightMatch, valuePasses, type BoundPredicate, type ValueStats, type ValueTest } from './predicate.ts';
import type { NestedField, PrimitiveType } from './types.ts';
import type { IcebergValue } from './values.ts';

/** A spec bound to the table, with the scan predicate projected onto its partition values. */
export interface PreparedSpec {
  spec: PartitionSpec;
  fields: BoundPartitionField[];
  projected: BoundPredicate;
  unpartitioned: boolean;
}

export function prepareSpec(spec: PartitionSpec, fieldsById: ReadonlyMap<number, NestedField>, bound: BoundPredicate): PreparedSpec {
  const fields = bindSpec(spec, fieldsById);
  return { spec, fields, projected: projectPredicate(bound, spec, fields), unpartitioned: spec.fields.length === 0 };
}

function summaryStats(summary: FieldSummary | undefined, type: PrimitiveType): ValueStats {
  if (!summary) return {};
  const floating = type.kind === 'float' || type.kind === 'double';
  const stats: ValueStats = { hasNull: summary.containsNull, floating };
  if (summary.containsNaN !== undefined) stats.hasNaN = summary.containsNaN;
  else if (!floating) stats.hasNaN = false;
  if (summary.lowerBound) stats.lower = decodeBound(type, summary.lowerBound);
  if (summary.upperBound) stats.upper = decodeBound(type, summary.upperBound);
  // Bounds are null only when every value is null or NaN (spec: field_summary).
  if (!summary.lowerBound && !summary.upperBound && summary.containsNull && stats.hasNaN === false) stats.allNull = true;
  return stats;
}

/** Step 1: might a manifest hold a matching file, judging by its partition summaries? */
export function manifestMightMatch(mf: ManifestFile, prepared: PreparedSpec): boolean {
  if (!mf.partitions || prepared.projected.kind === 'true') return true;
  return evaluate(prepared.projected, (partitionFieldId, test) => {
    const f = prepared.fields.find((x) => x.fieldId === partitionFieldId);
    if (!f?.resultType) return true;
    return mightMatch(test, summaryStats(mf.partitions?.[f.index], f.resultType));
  });
}

/** Partition tuples of a manifest as Iceberg values, in spec order, per spec. */
const partitionValueCache = new WeakMap<Manifest, Map<number, (IcebergValue | null)[][]>>();

export function partitionValues(manifest: Manifest, prepared: PreparedSpec): (IcebergValue | null)[][] {
  let bySpec = partitionValueCache.get(manifest);
  if (!bySpec) partitionValueCache.set(manifest, (bySpec = new Map()));
  let values = bySpec.get(prepared.spec.specId);
  if (!values) {
    const positions = prepared.fields.map((f, i) => {
      const j = manifest.partitionFieldIds.indexOf(f.fieldId);
      return j >= 0 ? j : i;
    });
    const none: (IcebergValue | null)[] = [];
    values = manifest.entries.map((e) =>
      prepared.fields.length === 0
        ? none
        : prepared.fields.map((f, i) => (f.resultType ? partitionValueFromAvro(f.resultType, e.file.partition[positions[i]]) : null)),
    );
    bySpec.set(prepared.spec.specId, values);
  }
  return values;
}

/** Metrics of one field per entry of a manifest, keyed by field and type. */
const metricsCache = new WeakMap<Manifest, Map<string, (ValueStats | undefined)[]>>();

function metricsSlot(manifest: Manifest, fieldId: number, type: PrimitiveType): (ValueStats | undefined)[] {
  let byField = metricsCache.get(manifest);
  if (!byField) metricsCache.set(manifest, (byField = new Map()));
  const key = `${fieldId}:${JSON.stringify(type)}`;
  let slot = byField.get(key);
  if (!slot) byField.set(key, (slot = new Array(manifest.entries.length)));
  return slot;
}

/** What a file's metrics say about one column. Absent metrics stay unknown. */
export function fileStats(file: ContentFile, fieldId: number, type: PrimitiveType): ValueStats {
  const floating = type.kind === 'float' || type.kind === 'double';
  const stats: ValueStats = { floating };
  const lower = lookup(file.lowerBounds, fieldId);
  const upper = lookup(file.upperBounds, fieldId);
  if (lower) stats.lower = decodeBound(type, lower);
  if (upper) stats.upper = decodeBound(type, upper);
  const nulls = lookup(file.nullValueCounts, fieldId);
  if (nulls !== undefined) {
    stats.hasNull = nulls > 0;
    // All null only if there are nulls at all (an empty file aside, which has no rows to match).
    if (nulls > 0 && lookup(file.valueCounts, fieldId) === nulls) stats.allNull = true;
  }
  if (!floating) {
    stats.hasNaN = false;
  } else {
    const nans = lookup(file.nanValueCounts, fieldId);
    if (nans !== undefined) stats.hasNaN = nans > 0;
  }
  return stats;
}

/**
 * Steps 2 and 3 for the entries of one manifest at a time. The leaf tests read the entry
 * under consideration from fields, so evaluating a predicate allocates nothing per entry.
 */
export class EntryFilter {
  private manifest: Manifest | undefined;
  private prepared: PreparedSpec | undefined;
  private values: (IcebergValue | null)[][] = [];
  private slots = new Map<number, (ValueStats | undefined)[]>();
  private index = 0;
  private readonly hasMetricsFilter: boolean;

  constructor(
    private readonly bound: BoundPredicate,
    /** Types of the fields the predicate reads, by field id. */
    private readonly metricTypes: ReadonlyMap<number, PrimitiveType>,
  ) {
    this.hasMetricsFilter = bound.kind !== 'true';
  }

  /** Switch to a manifest; returns its partition tuples (in `prepared`'s field order). */
  useManifest(manifest: Manifest, prepared: PreparedSpec): (IcebergValue | null)[][] {
    this.manifest = manifest;
    this.prepared = prepared;
    this.values = partitionValues(manifest, prepared);
    this.slots = new Map([...this.metricTypes].map(([id, type]) => [id, metricsSlot(manifest, id, type)]));
    return this.values;
  }

  /** Might entry `i` of the current manifest hold a matching row? */
  keeps(i: number): boolean {
    this.index = i;
    const prepared = this.prepared as PreparedSpec;
    if (prepared.projected.kind !== 'true' && !evaluate(prepared.projected, this.partitionLeaf)) return false;
    return !this.hasMetricsFilter || evaluate(this.bound, this.metricsLeaf);
  }

  private readonly partitionLeaf = (partitionFieldId: number, test: ValueTest): boolean => {
    const fields = (this.prepared as PreparedSpec).fields;
    for (let k = 0; k < fields.length; k++) {
      if (fields[k].fieldId === partitionFieldId) return fields[k].resultType ? valuePasses(test, this.values[this.index][k]) : true;
    }
    return true;
  };

  private readonly metricsLeaf = (fieldId: number, test: ValueTest): boolean => {
    const type = this.metricTypes.get(fieldId);
    if (!type) return true;
    const slot = this.slots.get(fieldId) as (ValueStats | undefined)[];
    let stats = slot[this.index];
    if (stats === undefined) slot[this.index] = stats = fileStats((this.manifest as Manifest).entries[this.index].file, fieldId, type);
    return mightMatch(test, stats);
  };
}
