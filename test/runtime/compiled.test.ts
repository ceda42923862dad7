// The runtime compiled ahead of time (runtime/compiled.js): the command and the child
// processes run the same code compiled as through tsx, and the build is a cache keyed by the
// sources, never something to keep in step by hand.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { ENTRIES, compiledEntry, prepareCompiled } from '../../runtime/compiled.js';

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'puffindb.js');

test('prepareCompiled builds every entry once per version of the sources', async () => {
  const first = await prepareCompiled();
  assert.ok(first, 'the runtime compiles here');
  for (const name of Object.keys(ENTRIES) as (keyof typeof ENTRIES)[]) {
    assert.ok(existsSync(first.paths[name]), name);
    assert.equal(compiledEntry(name), first.paths[name]);
  }
  assert.match(first.dir, /node_modules[/\\]\.cache[/\\]puffindb[/\\][0-9a-f]{20}$/);
  // The server's modules and the optional dependencies' load apart: the command's own module
  // imports none of hono, ioredis, the AWS SDKs or Apache Arrow.
  const eager = new Set<string>();
  const seen = new Set<string>();
  const walk = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const m of readFileSync(file, 'utf8').matchAll(/^(?:import|export)\s[^;]*?from\s+"([^"]+)"|^import\s+"([^"]+)"/gms)) {
      const spec = m[1] ?? m[2];
      if (spec.startsWith('.')) walk(join(dirname(file), spec));
      else if (!spec.startsWith('node:') && !spec.startsWith('file:')) eager.add(spec);
    }
  };
  walk(first.paths.cli);
  // Malloy's compiler loads with the first Malloy query only (runtime/sql/malloy.ts), not with `select 1`.
  for (const pkg of ['hono', '@hono/node-server', 'ioredis', '@aws-sdk/client-s3', '@aws-sdk/client-lambda', '@aws-sdk/client-secrets-manager', 'apache-arrow', '@malloydata/malloy']) {
    assert.ok(!eager.has(pkg), `${pkg} loads with the command: ${[...eager].join(', ')}`);
  }
  assert.ok(eager.has('@duckdb/node-api'), 'the walk follows the static imports');
  // Each module keeps its own import.meta.url: paths relative to a source resolve as there.
  // The entries and the chunks split off them (modules imported dynamically, shared code).
  const cli = [first.paths.cli, ...readdirSync(join(first.dir, 'chunks')).map((f) => join(first.dir, 'chunks', f))].map((f) => readFileSync(f, 'utf8')).join('\n');
  assert.ok(!cli.includes('import.meta.url'), 'no module resolves relative to the bundle');
  assert.ok(cli.includes(`"file://${join(import.meta.dirname, "..", "..", "runtime", "sql", "frontends.ts")}"`), "frontends.ts resolves its packages from its own URL");
  // Another process with the same sources finds the same build.
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', `import('${join(import.meta.dirname, '..', '..', 'runtime', 'compiled.js')}').then((m) => m.prepareCompiled()).then((p) => console.log(p.dir))`]);
  assert.equal(stdout.trim(), first.dir);
});

test('the command answers the same compiled and through tsx', async () => {
  const compiled = await run(process.execPath, [BIN, '--help']);
  const viaTsx = await run(process.execPath, [BIN, '--help'], { env: { ...process.env, PUFFINDB_COMPILED: '0' } });
  assert.equal(compiled.stdout, viaTsx.stdout);
  assert.match(compiled.stdout, /puffindb/);
  // Errors too: an unknown command is exit code 1 with the same message.
  const fail = async (env: NodeJS.ProcessEnv) => run(process.execPath, [BIN, 'no-such-command'], { env }).then(() => assert.fail('ran'), (err: { code: number; stderr: string }) => err);
  const a = await fail(process.env);
  const b = await fail({ ...process.env, PUFFINDB_COMPILED: '0' });
  assert.equal(a.code, 1);
  assert.equal(a.stderr, b.stderr);
});

test('PUFFINDB_COMPILED=0 runs through tsx', async () => {
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', `import('${join(import.meta.dirname, '..', '..', 'runtime', 'compiled.js')}').then((m) => m.prepareCompiled()).then((p) => console.log(String(p)))`], { env: { ...process.env, PUFFINDB_COMPILED: '0' } });
  assert.equal(stdout.trim(), 'undefined');
});
