// Reads a secret's value from Secrets Manager, once, at start: the deployment hands the
// runtime only ARNs (the Redis AUTH token, the first admin API key), so no secret sits in a
// function's configuration. One helper, so every secret is read with the same region rule,
// timeout and error codes.

import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PuffinError } from '../errors.ts';

export interface ReadSecretOptions {
  /** A client to use instead of a new one (a local endpoint in tests); not destroyed here. */
  client?: SecretsManagerClient;
  /** What the secret holds, for error messages, e.g. 'the Redis AUTH token'. */
  what?: string;
  /** Bound on the whole read. Default 10000. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;

/** The SecretString of the secret `arn`; PuffinError 'internal' when it cannot exist or be read, 'unavailable' when Secrets Manager does not answer. */
export async function readSecretString(arn: string, region: string, options: ReadSecretOptions = {}): Promise<string> {
  const what = options.what ?? 'the secret value';
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  // The secret's own region, when the ARN names one, beats the caller's.
  const client = options.client ?? new SecretsManagerClient({ region: /^arn:[^:]+:secretsmanager:([^:]+):/.exec(arn)?.[1] ?? region });
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    const answer = await client.send(new GetSecretValueCommand({ SecretId: arn }), { abortSignal: abort.signal });
    if (!answer.SecretString) throw new PuffinError('internal', `Secrets Manager secret ${arn} has no SecretString; it must hold ${what}`);
    return answer.SecretString;
  } catch (err) {
    if (err instanceof PuffinError) throw err;
    if (abort.signal.aborted) throw new PuffinError('unavailable', `cannot read ${what} from Secrets Manager secret ${arn}: no answer within ${timeoutMs} ms`);
    const name = (err as { name?: string })?.name ?? 'Error';
    const code = name === 'ResourceNotFoundException' || name === 'AccessDeniedException' ? 'internal' : 'unavailable';
    throw new PuffinError(code, `cannot read ${what} from Secrets Manager secret ${arn} (${name}): ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    clearTimeout(timer);
    if (!options.client) client.destroy();
  }
}
