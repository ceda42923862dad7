// Which delete files apply to which data file (spec: Scan Planning, scope rules):
//  - a position delete file applies to data files of the same partition (spec and values)
//    whose data sequence number is <= its own, and only to `referenced_data_file` when set;
//  - a v3 deletion vector (a position delete in a Puffin file) applies by the same rules, and
//    where one applies to a data file, that file's position delete files do not;
//  - an equality delete file applies to data files whose data sequence number is strictly
//    lower than its own, in the same partition, or in every partition when the delete file's
//    spec is unpartitioned (a global delete).
// Position delete files of an unpartitioned spec are also treated as global: their rows name
// data files by path, so attaching them more widely never deletes a wrong row.
// Equality deletes whose bounds cannot meet a data file's bounds are dropped (the metrics
// check the spec allows), unless both sides may hold NULLs, which match each other.

import { decodeBound } from './bounds.ts';
import { lookup, type ContentFile } from './manifest.ts';
import type { NestedField } from './types.ts';
import { isPrimitive } from './types.ts';
import { compareValues, isOrdered } from './values.ts';

export interface IndexedFile<T> {
  file: ContentFile;
  dataSequenceNumber: bigint;
  /** Spec id and partition values, as one comparable key. */
  partitionKey: string;
  /** The delete file's spec has no partition fields. */
  unpartitioned: boolean;
  ref: T;
}

/** Sorted by sequence number, for "all with sequence number above N" lookups. */
class BySequence<T> {
  private readonly items: IndexedFile<T>[] = [];
  private sorted = true;

  add(item: IndexedFile<T>): void {
    this.items.push(item);
    this.sorted = false;
  }

  /** Items with sequence number > seq (strict) or >= seq. */
  from(seq: bigint, strict: boolean): IndexedFile<T>[] {
    if (!this.sorted) {
      this.items.sort((a, b) => (a.dataSequenceNumber < b.dataSequenceNumber ? -1 : a.dataSequenceNumber > b.dataSequenceNumber ? 1 : 0));
      this.sorted = true;
    }
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const s = this.items[mid].dataSequenceNumber;
      if (strict ? s <= seq : s < seq) lo = mid + 1;
      else hi = mid;
    }
    return this.items.slice(lo);
  }
}

export class DeleteIndex<T> {
  private readonly positionByPartition = new Map<string, BySequence<T>>();
  private readonly positionGlobal = new BySequence<T>();
  private readonly equalityByPartition = new Map<string, BySequence<T>>();
  private readonly equalityGlobal = new BySequence<T>();
  size = 0;

  constructor(private readonly fieldsById: ReadonlyMap<number, NestedField>) {}

  add(item: IndexedFile<T>): void {
    this.size++;
    const positional = item.file.content === 'position';
    if (item.unpartitioned) {
      (positional ? this.positionGlobal : this.equalityGlobal).add(item);
      return;
    }
    const map = positional ? this.positionByPartition : this.equalityByPartition;
    let list = map.get(item.partitionKey);
    if (!list) map.set(item.partitionKey, (list = new BySequence<T>()));
    list.add(item);
  }

  /** The delete files that apply to one data file, positional first, each by sequence. */
  forDataFile(data: Omit<IndexedFile<unknown>, 'ref' | 'unpartitioned'>): IndexedFile<T>[] {
    if (this.size === 0) return [];
    const seq = data.dataSequenceNumber;
    const positional = [
      ...(this.positionByPartition.get(data.partitionKey)?.from(seq, false) ?? []),
      ...this.positionGlobal.from(seq, false),
    ].filter((d) => d.file.referencedDataFile === undefined || d.file.referencedDataFile === data.file.filePath);
    // v3: a deletion vector holds every earlier position delete of its data file, so the
    // position delete files are not applied where one applies (spec: Scan Planning).
    const vectors = positional.filter((d) => d.file.fileFormat.toLowerCase() === 'puffin');
    const positions = vectors.length > 0 ? vectors : positional;
    const equality = [
      ...(this.equalityByPartition.get(data.partitionKey)?.from(seq, true) ?? []),
      ...this.equalityGlobal.from(seq, true),
    ].filter((d) => this.mayOverlap(d.file, data.file));
    return [...positions, ...equality];
  }

  /** Could some row of `data` equal some row of the equality delete file `del`? */
  private mayOverlap(del: ContentFile, data: ContentFile): boolean {
    for (const id of del.equalityIds ?? []) {
      const field = this.fieldsById.get(id);
      if (!field || !isPrimitive(field.type) || !isOrdered(field.type)) continue;
      const type = field.type;
      // NaN equals NaN for equality deletes but sits outside the bounds.
      if (type.kind === 'float' || type.kind === 'double') continue;
      const delNulls = lookup(del.nullValueCounts, id);
      const dataNulls = lookup(data.nullValueCounts, id);
      const bothMayBeNull = delNulls !== 0 && dataNulls !== 0;
      if (bothMayBeNull) continue;
      const bounds = [lookup(del.lowerBounds, id), lookup(del.upperBounds, id), lookup(data.lowerBounds, id), lookup(data.upperBounds, id)];
      if (bounds.some((b) => b === undefined)) continue;
      const [delLo, delHi, dataLo, dataHi] = bounds.map((b) => decodeBound(type, b as Uint8Array));
      if (delLo === undefined || delHi === undefined || dataLo === undefined || dataHi === undefined) continue;
      if (compareValues(delHi, dataLo) < 0 || compareValues(dataHi, delLo) < 0) return false;
    }
    return true;
  }
}
