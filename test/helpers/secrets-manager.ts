// A local stand-in for the Secrets Manager API (GetSecretValue, JSON 1.1 over HTTP on
// loopback), like the local Lambda endpoint: tests read secrets through the real SDK client.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

export interface LocalSecretsManager {
  endpoint: string;
  /** `SecretId`s asked for, in order. */
  asked: string[];
  /** A client of this endpoint with dummy credentials; the caller destroys it. */
  client(): SecretsManagerClient;
  close(): Promise<void>;
}

/**
 * Serves `secrets` (ARN -> SecretString; undefined: a secret without a SecretString). An ARN
 * listed in `silent` is never answered, for timeouts.
 */
export async function startLocalSecretsManager(secrets: Record<string, string | undefined>, silent: readonly string[] = []): Promise<LocalSecretsManager> {
  const asked: string[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const { SecretId } = JSON.parse(body) as { SecretId: string };
      asked.push(SecretId);
      if (silent.includes(SecretId)) return;
      res.setHeader('Content-Type', 'application/x-amz-json-1.1');
      if (!(SecretId in secrets)) {
        res.writeHead(400, { 'x-amzn-ErrorType': 'ResourceNotFoundException' });
        res.end(JSON.stringify({ __type: 'ResourceNotFoundException', message: "Secrets Manager can't find the specified secret." }));
        return;
      }
      const value = secrets[SecretId];
      res.end(JSON.stringify({ ARN: SecretId, Name: 'test', VersionId: 'v1', ...(value === undefined ? { SecretBinary: 'AA==' } : { SecretString: value }) }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    endpoint,
    asked,
    client: () => new SecretsManagerClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, maxAttempts: 1 }),
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
