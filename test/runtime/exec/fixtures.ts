// Shared fixtures of the execution tests: a throwaway local warehouse with small Parquet
// files, settings pointing at it, and hand-written plans (the planner is not under test).

import { mkdtemp, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Engine, type QueryResult } from '../../../runtime/engine/engine.ts';
import { loadSettings, toRootUrl, type Settings } from '../../../runtime/settings.ts';
import { sqlString } from '../../../runtime/sql/quote.ts';
import type { FileRef, Fragment, Plan } from '../../../runtime/planner/plan.ts';
import type { PartialLocation } from '../../../runtime/exec/invoker.ts';
import { resolveUri } from '../../../runtime/storage/open.ts';

export interface Sandbox {
  root: string;
  warehouseDir: string;
  settings: Settings;
  /** An unsandboxed DuckDB for writing fixtures and reading partials back. */
  scratchEngine: Engine;
  cleanup(): Promise<void>;
}

export async function makeSandbox(overrides: Partial<Settings> = {}): Promise<Sandbox> {
  const root = await mkdtemp(join(tmpdir(), 'puffindb-exec-'));
  const warehouseDir = join(root, 'warehouse');
  await mkdir(warehouseDir, { recursive: true });
  const warehouse = toRootUrl(warehouseDir);
  const settings = loadSettings(
    {},
    {
      home: root,
      warehouse,
      shuffleUrl: toRootUrl(join(root, 'shuffle')),
      cacheDir: join(root, 'cache'),
      threads: 1,
      workers: 2,
      ...overrides,
    },
  );
  const scratchEngine = await Engine.create({ threads: 1 });
  return {
    root,
    warehouseDir,
    settings,
    scratchEngine,
    async cleanup() {
      scratchEngine.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** Write the rows of `selectSql` as a Parquet file under the warehouse; returns its FileRef. */
export async function writeParquet(sandbox: Sandbox, name: string, selectSql: string): Promise<FileRef> {
  const path = join(sandbox.warehouseDir, name);
  await mkdir(join(path, '..'), { recursive: true });
  const copied = await sandbox.scratchEngine.query(`COPY (${selectSql}) TO ${sqlString(path)} (FORMAT parquet)`);
  return { uri: pathToFileURL(path).href, sizeBytes: (await stat(path)).size, rowCount: Number(copied.rows[0][0]) };
}

/** Read a partial back, wherever it was delivered. */
export async function readPartial(sandbox: Sandbox, partial: PartialLocation, sql = 'SELECT * FROM p'): Promise<QueryResult> {
  let bytes: Uint8Array;
  if (partial.kind === 'inline') bytes = Buffer.from(partial.parquetBase64, 'base64');
  else if (partial.kind === 'shuffle') throw new Error('a shuffle output is read by partition (runtime/exec/shuffle-read.ts), not as one partial');
  else {
    const { store, key } = resolveUri(partial.uri);
    bytes = await store.get(key);
  }
  const path = join(sandbox.root, `partial-${Math.random().toString(36).slice(2)}.parquet`);
  await writeFile(path, bytes);
  try {
    return await sandbox.scratchEngine.query(sql.replace(/\bp\b/, `read_parquet(${sqlString(path)})`));
  } finally {
    await rm(path, { force: true });
  }
}

/** Table t(g VARCHAR, x INTEGER) in `count` files of `rowsPerFile` rows; x = the global row number. */
export async function writeTable(sandbox: Sandbox, count: number, rowsPerFile: number): Promise<FileRef[]> {
  const files: FileRef[] = [];
  for (let i = 0; i < count; i++) {
    const from = i * rowsPerFile;
    files.push(
      await writeParquet(
        sandbox,
        `t/part-${i}.parquet`,
        `SELECT chr(97 + (n % 3)::INTEGER) AS g, n::INTEGER AS x FROM range(${from}, ${from + rowsPerFile}) r(n)`,
      ),
    );
  }
  return files;
}

export const T_COLUMNS = [
  { name: 'g', type: 'VARCHAR' },
  { name: 'x', type: 'INTEGER' },
];

/** A fragment over table t with the given files. */
export function tFragment(id: string, files: FileRef[], sql: string, output = 'partials'): Fragment {
  return { id, output, inputs: [{ view: 't', table: 't', columns: T_COLUMNS, files }], sql };
}

/**
 * `SELECT g, sum(x), count(*) FROM t GROUP BY g ORDER BY g` by hand: one fragment per file
 * computes partial sums and counts, the reduce step adds them up.
 */
export function sumByGroupPlan(files: FileRef[]): Plan {
  const fragments = files.map((f, i) => tFragment(`f${i}`, [f], 'SELECT g, sum(x) AS s, count(*) AS n FROM t GROUP BY g'));
  return {
    shape: 'scan-aggregate',
    sql: 'SELECT g, sum(x) AS total, count(*) AS n FROM t GROUP BY g ORDER BY g',
    output: [
      { name: 'g', type: 'VARCHAR' },
      { name: 'total', type: 'HUGEINT' },
      { name: 'n', type: 'BIGINT' },
    ],
    fragments,
    reduce: {
      views: [
        {
          name: 'partials',
          columns: [
            { name: 'g', type: 'VARCHAR' },
            { name: 's', type: 'HUGEINT' },
            { name: 'n', type: 'BIGINT' },
          ],
        },
      ],
      sql: 'SELECT g, sum(s) AS total, sum(n)::BIGINT AS n FROM partials GROUP BY g ORDER BY g',
    },
    scans: [],
    join: null,
    reason: 'hand-written test plan',
  };
}

/** The same answer computed directly over all files. */
export async function expectedSumByGroup(sandbox: Sandbox, files: FileRef[]): Promise<QueryResult> {
  const paths = files.map((f) => sqlString(fileURLToPath(f.uri)));
  return sandbox.scratchEngine.query(
    `SELECT g, sum(x)::HUGEINT AS total, count(*)::BIGINT AS n FROM read_parquet([${paths.join(', ')}]) GROUP BY g ORDER BY g`,
  );
}

/** A fragment that reads nothing and burns CPU for a while (about `millions` × 5 ms on one thread). */
export function slowFragment(id: string, millions: number, output = 'partials'): Fragment {
  return { id, output, inputs: [], sql: `SELECT sum(hash(i))::VARCHAR AS h FROM range(${Math.round(millions * 1e6)}) r(i)` };
}
