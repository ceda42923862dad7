// The worker Lambda: one fragment per invocation. A thin adapter over exec/worker.ts that
// keeps one Worker (one DuckDB, one /tmp cache) per container. Failures are thrown as an
// Error whose message is the PuffinError JSON, so Lambda reports a function error and
// LambdaInvoker restores the PuffinError with its code.

import { loadSettings, type Settings } from '../settings.ts';
import { toPuffinError } from '../errors.ts';
import { Worker } from '../exec/worker.ts';
import { decodeRequest } from '../exec/wire.ts';
import type { FragmentResult } from '../exec/invoker.ts';

export type WorkerHandler = (event: unknown) => Promise<FragmentResult>;

/** Error thrown out of the handler; its message is `{"error":{"code",...}}`. */
export class WorkerFunctionError extends Error {
  constructor(err: unknown) {
    super(JSON.stringify(toPuffinError(err).toJSON()));
    this.name = 'PuffinError';
  }
}

/** Build a handler with its own lazily created Worker; `settings` is read on first use. */
export function createWorkerHandler(settings: () => Settings): WorkerHandler {
  let worker: Promise<Worker> | undefined;
  let coldStart = true;
  return async (event) => {
    const started = Date.now();
    const wasCold = coldStart;
    coldStart = false;
    try {
      const request = decodeRequest(event);
      worker ??= Worker.create(settings()).catch((err: unknown) => {
        // Let the next invocation try again rather than fail forever.
        worker = undefined;
        throw err;
      });
      const result = await (await worker).runFragment(request);
      log('info', { queryId: request.queryId, fragmentId: request.fragment.id, coldStart: wasCold, durationMs: Date.now() - started, rows: result.rows, bytes: result.bytes });
      return result;
    } catch (err) {
      const error = toPuffinError(err);
      const request = event as { queryId?: unknown; fragment?: { id?: unknown } } | null;
      log('error', { queryId: request?.queryId, fragmentId: request?.fragment?.id, coldStart: wasCold, durationMs: Date.now() - started, code: error.code, message: error.message });
      throw new WorkerFunctionError(error);
    }
  };
}

/** Structured logs for CloudWatch; silent outside Lambda so local runs and tests stay quiet. */
function log(level: 'info' | 'error', fields: Record<string, unknown>): void {
  if (!process.env.AWS_LAMBDA_FUNCTION_NAME) return;
  const line = JSON.stringify({ level, msg: 'fragment', ...fields });
  if (level === 'error') console.error(line);
  else console.log(line);
}

export const handler: WorkerHandler = createWorkerHandler(() => loadSettings());
