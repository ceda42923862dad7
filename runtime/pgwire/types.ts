// DuckDB result types as PostgreSQL type OIDs, and values in PostgreSQL's text format
// (binary format for the fixed-width numeric types, bool, text and bytea). Types with no
// PostgreSQL counterpart (lists, structs, maps, unions, enums, nanosecond timestamps,
// unsigned 64-bit and 128-bit integers as numeric) are sent as text.

import type { JsonValue } from '../engine/engine.ts';

export const OID = {
  bool: 16,
  bytea: 17,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  json: 114,
  float4: 700,
  float8: 701,
  unknown: 705,
  varchar: 1043,
  date: 1082,
  time: 1083,
  timestamp: 1114,
  timestamptz: 1184,
  interval: 1186,
  timetz: 1266,
  numeric: 1700,
  uuid: 2950,
} as const;

const SIZE: Record<number, number> = {
  [OID.bool]: 1, [OID.int2]: 2, [OID.int4]: 4, [OID.int8]: 8, [OID.float4]: 4, [OID.float8]: 8,
  [OID.date]: 4, [OID.time]: 8, [OID.timestamp]: 8, [OID.timestamptz]: 8, [OID.interval]: 16, [OID.uuid]: 16, [OID.timetz]: 12,
};

export function typeSize(oid: number): number {
  return SIZE[oid] ?? -1;
}

/** DuckDB type names with a PostgreSQL counterpart (anything else is sent as text). */
export const DUCK_TYPE_OIDS: Readonly<Record<string, number>> = {
  BOOLEAN: OID.bool,
  TINYINT: OID.int2, SMALLINT: OID.int2, UTINYINT: OID.int2,
  INTEGER: OID.int4, USMALLINT: OID.int4,
  BIGINT: OID.int8, UINTEGER: OID.int8,
  UBIGINT: OID.numeric, HUGEINT: OID.numeric, UHUGEINT: OID.numeric, BIGNUM: OID.numeric, VARINT: OID.numeric,
  FLOAT: OID.float4, REAL: OID.float4,
  DOUBLE: OID.float8,
  VARCHAR: OID.varchar,
  JSON: OID.json,
  BLOB: OID.bytea,
  DATE: OID.date,
  TIME: OID.time,
  'TIME WITH TIME ZONE': OID.timetz,
  TIMESTAMP: OID.timestamp, TIMESTAMP_MS: OID.timestamp, TIMESTAMP_S: OID.timestamp,
  'TIMESTAMP WITH TIME ZONE': OID.timestamptz,
  INTERVAL: OID.interval,
  UUID: OID.uuid,
};

/** PostgreSQL's names of the OIDs above (format_type). */
export const OID_NAMES: Readonly<Record<number, string>> = {
  [OID.bool]: 'boolean', [OID.bytea]: 'bytea', [OID.int8]: 'bigint', [OID.int2]: 'smallint', [OID.int4]: 'integer',
  [OID.text]: 'text', [OID.json]: 'json', [OID.float4]: 'real', [OID.float8]: 'double precision', [OID.varchar]: 'character varying',
  [OID.date]: 'date', [OID.time]: 'time without time zone', [OID.timestamp]: 'timestamp without time zone',
  [OID.timestamptz]: 'timestamp with time zone', [OID.interval]: 'interval', [OID.timetz]: 'time with time zone',
  [OID.numeric]: 'numeric', [OID.uuid]: 'uuid',
};

/** The OID of a DuckDB type as `QueryResult.columns[].type` names it. */
export function oidOfDuckType(type: string): number {
  const t = type.trim().toUpperCase();
  if (t.startsWith('DECIMAL') || t.startsWith('NUMERIC')) return OID.numeric;
  // Lists, arrays, structs, maps, unions, enums, TIMESTAMP_NS, BIT and anything newer: text keeps every digit.
  return DUCK_TYPE_OIDS[t] ?? OID.text;
}

/** The DuckDB type a parameter of this OID is cast to; undefined: an untyped string literal. */
export function duckTypeOfOid(oid: number): string | undefined {
  switch (oid) {
    case OID.bool: return 'BOOLEAN';
    case OID.int2: return 'SMALLINT';
    case OID.int4: return 'INTEGER';
    case OID.int8: return 'BIGINT';
    case OID.float4: return 'FLOAT';
    case OID.float8: return 'DOUBLE';
    case OID.numeric: return 'DECIMAL(38,10)';
    case OID.date: return 'DATE';
    case OID.time: return 'TIME';
    case OID.timestamp: return 'TIMESTAMP';
    case OID.timestamptz: return 'TIMESTAMPTZ';
    case OID.interval: return 'INTERVAL';
    case OID.uuid: return 'UUID';
    case OID.bytea: return 'BLOB';
    default: return undefined;
  }
}

/** DuckDB's BLOB text (printable bytes as themselves, others as \xHH) back to bytes. */
function blobBytes(text: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\\' && text[i + 1] === 'x' && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 2, i + 4))) {
      out.push(parseInt(text.slice(i + 2, i + 4), 16));
      i += 3;
    } else out.push(text.charCodeAt(i) & 0xff);
  }
  return Buffer.from(out);
}

function intervalText(v: { months?: number; days?: number; micros?: string | number }): string {
  const months = Number(v.months ?? 0);
  const days = Number(v.days ?? 0);
  let micros = BigInt(v.micros ?? 0);
  const parts: string[] = [];
  const years = Math.trunc(months / 12);
  const mons = months % 12;
  if (years) parts.push(`${years} year${Math.abs(years) === 1 ? '' : 's'}`);
  if (mons) parts.push(`${mons} mon${Math.abs(mons) === 1 ? '' : 's'}`);
  if (days) parts.push(`${days} day${Math.abs(days) === 1 ? '' : 's'}`);
  if (micros !== 0n || parts.length === 0) {
    const sign = micros < 0n ? '-' : '';
    if (micros < 0n) micros = -micros;
    const h = micros / 3_600_000_000n;
    const m = (micros / 60_000_000n) % 60n;
    const s = (micros / 1_000_000n) % 60n;
    const f = micros % 1_000_000n;
    const pad = (n: bigint) => n.toString().padStart(2, '0');
    parts.push(`${sign}${pad(h)}:${pad(m)}:${pad(s)}${f ? `.${f.toString().padStart(6, '0').replace(/0+$/, '')}` : ''}`);
  }
  return parts.join(' ');
}

/** A value in PostgreSQL's text format for the column's OID. */
export function textValue(value: JsonValue, oid: number): string | null {
  if (value === null || value === undefined) return null;
  switch (oid) {
    case OID.bool:
      return value === true || value === 'true' ? 't' : 'f';
    case OID.bytea:
      return `\\x${blobBytes(String(value)).toString('hex')}`;
    case OID.interval:
      return typeof value === 'object' && !Array.isArray(value) ? intervalText(value as { months?: number; days?: number; micros?: string }) : String(value);
    default:
      return typeof value === 'object' ? JSON.stringify(value) : String(value);
  }
}

/** Whether a column of this OID can be sent in binary format. */
export function binaryCapable(oid: number): boolean {
  return ([OID.bool, OID.int2, OID.int4, OID.int8, OID.float4, OID.float8, OID.text, OID.varchar, OID.bytea, OID.json] as number[]).includes(oid);
}

/** A value in PostgreSQL's binary format (only for binaryCapable OIDs). */
export function binaryValue(value: JsonValue, oid: number): Buffer | null {
  if (value === null || value === undefined) return null;
  let b: Buffer;
  switch (oid) {
    case OID.bool:
      return Buffer.from([value === true ? 1 : 0]);
    case OID.int2:
      b = Buffer.alloc(2);
      b.writeInt16BE(Number(value));
      return b;
    case OID.int4:
      b = Buffer.alloc(4);
      b.writeInt32BE(Number(value));
      return b;
    case OID.int8:
      b = Buffer.alloc(8);
      b.writeBigInt64BE(BigInt(value as string | number));
      return b;
    case OID.float4:
      b = Buffer.alloc(4);
      b.writeFloatBE(Number(value));
      return b;
    case OID.float8:
      b = Buffer.alloc(8);
      b.writeDoubleBE(Number(value));
      return b;
    case OID.bytea:
      return blobBytes(String(value));
    default:
      return Buffer.from(textValue(value, oid) ?? '', 'utf8');
  }
}
