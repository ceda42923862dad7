// The worker Lambda: one fragment per invocation. A thin adapter over exec/worker.ts that
// keeps one Worker (one DuckDB, one /tmp cache) per container.
//
// Invoked synchronously, the result is the answer and a failure is thrown as an Error whose
// message is the PuffinError JSON, so Lambda reports a function error and LambdaInvoker
// restores the PuffinError with its code. Invoked asynchronously (Event), the request names
// a completion stream (`report`): the result or the error is published there, on the state
// store opened once per container, and the handler returns normally either way, so Lambda
// does not retry a fragment the coordinator already knows failed. Only when the report
// itself cannot be published does the handler throw (Lambda's own retry may deliver it).

import { loadSettings, type Settings } from '../settings.ts';
import { PuffinError, toPuffinError } from '../errors.ts';
import { Worker } from '../exec/worker.ts';
import { completionOf, decodeCompletionTarget, decodeRequest } from '../exec/wire.ts';
import type { AsyncInvoker, CompletionTarget, FragmentResult } from '../exec/invoker.ts';
import { forEachLimit } from '../exec/shuffle-read.ts';
import { openStateStore } from '../state/open.ts';
import type { StateStore } from '../state/state-store.ts';

/** The fragment's result; null when an asynchronous invocation's failure was reported instead. */
export type WorkerHandler = (event: unknown) => Promise<FragmentResult | null>;

export interface WorkerHandlerOptions {
  /** The state store asynchronous invocations report to; default: opened from settings on first use. */
  stateStore?: () => Promise<StateStore>;
  /** What a relay dispatches its fragments with; default: the worker function (LambdaInvoker.fromSettings). */
  relayInvoker?: () => Promise<AsyncInvoker>;
}

/** Fragments a relay dispatches at once. */
const RELAY_CONCURRENCY = 16;

/** Error thrown out of the handler; its message is `{"error":{"code",...}}`. */
export class WorkerFunctionError extends Error {
  constructor(err: unknown) {
    super(JSON.stringify(toPuffinError(err).toJSON()));
    this.name = 'PuffinError';
  }
}

/** Build a handler with its own lazily created Worker; `settings` is read on first use. */
export function createWorkerHandler(settings: () => Settings, options: WorkerHandlerOptions = {}): WorkerHandler {
  let worker: Promise<Worker> | undefined;
  let store: Promise<StateStore> | undefined;
  let coldStart = true;

  const openWorker = (): Promise<Worker> =>
    (worker ??= Worker.create(settings()).catch((err: unknown) => {
      // Let the next invocation try again rather than fail forever.
      worker = undefined;
      throw err;
    }));
  const openStore = (): Promise<StateStore> =>
    (store ??= (options.stateStore ?? (() => openStateStore(settings())))().catch((err: unknown) => {
      store = undefined;
      throw err;
    }));

  let relayer: Promise<AsyncInvoker> | undefined;
  const openRelayer = (): Promise<AsyncInvoker> =>
    (relayer ??= (options.relayInvoker ?? (async () => (await import('../exec/lambda-invoker.ts')).LambdaInvoker.fromSettings(settings())))().catch((err: unknown) => {
      relayer = undefined;
      throw err;
    }));

  /**
   * A relay (the coordinator's invocation tree, exec/async-fanout.ts): dispatch each fragment
   * with its own Event invocation. A fragment that cannot be dispatched (malformed, refused)
   * is reported failed on its completion stream, so the coordinator retries it; the relay
   * itself always returns normally, since Lambda must not run it twice.
   */
  const relay = async (requests: unknown[]): Promise<null> => {
    const started = Date.now();
    let failed = 0;
    const fail = async (raw: unknown, error: PuffinError): Promise<void> => {
      failed++;
      const report = reportOf(raw);
      const ids = idsOf(raw);
      log('error', { ...ids, attempt: report?.attempt, msg: 'relay could not dispatch', code: error.code, message: error.message });
      if (!report) return;
      await (await openStore()).publishCompletion(report.stream, completionOf(ids.fragmentId ?? '?', report.attempt, { error }))
        .catch((err: unknown) => log('error', { ...ids, msg: 'relay failure not published', message: toPuffinError(err).message }));
    };
    let invoker: AsyncInvoker | undefined;
    try {
      invoker = await openRelayer();
    } catch (err) {
      for (const raw of requests) await fail(raw, toPuffinError(err));
      return null;
    }
    await forEachLimit(requests, RELAY_CONCURRENCY, undefined, async (raw) => {
      try {
        const request = decodeRequest(raw);
        if (!request.report) throw new PuffinError('bad_request', `relayed fragment ${request.fragment.id} has no completion target; a relay carries asynchronous requests only`);
        if ((raw as { relay?: unknown }).relay !== undefined) throw new PuffinError('bad_request', 'a relay does not relay relays');
        await invoker.dispatch({ ...request, report: request.report });
      } catch (err) {
        await fail(raw, toPuffinError(err));
      }
    });
    log('info', { msg: 'relay', fragments: requests.length, failed, durationMs: Date.now() - started });
    return null;
  };

  return async (event) => {
    const relayed = (event as { relay?: unknown } | null)?.relay;
    if (relayed !== undefined) {
      if (!Array.isArray(relayed)) throw new WorkerFunctionError(new PuffinError('bad_request', 'relay must be an array of fragment requests'));
      return relay(relayed);
    }
    const started = Date.now();
    const wasCold = coldStart;
    coldStart = false;
    const ids = idsOf(event);
    const report = reportOf(event);
    let outcome: { result: FragmentResult } | { error: PuffinError };
    try {
      const request = decodeRequest(event);
      outcome = { result: await (await openWorker()).runFragment(request) };
      log('info', { ...ids, attempt: report?.attempt, coldStart: wasCold, durationMs: Date.now() - started, rows: outcome.result.rows, bytes: outcome.result.bytes });
    } catch (err) {
      outcome = { error: toPuffinError(err) };
      log('error', { ...ids, attempt: report?.attempt, coldStart: wasCold, durationMs: Date.now() - started, code: outcome.error.code, message: outcome.error.message });
    }
    if (!report) {
      if ('error' in outcome) throw new WorkerFunctionError(outcome.error);
      return outcome.result;
    }
    try {
      await (await openStore()).publishCompletion(report.stream, completionOf(ids.fragmentId ?? '?', report.attempt, outcome));
    } catch (err) {
      const error = toPuffinError(err);
      log('error', { ...ids, attempt: report.attempt, msg: 'completion not published', code: error.code, message: error.message });
      throw new WorkerFunctionError(new PuffinError(error.code, `could not report fragment ${ids.fragmentId} of query ${ids.queryId}: ${error.message}`));
    }
    return 'result' in outcome ? outcome.result : null;
  };
}

function idsOf(event: unknown): { queryId?: string; fragmentId?: string } {
  const e = (typeof event === 'object' && event !== null ? event : {}) as { queryId?: unknown; fragment?: { id?: unknown } };
  return {
    queryId: typeof e.queryId === 'string' ? e.queryId : undefined,
    fragmentId: typeof e.fragment?.id === 'string' ? e.fragment.id : undefined,
  };
}

/** The completion target, when the event has a well-formed one; even a malformed request is reported there. */
function reportOf(event: unknown): CompletionTarget | undefined {
  const raw = (event as { report?: unknown } | null)?.report;
  if (raw === undefined) return undefined;
  try {
    return decodeCompletionTarget(raw);
  } catch {
    return undefined;
  }
}

/** Structured logs for CloudWatch; silent outside Lambda so local runs and tests stay quiet. */
function log(level: 'info' | 'error', fields: Record<string, unknown>): void {
  if (!process.env.AWS_LAMBDA_FUNCTION_NAME) return;
  const line = JSON.stringify({ level, msg: 'fragment', ...fields });
  if (level === 'error') console.error(line);
  else console.log(line);
}

export const handler: WorkerHandler = createWorkerHandler(() => loadSettings());
