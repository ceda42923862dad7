// Who may do what: bearer API keys (hashed in the state store), roles, the bootstrap admin
// key, rate limits per key and allowed client CIDRs.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { bootstrapAdminKey, BOOTSTRAP_KEY_ID, hashSecret, resolveAdminKey } from '../../../runtime/api/auth.ts';
import { MemoryStateStore } from '../../../runtime/state/memory-store.ts';
import type { ControlFixture } from '../../helpers/control-plane.ts';
import { ADMIN_KEY, apiFixture, appFor, caller, errorOf, newKey, type Caller } from '../../helpers/api.ts';
import { startLocalSecretsManager } from '../../helpers/secrets-manager.ts';

let f: ControlFixture;
let call: Caller;

before(async () => ({ f, call } = await apiFixture()));
after(() => f.close());

const ROUTES: [string, string][] = [
  ['POST', '/v1/query'], ['POST', '/v1/explain'], ['POST', '/v1/queries'], ['GET', '/v1/queries'], ['GET', '/v1/queries/01ARZ3NDEKTSV4RRFFQ69G5FAV'],
  ['GET', '/v1/queries/01ARZ3NDEKTSV4RRFFQ69G5FAV/result'], ['DELETE', '/v1/queries/01ARZ3NDEKTSV4RRFFQ69G5FAV'], ['GET', '/v1/tables'], ['GET', '/v1/tables/t'],
  ['GET', '/v1/logs'], ['POST', '/v1/keys'], ['GET', '/v1/keys'], ['DELETE', '/v1/keys/x'], ['GET', '/v1/config'], ['GET', '/v1/openapi.json'],
];

describe('authentication', () => {
  test('every route but /v1/health is 401 without a valid key', async () => {
    for (const [method, path] of ROUTES) {
      const body = method === 'POST' ? { sql: 'SELECT 1' } : undefined;
      const attempts: Record<string, string>[] = [{}, { authorization: 'Bearer not-a-key' }, { authorization: `Basic ${ADMIN_KEY}` }];
      for (const headers of attempts) {
        const res = await call(method, path, { body, headers });
        const e = await errorOf(res, 401);
        assert.equal(e.code, 'unauthorized', `${method} ${path}`);
        assert.equal(res.headers.get('www-authenticate'), 'Bearer');
      }
    }
  });

  test('keys are stored as sha256 only; listing shows neither secret nor hash', async () => {
    const made = await newKey(call, 'reader', 'dashboards');
    assert.match(made.key, /^pdb_/);
    const stored = await f.state.findApiKeyByHash(hashSecret(made.key));
    assert.equal(stored?.id, made.id);
    assert.equal(stored?.hash, hashSecret(made.key));
    const listing = await (await call('GET', '/v1/keys', { key: ADMIN_KEY })).text();
    assert.ok(!listing.includes(made.key) && !listing.includes(hashSecret(made.key)));
    assert.ok(listing.includes('dashboards'));
    assert.ok(!JSON.stringify(await f.state.listApiKeys()).includes(made.key), 'the state store never holds the secret');
  });

  test('a deleted key stops working at once', async () => {
    const made = await newKey(call, 'writer');
    assert.equal((await call('GET', '/v1/tables', { key: made.key })).status, 200);
    const res = await call('DELETE', `/v1/keys/${made.id}`, { key: ADMIN_KEY });
    assert.equal(res.status, 200);
    assert.equal((await errorOf(await call('GET', '/v1/tables', { key: made.key }), 401)).code, 'unauthorized');
    assert.equal((await errorOf(await call('DELETE', `/v1/keys/${made.id}`, { key: ADMIN_KEY }), 404)).code, 'not_found');
  });

  test('the bootstrap admin key: PUFFINDB_ADMIN_KEY, or one generated once when no admin exists', async () => {
    const state = new MemoryStateStore();
    const generated = await bootstrapAdminKey(state, undefined);
    assert.match(generated.generated ?? '', /^pdb_/);
    assert.equal((await state.findApiKeyByHash(hashSecret(generated.generated!)))?.role, 'admin');
    assert.deepEqual(await bootstrapAdminKey(state, undefined), {}, 'not generated again while an admin exists');
    await bootstrapAdminKey(state, 'a-configured-admin-key');
    const keys = await state.listApiKeys();
    assert.equal(keys.length, 1, 'the configured key replaces the generated bootstrap key');
    assert.equal(keys[0].id, BOOTSTRAP_KEY_ID);
    assert.equal(keys[0].hash, hashSecret('a-configured-admin-key'));
    assert.equal(await state.findApiKeyByHash(hashSecret(generated.generated!)), undefined, 'the generated key no longer works');
    await assert.rejects(bootstrapAdminKey(state, 'short'), /at least 16 characters/);
    await state.close();
  });
});

describe('roles', () => {
  test('a reader runs SELECT; a write is 403 and changes nothing', async () => {
    const { key } = await newKey(call, 'reader');
    const ok = await call('POST', '/v1/query', { key, body: { sql: 'SELECT count(*) AS n FROM t' } });
    assert.equal(ok.status, 200);
    const tablesBefore = await f.plane.catalog.listTables();
    const queriesBefore = (await f.state.listQueries({ limit: 1000 })).length;
    for (const sql of ['CREATE TABLE stolen AS SELECT * FROM t', 'DROP TABLE t', 'INSERT INTO t SELECT * FROM t', "COPY t TO '/tmp/t.parquet'", '/* /* */ SELECT 1 -- */ DELETE FROM t']) {
      for (const path of ['/v1/query', '/v1/queries']) {
        const e = await errorOf(await call('POST', path, { key, body: { sql } }), 403);
        assert.equal(e.code, 'forbidden', sql);
        assert.match(e.message, /reader/);
      }
    }
    assert.deepEqual(await f.plane.catalog.listTables(), tablesBefore);
    assert.equal((await f.state.listQueries({ limit: 1000 })).length, queriesBefore, 'no query was even recorded');
  });

  test('a writer may send writes (the planner then decides what runs)', async () => {
    const { key } = await newKey(call, 'writer');
    const e = await errorOf(await call('POST', '/v1/query', { key, body: { sql: 'CREATE TABLE x AS SELECT 1' } }), 400);
    assert.equal(e.code, 'unsupported');
  });

  test('admin-only routes refuse readers and writers', async () => {
    for (const role of ['reader', 'writer'] as const) {
      const { key } = await newKey(call, role);
      for (const [method, path, body] of [['GET', '/v1/keys'], ['POST', '/v1/keys', { name: 'x', role: 'admin' }], ['DELETE', '/v1/keys/x'], ['GET', '/v1/config'], ['GET', '/v1/logs']] as const) {
        const e = await errorOf(await call(method, path, { key, body }), 403);
        assert.equal(e.code, 'forbidden', `${role} ${method} ${path}`);
      }
      assert.equal((await call('GET', '/v1/openapi.json', { key })).status, 200);
    }
  });
});

describe('rate limit and client addresses', () => {
  test('a key over its rate gets 429 with Retry-After; other keys are unaffected', async () => {
    const limited = caller(await appFor(f, { apiRatePerSecond: 1, apiRateBurst: 3 }));
    const { key } = await newKey(call, 'reader');
    for (let i = 0; i < 3; i++) assert.equal((await limited('GET', '/v1/tables', { key })).status, 200);
    const res = await limited('GET', '/v1/tables', { key });
    assert.equal((await errorOf(res, 429)).code, 'rate_limited');
    assert.equal(res.headers.get('retry-after'), '1');
    assert.equal((await limited('GET', '/v1/tables', { key: ADMIN_KEY })).status, 200);
    await new Promise((r) => setTimeout(r, 1_100));
    assert.equal((await limited('GET', '/v1/tables', { key })).status, 200, 'tokens refill');
  });

  test('only clients in the allowed CIDRs are served', async () => {
    const guarded = caller(await appFor(f, { apiAllowedCidrs: ['10.0.0.0/8', '2001:db8::/32'] }));
    const from = (address: string) => ({ incoming: { socket: { remoteAddress: address } } });
    assert.equal((await guarded('GET', '/v1/health', { env: from('10.1.2.3') })).status, 200);
    assert.equal((await guarded('GET', '/v1/health', { env: from('::ffff:10.9.9.9') })).status, 200);
    assert.equal((await guarded('GET', '/v1/tables', { key: ADMIN_KEY, env: from('2001:db8::5') })).status, 200);
    const outside = await guarded('GET', '/v1/tables', { key: ADMIN_KEY, env: from('192.168.1.1') });
    assert.match((await errorOf(outside, 403)).message, /192\.168\.1\.1 is not in the API's allowed CIDRs/);
    // A forwarding header is not the source address.
    const spoofed = await guarded('GET', '/v1/health', { env: from('192.168.1.1'), headers: { 'x-forwarded-for': '10.0.0.1' } });
    assert.equal(spoofed.status, 403);
    // API Gateway's request context names the source IP on Lambda.
    assert.equal((await guarded('GET', '/v1/health', { env: { requestContext: { http: { sourceIp: '10.0.0.7' } } } })).status, 200);
    assert.equal((await guarded('GET', '/v1/health')).status, 403, 'an unknown address is refused');
    await assert.rejects(appFor(f, { apiAllowedCidrs: ['10.0.0.0/33'] }), /invalid entry '10\.0\.0\.0\/33'/);
  });
});

describe('the configured first admin key', () => {
  const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:puffindb/admin-key-AbCdEf';

  test('PUFFINDB_ADMIN_KEY_SECRET_ARN is read from Secrets Manager; a key given directly wins; neither is none', async () => {
    const sm = await startLocalSecretsManager({ [arn]: 'admin-key-from-secrets-manager' });
    const client = sm.client();
    try {
      assert.equal(await resolveAdminKey({ adminKeySecretArn: arn, region: 'us-east-1' }, client), 'admin-key-from-secrets-manager');
      assert.deepEqual(sm.asked, [arn]);
      assert.equal(await resolveAdminKey({ adminKey: 'a-key-given-directly', adminKeySecretArn: arn, region: 'us-east-1' }, client), 'a-key-given-directly');
      assert.equal(await resolveAdminKey({ region: 'us-east-1' }, client), undefined);
      assert.equal(sm.asked.length, 1, 'the secret is read only when it is the source');
      await assert.rejects(resolveAdminKey({ adminKeySecretArn: arn.replace('AbCdEf', 'Gone00'), region: 'us-east-1' }, client), { code: 'internal', message: /first admin API key/ });
    } finally {
      client.destroy();
      await sm.close();
    }
  });
});
