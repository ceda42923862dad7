// The coordinator Lambda: plans and runs one query per invocation, its fragments on the
// worker Lambda, and writes status, progress and result to the state store, where the admin
// API reads them. A thin adapter over exec/query-manager.ts. Two events:
//   {action: 'run', queryId, format?, fragments?}  a query the admin API recorded as queued
//   {sql, user?, format?, fragments?, timeoutMs?}   a query given here (recorded, then run)
// Either way the answer is the query's final record (its result is fetched by id).
// A third, from the stack's EventBridge schedule (exec/pipelines.ts):
//   {action: 'run-due-refreshes'}                   refresh the materialized views that are due;
//                                                   the answer is the tick (what ran, what was skipped)

import { openCatalog } from '../catalog/open.ts';
import { Engine } from '../engine/engine.ts';
import { PuffinError, toPuffinError } from '../errors.ts';
import { openControlPlane, type ControlPlane } from '../exec/control-plane.ts';
import type { CallerRole } from '../exec/query-service.ts';
import { loadSettings, type Settings } from '../settings.ts';
import type { QueryRecord } from '../state/state-store.ts';
import type { PipelineTick } from '../exec/pipelines.ts';
import { ColdStart, lambdaLogSink, writeLog, type LogSink } from './log.ts';

export const RUN_DUE_REFRESHES = 'run-due-refreshes';

export interface PipelineEvent {
  action: typeof RUN_DUE_REFRESHES;
}

export interface CoordinatorHandler {
  (event: PipelineEvent): Promise<PipelineTick>;
  (event: unknown): Promise<QueryRecord>;
}

/** The schedule's event: its constant input, or EventBridge's own Scheduled Event. */
export function isPipelineEvent(event: unknown): boolean {
  if (!event || typeof event !== 'object') return false;
  const o = event as Record<string, unknown>;
  return o.action === RUN_DUE_REFRESHES || (o.source === 'aws.events' && o['detail-type'] === 'Scheduled Event');
}

interface RunEvent {
  queryId: string;
  format?: 'json' | 'csv' | 'arrow';
  fragments?: number;
  /** The role of the key that submitted the query to the admin API (default 'reader'). */
  role?: CallerRole;
}

interface SqlEvent {
  sql: string;
  user: string;
  format?: 'json' | 'csv' | 'arrow';
  fragments?: number;
  timeoutMs?: number;
  /** Default 'admin': whoever may invoke this function directly holds IAM rights over the deployment. */
  role?: CallerRole;
}

const CALLER_ROLES: ReadonlySet<string> = new Set(['reader', 'writer', 'admin']);

const FORMATS = new Set(['json', 'csv', 'arrow']);

function bad(message: string): PuffinError {
  return new PuffinError('bad_request', `coordinator event: ${message}`);
}

function optionalPositive(o: Record<string, unknown>, field: string): number | undefined {
  const v = o[field];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw bad(`'${field}' must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

export function parseCoordinatorEvent(event: unknown): RunEvent | SqlEvent {
  if (!event || typeof event !== 'object' || Array.isArray(event)) throw bad('expected an object');
  const o = event as Record<string, unknown>;
  const format = o.format;
  if (format !== undefined && (typeof format !== 'string' || !FORMATS.has(format))) throw bad(`'format' must be json, csv or arrow, got ${JSON.stringify(format)}`);
  if (o.role !== undefined && (typeof o.role !== 'string' || !CALLER_ROLES.has(o.role))) throw bad(`'role' must be reader, writer or admin, got ${JSON.stringify(o.role)}`);
  const common = { format: format as RunEvent['format'], fragments: optionalPositive(o, 'fragments'), role: o.role as CallerRole | undefined };
  if (typeof o.queryId === 'string') return { queryId: o.queryId, ...common };
  if (typeof o.sql === 'string' && o.sql.trim() !== '') {
    if (o.user !== undefined && typeof o.user !== 'string') throw bad(`'user' must be a string`);
    return { sql: o.sql, user: (o.user as string | undefined) ?? 'coordinator', timeoutMs: optionalPositive(o, 'timeoutMs'), ...common, role: common.role ?? 'admin' };
  }
  throw bad(`expected {action: 'run', queryId} or {sql}, got fields ${Object.keys(o).join(', ') || 'none'}`);
}

/** The deployed wiring: fragments on the worker Lambda, state from REDIS_URL. */
export async function openCoordinator(settings: Settings): Promise<ControlPlane> {
  const catalogEngine = await Engine.create({ threads: 1 });
  const catalog = await openCatalog(settings, catalogEngine);
  return openControlPlane({ settings, catalog });
}

/** A handler over the control plane `build` makes on the first invocation. */
export function createCoordinatorHandler(build: () => Promise<ControlPlane>, sink: LogSink | undefined = lambdaLogSink()): CoordinatorHandler {
  let ready: Promise<ControlPlane> | undefined;
  let lastFlush = Date.now();
  const coldStart = new ColdStart();
  const handler = async (event: unknown): Promise<QueryRecord | PipelineTick> => {
    const started = Date.now();
    const cold = coldStart.take();
    let queryId: string | undefined;
    try {
      const open = () => (ready ??= build().catch((err: unknown) => {
        ready = undefined;
        throw err;
      }));
      if (isPipelineEvent(event)) {
        const tick = await (await open()).pipelines.runDue();
        writeLog(sink, { level: tick.ran.some((r) => r.status === 'failed') ? 'error' : 'info', message: 'pipelines', function: 'coordinator', scheduled: tick.scheduled, ran: tick.ran.map((r) => ({ view: r.view, status: r.status, queryId: r.queryId })), skipped: tick.skipped.length, coldStart: cold, durationMs: Date.now() - started });
        return tick;
      }
      const request = parseCoordinatorEvent(event);
      const plane = await open();
      const { manager } = plane;
      if ('queryId' in request) queryId = request.queryId;
      else queryId = (await manager.enqueue(request.sql, { user: request.user, timeoutMs: request.timeoutMs })).id;
      const record = await manager.runQueued(queryId, { format: request.format, fragments: request.fragments, role: request.role });
      // No process stays up to flush the log on a timer: a coordinator flushes when due.
      if (Date.now() - lastFlush >= plane.settings.logFlushIntervalMs) {
        lastFlush = Date.now();
        await plane.flusher.flush().catch(() => undefined);
      }
      writeLog(sink, { level: record.status === 'failed' ? 'error' : 'info', message: 'query', function: 'coordinator', queryId, status: record.status, ...(record.error ? { code: record.error.code } : {}), coldStart: cold, durationMs: Date.now() - started });
      return record;
    } catch (err) {
      const e = toPuffinError(err);
      writeLog(sink, { level: 'error', message: 'query', function: 'coordinator', queryId, code: e.code, error: e.message, coldStart: cold, durationMs: Date.now() - started });
      // Lambda reports a function error; the message is our error JSON, as the worker's is.
      const thrown = new Error(JSON.stringify(e.toJSON()));
      thrown.name = 'PuffinError';
      throw thrown;
    }
  };
  return handler as CoordinatorHandler;
}

export const handler: CoordinatorHandler = createCoordinatorHandler(() => openCoordinator(loadSettings()));
