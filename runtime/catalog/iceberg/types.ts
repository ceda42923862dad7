// Iceberg's type system (spec: Schemas and Data Types, Appendix C) and its mapping to DuckDB
// types. Schemas arrive as JSON from table metadata and manifests; everything downstream
// (bounds, transforms, scan planning, the read SQL) works on the parsed form here.

import { PuffinError } from '../../errors.ts';
import { sqlIdent } from '../../sql/quote.ts';

export type PrimitiveType =
  | { kind: 'boolean' }
  | { kind: 'int' }
  | { kind: 'long' }
  | { kind: 'float' }
  | { kind: 'double' }
  | { kind: 'decimal'; precision: number; scale: number }
  | { kind: 'date' }
  | { kind: 'time' }
  | { kind: 'timestamp' }
  | { kind: 'timestamptz' }
  /** v3: nanosecond precision. */
  | { kind: 'timestamp_ns' }
  | { kind: 'timestamptz_ns' }
  | { kind: 'string' }
  | { kind: 'uuid' }
  | { kind: 'fixed'; length: number }
  | { kind: 'binary' };

export interface StructType {
  kind: 'struct';
  fields: NestedField[];
}

export interface ListType {
  kind: 'list';
  elementId: number;
  elementRequired: boolean;
  element: IcebergType;
}

export interface MapType {
  kind: 'map';
  keyId: number;
  key: IcebergType;
  valueId: number;
  valueRequired: boolean;
  value: IcebergType;
}

export type IcebergType = PrimitiveType | StructType | ListType | MapType;

export interface NestedField {
  id: number;
  name: string;
  required: boolean;
  type: IcebergType;
  doc?: string;
  /** v3 `initial-default`, in the JSON single-value form; undefined when absent. */
  initialDefault?: unknown;
}

export interface IcebergSchema {
  schemaId: number;
  fields: NestedField[];
  identifierFieldIds: number[];
}

export function isPrimitive(type: IcebergType): type is PrimitiveType {
  return type.kind !== 'struct' && type.kind !== 'list' && type.kind !== 'map';
}

const SIMPLE: Record<string, PrimitiveType> = {
  boolean: { kind: 'boolean' },
  int: { kind: 'int' },
  long: { kind: 'long' },
  float: { kind: 'float' },
  double: { kind: 'double' },
  date: { kind: 'date' },
  time: { kind: 'time' },
  timestamp: { kind: 'timestamp' },
  timestamptz: { kind: 'timestamptz' },
  timestamp_ns: { kind: 'timestamp_ns' },
  timestamptz_ns: { kind: 'timestamptz_ns' },
  string: { kind: 'string' },
  uuid: { kind: 'uuid' },
  binary: { kind: 'binary' },
};

/** Where a type came from, for error messages: a file and a column path. */
export interface TypeContext {
  file: string;
  column: string;
}

/** Parse one type from its JSON form (Appendix C). Unknown types name the column and file. */
export function parseType(json: unknown, ctx: TypeContext): IcebergType {
  if (typeof json === 'string') {
    const simple = SIMPLE[json];
    if (simple) return simple;
    const decimal = /^decimal\(\s*(\d+)\s*,\s*(-?\d+)\s*\)$/.exec(json);
    if (decimal) {
      const precision = Number(decimal[1]);
      const scale = Number(decimal[2]);
      if (precision < 1 || precision > 38 || scale < 0 || scale > precision) {
        throw new PuffinError('unsupported', `${ctx.file}: column '${ctx.column}' has type ${json}, which DuckDB cannot represent (precision 1..38, 0 <= scale <= precision)`);
      }
      return { kind: 'decimal', precision, scale };
    }
    const fixed = /^fixed\[\s*(\d+)\s*\]$/.exec(json);
    if (fixed) return { kind: 'fixed', length: Number(fixed[1]) };
    if (/^(variant|unknown|geometry|geography)\b/.test(json)) {
      throw new PuffinError('unsupported', `${ctx.file}: column '${ctx.column}' has the Iceberg v3 type '${json}', which this reader does not support yet (supported v3 types: timestamp_ns, timestamptz_ns)`);
    }
    throw new PuffinError('unsupported', `${ctx.file}: column '${ctx.column}' has type '${json}', which this reader does not support`);
  }
  if (json && typeof json === 'object') {
    const obj = json as Record<string, unknown>;
    switch (obj.type) {
      case 'struct':
        return { kind: 'struct', fields: parseFields(obj.fields, ctx.file, `${ctx.column}.`) };
      case 'list':
        return {
          kind: 'list',
          elementId: requireInt(obj['element-id'], `${ctx.column}: element-id`, ctx.file),
          elementRequired: obj['element-required'] === true,
          element: parseType(obj.element, { file: ctx.file, column: `${ctx.column}.element` }),
        };
      case 'map':
        return {
          kind: 'map',
          keyId: requireInt(obj['key-id'], `${ctx.column}: key-id`, ctx.file),
          key: parseType(obj.key, { file: ctx.file, column: `${ctx.column}.key` }),
          valueId: requireInt(obj['value-id'], `${ctx.column}: value-id`, ctx.file),
          valueRequired: obj['value-required'] === true,
          value: parseType(obj.value, { file: ctx.file, column: `${ctx.column}.value` }),
        };
    }
  }
  throw new PuffinError('unsupported', `${ctx.file}: column '${ctx.column}' has type ${JSON.stringify(json)}, which this reader does not support`);
}

function requireInt(value: unknown, what: string, file: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new PuffinError('bad_request', `${file}: ${what} must be an integer, got ${JSON.stringify(value)}`);
  }
  return value;
}

function parseFields(json: unknown, file: string, prefix = ''): NestedField[] {
  if (!Array.isArray(json)) throw new PuffinError('bad_request', `${file}: struct 'fields' must be a list`);
  return json.map((f: unknown) => {
    const field = (f ?? {}) as Record<string, unknown>;
    const name = typeof field.name === 'string' ? field.name : undefined;
    if (name === undefined) throw new PuffinError('bad_request', `${file}: a schema field has no name`);
    const column = `${prefix}${name}`;
    const parsed: NestedField = {
      id: requireInt(field.id, `field '${column}' id`, file),
      name,
      required: field.required === true,
      type: parseType(field.type, { file, column }),
    };
    if (typeof field.doc === 'string') parsed.doc = field.doc;
    if ('initial-default' in field) parsed.initialDefault = field['initial-default'];
    return parsed;
  });
}

/** Parse a schema object (`{"type": "struct", "schema-id": 0, "fields": [...]}`). */
export function parseSchema(json: unknown, file: string, fallbackId = 0): IcebergSchema {
  const obj = (json ?? {}) as Record<string, unknown>;
  if (obj.type !== undefined && obj.type !== 'struct') {
    throw new PuffinError('bad_request', `${file}: a schema must be a struct, got type ${JSON.stringify(obj.type)}`);
  }
  const schemaId = obj['schema-id'] === undefined ? fallbackId : requireInt(obj['schema-id'], 'schema-id', file);
  const ids = obj['identifier-field-ids'];
  return {
    schemaId,
    fields: parseFields(obj.fields, file),
    identifierFieldIds: Array.isArray(ids) ? ids.filter((x): x is number => typeof x === 'number') : [],
  };
}

/** The DuckDB type that holds values of an Iceberg type. */
export function toDuckDBType(type: IcebergType): string {
  switch (type.kind) {
    case 'boolean': return 'BOOLEAN';
    case 'int': return 'INTEGER';
    case 'long': return 'BIGINT';
    case 'float': return 'FLOAT';
    case 'double': return 'DOUBLE';
    case 'decimal': return `DECIMAL(${type.precision},${type.scale})`;
    case 'date': return 'DATE';
    case 'time': return 'TIME';
    case 'timestamp': return 'TIMESTAMP';
    case 'timestamptz': return 'TIMESTAMP WITH TIME ZONE';
    case 'timestamp_ns': return 'TIMESTAMP_NS';
    // DuckDB has no nanosecond TIMESTAMPTZ: it reads such Parquet columns as microseconds.
    case 'timestamptz_ns': return 'TIMESTAMP WITH TIME ZONE';
    case 'string': return 'VARCHAR';
    case 'uuid': return 'UUID';
    case 'fixed': return 'BLOB';
    case 'binary': return 'BLOB';
    case 'struct': return `STRUCT(${type.fields.map((f) => `${sqlIdent(f.name)} ${toDuckDBType(f.type)}`).join(', ')})`;
    case 'list': return `${toDuckDBType(type.element)}[]`;
    case 'map': return `MAP(${toDuckDBType(type.key)}, ${toDuckDBType(type.value)})`;
  }
}

/**
 * A default value (`initial-default`, `write-default`) from its JSON single-value form
 * (Appendix D) as text DuckDB casts to `toDuckDBType(type)`: the form read_parquet's
 * `default_value` takes. null for a NULL default. A struct default is `{}` or an object by
 * field id; fields it leaves out take their own `initial-default` (spec: Default values).
 */
export function defaultValueText(type: IcebergType, json: unknown, ctx: TypeContext): string | null {
  if (json === null || json === undefined) return null;
  const bad = (): never => {
    throw new PuffinError('bad_request', `${ctx.file}: column '${ctx.column}' has default ${JSON.stringify(json)}, which is not a ${typeToString(type)} value`);
  };
  const text = (): string => (typeof json === 'string' ? json : bad());
  switch (type.kind) {
    case 'boolean': return typeof json === 'boolean' ? String(json) : bad();
    case 'int':
    case 'long':
      // 16+ digit longs arrive quoted (metadata.ts quoteBigIntegers).
      if (typeof json === 'number' && Number.isInteger(json)) return String(json);
      return typeof json === 'string' && /^-?\d+$/.test(json) ? json : bad();
    case 'float':
    case 'double': return typeof json === 'number' ? String(json) : bad();
    case 'decimal': return /^-?\d+(\.\d+)?$/.test(text()) ? (json as string) : bad();
    case 'date':
    case 'time':
    case 'timestamp':
    case 'timestamptz':
    case 'timestamp_ns':
    case 'timestamptz_ns':
    case 'string':
    case 'uuid': return text();
    case 'fixed':
    case 'binary': {
      const hex = text();
      if (!/^([0-9a-fA-F]{2})*$/.test(hex)) return bad();
      return hex.replace(/../g, (b) => `\\x${b.toUpperCase()}`);
    }
    case 'struct': {
      if (typeof json !== 'object' || Array.isArray(json)) return bad();
      const byId = json as Record<string, unknown>;
      const parts = type.fields.map((f) => {
        const column = { file: ctx.file, column: `${ctx.column}.${f.name}` };
        const v = String(f.id) in byId ? byId[String(f.id)] : f.initialDefault;
        return `${nestedText(f.name)}: ${nestedValue(f.type, defaultValueText(f.type, v, column))}`;
      });
      return `{${parts.join(', ')}}`;
    }
    case 'list': {
      if (!Array.isArray(json)) return bad();
      const element = { file: ctx.file, column: `${ctx.column}.element` };
      return `[${json.map((v) => nestedValue(type.element, defaultValueText(type.element, v, element))).join(', ')}]`;
    }
    case 'map': {
      const o = json as { keys?: unknown; values?: unknown };
      if (typeof json !== 'object' || !Array.isArray(o.keys) || !Array.isArray(o.values) || o.keys.length !== o.values.length) return bad();
      const values = o.values;
      const key = { file: ctx.file, column: `${ctx.column}.key` };
      const value = { file: ctx.file, column: `${ctx.column}.value` };
      const pairs = o.keys.map((k, i) => `${nestedValue(type.key, defaultValueText(type.key, k, key))}=${nestedValue(type.value, defaultValueText(type.value, values[i], value))}`);
      return `{${pairs.join(', ')}}`;
    }
  }
}

/** A value inside DuckDB's text form of a struct, list or map: quoted unless nested or NULL. */
function nestedValue(type: IcebergType, text: string | null): string {
  if (text === null) return 'NULL';
  return isPrimitive(type) ? nestedText(text) : text;
}

function nestedText(text: string): string {
  return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** Iceberg's own spelling of a type (Appendix C), for messages and for writers. */
export function typeToString(type: IcebergType): string {
  switch (type.kind) {
    case 'decimal': return `decimal(${type.precision},${type.scale})`;
    case 'fixed': return `fixed[${type.length}]`;
    case 'struct': return `struct<${type.fields.map((f) => `${f.name}: ${typeToString(f.type)}`).join(', ')}>`;
    case 'list': return `list<${typeToString(type.element)}>`;
    case 'map': return `map<${typeToString(type.key)}, ${typeToString(type.value)}>`;
    default: return type.kind;
  }
}

/** Every field of a schema by id, nested ones included (struct fields only: list elements and
 *  map keys/values are not columns a predicate or a bound can name). */
export function indexFieldsById(fields: readonly NestedField[], into = new Map<number, NestedField>()): Map<number, NestedField> {
  for (const f of fields) {
    into.set(f.id, f);
    if (f.type.kind === 'struct') indexFieldsById(f.type.fields, into);
  }
  return into;
}

/**
 * Resolve a column reference by name: a top-level column first, then a dotted path through
 * structs ('address.city'). Names compare case-insensitively when no exact match exists,
 * as DuckDB's identifiers do.
 */
export function findFieldByName(schema: IcebergSchema, name: string): NestedField | undefined {
  const exact = schema.fields.find((f) => f.name === name) ?? schema.fields.find((f) => f.name.toLowerCase() === name.toLowerCase());
  if (exact) return exact;
  const parts = name.split('.');
  if (parts.length < 2) return undefined;
  let fields: readonly NestedField[] = schema.fields;
  let found: NestedField | undefined;
  for (const part of parts) {
    found = fields.find((f) => f.name === part) ?? fields.find((f) => f.name.toLowerCase() === part.toLowerCase());
    if (!found) return undefined;
    fields = found.type.kind === 'struct' ? found.type.fields : [];
  }
  return found;
}
