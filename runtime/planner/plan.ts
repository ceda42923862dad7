// A distributed plan is plain data: it is printed by `explain`, and fragments cross
// process and Lambda boundaries as JSON, so nothing here may be a class or a closure.

import type { Column, IcebergFieldRead, IcebergFileRead } from '../catalog/types.ts';

export type PlanShape =
  /** Partial aggregates per fragment, final aggregate in the reduce step. */
  | 'scan-aggregate'
  /** ORDER BY ... LIMIT k in every fragment, then once more over the union. */
  | 'top-k'
  /** Filter and projection per fragment, the union is the answer. */
  | 'scan'
  /** Each table's filtered, projected rows are pulled up; the query runs in the reduce step. */
  | 'single-node'
  /** No table is read (e.g. SELECT 1): the reduce step alone answers. */
  | 'local'
  /** A write to an Iceberg table (CREATE TABLE, INSERT, DELETE, UPDATE), committed by the coordinator. */
  | 'write';

export interface FileRef {
  uri: string;
  sizeBytes: number;
  rowCount: number;
  /** Iceberg data files: field-id read schema, partition constants, delete files. */
  iceberg?: IcebergFileRead;
}

/** One table as a fragment sees it: a temporary view named `view` over `files`. */
export interface FragmentInput {
  view: string;
  table: string;
  columns: Column[];
  files: FileRef[];
  /** Iceberg tables: the table-level field-id mapping; the worker then reads the files by
   *  field id and applies their delete files instead of reading them as plain Parquet. */
  iceberg?: { fields: IcebergFieldRead[] };
}

export interface Fragment {
  /** Unique within the plan, e.g. 'f3'. */
  id: string;
  /** Which partial set this fragment's output belongs to (a view name in the reduce step). */
  output: string;
  inputs: FragmentInput[];
  /** Runs over the input views; its rows are the fragment's partial. */
  sql: string;
  /**
   * Write the rows into this Iceberg table (at this metadata version) as data files instead
   * of returning them: the partial is then one row per written file, column `file` holding
   * its description as JSON, and the coordinator commits all files at once.
   */
  write?: { table: string; metadataLocation: string };
}

export interface ReduceStep {
  /** Each partial set becomes a view over all its fragments' partials. */
  views: { name: string; columns: Column[] }[];
  sql: string;
}

export interface TableScanReport {
  table: string;
  /** Where the table is read: 'split' across fragments, 'broadcast' whole to each one. */
  role: 'split' | 'broadcast' | 'pushdown';
  filesTotal: number;
  filesKept: number;
  bytesKept: number;
  rowsKept: number;
  /** The pruning predicate, as SQL over the table's columns, or null when none applied. */
  pruneFilter: string | null;
  /** Columns the fragments read (projection pushdown), or null for all. */
  columns: string[] | null;
}

export interface Plan {
  shape: PlanShape;
  /** The statement as DuckDB re-printed it from the AST. */
  sql: string;
  /** Result columns of the whole query, with DuckDB's names and types. */
  output: Column[];
  fragments: Fragment[];
  reduce: ReduceStep;
  scans: TableScanReport[];
  /** For a broadcast join: the table split across fragments and those read whole by each. */
  join: { split: string; broadcast: string[] } | null;
  /**
   * True when the answer is exactly the union of the fragments' rows (a scan with no
   * DISTINCT or LIMIT): such a plan can write its rows where the fragments run.
   */
  unionOfFragments?: boolean;
  /** Why this shape was chosen (or why a cheaper one could not be). */
  reason: string;
}
