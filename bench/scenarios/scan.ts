// `scan`: Iceberg scan planning on synthetic tables of 1,000 / 10,000 / 100,000 data files
// (metadata only), cold (fresh manifest cache, table re-opened) and warm (manifests cached).
// The table generator and the measurement are the Iceberg helper's (bench/iceberg/); this
// scenario repeats them, summarises and charts them, and is skipped while they are absent.

import { existsSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { summarize, skipped, type RunContext, type Scenario, type ScenarioResult, type Summary } from '../harness.ts';

interface PlanningTimes { predicate: string; coldMs: number; warmMs: number; counts: unknown }
type MeasurePlanning = (tableDir: string, reps: number, only?: string) => Promise<PlanningTimes[]>;
type WriteSynthetic = (dir: string, options: { files: number; filesPerManifest: number }) => string;

const DESCRIPTION = 'Scan planning (manifest list + manifests read and pruned) on synthetic Iceberg tables of 1,000 / 10,000 / 100,000 data files, 1,000 files per manifest, partitioned by day: cold (fresh manifest cache, metadata re-read) and warm (manifests cached), for a predicate the partition summaries answer and one only column bounds can.';

async function load(): Promise<{ measure: MeasurePlanning; write: WriteSynthetic } | string> {
  const planning = resolve('bench/iceberg/scan-planning.ts');
  const synthetic = resolve('bench/iceberg/synthetic-table.ts');
  if (!existsSync(planning) || !existsSync(synthetic)) return 'the Iceberg scan planner and its synthetic-table generator (bench/iceberg/) are not available';
  try {
    const p = (await import(planning)) as Record<string, unknown>;
    const s = (await import(synthetic)) as Record<string, unknown>;
    if (typeof p.measurePlanning !== 'function' || typeof s.writeSyntheticTable !== 'function') return 'bench/iceberg/ does not export measurePlanning and writeSyntheticTable';
    return { measure: p.measurePlanning as MeasurePlanning, write: s.writeSyntheticTable as WriteSynthetic };
  } catch (err) {
    return `the Iceberg scan planner does not load: ${err instanceof Error ? err.message : String(err)}`;
  }
}

export interface ScanRow { files: number; predicate: string; cold: Summary; warm: Summary; counts: unknown }

export const scanScenario: Scenario = {
  name: 'scan',
  async run(ctx: RunContext): Promise<ScenarioResult> {
    const tools = await load();
    if (typeof tools === 'string') return skipped('scan', DESCRIPTION, tools);
    const sizes = [1_000, 10_000, 100_000];
    const perManifest = 1_000;
    const reps = ctx.quick ? 3 : 7;
    const rows: ScanRow[] = [];
    for (const files of sizes) {
      const dir = join(ctx.dataDir, `iceberg-synthetic-${files}-${perManifest}`);
      if (!existsSync(join(dir, 'metadata', 'v1.metadata.json'))) {
        rmSync(dir, { recursive: true, force: true });
        const t = performance.now();
        tools.write(dir, { files, filesPerManifest: perManifest });
        ctx.log(`  generated a ${files}-file table in ${Math.round(performance.now() - t)} ms`);
      }
      // Each call re-opens the table with a fresh cache (cold), then plans warm `reps` times.
      const cold: Record<string, number[]> = {};
      const warm: Record<string, number[]> = {};
      const counts: Record<string, unknown> = {};
      for (let r = 0; r < reps; r++) {
        for (const t of await tools.measure(dir, 3)) {
          (cold[t.predicate] ??= []).push(t.coldMs);
          (warm[t.predicate] ??= []).push(t.warmMs);
          counts[t.predicate] = t.counts;
        }
      }
      for (const predicate of Object.keys(cold)) {
        const row = { files, predicate, cold: summarize(cold[predicate]), warm: summarize(warm[predicate]), counts: counts[predicate] };
        rows.push(row);
        ctx.log(`  ${String(files).padStart(6)} files, ${predicate.padEnd(18)} cold ${row.cold.median.toFixed(1)} ms, warm ${row.warm.median.toFixed(2)} ms`);
      }
    }
    const worst100k = rows.filter((r) => r.files === 100_000);
    const coldMax = Math.max(...worst100k.map((r) => r.cold.median));
    const warmMax = Math.max(...worst100k.map((r) => r.warm.median));
    const predicates = [...new Set(rows.map((r) => r.predicate))];
    return {
      scenario: 'scan',
      status: 'ok',
      description: DESCRIPTION,
      headline: [
        `100,000 files, worst predicate: ${coldMax.toFixed(0)} ms cold (aim < 500 ms), ${warmMax.toFixed(1)} ms warm (aim < 50 ms)`,
        ...worst100k.map((r) => `100,000 files, ${r.predicate}: cold ${r.cold.median.toFixed(0)} ms, warm ${r.warm.median.toFixed(1)} ms`),
      ],
      limits: [
        'Metadata on local disk (page cache warm after the first repetition): on S3 a cold plan also pays one GET per manifest not skipped (about 20-50 ms each, overlapped by the planner\'s concurrency).',
        '"Cold" is a cold manifest cache in a process that has already planned once (JIT and Avro decoders compiled); the very first plan of a fresh process costs more.',
      ],
      params: { sizes, perManifest, reps },
      data: rows,
      chart: {
        title: 'Scan planning: median ms', unit: 'ms', log: true,
        series: predicates.flatMap((p) => [`${p} cold`, `${p} warm`]),
        groups: sizes.map((files) => ({ label: `${files} files`, values: predicates.flatMap((p) => { const r = rows.find((x) => x.files === files && x.predicate === p); return [r?.cold.median ?? null, r?.warm.median ?? null]; }) })),
      },
    };
  },
};
