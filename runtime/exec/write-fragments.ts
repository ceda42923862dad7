// Write fragments (INSERT / CTAS, copy-on-write DELETE / UPDATE, MERGE's rewrite round) run
// so that a failed write leaves no data file behind.
//
// A write fragment writes its rows as data files of the table and answers one row per file
// (worker.ts: its description as JSON; a MERGE's setup answers ride along). Run as one
// execution, a fragment failing would lose the answers of the fragments already done, and
// with them the names of the files they wrote: uncommitted orphans. So each fragment runs as
// an execution of its own (the coordinator still retries it, and the query's signal and
// deadline still stop it), at most `concurrency` at once. When one fails, no further one
// starts, those running are waited for, and every file the finished ones wrote is deleted
// before the failure is reported. (A fragment's own attempt that fails part-way through its
// uploads is the worker's to clean up.) A write fragment never gets a straggler duplicate
// this way (it is alone in its execution): a losing duplicate's files would be orphans too.

import { PuffinError } from '../errors.ts';
import type { Plan, StageStats } from '../planner/plan.ts';
import type { ExecuteOptions, ExecuteOutcome } from './coordinator.ts';
import type { QueryStats } from './query-service.ts';

export interface WriteFragmentsHost {
  execute(plan: Plan, options: ExecuteOptions): Promise<ExecuteOutcome>;
  /** Write fragments run at once. */
  concurrency: number;
  /** Delete a data file a fragment wrote (its path as the manifests would record it). */
  deleteFile(path: string): Promise<void>;
}

export interface WriteFragmentsRun {
  /** Every fragment's answer rows, in fragment order (column `file`: JSON). */
  rows: unknown[][];
  stats: Omit<QueryStats, 'planMs' | 'totalMs'>;
}

/** The data files named by write fragments' answer rows (not a MERGE's setup answers). */
export function writtenPaths(rows: readonly unknown[][]): string[] {
  const out: string[] = [];
  for (const [text] of rows) {
    try {
      const item = JSON.parse(String(text)) as { setup?: unknown; path?: unknown };
      if (item.setup === undefined && typeof item.path === 'string') out.push(item.path);
    } catch {
      // Not a file description.
    }
  }
  return out;
}

/**
 * Run `plan`'s write fragments (see the top of this file); its reduce step is run per
 * fragment and must pass the fragment's rows through (`SELECT file FROM __written`).
 */
export async function executeWriteFragments(host: WriteFragmentsHost, plan: Plan, options: { queryId: string; timeoutMs: number; signal?: AbortSignal }): Promise<WriteFragmentsRun> {
  const deadline = Date.now() + options.timeoutMs;
  const started = Date.now();
  const outcomes: (ExecuteOutcome | undefined)[] = plan.fragments.map(() => undefined);
  let failure: { error: unknown } | undefined;
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < plan.fragments.length && !failure) {
      const i = next++;
      try {
        const remaining = deadline - Date.now();
        if (remaining <= 0) throw new PuffinError('timeout', `query ${options.queryId} passed its deadline`);
        outcomes[i] = await host.execute({ ...plan, fragments: [plan.fragments[i]] }, { queryId: `${options.queryId}-w${i}`, timeoutMs: remaining, signal: options.signal });
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(host.concurrency, plan.fragments.length)) }, lane));
  const done = outcomes.filter((o): o is ExecuteOutcome => o !== undefined);
  if (failure) {
    // Nothing will commit the finished fragments' files: they go before the failure is told.
    await Promise.all(writtenPaths(done.flatMap((o) => o.rows)).map((path) => host.deleteFile(path).catch(() => undefined)));
    throw failure.error;
  }
  return { rows: done.flatMap((o) => o.rows), stats: combinedStats(done.map((o) => o.stats), Date.now() - started) };
}

/** The executions' stats as one write's: counts summed, each stage's tasks as one stage's. */
function combinedStats(all: ExecuteOutcome['stats'][], wallMs: number): Omit<QueryStats, 'planMs' | 'totalMs'> {
  const stages = new Map<string, StageStats>();
  for (const st of all) {
    for (const s of st.stages) {
      const seen = stages.get(s.stage);
      if (!seen) {
        stages.set(s.stage, { ...s, ms: wallMs });
        continue;
      }
      seen.tasks += s.tasks;
      seen.rowsOut += s.rowsOut;
      seen.bytesOut += s.bytesOut;
      seen.bytesIn += s.bytesIn;
      seen.shuffleGets += s.shuffleGets;
      seen.shufflePuts += s.shufflePuts;
      if (s.cacheHits !== undefined) seen.cacheHits = (seen.cacheHits ?? 0) + s.cacheHits;
      if (s.cacheMisses !== undefined) seen.cacheMisses = (seen.cacheMisses ?? 0) + s.cacheMisses;
      if (s.cacheBytesSaved !== undefined) seen.cacheBytesSaved = (seen.cacheBytesSaved ?? 0) + s.cacheBytesSaved;
    }
  }
  const sum = (f: (s: ExecuteOutcome['stats']) => number) => all.reduce((n, s) => n + f(s), 0);
  return {
    fragments: sum((s) => s.fragments),
    retries: sum((s) => s.retries),
    bytesScanned: sum((s) => s.bytesScanned),
    bytesShuffled: sum((s) => s.bytesShuffled),
    executeMs: wallMs,
    reduceMs: sum((s) => s.reduceMs),
    singleNodeBytes: Math.max(0, ...all.map((s) => s.singleNodeBytes)),
    stages: [...stages.values()],
    duplicates: sum((s) => s.duplicates),
    duplicateWins: sum((s) => s.duplicateWins),
  };
}
