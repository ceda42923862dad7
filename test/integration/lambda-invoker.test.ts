import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { PuffinError } from '../../runtime/errors.ts';
import { Engine } from '../../runtime/engine/engine.ts';
import { Coordinator } from '../../runtime/exec/coordinator.ts';
import { LambdaInvoker } from '../../runtime/exec/lambda-invoker.ts';
import { startLocalLambda, type LocalLambda } from '../../runtime/exec/local-lambda.ts';
import { createWorkerHandler } from '../../runtime/functions/worker.ts';
import type { FileRef } from '../../runtime/planner/plan.ts';
import {
  expectedSumByGroup,
  makeSandbox,
  readPartial,
  slowFragment,
  sumByGroupPlan,
  tFragment,
  writeTable,
  type Sandbox,
} from '../runtime/exec/fixtures.ts';

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

describe('LambdaInvoker against a local Lambda endpoint', () => {
  let sandbox: Sandbox;
  let lambda: LocalLambda;
  let invoker: LambdaInvoker;
  let files: FileRef[];
  const events: unknown[] = [];

  const invokerFor = (functionName: string, invokeTimeoutMs = 10_000) =>
    new LambdaInvoker({ functionName, region: 'us-east-1', endpoint: lambda.url, credentials, invokeTimeoutMs, maxAttempts: 1 });

  before(async () => {
    sandbox = await makeSandbox();
    files = await writeTable(sandbox, 3, 100);
    lambda = await startLocalLambda({
      'puffin-worker': createWorkerHandler(() => sandbox.settings),
      'plain-crash': async () => {
        throw new TypeError('cannot read properties of undefined');
      },
      'record-event': async (event) => {
        events.push(event);
        return { ok: true };
      },
    });
    invoker = invokerFor('puffin-worker');
  });

  after(async () => {
    await invoker?.close();
    await lambda?.close();
    await sandbox?.cleanup();
  });

  test('a fragment round trip returns its partial', async () => {
    const result = await invoker.invoke({
      queryId: 'q1',
      fragment: tFragment('f1', files, 'SELECT count(*) AS n, sum(x) AS s FROM t'),
      deadline: Date.now() + 30_000,
    });
    assert.equal(result.fragmentId, 'f1');
    assert.equal(result.rows, 1);
    assert.equal(
      result.bytesScanned,
      files.reduce((s, f) => s + f.sizeBytes, 0),
    );
    const back = await readPartial(sandbox, result.partial, 'SELECT n, CAST(s AS BIGINT) AS s FROM p');
    assert.deepEqual(back.rows, [['300', String((299 * 300) / 2)]]);
  });

  test('a whole query runs through Lambda', async () => {
    const scratchDir = join(sandbox.root, 'coordinator');
    const engine = await Engine.create({ threads: 1, allowedDirectories: [scratchDir] });
    try {
      const coordinator = new Coordinator({
        invoker,
        engine,
        scratchDir,
        concurrency: 3,
        retries: 0,
        queryTimeoutMs: 30_000,
        inlineLimitBytes: 64,
        storeOptions: {},
        shuffleUrl: sandbox.settings.shuffleUrl,
      });
      const outcome = await coordinator.execute(sumByGroupPlan(files));
      assert.deepEqual(outcome.rows, (await expectedSumByGroup(sandbox, files)).rows);
    } finally {
      engine.close();
    }
  });

  test('a worker error arrives as a PuffinError with its code', async () => {
    const request = (sql: string) => ({ queryId: 'q2', fragment: tFragment('f2', files, sql), deadline: Date.now() + 30_000 });
    await assert.rejects(invoker.invoke(request('SELEC 1')), (err: PuffinError) => {
      assert.ok(err instanceof PuffinError);
      assert.equal(err.code, 'syntax_error');
      assert.match(err.message, /Parser Error/);
      return true;
    });
    await assert.rejects(invoker.invoke(request(`SELECT * FROM read_csv('/etc/passwd')`)), { code: 'access_denied' });
  });

  test('a malformed request is refused by the handler as bad_request', async () => {
    const bad = { queryId: '../../etc', fragment: tFragment('f3', files, 'SELECT 1'), deadline: Date.now() + 30_000 };
    await assert.rejects(invoker.invoke(bad), { code: 'bad_request', message: /queryId/ });
  });

  test("a function's own crash becomes fragment_failed with Lambda's error type", async () => {
    const crashing = invokerFor('plain-crash');
    try {
      await assert.rejects(
        crashing.invoke({ queryId: 'q4', fragment: tFragment('f4', files, 'SELECT 1'), deadline: Date.now() + 30_000 }),
        (err: PuffinError) => {
          assert.equal(err.code, 'fragment_failed');
          assert.match(err.message, /fragment f4 of query q4 \(TypeError\): cannot read properties of undefined/);
          return true;
        },
      );
    } finally {
      await crashing.close();
    }
  });

  test('an unknown function is a clear error', async () => {
    const missing = invokerFor('no-such-function');
    try {
      await assert.rejects(
        missing.invoke({ queryId: 'q5', fragment: tFragment('f5', files, 'SELECT 1'), deadline: Date.now() + 30_000 }),
        (err: PuffinError) => {
          assert.equal(err.code, 'unavailable');
          assert.match(err.message, /'no-such-function' does not exist.*ResourceNotFoundException/);
          return true;
        },
      );
    } finally {
      await missing.close();
    }
  });

  test('an unreachable endpoint is unavailable', async () => {
    const nowhere = new LambdaInvoker({
      functionName: 'puffin-worker',
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:9',
      credentials,
      invokeTimeoutMs: 5_000,
      maxAttempts: 1,
    });
    try {
      await assert.rejects(
        nowhere.invoke({ queryId: 'q6', fragment: tFragment('f6', files, 'SELECT 1'), deadline: Date.now() + 30_000 }),
        { code: 'unavailable' },
      );
    } finally {
      await nowhere.close();
    }
  });

  test('throttling and Lambda service errors are unavailable', async () => {
    const answers = [
      { status: 429, type: 'TooManyRequestsException', pattern: /TooManyRequestsException \(HTTP 429\)/ },
      { status: 500, type: 'ServiceException', pattern: /ServiceException \(HTTP 500\)/ },
    ];
    for (const answer of answers) {
      const server = createServer((_req, res) => {
        res.writeHead(answer.status, { 'Content-Type': 'application/json', 'x-amzn-ErrorType': answer.type });
        res.end(JSON.stringify({ message: 'Rate exceeded' }));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const throttled = new LambdaInvoker({
        functionName: 'puffin-worker',
        region: 'us-east-1',
        endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        credentials,
        invokeTimeoutMs: 5_000,
        maxAttempts: 1,
      });
      try {
        await assert.rejects(
          throttled.invoke({ queryId: 'q9', fragment: tFragment('f9', files, 'SELECT 1'), deadline: Date.now() + 30_000 }),
          (err: PuffinError) => {
            assert.equal(err.code, 'unavailable');
            assert.match(err.message, answer.pattern);
            return true;
          },
        );
      } finally {
        await throttled.close();
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
    }
  });

  test('a call past its invocation timeout rejects with timeout', async () => {
    const impatient = invokerFor('puffin-worker', 300);
    try {
      const started = Date.now();
      // The request's own deadline also stops the worker, so the local Lambda is not left busy.
      await assert.rejects(
        impatient.invoke({ queryId: 'q7', fragment: slowFragment('f7', 100_000), deadline: Date.now() + 1_000 }),
        { code: 'timeout', message: /fragment f7 of query q7 timed out after 300 ms/ },
      );
      assert.ok(Date.now() - started < 1_000);
    } finally {
      await impatient.close();
    }
  });

  test('aborting the caller signal cancels the call', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(new PuffinError('timeout', 'query q8 was cancelled')), 100);
    await assert.rejects(
      invoker.invoke({ queryId: 'q8', fragment: slowFragment('f8', 100_000), deadline: Date.now() + 1_000 }, controller.signal),
      { message: 'query q8 was cancelled' },
    );
  });

  describe('the local endpoint speaks the Invoke API', () => {
    const post = (name: string, body: string, headers: Record<string, string> = {}) =>
      fetch(`${lambda.url}/2015-03-31/functions/${encodeURIComponent(name)}/invocations`, { method: 'POST', body, headers });

    test('a thrown error is a 200 with X-Amz-Function-Error and Lambda’s error body', async () => {
      const res = await post('plain-crash', '{}');
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-amz-function-error'), 'Unhandled');
      const body = (await res.json()) as { errorType: string; errorMessage: string; trace: string[] };
      assert.equal(body.errorType, 'TypeError');
      assert.equal(body.errorMessage, 'cannot read properties of undefined');
      assert.ok(Array.isArray(body.trace));
    });

    test('an unknown function is a 404 ResourceNotFoundException', async () => {
      const res = await post('nope', '{}');
      assert.equal(res.status, 404);
      assert.equal(res.headers.get('x-amzn-errortype'), 'ResourceNotFoundException');
      assert.match(((await res.json()) as { message: string }).message, /Function not found: nope/);
    });

    test('an ARN names the function too', async () => {
      const res = await post('arn:aws:lambda:us-east-1:123456789012:function:record-event', '{"n":1}');
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { ok: true });
    });

    test('an Event invocation answers 202 and runs in the background', async () => {
      const before = events.length;
      const res = await post('record-event', '{"n":2}', { 'X-Amz-Invocation-Type': 'Event' });
      assert.equal(res.status, 202);
      for (let i = 0; i < 100 && events.length === before; i++) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(events.at(-1), { n: 2 });
    });

    test('a payload that is not JSON is refused', async () => {
      const res = await post('record-event', '{nope');
      assert.equal(res.status, 400);
      assert.equal(res.headers.get('x-amzn-errortype'), 'InvalidRequestContentException');
    });
  });
});
