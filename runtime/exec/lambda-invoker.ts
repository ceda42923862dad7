// The deployed Invoker: each fragment is one invocation of the worker Lambda
// (runtime/functions/worker.ts), synchronous (RequestResponse: the result is the answer) or
// asynchronous (Event: the worker reports to the state store). Lambda-level failures are
// mapped to PuffinError codes the coordinator's retry policy understands; the worker's own
// PuffinErrors arrive intact.

import { InvokeCommand, LambdaClient, type InvokeCommandOutput, type LambdaClientConfig } from '@aws-sdk/client-lambda';
import { PuffinError } from '../errors.ts';
import type { Settings } from '../settings.ts';
import type { AsyncFragmentRequest, AsyncInvoker, FragmentRequest, FragmentResult, Invoker, RelayRequest } from './invoker.ts';
import { decodeError, decodeResult, isWireError } from './wire.ts';

/** Lambda's limit on an Event invocation's payload (1 MB; 6 MB for RequestResponse). */
export const EVENT_PAYLOAD_LIMIT = 1_000_000;

export interface LambdaInvokerOptions {
  /** Name or ARN of the worker function. */
  functionName: string;
  region: string;
  /** Override of the Lambda API endpoint (local emulators, tests). */
  endpoint?: string;
  /** Timeout of one invocation; the request's deadline applies when it is earlier. */
  invokeTimeoutMs: number;
  credentials?: LambdaClientConfig['credentials'];
  /** Open connections to Lambda; a synchronous invocation holds one for its whole run. Default 256. */
  maxSockets?: number;
  /** SDK attempts per call (throttling and 5xx are retried with backoff). Default 3. */
  maxAttempts?: number;
  /** Timeout of an Event invocation's acceptance (not of the fragment's run). Default 10000. */
  dispatchTimeoutMs?: number;
}

export class LambdaInvoker implements Invoker, AsyncInvoker {
  private readonly client: LambdaClient;

  constructor(private readonly options: LambdaInvokerOptions) {
    const agent = { keepAlive: true, maxSockets: options.maxSockets ?? 256 };
    this.client = new LambdaClient({
      region: options.region,
      endpoint: options.endpoint,
      credentials: options.credentials,
      maxAttempts: options.maxAttempts ?? 3,
      requestHandler: { httpAgent: agent, httpsAgent: agent },
    });
  }

  static fromSettings(settings: Settings): LambdaInvoker {
    if (!settings.workerFunction) {
      throw new PuffinError('internal', 'PUFFINDB_WORKER_FUNCTION is not set; the Lambda invoker needs the worker function name');
    }
    return new LambdaInvoker({
      functionName: settings.workerFunction,
      region: settings.region,
      endpoint: settings.lambdaEndpoint,
      invokeTimeoutMs: settings.invokeTimeoutMs,
    });
  }

  async invoke(request: FragmentRequest, signal?: AbortSignal): Promise<FragmentResult> {
    const { fragment, queryId } = request;
    const what = `fragment ${fragment.id} of query ${queryId}`;
    const timeoutMs = Math.min(this.options.invokeTimeoutMs, request.deadline - Date.now());
    const response = await this.send('RequestResponse', request, what, timeoutMs, signal);
    const text = response.Payload ? Buffer.from(response.Payload).toString('utf8') : '';
    let payload: unknown;
    try {
      payload = text ? JSON.parse(text) : null;
    } catch {
      payload = text;
    }
    if (response.FunctionError) throw this.functionError(what, fragment.id, response.FunctionError, payload);
    if (typeof payload === 'string') throw new PuffinError('internal', `worker Lambda returned a non-JSON answer for ${what}: ${text.slice(0, 200)}`);
    return decodeResult(payload);
  }

  /**
   * Queue the fragment with an Event invocation: Lambda answers 202 at once and runs the
   * worker later; the worker reports to `request.report` on the state store.
   */
  async dispatch(request: AsyncFragmentRequest, signal?: AbortSignal): Promise<void> {
    const { fragment, queryId } = request;
    const what = `fragment ${fragment.id} of query ${queryId} (attempt ${request.report.attempt})`;
    const timeoutMs = Math.min(this.options.dispatchTimeoutMs ?? 10_000, this.options.invokeTimeoutMs, request.deadline - Date.now());
    const response = await this.send('Event', request, what, timeoutMs, signal);
    if (response.StatusCode !== 202) {
      throw new PuffinError('unavailable', `worker Lambda '${this.options.functionName}' answered HTTP ${response.StatusCode} to the Event invocation of ${what}, not 202`);
    }
  }

  /**
   * Queue a relay (RelayRequest) with one Event invocation of the worker function, which
   * dispatches each fragment (runtime/functions/worker.ts). Over Lambda's 1 MB Event payload
   * it is refused as payload_too_large before any call: the caller sends smaller relays.
   */
  async dispatchRelay(relay: RelayRequest, signal?: AbortSignal): Promise<void> {
    const first = relay.relay[0];
    if (!first) return;
    const what = `a relay of ${relay.relay.length} fragments of query ${first.queryId}`;
    const bytes = Buffer.byteLength(JSON.stringify(relay));
    if (bytes > EVENT_PAYLOAD_LIMIT) throw new PuffinError('payload_too_large', `${what} is ${bytes} bytes, over Lambda's ${EVENT_PAYLOAD_LIMIT}-byte Event payload`);
    const deadline = Math.min(...relay.relay.map((r) => r.deadline));
    const timeoutMs = Math.min(this.options.dispatchTimeoutMs ?? 10_000, this.options.invokeTimeoutMs, deadline - Date.now());
    const response = await this.send('Event', relay, what, timeoutMs, signal, first.fragment.id);
    if (response.StatusCode !== 202) {
      throw new PuffinError('unavailable', `worker Lambda '${this.options.functionName}' answered HTTP ${response.StatusCode} to the Event invocation of ${what}, not 202`);
    }
  }

  private async send(type: 'RequestResponse' | 'Event', request: FragmentRequest | RelayRequest, what: string, timeoutMs: number, signal?: AbortSignal, relayFragmentId?: string): Promise<InvokeCommandOutput> {
    const fragmentId = 'relay' in request ? relayFragmentId ?? '' : request.fragment.id;
    if (timeoutMs <= 0) throw new PuffinError('timeout', `${what} passed its deadline before it was invoked`, { fragmentId });
    if (signal?.aborted) throw abortReason(what, signal.reason);

    const abort = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      abort.abort();
    }, timeoutMs);
    const onAbort = () => abort.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await this.client.send(
        new InvokeCommand({
          FunctionName: this.options.functionName,
          InvocationType: type,
          Payload: Buffer.from(JSON.stringify(request)),
        }),
        { abortSignal: abort.signal },
      );
    } catch (err) {
      if (timedOut) throw new PuffinError('timeout', `${what} timed out after ${timeoutMs} ms`, { fragmentId });
      if (signal?.aborted) throw abortReason(what, signal.reason);
      throw this.apiError(what, err);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  /** The function ran and failed: our own error JSON, or Lambda's `{errorType, errorMessage}`. */
  private functionError(what: string, fragmentId: string, kind: string, payload: unknown): PuffinError {
    if (isWireError(payload)) return decodeError(payload);
    const body = (typeof payload === 'object' && payload !== null ? payload : {}) as { errorType?: unknown; errorMessage?: unknown };
    const message = typeof body.errorMessage === 'string' ? body.errorMessage : JSON.stringify(payload);
    const type = typeof body.errorType === 'string' ? body.errorType : kind;
    try {
      const inner: unknown = JSON.parse(message);
      if (isWireError(inner)) return decodeError(inner);
    } catch {
      // Not ours: a runtime failure (out of memory, crash, Lambda's own timeout).
    }
    if (type === 'Sandbox.Timedout' || /Task timed out/.test(message)) {
      return new PuffinError('timeout', `worker Lambda timed out running ${what}: ${message}`, { fragmentId });
    }
    return new PuffinError('fragment_failed', `worker Lambda failed running ${what} (${type}): ${message}`, { fragmentId });
  }

  /** Lambda refused or could not be reached: the invocation never ran the function. */
  private apiError(what: string, err: unknown): PuffinError {
    const e = err as { name?: string; message?: string; code?: string; $metadata?: { httpStatusCode?: number } };
    const name = e?.name ?? 'Error';
    const status = e?.$metadata?.httpStatusCode;
    const detail = `${name}${status ? ` (HTTP ${status})` : ''}: ${e?.message ?? String(err)}`;
    const fn = this.options.functionName;
    if (name === 'ResourceNotFoundException') {
      return new PuffinError('unavailable', `worker Lambda function '${fn}' does not exist (${detail}); check PUFFINDB_WORKER_FUNCTION`);
    }
    if (name === 'RequestTooLargeException') {
      return new PuffinError('payload_too_large', `request for ${what} exceeds Lambda's payload limit: ${detail}`);
    }
    if (name === 'TooManyRequestsException' || status === 429 || (status !== undefined && status >= 500) || status === undefined) {
      // Throttled, Lambda-side failure, or no HTTP answer at all (connection refused, reset).
      return new PuffinError('unavailable', `worker Lambda '${fn}' unavailable for ${what}: ${detail}`);
    }
    return new PuffinError('internal', `worker Lambda '${fn}' refused ${what}: ${detail}`);
  }
}

function abortReason(what: string, reason: unknown): PuffinError {
  return reason instanceof PuffinError ? reason : new PuffinError('timeout', `${what} was cancelled`);
}
