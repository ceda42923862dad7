// Locations: file: URIs to paths and back byte for byte, and the policy of where a server may
// put tables (normalized before checking, symlinks of local paths resolved).

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { canonicalUri, fileUriToPath, LocationPolicy, pathToFileUri } from '../../../runtime/storage/locations.ts';

describe('file: URIs are literal', () => {
  test('no percent-decoding or -encoding, one canonical form', () => {
    assert.equal(fileUriToPath('file:///a/s=a%3Ab/x.parquet'), '/a/s=a%3Ab/x.parquet');
    assert.equal(fileUriToPath('file:/a/b c'), '/a/b c');
    assert.equal(fileUriToPath('file://localhost/a/%2e%2e/b'), '/a/%2e%2e/b');
    assert.equal(fileUriToPath('FILE:///a//b/./c/../d'), '/a/b/d');
    assert.equal(pathToFileUri('/a/s=a:b/ü x%'), 'file:///a/s=a:b/ü x%');
    assert.equal(canonicalUri('File:/a/b/'), 'file:///a/b/');
    assert.equal(canonicalUri('S3://bucket/k%3A'), 's3://bucket/k%3A');
    assert.throws(() => fileUriToPath('file://otherhost/a'), { code: 'bad_request' });
    assert.throws(() => fileUriToPath('file:relative/a'), { code: 'bad_request' });
    assert.throws(() => fileUriToPath('file:///a\0b'), { code: 'bad_request' });
  });
});

describe('LocationPolicy', () => {
  let dir: string;
  let wh: string;
  let policy: LocationPolicy;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'puffin-locations-'));
    wh = join(dir, 'warehouse');
    await mkdir(join(wh, 'ns'), { recursive: true });
    await mkdir(join(dir, 'outside'));
    await symlink(join(dir, 'outside'), join(wh, 'ns', 'link'));
    await symlink(join(wh, 'ns'), join(dir, 'alias'));
    policy = new LocationPolicy([`file://${wh}/`, 's3://lake/tables/', 'S3://other']);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('under the roots: yes; beside, above, through .. or a symlink out: no', async () => {
    const yes = [`file://${wh}`, `file://${wh}/ns/t`, `FILE:${wh}/ns/new/deeper/x.json`, `file://localhost${wh}/ns/%2e%2e/%2e%2e/x`, `${wh}/ns/t`,
      `file://${dir}/alias/t` /* a symlink from outside into the warehouse */, 's3://lake/tables/t/x', 's3://other/anything'];
    const no = [`file://${wh}x/t`, `file://${dir}`, `file://${wh}/../outside`, `file://${wh}/ns/../../outside/t`, `file://${wh}/ns/link/t`, `file://${wh}/ns/link`,
      'file:///etc/passwd', 'file://host/etc', 's3://lake/tablesx/t', 's3://lake/tables/../x', 's3://lake/tables/./x', 's3://lake/other', 'gs://lake/tables/t', 'http://lake/tables/t', ''];
    for (const uri of yes) assert.equal(await policy.allows(uri), true, uri);
    for (const uri of no) assert.equal(await policy.allows(uri), false, uri);
    await assert.rejects(policy.check(`file://${wh}/ns/link/t`, 'table location'), (err: Error & { code?: string }) => err.code === 'access_denied' && /PUFFINDB_ALLOWED_LOCATIONS/.test(err.message));
  });
});
