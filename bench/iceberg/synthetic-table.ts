// A synthetic Iceberg table of many data files, metadata only (the data files do not exist),
// for scan-planning tests and benchmarks. Partitioned by day(ts): each manifest holds one
// day's files, as daily appends produce. Ids grow with the file number, so a range of ids
// names a few files and only column bounds can find them.

import { writeFixtureTable, type FixtureFile, type FixtureManifest } from './fixture-writer.ts';

export const SYNTHETIC_FIRST_DAY = 19358; // 2023-01-01
export const SYNTHETIC_IDS_PER_FILE = 1000;
const MICROS_PER_DAY = 86_400_000_000n;

export interface SyntheticTableOptions {
  files: number;
  filesPerManifest: number;
}

/** Write the table under `dir`; returns the metadata file's path. */
export function writeSyntheticTable(dir: string, options: SyntheticTableOptions): string {
  const snapshotId = 4_611_686_018_427_387_905n; // past 2^53: exercises exact 63-bit ids
  const manifests: FixtureManifest[] = [];
  for (let start = 0, m = 0; start < options.files; start += options.filesPerManifest, m++) {
    const day = SYNTHETIC_FIRST_DAY + m;
    const dayStart = BigInt(day) * MICROS_PER_DAY;
    const files: FixtureFile[] = [];
    for (let k = start; k < Math.min(options.files, start + options.filesPerManifest); k++) {
      const offset = BigInt(k - start) * 60_000_000n;
      files.push({
        path: `data/ts_day=${day}/part-${k}.parquet`,
        partition: { 1000: day },
        recordCount: SYNTHETIC_IDS_PER_FILE,
        sizeBytes: 1_048_576 + k,
        lower: { 1: BigInt(k * SYNTHETIC_IDS_PER_FILE), 2: dayStart + offset, 3: 'apple', 4: 100n, 5: BigInt(k % 997), 6: 'a' },
        upper: { 1: BigInt(k * SYNTHETIC_IDS_PER_FILE + SYNTHETIC_IDS_PER_FILE - 1), 2: dayStart + offset + 59_999_999n, 3: 'zucchini', 4: 999_999n, 5: BigInt((k % 997) + 5000), 6: 'zzzz' },
        nullCounts: { 1: 0, 2: 0, 3: 3, 4: 0, 5: 0, 6: 250 },
        valueCounts: { 1: 1000, 2: 1000, 3: 1000, 4: 1000, 5: 1000, 6: 1000 },
      });
    }
    manifests.push({ content: 'data', sequenceNumber: BigInt(m + 1), addedSnapshotId: snapshotId, files });
  }
  return writeFixtureTable(dir, {
    schemas: [{
      schemaId: 0,
      fields: [
        { id: 1, name: 'id', type: 'long' },
        { id: 2, name: 'ts', type: 'timestamptz' },
        { id: 3, name: 'category', type: 'string' },
        { id: 4, name: 'amount', type: 'decimal(12,2)' },
        { id: 5, name: 'user_id', type: 'long' },
        { id: 6, name: 'note', type: 'string' },
      ],
    }],
    specs: [{ specId: 0, fields: [{ sourceId: 2, fieldId: 1000, name: 'ts_day', transform: 'day' }] }],
    snapshots: [{ snapshotId, sequenceNumber: BigInt(manifests.length), timestampMs: Date.UTC(2023, 3, 11), manifests }],
  });
}
