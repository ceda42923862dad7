// Runs queued queries on the coordinator Lambda (PUFFINDB_COORDINATOR_FUNCTION) instead of
// in the admin API's process: an asynchronous query is one `Event` invocation (the admin
// Lambda can answer at once and freeze; the coordinator runs on), a synchronous one a
// `RequestResponse` invocation that returns when the query has ended. Either way the
// coordinator reads the query from the state store and writes its status and result back.

import { InvokeCommand, LambdaClient, type LambdaClientConfig } from '@aws-sdk/client-lambda';
import { PuffinError } from '../errors.ts';
import type { DispatchRequest, QueryDispatcher } from './query-manager.ts';

export interface LambdaDispatcherOptions {
  functionName: string;
  region: string;
  /** Override of the Lambda API endpoint (local emulators, tests). */
  endpoint?: string;
  /** Bound on a synchronous run: the query's deadline plus slack. */
  timeoutMs: number;
  credentials?: LambdaClientConfig['credentials'];
}

/** The event the coordinator Lambda takes for a query already recorded in the state store. */
export interface CoordinatorRunEvent extends DispatchRequest {
  action: 'run';
}

export class LambdaQueryDispatcher implements QueryDispatcher {
  private readonly client: LambdaClient;

  constructor(private readonly options: LambdaDispatcherOptions) {
    this.client = new LambdaClient({ region: options.region, endpoint: options.endpoint, credentials: options.credentials, maxAttempts: 2 });
  }

  async dispatch(request: DispatchRequest, wait: boolean): Promise<void> {
    const event: CoordinatorRunEvent = { action: 'run', ...request };
    const fn = this.options.functionName;
    let response;
    try {
      response = await this.client.send(
        new InvokeCommand({ FunctionName: fn, InvocationType: wait ? 'RequestResponse' : 'Event', Payload: Buffer.from(JSON.stringify(event)) }),
        { abortSignal: AbortSignal.timeout(wait ? this.options.timeoutMs : 10_000) },
      );
    } catch (err) {
      const e = err as { name?: string; message?: string };
      throw new PuffinError('unavailable', `coordinator Lambda '${fn}' could not be invoked for query ${request.queryId} (${e.name ?? 'Error'}: ${e.message ?? String(err)}); check PUFFINDB_COORDINATOR_FUNCTION`);
    }
    if (response.FunctionError) {
      const text = response.Payload ? Buffer.from(response.Payload).toString('utf8') : '';
      throw new PuffinError('internal', `coordinator Lambda '${fn}' failed running query ${request.queryId}: ${text.slice(0, 2000)}`);
    }
    const expected = wait ? 200 : 202;
    if (response.StatusCode !== expected) {
      throw new PuffinError('unavailable', `coordinator Lambda '${fn}' answered HTTP ${response.StatusCode} for query ${request.queryId}, not ${expected}`);
    }
  }

  close(): void {
    this.client.destroy();
  }
}
