import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PuffinError } from '../../runtime/errors.ts';
import { loadSettings } from '../../runtime/settings.ts';
import { openStateStore } from '../../runtime/state/open.ts';
import { RedisStateStore } from '../../runtime/state/redis-store.ts';
import { stateStoreContract } from '../runtime/state/state-store-contract.ts';
import { startRedisServer, type TestRedis } from '../helpers/redis-server.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('RedisStateStore on a real redis-server', () => {
  let redis: TestRedis;
  before(async () => {
    redis = await startRedisServer();
  });
  after(async () => {
    await redis?.close();
  });

  // Each store gets its own key prefix, so the suite's stores never see each other's keys.
  stateStoreContract('redis', (limits) => RedisStateStore.connect({ url: redis.url, keyPrefix: `t-${randomUUID()}:`, limits }));

  test('keys live under the configured prefix, with TTLs on what must expire', async () => {
    const store = await RedisStateStore.connect({ url: redis.url, keyPrefix: 'pfx-a:' });
    const raw = await RedisStateStore.connect({ url: redis.url, keyPrefix: 'pfx-b:' });
    try {
      const now = Date.now();
      await store.createQuery({ id: 'q1', user: 'u', sql: 'SELECT 1', status: 'queued', submittedAt: now, deadline: now + 1, progress: { fragmentsDone: 0, fragmentsTotal: 1, bytesScanned: 0 } });
      await store.publishCompletion('q1-run', { fragmentId: 'f', attempt: 1, ok: true, payload: null });
      assert.equal(await raw.getQuery('q1'), undefined, 'another prefix sees nothing');
      const { Redis } = await import('ioredis');
      const client = new Redis(redis.url);
      try {
        assert.ok(Number(await client.pttl('pfx-a:q:q1')) > 0, 'query records expire');
        assert.ok(Number(await client.pttl('pfx-a:c:q1-run')) > 0, 'completion streams expire');
        assert.equal(await client.hget('pfx-a:q:q1', 'status'), 'queued');
      } finally {
        client.disconnect();
      }
    } finally {
      await store.close();
      await raw.close();
    }
  });

  test('a bad URL or an unreachable server is refused clearly and quickly', async () => {
    await assert.rejects(RedisStateStore.connect({ url: 'http://127.0.0.1:1' }), { code: 'bad_request', message: /REDIS_URL must be redis:\/\// });
    const started = Date.now();
    await assert.rejects(RedisStateStore.connect({ url: 'redis://127.0.0.1:9', connectTimeoutMs: 1_000 }), (err: PuffinError) => {
      assert.equal(err.code, 'unavailable');
      assert.match(err.message, /cannot connect to Redis at redis:\/\/127\.0\.0\.1:9/);
      return true;
    });
    assert.ok(Date.now() - started < 3_000);
  });

  test('openStateStore uses Redis when REDIS_URL is set', async () => {
    const store = await openStateStore(loadSettings({ REDIS_URL: redis.url }));
    try {
      assert.ok(store instanceof RedisStateStore);
      await store.ping();
    } finally {
      await store.close();
    }
  });
});

describe('RedisStateStore when Redis goes away and comes back', () => {
  let redis: TestRedis;
  let store: RedisStateStore;
  before(async () => {
    redis = await startRedisServer();
    store = await RedisStateStore.connect({ url: redis.url, keyPrefix: 'outage:', commandTimeoutMs: 2_000 });
  });
  after(async () => {
    await store?.close();
    await redis?.close();
  });

  test('calls reject quickly with unavailable, and the same store works again after a restart', async () => {
    assert.equal(await store.compareAndSwap('v', undefined, 'before'), true);
    await store.readCompletions('s', null, { blockMs: 50 });

    await redis.stop();
    for (const call of [() => store.getValue('v'), () => store.ping(), () => store.readCompletions('s', null, { blockMs: 2_000 }), () => store.appendLog({ id: 'x', user: 'u', sql: 's', status: 'failed', submittedAt: 0, durationMs: 0, bytesScanned: 0, fragments: 0, cacheHit: false, error: null })]) {
      const started = Date.now();
      await assert.rejects(call(), (err: PuffinError) => {
        assert.ok(err instanceof PuffinError, String(err));
        assert.equal(err.code, 'unavailable');
        assert.match(err.message, /Redis at redis:\/\/127\.0\.0\.1:\d+ is unavailable/);
        return true;
      });
      assert.ok(Date.now() - started < 1_000, `rejected after ${Date.now() - started} ms`);
    }

    // A reader blocked when Redis dies is released with unavailable too.
    await redis.start();
    await waitUntilUp(store);
    const blocked = store.readCompletions('s2', null, { blockMs: 10_000 });
    const settled = blocked.then(
      () => undefined,
      (err: unknown) => err,
    );
    await sleep(100);
    const diedAt = Date.now();
    await redis.stop();
    await assert.rejects(blocked, { code: 'unavailable' });
    assert.ok(await settled);
    assert.ok(Date.now() - diedAt < 2_000);

    await redis.start();
    await waitUntilUp(store);
    // The restarted server is empty (no persistence); every kind of call works again,
    // including the scripts Redis forgot and the blocking connections.
    assert.equal(await store.compareAndSwap('v', undefined, 'after'), true);
    assert.equal(await store.getValue('v'), 'after');
    const reading = store.readCompletions('s3', null, { blockMs: 3_000 });
    await sleep(50);
    await store.publishCompletion('s3', { fragmentId: 'f', attempt: 1, ok: true, payload: 1 });
    assert.equal((await reading).items.length, 1);
  });
});

async function waitUntilUp(store: RedisStateStore): Promise<void> {
  const started = Date.now();
  for (;;) {
    try {
      await store.ping();
      return;
    } catch (err) {
      if (Date.now() - started > 5_000) throw new Error(`the store did not reconnect within 5 s: ${(err as Error).message}`);
      await sleep(50);
    }
  }
}

describe('RedisStateStore over TLS with an AUTH token from Secrets Manager', () => {
  let dir: string;
  let redis: TestRedis;
  let secrets: Server;
  let secretsEndpoint: string;
  const token = `tok${randomUUID().replaceAll('-', '')}`;
  const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:puffindb/redis-auth-token-AbCdEf';
  const asked: string[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'puffindb-redis-tls-'));
    const f = (name: string) => join(dir, name);
    const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '1', '-subj', '/CN=puffindb-test-ca');
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=localhost');
    await writeFile(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    openssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.crt'), '-days', '1', '-extfile', f('ext.cnf'));
    redis = await startRedisServer({
      tls: true,
      args: ['--tls-cert-file', f('server.crt'), '--tls-key-file', f('server.key'), '--tls-ca-cert-file', f('ca.crt'), '--tls-auth-clients', 'no', '--requirepass', token],
    });

    // A local stand-in for the Secrets Manager API (JSON 1.1 over HTTP), like the local Lambda endpoint.
    secrets = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const target = String(req.headers['x-amz-target']);
        const { SecretId } = JSON.parse(body) as { SecretId: string };
        asked.push(`${target} ${SecretId}`);
        res.setHeader('Content-Type', 'application/x-amz-json-1.1');
        if (SecretId !== arn) {
          res.writeHead(400, { 'x-amzn-ErrorType': 'ResourceNotFoundException' });
          res.end(JSON.stringify({ __type: 'ResourceNotFoundException', message: "Secrets Manager can't find the specified secret." }));
          return;
        }
        res.end(JSON.stringify({ ARN: arn, Name: 'puffindb/redis-auth-token', SecretString: token, VersionId: 'v1' }));
      });
    });
    await new Promise<void>((resolve) => secrets.listen(0, '127.0.0.1', resolve));
    secretsEndpoint = `http://127.0.0.1:${(secrets.address() as AddressInfo).port}`;
  });

  after(async () => {
    await redis?.close();
    secrets?.closeAllConnections();
    await new Promise((resolve) => secrets?.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  const secretsClient = () => new SecretsManagerClient({ endpoint: secretsEndpoint, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });

  test('rediss:// with the token works; without it Redis refuses', async () => {
    const ca = await readFile(join(dir, 'ca.crt'));
    const store = await RedisStateStore.connect({ url: redis.url, password: token, tls: { ca } });
    try {
      assert.equal(await store.compareAndSwap('tls', undefined, 'yes'), true);
    } finally {
      await store.close();
    }
    await assert.rejects(RedisStateStore.connect({ url: redis.url, tls: { ca }, connectTimeoutMs: 2_000 }), { code: 'unavailable', message: /NOAUTH|Authentication required/i });
    await assert.rejects(RedisStateStore.connect({ url: redis.url.replace('rediss:', 'redis:'), password: token, connectTimeoutMs: 1_000 }), { code: 'unavailable' });
  });

  test('fromSettings reads the AUTH token from Secrets Manager once', async () => {
    // The test CA is not in Node's trust store; deployed, ElastiCache's certificate is publicly trusted.
    const ca = await readFile(join(dir, 'ca.crt'));
    const client = secretsClient();
    asked.length = 0;
    const settings = loadSettings({ REDIS_URL: redis.url, PUFFINDB_REDIS_AUTH_SECRET_ARN: arn });
    const store = await RedisStateStore.fromSettings(settings, { secrets: client, tls: { ca } });
    try {
      await store.ping();
      assert.deepEqual(asked, [`secretsmanager.GetSecretValue ${arn}`]);
    } finally {
      await store.close();
      client.destroy();
    }
    const wrong = secretsClient();
    try {
      await assert.rejects(
        RedisStateStore.fromSettings(loadSettings({ REDIS_URL: redis.url, PUFFINDB_REDIS_AUTH_SECRET_ARN: `${arn}-nope` }), { secrets: wrong, tls: { ca } }),
        { code: 'internal', message: /cannot read the Redis AUTH token from Secrets Manager secret .*ResourceNotFoundException/ },
      );
    } finally {
      wrong.destroy();
    }
  });
});
