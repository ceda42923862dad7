// Fixed-size arrays (DuckDB `FLOAT[128]`, `DOUBLE[n]`, any primitive `T[n]`) in Iceberg tables.
//
// Iceberg has no fixed-size list: a `FLOAT[128]` column is stored as `list<float>`, and read
// back it would be `FLOAT[]`, on which DuckDB's array_distance / array_cosine_distance /
// array_inner_product do not bind. The size is kept in the table's properties, one key per
// top-level column, by field id (ids survive renames):
//
//   puffindb.array-size.<field-id> = <n>
//
// PuffinDB sets it when it creates a table or adds a column of an ARRAY type; a table written
// by another engine gets it with `ALTER TABLE t ALTER COLUMN v SET DATA TYPE FLOAT[128]` (a
// metadata-only change: the files keep their lists) or `ALTER TABLE t SET
// ('puffindb.array-size.<id>' = '128')`. Scan planning then reads the column as `T[n]`
// (read_parquet's schema casts each list; a list of another length fails the read with
// DuckDB's conversion error), and writes cast through `T[n]` so that a row of another length
// is refused instead of written. Other engines ignore the property and see `list<float>`.

import { DuckDBTypeId, type DuckDBType } from '@duckdb/node-api';
import { PuffinError } from '../../errors.ts';
import type { IcebergFieldRead } from '../types.ts';
import { isPrimitive, toDuckDBType, type IcebergSchema, type NestedField } from './types.ts';

export const ARRAY_SIZE_PREFIX = 'puffindb.array-size.';
/** DuckDB's bound on an ARRAY's size. */
const MAX_ARRAY_SIZE = 100_000;

/** The size of a DuckDB fixed-size ARRAY type of a primitive element, else undefined. */
export function duckArraySize(type: DuckDBType): number | undefined {
  if (type.typeId !== DuckDBTypeId.ARRAY) return undefined;
  const t = type as unknown as { valueType: DuckDBType; length: number };
  const element = t.valueType.typeId;
  if (element === DuckDBTypeId.ARRAY || element === DuckDBTypeId.LIST || element === DuckDBTypeId.STRUCT || element === DuckDBTypeId.MAP) return undefined;
  return t.length;
}

/** The properties recording the sizes of the top-level fixed-size ARRAY columns of a new table. */
export function arraySizeProperties(columns: readonly { name: string; type: DuckDBType }[], schema: IcebergSchema): Record<string, string> {
  const out: Record<string, string> = {};
  columns.forEach((c, i) => {
    const size = duckArraySize(c.type);
    const field = schema.fields[i];
    if (size !== undefined && field && field.type.kind === 'list') out[`${ARRAY_SIZE_PREFIX}${field.id}`] = String(size);
  });
  return out;
}

/** The recorded size of a top-level field, if the table has one for it. */
export function arraySizeOf(properties: Readonly<Record<string, string>>, field: NestedField): number | undefined {
  if (field.type.kind !== 'list' || !isPrimitive(field.type.element)) return undefined;
  const raw = properties[`${ARRAY_SIZE_PREFIX}${field.id}`];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  return Number.isSafeInteger(n) && n > 0 && n <= MAX_ARRAY_SIZE ? n : undefined;
}

/** The DuckDB type a field is read and written as: `T[n]` for a sized list, else its own. */
export function sizedDuckDBType(properties: Readonly<Record<string, string>>, field: NestedField): string {
  const size = arraySizeOf(properties, field);
  if (size === undefined || field.type.kind !== 'list') return toDuckDBType(field.type);
  return `${toDuckDBType(field.type.element)}[${size}]`;
}

/** Scan planning's hook: the top-level read mappings of sized list columns read as `T[n]`. */
export function applyArraySizes(fields: IcebergFieldRead[], schema: IcebergSchema, properties: Readonly<Record<string, string>>): void {
  if (!Object.keys(properties).some((k) => k.startsWith(ARRAY_SIZE_PREFIX))) return;
  const byId = new Map(schema.fields.map((f) => [f.id, f]));
  for (const m of fields) {
    const f = byId.get(m.fieldId);
    if (f && arraySizeOf(properties, f) !== undefined) m.type = sizedDuckDBType(properties, f);
  }
}

/** The write cast of a column: through `T[n]` for a sized list (so a wrong length is refused), then to the stored list. */
export function writeCastSql(expr: string, field: NestedField, properties: Readonly<Record<string, string>>): string {
  const stored = toDuckDBType(field.type);
  if (arraySizeOf(properties, field) === undefined) return `CAST(${expr} AS ${stored})`;
  return `CAST(CAST(${expr} AS ${sizedDuckDBType(properties, field)}) AS ${stored})`;
}

/**
 * Checks `puffindb.array-size.*` keys set by ALTER TABLE ... SET: each names a top-level list
 * column of a primitive element by field id and gives a size from 1 to 100000.
 */
export function checkArraySizeProperties(table: string, schema: IcebergSchema, properties: Readonly<Record<string, string>>): void {
  for (const [k, v] of Object.entries(properties)) {
    if (!k.startsWith(ARRAY_SIZE_PREFIX)) continue;
    const id = Number(k.slice(ARRAY_SIZE_PREFIX.length));
    const field = schema.fields.find((f) => f.id === id);
    if (!field) throw new PuffinError('bad_request', `table property '${k}': table '${table}' has no top-level column with field id ${k.slice(ARRAY_SIZE_PREFIX.length)} (${schema.fields.map((f) => `${f.name}: ${f.id}`).join(', ')})`);
    if (field.type.kind !== 'list' || !isPrimitive(field.type.element)) throw new PuffinError('bad_request', `table property '${k}': column '${field.name}' is ${toDuckDBType(field.type)}, not a list of a primitive type, so it has no array size`);
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n <= 0 || n > MAX_ARRAY_SIZE) throw new PuffinError('bad_request', `table property '${k}' must be an integer from 1 to ${MAX_ARRAY_SIZE}, got '${v}'`);
  }
}
