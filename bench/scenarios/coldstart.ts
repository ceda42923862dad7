// `coldstart`: what a fresh worker Lambda container pays before its first answer, measured
// on the real bundle (stacks/bundle.ts, as deployed): module load of worker.mjs from the
// extracted zip, then the first fragment (which creates the DuckDB instance), then a second
// fragment on the same container for comparison. Each repetition is a fresh Node process.

import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FUNCTION_ENTRIES } from '../../stacks/artifacts.ts';
import { bundleEntry } from '../../stacks/bundle.ts';
import { skipped, summarize, type RunContext, type Scenario, type ScenarioResult, type Summary } from '../harness.ts';
import { ensureTpch, planTinyQuery } from '../data.ts';

const run = promisify(execFile);
const DESCRIPTION = 'Worker Lambda bundle (x86_64, built by stacks/bundle.ts) extracted and started in a fresh Node process per repetition: module load, first fragment (creates the DuckDB instance, then counts nation), and a second fragment on the warm container.';

const RUNNER = `import { performance } from 'node:perf_hooks';
const t0 = performance.now();
const m = await import(process.argv[2]);
const loadMs = performance.now() - t0;
const event = JSON.parse(process.argv[3]);
const fresh = () => ({ ...event, queryId: 'q' + Math.random().toString(36).slice(2, 10), deadline: Date.now() + 60000 });
let t = performance.now();
const first = await m.handler(fresh());
const firstMs = performance.now() - t;
t = performance.now();
await m.handler(fresh());
const warmMs = performance.now() - t;
console.log(JSON.stringify({ loadMs, firstMs, warmMs, rows: first.rows }));
`;

export interface ColdstartData { bundle: { unzippedBytes: number; zipBytes: number }; loadMs: Summary; firstFragmentMs: Summary; warmFragmentMs: Summary; initMs: Summary }

export const coldstartScenario: Scenario = {
  name: 'coldstart',
  async run(ctx: RunContext): Promise<ScenarioResult> {
    const entry = FUNCTION_ENTRIES.find((f) => f.name === 'worker');
    if (!entry) return skipped('coldstart', DESCRIPTION, 'stacks/artifacts.ts names no worker function');
    const reps = ctx.quick ? 3 : 7;
    const dir = join(ctx.dataDir, 'coldstart');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    ctx.log('  bundling the worker ...');
    const bundle = await bundleEntry(entry, { arch: 'x86_64', outDir: join(dir, 'zips') });
    const out = join(dir, 'worker');
    execFileSync('python3', ['-m', 'zipfile', '-e', bundle.zipPath, out]);
    const runner = join(dir, 'runner.mjs');
    writeFileSync(runner, RUNNER);
    const data = await ensureTpch(ctx.dataDir, 0.1, ctx.log);
    const plan = await planTinyQuery(ctx.dataDir, data);
    const event = JSON.stringify({ queryId: 'cold', fragment: plan.fragments[0], deadline: 0 });
    const samples: { loadMs: number; firstMs: number; warmMs: number }[] = [];
    for (let i = 0; i < reps; i++) {
      const home = join(dir, `home-${i}`);
      const { stdout } = await run(process.execPath, [runner, join(out, 'worker.mjs'), event], {
        timeout: 120_000,
        env: { ...process.env, PUFFINDB_HOME: home, PUFFINDB_THREADS: '2', PUFFINDB_WAREHOUSE: `file://${data.dir}/` },
      });
      const r = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as { loadMs: number; firstMs: number; warmMs: number; rows: number };
      if (r.rows !== 1) throw new Error(`the worker bundle's first fragment returned ${r.rows} rows, expected 1`);
      samples.push(r);
      rmSync(home, { recursive: true, force: true });
    }
    const d: ColdstartData = {
      bundle: { unzippedBytes: bundle.unzippedBytes, zipBytes: bundle.zipBytes },
      loadMs: summarize(samples.map((s) => s.loadMs)),
      firstFragmentMs: summarize(samples.map((s) => s.firstMs)),
      warmFragmentMs: summarize(samples.map((s) => s.warmMs)),
      initMs: summarize(samples.map((s) => s.loadMs + s.firstMs - s.warmMs)),
    };
    return {
      scenario: 'coldstart', status: 'ok', description: DESCRIPTION,
      headline: [
        `worker bundle: ${(bundle.unzippedBytes / 2 ** 20).toFixed(1)} MB unzipped, ${(bundle.zipBytes / 2 ** 20).toFixed(1)} MB zipped`,
        `module load ${d.loadMs.median.toFixed(0)} ms, first fragment ${d.firstFragmentMs.median.toFixed(0)} ms (incl. DuckDB instance), warm fragment ${d.warmFragmentMs.median.toFixed(0)} ms`,
        `init (module load + first fragment - warm fragment): ${d.initMs.median.toFixed(0)} ms`,
      ],
      limits: [
        'Local disk, files in the page cache: Lambda adds its own environment start (download and unzip of the package, runtime boot; a few hundred ms for a ~50 MB zip) that no local run can measure. The scale model adds an assumed figure for it.',
        'The fragment reads a local file; on Lambda the first fragment also opens S3 connections.',
      ],
      params: { reps, arch: 'x86_64' },
      data: d,
      chart: { title: 'Worker cold start: median ms', unit: 'ms', series: ['median'], groups: [
        { label: 'module load', values: [d.loadMs.median] },
        { label: 'first fragment', values: [d.firstFragmentMs.median] },
        { label: 'warm fragment', values: [d.warmFragmentMs.median] },
      ] },
    };
  },
};
