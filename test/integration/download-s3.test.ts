// `puffindb download` of a large result kept on S3 (a real S3-compatible server, s3rver):
// the result route answers 307 to a presigned URL, and the download ranges that URL (no
// bearer key goes to S3) in several parallel parts; read back, it is DuckDB's answer.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startServer, type RunningServer } from '../../runtime/api/server.ts';
import { download } from '../../runtime/cli/download.ts';
import { ADMIN_KEY, appFor } from '../helpers/api.ts';
import { controlFixture, type ControlFixture } from '../helpers/control-plane.ts';
import { startS3rver, type TestS3 } from '../helpers/s3rver.ts';

let s3: TestS3;
let f: ControlFixture;
let server: RunningServer;
const out = mkdtempSync(join(tmpdir(), 'puffindb-download-s3-'));
const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };

before(async () => {
  s3 = await startS3rver();
  // The results store builds its S3 client from the default credential chain.
  process.env.AWS_ACCESS_KEY_ID = s3.credentials.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = s3.credentials.secretAccessKey;
  f = await controlFixture({ PUFFINDB_RESULT_INLINE_LIMIT_BYTES: '2000', PUFFINDB_RESULTS_URL: `s3://${s3.bucket}/results/`, PUFFINDB_S3_ENDPOINT: s3.endpoint });
  server = await startServer(await appFor(f), { port: 0, host: '127.0.0.1' });
});
after(async () => {
  await server?.close();
  await f?.close();
  await s3?.stop();
  rmSync(out, { recursive: true, force: true });
  for (const [k, v] of [['AWS_ACCESS_KEY_ID', saved.id], ['AWS_SECRET_ACCESS_KEY', saved.secret]] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

test('a result on S3 is downloaded in ranges of the presigned URL the server redirects to', async () => {
  const sql = 'SELECT id, d, s FROM t ORDER BY id';
  const to = join(out, 'from-s3.parquet');
  const summary = await download({ sql, to, format: 'parquet', url: server.url, key: ADMIN_KEY, partBytes: 4096, parallel: 3 });
  assert.equal(summary.redirected, true);
  assert.equal(summary.ranges, Math.ceil(summary.bytes / 4096));
  assert.ok(summary.ranges >= 3, `ranges: ${summary.ranges}`);
  const got = await f.fx.engine.query(`SELECT id, d, s FROM read_parquet('${to}') ORDER BY id`);
  assert.equal(got.rows.length, 3000);
  assert.deepEqual(got, await f.fx.engine.query(sql));
});
