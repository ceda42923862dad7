// A child process of the Iceberg concurrency and crash tests: a writer with its own DuckDB.
//  - mode 'append': commits `appends` appends of `rows` rows tagged (writer, seq) and prints
//    {"writer", "commits": [{seq, snapshotId, attempts}]} as JSON.
//  - mode 'crash': writes one append's data files, prints READY, and waits to be killed
//    before it commits (the crash-safety test SIGKILLs it there).

import { DuckDBInstance } from '@duckdb/node-api';
import { FilePointerStore } from '../../runtime/catalog/iceberg/file-pointer-store.ts';
import type { PointerStore } from '../../runtime/catalog/iceberg/pointer-store.ts';
import { RedisPointerStore } from '../../runtime/catalog/iceberg/redis-pointer-store.ts';
import { loadTable } from '../../runtime/catalog/iceberg/commit.ts';
import { localTableIO } from '../../runtime/catalog/iceberg/writer-io.ts';
import { writeDataFiles } from '../../runtime/catalog/iceberg/writer-data.ts';
import { appendRows } from '../../runtime/catalog/iceberg/writer.ts';

export interface WriterChildConfig {
  store: { kind: 'file'; dir: string } | { kind: 'redis'; url: string; key: string };
  table: string;
  warehouseUri: string;
  stagingDir: string;
  writer: number;
  mode: 'append' | 'crash';
  appends: number;
  rows: number;
}

const config = JSON.parse(process.argv[2]) as WriterChildConfig;
const store: PointerStore = config.store.kind === 'file' ? new FilePointerStore(config.store.dir) : RedisPointerStore.connect(config.store.url, { key: config.store.key });
const instance = await DuckDBInstance.create(':memory:', { threads: '1' });
const conn = await instance.connect();
const io = localTableIO();
const ctx = { conn, store, io, stagingDir: config.stagingDir, warehouseUri: config.warehouseUri };
const rowsSql = (seq: number): string => `SELECT ${config.writer} AS w, ${seq} AS seq, k::INTEGER AS k FROM range(${config.rows}) r(k)`;

if (config.mode === 'crash') {
  const table = await loadTable(store, config.table, io);
  const written = await writeDataFiles({ conn, table: config.table, metadata: table.metadata, selectSql: rowsSql(0), stagingDir: config.stagingDir, io });
  process.stdout.write(`READY ${JSON.stringify(written.files.map((f) => f.path))}\n`);
  setInterval(() => undefined, 1000);
} else {
  const commits: { seq: number; snapshotId: string | null; attempts: number | undefined }[] = [];
  for (let seq = 0; seq < config.appends; seq++) {
    const r = await appendRows(ctx, config.table, rowsSql(seq));
    commits.push({ seq, snapshotId: r.snapshotId, attempts: r.attempts });
  }
  process.stdout.write(JSON.stringify({ writer: config.writer, commits }));
  conn.closeSync();
  instance.closeSync();
  if (store instanceof RedisPointerStore) await store.close();
}
