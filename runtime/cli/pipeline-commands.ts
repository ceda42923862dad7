// `puffindb pipeline list | history [VIEW] | run`: the materialized views' pipelines from a
// terminal. list and history are queries of `puffindb.materialized_views` and
// `puffindb.refreshes` (the same tables SQL reads); run is one tick of the control plane's
// scheduler (runtime/exec/pipelines.ts), with the state store of the settings (Redis when
// REDIS_URL is set: leases and handled due times shared with the servers on it).

import { parseArgs } from 'node:util';
import { PuffinError } from '../errors.ts';
import type { Settings } from '../settings.ts';
import { toTextTable } from '../results/text.ts';
import { sqlString } from '../sql/quote.ts';
import type { Warehouse } from './warehouse.ts';

export const PIPELINE_HELP = `  puffindb pipeline list [--json]            materialized views: stale or not (source snapshots reflected vs current), last refresh, schedule
  puffindb pipeline history [VIEW] [--limit N] [--json]
                                             recorded refreshes (puffindb.refreshes): trigger, mode, rows, status, error, query id
  puffindb pipeline run [--json]             refresh every scheduled view that is due now (what \`serve\` does each minute);
                                             schedules: ALTER MATERIALIZED VIEW v SET REFRESH EVERY '15 minutes' | SET REFRESH MANUAL`;

const USAGE = 'usage: puffindb pipeline list | pipeline history [VIEW] [--limit N] | pipeline run';

export async function runPipelineCommand(args: string[], settings: Settings, withWarehouse: <T>(fn: (w: Warehouse) => Promise<T>) => Promise<T>, out: (s: string) => void): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { json: { type: 'boolean' }, limit: { type: 'string' } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new PuffinError('bad_request', `${(err as Error).message}; ${USAGE}`);
  }
  const { values, positionals } = parsed;
  const [sub, ...rest] = positionals;
  const print = (columns: { name: string }[], rows: unknown[][]) => {
    if (values.json) out(JSON.stringify(rows.map((r) => Object.fromEntries(columns.map((c, i) => [c.name, r[i]]))), null, 2));
    else out(toTextTable({ columns: columns.map((c) => ({ name: c.name, type: 'VARCHAR' })), rows: rows as never }));
  };
  if (sub === 'list') {
    if (rest.length) throw new PuffinError('bad_request', USAGE);
    await withWarehouse(async (w) => {
      const r = await w.query('SELECT view, stale, last_refresh_at, last_refresh_mode, schedule, next_due_at, sources_reflected, sources_current FROM puffindb.materialized_views ORDER BY view', { role: 'admin' });
      print(r.columns, r.rows);
    });
  } else if (sub === 'history') {
    if (rest.length > 1) throw new PuffinError('bad_request', USAGE);
    const limit = values.limit === undefined ? 20 : Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1) throw new PuffinError('bad_request', `--limit must be a positive integer, got ${values.limit}`);
    const where = rest[0] ? ` WHERE view = ${sqlString(rest[0].toLowerCase())}` : '';
    await withWarehouse(async (w) => {
      const r = await w.query(`SELECT started_at, view, trigger, status, mode, rows_added, duration_ms, query_id, coalesce(error, reason) AS detail FROM puffindb.refreshes${where} ORDER BY refresh_id DESC LIMIT ${limit}`, { role: 'admin' });
      print(r.columns, r.rows);
    });
  } else if (sub === 'run') {
    if (rest.length) throw new PuffinError('bad_request', USAGE);
    const { openControlPlane } = await import('../exec/control-plane.ts');
    await withWarehouse(async (w) => {
      const plane = await openControlPlane({ settings, catalog: w.catalog });
      try {
        const tick = await plane.pipelines.runDue();
        if (values.json) out(JSON.stringify(tick, null, 2));
        else {
          out(`${tick.scheduled} scheduled view(s); ${tick.ran.length} refreshed`);
          for (const r of tick.ran) out(`  ${r.view}: ${r.status}${r.mode ? ` (${r.mode}, ${r.rowsAdded} rows)` : ''}${r.error ? ` ${r.error.code}: ${r.error.message}` : ''}  query ${r.queryId}`);
          for (const s of tick.skipped) out(`  ${s.view}: skipped, ${s.why}`);
        }
      } finally {
        await plane.close();
      }
    });
  } else {
    throw new PuffinError('bad_request', `unknown pipeline command '${sub ?? ''}'; ${USAGE}`);
  }
}
