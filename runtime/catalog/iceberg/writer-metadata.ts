// Table metadata back to the spec's JSON (Table Metadata, Appendix C): the inverse of
// parseTableMetadata. Snapshot ids are 63-bit, so they are written as exact JSON integers
// (as Java writers do), which JSON.stringify cannot do for BigInt.

import type { TableMetadata } from './metadata.ts';
import { transformToString } from './transforms.ts';
import { schemaToJson, specToJson } from './writer-schema.ts';

const BIG = '@@big:';

function big(v: bigint): string {
  return `${BIG}${v}@@`;
}

export function metadataToJsonObject(m: TableMetadata): Record<string, unknown> {
  return {
    'format-version': m.formatVersion,
    ...(m.tableUuid ? { 'table-uuid': m.tableUuid } : {}),
    location: m.location,
    'last-sequence-number': big(m.lastSequenceNumber),
    'last-updated-ms': m.lastUpdatedMs,
    'last-column-id': m.lastColumnId,
    'current-schema-id': m.currentSchemaId,
    schemas: m.schemas.map(schemaToJson),
    'default-spec-id': m.defaultSpecId,
    'partition-specs': m.partitionSpecs.map(specToJson),
    'last-partition-id': m.lastPartitionId ?? Math.max(999, ...m.partitionSpecs.flatMap((s) => s.fields.map((f) => f.fieldId))),
    'default-sort-order-id': m.defaultSortOrderId,
    'sort-orders': m.sortOrders.length
      ? m.sortOrders.map((o) => ({
          'order-id': o.orderId,
          fields: o.fields.map((f) => ({ transform: transformToString(f.transform), 'source-id': f.sourceId, direction: f.direction, 'null-order': f.nullOrder })),
        }))
      : [{ 'order-id': 0, fields: [] }],
    properties: m.properties,
    'current-snapshot-id': m.currentSnapshotId === null ? -1 : big(m.currentSnapshotId),
    refs: Object.fromEntries(
      Object.entries(m.refs).map(([name, r]) => [
        name,
        {
          'snapshot-id': big(r.snapshotId),
          type: r.type,
          ...(r.minSnapshotsToKeep !== undefined ? { 'min-snapshots-to-keep': r.minSnapshotsToKeep } : {}),
          ...(r.maxSnapshotAgeMs !== undefined ? { 'max-snapshot-age-ms': r.maxSnapshotAgeMs } : {}),
          ...(r.maxRefAgeMs !== undefined ? { 'max-ref-age-ms': r.maxRefAgeMs } : {}),
        },
      ]),
    ),
    snapshots: m.snapshots.map((s) => ({
      'snapshot-id': big(s.snapshotId),
      ...(s.parentSnapshotId !== undefined ? { 'parent-snapshot-id': big(s.parentSnapshotId) } : {}),
      'sequence-number': big(s.sequenceNumber),
      'timestamp-ms': s.timestampMs,
      ...(s.manifestList !== undefined ? { 'manifest-list': s.manifestList } : { manifests: s.manifests ?? [] }),
      summary: s.summary,
      ...(s.schemaId !== undefined ? { 'schema-id': s.schemaId } : {}),
      ...(s.firstRowId !== undefined ? { 'first-row-id': big(s.firstRowId) } : {}),
      ...(s.addedRows !== undefined ? { 'added-rows': big(s.addedRows) } : {}),
    })),
    'snapshot-log': m.snapshotLog.map((e) => ({ 'timestamp-ms': e.timestampMs, 'snapshot-id': big(e.snapshotId) })),
    'metadata-log': m.metadataLog.map((e) => ({ 'timestamp-ms': e.timestampMs, 'metadata-file': e.metadataFile })),
    ...(m.formatVersion === 3 ? { 'next-row-id': big(m.nextRowId ?? 0n) } : {}),
  };
}

/** JSON text in which every marked BigInt is an exact integer literal. */
export function stringifyWithBigInts(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(/"@@big:(-?\d+)@@"/g, '$1');
}

export function metadataToJson(m: TableMetadata): string {
  return stringifyWithBigInts(metadataToJsonObject(m), 2);
}
