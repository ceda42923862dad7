// What the planner needs to know about tables, independent of how they are stored. The
// first form is a plain set of Parquet files; Iceberg tables implement the same interface.

import type { FileSetRead } from './file-sets.ts';
import type { PointerStore } from './iceberg/pointer-store.ts';

export interface Column {
  name: string;
  /** DuckDB type, e.g. 'INTEGER', 'DECIMAL(15,2)', 'VARCHAR'. */
  type: string;
}

/** Per-column statistics of one data file, from its Parquet footer (or Iceberg manifest). */
export interface ColumnStats {
  /** Lower bound as SQL literal text castable to the column type; null/absent = unknown. */
  min?: string | null;
  /** Upper bound, as `min`. */
  max?: string | null;
  /** Number of NULLs; null/absent = unknown. */
  nulls?: number | null;
}

export interface DataFile {
  /** Absolute URI: 'file:///abs/path.parquet' or 's3://bucket/key.parquet'. */
  uri: string;
  sizeBytes: number;
  rowCount: number;
  /** Keyed by column name. Columns without statistics are simply absent. */
  stats: Record<string, ColumnStats>;
  /** Iceberg tables only: what a reader needs beyond the path (field ids, deletes). */
  iceberg?: IcebergFileRead;
  /** CSV/JSON tables with hive partition directories: this file's values of the table's
   *  partition columns (TableSnapshot.fileSet.partitionColumns), as text; null for NULL. */
  partitionValues?: (string | null)[];
  /** Parquet files of more than one row group: each group's rows and compressed bytes, in
   *  file order, so the planner can split a large file into row-group ranges (planner/assign.ts). */
  rowGroups?: RowGroup[];
}

/** One Parquet row group: its row count and the compressed size of its column chunks. */
export interface RowGroup {
  rows: number;
  bytes: number;
}

// Plain data describing how to read one Iceberg data file, so it can ride in a fragment
// across process and Lambda boundaries (the same shapes as the reader's FieldMapping and
// IcebergDeleteFile in catalog/iceberg/scan.ts, which are assignable to these).

/** One column of a file read by Iceberg field id. */
export interface IcebergFieldRead {
  fieldId: number;
  name: string;
  /** DuckDB type. */
  type: string;
  /** SQL literal text used when the file lacks the field (identity partition values); null = NULL. */
  defaultValue: string | null;
  /** The column's v3 `initial-default` as text DuckDB casts to `type`: used when the file
   *  lacks the field and `defaultValue` is null. Never a file statistic (unlike defaultValue). */
  initialDefault?: string;
  /** Set when the table has a name mapping (`schema.name-mapping.default`): the names this
   *  field may carry in data files written without Parquet field ids (possibly none). */
  names?: string[];
  /** Struct columns: their fields, the same way (nested renames, defaults and name mapping). */
  children?: IcebergFieldRead[];
}

/** A delete file that applies to a data file, with what the spec's rules need to apply it. */
export interface IcebergDeleteRead {
  uri: string;
  /** The path as the manifest records it. */
  path: string;
  content: 'position' | 'equality';
  format: string;
  sequenceNumber: number;
  sizeBytes: number;
  rowCount: number;
  equalityFieldIds?: number[];
  equalityColumns?: string[];
  equalityFields?: IcebergFieldRead[];
  /** v3 deletion vectors (format 'puffin'): the blob's place in the Puffin file, and the one
   *  data file whose row positions it holds. */
  contentOffset?: number;
  contentSizeInBytes?: number;
  referencedDataFile?: string;
  /** A Delta inline deletion vector: the blob itself (base64, the deletion-vector-v1 framing),
   *  read instead of `uri`, which then names no file to fetch. */
  inlineBlob?: string;
}

/** What scan planning of an Iceberg snapshot read and kept. */
export interface IcebergPlanCounts {
  /** Manifests in the snapshot's manifest list, and those read (not skipped by their partition summaries). */
  manifestsTotal: number;
  manifestsRead: number;
  /** Live data files of the snapshot, and those kept (their partition values and bounds may match the filter). */
  filesTotal: number;
  filesKept: number;
  /** The filter planning pruned by, as the scan predicate (JSON); null when none. */
  filter: string | null;
}

export interface IcebergFileRead {
  /** The path as the manifest records it (position deletes name data files by it). */
  path: string;
  format: string;
  /** Data sequence number. */
  sequenceNumber: number;
  /** v3 row lineage: the file's first_row_id (explicit or inherited); absent when unknown
   *  (v2, or written before an upgrade to v3). Rows' `_row_id` default to it plus their position. */
  firstRowId?: number;
  /** Partition field name -> value as SQL literal text (null for NULL). */
  partition: Record<string, string | null>;
  /** The table's columns by field id, with this file's identity-partition defaults. */
  readSchema: IcebergFieldRead[];
  deletes: IcebergDeleteRead[];
}

export interface TableSnapshot {
  name: string;
  /** Delta and Hudi tables are read like Iceberg ones (`iceberg` read information, by field id or name);
   *  csv, tsv, json and ndjson are file sets read as `fileSet` says. */
  kind: TableKind;
  columns: Column[];
  files: DataFile[];
  /** Identifies this version of the table's contents (changes when the files change). */
  snapshotId: string;
  /** Iceberg tables only: the table-level field-id mapping of `columns`, in the same order. */
  iceberg?: { fields: IcebergFieldRead[] };
  /** Iceberg tables only: what scan planning read of the snapshot's metadata and kept (`files`
   *  are the ones a query's filter may match when planned for one: WarehouseCatalog.deferredTable). */
  planned?: IcebergPlanCounts;
  /** CSV, TSV, JSON and NDJSON tables: how their files are read (catalog/file-sets.ts). */
  fileSet?: FileSetRead;
  /** Only admin callers may read it (puffindb.query_log: every user's SQL). */
  adminOnly?: boolean;
}

/** Which older version of a table to read (time travel): one of the two. */
export interface TableVersion {
  /** Iceberg snapshot id, as decimal text (63-bit ids do not fit a JavaScript number). */
  snapshotId?: string;
  /** The snapshot current at this instant (milliseconds since the epoch). */
  timestampMs?: number;
}

export type TableKind = 'parquet' | 'csv' | 'tsv' | 'json' | 'ndjson' | 'iceberg' | 'delta' | 'hudi';

export interface TableSummary {
  name: string;
  kind: TableKind;
  columns: Column[];
  fileCount: number;
  rowCount: number;
  sizeBytes: number;
  snapshotId: string;
}

export interface Catalog {
  /** Names of all tables, sorted. */
  listTables(): Promise<string[]>;
  /** The table's current snapshot, or undefined when no such table exists. */
  getTable(name: string): Promise<TableSnapshot | undefined>;
  /**
   * An older version of the table (time travel, `FROM t AT (VERSION => ...)`), or undefined
   * when no such table exists. Optional: catalogs without history leave it out, and the
   * planner then refuses AT clauses. Throws when the table has no such version.
   */
  getTableAt?(name: string, version: TableVersion): Promise<TableSnapshot | undefined>;
  /**
   * Where the catalog keeps its Iceberg tables' metadata pointers. Optional: only catalogs
   * that hold Iceberg tables have it, and SQL writes need it.
   */
  readonly pointers?: PointerStore;
}
