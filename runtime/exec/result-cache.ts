// The result cache's key: the statement as DuckDB re-prints it (so spacing, case of
// keywords and comments do not matter), the snapshot id of every table the plan reads,
// and the response format. A new snapshot of any table gives a new key, so a cached
// result is never served over changed data; statements calling volatile functions
// (random(), now(), current_date, ...) are never cached at all.

import { createHash } from 'node:crypto';
import type { Catalog } from '../catalog/types.ts';
import type { Plan } from '../planner/plan.ts';
import type { ClassifiedStatement } from '../sql/classify.ts';

/** Table snapshots a plan read: [table, snapshot id], sorted by table. */
export type SnapshotSet = [string, string][];

/** True when running the statement twice over the same tables must give the same answer. */
export function isCacheable(statement: ClassifiedStatement): boolean {
  // A write changes what it reads; its outcome is never served from a cache.
  return statement.kind === 'select' && statement.deterministic;
}

/** The snapshot of every table `plan` reads; a table gone meanwhile reads as 'absent'. */
export async function snapshotsOf(plan: Plan, catalog: Catalog): Promise<SnapshotSet> {
  const tables = [...new Set(plan.scans.map((s) => s.table))].sort();
  return Promise.all(tables.map(async (t): Promise<[string, string]> => [t, (await catalog.getTable(t))?.snapshotId ?? 'absent']));
}

export function resultCacheKey(plan: Plan, snapshots: SnapshotSet, format: string): string {
  const identity = JSON.stringify({ v: 1, sql: plan.sql, snapshots, format });
  return `cache:${createHash('sha256').update(identity).digest('hex')}`;
}
