import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PuffinError } from '../../runtime/errors.ts';
import { crc32, writeZip, type ZipEntry } from '../../stacks/zip.ts';

describe('zip writer', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'puffindb-zip-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('crc32 matches the IEEE check value', () => {
    assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
    assert.equal(crc32(new Uint8Array(0)), 0);
  });

  const entries: ZipEntry[] = [
    { path: 'a.mjs', data: Buffer.from('export const handler = () => 42;\n'.repeat(50)) },
    { path: 'empty.txt', data: Buffer.alloc(0) },
    { path: 'node_modules/@scope/pkg/random.bin', data: randomBytes(64 * 1024) }, // incompressible: stored
    { path: 'dir/ünïcode.txt', data: Buffer.from('é') },
    { path: 'bin/tool', data: Buffer.from('#!/bin/sh\n'), mode: 0o755 },
  ];

  test("python's zipfile validates, lists and extracts the archive byte for byte", async () => {
    const zipPath = join(dir, 'a.zip');
    await writeFile(zipPath, writeZip(entries));
    execFileSync('python3', ['-m', 'zipfile', '-t', zipPath]);
    const out = join(dir, 'out');
    execFileSync('python3', ['-m', 'zipfile', '-e', zipPath, out]);
    for (const e of entries) assert.deepEqual(await readFile(join(out, e.path)), Buffer.from(e.data), e.path);
    const listing = execFileSync(
      'python3',
      ['-c', 'import sys,zipfile; [print(i.filename, oct(i.external_attr >> 16), i.compress_type) for i in zipfile.ZipFile(sys.argv[1]).infolist()]', zipPath],
      { encoding: 'utf8' },
    );
    const rows = listing.trim().split('\n').map((l) => l.split(' '));
    assert.deepEqual(rows.map((r) => r[0]), entries.map((e) => e.path));
    assert.equal(rows.find((r) => r[0] === 'bin/tool')?.[1], '0o100755');
    assert.equal(rows.find((r) => r[0] === 'a.mjs')?.[1], '0o100644');
    assert.equal(rows.find((r) => r[0] === 'a.mjs')?.[2], '8', 'compressible data is deflated');
    assert.equal(rows.find((r) => r[0] === 'node_modules/@scope/pkg/random.bin')?.[2], '0', 'incompressible data is stored');
  });

  test('the same entries give the same bytes (a stable source_code_hash)', () => {
    assert.deepEqual(writeZip(entries), writeZip(entries));
  });

  test('rejects paths that escape the archive and duplicate entries', () => {
    for (const path of ['/abs', '../up', 'a/../../b', 'win\\path', '']) {
      assert.throws(() => writeZip([{ path, data: Buffer.from('x') }]), (e: unknown) => e instanceof PuffinError && e.code === 'bad_request', path);
    }
    assert.throws(
      () => writeZip([{ path: 'a', data: Buffer.from('1') }, { path: 'a', data: Buffer.from('2') }]),
      /appears twice/,
    );
  });
});
