// Scheduled refreshes of materialized views: the control plane's "run what is due". A view
// with `ALTER MATERIALIZED VIEW v SET REFRESH EVERY '15 minutes'` is due at since + k * 15
// minutes; a tick (every minute in `puffindb serve`, the stack's EventBridge rule invoking
// the coordinator Lambda in AWS, or `puffindb pipeline run`) refreshes each view whose latest
// due time has not been handled yet. Several processes may tick at once; each due time is
// refreshed once:
//
// 1. take the view's refresh lease (the state store's lock with an expiry; a crashed holder's
//    lease lapses), skipping the view when another process holds it;
// 2. under the lease, read the view's schedule and the last handled due time again (the
//    state store value `puffindb:mv-due:<view>`), skipping it when that due time is handled;
// 3. refresh (the refresh checks the lease before it commits) and mark the due time handled
//    by a compare-and-swap, whether the refresh succeeded or failed (a failure is recorded in
//    `puffindb.refreshes` and retried at the next due time, not in a loop).
//
// Each scheduled refresh runs as a query of its own: a record in the query registry and an
// entry in the query log (user 'pipeline'), under the id its refresh record names.

import { ulid } from 'ulid';
import { PuffinError, toPuffinError } from '../errors.ts';
import type { Lease, QueryRecord, StateStore } from '../state/state-store.ts';
import { latestDue, REFRESH_LEASE_MS, refreshLockKey, type MaterializedViews } from './materialized-views.ts';
import { logEntryOf } from './query-manager.ts';

export const PIPELINE_USER = 'pipeline';
/** How often `puffindb serve` ticks. */
export const PIPELINE_TICK_MS = 60_000;

export function dueKey(view: string): string {
  return `puffindb:mv-due:${view.toLowerCase()}`;
}

export interface PipelineRun {
  view: string;
  dueAt: number;
  queryId: string;
  status: 'succeeded' | 'failed';
  mode?: string;
  rowsAdded?: number;
  refreshId?: string;
  error?: { code: string; message: string };
}

export interface PipelineTick {
  at: number;
  /** Views with a schedule. */
  scheduled: number;
  ran: PipelineRun[];
  /** Views not refreshed by this tick, and why (not due, handled, another process). */
  skipped: { view: string; why: string }[];
}

export interface PipelinesOptions {
  state: StateStore;
  views: MaterializedViews;
  /** The clock due times are read from (tests move it). Default Date.now. */
  now?: () => number;
  /** Deadline of one scheduled refresh. */
  timeoutMs: number;
  onError?: (err: unknown, context: string) => void;
}

export class Pipelines {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<PipelineTick> | undefined;

  constructor(private readonly options: PipelinesOptions) {}

  /** Refresh every view whose latest due time is not handled yet; one tick at a time in this process. */
  runDue(): Promise<PipelineTick> {
    this.running ??= this.tick().finally(() => (this.running = undefined));
    return this.running;
  }

  /** Tick every `intervalMs` until stop(). */
  start(intervalMs = PIPELINE_TICK_MS): void {
    if (this.timer || intervalMs <= 0) return;
    this.timer = setInterval(() => {
      this.runDue().catch((err: unknown) => this.options.onError?.(err, 'pipeline tick'));
    }, intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  private async tick(): Promise<PipelineTick> {
    const { state, views } = this.options;
    const at = (this.options.now ?? Date.now)();
    const scheduled = await views.scheduled();
    const out: PipelineTick = { at, scheduled: scheduled.length, ran: [], skipped: [] };
    for (const { view, schedule } of scheduled) {
      const due = latestDue(schedule, at);
      if (due === undefined) {
        out.skipped.push({ view, why: 'not due yet' });
        continue;
      }
      const handled = Number((await state.getValue(dueKey(view))) ?? '0');
      if (handled >= due) {
        out.skipped.push({ view, why: `due time ${new Date(due).toISOString()} already handled` });
        continue;
      }
      // The lease lives where the refresh renews and checks it (the cluster's state store).
      const lease = await views.leases.acquireLock(refreshLockKey(view), REFRESH_LEASE_MS);
      if (!lease) {
        out.skipped.push({ view, why: 'another process holds its refresh lease' });
        continue;
      }
      try {
        // Read again under the lease: another process may have handled it (or changed the schedule) meanwhile.
        const now = await views.scheduleOf(view);
        const dueNow = now ? latestDue(now, at) : undefined;
        const before = await state.getValue(dueKey(view));
        if (dueNow === undefined || Number(before ?? '0') >= dueNow) {
          out.skipped.push({ view, why: dueNow === undefined ? 'no longer scheduled' : 'handled by another process' });
          continue;
        }
        out.ran.push(await this.refreshOne(view, dueNow, lease));
        // Handled, succeeded or failed: the next try is the next due time.
        await state.compareAndSwap(dueKey(view), before, String(dueNow));
      } catch (err) {
        this.options.onError?.(err, `pipeline ${view}`);
      } finally {
        await views.leases.releaseLock(lease).catch(() => undefined);
      }
    }
    return out;
  }

  /** One scheduled refresh as a query of its own: recorded, run, logged. */
  private async refreshOne(view: string, dueAt: number, lease: Lease): Promise<PipelineRun> {
    const { state, views } = this.options;
    const submittedAt = Date.now();
    const queryId = ulid(submittedAt);
    const sql = `REFRESH MATERIALIZED VIEW ${view}`;
    const record: QueryRecord = {
      id: queryId,
      user: PIPELINE_USER,
      sql,
      status: 'running',
      submittedAt,
      startedAt: submittedAt,
      deadline: submittedAt + this.options.timeoutMs,
      progress: { fragmentsDone: 0, fragmentsTotal: 0, bytesScanned: 0 },
      shape: 'write',
    };
    await state.createQuery(record);
    const controller = new AbortController();
    const deadline = setTimeout(() => controller.abort(new PuffinError('timeout', `scheduled refresh of ${view} exceeded ${this.options.timeoutMs} ms`)), this.options.timeoutMs);
    let run: PipelineRun;
    let patch: Partial<QueryRecord>;
    try {
      const row = await views.refresh(view, { queryId, role: 'admin', signal: controller.signal, timeoutMs: this.options.timeoutMs }, { trigger: 'schedule', dueAt, lease });
      run = { view, dueAt, queryId, status: 'succeeded', mode: String(row[1]), rowsAdded: Number(row[2]), refreshId: String(row[6]) };
      patch = { status: 'succeeded' };
    } catch (err) {
      const e = toPuffinError(err);
      run = { view, dueAt, queryId, status: 'failed', error: { code: e.code, message: e.message } };
      patch = { status: 'failed', error: { code: e.code, message: e.message } };
    } finally {
      clearTimeout(deadline);
    }
    const done = await state.updateQuery(queryId, { ...patch, finishedAt: Date.now() }, ['running']);
    if (done) await state.appendLog(logEntryOf(done)).catch((err: unknown) => this.options.onError?.(err, 'query log'));
    return run;
  }
}
