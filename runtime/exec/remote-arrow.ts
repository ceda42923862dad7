// An Arrow IPC stream read back as a QueryResult: DuckDB's column types and DuckDB's JSON
// value forms (big integers and decimals as exact text, temporal values as DuckDB prints
// them), the inverse of runtime/results/arrow.ts, for answers of remote instances
// (runtime/exec/remote-fetch.ts). Types that travel as text there (nested types, INTERVAL,
// BLOB, ...) come back as VARCHAR. A module of its own so Apache Arrow loads only when a
// remote answers.

import { DataType, makeVector, tableFromIPC, type Table, type Vector } from 'apache-arrow';
import type { JsonValue, QueryResult } from '../engine/engine.ts';

/** The rows of an Arrow IPC stream; throws when it is not one (or has no column). */
export function readArrowResult(body: Uint8Array): QueryResult {
  const table = tableFromIPC(body);
  if (table.schema.fields.length === 0) throw new Error('the stream has no columns');
  return arrowResult(table);
}

/** The DuckDB type of an Arrow field as results/arrow.ts writes them (nested and other types travel as text). */
export function duckdbTypeOf(type: DataType): string {
  if (DataType.isBool(type)) return 'BOOLEAN';
  if (DataType.isInt(type)) return `${type.isSigned ? '' : 'U'}${{ 8: 'TINYINT', 16: 'SMALLINT', 32: 'INTEGER', 64: 'BIGINT' }[type.bitWidth as 8 | 16 | 32 | 64]}`;
  if (DataType.isFloat(type)) return type.precision === 0 ? 'FLOAT' : type.precision === 1 ? 'FLOAT' : 'DOUBLE';
  if (DataType.isDecimal(type)) return `DECIMAL(${type.precision},${type.scale})`;
  if (DataType.isDate(type)) return 'DATE';
  if (DataType.isTime(type)) return 'TIME';
  if (DataType.isTimestamp(type)) {
    if (type.timezone) return 'TIMESTAMP WITH TIME ZONE';
    return ['TIMESTAMP_S', 'TIMESTAMP_MS', 'TIMESTAMP', 'TIMESTAMP_NS'][type.unit];
  }
  return 'VARCHAR';
}

const NANOS_PER_UNIT = [1_000_000_000n, 1_000_000n, 1_000n, 1n];

/** Days since 1970-01-01 as 'YYYY-MM-DD' (DuckDB's form; years before 1 as 'YYYY-MM-DD (BC)'). */
function dateText(days: number): string {
  const d = new Date(days * 86_400_000);
  const y = d.getUTCFullYear();
  const md = `${String(d.getUTCMonth() + 1).padStart(2, '0')}-${String(d.getUTCDate()).padStart(2, '0')}`;
  return y > 0 ? `${String(y).padStart(4, '0')}-${md}` : `${String(1 - y).padStart(4, '0')}-${md} (BC)`;
}

/** Nanoseconds within a day as 'HH:MM:SS[.fraction]' with trailing zeros dropped, as DuckDB prints. */
function timeText(nanos: bigint): string {
  const s = nanos / 1_000_000_000n;
  const frac = (nanos % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  const hh = String(s / 3600n).padStart(2, '0');
  const mm = String((s / 60n) % 60n).padStart(2, '0');
  const ss = String(s % 60n).padStart(2, '0');
  return `${hh}:${mm}:${ss}${frac ? `.${frac}` : ''}`;
}

function timestampText(value: bigint, unit: number, tz: boolean): string {
  const nanos = value * NANOS_PER_UNIT[unit];
  const day = 86_400_000_000_000n;
  let days = nanos / day;
  let rest = nanos % day;
  if (rest < 0n) {
    rest += day;
    days -= 1n;
  }
  const text = `${dateText(Number(days))} ${timeText(rest)}`;
  return tz ? text.replace(/( \(BC\))?$/, '+00$1') : text;
}

/** An unscaled 128-bit decimal (four little-endian 32-bit words) as DuckDB's text of it. */
function decimalText(words: Uint32Array, scale: number): string {
  let v = 0n;
  for (let w = 3; w >= 0; w--) v = (v << 32n) | BigInt(words[w]);
  v = BigInt.asIntN(128, v);
  const negative = v < 0n;
  const digits = (negative ? -v : v).toString().padStart(scale + 1, '0');
  const text = scale > 0 ? `${digits.slice(0, -scale)}.${digits.slice(-scale)}` : digits;
  return negative ? `-${text}` : text;
}

/** One column's values in DuckDB's JSON forms (engine.ts: big integers and decimals as exact text). */
function columnValues(vector: Vector, type: DataType): JsonValue[] {
  const out: JsonValue[] = [];
  for (const data of vector.data) {
    const values = data.values as ArrayLike<number | bigint>;
    // apache-arrow's own decoding, for the types whose values it reads exactly.
    const chunk = makeVector(data);
    for (let i = 0; i < data.length; i++) {
      if (!data.getValid(i)) {
        out.push(null);
        continue;
      }
      if (DataType.isDecimal(type)) out.push(decimalText((data.values as Uint32Array).subarray(i * 4, i * 4 + 4), type.scale));
      else if (DataType.isInt(type)) out.push(type.bitWidth === 64 ? String(values[i]) : Number(values[i]));
      else if (DataType.isTimestamp(type)) out.push(timestampText(BigInt(values[i]), type.unit, Boolean(type.timezone)));
      else if (DataType.isDate(type)) out.push(dateText(type.unit === 0 ? Number(values[i]) : Math.floor(Number(values[i]) / 86_400_000)));
      else if (DataType.isTime(type)) out.push(timeText(BigInt(values[i]) * NANOS_PER_UNIT[type.unit]));
      else if (DataType.isFloat(type)) {
        const f = Number(chunk.get(i));
        out.push(Number.isFinite(f) ? f : Number.isNaN(f) ? 'NaN' : f > 0 ? 'Infinity' : '-Infinity');
      } else if (DataType.isBool(type)) out.push(Boolean(chunk.get(i)));
      else {
        const v: unknown = chunk.get(i);
        out.push(v === null || v === undefined ? null : String(v));
      }
    }
  }
  return out;
}

/** An Arrow table as a QueryResult: DuckDB types, DuckDB's JSON value forms. */
export function arrowResult(table: Table): QueryResult {
  const fields = table.schema.fields;
  const columns = fields.map((f) => ({ name: f.name, type: duckdbTypeOf(f.type) }));
  const values = fields.map((f, i) => columnValues(table.getChildAt(i)!, f.type));
  const rows: JsonValue[][] = [];
  for (let r = 0; r < table.numRows; r++) rows.push(values.map((col) => col[r]));
  return { columns, rows };
}
