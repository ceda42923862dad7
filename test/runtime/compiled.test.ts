// The runtime compiled ahead of time (runtime/compiled.js): the command and the child
// processes run the same code compiled as through tsx, and the build is a cache keyed by the
// sources, never something to keep in step by hand.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
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
  // Each module keeps its own import.meta.url: paths relative to a source resolve as there.
  const cli = readFileSync(first.paths.cli, 'utf8');
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
