// Query results as an Arrow IPC stream (`Accept: application/vnd.apache.arrow.stream`),
// typed the way DuckDB's own Arrow export types them, so a client reading the stream with
// apache-arrow sees int64 for BIGINT, decimal128(p, s) for DECIMAL(p, s), date32 for DATE,
// timestamp[us] for TIMESTAMP, and so on. Values arrive here as DuckDB's exact JSON forms
// (big integers and decimals as digit strings, temporal values as text) and are converted
// without passing through a double. Types without a faithful Arrow form here (nested types,
// INTERVAL, BLOB, UHUGEINT, ...) travel as UTF-8 text: JSON for nested values.

import {
  Bool, DataType, Decimal, Field, Float32, Float64, Int8, Int16, Int32, Int64, makeData, RecordBatch, Schema, Struct, Table,
  tableToIPC, TimeMicrosecond, Timestamp, TimeUnit, Uint8, Uint16, Uint32, Uint64, Utf8, vectorFromArray, DateDay, type Data,
} from 'apache-arrow';
import { daysFromCivil, floorDiv } from '../catalog/iceberg/values.ts';
import type { JsonValue, QueryResult, ResultColumn } from '../engine/engine.ts';
import { PuffinError } from '../errors.ts';

export { ARROW_STREAM_TYPE } from './text.ts';

/** DuckDB's ±infinity timestamps are the extreme int64 values. */
const INT64_MAX = (1n << 63n) - 1n;

/** The Arrow type DuckDB would export for a DuckDB type name. */
export function arrowTypeOf(duckdbType: string): DataType {
  const type = duckdbType.trim().toUpperCase();
  const decimal = /^DECIMAL\((\d+),\s*(\d+)\)$/.exec(type);
  if (decimal) return new Decimal(Number(decimal[2]), Number(decimal[1]), 128);
  switch (type) {
    case 'BOOLEAN': return new Bool();
    case 'TINYINT': return new Int8();
    case 'SMALLINT': return new Int16();
    case 'INTEGER': return new Int32();
    case 'BIGINT': return new Int64();
    case 'UTINYINT': return new Uint8();
    case 'USMALLINT': return new Uint16();
    case 'UINTEGER': return new Uint32();
    case 'UBIGINT': return new Uint64();
    case 'HUGEINT': return new Decimal(0, 38, 128);
    case 'FLOAT': return new Float32();
    case 'DOUBLE': return new Float64();
    case 'DATE': return new DateDay();
    case 'TIME': return new TimeMicrosecond();
    case 'TIMESTAMP_S': return new Timestamp(TimeUnit.SECOND);
    case 'TIMESTAMP_MS': return new Timestamp(TimeUnit.MILLISECOND);
    case 'TIMESTAMP':
    case 'TIMESTAMP_US': return new Timestamp(TimeUnit.MICROSECOND);
    case 'TIMESTAMP_NS': return new Timestamp(TimeUnit.NANOSECOND);
    case 'TIMESTAMP WITH TIME ZONE': return new Timestamp(TimeUnit.MICROSECOND, 'UTC');
    default: return new Utf8();
  }
}

/** The Arrow schema of a result's columns. */
export function arrowSchemaOf(columns: readonly ResultColumn[]): Schema {
  return new Schema(columns.map((c) => new Field(c.name, arrowTypeOf(c.type), true)));
}

/** A result's rows as one record batch of `schema` (arrowSchemaOf its columns). */
export function toRecordBatch(result: QueryResult, schema: Schema = arrowSchemaOf(result.columns)): RecordBatch {
  const fields = schema.fields;
  const children = result.columns.map((c, i) => columnData(fields[i].type, c.type, result.rows.map((row) => row[i])));
  return new RecordBatch(schema, makeData({ type: new Struct(fields), length: result.rows.length, nullCount: 0, children }));
}

/** Encode a result as one Arrow IPC stream (schema message, one record batch). */
export function toArrowIpc(result: QueryResult): Uint8Array {
  const schema = arrowSchemaOf(result.columns);
  return tableToIPC(new Table(schema, toRecordBatch(result, schema)), 'stream');
}

/** The end-of-stream marker of the IPC stream format: continuation token, zero length. */
const END_OF_STREAM = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);

/**
 * One Arrow IPC stream written batch by batch, as its rows arrive: the schema message, then
 * one record batch message per chunk of rows, then the end-of-stream marker. Nothing is held
 * but the chunk being encoded, so a consumer that reads slowly slows the producer down.
 */
export async function* arrowIpcChunks(columns: readonly ResultColumn[], chunks: AsyncIterable<JsonValue[][]>): AsyncGenerator<Uint8Array> {
  const schema = arrowSchemaOf(columns);
  // apache-arrow writes whole streams; a stream of no batch is the schema message and the
  // marker, so every one-batch stream is that prefix, the batch's message, and the marker.
  const empty = tableToIPC(new Table(schema), 'stream');
  const prefix = empty.byteLength - END_OF_STREAM.byteLength;
  yield empty.subarray(0, prefix);
  for await (const rows of chunks) {
    if (rows.length === 0) continue;
    const one = tableToIPC(new Table(schema, toRecordBatch({ columns: [...columns], rows }, schema)), 'stream');
    yield one.subarray(prefix, one.byteLength - END_OF_STREAM.byteLength);
  }
  yield END_OF_STREAM;
}

function columnData(type: DataType, duckdbType: string, values: JsonValue[]): Data {
  const where = (i: number) => `column of type ${duckdbType}, row ${i + 1}`;
  if (type instanceof Decimal) {
    const words = new Uint32Array(values.length * 4);
    values.forEach((v, i) => v !== null && writeInt128(words, i, unscaledDecimal(v, type.scale, where(i))));
    return fixedWidth(type, values, words);
  }
  if (type instanceof Int64 || type instanceof Uint64) {
    const out = type instanceof Int64 ? new BigInt64Array(values.length) : new BigUint64Array(values.length);
    values.forEach((v, i) => v !== null && (out[i] = BigInt(integerText(v, where(i)))));
    return fixedWidth(type, values, out);
  }
  if (type instanceof Timestamp) {
    const out = new BigInt64Array(values.length);
    values.forEach((v, i) => v !== null && (out[i] = timestampIn(String(v), type.unit, where(i))));
    return fixedWidth(type, values, out);
  }
  if (type instanceof DateDay) {
    const out = new Int32Array(values.length);
    values.forEach((v, i) => v !== null && (out[i] = dateDays(String(v), where(i))));
    return fixedWidth(type, values, out);
  }
  if (type instanceof TimeMicrosecond) {
    const out = new BigInt64Array(values.length);
    values.forEach((v, i) => v !== null && (out[i] = timeMicros(String(v), where(i))));
    return fixedWidth(type, values, out);
  }
  if (type instanceof Float32 || type instanceof Float64) {
    // NaN and the infinities arrive as DuckDB's strings for them.
    return vectorFromArray(values.map((v) => (v === null ? null : Number(v))), type).data[0];
  }
  if (type instanceof Utf8) {
    return vectorFromArray(values.map((v) => (v === null ? null : typeof v === 'string' ? v : JSON.stringify(v))), type).data[0];
  }
  if (type instanceof Bool) return vectorFromArray(values.map((v) => (v === null ? null : Boolean(v))), type).data[0];
  return vectorFromArray(values.map((v) => (v === null ? null : Number(v))), type).data[0];
}

/** Fixed-width column data from typed values and the validity of `values`. */
function fixedWidth(type: DataType, values: JsonValue[], data: ArrayBufferView): Data {
  const bitmap = new Uint8Array((values.length + 7) >> 3);
  let nullCount = 0;
  values.forEach((v, i) => {
    if (v === null) nullCount++;
    else bitmap[i >> 3] |= 1 << (i & 7);
  });
  return makeData({ type, length: values.length, nullCount, nullBitmap: nullCount ? bitmap : null, data } as never);
}

function integerText(value: JsonValue, where: string): string {
  const text = String(value);
  if (!/^-?\d+$/.test(text)) throw new PuffinError('internal', `cannot write '${text}' as an Arrow integer (${where})`);
  return text;
}

/** '-123.45' at scale 2 -> -12345n, exactly. */
function unscaledDecimal(value: JsonValue, scale: number, where: string): bigint {
  const text = String(value);
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text);
  if (!m) throw new PuffinError('internal', `cannot write '${text}' as an Arrow decimal (${where})`);
  const fraction = (m[3] ?? '').padEnd(scale, '0');
  if (fraction.length > scale) throw new PuffinError('internal', `'${text}' has more than ${scale} decimal places (${where})`);
  const magnitude = BigInt(m[2] + fraction);
  return m[1] ? -magnitude : magnitude;
}

/** A 128-bit two's complement integer as four little-endian 32-bit words. */
function writeInt128(words: Uint32Array, index: number, value: bigint): void {
  let v = BigInt.asUintN(128, value);
  for (let w = 0; w < 4; w++) {
    words[index * 4 + w] = Number(v & 0xffffffffn);
    v >>= 32n;
  }
}

const DATE_TEXT = /^(\d{4,})-(\d{2})-(\d{2})( \(BC\))?/;

/** DuckDB prints years before 1 as '0044-03-15 (BC)': year 44 BC is astronomical year -43. */
function dateDays(text: string, where: string): number {
  const m = DATE_TEXT.exec(text);
  if (!m) throw new PuffinError('unsupported', `date '${text}' has no Arrow date32 form (${where})`);
  const year = m[4] ? 1 - Number(m[1]) : Number(m[1]);
  return daysFromCivil(year, Number(m[2]), Number(m[3]));
}

const TIME_TEXT = /^(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?/;

function timeNanos(text: string, where: string): bigint {
  const m = TIME_TEXT.exec(text);
  if (!m) throw new PuffinError('internal', `cannot read time '${text}' (${where})`);
  const seconds = BigInt(Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]));
  return seconds * 1_000_000_000n + BigInt((m[4] ?? '').padEnd(9, '0'));
}

function timeMicros(text: string, where: string): bigint {
  return timeNanos(text, where) / 1000n;
}

const UNIT_NANOS: Record<TimeUnit, bigint> = {
  [TimeUnit.SECOND]: 1_000_000_000n,
  [TimeUnit.MILLISECOND]: 1_000_000n,
  [TimeUnit.MICROSECOND]: 1_000n,
  [TimeUnit.NANOSECOND]: 1n,
};

/** '2020-01-02 03:04:05.123456[+05:30][ (BC)]' in `unit`s since the epoch, UTC. */
function timestampIn(text: string, unit: TimeUnit, where: string): bigint {
  if (text === 'infinity') return INT64_MAX;
  if (text === '-infinity') return -INT64_MAX;
  const m = /^(\d{4,}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?)(?:([+-])(\d{2})(?::(\d{2}))?(?::(\d{2}))?)?( \(BC\))?$/.exec(text);
  if (!m) throw new PuffinError('internal', `cannot read timestamp '${text}' (${where})`);
  const days = BigInt(dateDays(m[1] + (m[7] ?? ''), where));
  let nanos = days * 86_400_000_000_000n + timeNanos(m[2], where);
  if (m[3]) {
    const offsetSeconds = BigInt(Number(m[4]) * 3600 + Number(m[5] ?? 0) * 60 + Number(m[6] ?? 0));
    nanos += (m[3] === '+' ? -1n : 1n) * offsetSeconds * 1_000_000_000n;
  }
  // Floor division, so instants before the epoch round toward the past like DuckDB's.
  return floorDiv(nanos, UNIT_NANOS[unit]);
}
