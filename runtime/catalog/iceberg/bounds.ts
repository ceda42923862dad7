// Iceberg's binary single-value serialization (spec Appendix D), used for the lower and upper
// bounds of manifests and the partition summaries of manifest lists: decode to values, encode
// from values (the writer), and the SQL literal text of a value (the `ColumnStats` form).

import { PuffinError } from '../../errors.ts';
import type { PrimitiveType } from './types.ts';
import { civilFromDays, floorDiv, MICROS_PER_DAY, type IcebergValue } from './values.ts';

/**
 * Decode a bound. Returns undefined when the bytes cannot be a value of the type, so that a
 * malformed bound only costs pruning, never a wrong answer. Bounds written before a type
 * promotion keep their old width (spec: Schema Evolution): a 4-byte bound of a long column
 * is an int, of a double column a float, of a timestamp column a date.
 */
export function decodeBound(type: PrimitiveType, bytes: Uint8Array): IcebergValue | undefined {
  const n = bytes.byteLength;
  // Fixed-width values are copied into one scratch view: scans decode bounds by the 100,000,
  // and a DataView per bound was a measurable share of the garbage.
  const view = n <= 8 ? fill(bytes) : new DataView(bytes.buffer, bytes.byteOffset, n);
  switch (type.kind) {
    case 'boolean':
      return n === 1 ? bytes[0] !== 0 : undefined;
    case 'int':
    case 'date':
      return n === 4 ? view.getInt32(0, true) : undefined;
    case 'long':
      if (n === 8) return view.getBigInt64(0, true);
      return n === 4 ? BigInt(view.getInt32(0, true)) : undefined;
    case 'time':
      return n === 8 ? view.getBigInt64(0, true) : undefined;
    case 'timestamp':
    case 'timestamptz':
      if (n === 8) return view.getBigInt64(0, true);
      return n === 4 ? BigInt(view.getInt32(0, true)) * MICROS_PER_DAY : undefined;
    case 'timestamp_ns':
    case 'timestamptz_ns':
      if (n === 8) return view.getBigInt64(0, true);
      return n === 4 ? BigInt(view.getInt32(0, true)) * MICROS_PER_DAY * 1000n : undefined;
    case 'float':
      return n === 4 ? view.getFloat32(0, true) : undefined;
    case 'double':
      if (n === 8) return view.getFloat64(0, true);
      return n === 4 ? view.getFloat32(0, true) : undefined;
    case 'decimal':
      return n > 0 ? bigIntFromTwosComplement(bytes) : undefined;
    case 'string':
      return decodeUtf8(bytes);
    case 'uuid':
      return n === 16 ? bytes.slice() : undefined;
    case 'fixed':
    case 'binary':
      return bytes.slice();
  }
}

const scratch = new Uint8Array(8);
const scratchView = new DataView(scratch.buffer);

function fill(bytes: Uint8Array): DataView {
  for (let i = 0; i < bytes.length; i++) scratch[i] = bytes[i];
  return scratchView;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** Big-endian two's complement bytes to a bigint. */
export function bigIntFromTwosComplement(bytes: Uint8Array): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  if (bytes.length > 0 && bytes[0] & 0x80) v -= 1n << BigInt(bytes.length * 8);
  return v;
}

/** A bigint as big-endian two's complement in the fewest bytes that hold it. */
export function twosComplementMinBytes(value: bigint): Uint8Array {
  const out: number[] = [];
  let v = value;
  for (;;) {
    out.unshift(Number(v & 0xffn));
    const rest = v >> 8n;
    const signBit = (out[0] & 0x80) !== 0;
    if ((rest === 0n && !signBit) || (rest === -1n && signBit)) break;
    v = rest;
  }
  return Uint8Array.from(out);
}

function cannotEncode(type: PrimitiveType, value: IcebergValue): never {
  throw new PuffinError('bad_request', `cannot encode ${describe(value)} as an Iceberg ${type.kind} bound`);
}

/** Encode a value in the binary single-value form (Appendix D): the writer's bounds. */
export function encodeBound(type: PrimitiveType, value: IcebergValue): Uint8Array {
  switch (type.kind) {
    case 'boolean':
      return typeof value === 'boolean' ? Uint8Array.of(value ? 1 : 0) : cannotEncode(type, value);
    case 'int':
    case 'date': {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < -(2 ** 31) || value >= 2 ** 31) return cannotEncode(type, value);
      const out = new Uint8Array(4);
      new DataView(out.buffer).setInt32(0, value as number, true);
      return out;
    }
    case 'long':
    case 'time':
    case 'timestamp':
    case 'timestamptz':
    case 'timestamp_ns':
    case 'timestamptz_ns': {
      if (typeof value !== 'bigint' || value < -(1n << 63n) || value >= 1n << 63n) return cannotEncode(type, value);
      const out = new Uint8Array(8);
      new DataView(out.buffer).setBigInt64(0, value as bigint, true);
      return out;
    }
    case 'float': {
      if (typeof value !== 'number') return cannotEncode(type, value);
      const out = new Uint8Array(4);
      new DataView(out.buffer).setFloat32(0, value as number, true);
      return out;
    }
    case 'double': {
      if (typeof value !== 'number') return cannotEncode(type, value);
      const out = new Uint8Array(8);
      new DataView(out.buffer).setFloat64(0, value as number, true);
      return out;
    }
    case 'decimal':
      return typeof value === 'bigint' ? twosComplementMinBytes(value) : cannotEncode(type, value);
    case 'string':
      return typeof value === 'string' ? new TextEncoder().encode(value) : cannotEncode(type, value);
    case 'uuid':
      return value instanceof Uint8Array && value.length === 16 ? value.slice() : cannotEncode(type, value);
    case 'fixed':
      return value instanceof Uint8Array && value.length === type.length ? value.slice() : cannotEncode(type, value);
    case 'binary':
      return value instanceof Uint8Array ? value.slice() : cannotEncode(type, value);
  }
}

function describe(value: IcebergValue): string {
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  return `${typeof value} ${String(value)}`;
}

// ---------------------------------------------------------------------------------------
// SQL literal text: what `ColumnStats.min/max` hold, castable to the column's DuckDB type.

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

export function formatDate(days: number): string {
  const { year, month, day } = civilFromDays(days);
  // DuckDB writes years before 1 AD as the positive BC year with a suffix.
  if (year <= 0) return `${pad(1 - year, 4)}-${pad(month, 2)}-${pad(day, 2)} (BC)`;
  return `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}`;
}

export function formatTime(micros: bigint): string {
  const us = Number(micros);
  const seconds = Math.floor(us / 1e6);
  const fraction = us - seconds * 1e6;
  const text = `${pad(Math.floor(seconds / 3600), 2)}:${pad(Math.floor(seconds / 60) % 60, 2)}:${pad(seconds % 60, 2)}`;
  return fraction ? `${text}.${pad(fraction, 6)}` : text;
}

export function formatTimestamp(micros: bigint): string {
  const days = floorDiv(micros, MICROS_PER_DAY);
  const timeOfDay = micros - days * MICROS_PER_DAY;
  const date = formatDate(Number(days));
  const bc = date.endsWith(' (BC)');
  const time = formatTime(timeOfDay);
  return bc ? `${date.slice(0, -5)} ${time} (BC)` : `${date} ${time}`;
}

/** A v3 nanosecond timestamp (nanoseconds from the epoch) as DuckDB TIMESTAMP_NS text. */
export function formatTimestampNanos(nanos: bigint): string {
  const micros = floorDiv(nanos, 1000n);
  const rest = Number(nanos - micros * 1000n);
  const text = formatTimestamp(micros);
  if (rest === 0) return text;
  const bc = text.endsWith(' (BC)');
  let withFraction = bc ? text.slice(0, -5) : text;
  if (!/\.\d{6}$/.test(withFraction)) withFraction += '.000000';
  withFraction += pad(rest, 3);
  return bc ? `${withFraction} (BC)` : withFraction;
}

export function formatDecimal(unscaled: bigint, scale: number): string {
  const negative = unscaled < 0n;
  const digits = (negative ? -unscaled : unscaled).toString().padStart(scale + 1, '0');
  const text = scale > 0 ? `${digits.slice(0, -scale)}.${digits.slice(-scale)}` : digits;
  return negative ? `-${text}` : text;
}

export function formatUuid(bytes: Uint8Array): string {
  const hex = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** DuckDB's text form of a BLOB: every byte as \xHH, which casts back byte for byte. */
export function formatBlob(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += `\\x${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

function formatFloating(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return 'Infinity';
  if (value === -Infinity) return '-Infinity';
  if (Object.is(value, -0)) return '-0.0';
  return String(value);
}

/** The SQL literal text of a value, castable to the DuckDB type of `type`. */
export function valueToSql(type: PrimitiveType, value: IcebergValue): string {
  switch (type.kind) {
    case 'boolean': return value ? 'true' : 'false';
    case 'int':
    case 'long': return String(value);
    case 'float':
    case 'double': return formatFloating(value as number);
    case 'decimal': return formatDecimal(value as bigint, type.scale);
    case 'date': return formatDate(value as number);
    case 'time': return formatTime(value as bigint);
    case 'timestamp': return formatTimestamp(value as bigint);
    case 'timestamptz': {
      const text = formatTimestamp(value as bigint);
      return text.endsWith(' (BC)') ? `${text.slice(0, -5)}+00 (BC)` : `${text}+00`;
    }
    case 'timestamp_ns': return formatTimestampNanos(value as bigint);
    case 'timestamptz_ns': {
      const text = formatTimestampNanos(value as bigint);
      return text.endsWith(' (BC)') ? `${text.slice(0, -5)}+00 (BC)` : `${text}+00`;
    }
    case 'string': return value as string;
    case 'uuid': return formatUuid(value as Uint8Array);
    case 'fixed':
    case 'binary': return formatBlob(value as Uint8Array);
  }
}

/** Decode a bound straight to its SQL literal text (undefined when it does not decode). */
export function boundToSql(type: PrimitiveType, bytes: Uint8Array): string | undefined {
  const value = decodeBound(type, bytes);
  return value === undefined ? undefined : valueToSql(type, value);
}
