// What the pipelines of materialized views leave to be looked at, as tables SQL reads:
//
// - `puffindb.refreshes`: one record per refresh (a REFRESH statement or a scheduled run,
//   succeeded or failed), each one NDJSON object stored under `_puffindb/refreshes/` on the
//   warehouse when the refresh ends. Its `query_id` is the id the statement ran under, the
//   `id` of its entry in `puffindb.query_log` (join on it). Records are never rewritten:
//   the table's snapshot id is a digest of its file list, so the result cache sees a new
//   refresh as a new version.
// - `puffindb.materialized_views`: one row per materialized view, made when a query names
//   it: the source snapshots its data reflects against the sources' current ones (stale
//   when any differs), its last refresh and its schedule. The rows are stored as one NDJSON
//   file named by their digest (the same status reads the same file), so workers read it
//   like any other table; files of earlier statuses are deleted a day after they were written.
//
// Both are readable by every role: they hold view and table names, counts and messages,
// never a table's data (a reader may read every table a view reads but the admin-only log).

import { createHash } from 'node:crypto';
import type { Catalog, Column, DataFile, TableSnapshot } from '../catalog/types.ts';
import type { FileSetRead } from '../catalog/file-sets.ts';
import { joinUrl } from '../storage/open.ts';
import type { ObjectStore } from '../storage/object-store.ts';

export const REFRESHES_TABLE = 'puffindb.refreshes';
export const MATERIALIZED_VIEWS_TABLE = 'puffindb.materialized_views';
/** Where refresh records live, relative to the warehouse root. */
export const REFRESHES_PREFIX = '_puffindb/refreshes/';
const STATUS_PREFIX = '_puffindb/materialized-views/';
const STATUS_KEPT_MS = 24 * 60 * 60 * 1000;

export const REFRESH_RECORD_COLUMNS: readonly Column[] = [
  { name: 'refresh_id', type: 'VARCHAR' },
  { name: 'view', type: 'VARCHAR' },
  { name: 'query_id', type: 'VARCHAR' },
  { name: 'trigger', type: 'VARCHAR' },
  { name: 'due_at', type: 'TIMESTAMP' },
  { name: 'started_at', type: 'TIMESTAMP' },
  { name: 'finished_at', type: 'TIMESTAMP' },
  { name: 'duration_ms', type: 'BIGINT' },
  { name: 'status', type: 'VARCHAR' },
  { name: 'mode', type: 'VARCHAR' },
  { name: 'rows_added', type: 'BIGINT' },
  { name: 'sources_read', type: 'VARCHAR' },
  { name: 'sources_before', type: 'VARCHAR' },
  { name: 'snapshot_id', type: 'VARCHAR' },
  { name: 'reason', type: 'VARCHAR' },
  { name: 'error', type: 'VARCHAR' },
];

export const MATERIALIZED_VIEW_COLUMNS: readonly Column[] = [
  { name: 'view', type: 'VARCHAR' },
  { name: 'stale', type: 'BOOLEAN' },
  { name: 'sources_reflected', type: 'VARCHAR' },
  { name: 'sources_current', type: 'VARCHAR' },
  { name: 'refresh_strategy', type: 'VARCHAR' },
  { name: 'last_refresh_at', type: 'TIMESTAMP' },
  { name: 'last_refresh_mode', type: 'VARCHAR' },
  { name: 'schedule', type: 'VARCHAR' },
  { name: 'next_due_at', type: 'TIMESTAMP' },
  { name: 'snapshot_id', type: 'VARCHAR' },
];

/** A source table and a snapshot of it, as records show them. */
export interface SourceSnapshot {
  table: string;
  snapshot_id: string;
}

export interface RefreshRecord {
  refreshId: string;
  view: string;
  /** The query id the refresh ran under (its `puffindb.query_log` entry's id). */
  queryId: string;
  trigger: 'statement' | 'schedule';
  /** Scheduled runs: the due time (ms since the epoch) this run is for. */
  dueAt?: number;
  startedAt: number;
  finishedAt: number;
  status: 'succeeded' | 'failed';
  mode: 'incremental' | 'full' | null;
  rowsAdded: number;
  /** The source snapshots this refresh read (made the view reflect), when it got that far. */
  sourcesRead: SourceSnapshot[];
  /** The source snapshots the view reflected before. */
  sourcesBefore: SourceSnapshot[];
  /** The view table's snapshot after the refresh. */
  snapshotId: string | null;
  reason: string | null;
  error: string | null;
}

/** One materialized view's state, as `puffindb.materialized_views` lists it. */
export interface MaterializedViewStatus {
  view: string;
  stale: boolean;
  sourcesReflected: SourceSnapshot[];
  sourcesCurrent: SourceSnapshot[];
  strategy: string;
  lastRefreshAt: string | null;
  lastRefreshMode: string | null;
  /** e.g. '15 minutes'; null: refreshed by statement only. */
  schedule: string | null;
  nextDueAt: number | null;
  snapshotId: string | null;
}

/** TIMESTAMP text without a zone (the records' times are UTC). */
function timestamp(ms: number | null | undefined): string | null {
  return ms === null || ms === undefined ? null : new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}

function recordRow(r: RefreshRecord): Record<string, unknown> {
  return {
    refresh_id: r.refreshId,
    view: r.view,
    query_id: r.queryId,
    trigger: r.trigger,
    due_at: timestamp(r.dueAt),
    started_at: timestamp(r.startedAt),
    finished_at: timestamp(r.finishedAt),
    duration_ms: Math.round(r.finishedAt - r.startedAt),
    status: r.status,
    mode: r.mode,
    rows_added: r.rowsAdded,
    sources_read: JSON.stringify(r.sourcesRead),
    sources_before: JSON.stringify(r.sourcesBefore),
    snapshot_id: r.snapshotId,
    reason: r.reason,
    error: r.error,
  };
}

/** Store one refresh's record (its own object: concurrent refreshes never write the same one). */
export async function recordRefresh(warehouse: ObjectStore, record: RefreshRecord): Promise<void> {
  await warehouse.put(`${REFRESHES_PREFIX}${record.refreshId}.ndjson`, `${JSON.stringify(recordRow(record))}\n`, { contentType: 'application/x-ndjson' });
}

/** The stored records, oldest first (refresh ids are ULIDs), optionally of one view only; for the CLI. */
export async function readRefreshes(warehouse: ObjectStore, options: { view?: string; limit?: number } = {}): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  for (const o of await warehouse.list(REFRESHES_PREFIX)) {
    if (!o.key.endsWith('.ndjson')) continue;
    const row = JSON.parse(new TextDecoder().decode(await warehouse.get(o.key))) as Record<string, unknown>;
    if (options.view === undefined || row.view === options.view.toLowerCase()) out.push(row);
  }
  return options.limit ? out.slice(-options.limit) : out;
}

function ndjsonRead(columns: readonly Column[]): FileSetRead {
  return { format: 'ndjson', options: {}, fileColumns: columns.map((c) => ({ ...c })), partitionColumns: [] };
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

async function refreshesSnapshot(warehouse: ObjectStore): Promise<TableSnapshot> {
  const files: DataFile[] = [];
  for (const o of await warehouse.list(REFRESHES_PREFIX)) {
    if (!/^[0-9A-Za-z]+\.ndjson$/.test(o.key.slice(REFRESHES_PREFIX.length))) continue;
    files.push({ uri: joinUrl(warehouse.url, o.key), sizeBytes: o.size, rowCount: 1, stats: {} });
  }
  return {
    name: REFRESHES_TABLE,
    kind: 'ndjson',
    columns: [...REFRESH_RECORD_COLUMNS],
    files,
    fileSet: ndjsonRead(REFRESH_RECORD_COLUMNS),
    snapshotId: digest(files.map((f) => f.uri).join('\n')),
  };
}

function statusRow(s: MaterializedViewStatus): Record<string, unknown> {
  return {
    view: s.view,
    stale: s.stale,
    sources_reflected: JSON.stringify(s.sourcesReflected),
    sources_current: JSON.stringify(s.sourcesCurrent),
    refresh_strategy: s.strategy,
    last_refresh_at: s.lastRefreshAt ? timestamp(Date.parse(s.lastRefreshAt)) : null,
    last_refresh_mode: s.lastRefreshMode,
    schedule: s.schedule,
    next_due_at: timestamp(s.nextDueAt),
    snapshot_id: s.snapshotId,
  };
}

async function statusSnapshot(warehouse: ObjectStore, status: readonly MaterializedViewStatus[]): Promise<TableSnapshot> {
  const body = status.map((s) => `${JSON.stringify(statusRow(s))}\n`).join('');
  const id = digest(body);
  const files: DataFile[] = [];
  // No view: no file (DuckDB's reader needs one); the table is empty.
  if (status.length > 0) {
    const key = `${STATUS_PREFIX}${id}.ndjson`;
    if (!(await warehouse.head(key))) {
      await warehouse.put(key, body, { contentType: 'application/x-ndjson' });
      // Earlier statuses go once no query can still be reading them (none runs past a day here).
      const old = (await warehouse.list(STATUS_PREFIX)).filter((o) => o.key !== key && Date.now() - o.lastModified > STATUS_KEPT_MS);
      await Promise.all(old.map((o) => warehouse.delete(o.key).catch(() => undefined)));
    }
    files.push({ uri: joinUrl(warehouse.url, key), sizeBytes: Buffer.byteLength(body), rowCount: status.length, stats: {} });
  }
  return { name: MATERIALIZED_VIEWS_TABLE, kind: 'ndjson', columns: [...MATERIALIZED_VIEW_COLUMNS], files, fileSet: ndjsonRead(MATERIALIZED_VIEW_COLUMNS), snapshotId: `mv-status:${id}` };
}

/**
 * `base` with `puffindb.refreshes` and `puffindb.materialized_views` (whose rows `status`
 * makes when a query names it). Everything else passes through.
 */
export function withPipelineTables(base: Catalog, warehouse: ObjectStore, status: () => Promise<MaterializedViewStatus[]>): Catalog {
  return {
    async listTables() {
      return [...new Set([...(await base.listTables()), REFRESHES_TABLE, MATERIALIZED_VIEWS_TABLE])].sort();
    },
    async getTable(name) {
      const key = name.toLowerCase();
      if (key === REFRESHES_TABLE) return refreshesSnapshot(warehouse);
      if (key === MATERIALIZED_VIEWS_TABLE) return statusSnapshot(warehouse, await status());
      return base.getTable(name);
    },
    ...(base.getTableAt ? { getTableAt: base.getTableAt.bind(base) } : {}),
    ...(base.pointers ? { pointers: base.pointers } : {}),
  };
}
