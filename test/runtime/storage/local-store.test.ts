import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { LocalObjectStore } from '../../../runtime/storage/local-store.ts';
import { objectStoreContract, rejectsWith } from './object-store-contract.ts';

const roots: string[] = [];
async function freshRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'puffindb-local-store-'));
  roots.push(root);
  return root;
}
after(async () => {
  await Promise.all(roots.map((root) => rm(root, { recursive: true, force: true })));
});

objectStoreContract('LocalObjectStore', async () => new LocalObjectStore(await freshRoot()), { enforcesIfNoneMatch: true });

describe('LocalObjectStore', () => {
  test('url is the file URL of the root and localPath maps keys under it', async () => {
    const root = await freshRoot();
    const store = new LocalObjectStore(root);
    assert.equal(store.url, `${pathToFileURL(root).href}/`);
    assert.equal(store.localPath('a/b.parquet'), join(root, 'a/b.parquet'));
    assert.throws(() => store.localPath('../x'), { code: 'access_denied' });
  });

  test('objects are plain files, so DuckDB can read them in place', async () => {
    const root = await freshRoot();
    const store = new LocalObjectStore(root);
    await store.put('t/data/f.csv', 'a,b\n1,2\n');
    assert.deepEqual(await readdir(join(root, 't/data')), ['f.csv']);
  });

  test('concurrent create-only writes: exactly one wins, the rest conflict', async () => {
    const store = new LocalObjectStore(await freshRoot());
    const outcomes = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => store.put('meta/v1.json', `writer ${i}`, { ifNoneMatch: true })),
    );
    const winners = outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [i] : []));
    assert.equal(winners.length, 1);
    for (const o of outcomes) if (o.status === 'rejected') assert.equal((o.reason as { code: string }).code, 'conflict');
    assert.equal(Buffer.from(await store.get('meta/v1.json')).toString(), `writer ${winners[0]}`);
  });

  test('writes leave no temp files behind, and stray temp files are never listed', async () => {
    const root = await freshRoot();
    const store = new LocalObjectStore(root);
    await store.put('d/a', 'x');
    await store.put('d/a', 'y');
    await store.put('d/a', 'z', { ifNoneMatch: true }).catch(() => undefined);
    assert.deepEqual(await readdir(join(root, 'd')), ['a']);
    await writeFile(join(root, 'd', '.puffin-tmp-crashed'), 'half');
    assert.deepEqual((await store.list('')).map((o) => o.key), ['d/a']);
    await rejectsWith(store.get('d/.puffin-tmp-crashed'), 'bad_request');
  });

  test('a key whose path is blocked by another object is a conflict', async () => {
    const store = new LocalObjectStore(await freshRoot());
    await store.put('a', 'file');
    await rejectsWith(store.put('a/b', 'x'), 'conflict', 'a/b');
    await store.put('dir/child', 'x');
    await rejectsWith(store.put('dir', 'x'), 'conflict', 'dir');
    await rejectsWith(store.get('dir'), 'not_found', 'dir');
  });

  test('directories and symlinked directories are not objects; symlinked files are', async () => {
    const root = await freshRoot();
    const store = new LocalObjectStore(root);
    await mkdir(join(root, 'empty/dir'), { recursive: true });
    assert.deepEqual(await store.list(''), []);
    await store.delete('empty/dir');
    await store.put('real/f.txt', 'abc');
    await symlink(join(root, 'real/f.txt'), join(root, 'link.txt'));
    await symlink(join(root, 'real'), join(root, 'linkdir'));
    assert.deepEqual((await store.list('')).map((o) => [o.key, o.size]), [['link.txt', 3], ['real/f.txt', 3]]);
  });
});
