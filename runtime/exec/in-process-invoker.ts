// The simplest Invoker: fragments run on a Worker in this very process. Used by tests and by
// single-process deployments where forking workers buys nothing.

import type { Settings } from '../settings.ts';
import type { FragmentRequest, FragmentResult, Invoker } from './invoker.ts';
import { Worker } from './worker.ts';

export interface InProcessInvokerOptions {
  /** Timeout of one invocation; the request's own deadline applies when it is earlier. */
  invokeTimeoutMs?: number;
  /** Close the worker when the invoker is closed (true when the invoker created it). */
  ownsWorker?: boolean;
}

export class InProcessInvoker implements Invoker {
  constructor(
    private readonly worker: Worker,
    private readonly options: InProcessInvokerOptions = {},
  ) {}

  static async create(settings: Settings): Promise<InProcessInvoker> {
    return new InProcessInvoker(await Worker.create(settings), { invokeTimeoutMs: settings.invokeTimeoutMs, ownsWorker: true });
  }

  invoke(request: FragmentRequest, signal?: AbortSignal): Promise<FragmentResult> {
    const { invokeTimeoutMs } = this.options;
    const deadline = invokeTimeoutMs ? Math.min(request.deadline, Date.now() + invokeTimeoutMs) : request.deadline;
    return this.worker.runFragment({ ...request, deadline }, signal);
  }

  async close(): Promise<void> {
    if (this.options.ownsWorker) this.worker.close();
  }
}
