// Progress of a long command on a terminal: one line on stderr, rewritten in place (\r) at
// most every 100 ms and cleared when the command ends, so the output that follows starts on
// a clean line. When stderr is not a terminal (a pipe, a file, a test) nothing is written at
// all: scripts see exactly the command's output. The formatting functions are pure.

import type { Plan } from '../planner/plan.ts';

/** 1536 -> '1.5 KiB'. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** What a running query has done so far, as the cluster's onPlan / onFragment hooks tell it. */
export interface QueryProgress {
  /** Stages planned (the leaf fragments are one, each later worker stage another), over every plan run. */
  stages: number;
  tasksDone: number;
  tasksTotal: number;
  bytesRead: number;
  /** Files served by the workers' filtered-partition cache, and files read. */
  cacheHits?: number;
  cacheMisses?: number;
}

export function formatQueryProgress(p: QueryProgress, elapsedMs: number): string {
  const stages = `${p.stages} stage${p.stages === 1 ? '' : 's'}`;
  const cache = p.cacheHits || p.cacheMisses ? `, ${p.cacheHits ?? 0}/${(p.cacheHits ?? 0) + (p.cacheMisses ?? 0)} files cached` : '';
  return `query: ${stages}, tasks ${p.tasksDone}/${p.tasksTotal}, ${formatBytes(p.bytesRead)} read${cache}, ${(elapsedMs / 1000).toFixed(1)} s`;
}

/** Progress of `puffindb download`; `total` once known (a ranged download's Content-Range). */
export function formatDownloadProgress(fetched: number, total: number | undefined, elapsedMs: number): string {
  const of = total === undefined ? '' : ` of ${formatBytes(total)} (${total === 0 ? 100 : Math.floor((fetched / total) * 100)}%)`;
  return `download: ${formatBytes(fetched)}${of} fetched, ${(elapsedMs / 1000).toFixed(1)} s`;
}

export function formatDemoProgress(tablesWritten: number, tablesTotal: number, elapsedMs: number): string {
  return `demo: ${tablesWritten}/${tablesTotal} tables written, ${(elapsedMs / 1000).toFixed(1)} s`;
}

/** The part of a terminal stream a progress line needs (process.stderr). */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(s: string): unknown;
}

export interface ProgressLine {
  /** Show this line (throttled; `force` draws it now). */
  update(line: string, force?: boolean): void;
  /** Erase the line (before other output, or at the end). */
  clear(): void;
}

const NO_PROGRESS: ProgressLine = { update: () => undefined, clear: () => undefined };

/** A progress line on `stream` when it is a terminal; else one that writes nothing. */
export function progressLine(stream: ProgressStream = process.stderr, intervalMs = 100): ProgressLine {
  if (!stream.isTTY) return NO_PROGRESS;
  let shown = false;
  let last = 0;
  return {
    update(line, force = false) {
      const now = Date.now();
      if (!force && now - last < intervalMs) return;
      last = now;
      const width = Math.max(20, (stream.columns || 80) - 1);
      // \r to the line's start, the text (cut to the width so it never wraps), then erase the rest.
      stream.write(`\r${line.slice(0, width)}\x1b[K`);
      shown = true;
    },
    clear() {
      if (shown) stream.write('\r\x1b[K');
      shown = false;
    },
  };
}

/**
 * Hooks for Warehouse.query / cluster options that draw a query's progress: every plan run
 * (a query with materialized subqueries runs several) adds its stages and tasks.
 */
export function queryProgressHooks(line: ProgressLine, now: () => number = Date.now): { onPlan: (plan: Plan) => void; onFragment: (done: { bytesScanned: number; cache?: { hits: number; misses: number } }) => void; progress: QueryProgress } {
  const started = now();
  const progress: QueryProgress = { stages: 0, tasksDone: 0, tasksTotal: 0, bytesRead: 0 };
  return {
    progress,
    onPlan(plan) {
      const stages = plan.stages ?? [];
      progress.stages += (plan.fragments.length > 0 ? 1 : 0) + stages.length;
      progress.tasksTotal += plan.fragments.length + stages.reduce((n, s) => n + s.tasks, 0);
      line.update(formatQueryProgress(progress, now() - started), true);
    },
    onFragment(done) {
      progress.tasksDone++;
      progress.bytesRead += done.bytesScanned;
      if (done.cache) {
        progress.cacheHits = (progress.cacheHits ?? 0) + done.cache.hits;
        progress.cacheMisses = (progress.cacheMisses ?? 0) + done.cache.misses;
      }
      line.update(formatQueryProgress(progress, now() - started), progress.tasksDone === progress.tasksTotal);
    },
  };
}
