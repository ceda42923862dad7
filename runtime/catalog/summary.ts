// What a listing shows of a table: its shape and size, not its files. One definition for
// every catalog and front end.

import type { Column, TableSummary } from './types.ts';

export interface SummarizableTable {
  name: string;
  kind: TableSummary['kind'];
  columns: readonly Column[];
  files: readonly { rowCount: number; sizeBytes: number }[];
  snapshotId: string;
}

export function tableSummary(t: SummarizableTable): TableSummary {
  return {
    name: t.name,
    kind: t.kind,
    columns: t.columns.map((c) => ({ ...c })),
    fileCount: t.files.length,
    rowCount: t.files.reduce((n, f) => n + f.rowCount, 0),
    sizeBytes: t.files.reduce((n, f) => n + f.sizeBytes, 0),
    snapshotId: t.snapshotId,
  };
}
