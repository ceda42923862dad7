// A Delta table's schema (metaData.schemaString, protocol "Schema Serialization Format") as
// DuckDB columns and the field-id read schema the worker's reader takes (types.ts
// IcebergFieldRead: Delta tables are read by the Iceberg read path, catalog/iceberg/read.ts),
// partition values as typed SQL literals (protocol "Partition Value Serialization"), and
// `stats` JSON as the planner's per-file statistics.
//
// How columns are matched in the Parquet files, by column mapping mode:
//   none: by name. Field ids are negative (never a Parquet field id), so read.ts reads by
//         the `names` only, even from a file that happens to carry field ids.
//   name: by physical name (`delta.columnMapping.physicalName`); files that carry field ids
//         (Spark writes `delta.columnMapping.id` as the Parquet field id) by that id.
//   id:   by field id; a file without ids by physical name.
// Partition columns are never read from the files: their value is the log's
// (`partitionValues`), whatever a file or a hive-style directory says (negative ids, no names).

import { PuffinError } from '../../errors.ts';
import { sqlIdent } from '../../sql/quote.ts';
import type { Column, ColumnStats, IcebergFieldRead } from '../types.ts';

export type ColumnMappingMode = 'none' | 'name' | 'id';

export interface DeltaField {
  name: string;
  type: unknown;
  nullable?: boolean;
  metadata?: Record<string, unknown>;
}

/** A top-level column: its DuckDB type, physical name and what the reader needs. */
export interface DeltaColumn {
  name: string;
  /** Name in the Parquet files and in `partitionValues` / `stats` keys. */
  physicalName: string;
  type: string;
  /** The Delta primitive type name ('long', 'decimal(10,2)', ...); undefined for nested. */
  primitive?: string;
  partition: boolean;
  field: IcebergFieldRead;
}

const PRIMITIVES: Record<string, string> = {
  string: 'VARCHAR',
  long: 'BIGINT',
  integer: 'INTEGER',
  short: 'SMALLINT',
  byte: 'TINYINT',
  float: 'FLOAT',
  double: 'DOUBLE',
  boolean: 'BOOLEAN',
  binary: 'BLOB',
  date: 'DATE',
  timestamp: 'TIMESTAMPTZ',
  timestamp_ntz: 'TIMESTAMP',
};

const DECIMAL = /^decimal\(\s*(\d+)\s*,\s*(-?\d+)\s*\)$/;

function bad(message: string): PuffinError {
  return new PuffinError('bad_request', message);
}

function primitiveType(t: string, where: string): string {
  const p = PRIMITIVES[t];
  if (p) return p;
  const m = DECIMAL.exec(t);
  if (m) {
    const precision = Number(m[1]);
    const scale = Number(m[2]);
    if (precision < 1 || precision > 38 || scale < 0 || scale > precision) throw new PuffinError('unsupported', `${where}: type ${t} is outside DuckDB's DECIMAL (precision 1..38, scale 0..precision)`);
    return `DECIMAL(${precision},${scale})`;
  }
  if (t === 'variant') throw new PuffinError('unsupported', `${where}: type variant (reader feature variantType) is not supported`);
  throw new PuffinError('unsupported', `${where}: Delta type '${t}' is not supported`);
}

interface Mapping {
  mode: ColumnMappingMode;
}

function physicalNameOf(f: DeltaField, m: Mapping, where: string): string {
  if (m.mode === 'none') return f.name;
  const p = f.metadata?.['delta.columnMapping.physicalName'];
  if (typeof p !== 'string' || p === '') throw bad(`${where}: column mapping mode '${m.mode}' but field '${f.name}' has no delta.columnMapping.physicalName`);
  return p;
}

function fieldIdOf(f: DeltaField, m: Mapping, where: string): number {
  const id = f.metadata?.['delta.columnMapping.id'];
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) throw bad(`${where}: column mapping mode '${m.mode}' but field '${f.name}' has no delta.columnMapping.id`);
  return id;
}

/** The DuckDB type of a Delta type; nested fields under column mapping get read children. */
function convert(type: unknown, m: Mapping, where: string, nextId: () => number): { type: string; children?: IcebergFieldRead[]; primitive?: string } {
  if (typeof type === 'string') return { type: primitiveType(type, where), primitive: type };
  if (typeof type !== 'object' || type === null) throw bad(`${where}: a field type must be a name or an object, got ${JSON.stringify(type)}`);
  const t = type as Record<string, unknown>;
  if (t.type === 'struct') {
    const fields = t.fields;
    if (!Array.isArray(fields) || fields.length === 0) throw bad(`${where}: a struct type needs fields`);
    const children = (fields as DeltaField[]).map((f) => {
      const inner = convert(f.type, m, `${where}.${f.name}`, nextId);
      if (m.mode !== 'none' && (inner.type.endsWith('[]') || inner.type.startsWith('MAP(')) && inner.type.includes('STRUCT(')) {
        throw new PuffinError('unsupported', `${where}.${f.name}: structs inside arrays or maps under column mapping are not supported`);
      }
      const field: IcebergFieldRead = {
        fieldId: m.mode === 'none' ? nextId() : fieldIdOf(f, m, `${where}.${f.name}`),
        name: f.name,
        type: inner.type,
        defaultValue: null,
        names: [physicalNameOf(f, m, `${where}.${f.name}`)],
      };
      if (inner.children) field.children = inner.children;
      return field;
    });
    return { type: `STRUCT(${children.map((c) => `${sqlIdent(c.name)} ${c.type}`).join(', ')})`, children: m.mode === 'none' ? undefined : children };
  }
  if (t.type === 'array') {
    const inner = convert(t.elementType, m, `${where}[]`, nextId);
    if (m.mode !== 'none' && inner.children) throw new PuffinError('unsupported', `${where}: arrays of structs under column mapping are not supported`);
    return { type: `${inner.type}[]` };
  }
  if (t.type === 'map') {
    const k = convert(t.keyType, m, `${where}.key`, nextId);
    const v = convert(t.valueType, m, `${where}.value`, nextId);
    if (m.mode !== 'none' && (k.children || v.children)) throw new PuffinError('unsupported', `${where}: maps of structs under column mapping are not supported`);
    return { type: `MAP(${k.type}, ${v.type})` };
  }
  throw bad(`${where}: unknown Delta type ${JSON.stringify(type)}`);
}

export function columnMappingMode(configuration: Record<string, string> | undefined): ColumnMappingMode {
  const mode = configuration?.['delta.columnMapping.mode'] ?? 'none';
  if (mode !== 'none' && mode !== 'name' && mode !== 'id') throw new PuffinError('unsupported', `column mapping mode '${mode}' is not supported (none, name, id are)`);
  return mode;
}

/** The table's columns from its schema string, in schema order. */
export function deltaColumns(schemaString: string, partitionColumns: readonly string[], mode: ColumnMappingMode, where: string): DeltaColumn[] {
  let schema: { type?: string; fields?: DeltaField[] };
  try {
    schema = JSON.parse(schemaString) as typeof schema;
  } catch (err) {
    throw bad(`${where}: metaData.schemaString is not JSON: ${(err as Error).message}`);
  }
  if (schema?.type !== 'struct' || !Array.isArray(schema.fields) || schema.fields.length === 0) throw bad(`${where}: metaData.schemaString is not a struct with fields`);
  const m: Mapping = { mode };
  let synthetic = 0;
  const nextId = () => -(++synthetic);
  const seen = new Set<string>();
  const partitions = new Set(partitionColumns);
  for (const p of partitionColumns) if (!schema.fields.some((f) => f.name === p)) throw bad(`${where}: partition column '${p}' is not in the schema`);
  return schema.fields.map((f) => {
    if (typeof f.name !== 'string' || f.name === '') throw bad(`${where}: a schema field has no name`);
    if (seen.has(f.name.toLowerCase())) throw new PuffinError('unsupported', `${where}: columns whose names differ only by case (${f.name}) are not supported`);
    seen.add(f.name.toLowerCase());
    const inner = convert(f.type, m, `${where}: column ${f.name}`, nextId);
    const partition = partitions.has(f.name);
    const physicalName = physicalNameOf(f, m, `${where}: column ${f.name}`);
    if (partition && inner.primitive === undefined) throw new PuffinError('unsupported', `${where}: partition column ${f.name} has a nested type`);
    const field: IcebergFieldRead = {
      // Partition columns never match a file column; 'none' mode columns only by name.
      fieldId: partition || mode === 'none' ? nextId() : fieldIdOf(f, m, `${where}: column ${f.name}`),
      name: f.name,
      type: inner.type,
      defaultValue: null,
      names: partition ? [] : [physicalName],
    };
    if (inner.children && !partition) field.children = inner.children;
    return { name: f.name, physicalName, type: inner.type, primitive: inner.primitive, partition, field };
  });
}

export function toColumns(columns: readonly DeltaColumn[]): Column[] {
  return columns.map((c) => ({ name: c.name, type: c.type }));
}

const DATE_RE = /^-?\d{4,}-\d{2}-\d{2}$/;
const TS_RE = /^(-?\d{4,}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?)(Z|[+-]\d{2}(?::?\d{2})?)?$/;
const INT_RE = /^-?\d+$/;
const NUM_RE = /^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

const INT_RANGE: Record<string, [bigint, bigint]> = {
  byte: [-128n, 127n],
  short: [-32768n, 32767n],
  integer: [-2147483648n, 2147483647n],
  long: [-9223372036854775808n, 9223372036854775807n],
};

/**
 * A partition value from the log as SQL literal text DuckDB casts to the column's type, or
 * null for NULL (a null or, for every type, an empty string: protocol "Partition Value
 * Serialization"). A value that does not parse as its type is refused naming it.
 */
export function partitionLiteral(c: DeltaColumn, value: string | null | undefined, where: string): string | null {
  if (value === null || value === undefined || value === '') return null;
  if (typeof value !== 'string') throw bad(`${where}: partition value of ${c.name} must be a string, got ${JSON.stringify(value)}`);
  const t = c.primitive as string;
  const refuse = () => bad(`${where}: partition value '${value}' of column ${c.name} is not a valid ${t}`);
  if (t === 'string') return value;
  if (t in INT_RANGE) {
    if (!INT_RE.test(value)) throw refuse();
    const v = BigInt(value);
    const [lo, hi] = INT_RANGE[t];
    if (v < lo || v > hi) throw refuse();
    return v.toString();
  }
  if (t.startsWith('decimal')) {
    if (!NUM_RE.test(value)) throw refuse();
    return value;
  }
  if (t === 'float' || t === 'double') {
    if (NUM_RE.test(value) || /^(-?Infinity|NaN)$/.test(value)) return value === 'Infinity' ? 'inf' : value === '-Infinity' ? '-inf' : value === 'NaN' ? 'nan' : value;
    throw refuse();
  }
  if (t === 'boolean') {
    const v = value.toLowerCase();
    if (v !== 'true' && v !== 'false') throw refuse();
    return v;
  }
  if (t === 'date') {
    if (!DATE_RE.test(value)) throw refuse();
    return value;
  }
  if (t === 'timestamp' || t === 'timestamp_ntz') {
    const m = TS_RE.exec(value);
    if (!m) throw refuse();
    const zone = m[3] === undefined || m[3] === 'Z' ? '+00' : m[3];
    // `timestamp` values are UTC (spec: written adjusted to UTC); timestamp_ntz has no zone.
    if (t === 'timestamp') return `${m[1]} ${m[2]}${zone}`;
    if (m[3] !== undefined && m[3] !== 'Z' && !/^[+-]00(:?00)?$/.test(m[3])) throw refuse();
    return `${m[1]} ${m[2]}`;
  }
  if (t === 'binary') {
    // Each character is one byte (the protocol's "\u0001\u0002" escapes, after JSON decoding).
    let out = '';
    for (const ch of value) {
      const code = ch.codePointAt(0) as number;
      if (code > 255) throw refuse();
      out += `\\x${code.toString(16).padStart(2, '0')}`;
    }
    return out;
  }
  throw refuse();
}

/** Per-file statistics from the add action's `stats` JSON (physical names), by logical name. */
export interface ParsedStats {
  numRecords?: number;
  stats: Record<string, ColumnStats>;
}

/**
 * A `stats` value as a literal, or undefined when it cannot be used exactly (pruning must
 * never drop a file holding a matching row, so anything uncertain is left out):
 *  - integers beyond 2^53 (JSON numbers lose them) and decimals with more than 15
 *    significant digits are dropped;
 *  - strings: minimum kept (a truncated prefix is still a lower bound), maximum only when
 *    shorter than 32 characters (writers truncate longer ones) and both only for ASCII text
 *    (DuckDB's order and the writer's agree on it);
 *  - timestamps are written in milliseconds while values have microseconds: widened by 1 ms;
 *  - floats, binary, booleans and nested values: not used.
 */
function statLiteral(c: DeltaColumn, v: unknown, bound: 'min' | 'max'): string | undefined {
  const t = c.primitive;
  if (t === undefined || v === null || v === undefined) return undefined;
  if (t in INT_RANGE) return typeof v === 'number' && Number.isSafeInteger(v) ? String(v) : undefined;
  if (t.startsWith('decimal')) {
    if (typeof v !== 'number' || !Number.isFinite(v)) return typeof v === 'string' && NUM_RE.test(v) ? v : undefined;
    const digits = String(Math.abs(v)).replace(/e.*$/i, '').replace('.', '').replace(/^0+/, '');
    return digits.length <= 15 ? String(v) : undefined;
  }
  if (t === 'string') {
    if (typeof v !== 'string' || !/^[\x00-\x7f]*$/.test(v)) return undefined;
    if (bound === 'max' && v.length >= 32) return undefined;
    return v;
  }
  if (t === 'date') return typeof v === 'string' && DATE_RE.test(v) ? v : undefined;
  if (t === 'timestamp' || t === 'timestamp_ntz') {
    if (typeof v !== 'string') return undefined;
    const m = TS_RE.exec(v);
    if (!m) return undefined;
    const zone = m[3] ?? (t === 'timestamp' ? undefined : '');
    if (zone === undefined) return undefined;
    const ms = Date.parse(`${m[1]}T${m[2]}${zone === '' || zone === 'Z' ? 'Z' : zone}`);
    if (!Number.isFinite(ms)) return undefined;
    const widened = new Date(ms + (bound === 'min' ? -1 : 1)).toISOString(); // UTC, ms precision
    const text = `${widened.slice(0, 10)} ${widened.slice(11, 23)}`;
    return t === 'timestamp' ? `${text}+00` : text;
  }
  return undefined;
}

export function parseStats(columns: readonly DeltaColumn[], statsJson: string | null | undefined, exactNulls: boolean, where: string): ParsedStats {
  if (statsJson === null || statsJson === undefined || statsJson === '') return { stats: {} };
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(statsJson) as Record<string, unknown>;
  } catch (err) {
    throw bad(`${where}: stats is not JSON: ${(err as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null) return { stats: {} };
  const obj = (k: string): Record<string, unknown> => (typeof raw[k] === 'object' && raw[k] !== null && !Array.isArray(raw[k]) ? (raw[k] as Record<string, unknown>) : {});
  // Wide bounds (tightBounds false: rows deleted by a deletion vector) are still bounds;
  // their null counts are not used.
  if (raw.tightBounds === false) exactNulls = false;
  const mins = obj('minValues');
  const maxs = obj('maxValues');
  const nulls = obj('nullCount');
  const out: Record<string, ColumnStats> = {};
  for (const c of columns) {
    if (c.partition) continue;
    const s: ColumnStats = {};
    const min = statLiteral(c, mins[c.physicalName], 'min');
    const max = statLiteral(c, maxs[c.physicalName], 'max');
    // A bound needs its partner: a file whose values are all NULL has neither.
    if (min !== undefined) s.min = min;
    if (max !== undefined) s.max = max;
    const n = nulls[c.physicalName];
    if (exactNulls && typeof n === 'number' && Number.isSafeInteger(n) && n >= 0) s.nulls = n;
    if (Object.keys(s).length > 0) out[c.name] = s;
  }
  const numRecords = typeof raw.numRecords === 'number' && Number.isSafeInteger(raw.numRecords) && raw.numRecords >= 0 ? raw.numRecords : undefined;
  return { numRecords, stats: out };
}
