// Scan planning over a synthetic table of 100,000 data files (metadata only), with selective
// predicates. The pruning is asserted; planning times are printed, not asserted (a shared
// machine's timings are noise): `node --import tsx bench/iceberg/scan-planning.ts` measures.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { measurePlanning, SCAN_PREDICATES } from '../../../../bench/iceberg/scan-planning.ts';
import { SYNTHETIC_FIRST_DAY, writeSyntheticTable } from '../../../../bench/iceberg/synthetic-table.ts';
import { ManifestCache } from '../../../../runtime/catalog/iceberg/manifest-cache.ts';
import { planTableScan } from '../../../../runtime/catalog/iceberg/scan.ts';
import { openIcebergTable, type IcebergTable } from '../../../../runtime/catalog/iceberg/table.ts';
import { tempDir } from './fixtures.ts';

const FILES = 100_000;
const PER_MANIFEST = 1000;
const dir = tempDir('iceberg-100k');
let table: IcebergTable;

before(() => {
  const t = performance.now();
  writeSyntheticTable(dir.path, { files: FILES, filesPerManifest: PER_MANIFEST });
  console.log(`generated ${FILES} data files in ${FILES / PER_MANIFEST} manifests in ${Math.round(performance.now() - t)} ms`);
});
after(() => dir.remove());

describe('scan planning over 100,000 data files', () => {
  before(async () => {
    table = await openIcebergTable(dir.path);
  });

  test('a day and an id range: partition summaries skip 99 manifests, bounds keep 5 files', async () => {
    const scan = await planTableScan(table, { filter: SCAN_PREDICATES['partition + bounds'], cache: new ManifestCache() });
    assert.deepEqual(scan.counts, { manifestsTotal: 100, manifestsSkipped: 99, filesTotal: FILES, filesKept: 5, deleteFiles: 0, deleteFilesTotal: 0, rowsKept: 5000, bytesKept: 5 * 1_048_576 + 4000 + 4001 + 4002 + 4003 + 4004 });
    // 2023-01-05 is the fifth day: manifest 4 holds files 4000..4999; ids 4,000,000..4,004,999.
    assert.deepEqual(scan.dataFiles.map((d) => d.path.split('/').slice(-2).join('/')), [0, 1, 2, 3, 4].map((i) => `ts_day=${SYNTHETIC_FIRST_DAY + 4}/part-${4000 + i}.parquet`));
    assert.deepEqual(scan.dataFiles[0].partition, { ts_day: String(SYNTHETIC_FIRST_DAY + 4) });
    assert.deepEqual(scan.dataFiles[0].stats.id, { min: '4000000', max: '4000999', nulls: 0 });
    assert.equal(scan.snapshotId, '4611686018427387905');
  });

  test('an id range alone: every manifest is read, bounds keep 5 files', async () => {
    const scan = await planTableScan(table, { filter: SCAN_PREDICATES['bounds only'], cache: new ManifestCache() });
    assert.equal(scan.counts.manifestsSkipped, 0);
    assert.equal(scan.counts.filesKept, 5);
    assert.deepEqual(scan.dataFiles.map((d) => d.path.split('/').pop()), [50000, 50001, 50002, 50003, 50004].map((k) => `part-${k}.parquet`));
  });

  test('no predicate keeps every file', async () => {
    const scan = await planTableScan(table);
    assert.equal(scan.counts.filesKept, FILES);
    assert.equal(scan.counts.rowsKept, FILES * 1000);
  });

  test('planning times (printed, not asserted)', async () => {
    for (const r of await measurePlanning(dir.path, 3)) {
      console.log(`${FILES} files, ${r.predicate}: cold ${r.coldMs.toFixed(1)} ms, warm ${r.warmMs.toFixed(1)} ms (manifests skipped ${r.counts.manifestsSkipped}, files kept ${r.counts.filesKept})`);
      assert.equal(r.counts.filesKept, 5);
    }
  });
});
