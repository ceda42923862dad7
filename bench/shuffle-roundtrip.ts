// Producer -> consumer round trip of the shuffle layer (runtime/exec/shuffle*.ts) on one
// machine: P producer tasks hash-partition their share of R generated rows into N
// partitions through a local object store (or s3rver with --s3), then every partition is
// read back as a view and scanned. Prints one JSON line of timings, bytes, GETs and the
// index sizes. Not part of `npm run bench` (it measures one module, not the engine).
//
//   node --import tsx bench/shuffle-roundtrip.ts [rows=1000000] [producers=4] [partitions=8] [--s3]

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../runtime/engine/engine.ts';
import { readShufflePartition, writeShuffle, type ShuffleIndex } from '../runtime/exec/shuffle.ts';
import { LocalObjectStore } from '../runtime/storage/local-store.ts';
import type { ObjectStore } from '../runtime/storage/object-store.ts';
import { S3ObjectStore } from '../runtime/storage/s3-store.ts';
import { startS3rver, type TestS3 } from '../test/helpers/s3rver.ts';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const useS3 = process.argv.includes('--s3');
const rows = Number(args[0] ?? 1_000_000);
const producers = Number(args[1] ?? 4);
const partitions = Number(args[2] ?? 8);

const root = await mkdtemp(join(tmpdir(), 'puffindb-shuffle-bench-'));
const scratch = join(root, 'scratch');
let s3: TestS3 | undefined;
let store: ObjectStore;
if (useS3) {
  s3 = await startS3rver();
  store = new S3ObjectStore({ bucket: s3.bucket, prefix: 'shuffle/', client: s3.client });
} else {
  store = new LocalObjectStore(join(root, 'store'));
}
const engine = await Engine.create({ threads: 2, allowedDirectories: [scratch] });
const conn = await engine.connect();
try {
  await conn.run(`CREATE TABLE src AS SELECT i::BIGINT AS id, (i % 100003)::BIGINT AS k, 'name-' || i AS s,
    (i * 0.01)::DECIMAL(15,2) AS price, DATE '2000-01-01' + (i % 9000)::INTEGER AS d, i / 7.0 AS x FROM range(${rows}) r(i)`);
  let t = performance.now();
  const indexes: ShuffleIndex[] = [];
  for (let p = 0; p < producers; p++) {
    const w = await writeShuffle({
      conn, store, sourceSql: `SELECT * FROM src WHERE id % ${producers} = ${p}`, scratchDir: scratch, inlineLimitBytes: 0,
      partitioning: { kind: 'hash', keys: [{ expr: 'k', type: 'BIGINT' }], count: partitions }, queryId: 'bench', stageId: 's1', taskId: `t${p}`,
    });
    indexes.push(w.index);
  }
  const writeMs = performance.now() - t;
  const bytes = indexes.reduce((s, i) => s + i.totalBytes, 0);
  t = performance.now();
  let gets = 0;
  let readRows = 0;
  for (let q = 0; q < partitions; q++) {
    const r = await readShufflePartition({ conn, store, sources: { indexes, partition: q }, viewName: `v${q}`, scratchDir: scratch });
    const scanned = await conn.runAndReadAll(`SELECT count(*), sum(id), max(s), sum(price), max(d), sum(x) FROM v${q}`);
    readRows += Number(scanned.getRowsJson()[0][0]);
    gets += r.gets;
    await r.release();
  }
  const readMs = performance.now() - t;
  if (readRows !== rows) throw new Error(`read ${readRows} rows of ${rows}`);
  const indexJson = indexes.map((i) => JSON.stringify(i).length);
  console.log(JSON.stringify({
    store: useS3 ? 's3rver' : 'local', rows, producers, partitions, bytes, gets,
    writeMs: Math.round(writeMs), readMs: Math.round(readMs),
    writeMBps: +(bytes / 1e6 / (writeMs / 1000)).toFixed(1), readMBps: +(bytes / 1e6 / (readMs / 1000)).toFixed(1),
    rowsPerSecond: Math.round(rows / ((writeMs + readMs) / 1000)), indexBytesPerProducer: Math.max(...indexJson),
  }));
} finally {
  conn.closeSync();
  engine.close();
  await s3?.stop();
  await rm(root, { recursive: true, force: true });
}
