// A Delta table as the planner's TableSnapshot: the live files of one version with per-file
// statistics for pruning (the `stats` JSON, partition values as min = max), each carrying the
// read information a worker needs (catalog/types.ts IcebergFileRead: columns by field id or
// name, partition values as constants, the deletion vector as a position delete), so Delta
// files are read by the same SQL as Iceberg ones (catalog/iceberg/read.ts).

import { PuffinError } from '../../errors.ts';
import { joinUri, toUri } from '../iceberg/io.ts';
import type { ColumnStats, DataFile, IcebergDeleteRead, TableSnapshot } from '../types.ts';
import { decodeURIComponentSafe, resolveDeletionVector } from './deletion-vectors.ts';
import { checkProtocol, type AddAction, type DeltaState } from './log.ts';
import { columnMappingMode, deltaColumns, parseStats, partitionLiteral, toColumns, type DeltaColumn } from './schema.ts';

const SCHEME = /^[a-z][a-z0-9+.-]*:/i;

/** The absolute URI of a path recorded in the log (relative to the table root, or a URI). */
export function fileUri(rootUri: string, path: string, where: string): string {
  const decoded = decodeURIComponentSafe(path, where);
  return SCHEME.test(path) ? toUri(decoded) : joinUri(rootUri, decoded);
}

/** Checks what the whole table needs before any file is described. */
export function checkTable(state: DeltaState, where: string): DeltaColumn[] {
  checkProtocol(state.protocol, where);
  const md = state.metaData;
  const provider = md.format?.provider ?? 'parquet';
  if (provider !== 'parquet') throw new PuffinError('unsupported', `${where}: data files in format '${provider}' cannot be read (only parquet)`);
  if (typeof md.schemaString !== 'string') throw new PuffinError('bad_request', `${where}: metaData has no schemaString`);
  const partitionColumns = Array.isArray(md.partitionColumns) ? md.partitionColumns : [];
  const mode = columnMappingMode(md.configuration);
  // Column mapping needs reader version 2, or the columnMapping feature at version 3.
  if (mode !== 'none') {
    const p = state.protocol;
    if (p.minReaderVersion < 2 || (p.minReaderVersion === 3 && !(p.readerFeatures ?? []).includes('columnMapping'))) {
      throw new PuffinError('bad_request', `${where}: column mapping mode '${mode}' is set but the protocol does not enable column mapping`);
    }
  }
  return deltaColumns(md.schemaString, partitionColumns, mode, where);
}

function deletesOf(add: AddAction, dataUri: string, rootUri: string, where: string): IcebergDeleteRead[] {
  const dv = add.deletionVector;
  if (!dv) return [];
  const r = resolveDeletionVector(dv, rootUri, where);
  if (r.kind === 'inline') {
    return [{
      uri: `${dataUri}#inline-deletion-vector`, path: `inline deletion vector of ${add.path}`, content: 'position', format: 'puffin', sequenceNumber: 0,
      sizeBytes: 0, rowCount: r.cardinality, contentOffset: 0, contentSizeInBytes: r.blob.length, referencedDataFile: add.path,
      inlineBlob: Buffer.from(r.blob).toString('base64'),
    }];
  }
  return [{
    uri: r.uri, path: r.uri, content: 'position', format: 'puffin', sequenceNumber: 0,
    // The file's whole size is not recorded; what the vector needs of it is a lower bound.
    sizeBytes: r.offset + r.blobSize, rowCount: r.cardinality, contentOffset: r.offset, contentSizeInBytes: r.blobSize, referencedDataFile: add.path,
  }];
}

function toDataFile(add: AddAction, columns: readonly DeltaColumn[], rootUri: string, where: string): DataFile {
  const w = `${where}: file ${add.path}`;
  if (typeof add.path !== 'string' || add.path === '') throw new PuffinError('bad_request', `${where}: an add action has no path`);
  const uri = fileUri(rootUri, add.path, w);
  const pv = add.partitionValues ?? {};
  const readSchema = columns.map((c) => {
    if (!c.partition) return { ...c.field };
    const raw = Object.hasOwn(pv, c.physicalName) ? pv[c.physicalName] : Object.hasOwn(pv, c.name) ? pv[c.name] : undefined;
    if (raw === undefined) throw new PuffinError('bad_request', `${w}: partitionValues has no value for partition column ${c.name}`);
    return { ...c.field, defaultValue: partitionLiteral(c, raw, w) };
  });
  const dv = add.deletionVector;
  const parsed = parseStats(columns, add.stats, true, w);
  const rowCount = parsed.numRecords;
  const stats: Record<string, ColumnStats> = {};
  for (const [k, s] of Object.entries(parsed.stats)) {
    // Without a row count, null counts cannot be compared with it: left out.
    stats[k] = rowCount === undefined ? { ...(s.min !== undefined ? { min: s.min } : {}), ...(s.max !== undefined ? { max: s.max } : {}) } : s;
  }
  columns.forEach((c, i) => {
    if (!c.partition) return;
    const value = readSchema[i].defaultValue;
    if (value === null) {
      if (rowCount !== undefined) stats[c.name] = { nulls: rowCount };
    } else if (c.primitive !== 'float' && c.primitive !== 'double' && c.primitive !== 'binary') {
      // A null count is compared with the row count: only with a known one.
      stats[c.name] = rowCount === undefined ? { min: value, max: value } : { min: value, max: value, nulls: 0 };
    }
  });
  if (!Number.isSafeInteger(add.size) || add.size < 0) throw new PuffinError('bad_request', `${w}: size must be a non-negative integer, got ${JSON.stringify(add.size)}`);
  const deletes = deletesOf(add, uri, rootUri, w);
  if (dv && rowCount !== undefined && dv.cardinality > rowCount) throw new PuffinError('bad_request', `${w}: its deletion vector removes ${dv.cardinality} rows of ${rowCount}`);
  return {
    uri,
    sizeBytes: add.size,
    rowCount: rowCount ?? 0,
    stats,
    iceberg: { path: add.path, format: 'parquet', sequenceNumber: 0, partition: {}, readSchema, deletes },
  };
}

/** The planner's view of one version of a Delta table rooted at `rootUri`. */
export function deltaSnapshot(name: string, rootUri: string, state: DeltaState): TableSnapshot {
  const where = `Delta table ${name} (${rootUri}) version ${state.version}`;
  const columns = checkTable(state, where);
  return {
    name,
    kind: 'delta',
    columns: toColumns(columns),
    files: state.files.map((a) => toDataFile(a, columns, rootUri, where)),
    // The version, and the table's id (metaData.id): caches keyed by snapshot id (plans,
    // results) must not mistake another table registered under the same name, or one
    // recreated at the same path, for this one at the same version.
    snapshotId: `${state.version}:${state.metaData.id ?? ''}`,
    iceberg: { fields: columns.map((c) => ({ ...c.field })) },
  };
}
