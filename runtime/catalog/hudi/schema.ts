// A Hudi table's columns: the writer's Avro schema (the newest commit's
// `extraMetadata.schema`, else `hoodie.table.create.schema`) as DuckDB types, after the five
// `_hoodie_*` meta columns Hudi writes into every base file (as Spark and hudi-rs show them),
// and the partition values a directory name gives (`byteField=10/` or `10/`), typed.
// Columns are read from the Parquet files by name (negative field ids: catalog/iceberg/read.ts
// matches them by name only), as Spark writes them.

import { PuffinError } from '../../errors.ts';
import { sqlIdent } from '../../sql/quote.ts';
import type { Column, IcebergFieldRead } from '../types.ts';
import type { HudiConfig } from './properties.ts';

export const META_COLUMNS = ['_hoodie_commit_time', '_hoodie_commit_seqno', '_hoodie_record_key', '_hoodie_partition_path', '_hoodie_file_name'];

export interface HudiColumn {
  name: string;
  type: string;
  /** The Avro type this reader can use a directory value of ('int', 'long', 'string', 'boolean', 'date'); undefined otherwise. */
  partitionKind?: PartitionKind;
  /** Index into the table's partition fields; undefined for other columns. */
  partitionIndex?: number;
  field: IcebergFieldRead;
}

type PartitionKind = 'int' | 'long' | 'string' | 'boolean' | 'date' | 'other';

function bad(message: string): PuffinError {
  return new PuffinError('bad_request', message);
}

interface Converted {
  type: string;
  kind: PartitionKind;
}

/** Named Avro types (records, fixed, enums) by full and short name, as they are defined. */
type Names = Map<string, Converted>;

function convert(t: unknown, names: Names, namespace: string, where: string): Converted {
  if (typeof t === 'string') {
    switch (t) {
      case 'string': return { type: 'VARCHAR', kind: 'string' };
      case 'boolean': return { type: 'BOOLEAN', kind: 'boolean' };
      case 'int': return { type: 'INTEGER', kind: 'int' };
      case 'long': return { type: 'BIGINT', kind: 'long' };
      case 'float': return { type: 'FLOAT', kind: 'other' };
      case 'double': return { type: 'DOUBLE', kind: 'other' };
      case 'bytes': return { type: 'BLOB', kind: 'other' };
      case 'null': throw new PuffinError('unsupported', `${where}: a column of Avro type null is not supported`);
      default: {
        const named = names.get(t) ?? names.get(namespace ? `${namespace}.${t}` : t);
        if (!named) throw bad(`${where}: unknown Avro type '${t}'`);
        return named;
      }
    }
  }
  if (Array.isArray(t)) {
    const branches = t.filter((b) => b !== 'null');
    if (branches.length !== 1) throw new PuffinError('unsupported', `${where}: Avro unions other than [null, T] are not supported (${JSON.stringify(t).slice(0, 120)})`);
    return convert(branches[0], names, namespace, where);
  }
  if (typeof t !== 'object' || t === null) throw bad(`${where}: bad Avro type ${JSON.stringify(t)}`);
  const o = t as Record<string, unknown>;
  const logical = typeof o.logicalType === 'string' ? o.logicalType : undefined;
  const define = (c: Converted): Converted => {
    if (typeof o.name === 'string') {
      const ns = typeof o.namespace === 'string' ? o.namespace : namespace;
      names.set(o.name.includes('.') || !ns ? o.name : `${ns}.${o.name}`, c);
      names.set(o.name.split('.').pop() as string, c);
    }
    return c;
  };
  if (logical === 'decimal' && (o.type === 'bytes' || o.type === 'fixed')) {
    const precision = Number(o.precision);
    const scale = o.scale === undefined ? 0 : Number(o.scale);
    if (!Number.isInteger(precision) || !Number.isInteger(scale) || precision < 1 || precision > 38 || scale < 0 || scale > precision) {
      throw new PuffinError('unsupported', `${where}: decimal(${String(o.precision)}, ${String(o.scale)}) is outside DuckDB's DECIMAL (precision 1..38, scale 0..precision)`);
    }
    const c: Converted = { type: `DECIMAL(${precision},${scale})`, kind: 'other' };
    return o.type === 'fixed' ? define(c) : c;
  }
  switch (o.type) {
    case 'int':
      if (logical === 'date') return { type: 'DATE', kind: 'date' };
      if (logical === 'time-millis') return { type: 'TIME', kind: 'other' };
      return convert('int', names, namespace, where);
    case 'long':
      if (logical === 'timestamp-millis' || logical === 'timestamp-micros') return { type: 'TIMESTAMPTZ', kind: 'other' };
      if (logical === 'local-timestamp-millis' || logical === 'local-timestamp-micros') return { type: 'TIMESTAMP', kind: 'other' };
      if (logical === 'time-micros') return { type: 'TIME', kind: 'other' };
      return convert('long', names, namespace, where);
    case 'string':
    case 'boolean':
    case 'float':
    case 'double':
    case 'bytes':
      return convert(o.type, names, namespace, where);
    case 'fixed':
      return define({ type: 'BLOB', kind: 'other' });
    case 'enum':
      return define({ type: 'VARCHAR', kind: 'other' });
    case 'array':
      return { type: `${convert(o.items, names, namespace, `${where}[]`).type}[]`, kind: 'other' };
    case 'map':
      return { type: `MAP(VARCHAR, ${convert(o.values, names, namespace, `${where}.value`).type})`, kind: 'other' };
    case 'record': {
      const ns = typeof o.namespace === 'string' ? o.namespace : namespace;
      const fields = o.fields;
      if (!Array.isArray(fields) || fields.length === 0) throw bad(`${where}: an Avro record needs fields`);
      // Registered before its fields: a recursive record fails below rather than looping.
      const parts = (fields as { name?: unknown; type?: unknown }[]).map((f) => {
        if (typeof f?.name !== 'string' || f.name === '') throw bad(`${where}: a record field has no name`);
        return `${sqlIdent(f.name)} ${convert(f.type, names, ns, `${where}.${f.name}`).type}`;
      });
      return define({ type: `STRUCT(${parts.join(', ')})`, kind: 'other' });
    }
    default:
      if (Array.isArray(o.type) || (typeof o.type === 'object' && o.type !== null)) return convert(o.type, names, namespace, where);
      throw bad(`${where}: unknown Avro type ${JSON.stringify(o.type)}`);
  }
}

/**
 * The table's columns from the writer's Avro schema (record JSON, possibly with the `\:`
 * escapes of hoodie.properties already removed), meta columns first unless the table does not
 * write them or the schema already has them.
 */
export function hudiColumns(avroSchema: string, config: HudiConfig, where: string): HudiColumn[] {
  let schema: { type?: unknown; fields?: { name?: unknown; type?: unknown }[]; namespace?: unknown };
  try {
    schema = JSON.parse(avroSchema) as typeof schema;
  } catch (err) {
    throw bad(`${where}: the table's Avro schema is not JSON: ${(err as Error).message}`);
  }
  if (schema?.type !== 'record' || !Array.isArray(schema.fields) || schema.fields.length === 0) throw bad(`${where}: the table's Avro schema is not a record with fields`);
  const names: Names = new Map();
  const namespace = typeof schema.namespace === 'string' ? schema.namespace : '';
  let synthetic = 0;
  const seen = new Set<string>();
  const out: HudiColumn[] = [];
  const add = (name: string, c: Converted): void => {
    if (seen.has(name.toLowerCase())) throw new PuffinError('unsupported', `${where}: columns whose names differ only by case (${name}) are not supported`);
    seen.add(name.toLowerCase());
    const partitionIndex = config.partitionFields.findIndex((p) => p.name === name);
    out.push({
      name,
      type: c.type,
      ...(partitionIndex >= 0 ? { partitionIndex, partitionKind: c.kind } : {}),
      field: { fieldId: -(++synthetic), name, type: c.type, defaultValue: null, names: [name] },
    });
  };
  const fieldNames = schema.fields.map((f) => f?.name);
  if (config.populateMetaFields && !META_COLUMNS.every((m) => fieldNames.includes(m))) {
    for (const m of META_COLUMNS) add(m, { type: 'VARCHAR', kind: 'string' });
  }
  for (const f of schema.fields) {
    if (typeof f?.name !== 'string' || f.name === '') throw bad(`${where}: a schema field has no name`);
    add(f.name, convert(f.type, names, namespace, `${where}: column ${f.name}`));
  }
  return out;
}

export function toColumns(columns: readonly HudiColumn[]): Column[] {
  return columns.map((c) => ({ name: c.name, type: c.type }));
}

/** Hive's name for the partition of NULL values, which Hudi writes too. */
export const NULL_PARTITION = '__HIVE_DEFAULT_PARTITION__';

/**
 * The values of a partition path's parts by partition field, as written (percent-decoded when
 * the table encodes them); undefined when the path does not have the table's partition shape
 * (a hive-style part naming another field, a different number of parts).
 */
export function partitionPathValues(partitionPath: string, config: HudiConfig): (string | null)[] | undefined {
  const fields = config.partitionFields;
  if (fields.length === 0) return [];
  const parts = partitionPath.split('/');
  if (parts.length !== fields.length) return undefined;
  const values: (string | null)[] = [];
  for (let i = 0; i < parts.length; i++) {
    let part = parts[i];
    if (config.hiveStyle) {
      const eq = part.indexOf('=');
      if (eq < 0 || part.slice(0, eq) !== fields[i].name) return undefined;
      part = part.slice(eq + 1);
    }
    if (config.urlEncoded) {
      try {
        part = decodeURIComponent(part);
      } catch {
        return undefined;
      }
    }
    values.push(part === NULL_PARTITION ? null : part);
  }
  return values;
}

const INT_RE = /^-?\d+$/;
const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;
const RANGE: Record<string, [bigint, bigint]> = {
  int: [-2147483648n, 2147483647n],
  long: [-9223372036854775808n, 9223372036854775807n],
};

/**
 * A directory value as SQL literal text of the column's type, null for NULL, or undefined
 * when it cannot be used as the column's value: the key generator transforms values
 * (timestamp formats), the type is one whose text form writers disagree on (floats,
 * decimals, timestamps, binary), or the text does not parse as the type.
 */
export function partitionLiteral(c: HudiColumn, value: string | null, valuePreserving: boolean): string | null | undefined {
  if (!valuePreserving) return undefined;
  if (value === null) return null;
  switch (c.partitionKind) {
    case 'string':
      return value;
    case 'int':
    case 'long': {
      if (!INT_RE.test(value)) return undefined;
      const v = BigInt(value);
      const [lo, hi] = RANGE[c.partitionKind];
      return v < lo || v > hi ? undefined : v.toString();
    }
    case 'boolean': {
      const v = value.toLowerCase();
      return v === 'true' || v === 'false' ? v : undefined;
    }
    case 'date':
      return DATE_RE.test(value) && !Number.isNaN(Date.parse(`${value}T00:00:00Z`)) ? value : undefined;
    default:
      return undefined;
  }
}
