// The result cache's key: the statement as DuckDB re-prints it (so spacing, case of
// keywords and comments do not matter), the snapshot id of every table the plan reads,
// and the response format. A new snapshot of any table gives a new key, so a cached
// result is never served over changed data; statements calling volatile functions
// (random(), now(), current_date, ...) are never cached at all.

import { createHash } from 'node:crypto';
import { parseWrite } from '../planner/write-planner.ts';
import type { Catalog } from '../catalog/types.ts';
import type { Engine } from '../engine/engine.ts';
import type { Plan } from '../planner/plan.ts';
import { parseStatements, type AstNode } from '../sql/parse.ts';

/** Special SQL values that parse as column references but change from query to query. */
const VOLATILE_VALUES = ['current_date', 'current_time', 'current_timestamp', 'localtime', 'localtimestamp', 'current_user', 'session_user', 'current_query'];

/** Table snapshots a plan read: [table, snapshot id], sorted by table. */
export type SnapshotSet = [string, string][];

const volatileNames = new WeakMap<Engine, Promise<Set<string>>>();

/** Functions whose value may differ between two runs of the same statement. */
function volatileFunctions(engine: Engine): Promise<Set<string>> {
  let names = volatileNames.get(engine);
  if (!names) {
    names = engine
      .query(`SELECT DISTINCT lower(function_name) FROM duckdb_functions() WHERE stability IN ('VOLATILE', 'CONSISTENT_WITHIN_QUERY')`)
      .then((r) => new Set([...r.rows.map((row) => String(row[0])), ...VOLATILE_VALUES]));
    volatileNames.set(engine, names);
  }
  return names;
}

function mentionsAny(node: unknown, names: Set<string>): boolean {
  if (Array.isArray(node)) return node.some((child) => mentionsAny(child, names));
  if (!node || typeof node !== 'object') return false;
  const n = node as AstNode;
  if (n.class === 'FUNCTION' && names.has(String(n.function_name).toLowerCase())) return true;
  if (n.class === 'COLUMN_REF' && Array.isArray(n.column_names) && n.column_names.length === 1 && VOLATILE_VALUES.includes(String(n.column_names[0]).toLowerCase())) return true;
  return Object.values(n).some((child) => mentionsAny(child, names));
}

/** True when running `sql` twice over the same tables must give the same answer. */
export async function isCacheable(engine: Engine, sql: string): Promise<boolean> {
  // A write changes what it reads; its outcome is never served from a cache.
  if (parseWrite(sql)) return false;
  const statements = await parseStatements(engine, sql);
  return !mentionsAny(statements.map((s) => s.node), await volatileFunctions(engine));
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
