import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PuffinError } from '../../runtime/errors.ts';
import { FUNCTION_ENTRIES, LAMBDA_UNZIPPED_LIMIT_BYTES } from '../../stacks/artifacts.ts';
import { bundleAll, bundleEntry, nativeBindingPackage, REPO_ROOT, type BundleResult } from '../../stacks/bundle.ts';

const run = promisify(execFile);
const PROBE = { name: 'probe', entry: 'test/stacks/fixtures/duckdb-probe.ts' };
const WORKER = FUNCTION_ENTRIES.find((f) => f.name === 'worker');
const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;

/** Run a module runner in a fresh Node process, as a Lambda cold start would. */
async function runFresh(dir: string, source: string, args: string[]): Promise<Record<string, unknown>> {
  const runner = join(dir, `runner-${Math.random().toString(36).slice(2)}.mjs`);
  await writeFile(runner, source);
  const { stdout } = await run(process.execPath, [runner, ...args], { timeout: 60_000, env: { ...process.env, PUFFINDB_HOME: join(dir, 'home') } });
  return JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
}

function extract(zipPath: string, to: string): void {
  execFileSync('python3', ['-m', 'zipfile', '-e', zipPath, to]);
}

describe('Lambda bundles', () => {
  let dir: string;
  let probe: BundleResult;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'puffindb-bundle-'));
    probe = await bundleEntry(PROBE, { arch: 'x86_64', outDir: join(dir, 'zips') });
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('the zip carries the bundle and the x86_64 native binding, within the Lambda limit', async () => {
    const pkg = nativeBindingPackage('x86_64');
    for (const f of ['probe.mjs', `node_modules/${pkg}/duckdb.node`, `node_modules/${pkg}/libduckdb.so`, 'node_modules/@duckdb/node-bindings/duckdb.js', 'node_modules/detect-libc/package.json']) {
      assert.ok(probe.files.includes(f), `zip lists ${f}`);
    }
    assert.ok(probe.includesNativeBinding);
    assert.ok(!probe.files.some((f) => f.includes('node-bindings-darwin') || f.includes('arm64')), 'no other platform binding');
    assert.ok(probe.unzippedBytes < LAMBDA_UNZIPPED_LIMIT_BYTES);
    const listed = execFileSync('python3', ['-m', 'zipfile', '-l', probe.zipPath], { encoding: 'utf8' });
    assert.match(listed, /libduckdb\.so/);
    console.log(`probe bundle: ${mb(probe.unzippedBytes)} unzipped, ${mb(probe.zipBytes)} zipped`);
  });

  test("sourceCodeHash is Terraform's filebase64sha256 of the zip, and rebuilding gives the same zip", async () => {
    const bytes = await readFile(probe.zipPath);
    assert.equal(probe.sourceCodeHash, createHash('sha256').update(bytes).digest('base64'));
    const again = await bundleEntry(PROBE, { arch: 'x86_64', outDir: join(dir, 'zips-again') });
    assert.equal(again.sourceCodeHash, probe.sourceCodeHash);
    assert.equal(again.contentSha256, probe.contentSha256);
  });

  test('the bundled module loads from the extracted zip alone and DuckDB answers', async () => {
    const out = join(dir, 'probe');
    extract(probe.zipPath, out);
    const result = await runFresh(
      dir,
      `const t0 = performance.now();
const m = await import(process.argv[2]);
const loadMs = performance.now() - t0;
const r = await m.handler();
console.log(JSON.stringify({ loadMs, ...r }));`,
      [join(out, 'probe.mjs')],
    );
    assert.equal(result.answer, 42);
    console.log(`probe: module load ${Number(result.loadMs).toFixed(0)} ms, DuckDB instance ${Number(result.initMs).toFixed(0)} ms`);
  });

  test('a bundle holding the query front ends carries their compilers, and PRQL and dialects work from the extracted zip alone', async () => {
    const fe = await bundleEntry({ name: 'frontends', entry: 'test/stacks/fixtures/frontends-probe.ts' }, { arch: 'x86_64', outDir: join(dir, 'zips-fe') });
    assert.ok(fe.includesFrontEnds);
    assert.ok(!probe.includesFrontEnds, 'a bundle without them carries neither');
    for (const f of ['node_modules/prqlc/dist/node/prqlc_js_bg.wasm', 'node_modules/@polyglot-sql/sdk/dist/polyglot_sql.wasm', 'node_modules/@polyglot-sql/sdk/dist/index.node.js']) assert.ok(fe.files.includes(f), `zip lists ${f}`);
    assert.ok(fe.unzippedBytes < LAMBDA_UNZIPPED_LIMIT_BYTES);
    const out = join(dir, 'frontends');
    extract(fe.zipPath, out);
    // Outside the repository, so nothing resolves from its node_modules.
    const result = await runFresh(dir, `const m = await import(process.argv[2]);\nconsole.log(JSON.stringify(await m.handler()));`, [join(out, 'frontends.mjs')]);
    assert.match(String(result.prql), /FROM\s+nation\s+LIMIT\s+2/i);
    assert.match(String(result.dialect), /COALESCE\(a, 'x'\)[\s\S]*LIMIT\s+3/i);
    console.log(`front-ends bundle: ${mb(fe.unzippedBytes)} unzipped, ${mb(fe.zipBytes)} zipped`);
  });

  test('the worker bundle carries the native binding, loads, and its DuckDB starts', { skip: WORKER && !existsSync(join(REPO_ROOT, WORKER.entry)) ? `${WORKER.entry} is not written yet` : false }, async () => {
    assert.ok(WORKER);
    const worker = await bundleEntry(WORKER, { arch: 'x86_64', outDir: join(dir, 'zips') });
    assert.ok(worker.files.includes(`node_modules/${nativeBindingPackage('x86_64')}/libduckdb.so`));
    assert.ok(worker.unzippedBytes < LAMBDA_UNZIPPED_LIMIT_BYTES, `${mb(worker.unzippedBytes)} is under 250 MB`);
    const out = join(dir, 'worker');
    extract(worker.zipPath, out);
    // The probe sits beside worker.mjs so both resolve the same packaged binding, as one
    // Lambda process would: the instance time is measured after the worker's module load.
    await copyFile(join(dir, 'probe', 'probe.mjs'), join(out, 'probe.mjs')).catch(async () => {
      extract(probe.zipPath, join(dir, 'probe'));
      await copyFile(join(dir, 'probe', 'probe.mjs'), join(out, 'probe.mjs'));
    });
    const result = await runFresh(
      dir,
      `const t0 = performance.now();
const w = await import(process.argv[2]);
const loadMs = performance.now() - t0;
const r = await (await import(process.argv[3])).handler();
console.log(JSON.stringify({ loadMs, handler: typeof w.handler, ...r }));`,
      [join(out, 'worker.mjs'), join(out, 'probe.mjs')],
    );
    assert.equal(result.handler, 'function', 'worker.mjs exports handler');
    assert.equal(result.answer, 42);
    console.log(
      `worker bundle: ${mb(worker.unzippedBytes)} unzipped, ${mb(worker.zipBytes)} zipped; init: module load ${Number(result.loadMs).toFixed(0)} ms + DuckDB instance ${Number(result.initMs).toFixed(0)} ms`,
    );
  });

  test('a command bundle (main export) runs its main with the command-line arguments', async () => {
    const cli = await bundleEntry({ name: 'cli', entry: 'test/stacks/fixtures/cli-probe.ts', main: 'main' }, { arch: 'x86_64', outDir: join(dir, 'zips') });
    assert.ok(!cli.includesNativeBinding, 'no DuckDB, no binding');
    assert.deepEqual(cli.files, ['cli.mjs']);
    extract(cli.zipPath, join(dir, 'cli'));
    const { stdout } = await run(process.execPath, [join(dir, 'cli', 'cli.mjs'), 'serve', '--host', '0.0.0.0'], { timeout: 30_000 });
    assert.deepEqual(JSON.parse(stdout), { argv: ['serve', '--host', '0.0.0.0'] });
  });

  test('a bundle that does not build fails with the entry and the error, and bundleAll carries on', async () => {
    const broken = { name: 'broken', entry: 'test/stacks/fixtures/broken-entry.ts' };
    const { built, failed } = await bundleAll([broken, { name: 'cli', entry: 'test/stacks/fixtures/cli-probe.ts', main: 'main' }], { arch: 'x86_64', outDir: join(dir, 'mixed') });
    assert.deepEqual(built.map((b) => b.name), ['cli']);
    assert.equal(failed.length, 1);
    assert.ok(failed[0] instanceof PuffinError && failed[0].code === 'bad_request');
    assert.match(failed[0].message, /bundle 'broken' \(test\/stacks\/fixtures\/broken-entry\.ts\) does not build: .*broken-entry\.ts:\d+: Could not resolve/);
  });

  test('entries without a source file are skipped and reported, not fatal', async () => {
    const { built, skipped } = await bundleAll([{ name: 'missing', entry: 'runtime/functions/does-not-exist.ts' }], { arch: 'x86_64', outDir: join(dir, 'none') });
    assert.deepEqual(built, []);
    assert.deepEqual(skipped.map((s) => s.name), ['missing']);
    await assert.rejects(bundleEntry({ name: 'missing', entry: 'runtime/functions/does-not-exist.ts' }, { arch: 'x86_64', outDir: join(dir, 'none') }), (e: unknown) => e instanceof PuffinError && e.code === 'not_found');
  });

  test('arm64 bundles need the arm64 binding package, and say how to get it when it is absent', async () => {
    const pkg = nativeBindingPackage('arm64');
    const installed = existsSync(join(REPO_ROOT, 'node_modules', pkg, 'duckdb.node'));
    const attempt = bundleEntry(PROBE, { arch: 'arm64', outDir: join(dir, 'arm64') });
    if (installed) {
      const arm = await attempt;
      assert.ok(arm.files.includes(`node_modules/${pkg}/duckdb.node`));
    } else {
      await assert.rejects(attempt, (e: unknown) => e instanceof PuffinError && e.code === 'unavailable' && e.message.includes(pkg) && e.message.includes('npm install'));
    }
  });
});
