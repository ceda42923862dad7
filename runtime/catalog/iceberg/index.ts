// The Iceberg reader's public surface: open a table, plan a scan (the "table scanning API"),
// and build the DuckDB SQL that reads what the scan kept. Lower layers (Avro, manifests,
// bounds, transforms) are exported for the writer and for tools.

export { openIcebergTable, type IcebergTable, type OpenTableOptions } from './table.ts';
export {
  planTableScan,
  type FieldMapping,
  type IcebergDataFile,
  type IcebergDeleteFile,
  type IcebergScan,
  type PlanScanOptions,
  type ScanCounts,
} from './scan.ts';
export { buildIcebergReadSql, type IcebergReadInput, type ReadSqlOptions } from './read.ts';
export type { ScanPredicate, ComparisonOp } from './predicate.ts';
export { ManifestCache, sharedManifestCache, type ManifestCacheStats } from './manifest-cache.ts';
export { localFileIO, objectStoreFileIO, resolveLocation, toUri, type FileIO, type Reroot } from './io.ts';
export {
  decodeTableMetadata,
  findCurrentMetadataFile,
  parseTableMetadata,
  schemaFor,
  selectSnapshot,
  type PartitionField,
  type PartitionSpec,
  type Snapshot,
  type SnapshotRef,
  type SnapshotSelector,
  type SortOrder,
  type TableMetadata,
} from './metadata.ts';
export { decodeManifest, decodeManifestList, dataSequenceNumber, fileSequenceNumber, type Manifest, type ManifestEntry, type ManifestFile } from './manifest.ts';
export { readAvroContainer, writeAvroContainer, type AvroContainer } from './avro.ts';
export { boundToSql, decodeBound, encodeBound, valueToSql } from './bounds.ts';
export { parseLiteral, parseValue, type LiteralInput, type LiteralRange } from './literals.ts';
export { applyTransform, bucketValue, icebergHash, parseTransform, projectTest, transformResultType, transformToString, type Transform } from './transforms.ts';
export { parseSchema, parseType, toDuckDBType, typeToString, type IcebergSchema, type IcebergType, type NestedField, type PrimitiveType } from './types.ts';
export type { IcebergValue } from './values.ts';
