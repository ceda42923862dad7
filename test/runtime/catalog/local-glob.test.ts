import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expandLocalPattern, globToRegExp } from '../../../runtime/catalog/local-glob.ts';
import { PuffinError } from '../../../runtime/errors.ts';

describe('globToRegExp', () => {
  const cases: [string, string[], string[]][] = [
    ['*.parquet', ['a.parquet', '.parquet'], ['a/b.parquet', 'a.parquet.tmp']],
    ['**/*.parquet', ['a.parquet', 'x/a.parquet', 'x/y/z/a.parquet'], ['a.csv', 'x/a.csv']],
    ['x/**', ['x/a', 'x/y/b'], ['y/a']],
    ['part-?.parquet', ['part-1.parquet'], ['part-10.parquet', 'part-/.parquet']],
    ['part-[0-4].parquet', ['part-0.parquet', 'part-4.parquet'], ['part-5.parquet']],
    ['part-[!0-4].parquet', ['part-5.parquet'], ['part-0.parquet']],
    ['{a,b}/*.parquet', ['a/x.parquet', 'b/y.parquet'], ['c/x.parquet']],
    ['a+b(1).parquet', ['a+b(1).parquet'], ['aab1.parquet']],
    ['year=*/month=*/*.parquet', ['year=2024/month=1/f.parquet'], ['year=2024/f.parquet']],
  ];
  for (const [glob, yes, no] of cases) {
    test(glob, () => {
      const re = globToRegExp(glob);
      for (const s of yes) assert.ok(re.test(s), `${glob} should match ${s}`);
      for (const s of no) assert.ok(!re.test(s), `${glob} should not match ${s}`);
    });
  }
});

describe('expandLocalPattern', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'puffin-glob-'));
    for (const f of ['b.parquet', 'a.parquet', 'sub/c.parquet', 'sub/deeper/d.parquet', 'notes.txt', '_meta/e.parquet', '.cache/f.parquet', 'odd[1].parquet']) {
      await mkdir(join(dir, f, '..'), { recursive: true });
      await writeFile(join(dir, f), '');
    }
    await symlink(dir, join(dir, 'sub', 'loop'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('a directory is every file with the extension under it, sorted, without following link cycles', async () => {
    assert.deepEqual(await expandLocalPattern(dir), [
      join(dir, 'a.parquet'),
      join(dir, 'b.parquet'),
      join(dir, 'odd[1].parquet'),
      join(dir, 'sub/c.parquet'),
      join(dir, 'sub/deeper/d.parquet'),
    ]);
  });

  test('globs match within their depth unless they use **', async () => {
    assert.deepEqual(await expandLocalPattern(join(dir, '*.parquet')), [join(dir, 'a.parquet'), join(dir, 'b.parquet'), join(dir, 'odd[1].parquet')]);
    assert.deepEqual(await expandLocalPattern(join(dir, '*', '*.parquet')), [join(dir, 'sub/c.parquet')]);
    assert.deepEqual(await expandLocalPattern(join(dir, 'sub', '**', '*.parquet')), [join(dir, 'sub/c.parquet'), join(dir, 'sub/deeper/d.parquet')]);
    assert.deepEqual(await expandLocalPattern(join(dir, '*.txt')), [join(dir, 'notes.txt')]);
    assert.deepEqual(await expandLocalPattern(join(dir, 'none', '*.parquet')), []);
  });

  test('an existing path is literal even with glob characters; a relative one resolves from the cwd', async () => {
    assert.deepEqual(await expandLocalPattern(join(dir, 'odd[1].parquet')), [join(dir, 'odd[1].parquet')]);
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      assert.deepEqual(await expandLocalPattern('sub/c.parquet'), [join(dir, 'sub/c.parquet')]);
    } finally {
      process.chdir(cwd);
    }
  });

  test('a missing plain path is a bad_request', async () => {
    await assert.rejects(expandLocalPattern(join(dir, 'missing.parquet')), (err: unknown) =>
      err instanceof PuffinError && err.code === 'bad_request' && err.message.includes('missing.parquet'));
  });
});
