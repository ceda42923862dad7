// `cli`: what the `puffindb` command costs a user at the shell, each repetition a fresh
// process: `select 1` and TPC-H Q6 at SF 0.1 (lineitem added to a home of its own), the
// runtime compiled ahead of time (runtime/compiled.js) and through tsx, against an empty
// `node -e 0` and against DuckDB in-process answering Q6, interleaved in one run.

import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadTpchQueries } from '../../runtime/demo/tpch-queries.ts';
import { prepareCompiled } from '../../runtime/compiled.js';
import { measureInterleaved, type Contender, type RunContext, type Scenario, type ScenarioResult, type Summary } from '../harness.ts';
import { ensureTpch, openPlainDuckDB } from '../data.ts';

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'puffindb.js');
const DESCRIPTION = 'The puffindb command, a fresh process per repetition: `puffindb query "select 1"` and TPC-H Q6 at SF 0.1 over a home with lineitem added, with the runtime compiled ahead of time (runtime/compiled.js, the default) and through tsx (PUFFINDB_COMPILED=0), against `node -e 0` and DuckDB in-process answering Q6; interleaved.';

export interface CliData {
  timings: Record<string, Summary>;
  /** Medians over `node -e 0`'s. */
  overNode: Record<string, number>;
  /** Q6 through the command over Q6 in DuckDB in-process. */
  q6OverDuckdb: number;
}

export const cliScenario: Scenario = {
  name: 'cli',
  async run(ctx: RunContext): Promise<ScenarioResult> {
    const reps = ctx.quick ? 3 : 7;
    const data = await ensureTpch(ctx.dataDir, 0.1, ctx.log);
    const home = join(ctx.dataDir, 'homes', 'cli');
    rmSync(home, { recursive: true, force: true });
    mkdirSync(home, { recursive: true });
    const env = { ...process.env, PUFFINDB_HOME: home, PUFFINDB_WAREHOUSE: `file://${data.dir}/` };
    execFileSync(process.execPath, [BIN, 'table', 'add', 'lineitem', join(data.dir, 'lineitem')], { env, stdio: 'ignore' });
    await prepareCompiled();
    const q6 = (await loadTpchQueries()).find((q) => q.id === 'q06')!.sql;
    const duck = await openPlainDuckDB(data);
    const cmd = (args: string[], extra: NodeJS.ProcessEnv = {}) => async () => {
      await run(process.execPath, args, { env: { ...env, ...extra }, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
    };
    const tsx = { PUFFINDB_COMPILED: '0' };
    const contenders: Contender[] = [
      { name: 'node -e 0', run: cmd(['-e', '0']) },
      { name: 'select 1', run: cmd([BIN, 'query', 'select 1']) },
      { name: 'select 1 (tsx)', run: cmd([BIN, 'query', 'select 1'], tsx) },
      { name: 'Q6', run: cmd([BIN, 'query', q6]) },
      { name: 'Q6 (tsx)', run: cmd([BIN, 'query', q6], tsx) },
      { name: 'Q6 in DuckDB in-process', run: async () => { await duck.query(q6); } },
    ];
    let measured;
    try {
      measured = await measureInterleaved(contenders, { warmup: 1, reps });
    } finally {
      duck.close();
      rmSync(home, { recursive: true, force: true });
    }
    const t = measured.timings;
    const node = t['node -e 0'].median;
    const overNode = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v.median / node]));
    const d: CliData = { timings: t, overNode, q6OverDuckdb: t.Q6.median / t['Q6 in DuckDB in-process'].median };
    const ms = (k: string) => `${t[k].median.toFixed(0)} ms`;
    return {
      scenario: 'cli', status: 'ok', description: DESCRIPTION,
      headline: [
        `puffindb query "select 1": ${ms('select 1')} compiled, ${ms('select 1 (tsx)')} through tsx; ${overNode['select 1'].toFixed(1)}x and ${overNode['select 1 (tsx)'].toFixed(1)}x an empty node -e 0 (${ms('node -e 0')})`,
        `TPC-H Q6 at SF 0.1 through the command: ${ms('Q6')} compiled, ${ms('Q6 (tsx)')} through tsx; ${d.q6OverDuckdb.toFixed(1)}x DuckDB in-process (${ms('Q6 in DuckDB in-process')}, no process start)`,
      ],
      limits: [
        '2 cores shared with whatever else runs: the ratios in one run are the figure.',
        'Each command run is a new process that loads the runtime, opens the home, plans, starts what its query needs and exits; DuckDB in-process pays none of it.',
      ],
      params: { reps, warmup: 1, scale: 0.1 },
      data: d,
      chart: { title: 'puffindb command: median ms per run', unit: 'ms', series: ['median'], groups: Object.entries(t).map(([label, v]) => ({ label, values: [v.median] })) },
    };
  },
};
