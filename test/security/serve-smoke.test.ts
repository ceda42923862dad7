// The real-server harness itself: `puffindb serve` starts over demo data, answers a query
// with the admin key, and refuses a request without one.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { refusal, startServe, type RealServer } from '../helpers/serve.ts';

let server: RealServer;
before(async () => {
  server = await startServe({ demoScale: 0.01 });
});
after(() => server?.close());

test('a real serve answers the admin key and refuses no key', async () => {
  const ok = await server.query('SELECT count(*) AS n FROM nation');
  assert.equal(ok.status, 200, await ok.clone().text());
  const body = (await ok.json()) as { rows: { n: number }[] };
  assert.equal(Number(body.rows[0].n), 25);
  const denied = await refusal(await server.call('POST', '/v1/query', { body: { sql: 'SELECT 1' } }));
  assert.equal(denied.status, 401);
  assert.equal(denied.code, 'unauthorized');
});
