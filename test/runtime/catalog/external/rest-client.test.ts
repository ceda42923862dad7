// The Iceberg REST client's own rules, against a loopback server that records what it was
// sent (no AWS traffic): SigV4 headers for Glue and S3 Tables, OAuth2 client credentials
// (token cached, fetched again after a 401), bearer tokens from the environment, Glue's
// "HTTP 200 with an error body", capability probing remembered, config prefix, the drop's
// purgeRequested (S3 Tables and Glue need opposite values); and the
// commit's requirements and updates computed from two metadata versions.

import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { catalogRecord, type CatalogInput } from '../../../../runtime/catalog/external/registry.ts';
import { CatalogError, RestCatalogClient, signRequest } from '../../../../runtime/catalog/external/rest-client.ts';
import { RestPointerStore, restChange } from '../../../../runtime/catalog/external/rest-store.ts';
import { newTableMetadata } from '../../../../runtime/catalog/iceberg/commit.ts';
import type { TableMetadata } from '../../../../runtime/catalog/iceberg/metadata.ts';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

let server: Server;
let base = '';
const seen: Seen[] = [];
/** path -> handler answering [status, body]. */
let routes: Record<string, (s: Seen) => [number, unknown]> = {};

before(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s: Seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      seen.push(s);
      const path = (req.url ?? '').split('?')[0];
      const handler = routes[`${req.method} ${path}`];
      const [status, body] = handler ? handler(s) : [404, { error: { message: `no route ${path}`, type: 'NotFoundException', code: 404 } }];
      res.writeHead(status, { 'content-type': 'application/json' }).end(body === undefined ? '' : JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => new Promise<void>((resolve) => server.close(() => resolve())));

function client(input: Partial<CatalogInput>, options: ConstructorParameters<typeof RestCatalogClient>[1] = {}): RestCatalogClient {
  return new RestCatalogClient(catalogRecord({ name: 'c', type: 'rest', uri: base, ...input } as CatalogInput), options);
}

const creds = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };

describe('SigV4', () => {
  test('glue and s3tables requests carry an Authorization header for their service and region, x-amz-date and the payload hash', async () => {
    routes = { 'GET /v1/config': () => [200, { defaults: {}, overrides: { prefix: 'catalogs/123' } }], 'GET /v1/catalogs/123/namespaces': () => [200, { namespaces: [['db']] }] };
    for (const type of ['glue', 's3tables'] as const) {
      seen.length = 0;
      const c = client({ type, region: 'eu-west-1', ...(type === 's3tables' ? { warehouse: 'arn:aws:s3tables:eu-west-1:123456789012:bucket/b' } : {}) }, { credentials: async () => creds, now: () => new Date('2026-01-02T03:04:05Z') });
      assert.equal(c.record.auth, 'sigv4');
      assert.deepEqual(await c.listNamespaces(), [['db']]);
      assert.equal(seen.length, 2);
      for (const s of seen) {
        const auth = String(s.headers.authorization);
        assert.match(auth, new RegExp(`^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260102/eu-west-1/${type}/aws4_request, SignedHeaders=[a-z0-9;-]*host[a-z0-9;-]*, Signature=[0-9a-f]{64}$`));
        assert.match(auth, /SignedHeaders=[^,]*x-amz-date/);
        assert.equal(s.headers['x-amz-date'], '20260102T030405Z');
        assert.equal(s.headers['x-amz-content-sha256'], createHash('sha256').update(s.body).digest('hex'));
      }
      if (type === 's3tables') assert.match(seen[0].url, /warehouse=arn%3Aaws%3As3tables/);
    }
  });

  test('the signature is the one the SigV4 algorithm gives for the request', async () => {
    const signed = await signRequest({ method: 'GET', url: `${base}/v1/config?warehouse=w`, headers: {} }, 'glue', 'us-east-1', creds, new Date('2026-01-02T03:04:05Z'));
    const h = signed.headers;
    const signedHeaders = /SignedHeaders=([^,]+)/.exec(h.authorization)![1].split(';');
    const lower = Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));
    const canonical = ['GET', '/v1/config', 'warehouse=w', ...signedHeaders.map((k) => `${k}:${String(lower[k]).trim()}`), '', signedHeaders.join(';'), lower['x-amz-content-sha256']].join('\n');
    const scope = '20260102/us-east-1/glue/aws4_request';
    const toSign = ['AWS4-HMAC-SHA256', '20260102T030405Z', scope, createHash('sha256').update(canonical).digest('hex')].join('\n');
    const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();
    const key = hmac(hmac(hmac(hmac(`AWS4${creds.secretAccessKey}`, '20260102'), 'us-east-1'), 'glue'), 'aws4_request');
    assert.equal(/Signature=([0-9a-f]+)/.exec(h.authorization)![1], createHmac('sha256', key).update(toSign).digest('hex'));
  });
});

describe('tokens', () => {
  test('OAuth2 client credentials: one token request, kept, and fetched again after a 401', async () => {
    let issued = 0;
    let valid = '';
    routes = {
      'POST /v1/oauth/tokens': (s) => {
        const form = new URLSearchParams(s.body);
        if (form.get('grant_type') !== 'client_credentials' || form.get('client_id') !== 'me' || form.get('client_secret') !== 's3cret') return [401, { error: 'invalid_client' }];
        valid = `tok${++issued}`;
        return [200, { access_token: valid, token_type: 'bearer', expires_in: 3600 }];
      },
      'GET /v1/config': () => [200, { defaults: {}, overrides: {} }],
      'GET /v1/namespaces': (s) => (s.headers.authorization === `Bearer ${valid}` ? [200, { namespaces: [] }] : [401, { error: { message: 'expired', type: 'NotAuthorizedException', code: 401 } }]),
    };
    const c = client({ clientId: 'me', clientSecretEnv: 'CAT_SECRET' }, { env: { CAT_SECRET: 's3cret' } });
    assert.equal(c.record.auth, 'oauth2');
    await c.listNamespaces();
    await c.listNamespaces();
    assert.equal(issued, 1, 'the token is kept until it expires');
    valid = 'revoked';
    await c.listNamespaces();
    assert.equal(issued, 2, 'a 401 fetches a new token once');
    const wrong = client({ clientId: 'me', clientSecretEnv: 'CAT_SECRET' }, { env: { CAT_SECRET: 'nope' } });
    await assert.rejects(wrong.listNamespaces(), (err: Error & { code?: string }) => err.code === 'bad_gateway' && /OAuth2 token endpoint refused/.test(err.message));
  });

  test('a bearer token is read from the named variable; a missing variable says which', async () => {
    routes = { 'GET /v1/config': (s) => [s.headers.authorization === 'Bearer abc' ? 200 : 401, { defaults: {}, overrides: {} }] };
    await client({ tokenEnv: 'CAT_TOKEN' }, { env: { CAT_TOKEN: 'abc' } }).config();
    await assert.rejects(client({ tokenEnv: 'CAT_TOKEN' }, { env: {} }).config(), /environment variable CAT_TOKEN/);
  });
});

describe('answers', () => {
  test("Glue's HTTP 200 with an error body is that error; an endpoint found missing is not tried again", async () => {
    let registers = 0;
    routes = {
      'GET /v1/config': () => [200, { defaults: {}, overrides: {} }],
      'POST /v1/namespaces/db/register': () => {
        registers++;
        return [200, { error: { message: 'RegisterTable is not supported', type: 'UnsupportedOperationException', code: 501 } }];
      },
      'GET /v1/namespaces/db/tables/gone': () => [200, { error: { message: 'Table not found', type: 'NoSuchTableException', code: 404 } }],
    };
    const c = client({});
    assert.equal(await c.loadTable(['db'], 'gone'), undefined, 'a 200 carrying NoSuchTableException is a missing table');
    assert.equal(await c.registerTable(['db'], 't', 'file:///x.metadata.json'), false);
    assert.equal(await c.registerTable(['db'], 't', 'file:///x.metadata.json'), false);
    assert.equal(registers, 1, 'probed once');
    assert.deepEqual(c.missingEndpoints(), ['POST /v1/{prefix}/namespaces/{namespace}/register']);
    routes['GET /v1/namespaces/db/tables/t'] = () => [200, { error: { message: 'boom', type: 'InternalServerError', code: 500 } }];
    await assert.rejects(c.loadTable(['db'], 't'), (err: unknown) => err instanceof CatalogError && err.code === 'unavailable' && /boom/.test(err.message));
  });

  test('a catalog that publishes its endpoints is not called for one it lacks; the prefix is used', async () => {
    seen.length = 0;
    routes = { 'GET /v1/config': () => [200, { defaults: {}, overrides: { prefix: 'p' }, endpoints: ['GET /v1/{prefix}/namespaces'] }] };
    const c = client({});
    assert.equal(await c.registerTable(['db'], 't', 'file:///x.metadata.json'), false);
    assert.deepEqual(seen.map((s) => s.url.split('?')[0]), ['/v1/config']);
  });
});

describe('drop', () => {
  test('a DROP sends purgeRequested as the type needs: true for S3 Tables, false for Glue and other REST catalogs; a moved table is not dropped', async () => {
    const io = { read: async () => { throw new Error('not read'); } } as unknown as ConstructorParameters<typeof RestPointerStore>[1];
    for (const [type, purge] of [['s3tables', 'true'], ['glue', 'false'], ['rest', 'false']] as const) {
      seen.length = 0;
      routes = {
        'GET /v1/config': () => [200, { defaults: {}, overrides: {} }],
        'GET /v1/namespaces/db/tables/t': () => [200, { 'metadata-location': 'file:///t/metadata/2.metadata.json', metadata: { 'format-version': 2 } }],
        'DELETE /v1/namespaces/db/tables/t': () => [204, undefined],
      };
      const store = new RestPointerStore(client({ type, region: 'us-east-1', ...(type === 's3tables' ? { warehouse: 'arn:aws:s3tables:us-east-1:123456789012:bucket/b' } : {}) }, type === 'rest' ? {} : { credentials: async () => creds }), io);
      assert.equal(await store.remove('db.t', 'file:///t/metadata/1.metadata.json'), false, `${type}: a table whose pointer moved is left`);
      assert.equal(seen.filter((s) => s.method === 'DELETE').length, 0);
      assert.equal(await store.remove('db.t', 'file:///t/metadata/2.metadata.json'), true, type);
      const drops = seen.filter((s) => s.method === 'DELETE');
      assert.equal(drops.length, 1, type);
      assert.equal(new URL(drops[0].url, base).searchParams.get('purgeRequested'), purge, `${type}: purgeRequested`);
    }
  });
});

describe('prefix', () => {
  test("the config's prefix goes into paths as given (S3 Tables sends an encoded ARN)", async () => {
    seen.length = 0;
    const prefix = 'arn%3Aaws%3As3tables%3Aus-east-1%3A123456789012%3Abucket%2Fb';
    routes = { 'GET /v1/config': () => [200, { defaults: { prefix }, overrides: {} }], [`GET /v1/${prefix}/namespaces`]: () => [200, { namespaces: [['x']] }] };
    assert.deepEqual(await client({}).listNamespaces(), [['x']]);
    routes['GET /v1/config'] = () => [200, { defaults: {}, overrides: { prefix: '../admin' } }];
    await assert.rejects(client({}).listNamespaces(), /unusable prefix/);
  });
});

describe('commit change', () => {
  const base = (): TableMetadata => ({
    ...newTableMetadata({ schema: { schemaId: 0, fields: [{ id: 1, name: 'a', required: false, type: 'int' }], identifierFieldIds: [] } as never, lastColumnId: 1, spec: { specId: 0, fields: [] }, location: 'file:///t' }),
    tableUuid: 'u-1',
  });

  test('an append is add-snapshot + set-snapshot-ref under assert-ref-snapshot-id of main (null before the first)', () => {
    const b = base();
    const snap = { snapshotId: 77n, sequenceNumber: 1n, timestampMs: 1, manifestList: 'file:///t/metadata/snap-77.avro', summary: { operation: 'append' }, schemaId: 0 };
    const n: TableMetadata = { ...b, snapshots: [snap], currentSnapshotId: 77n, lastSequenceNumber: 1n, refs: { main: { snapshotId: 77n, type: 'branch' } }, properties: { ...b.properties, k: 'v' } };
    const { requirements, updates } = restChange(b, n);
    assert.deepEqual(requirements.find((r) => r.type === 'assert-ref-snapshot-id'), { type: 'assert-ref-snapshot-id', ref: 'main', 'snapshot-id': null });
    assert.ok(requirements.some((r) => r.type === 'assert-table-uuid' && r.uuid === 'u-1'));
    assert.ok(requirements.some((r) => r.type === 'assert-current-schema-id' && r['current-schema-id'] === 0));
    assert.deepEqual(updates.map((u) => u.action), ['add-snapshot', 'set-snapshot-ref', 'set-properties']);
    // A second append asserts the first.
    const snap2 = { ...snap, snapshotId: 78n, parentSnapshotId: 77n, sequenceNumber: 2n };
    const n2: TableMetadata = { ...n, snapshots: [snap, snap2], currentSnapshotId: 78n, refs: { main: { snapshotId: 78n, type: 'branch' } } };
    const second = restChange(n, n2);
    assert.equal(String(second.requirements.find((r) => r.type === 'assert-ref-snapshot-id')?.['snapshot-id']), '@@big:77@@');
    assert.deepEqual(second.updates.map((u) => u.action), ['add-snapshot', 'set-snapshot-ref']);
  });

  test('a schema change adds and sets the schema under assert-last-assigned-field-id', () => {
    const b = base();
    const n: TableMetadata = { ...b, schemas: [...b.schemas, { schemaId: 1, fields: [{ id: 1, name: 'a', required: false, type: 'int' }, { id: 2, name: 'b', required: false, type: 'string' }], identifierFieldIds: [] } as never], currentSchemaId: 1, lastColumnId: 2 };
    const { requirements, updates } = restChange(b, n);
    assert.deepEqual(updates.map((u) => u.action), ['add-schema', 'set-current-schema']);
    assert.ok(requirements.some((r) => r.type === 'assert-last-assigned-field-id' && r['last-assigned-field-id'] === 1));
  });
});
