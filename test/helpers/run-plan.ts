// Runs a plan in this process with plain DuckDB, fragment by fragment, each partial
// through a Parquet file as in the real path. For planner tests that should not depend on
// the execution layer; the real path (workers, invokers, coordinator) is exercised by the
// differential suite.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Engine, QueryResult } from '../../runtime/engine/engine.ts';
import { runQuery } from '../../runtime/engine/engine.ts';
import type { Plan } from '../../runtime/planner/plan.ts';
import { sqlIdent, sqlString, sqlStringList } from '../../runtime/sql/quote.ts';

function emptyView(columns: { name: string; type: string }[]): string {
  return `SELECT ${columns.map((c) => `CAST(NULL AS ${c.type}) AS ${sqlIdent(c.name)}`).join(', ')} LIMIT 0`;
}

export async function runPlanLocally(engine: Engine, plan: Plan): Promise<QueryResult> {
  const dir = mkdtempSync(join(tmpdir(), 'puffin-plan-'));
  const conn = await engine.connect();
  try {
    const partials = new Map<string, string[]>();
    for (const f of plan.fragments) {
      const fc = await engine.connect();
      try {
        for (const input of f.inputs) {
          const cols = input.columns.map((c) => `CAST(${sqlIdent(c.name)} AS ${c.type}) AS ${sqlIdent(c.name)}`).join(', ');
          const body = input.files.length
            ? `SELECT ${cols} FROM read_parquet(${sqlStringList(input.files.map((x) => fileURLToPath(x.uri)))})`
            : emptyView(input.columns);
          await fc.run(`CREATE TEMP VIEW ${sqlIdent(input.view)} AS ${body}`);
        }
        const out = join(dir, `${f.id}.parquet`);
        await fc.run(`COPY (${f.sql}) TO ${sqlString(out)} (FORMAT parquet)`);
        partials.set(f.output, [...(partials.get(f.output) ?? []), out]);
      } finally {
        fc.closeSync();
      }
    }
    for (const v of plan.reduce.views) {
      const files = partials.get(v.name) ?? [];
      const cols = v.columns.map((c) => `CAST(${sqlIdent(c.name)} AS ${c.type}) AS ${sqlIdent(c.name)}`).join(', ');
      const body = files.length ? `SELECT ${cols} FROM read_parquet(${sqlStringList(files)})` : emptyView(v.columns);
      await conn.run(`CREATE OR REPLACE TEMP VIEW ${sqlIdent(v.name)} AS ${body}`);
    }
    return await runQuery(conn, plan.reduce.sql);
  } finally {
    conn.closeSync();
    rmSync(dir, { recursive: true, force: true });
  }
}
