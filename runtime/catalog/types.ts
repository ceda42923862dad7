// What the planner needs to know about tables, independent of how they are stored. The
// first form is a plain set of Parquet files; Iceberg tables implement the same interface.

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
}

export interface TableSnapshot {
  name: string;
  kind: 'parquet' | 'iceberg';
  columns: Column[];
  files: DataFile[];
  /** Identifies this version of the table's contents (changes when the files change). */
  snapshotId: string;
}

export interface TableSummary {
  name: string;
  kind: 'parquet' | 'iceberg';
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
}
