// Shared by the Iceberg tests: where the real tables written by Spark live (read in place,
// never copied), and scratch directories.

import avro from 'avsc';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { FilePointerStore } from '../../../../runtime/catalog/iceberg/file-pointer-store.ts';
import { localTableIO } from '../../../../runtime/catalog/iceberg/writer-io.ts';
import type { WritePlannerContext } from '../../../../runtime/planner/write-planner.ts';

/** ../shared/fixtures/iceberg relative to the repository root, found from this file. */
export const FIXTURES = fileURLToPath(new URL('../../../../../shared/fixtures/iceberg/', import.meta.url));

export const LINEITEM = join(FIXTURES, 'lineitem_iceberg');
export const MYTABLE = join(FIXTURES, 'equality_deletes/warehouse/mydb/mytable');
export const MYTABLE_PARTITIONED = join(FIXTURES, 'equality_deletes/warehouse/mydb/mytable_partitioned');
export const PARTITION_INTEGER = join(FIXTURES, 'partition_integer');
export const NULL_STATS = join(FIXTURES, 'null_stats/default/test_nulls');

export function tempDir(prefix: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), `puffin-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/**
 * An independent decode of an Avro file, for checking the reader against: avsc's own
 * streaming file decoder with longs through LongType.__with, none of the reader's code.
 */
export async function rawRecords(path: string): Promise<{ records: Record<string, unknown>[]; schema: unknown }> {
  const longType = avro.types.LongType.__with({
    fromBuffer: (b: Buffer) => b.readBigInt64LE(0),
    toBuffer: (n: bigint) => {
      const b = Buffer.alloc(8);
      b.writeBigInt64LE(n);
      return b;
    },
    fromJSON: BigInt,
    toJSON: Number,
    isValid: (n: unknown) => typeof n === 'bigint',
    compare: (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0),
  });
  return new Promise((resolve, reject) => {
    const records: Record<string, unknown>[] = [];
    let schema: unknown;
    const parseHook = (s: unknown): avro.Type => {
      schema = s;
      return avro.Type.forSchema(s as avro.Schema, { wrapUnions: false, registry: { long: longType } as never });
    };
    avro
      .createFileDecoder(path, { parseHook } as never)
      .on('data', (r: Record<string, unknown>) => records.push(r))
      .on('end', () => resolve({ records, schema }))
      .on('error', reject);
  });
}

/**
 * The writer's context for SQL writes in one process: a temporary directory (pointers,
 * staging, warehouse), an in-memory DuckDB and its connection. `close` removes it all.
 */
export interface WriterFixture {
  dir: string;
  conn: DuckDBConnection;
  ctx: WritePlannerContext;
  close(): Promise<void>;
}

export async function writerFixture(prefix: string): Promise<WriterFixture> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const instance = await DuckDBInstance.create(':memory:');
  const conn = await instance.connect();
  const ctx: WritePlannerContext = { conn, store: new FilePointerStore(join(dir, 'pointers')), io: localTableIO(), stagingDir: join(dir, 'staging'), warehouseUri: pathToFileURL(join(dir, 'warehouse')).href };
  return {
    dir, conn, ctx,
    close: async () => {
      conn.closeSync();
      instance.closeSync();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
