// How a view over Parquet files presents one column: cast to its declared type. One place,
// because every read of Parquet that user filters can reach (fragment inputs, partials,
// shuffle pieces) must present columns the same way.
//
// BLOB columns are also kept out of DuckDB's filter pushdown into the Parquet scan. DuckDB
// 1.5's reader probes a row group's Bloom filter with a BLOB constant's escaped text
// ('\x01\x02' as 8 characters) while writers (DuckDB's own included) hash the raw bytes, so
// `WHERE b = '\x01\x02'::BLOB` over a dictionary-encoded column with a Bloom filter skips
// every row group that holds the value and answers 0 rows. Concatenating the empty BLOB is
// the identity (NULL stays NULL) and is not pushed into the scan; range filters, which use
// min/max statistics, were never affected.

import { sqlIdent } from './quote.ts';
import type { Column } from '../catalog/types.ts';

/** `CAST(col AS type) AS col`, with BLOBs kept out of the scan's filter pushdown. */
export function readColumnSql(column: Column): string {
  return `${pushdownSafe(`CAST(${sqlIdent(column.name)} AS ${column.type})`, column.type)} AS ${sqlIdent(column.name)}`;
}

/** `expr` of DuckDB type `type`, kept out of the scan's filter pushdown when it is a BLOB. */
export function pushdownSafe(expr: string, type: string): string {
  return isBlob(type) ? `(${expr} || ''::BLOB)` : expr;
}

function isBlob(type: string): boolean {
  return /^\s*(BLOB|BYTEA|BINARY|VARBINARY)\s*$/i.test(type);
}
