// The library as a user installs it: `npm pack` the project, unpack the tarball as
// node_modules/puffindb of a throwaway project (offline: its dependencies are this
// checkout's node_modules, linked in, so nothing is downloaded), and `import { open } from
// 'puffindb'` by name from plain Node ESM (no tsx flag), running a query.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
// Type-checked by `tsc --noEmit` through the package's own `exports` (its `types` condition).
import type { Database, OpenOptions } from 'puffindb';

const ROOT = resolve(fileURLToPath(new URL('../../../', import.meta.url)));
const dir = mkdtempSync(join(tmpdir(), 'puffin-pack-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('npm pack, install the tarball into a fresh project, import puffindb by name and query', () => {
  const packed = spawnSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(packed.status, 0, packed.stderr);
  const [info] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
  const files = new Set(info.files.map((f) => f.path));
  for (const path of ['package.json', 'lib/puffindb.js', 'lib/puffindb.d.ts', 'runtime/client/index.ts', 'bin/puffindb.js']) assert.ok(files.has(path), `the package ships ${path}`);
  assert.ok(![...files].some((p) => p.startsWith('test/') || p.startsWith('stacks/')), 'tests and stacks are not shipped');

  const app = join(dir, 'app');
  const modules = join(app, 'node_modules');
  mkdirSync(modules, { recursive: true });
  const untar = spawnSync('tar', ['xzf', join(dir, info.filename), '-C', modules], { encoding: 'utf8' });
  assert.equal(untar.status, 0, untar.stderr);
  renameSync(join(modules, 'package'), join(modules, 'puffindb'));
  // The installed package's dependencies, without a registry.
  symlinkSync(join(ROOT, 'node_modules'), join(modules, 'puffindb', 'node_modules'), 'dir');
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', type: 'module', private: true }));
  const options: OpenOptions = { home: join(dir, 'home'), invoker: 'in-process', workers: 1, env: { PUFFINDB_THREADS: '1' } };
  writeFileSync(join(app, 'main.mjs'), `
import { open } from 'puffindb';
const db = await open(${JSON.stringify(options)});
const { rows } = await db.query('SELECT ?::INTEGER + 1 AS answer, $$pack$$ AS how', [41]);
await db.close();
console.log(JSON.stringify(rows));
`);
  const run = spawnSync(process.execPath, ['main.mjs'], { cwd: app, encoding: 'utf8', env: { PATH: process.env.PATH, HOME: process.env.HOME } });
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout.trim().split('\n').pop()!), [{ answer: 42, how: 'pack' }]);
});

// Keeps the type-only import above meaningful: a Database has these methods.
export type Methods = keyof Database;
