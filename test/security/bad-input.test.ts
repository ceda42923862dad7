// Finding 8 of the attack run (issue 11): bad input answered 5xx. Against a real serve:
// query ids that are not ULIDs (NUL, traversal, overlong, unicode) on every /v1/queries/{id}
// route, and JSON nested far too deep on every route that reads JSON, the Iceberg catalog's
// included, are all a 4xx JSON error naming the problem; the server keeps answering.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MAX_JSON_DEPTH } from '../../runtime/api/json-body.ts';
import { refusal, serveKey, startServe, type RealServer } from '../helpers/serve.ts';

let server: RealServer;
let reader: string;
let writer: string;

before(async () => {
  server = await startServe({ demoScale: 0.01 });
  reader = await serveKey(server, 'reader');
  writer = await serveKey(server, 'writer');
});
after(() => server?.close());

const BAD_IDS = ['%00', 'abc%00def', '01ARZ3NDEKTSV4RRFFQ69G5FA%00', '..%2F..%2Fetc%2Fpasswd', '%0d%0aset-cookie:%20x=1', 'x'.repeat(5000), '%E2%98%83', '%FF%FE', '%', '01ARZ3NDEKTSV4RRFFQ69G5FAVX'];

describe('query ids are validated before use', () => {
  for (const [method, suffix] of [['GET', ''], ['DELETE', ''], ['GET', '/result']] as const) {
    test(`${method} /v1/queries/{bad id}${suffix} is 400, never 500`, async () => {
      for (const id of BAD_IDS) {
        const res = await server.call(method, `/v1/queries/${id}${suffix}`, { key: reader });
        const e = await refusal(res);
        assert.ok(res.status === 400 || res.status === 404, `${method} ${id}: ${res.status} ${e.code} ${e.message}`);
        assert.equal(res.headers.get('x-puffindb-query-id'), null, 'no unvalidated id in a header');
        if (res.status === 400) assert.match(e.message, /not a query id/);
      }
    });
  }

  test('a well-formed id of no query is 404, in any case', async () => {
    for (const id of ['01ARZ3NDEKTSV4RRFFQ69G5FAV', '01arz3ndektsv4rrffq69g5fav']) {
      const e = await refusal(await server.call('GET', `/v1/queries/${id}`, { key: reader }));
      assert.equal(e.status, 404, e.message);
    }
  });

  test('a real query id works in lower case too', async () => {
    const res = await server.call('POST', '/v1/queries', { key: reader, body: { sql: 'SELECT 42 AS n' } });
    assert.equal(res.status, 202);
    const { queryId } = (await res.json()) as { queryId: string };
    const status = await server.call('GET', `/v1/queries/${queryId.toLowerCase()}`, { key: reader });
    assert.equal(status.status, 200);
    assert.equal(status.headers.get('x-puffindb-query-id'), queryId);
  });

  test('GET /v1/tables/{overlong or odd name} is a 4xx, never 500', async () => {
    for (const name of ['x'.repeat(3000), '%C3%A9'.repeat(200), '%00', '..%2F..%2Fetc%2Fpasswd', '%FF', '%', 'a.b.c']) {
      const res = await server.call('GET', `/v1/tables/${name}`, { key: reader });
      const e = await refusal(res);
      assert.ok(res.status === 400 || res.status === 404, `${name.slice(0, 40)}: ${res.status} ${e.message}`);
    }
  });

  test('DELETE /v1/keys/{bad id} is 400, never 500', async () => {
    for (const id of ['%00', '..%2F..', 'x'.repeat(500), '%E2%98%83']) {
      const res = await server.call('DELETE', `/v1/keys/${id}`, { key: server.adminKey });
      assert.equal(res.status, 400, `${id}: ${await res.clone().text()}`);
    }
  });
});

test('Iceberg paths and query strings with bad percent-encoding or overlong names are 400 at the edge', async () => {
  const urls = ['/iceberg/v1/namespaces/%FF', '/iceberg/v1/namespaces/%', '/iceberg/v1/namespaces/%ZZ/tables', '/iceberg/v1/namespaces/%25', '/iceberg/v1/namespaces/default/tables/%2525',
    `/iceberg/v1/namespaces/${'n'.repeat(300)}`, `/iceberg/v1/namespaces/default/tables/${'%C3%A9'.repeat(200)}`, '/iceberg/v1/namespaces?parent=%FF', '/iceberg/v1/namespaces?parent=%25', '/iceberg/v1/namespaces?%FF=1'];
  for (const url of urls) {
    for (const method of ['GET', 'HEAD', 'DELETE', 'POST']) {
      const res = await server.call(method, url, { key: writer, ...(method === 'POST' ? { body: {} } : {}) });
      const text = await res.text();
      assert.equal(res.status, 400, `${method} ${url.slice(0, 80)}: ${text.slice(0, 300)}`);
      if (method !== 'HEAD') assert.match((JSON.parse(text) as { error: { message: string } }).error.message, /percent-encoding|encoded twice|over 255 bytes/);
    }
  }
  const ok = await server.call('GET', '/iceberg/v1/namespaces/default', { key: reader });
  assert.equal(ok.status, 200, await ok.text());
});

describe('deeply nested JSON is refused, naming the limit', () => {
  const deepArray = (n: number) => '['.repeat(n) + ']'.repeat(n);
  const deepObject = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);
  const bodies = {
    'array 100,000 deep': deepArray(100_000),
    'object 100,000 deep': deepObject(50_000),
    'sql as a deep array': `{"sql":${deepArray(100_000)}}`,
    'unclosed brackets': '['.repeat(200_000),
    [`${MAX_JSON_DEPTH + 1} deep`]: `{"sql":${deepArray(MAX_JSON_DEPTH)}}`,
  };

  for (const [path, key] of [['/v1/query', 'reader'], ['/v1/queries', 'reader'], ['/v1/explain', 'reader'], ['/v1/keys', 'admin']] as const) {
    test(`POST ${path}`, async () => {
      for (const [what, body] of Object.entries(bodies)) {
        const res = await server.call('POST', path, { key: key === 'admin' ? server.adminKey : reader, body });
        const e = await refusal(res);
        assert.equal(res.status, 400, `${what}: ${e.code} ${e.message}`);
        assert.equal(e.code, 'bad_request');
        assert.match(e.message, new RegExp(`more than ${MAX_JSON_DEPTH} levels`), what);
      }
    });
  }

  test('nesting within the limit is still just validated', async () => {
    const e = await refusal(await server.call('POST', '/v1/query', { key: reader, body: `{"sql":${'['.repeat(10)}${']'.repeat(10)}}` }));
    assert.equal(e.status, 400);
    assert.match(e.message, /'sql' must be a string/);
    const ok = await server.query('SELECT 1 AS one', reader);
    assert.equal(ok.status, 200);
  });

  test('brackets inside strings do not count', async () => {
    const res = await server.query(`SELECT '${'['.repeat(1000)}' AS s`, reader);
    assert.equal(res.status, 200, await res.clone().text());
  });

  test('the Iceberg catalog refuses it at the edge, in its error form', async () => {
    const paths = ['/iceberg/v1/namespaces', '/iceberg/v1/namespaces/default/tables', '/iceberg/v1/namespaces/default/register', '/iceberg/v1/namespaces/default/tables/x', '/iceberg/v1/tables/rename', '/iceberg/v1/namespaces/default/properties'];
    for (const path of paths) {
      for (const [what, body] of Object.entries(bodies)) {
        const res = await server.call('POST', path, { key: writer, body });
        const text = await res.text();
        assert.equal(res.status, 400, `${path} ${what}: ${text.slice(0, 300)}`);
        const e = JSON.parse(text) as { error: { type: string; message: string; code: number } };
        assert.equal(e.error.type, 'BadRequestException');
        assert.match(e.error.message, new RegExp(`more than ${MAX_JSON_DEPTH} levels`));
      }
    }
  });

  test('wrong types and huge values in fields are 400s that do not echo the whole value', async () => {
    const huge = 'x'.repeat(500_000);
    for (const body of [{ sql: [huge] }, { sql: 'SELECT 1', fragments: huge }, { sql: 'SELECT 1', fragments: 1e308 }, { sql: 'SELECT 1', timeoutMs: -1 }, { [huge]: 1 }]) {
      const res = await server.call('POST', '/v1/query', { key: reader, body });
      const text = await res.text();
      assert.equal(res.status, 400, text.slice(0, 300));
      assert.ok(text.length < 1000, `message is short (${text.length} characters)`);
    }
  });
});
