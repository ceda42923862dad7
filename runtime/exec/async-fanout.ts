// Asynchronous fan-out: every fragment is started with an Event invocation (quick, no
// connection held while it runs) and its result is gathered from the query run's completion
// stream on the state store. The coordinator's rules still hold: a fragment whose report does
// not arrive within the completion timeout counts as failed, failures are retried under the
// coordinator's policy, and a report from a superseded attempt is ignored.

import { randomBytes } from 'node:crypto';
import { PuffinError, toPuffinError } from '../errors.ts';
import type { Fragment } from '../planner/plan.ts';
import type { Settings } from '../settings.ts';
import type { StateStore } from '../state/state-store.ts';
import type { AsyncInvoker, FragmentRequest, FragmentResult, Invoker } from './invoker.ts';
import { pause, untilAborted } from './signals.ts';
import { decodeCompletion } from './wire.ts';

export interface AsyncFanoutOptions {
  invoker: AsyncInvoker;
  store: StateStore;
  /** Queries with at least this many fragments fan out asynchronously (when mode is 'auto'). */
  threshold: number;
  /** How long one attempt may take from its dispatch to its report. */
  completionTimeoutMs: number;
  /** Longest single wait on the completion stream; bounds how late a timeout is noticed. Default 1000. */
  pollMs?: number;
  /** How long the completion stream may stay unreadable before the query fails. Default 5000. */
  storeOutageGraceMs?: number;
  /**
   * From this many fragments, first attempts go out through relays (an invocation tree):
   * about sqrt(n) relay invocations of about sqrt(n) fragments each, which the relaying
   * workers dispatch. 0 (or an invoker without dispatchRelay): never. Default DEFAULT_RELAY_ABOVE.
   */
  relayAbove?: number;
}

/** Fragments from which a fan-out's first attempts go through relays, by default. */
export const DEFAULT_RELAY_ABOVE = 64;

/** Relays are cut to stay under this many bytes of JSON (Lambda takes 1 MB per Event). */
const RELAY_MAX_BYTES = 900_000;

/**
 * Cut n first attempts into relays of about sqrt(n) requests, each under RELAY_MAX_BYTES: the
 * coordinator then makes about sqrt(n) Invoke calls and each relay about sqrt(n).
 */
export function relayBatches<T>(items: readonly T[], sizeOf: (item: T) => number): T[][] {
  const per = Math.max(1, Math.ceil(Math.sqrt(items.length)));
  const batches: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = sizeOf(item);
    if (current.length && (current.length >= per || bytes + size > RELAY_MAX_BYTES)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += size;
  }
  if (current.length) batches.push(current);
  return batches;
}

/**
 * The asynchronous fan-out settings call for: workers on Lambda (PUFFINDB_WORKER_FUNCTION) that
 * can report to a state store they share with the coordinator (REDIS_URL), and a threshold
 * above 0 (PUFFINDB_ASYNC_THRESHOLD). Otherwise undefined: every query fans out synchronously.
 */
export function asyncFanoutFor(settings: Settings, invoker: Invoker | (Invoker & AsyncInvoker), store: StateStore | undefined): AsyncFanoutOptions | undefined {
  if (!settings.workerFunction || !settings.redisUrl || !store || settings.asyncThreshold <= 0 || !('dispatch' in invoker)) return undefined;
  return { invoker, store, threshold: settings.asyncThreshold, completionTimeoutMs: settings.invokeTimeoutMs, relayAbove: settings.asyncRelayAbove };
}

/** What the coordinator lends one asynchronous run: its request shape, policy and landing. */
export interface FanoutRun {
  queryId: string;
  /** The query's deadline (ms since the epoch). */
  deadline: number;
  /** Aborted when the query fails, is cancelled or passes its deadline. */
  signal: AbortSignal;
  /** Invoke calls in flight at once. */
  concurrency: number;
  request(fragment: Fragment): FragmentRequest;
  /** Bring a result in; a rejection fails the query. */
  land(fragment: Fragment, result: FragmentResult): Promise<void>;
  /** A failed attempt: ms to wait before the next one, or the error that ends the query. */
  onFailure(fragment: Fragment, attempt: number, error: PuffinError): number | PuffinError;
  /** A result nobody waits for any more (a duplicate or a superseded attempt). */
  discard(result: FragmentResult): void;
  /** End the query with this error (aborts `signal`). */
  fail(error: PuffinError): void;
  /**
   * Run one fragment synchronously (with the coordinator's retries): the way out for a request
   * too large for an Event invocation (Lambda takes 1 MB asynchronously, 6 MB synchronously).
   */
  runSync(fragment: Fragment): Promise<FragmentResult>;
}

type Phase = 'queued' | 'dispatching' | 'running' | 'retrying' | 'sync' | 'done';

interface FragmentState {
  fragment: Fragment;
  attempt: number;
  phase: Phase;
  /** When the current attempt counts as lost (set at dispatch). */
  expiresAt: number;
}

const READ_BATCH = 256;

/** Run every fragment asynchronously; resolves when all have landed, rejects with the query's failure. */
export async function runAsyncFanout(fragments: Fragment[], options: AsyncFanoutOptions, run: FanoutRun): Promise<void> {
  const pollMs = options.pollMs ?? 1_000;
  const outageGraceMs = options.storeOutageGraceMs ?? 5_000;
  // One stream per run, so a report from an earlier run under the same query id never counts.
  const stream = `${run.queryId.slice(0, 100)}-${randomBytes(6).toString('hex')}`;
  const states = new Map(fragments.map((f) => [f.id, { fragment: f, attempt: 1, phase: 'queued' as Phase, expiresAt: Infinity }]));
  const queue: FragmentState[] = [...states.values()];
  const timers = new Set<NodeJS.Timeout>();
  /** Stored partials in use: a repeated report naming one must not get it deleted. */
  const landedUris = new Set<string>();
  const noteLanded = (result: FragmentResult): void => {
    if (result.partial.kind === 'stored') landedUris.add(result.partial.uri);
  };
  let dispatching = 0;
  let remaining = fragments.length;

  const failed = (state: FragmentState, error: PuffinError): void => {
    if (run.signal.aborted || state.phase === 'done' || state.phase === 'retrying') return;
    const next = run.onFailure(state.fragment, state.attempt, error);
    if (next instanceof PuffinError) return run.fail(next);
    // The attempt number moves on now, so the old attempt's late report is recognised as stale.
    state.attempt++;
    state.phase = 'retrying';
    state.expiresAt = Infinity;
    const timer = setTimeout(() => {
      timers.delete(timer);
      state.phase = 'queued';
      queue.push(state);
      pump();
    }, next);
    timers.add(timer);
  };

  const dispatch = async (state: FragmentState): Promise<void> => {
    const attempt = state.attempt;
    // The worker gives up when the coordinator stops waiting for this attempt.
    const attemptDeadline = Math.min(run.deadline, Date.now() + options.completionTimeoutMs);
    state.phase = 'dispatching';
    state.expiresAt = attemptDeadline;
    try {
      const request = { ...run.request(state.fragment), deadline: attemptDeadline, report: { stream, attempt } };
      await options.invoker.dispatch(request, run.signal);
      if (state.attempt === attempt && state.phase === 'dispatching') state.phase = 'running';
    } catch (err) {
      if (state.attempt !== attempt || state.phase !== 'dispatching') return;
      const error = toPuffinError(err);
      if (error.code === 'payload_too_large') runSynchronously(state);
      else failed(state, error);
    }
  };

  const runSynchronously = (state: FragmentState): void => {
    state.phase = 'sync';
    state.expiresAt = Infinity;
    run.runSync(state.fragment).then(
      async (result) => {
        state.phase = 'done';
        noteLanded(result);
        await run.land(state.fragment, result);
        // Counted only once landed: the gathering loop ends when nothing is left to land.
        remaining--;
      },
      (err: unknown) => run.fail(toPuffinError(err)),
    ).catch((err: unknown) => run.fail(toPuffinError(err)));
  };

  /**
   * First attempts through relays: each relay's fragments are 'dispatching' until it is
   * accepted, then 'running' under the usual completion timeout. A relay that is not accepted
   * dispatched nothing: its fragments go back to the queue for direct dispatch.
   */
  const relayFirstAttempts = async (): Promise<void> => {
    const first = queue.splice(0, queue.length);
    const prepared = first.map((state) => {
      const attemptDeadline = Math.min(run.deadline, Date.now() + options.completionTimeoutMs);
      state.phase = 'dispatching';
      state.expiresAt = attemptDeadline;
      const request = { ...run.request(state.fragment), deadline: attemptDeadline, report: { stream, attempt: state.attempt } };
      return { state, request, bytes: Buffer.byteLength(JSON.stringify(request)) };
    });
    const batches = relayBatches(prepared, (p) => p.bytes);
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < batches.length && !run.signal.aborted) {
        const batch = batches[next++];
        try {
          await options.invoker.dispatchRelay!({ relay: batch.map((p) => p.request) }, run.signal);
          for (const { state, request } of batch) {
            if (state.attempt === request.report.attempt && state.phase === 'dispatching') state.phase = 'running';
          }
          relays++;
        } catch {
          if (run.signal.aborted) return;
          for (const { state, request } of batch) {
            if (state.attempt !== request.report.attempt || state.phase !== 'dispatching') continue;
            state.phase = 'queued';
            state.expiresAt = Infinity;
            queue.push(state);
          }
          pump();
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(run.concurrency, batches.length) }, lane));
  };
  let relays = 0;

  const pump = (): void => {
    while (dispatching < run.concurrency && queue.length && !run.signal.aborted) {
      const state = queue.shift()!;
      dispatching++;
      void dispatch(state).finally(() => {
        dispatching--;
        pump();
      });
    }
  };

  const accept = async (fragmentId: string, attempt: number, message: Parameters<typeof decodeCompletion>[0]): Promise<void> => {
    const state = states.get(fragmentId);
    let outcome: ReturnType<typeof decodeCompletion>;
    try {
      outcome = decodeCompletion(message);
    } catch (err) {
      outcome = { ok: false, error: toPuffinError(err) };
    }
    const current = state && state.attempt === attempt && (state.phase === 'running' || state.phase === 'dispatching');
    if (!current) {
      const inUse = outcome.ok && outcome.result.partial.kind === 'stored' && landedUris.has(outcome.result.partial.uri);
      if (outcome.ok && !inUse) run.discard(outcome.result);
      return;
    }
    if (!outcome.ok) return failed(state, outcome.error);
    if (outcome.result.fragmentId !== fragmentId) {
      return failed(state, new PuffinError('internal', `worker answered fragment ${fragmentId} with the result of ${outcome.result.fragmentId}`));
    }
    state.phase = 'done';
    state.expiresAt = Infinity;
    noteLanded(outcome.result);
    remaining--;
    await run.land(state.fragment, outcome.result);
  };

  const expireLost = (): void => {
    const now = Date.now();
    for (const state of states.values()) {
      if ((state.phase === 'running' || state.phase === 'dispatching') && state.expiresAt <= now) {
        failed(
          state,
          new PuffinError('timeout', `fragment ${state.fragment.id} of query ${run.queryId} sent no completion within ${options.completionTimeoutMs} ms (attempt ${state.attempt})`, {
            fragmentId: state.fragment.id,
          }),
        );
      }
    }
  };

  try {
    const relayAbove = options.relayAbove ?? DEFAULT_RELAY_ABOVE;
    if (options.invoker.dispatchRelay && relayAbove > 0 && fragments.length >= relayAbove) {
      // Completions are read while the relays go out: the first may already be reporting.
      void relayFirstAttempts().catch((err: unknown) => run.fail(toPuffinError(err)));
    } else pump();
    let cursor: string | null = null;
    let unreadableSince: number | undefined;
    while (remaining > 0) {
      if (run.signal.aborted) throw run.signal.reason;
      let nextExpiry = Infinity;
      for (const state of states.values()) nextExpiry = Math.min(nextExpiry, state.expiresAt);
      const blockMs = Math.max(1, Math.min(pollMs, nextExpiry - Date.now(), run.deadline - Date.now()));
      let batch;
      try {
        batch = await untilAborted(options.store.readCompletions(stream, cursor, { blockMs, count: READ_BATCH }), run.signal);
        unreadableSince = undefined;
      } catch (err) {
        if (run.signal.aborted) throw run.signal.reason;
        const error = toPuffinError(err);
        unreadableSince ??= Date.now();
        if (error.code !== 'unavailable' || Date.now() - unreadableSince > outageGraceMs) {
          throw new PuffinError(error.code, `query ${run.queryId} cannot read its workers' completions: ${error.message}`);
        }
        await pause(Math.min(200, blockMs), run.signal).catch(() => undefined);
        expireLost();
        continue;
      }
      cursor = batch.cursor;
      await Promise.all(batch.items.map((m) => accept(m.fragmentId, m.attempt, m)));
      expireLost();
    }
    if (run.signal.aborted) throw run.signal.reason;
  } finally {
    for (const timer of timers) clearTimeout(timer);
    // Reports still coming from abandoned attempts land in a stream that expires by itself.
    await options.store.deleteCompletions(stream).catch(() => undefined);
  }
}
