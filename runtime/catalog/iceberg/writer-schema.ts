// The writer's side of Iceberg schemas and partition specs: DuckDB column types mapped to
// Iceberg types with fresh field ids, `PARTITIONED BY (...)` clauses turned into a partition
// spec, and both serialized back to the spec's JSON (Appendix C).
//
// Refused DuckDB types, and why (each refusal names the column and suggests a cast):
//   HUGEINT, UHUGEINT, UBIGINT, BIGNUM   values past 2^63-1 do not fit Iceberg's long
//   TIMESTAMP_NS, TIME_NS                 format v2 stores microseconds; nanoseconds would be lost
//   TIME WITH TIME ZONE                   Iceberg has no zoned time
//   INTERVAL                              Iceberg has no interval type
//   ENUM                                  Iceberg has no enum; the dictionary would be lost (CAST to VARCHAR)
//   UNION, BIT, VARIANT, GEOMETRY, NULL   no Iceberg equivalent
// Widened without loss: TINYINT/SMALLINT/UTINYINT/USMALLINT -> int, UINTEGER -> long,
// TIMESTAMP_S/_MS -> timestamp, JSON -> string, fixed-size ARRAY -> list.

import { DuckDBTypeId, type DuckDBType } from '@duckdb/node-api';
import type { DuckDBStructType } from '@duckdb/node-api';
import { PuffinError } from '../../errors.ts';
import type { PartitionField, PartitionSpec } from './metadata.ts';
import { parseTransform, transformResultType, transformToString, type Transform } from './transforms.ts';
import { isPrimitive, type IcebergSchema, type IcebergType, type NestedField, type PrimitiveType } from './types.ts';

/** Hands out field ids in order, starting after `last`. */
export class FieldIdAllocator {
  constructor(public last = 0) {}
  next(): number {
    return ++this.last;
  }
}

export interface DuckDBColumn {
  name: string;
  type: DuckDBType;
  /** NOT NULL in the table definition. */
  required?: boolean;
}

const REFUSED: Partial<Record<DuckDBTypeId, string>> = {
  [DuckDBTypeId.HUGEINT]: 'values past 2^63-1 do not fit Iceberg long; CAST to BIGINT or DECIMAL(38,0)',
  [DuckDBTypeId.UHUGEINT]: 'values past 2^63-1 do not fit Iceberg long; CAST to BIGINT or DECIMAL(38,0)',
  [DuckDBTypeId.UBIGINT]: 'values past 2^63-1 do not fit Iceberg long; CAST to BIGINT or DECIMAL(20,0)',
  [DuckDBTypeId.BIGNUM]: 'arbitrary-precision integers do not fit Iceberg long; CAST to DECIMAL(38,0)',
  [DuckDBTypeId.TIMESTAMP_NS]: 'Iceberg format v2 stores timestamps in microseconds, so nanoseconds would be lost; CAST to TIMESTAMP',
  [DuckDBTypeId.TIME_NS]: 'Iceberg format v2 stores times in microseconds; CAST to TIME',
  [DuckDBTypeId.TIME_TZ]: 'Iceberg has no time-with-time-zone type; CAST to TIME',
  [DuckDBTypeId.INTERVAL]: 'Iceberg has no interval type; store it as BIGINT microseconds or VARCHAR',
  [DuckDBTypeId.ENUM]: 'Iceberg has no enum type; CAST to VARCHAR',
  [DuckDBTypeId.UNION]: 'Iceberg has no union type; split it into columns or a STRUCT',
  [DuckDBTypeId.BIT]: 'Iceberg has no bit-string type; CAST to BLOB or VARCHAR',
  [DuckDBTypeId.VARIANT]: 'Iceberg format v2 has no variant type; CAST to VARCHAR (JSON)',
  [DuckDBTypeId.GEOMETRY]: 'Iceberg format v2 has no geometry type; CAST to BLOB (WKB)',
  [DuckDBTypeId.SQLNULL]: 'a column of only NULL has no type; CAST it to the type it should have',
};

function refuse(column: string, type: DuckDBType, why: string, table?: string): never {
  throw new PuffinError('unsupported', `${table ? `table '${table}': ` : ''}column '${column}' has DuckDB type ${type.toString()}, which Iceberg cannot store: ${why}`);
}

/** The Iceberg type of a DuckDB type, allocating ids for nested fields. */
export function icebergTypeOf(type: DuckDBType, column: string, ids: FieldIdAllocator, table?: string): IcebergType {
  const refused = REFUSED[type.typeId];
  if (refused) refuse(column, type, refused, table);
  switch (type.typeId) {
    case DuckDBTypeId.BOOLEAN: return { kind: 'boolean' };
    case DuckDBTypeId.TINYINT:
    case DuckDBTypeId.SMALLINT:
    case DuckDBTypeId.INTEGER:
    case DuckDBTypeId.UTINYINT:
    case DuckDBTypeId.USMALLINT: return { kind: 'int' };
    case DuckDBTypeId.BIGINT:
    case DuckDBTypeId.UINTEGER: return { kind: 'long' };
    case DuckDBTypeId.FLOAT: return { kind: 'float' };
    case DuckDBTypeId.DOUBLE: return { kind: 'double' };
    case DuckDBTypeId.DECIMAL: {
      const d = type as unknown as { width: number; scale: number };
      return { kind: 'decimal', precision: d.width, scale: d.scale };
    }
    case DuckDBTypeId.DATE: return { kind: 'date' };
    case DuckDBTypeId.TIME: return { kind: 'time' };
    case DuckDBTypeId.TIMESTAMP:
    case DuckDBTypeId.TIMESTAMP_S:
    case DuckDBTypeId.TIMESTAMP_MS: return { kind: 'timestamp' };
    case DuckDBTypeId.TIMESTAMP_TZ: return { kind: 'timestamptz' };
    case DuckDBTypeId.VARCHAR: return { kind: 'string' };
    case DuckDBTypeId.UUID: return { kind: 'uuid' };
    case DuckDBTypeId.BLOB: return { kind: 'binary' };
    case DuckDBTypeId.STRUCT: {
      const s = type as unknown as DuckDBStructType;
      const ids0 = s.entryNames.map(() => ids.next());
      return {
        kind: 'struct',
        fields: s.entryNames.map((name, i) => ({ id: ids0[i], name, required: false, type: icebergTypeOf(s.entryTypes[i], `${column}.${name}`, ids, table) })),
      };
    }
    case DuckDBTypeId.LIST:
    case DuckDBTypeId.ARRAY: {
      const elementId = ids.next();
      const element = icebergTypeOf((type as unknown as { valueType: DuckDBType }).valueType, `${column}.element`, ids, table);
      return { kind: 'list', elementId, elementRequired: false, element };
    }
    case DuckDBTypeId.MAP: {
      const m = type as unknown as { keyType: DuckDBType; valueType: DuckDBType };
      const keyId = ids.next();
      const valueId = ids.next();
      const key = icebergTypeOf(m.keyType, `${column}.key`, ids, table);
      const value = icebergTypeOf(m.valueType, `${column}.value`, ids, table);
      return { kind: 'map', keyId, key, valueId, valueRequired: false, value };
    }
    default:
      return refuse(column, type, 'no Iceberg equivalent', table);
  }
}

/** A schema for new columns: top-level ids first (1..n), nested ids after, as Iceberg's own writers number them. */
export function schemaFromDuckDB(columns: readonly DuckDBColumn[], table?: string, schemaId = 0): { schema: IcebergSchema; lastColumnId: number } {
  const seen = new Set<string>();
  for (const c of columns) {
    const key = c.name.toLowerCase();
    if (seen.has(key)) throw new PuffinError('bad_request', `${table ? `table '${table}': ` : ''}column '${c.name}' is defined twice`);
    seen.add(key);
  }
  const ids = new FieldIdAllocator(columns.length);
  const fields: NestedField[] = columns.map((c, i) => ({ id: i + 1, name: c.name, required: c.required === true, type: icebergTypeOf(c.type, c.name, ids, table) }));
  return { schema: { schemaId, fields, identifierFieldIds: [] }, lastColumnId: ids.last };
}

// ---------------------------------------------------------------------------------------
// PARTITIONED BY (col, bucket(16, col), truncate(4, col), year(col), month(col), day(col), hour(col))

export interface PartitionTerm {
  column: string;
  transform: Transform;
}

function unquote(ident: string): string {
  const t = ident.trim();
  if (t.startsWith('"') && t.endsWith('"')) return t.slice(1, -1).replace(/""/g, '"');
  return t;
}

/** Split on commas outside parentheses and double quotes. */
export function splitTopLevel(text: string, sep = ','): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote: string | null = null;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = null;
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') depth--;
    else if (c === sep && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts.map((p) => p.trim()).filter((p) => p.length > 0);
}

/** Parse the inside of `PARTITIONED BY ( ... )`. */
export function parsePartitionTerms(text: string): PartitionTerm[] {
  return splitTopLevel(text).map((term) => {
    const call = /^([a-z_]+)\s*\(([\s\S]*)\)$/i.exec(term);
    if (!call) return { column: unquote(term), transform: { kind: 'identity' } };
    const fn = call[1].toLowerCase();
    const args = splitTopLevel(call[2]);
    const numberArg = (): number => {
      const n = Number(args[0]);
      if (args.length !== 2 || !Number.isInteger(n) || n <= 0) throw new PuffinError('bad_request', `partition term '${term}': ${fn} takes (N, column) with a positive integer N`);
      return n;
    };
    if (fn === 'bucket') return { column: unquote(args[1]), transform: { kind: 'bucket', n: numberArg() } };
    if (fn === 'truncate') return { column: unquote(args[1]), transform: { kind: 'truncate', width: numberArg() } };
    if (['year', 'month', 'day', 'hour', 'identity', 'void', 'years', 'months', 'days', 'hours'].includes(fn)) {
      if (args.length !== 1) throw new PuffinError('bad_request', `partition term '${term}': ${fn} takes one column`);
      return { column: unquote(args[0]), transform: parseTransform(fn.replace(/s$/, '')) };
    }
    throw new PuffinError('bad_request', `partition term '${term}': unknown transform '${fn}' (use identity, bucket, truncate, year, month, day or hour)`);
  });
}

/** A partition spec (id 0, field ids from 1000) over `schema`, checking each transform applies. */
export function partitionSpecFor(schema: IcebergSchema, terms: readonly PartitionTerm[], table?: string): PartitionSpec {
  const names = new Set<string>();
  const fields: PartitionField[] = terms.map((t, i) => {
    const source = schema.fields.find((f) => f.name === t.column) ?? schema.fields.find((f) => f.name.toLowerCase() === t.column.toLowerCase());
    const where = table ? `table '${table}': ` : '';
    if (!source) throw new PuffinError('bad_request', `${where}partition column '${t.column}' is not a column of the table (columns: ${schema.fields.map((f) => f.name).join(', ')})`);
    if (!isPrimitive(source.type) || transformResultType(t.transform, source.type) === undefined) {
      throw new PuffinError('bad_request', `${where}cannot partition by ${transformToString(t.transform)} of column '${source.name}' (type ${source.type.kind})`);
    }
    // Iceberg's own naming: id_bucket, name_trunc, ts_day.
    const suffix = t.transform.kind === 'identity' ? '' : t.transform.kind === 'truncate' ? '_trunc' : `_${t.transform.kind}`;
    let name = `${source.name}${suffix}`;
    while (names.has(name)) name = `${name}_${i}`;
    names.add(name);
    return { sourceId: source.id, fieldId: 1000 + i, name, transform: t.transform };
  });
  return { specId: 0, fields };
}

/** The partition value type of each field of a spec. */
export function partitionTypes(schema: IcebergSchema, spec: PartitionSpec): PrimitiveType[] {
  return spec.fields.map((f) => {
    const source = schema.fields.find((x) => x.id === f.sourceId);
    const type = source && isPrimitive(source.type) ? transformResultType(f.transform, source.type) : undefined;
    if (!type) throw new PuffinError('bad_request', `partition field '${f.name}' has no usable source column (field id ${f.sourceId})`);
    return type;
  });
}

// ---------------------------------------------------------------------------------------
// Appendix C JSON

export function typeToJson(type: IcebergType): unknown {
  switch (type.kind) {
    case 'decimal': return `decimal(${type.precision}, ${type.scale})`;
    case 'fixed': return `fixed[${type.length}]`;
    case 'struct': return { type: 'struct', fields: type.fields.map(fieldToJson) };
    case 'list': return { type: 'list', 'element-id': type.elementId, element: typeToJson(type.element), 'element-required': type.elementRequired };
    case 'map': return { type: 'map', 'key-id': type.keyId, key: typeToJson(type.key), 'value-id': type.valueId, value: typeToJson(type.value), 'value-required': type.valueRequired };
    default: return type.kind;
  }
}

function fieldToJson(f: NestedField): Record<string, unknown> {
  return { id: f.id, name: f.name, required: f.required, type: typeToJson(f.type), ...(f.doc !== undefined ? { doc: f.doc } : {}) };
}

export function schemaToJson(schema: IcebergSchema): Record<string, unknown> {
  return {
    type: 'struct',
    'schema-id': schema.schemaId,
    ...(schema.identifierFieldIds.length ? { 'identifier-field-ids': schema.identifierFieldIds } : {}),
    fields: schema.fields.map(fieldToJson),
  };
}

export function specToJson(spec: PartitionSpec): Record<string, unknown> {
  return { 'spec-id': spec.specId, fields: partitionFieldsToJson(spec.fields) };
}

export function partitionFieldsToJson(fields: readonly PartitionField[]): Record<string, unknown>[] {
  return fields.map((f) => ({ name: f.name, transform: transformToString(f.transform), 'source-id': f.sourceId, 'field-id': f.fieldId }));
}
