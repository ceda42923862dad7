// A distributed plan is plain data: it is printed by `explain`, and fragments cross
// process and Lambda boundaries as JSON, so nothing here may be a class or a closure.

import type { FileSetRead } from '../catalog/file-sets.ts';
import type { Column, IcebergFieldRead, IcebergFileRead, RowGroup } from '../catalog/types.ts';

// A plan is a DAG of stages (see docs/ARCHITECTURE.md, "Multi-stage plans"):
// - leaf stages are the `fragments`, grouped by their `output` name; each reads table files;
// - `stages` run after them on workers, one task per partition of what they read;
// - `reduce` is the last stage, on the coordinator, reading every output that is single.
// An output is single (every row to the reduce step) unless it is hash-partitioned (a leaf
// fragment's `shuffleWrite`, a stage's `output.partitioning`): then each producer task
// writes one shuffle object, and task p of a consuming stage reads partition p of every
// producer with ranged GETs (runtime/exec/shuffle*.ts).

/** A key of a hash partitioning: an expression over the stage's output, cast to `type` before hashing. */
export interface PartitionKey {
  expr: string;
  /** The type both sides of a join cast to (their common type), so equal keys hash alike. */
  type: string;
}

export type Partitioning =
  | { kind: 'single' }
  | { kind: 'hash'; keys: PartitionKey[]; count: number };

/** What the tasks of a stage read of another stage's output: task p reads partition p. */
export interface StageRead {
  /** The view name the stage's SQL reads it through. */
  view: string;
  /** The producing stage: a leaf output name or an earlier stage's id. */
  stage: string;
  columns: Column[];
}

/** What one stage's tasks did when the query ran, summed over their successful attempts. */
export interface StageStats {
  stage: string;
  tasks: number;
  rowsOut: number;
  bytesOut: number;
  /** Bytes read: table data and shuffle pieces. */
  bytesIn: number;
  /** Ranged GETs of shuffle pieces, and shuffle objects PUT. */
  shuffleGets: number;
  shufflePuts: number;
  /** Wall time from the stage's first task start to its last task's end. */
  ms: number;
  /**
   * The filtered-partition cache (runtime/exec/partition-cache.ts): files its tasks read from
   * a cached entry, files they read (and cached), bytes of file not read thanks to it.
   */
  cacheHits?: number;
  cacheMisses?: number;
  cacheBytesSaved?: number;
  /** 'hash(N)' or 'single' (to the reduce step). */
  output: string;
  /**
   * A later stage whose partitions were grouped into fewer tasks (by the bytes its producers
   * wrote, exec/shuffle-index.ts coalescePartitions): its planned partitions. Absent when
   * every partition was a task.
   */
  partitions?: number;
}

/** A stage after the leaf fragments. */
export interface Stage {
  /** Also its output name: later stages and the reduce step read it by this name. */
  id: string;
  /** Runs in every task over the `reads` views and the `tables` views. */
  sql: string;
  reads: StageRead[];
  /** Tables every task reads whole (broadcast). */
  tables: FragmentInput[];
  /** Tasks, one per partition of its reads. */
  tasks: number;
  output: { columns: Column[]; partitioning: Partitioning; store?: boolean };
  /** Why the stage exists (the rule that cut it). */
  reason: string;
}

export type PlanShape =
  /** Partial aggregates per fragment, final aggregate in the reduce step. */
  | 'scan-aggregate'
  /** ORDER BY ... LIMIT k in every fragment, then once more over the union. */
  | 'top-k'
  /** Filter and projection per fragment, the union is the answer. */
  | 'scan'
  /** Each table's filtered, projected rows are pulled up; the query runs in the reduce step. */
  | 'single-node'
  /**
   * One table's filtered rows are hash-partitioned on columns every grouping and window of
   * the query is by; a stage runs the whole query per partition; the reduce step orders,
   * limits and de-duplicates the tasks' rows.
   */
  | 'key-partitioned'
  /** No table is read (e.g. SELECT 1): the reduce step alone answers. */
  | 'local'
  /**
   * Subqueries (CTEs, derived tables, uncorrelated IN / scalar / EXISTS subqueries) run
   * first, each as a distributed query of its own; the query over their results is planned
   * once they have run, with their real sizes (`materialized`).
   */
  | 'staged'
  /** A write to an Iceberg table (CREATE TABLE, INSERT, DELETE, UPDATE), committed by the coordinator. */
  | 'write';

export interface FileRef {
  uri: string;
  sizeBytes: number;
  rowCount: number;
  /** Iceberg data files: field-id read schema, partition constants, delete files. */
  iceberg?: IcebergFileRead;
  /** Files of a CSV/JSON table: their hive partition values (FragmentInput.fileSet.partitionColumns). */
  partitionValues?: (string | null)[];
  /** A split of a Parquet file: only rows `start` (inclusive) to `end` (exclusive) in file
   *  order, whole row groups, which the reader's file_row_number filter selects without
   *  reading the other groups. `sizeBytes` and `rowCount` are then the split's. */
  rows?: { start: number; end: number };
  /** The planner's copy of the file's row-group layout (DataFile.rowGroups); assignFiles
   *  uses it to split and drops it, so it never travels to a worker. */
  rowGroups?: RowGroup[];
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
  /** CSV, TSV, JSON and NDJSON tables: the reader, options and columns recorded when the
   *  table was added (catalog/file-sets.ts); the files are read with them, not as Parquet. */
  fileSet?: FileSetRead;
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
  write?: {
    table: string;
    metadataLocation: string;
    /**
     * Statements run on the fragment's connection, in order, before its rows are written
     * (MERGE: a temporary table of the fragment's rows and DuckDB's MERGE into it, which
     * `sql` then reads). What each answers comes back with the files: one more partial row
     * per statement, `{"setup": i, "rows": [...]}` as JSON.
     */
    setup?: string[];
    /** `sql`'s rows end in their v3 row lineage (catalog/iceberg/lineage.ts: a rewrite of the
     *  table's own rows), which the written files keep. */
    lineage?: boolean;
  };
  /**
   * A task of a later stage: each entry is its partition of a producing stage, as a view.
   * Filled in by the coordinator once the producers are done (`sources` name their pieces).
   */
  shuffleReads?: ShuffleRead[];
  /** Write the output hash-partitioned (one shuffle object) instead of returning it. */
  shuffleWrite?: { stage: string; partitioning: Extract<Partitioning, { kind: 'hash' }> };
  /**
   * A combiner of the combining exchange (exec/shuffle-combine.ts), made by the coordinator
   * when a stage's producers are many: re-lay partitions from..to-1 of these producers'
   * shuffle objects (`sources`: each one's share, exec/shuffle-combine.ts CombineSource) as one
   * object of `stage`, a shuffle of `partitions` partitions of `columns` hashed by `duckdb`.
   * Its `inputs` are empty and its `sql` is not run.
   */
  shuffleCombine?: { stage: string; partitions: number; columns: Column[]; duckdb: string; from: number; to: number; sources: unknown[] };
  /**
   * Deliver the partial through the shuffle prefix whatever its size: it is a file of a
   * materialized subquery's result, which later steps of the query read as a table.
   */
  store?: boolean;
}

export interface ShuffleRead {
  view: string;
  columns: Column[];
  partition: number;
  /**
   * This partition's piece of every producer of the stage read that has one (PartitionSource,
   * runtime/exec/shuffle-index.ts): the coordinator sends a task its own slice, never whole
   * indexes (three numbers per partition per producer: megabytes per task at scale).
   */
  sources: unknown[];
}

export interface ReduceStep {
  /** Each partial set becomes a view over all its fragments' partials. */
  views: { name: string; columns: Column[] }[];
  sql: string;
}

export interface TableScanReport {
  table: string;
  /** Where the table is read: 'split' across fragments, 'co-split' with the split table
   *  along their files' key ranges, 'broadcast' whole to each one. */
  role: 'split' | 'co-split' | 'broadcast' | 'pushdown';
  filesTotal: number;
  filesKept: number;
  bytesKept: number;
  rowsKept: number;
  /** The pruning predicate, as SQL over the table's columns, or null when none applied. */
  pruneFilter: string | null;
  /** Columns the fragments read (projection pushdown), or null for all. */
  columns: string[] | null;
  /** Iceberg tables: manifests of the snapshot, and those scan planning read (the others
   *  skipped by their partition summaries under the query's filter). */
  manifests?: { total: number; read: number };
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
  /**
   * For a broadcast join: the table split across fragments and those read whole by each.
   * For a partitioned hash join also the two tables hash-partitioned on their keys; for a
   * co-split join the table split with the split one along their files' ranges of the keys
   * (split's key first), how many disjoint ranges those files fall into, and how many WHERE
   * subqueries over those tables every fragment evaluates over its own files.
   */
  join: { split: string; broadcast: string[]; partitioned?: { tables: string[]; keys: string[]; type: string; partitions: number }; coSplit?: { table: string; keys: string[]; ranges: number; subqueries?: number } } | null;
  /**
   * True when the answer is exactly the union of the fragments' rows (a scan with no
   * DISTINCT or LIMIT): such a plan can write its rows where the fragments run.
   */
  unionOfFragments?: boolean;
  /** Worker stages after the leaf fragments, in topological order. */
  stages?: Stage[];
  /**
   * Run to store a subquery's result rather than answer: the output (a leaf output or a
   * stage) whose tasks' partials are stored as the result's files; there is no reduce step.
   */
  stored?: string;
  /**
   * Subqueries computed before the rest of the query (shape 'staged' until they ran): each
   * step's result is a table (or a constant) that the query `sql` reads by the step's name.
   */
  materialized?: { steps: MaterializedStep[]; sql: string };
  /**
   * What ran on other PuffinDB instances (runtime/exec/remote-tables.ts): the statement sent
   * THROUGH one, or the query each remote table reference was fetched with.
   */
  remote?: RemoteRun[];
  /** Why this shape was chosen (or why a cheaper one could not be). */
  reason: string;
}

/** A subquery run before the query that reads it (runtime/planner/materialize.ts). */
export interface MaterializedStep {
  /** The name the rest of the query reads its result by. */
  name: string;
  /**
   * 'table': its rows, stored as Parquet files where the workers wrote them; 'scalar': its
   * one value, as a constant in the query; 'exists': whether it has a row, as a constant.
   */
  kind: 'table' | 'scalar' | 'exists';
  /** What it is in the query: "CTE revenue0", "derived table c_orders", "IN subquery", ... */
  what: string;
  /** Its SQL, over the catalog's tables and earlier steps. */
  sql: string;
  columns: Column[];
  /** How it ran (after the query), or would run (explain), when known. */
  plan?: Plan;
  /** Rows and bytes of its result, once it ran, and what its last execution's stages did. */
  result?: { rows: number; bytes: number; files: number; stages: StageStats[] };
}

/** One query sent to a remote instance. */
export interface RemoteRun {
  /** The registered remote's name. */
  remote: string;
  /** The instance's base URL it was sent to. */
  url: string;
  /** For a remote table reference: the remote's table. */
  table?: string;
  /** The SQL sent. */
  sql: string;
  /** Rows the remote answered (once it ran). */
  rows?: number;
}
