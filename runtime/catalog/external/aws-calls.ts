// How the AWS-backed pointer stores (Glue, DynamoDB) call their service. Reads go through a
// client with the SDK's standard retries. Writes go through a client that never retries on
// its own: a conditional write that ran but whose answer was lost, sent again, fails its own
// condition and would report a commit it made as lost (and the caller would commit twice).
// A write is only sent again after an answer that says it was not applied (throttling).

import { PuffinError } from '../../errors.ts';

export interface AwsClientOptions {
  region: string;
  /** A VPC endpoint, or a local stand-in in tests. */
  endpoint?: string;
  /** Static credentials (tests); otherwise the SDK's default chain (the function's role). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

/** Client configuration shared by both stores' clients: bounded connects and requests. */
export function awsClientConfig(options: AwsClientOptions, maxAttempts: number) {
  return {
    region: options.region,
    maxAttempts,
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 10_000 },
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
  };
}

/** The AWS error's name ('ConditionalCheckFailedException'), or '' for anything else. */
export function awsErrorName(err: unknown): string {
  const name = (err as { name?: unknown } | null)?.name;
  return typeof name === 'string' ? name : '';
}

/** Answers that say the request was refused before it was applied. */
const NOT_APPLIED = new Set([
  'ThrottlingException', 'ProvisionedThroughputExceededException', 'RequestLimitExceeded',
  'TooManyRequestsException', 'TransactionConflictException',
]);
const WRITE_ATTEMPTS = 4;

/** Send a write, again only after an answer that says it was not applied. */
export async function sendWrite<T>(send: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await send();
    } catch (err) {
      if (attempt >= WRITE_ATTEMPTS || !NOT_APPLIED.has(awsErrorName(err))) throw err;
      await new Promise((resolve) => setTimeout(resolve, 25 * 2 ** attempt * (0.5 + Math.random())));
    }
  }
}

/** A failed call as a PuffinError: the caller's mistakes and the deployment's apart from outages. */
export function awsFailure(service: string, what: string, err: unknown): PuffinError {
  if (err instanceof PuffinError) return err;
  const name = awsErrorName(err) || 'Error';
  const message = `${service} ${what} failed (${name}): ${err instanceof Error ? err.message : String(err)}`;
  if (name === 'InvalidInputException' || name === 'ValidationException') return new PuffinError('bad_request', message);
  if (name === 'AccessDeniedException' || name === 'UnrecognizedClientException' || name === 'InvalidSignatureException') {
    return new PuffinError('internal', `${message} (check the server's AWS permissions)`);
  }
  return new PuffinError('unavailable', message);
}
