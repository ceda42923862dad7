// A local stand-in for the AWS Lambda Invoke API, so the real @aws-sdk/client-lambda path
// (LambdaInvoker, synchronous and asynchronous) runs on one machine and in tests. It answers
// the way Lambda does: function errors are a 200 with `X-Amz-Function-Error: Unhandled`, API
// errors carry `x-amzn-ErrorType`, an Event invocation is a 202 and runs in the background
// (without Lambda's own retries of a failed asynchronous invocation).

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type LambdaHandler = (event: unknown) => Promise<unknown>;

export interface LocalLambda {
  /** Base URL to pass as the Lambda client's endpoint, e.g. 'http://127.0.0.1:41234'. */
  url: string;
  close(): Promise<void>;
}

/** Lambda refuses synchronous request payloads over 6 MB, asynchronous (Event) ones over 1 MB. */
const MAX_PAYLOAD_BYTES = 6 * 1024 * 1024;
const MAX_EVENT_PAYLOAD_BYTES = 1024 * 1024;
/** How long close() waits for invocations still running before it gives up on them. */
const CLOSE_GRACE_MS = 5_000;
const INVOKE_PATH = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/;

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body === undefined ? null : body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function sendApiError(res: ServerResponse, err: ApiError): void {
  sendJson(res, err.status, { Type: 'User', message: err.message }, { 'x-amzn-ErrorType': err.type });
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_PAYLOAD_BYTES) {
      throw new ApiError(413, 'RequestTooLargeException', `Request must be smaller than ${MAX_PAYLOAD_BYTES} bytes for the InvokeFunction operation`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function parseEvent(body: Buffer): unknown {
  // Lambda hands an empty payload to the function as an empty object.
  if (body.length === 0) return {};
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new ApiError(400, 'InvalidRequestContentException', 'Could not parse request body into json: the payload is not valid JSON');
  }
}

/** The body real Lambda returns for an unhandled error in a Node.js function. */
function functionErrorBody(err: unknown): { errorType: string; errorMessage: string; trace: string[] } {
  if (err instanceof Error) {
    return { errorType: err.name || 'Error', errorMessage: err.message, trace: (err.stack ?? '').split('\n') };
  }
  return { errorType: 'Error', errorMessage: typeof err === 'string' ? err : JSON.stringify(err) ?? String(err), trace: [] };
}

/** Function names may arrive as ARNs ('arn:aws:lambda:region:acct:function:name[:qualifier]'). */
function functionNameOf(raw: string): string {
  const name = decodeURIComponent(raw);
  const arn = /^arn:[^:]+:lambda:[^:]*:[^:]*:function:([^:]+)(?::[^:]+)?$/.exec(name);
  return arn ? arn[1] : name;
}

export async function startLocalLambda(handlers: Record<string, LambdaHandler>, port = 0): Promise<LocalLambda> {
  const running = new Set<Promise<unknown>>();

  const track = (work: Promise<unknown>): Promise<unknown> => {
    running.add(work);
    void work.then(
      () => running.delete(work),
      () => running.delete(work),
    );
    return work;
  };

  const invoke = (handler: LambdaHandler, event: unknown): Promise<unknown> =>
    // A handler that throws synchronously is still a function error, not a server crash.
    track(Promise.resolve().then(() => handler(event)));

  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const match = INVOKE_PATH.exec(url.pathname);
      if (!match || req.method !== 'POST') {
        throw new ApiError(404, 'UnknownOperationException', `Unknown operation ${req.method} ${url.pathname}`);
      }
      const name = functionNameOf(match[1]);
      const handler = Object.prototype.hasOwnProperty.call(handlers, name) ? handlers[name] : undefined;
      if (!handler) {
        throw new ApiError(404, 'ResourceNotFoundException', `Function not found: ${name}`);
      }
      const invocationType = String(req.headers['x-amz-invocation-type'] ?? 'RequestResponse');
      const body = await readBody(req);
      if (invocationType === 'Event' && body.length > MAX_EVENT_PAYLOAD_BYTES) {
        throw new ApiError(413, 'RequestTooLargeException', `Request must be smaller than ${MAX_EVENT_PAYLOAD_BYTES} bytes for an asynchronous (Event) invocation`);
      }
      const event = parseEvent(body);
      const baseHeaders = { 'X-Amz-Executed-Version': '$LATEST' };
      switch (invocationType) {
        case 'DryRun':
          res.writeHead(204, baseHeaders).end();
          return;
        case 'Event':
          invoke(handler, event).catch((err: unknown) => {
            // Asynchronous invocations have nobody to answer to; Lambda would log the failure.
            console.error(JSON.stringify({ level: 'error', msg: 'asynchronous invocation failed', function: name, ...functionErrorBody(err) }));
          });
          res.writeHead(202, { ...baseHeaders, 'Content-Length': 0 }).end();
          return;
        case 'RequestResponse':
          break;
        default:
          throw new ApiError(400, 'InvalidParameterValueException', `Unknown InvocationType '${invocationType}'`);
      }
      let output: unknown;
      try {
        output = await invoke(handler, event);
      } catch (err) {
        sendJson(res, 200, functionErrorBody(err), { ...baseHeaders, 'X-Amz-Function-Error': 'Unhandled' });
        return;
      }
      sendJson(res, 200, output, baseHeaders);
    })().catch((err: unknown) => {
      if (res.headersSent) return;
      if (err instanceof ApiError) sendApiError(res, err);
      else sendApiError(res, new ApiError(500, 'ServiceException', err instanceof Error ? err.message : String(err)));
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port: boundPort } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${boundPort}`,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_GRACE_MS)));
      await Promise.race([Promise.allSettled([...running]), grace]);
      clearTimeout(timer);
    },
  };
}
