// The admin Lambda invoked with the events AWS sends: API Gateway HTTP API (payload 2.0)
// and a function URL (whose bodies arrive base64-encoded). Checks the answers, binary
// Arrow bodies, the structured log line per invocation, and recovery from a failed start.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { tableFromIPC } from 'apache-arrow';
import type { LambdaEvent } from 'hono/aws-lambda';
import { PuffinError } from '../../../runtime/errors.ts';
import { createAdminHandler, type AdminHandler } from '../../../runtime/functions/admin.ts';
import { controlFixture, type ControlFixture } from '../../helpers/control-plane.ts';
import { ADMIN_KEY, appFor } from '../../helpers/api.ts';

let f: ControlFixture;
let handler: AdminHandler;
const lines: Record<string, unknown>[] = [];

before(async () => {
  f = await controlFixture();
  const app = await appFor(f, { apiAllowedCidrs: ['198.51.100.0/24'] });
  handler = createAdminHandler(async () => app, (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
});
after(async () => {
  await f.close();
});

const NOW = Date.now();

/** An API Gateway HTTP API event, payload format 2.0, as AWS documents it. */
function httpApiEvent(method: string, path: string, options: { body?: string; headers?: Record<string, string>; query?: string; sourceIp?: string } = {}): LambdaEvent {
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: options.query ?? '',
    headers: {
      accept: '*/*',
      'content-length': String(options.body?.length ?? 0),
      host: 'abc123.execute-api.us-east-1.amazonaws.com',
      'user-agent': 'curl/8.5.0',
      'x-amzn-trace-id': 'Root=1-65f0c0de-0123456789abcdef01234567',
      'x-forwarded-for': options.sourceIp ?? '198.51.100.7',
      'x-forwarded-port': '443',
      'x-forwarded-proto': 'https',
      ...(options.body ? { 'content-type': 'application/json' } : {}),
      ...options.headers,
    },
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123',
      domainName: 'abc123.execute-api.us-east-1.amazonaws.com',
      domainPrefix: 'abc123',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: options.sourceIp ?? '198.51.100.7', userAgent: 'curl/8.5.0' },
      requestId: 'JKJaXmPLvHcESHA=',
      routeKey: '$default',
      stage: '$default',
      time: '10/Mar/2024:21:27:24 +0000',
      timeEpoch: NOW,
    },
    body: options.body ?? null,
    isBase64Encoded: false,
  } as unknown as LambdaEvent;
}

/** A Lambda function URL event: payload 2.0 with the URL's domain and base64 bodies. */
function functionUrlEvent(method: string, path: string, body: string | undefined, headers: Record<string, string>): LambdaEvent {
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: '',
    headers: {
      'x-amzn-tls-cipher-suite': 'TLS_AES_128_GCM_SHA256',
      'x-amzn-tls-version': 'TLSv1.3',
      'x-amzn-trace-id': 'Root=1-65f0c0de-76543210fedcba9876543210',
      'x-forwarded-for': '198.51.100.9',
      host: 'f3kq7zexample.lambda-url.us-east-1.on.aws',
      'x-forwarded-port': '443',
      'x-forwarded-proto': 'https',
      'user-agent': 'python-requests/2.31.0',
      ...headers,
    },
    requestContext: {
      accountId: 'anonymous',
      apiId: 'f3kq7zexample',
      domainName: 'f3kq7zexample.lambda-url.us-east-1.on.aws',
      domainPrefix: 'f3kq7zexample',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '198.51.100.9', userAgent: 'python-requests/2.31.0' },
      requestId: '7c2a1f0e-1c4f-4a8e-9b0e-2f6d0b1f6e5a',
      routeKey: '$default',
      stage: '$default',
      time: '10/Mar/2024:21:30:00 +0000',
      timeEpoch: NOW,
    },
    body: body === undefined ? undefined : Buffer.from(body).toString('base64'),
    isBase64Encoded: body !== undefined,
  } as unknown as LambdaEvent;
}

const auth = { authorization: `Bearer ${ADMIN_KEY}` };

describe('admin Lambda', () => {
  test('API Gateway HTTP API event: health, then the cold start is over', async () => {
    const res = await handler(httpApiEvent('GET', '/v1/health'));
    assert.equal(res.statusCode, 200);
    assert.deepEqual(JSON.parse(res.body), { status: 'ok', version: 'dev', state: 'ok', workers: 'ok' });
    const second = await handler(httpApiEvent('GET', '/v1/tables', { headers: auth }));
    assert.equal(second.statusCode, 200);
    assert.equal(lines[0].coldStart, true);
    assert.equal(lines[1].coldStart, false);
    for (const line of lines.slice(0, 2)) {
      assert.equal(line.level, 'info');
      assert.equal(line.message, 'request');
      assert.equal(line.function, 'admin');
      assert.equal(typeof line.durationMs, 'number');
    }
    assert.equal(lines[1].path, '/v1/tables');
  });

  test('function URL event: a base64 body runs a query; the log line carries its query id', async () => {
    const res = await handler(functionUrlEvent('POST', '/v1/query', JSON.stringify({ sql: 'SELECT count(*) AS n FROM t' }), { ...auth, 'content-type': 'application/json' }));
    assert.equal(res.statusCode, 200, res.body);
    const body = JSON.parse(res.body) as { queryId: string; rows: { n: number }[] };
    assert.deepEqual(body.rows, [{ n: 3000 }]);
    const line = lines.at(-1)!;
    assert.equal(line.queryId, body.queryId);
    assert.equal(line.status, 200);
  });

  test('an asynchronous query through events, its Arrow result base64-encoded', async () => {
    const submitted = await handler(httpApiEvent('POST', '/v1/queries', { body: JSON.stringify({ sql: 'SELECT g, sum(id) AS s FROM t GROUP BY g ORDER BY g' }), headers: auth }));
    assert.equal(submitted.statusCode, 202);
    const { queryId } = JSON.parse(submitted.body) as { queryId: string };
    for (let i = 0; i < 200; i++) {
      const status = JSON.parse((await handler(httpApiEvent('GET', `/v1/queries/${queryId}`, { headers: auth }))).body) as { status: string };
      if (status.status === 'succeeded') break;
      await new Promise((r) => setTimeout(r, 25));
    }
    const res = await handler(httpApiEvent('GET', `/v1/queries/${queryId}/result`, { headers: { ...auth, accept: 'application/vnd.apache.arrow.stream' } }));
    assert.equal(res.statusCode, 200);
    assert.equal(res.isBase64Encoded, true);
    const table = tableFromIPC(Buffer.from(res.body, 'base64'));
    const want = await f.fx.engine.query('SELECT g, sum(id) AS s FROM t GROUP BY g ORDER BY g');
    assert.deepEqual([...table.getChild('g')!], want.rows.map((r) => r[0]));
    assert.equal(lines.at(-1)!.queryId, queryId);
  });

  test('401 without a key, 403 from outside the allowed CIDRs (source IP from the request context)', async () => {
    const res = await handler(httpApiEvent('GET', '/v1/tables'));
    assert.equal(res.statusCode, 401);
    assert.equal((JSON.parse(res.body) as { error: { code: string } }).error.code, 'unauthorized');
    const outside = await handler(httpApiEvent('GET', '/v1/health', { sourceIp: '203.0.113.5' }));
    assert.equal(outside.statusCode, 403);
  });

  test('a failed start is a 503 JSON answer, and the next invocation starts again', async () => {
    let attempts = 0;
    const app = await appFor(f);
    const flaky = createAdminHandler(async () => {
      attempts++;
      if (attempts === 1) throw new PuffinError('unavailable', 'state store unreachable at redis://10.0.0.1:6379');
      return app;
    }, () => undefined);
    const first = await flaky(httpApiEvent('GET', '/v1/health'));
    assert.equal(first.statusCode, 503);
    assert.match((JSON.parse(first.body) as { error: { message: string } }).error.message, /state store unreachable/);
    const second = await flaky(httpApiEvent('GET', '/v1/health'));
    assert.equal(second.statusCode, 200);
    assert.equal(attempts, 2);
  });
});
