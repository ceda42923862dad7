// curl() through the HTTP API (the query manager plans with explain, then runs): a reader
// key may read an allowed prefix, the URL is fetched once per query and never answered from
// the result cache, and what is not allowed is a 403 access_denied naming the setting.

import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import type { ControlFixture } from '../../helpers/control-plane.ts';
import { apiFixture, errorOf, newKey, type Caller } from '../../helpers/api.ts';

let f: ControlFixture;
let call: Caller;
let server: http.Server;
let base: string;
let served = 0;

before(async () => {
  server = http.createServer((req, res) => {
    if (req.url === '/ok/n.json') {
      served++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify([{ n: served, g: 'a' }, { n: served * 10, g: 'b' }]));
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  ({ f, call } = await apiFixture({ PUFFINDB_CURL_ALLOW: `${base}/ok/` }));
});

after(async () => {
  await f?.close();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
});

test('a reader key reads an allowed prefix; each query fetches once and is never served from the cache', async () => {
  const { key } = await newKey(call, 'reader');
  const sql = `SELECT c.g, c.n FROM curl('${base}/ok/n.json') c ORDER BY c.g`;
  const first = await call('POST', '/v1/query', { key, body: { sql } });
  assert.equal(first.status, 200, await first.clone().text());
  const a = (await first.json()) as { rows: Record<string, unknown>[]; cacheHit: boolean };
  assert.equal(served, 1, 'fetched once (explain fetches nothing)');
  assert.deepEqual(a.rows.map((r) => Number(r.n)), [1, 10]);
  const second = (await (await call('POST', '/v1/query', { key, body: { sql } })).json()) as { rows: Record<string, unknown>[]; cacheHit: boolean };
  assert.equal(second.cacheHit, false);
  assert.deepEqual(second.rows.map((r) => Number(r.n)), [2, 20], 'the remote data is read again');
  const explained = await call('POST', '/v1/explain', { key, body: { sql } });
  assert.equal(explained.status, 200);
  assert.equal(served, 2);
});

test('a prefix not allowed is 403 access_denied naming PUFFINDB_CURL_ALLOW', async () => {
  const { key } = await newKey(call, 'reader', 'second reader');
  const res = await call('POST', '/v1/query', { key, body: { sql: `SELECT * FROM curl('${base}/elsewhere/n.json')` } });
  const error = await errorOf(res, 403);
  assert.equal(error.code, 'access_denied');
  assert.match(error.message, /PUFFINDB_CURL_ALLOW/);
});
