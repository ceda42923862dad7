// An in-memory Catalog for planner tests: tables are Parquet files whose statistics are
// read with DuckDB's parquet_metadata, like the real catalog does.

import { statSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { Catalog, Column, ColumnStats, DataFile, TableSnapshot } from '../../runtime/catalog/types.ts';
import type { Engine } from '../../runtime/engine/engine.ts';
import { sqlString } from '../../runtime/sql/quote.ts';

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

  /** Register Parquet files as a table, reading columns and statistics with DuckDB. */
  async addFiles(engine: Engine, name: string, paths: string[], columns?: Column[]): Promise<TableSnapshot> {
    let cols = columns;
    if (!cols) {
      if (paths.length === 0) throw new Error('columns are required for an empty table');
      const d = await engine.query(`DESCRIBE SELECT * FROM read_parquet(${sqlString(paths[0])})`);
      cols = d.rows.map((r) => ({ name: String(r[0]), type: String(r[1]) }));
    }
    const files: DataFile[] = [];
    for (const path of paths) {
      const stats: Record<string, ColumnStats> = {};
      for (const c of cols) {
        const r = await engine.query(
          `SELECT min(TRY_CAST(stats_min_value AS ${c.type}))::VARCHAR, max(TRY_CAST(stats_max_value AS ${c.type}))::VARCHAR,
                  sum(stats_null_count)::BIGINT, bool_and(stats_min_value IS NOT NULL), sum(row_group_num_rows)::BIGINT
           FROM parquet_metadata(${sqlString(path)}) WHERE path_in_schema = ${sqlString(c.name)}`,
        );
        const [min, max, nulls, complete] = r.rows[0];
        stats[c.name] = { min: complete ? (min as string) : null, max: complete ? (max as string) : null, nulls: nulls === null ? null : Number(nulls) };
      }
      const count = await engine.query(`SELECT count(*) FROM read_parquet(${sqlString(path)})`);
      files.push({ uri: pathToFileURL(path).href, sizeBytes: statSync(path).size, rowCount: Number(count.rows[0][0]), stats });
    }
    const snapshot: TableSnapshot = { name: name.toLowerCase(), kind: 'parquet', columns: cols, files, snapshotId: String(Date.now()) };
    this.set(snapshot);
    return snapshot;
  }
}
