// An in-memory Catalog for planner tests: tables are Parquet files, described (row counts,
// sizes, footer statistics) by the same reader the real catalog uses.

import type { Catalog, Column, TableSnapshot } from '../../runtime/catalog/types.ts';
import { readParquetFilesInfo } from '../../runtime/catalog/parquet-stats.ts';
import type { Engine } from '../../runtime/engine/engine.ts';

export class MemoryCatalog implements Catalog {
  readonly tables = new Map<string, TableSnapshot>();

  async listTables(): Promise<string[]> {
    return [...this.tables.keys()].sort();
  }

  async getTable(name: string): Promise<TableSnapshot | undefined> {
    return this.tables.get(name.toLowerCase());
  }

  set(snapshot: TableSnapshot): void {
    this.tables.set(snapshot.name.toLowerCase(), snapshot);
  }

  /** Register Parquet files as a table; `columns` is needed only when there are no files. */
  async addFiles(engine: Engine, name: string, paths: string[], columns?: Column[]): Promise<TableSnapshot> {
    const infos = await readParquetFilesInfo(engine, paths);
    const cols = columns ?? infos[0]?.columns;
    if (!cols) throw new Error('columns are required for an empty table');
    const snapshot: TableSnapshot = { name: name.toLowerCase(), kind: 'parquet', columns: cols, files: infos.map((i) => i.file), snapshotId: String(Date.now()) };
    this.set(snapshot);
    return snapshot;
  }
}
