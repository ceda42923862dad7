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
import { queryArgs } from './query-options.ts';
import { toDuckdbSql } from '../sql/frontends.ts';
import { warehouseTables } from '../cli/frontend-commands.ts';
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

  /** The DuckDB SQL of a call's text: PRQL, Malloy (against this warehouse's tables) or a dialect turned into it, parameters bound. */
  async function duckdbSql(text: string, arg: Parameters<Database['query']>[1]): Promise<string> {
    live();
    const { params, language, dialect, duckdb } = queryArgs(arg);
    if (duckdb) return bindParams(text, params);
    return (await toDuckdbSql({ text, language, dialect, tables: language === 'malloy' ? await warehouseTables(warehouse.catalog) : undefined })).sql;
  }

  async function run(sql: string, arg: Parameters<Database['query']>[1]) {
    const statement = await duckdbSql(sql, arg);
    live();
    return warehouse.query(statement);
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
      const statement = await duckdbSql(sql, params);
      return (await (await warehouse.cluster()).explain(statement, { role: 'admin' })) as unknown as Record<string, unknown>;
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
