// Reading a secret's value once from Secrets Manager: the value, the errors a caller can act
// on, and a bound on the wait.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { readSecretString } from '../../../runtime/state/secrets.ts';
import { startLocalSecretsManager, type LocalSecretsManager } from '../../helpers/secrets-manager.ts';

const ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:puffindb/admin-key-AbCdEf';
const BINARY = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:puffindb/binary-AbCdEf';
const SILENT = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:puffindb/silent-AbCdEf';

describe('readSecretString', () => {
  let sm: LocalSecretsManager;
  before(async () => (sm = await startLocalSecretsManager({ [ARN]: 'the-value-0123456789', [BINARY]: undefined }, [SILENT])));
  after(() => sm.close());

  test('answers the SecretString of the secret the ARN names', async () => {
    const client = sm.client();
    try {
      assert.equal(await readSecretString(ARN, 'eu-west-1', { client }), 'the-value-0123456789');
      assert.equal(sm.asked.at(-1), ARN);
    } finally {
      client.destroy();
    }
  });

  test('a missing secret, or one without a SecretString, is a PuffinError naming the secret and what it should hold', async () => {
    const client = sm.client();
    try {
      const missing = ARN.replace('AbCdEf', 'Gone00');
      await assert.rejects(readSecretString(missing, 'us-east-1', { client, what: 'the first admin API key' }), {
        code: 'internal',
        message: new RegExp(`cannot read the first admin API key from Secrets Manager secret ${missing} \\(ResourceNotFoundException\\)`),
      });
      await assert.rejects(readSecretString(BINARY, 'us-east-1', { client, what: 'the Redis AUTH token' }), { code: 'internal', message: /has no SecretString; it must hold the Redis AUTH token/ });
    } finally {
      client.destroy();
    }
  });

  test('a Secrets Manager that does not answer fails as unavailable within the timeout', async () => {
    const client = sm.client();
    const started = Date.now();
    try {
      await assert.rejects(readSecretString(SILENT, 'us-east-1', { client, timeoutMs: 300 }), { code: 'unavailable', message: /no answer within 300 ms/ });
      assert.ok(Date.now() - started < 5_000, 'the wait is bounded');
    } finally {
      client.destroy();
    }
  });
});
