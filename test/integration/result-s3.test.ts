// Large results kept on S3 (a real S3-compatible server, s3rver):
// GET /v1/queries/{id}/result?format=parquet redirects to a presigned URL the client
// downloads from S3 itself; the other formats are read through the server.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ADMIN_KEY, apiFixture, type Caller } from '../helpers/api.ts';
import type { ControlFixture } from '../helpers/control-plane.ts';
import { startS3rver, type TestS3 } from '../helpers/s3rver.ts';

let s3: TestS3;
let f: ControlFixture;
let call: Caller;
const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };

before(async () => {
  s3 = await startS3rver();
  // The results store builds its S3 client from the default credential chain.
  process.env.AWS_ACCESS_KEY_ID = s3.credentials.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = s3.credentials.secretAccessKey;
  ({ f, call } = await apiFixture({ PUFFINDB_RESULT_INLINE_LIMIT_BYTES: '2000', PUFFINDB_RESULTS_URL: `s3://${s3.bucket}/results/`, PUFFINDB_S3_ENDPOINT: s3.endpoint }));
});
after(async () => {
  await f?.close();
  await s3?.stop();
  for (const [k, v] of [['AWS_ACCESS_KEY_ID', saved.id], ['AWS_SECRET_ACCESS_KEY', saved.secret]] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

describe('results on S3', () => {
  test('format=parquet redirects to a presigned S3 URL; json pages are read through the server', async () => {
    const res = await call('POST', '/v1/query', { key: ADMIN_KEY, body: { sql: 'SELECT id, d FROM t ORDER BY id' } });
    const answer = (await res.json()) as { rowCount: number; result: string };
    assert.equal(answer.rowCount, 3000);

    const redirect = await call('GET', `${answer.result}?format=parquet`, { key: ADMIN_KEY });
    assert.equal(redirect.status, 307);
    const url = redirect.headers.get('location')!;
    assert.ok(url.startsWith(`${s3.endpoint}/${s3.bucket}/results/`) && url.includes('X-Amz-Signature='), url);
    const download = await fetch(url);
    assert.equal(download.status, 200, await download.clone().text());
    const path = join(f.fx.dir, 'from-s3.parquet');
    writeFileSync(path, new Uint8Array(await download.arrayBuffer()));
    assert.deepEqual((await f.fx.engine.query(`SELECT count(*)::INTEGER, min(id)::INTEGER, max(id)::INTEGER FROM read_parquet('${path}')`)).rows, [[3000, 0, 2999]]);
    // s3rver does not verify SigV4 signatures; the signer is checked against AWS's own example in test/runtime/storage/s3-presign.test.ts.

    const page = (await (await call('GET', `${answer.result}?offset=2998&limit=5`, { key: ADMIN_KEY })).json()) as { rows: { id: number }[]; next: string | null };
    assert.deepEqual([page.rows.map((r) => r.id), page.next], [[2998, 2999], null]);
  });
});
