// open(): the embedded engine, i.e. the warehouse and LocalCluster `puffindb query` uses
// (runtime/cli/warehouse.ts), over a PUFFINDB_HOME in this process. Queries run as the
// operator (role admin), are written to the query log (flushed on close) and their results
// are in this process's memory: stream() cuts the result into record batches, it does not
// stream from the engine.

import type { RecordBatch } from 'apache-arrow';
import { PuffinError } from '../errors.ts';
import { arrowSchemaOf, toRecordBatch } from '../results/arrow.ts';
import { loadSettings } from '../settings.ts';
import { openWarehouse } from '../cli/warehouse.ts';
import { registerProcess } from '../exec/leftovers.ts';
import type { Database, OpenOptions, TableInfo } from '../../lib/puffindb.js';
import { bindParams } from './params.ts';
import { closedError, publicResult, STREAM_BATCH_ROWS } from './rows.ts';

export async function open(options: OpenOptions = {}): Promise<Database> {
  if (options.workers !== undefined && (!Number.isInteger(options.workers) || options.workers < 1)) {
    throw new PuffinError('bad_request', `workers must be a positive integer, got ${String(options.workers)}`);
  }
  if (options.invoker !== undefined && options.invoker !== 'pool' && options.invoker !== 'in-process') {
    throw new PuffinError('bad_request', `invoker must be 'pool' or 'in-process', got ${JSON.stringify(options.invoker)}`);
  }
  const env: Record<string, string | undefined> = { ...(options.env ?? process.env) };
  if (options.home !== undefined) env.PUFFINDB_HOME = options.home;
  if (options.workers !== undefined) env.PUFFINDB_WORKERS = String(options.workers);
  const settings = loadSettings(env);
  // Its scratch must not look like a dead run's to a server starting beside it (runtime/exec/leftovers.ts).
  const registration = registerProcess(settings.home, 'library');
  const warehouse = await openWarehouse(settings, { invoker: options.invoker ?? 'pool', user: options.user });
  let closed = false;
  const live = () => {
    if (closed) throw closedError();
  };

  async function run(sql: string, params?: readonly unknown[]) {
    live();
    return warehouse.query(bindParams(sql, params));
  }

  return {
    async query(sql, params) {
      const outcome = await run(sql, params);
      return publicResult(outcome);
    },
    async *stream(sql, params): AsyncGenerator<RecordBatch> {
      const outcome = await run(sql, params);
      const schema = arrowSchemaOf(outcome.columns);
      for (let at = 0; at === 0 || at < outcome.rows.length; at += STREAM_BATCH_ROWS) {
        yield toRecordBatch({ columns: outcome.columns, rows: outcome.rows.slice(at, at + STREAM_BATCH_ROWS) }, schema);
      }
    },
    async explain(sql, params) {
      live();
      return (await (await warehouse.cluster()).explain(bindParams(sql, params), { role: 'admin' })) as unknown as Record<string, unknown>;
    },
    async tables(): Promise<TableInfo[]> {
      live();
      // The cluster's catalog, as a server lists it: puffindb.query_log included.
      return (await warehouse.cluster()).listTables();
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        await warehouse.close();
      } finally {
        registration.release();
      }
    },
  };
}
