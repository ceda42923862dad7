// Scan planning over a synthetic table of 100,000 data files (metadata only): cold (empty
// manifest cache: every manifest read from disk and decoded) and warm (manifests cached),
// for a predicate the partition summaries can answer and one only column bounds can.
//
//   node --import tsx bench/iceberg/scan-planning.ts [--files 100000] [--per-manifest 1000] [--reps 5] [--only 'bounds only']
//
// The first plan in a process also pays for compiling avsc's decoders and for the JIT; run
// one predicate alone (--only) to see that cost.

import { existsSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ManifestCache } from '../../runtime/catalog/iceberg/manifest-cache.ts';
import type { ScanPredicate } from '../../runtime/catalog/iceberg/predicate.ts';
import { planTableScan, type IcebergScan } from '../../runtime/catalog/iceberg/scan.ts';
import { openIcebergTable } from '../../runtime/catalog/iceberg/table.ts';
import { SYNTHETIC_IDS_PER_FILE, writeSyntheticTable } from './synthetic-table.ts';

export const SCAN_PREDICATES: Record<string, ScanPredicate> = {
  // One day (partition summaries skip every other manifest), then an id range inside it.
  'partition + bounds': {
    op: 'and',
    args: [
      { op: '>=', column: 'ts', value: '2023-01-05 00:00:00+00' },
      { op: '<', column: 'ts', value: '2023-01-06 00:00:00+00' },
      { op: 'between', column: 'id', low: 4_000_000, high: 4_004_999 },
    ],
  },
  // Ids only: every manifest must be read; column bounds keep a handful of files.
  'bounds only': { op: 'between', column: 'id', low: 50_000_000, high: 50_000_000 + 5 * SYNTHETIC_IDS_PER_FILE - 1 },
};

export interface PlanningTimes {
  predicate: string;
  coldMs: number;
  warmMs: number;
  counts: IcebergScan['counts'];
}

/** Plan each predicate once cold (fresh cache, table re-opened) and `reps` times warm. */
export async function measurePlanning(tableDir: string, reps: number, only?: string): Promise<PlanningTimes[]> {
  const out: PlanningTimes[] = [];
  for (const [name, filter] of Object.entries(SCAN_PREDICATES)) {
    if (only !== undefined && name !== only) continue;
    const cache = new ManifestCache();
    const t0 = performance.now();
    const table = await openIcebergTable(tableDir);
    const cold = await planTableScan(table, { filter, cache });
    const coldMs = performance.now() - t0;
    const warm: number[] = [];
    for (let i = 0; i < reps; i++) {
      const t = performance.now();
      await planTableScan(table, { filter, cache });
      warm.push(performance.now() - t);
    }
    warm.sort((a, b) => a - b);
    out.push({ predicate: name, coldMs, warmMs: warm[Math.floor(warm.length / 2)], counts: cold.counts });
  }
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { files: { type: 'string', default: '100000' }, 'per-manifest': { type: 'string', default: '1000' }, reps: { type: 'string', default: '5' }, only: { type: 'string' } } });
  if (values.only !== undefined && !(values.only in SCAN_PREDICATES)) throw new Error(`--only must be one of: ${Object.keys(SCAN_PREDICATES).join(', ')}`);
  const files = Number(values.files);
  const perManifest = Number(values['per-manifest']);
  const dir = resolve('bench/.data', `iceberg-synthetic-${files}-${perManifest}`);
  if (!existsSync(join(dir, 'metadata', 'v1.metadata.json'))) {
    rmSync(dir, { recursive: true, force: true });
    const t = performance.now();
    writeSyntheticTable(dir, { files, filesPerManifest: perManifest });
    console.log(`generated ${files} files in ${Math.ceil(files / perManifest)} manifests under ${dir} in ${Math.round(performance.now() - t)} ms`);
  }
  for (const r of await measurePlanning(dir, Number(values.reps), values.only)) {
    console.log(`${r.predicate.padEnd(20)} cold ${r.coldMs.toFixed(1).padStart(8)} ms   warm ${r.warmMs.toFixed(1).padStart(7)} ms   ${JSON.stringify(r.counts)}`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
