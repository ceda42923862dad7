// The one door the front ends (CLI, HTTP API, Lambda adapters) use to run SQL. The local
// cluster, and later the Lambda-backed deployment, implement it.

import type { JsonValue, ResultColumn } from '../engine/engine.ts';
import type { Plan } from '../planner/plan.ts';
import type { StageStats } from './coordinator.ts';
import type { TableSummary } from '../catalog/types.ts';
import type { ClassifiedStatement } from '../sql/classify.ts';

/** Who runs a query: only 'admin' may read admin-only tables (puffindb.query_log). */
export type CallerRole = 'reader' | 'writer' | 'admin';

/** SQL text, or a statement already classified (runtime/sql/classify.ts), so it is not classified twice. */
export type Statement = string | ClassifiedStatement;

export interface QueryOptions {
  /** Upper bound on fragments per split table (default: the service's worker count). */
  fragments?: number;
  /** Partitions of a partitioned hash join (default: the service's PUFFINDB_SHUFFLE_PARTITIONS). */
  partitions?: number;
  /** Deadline of this query in ms (default: the service's setting). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Run under this id (a ULID) instead of a fresh one, so logs and records correlate. */
  queryId?: string;
  /** The caller's role (default 'reader'): the API passes its key's, the CLI 'admin' (the operator). */
  role?: CallerRole;
  /** The plan explain() made for this statement with the same options, so it is not planned twice. */
  plan?: Plan;
  /** IVF lists a vector top-k over a table with an IVF index probes (runtime/planner/ivf.ts); default: the index's own; 0: exact search. */
  nprobe?: number;
  /** Told the plan once it is made, before any fragment runs. */
  onPlan?: (plan: Plan) => void;
  /** Told each time a fragment finishes (its successful attempt). */
  onFragment?: (done: FragmentDone) => void;
}

export interface FragmentDone {
  fragmentId: string;
  /** Bytes of table data the fragment read. */
  bytesScanned: number;
  /** Its files served by the filtered-partition cache, files read, and bytes not read thanks to it. */
  cache?: { hits: number; misses: number; bytesSaved: number };
}

export interface QueryStats {
  fragments: number;
  retries: number;
  bytesScanned: number;
  /** Bytes of partials moved from workers to the coordinator. */
  bytesShuffled: number;
  planMs: number;
  executeMs: number;
  reduceMs: number;
  totalMs: number;
  /**
   * The most bytes read by any step that runs as one task (the coordinator's reduce step, or
   * a stage of a single task): the figure that shows whether a plan scales with the data.
   */
  singleNodeBytes?: number;
  /** Per stage: tasks, rows and bytes in and out, shuffle GETs and PUTs, time. */
  stages?: StageStats[];
  /** Duplicate attempts started for straggling tasks, and how many finished first. */
  duplicates?: number;
  duplicateWins?: number;
}

/** A statement's execution figures before its planning and total time are known. */
export type RunStats = Omit<QueryStats, 'planMs' | 'totalMs'>;

export function emptyStats(): RunStats {
  return { fragments: 0, retries: 0, bytesScanned: 0, bytesShuffled: 0, executeMs: 0, reduceMs: 0 };
}

/** Two runs' stats as one statement's (run one after the other): counts and times summed, stages listed, the larger singleNodeBytes. */
export function addStats(a: RunStats, b: RunStats): RunStats {
  return {
    fragments: a.fragments + b.fragments,
    retries: a.retries + b.retries,
    bytesScanned: a.bytesScanned + b.bytesScanned,
    bytesShuffled: a.bytesShuffled + b.bytesShuffled,
    executeMs: a.executeMs + b.executeMs,
    reduceMs: a.reduceMs + b.reduceMs,
    singleNodeBytes: Math.max(a.singleNodeBytes ?? 0, b.singleNodeBytes ?? 0),
    stages: [...(a.stages ?? []), ...(b.stages ?? [])],
    duplicates: (a.duplicates ?? 0) + (b.duplicates ?? 0),
    duplicateWins: (a.duplicateWins ?? 0) + (b.duplicateWins ?? 0),
  };
}

export interface QueryOutcome {
  queryId: string;
  columns: ResultColumn[];
  rows: JsonValue[][];
  plan: Plan;
  stats: QueryStats;
}

export interface QueryService {
  query(statement: Statement, options?: QueryOptions): Promise<QueryOutcome>;
  explain(statement: Statement, options?: QueryOptions): Promise<Plan>;
  listTables(): Promise<TableSummary[]>;
  close(): Promise<void>;
}
