// A small multi-file table set for planner tests: `t` (6 files, with NULLs, decimals, dates,
// strings, doubles), `dim` (small, broadcastable), and `empty` (no files).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../../../runtime/engine/engine.ts';
import { Planner } from '../../../runtime/planner/planner.ts';
import { sqlString, sqlStringList } from '../../../runtime/sql/quote.ts';
import { MemoryCatalog } from '../../helpers/memory-catalog.ts';

export interface PlannerFixture {
  dir: string;
  engine: Engine;
  sandboxed: Engine;
  catalog: MemoryCatalog;
  planner(maxFragments?: number, broadcastLimitBytes?: number): Planner;
  close(): void;
}

export async function plannerFixture(): Promise<PlannerFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'puffin-planner-'));
  const engine = await Engine.create({ threads: 1 });
  const paths: string[] = [];
  for (let i = 0; i < 6; i++) {
    const p = join(dir, `t${i}.parquet`);
    paths.push(p);
    // File i holds ids [i*500, i*500+500): min/max statistics separate the files.
    await engine.exec(`COPY (
      SELECT ${i} * 500 + range AS id,
             (range % 7)::INTEGER AS g,
             CASE WHEN range % 11 = 0 THEN NULL ELSE (range * 1.25 + ${i})::DECIMAL(15,2) END AS d,
             CASE WHEN range % 5 = 0 THEN NULL ELSE range * 0.5 - 40 END AS f,
             'k' || (range % 13) AS s,
             DATE '2020-01-01' + (${i} * 60 + range % 60)::INTEGER AS dt,
             range % 3 = 0 AS b,
             CASE WHEN ${i} = 5 THEN NULL ELSE ${i} END AS nullable_i
      FROM range(500)) TO ${sqlString(p)} (FORMAT parquet)`);
  }
  const dimPath = join(dir, 'dim.parquet');
  await engine.exec(`COPY (SELECT range::INTEGER AS g, 'name' || range AS gname FROM range(7)) TO ${sqlString(dimPath)} (FORMAT parquet)`);
  const catalog = new MemoryCatalog();
  const t = await catalog.addFiles(engine, 't', paths);
  await catalog.addFiles(engine, 'dim', [dimPath]);
  catalog.set({ name: 'empty', kind: 'parquet', columns: t.columns, files: [], snapshotId: 'e' });
  // Plain DuckDB views over the same files: the reference answers.
  await engine.exec(`CREATE VIEW t AS SELECT * FROM read_parquet(${sqlStringList(paths)});
    CREATE VIEW dim AS SELECT * FROM read_parquet(${sqlString(dimPath)});
    CREATE VIEW empty AS SELECT * FROM t WHERE false;`);
  const sandboxed = await Engine.create({ threads: 1, allowedDirectories: [join(dir, 'sandbox')] });
  return {
    dir,
    engine,
    sandboxed,
    catalog,
    planner: (maxFragments = 3, broadcastLimitBytes = 1 << 20) => new Planner({ engine: sandboxed, catalog, maxFragments, broadcastLimitBytes }),
    close() {
      engine.close();
      sandboxed.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
