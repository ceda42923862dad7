// Literals of scan predicates and column defaults, turned into Iceberg values. A literal
// arrives as SQL literal text (what goes inside the quotes: '1994-01-01', '0.05') or as a
// JavaScript primitive. Where the value DuckDB would compare against is not pinned down
// exactly (0.055 against DECIMAL(15,2), a timestamptz without an offset whose meaning depends
// on the session time zone, 0.1 against a 32-bit FLOAT) the literal becomes the range of
// values it may denote, so pruning stays conservative.

import { PuffinError } from '../../errors.ts';
import type { PrimitiveType } from './types.ts';
import { compareValues, daysFromCivil, MICROS_PER_DAY, MICROS_PER_HOUR, type IcebergValue } from './values.ts';

export type LiteralInput = string | number | bigint | boolean;

/** The values a literal may denote: exactly one when `lo` equals `hi`. */
export interface LiteralRange {
  lo: IcebergValue;
  hi: IcebergValue;
}

/** Parse a literal for comparison with a column of `type`; undefined when it cannot be. */
export function parseLiteral(type: PrimitiveType, literal: LiteralInput): LiteralRange | undefined {
  switch (type.kind) {
    case 'boolean': return exact(parseBoolean(literal));
    case 'int': {
      const r = integerRange(literal);
      return r && { lo: Number(r.lo), hi: Number(r.hi) };
    }
    case 'long': return integerRange(literal);
    case 'decimal': return decimalRange(literal, type.scale);
    case 'float': {
      const v = parseFloating(literal);
      if (v === undefined) return undefined;
      // DuckDB may round the literal to FLOAT or widen the column to DOUBLE: allow both.
      const f = Math.fround(v);
      return { lo: Math.min(v, f), hi: Math.max(v, f) };
    }
    case 'double': return exact(parseFloating(literal));
    case 'date': return typeof literal === 'string' ? exact(parseDate(unwrap(literal))) : undefined;
    case 'time': return typeof literal === 'string' ? parseTime(unwrap(literal)) : undefined;
    case 'timestamp':
    case 'timestamptz': return typeof literal === 'string' ? parseTimestamp(unwrap(literal), type.kind === 'timestamptz') : undefined;
    case 'string': return typeof literal === 'string' ? exact(literal) : undefined;
    case 'uuid': return typeof literal === 'string' ? exact(parseUuid(unwrap(literal))) : undefined;
    case 'fixed':
    case 'binary': {
      const bytes = typeof literal === 'string' ? parseBlob(literal) : undefined;
      if (bytes && type.kind === 'fixed' && bytes.length !== type.length) return undefined;
      return exact(bytes);
    }
  }
}

/** Parse a literal that must denote exactly one value (writers, defaults); throws otherwise. */
export function parseValue(type: PrimitiveType, literal: LiteralInput): IcebergValue {
  const range = parseLiteral(type, literal);
  if (!range || compareValues(range.lo, range.hi) !== 0) {
    throw new PuffinError('bad_request', `${JSON.stringify(typeof literal === 'bigint' ? String(literal) : literal)} is not a ${type.kind} value`);
  }
  return range.lo;
}

function exact(value: IcebergValue | undefined): LiteralRange | undefined {
  return value === undefined ? undefined : { lo: value, hi: value };
}

/** Accept `DATE '1994-01-01'` or `'1994-01-01'` as well as the bare text, for typed columns. */
function unwrap(text: string): string {
  const m = /^\s*(?:[A-Za-z][A-Za-z_ ]*)?'((?:[^']|'')*)'\s*$/.exec(text);
  return (m ? m[1].replace(/''/g, "'") : text).trim();
}

function parseBoolean(literal: LiteralInput): boolean | undefined {
  if (typeof literal === 'boolean') return literal;
  if (typeof literal === 'number' || typeof literal === 'bigint') {
    return literal == 0 ? false : literal == 1 ? true : undefined;
  }
  const t = unwrap(literal).toLowerCase();
  if (['true', 't', '1', 'yes', 'y', 'on'].includes(t)) return true;
  if (['false', 'f', '0', 'no', 'n', 'off'].includes(t)) return false;
  return undefined;
}

/** A decimal number as an unscaled integer and a scale (scale may be negative after 1e5). */
function parseNumber(literal: LiteralInput): { unscaled: bigint; scale: number } | undefined {
  if (typeof literal === 'bigint') return { unscaled: literal, scale: 0 };
  if (typeof literal === 'boolean') return undefined;
  if (typeof literal === 'number' && !Number.isFinite(literal)) return undefined;
  const text = typeof literal === 'number' ? String(literal) : unwrap(literal);
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:e([+-]?\d+))?$/i.exec(text);
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) return undefined;
  const fraction = m[3] ?? '';
  const unscaled = BigInt(`${m[1] === '-' ? '-' : ''}${m[2] || '0'}${fraction}`);
  const exponent = m[4] ? Number(m[4]) : 0;
  return { unscaled, scale: fraction.length - exponent };
}

/** The integers that the decimal `unscaled * 10^-scale` lies between, rescaled to `target`. */
function rescale(n: { unscaled: bigint; scale: number }, target: number): LiteralRange {
  if (n.scale <= target) {
    const v = n.unscaled * 10n ** BigInt(target - n.scale);
    return { lo: v, hi: v };
  }
  const divisor = 10n ** BigInt(n.scale - target);
  const truncated = n.unscaled / divisor;
  if (truncated * divisor === n.unscaled) return { lo: truncated, hi: truncated };
  return n.unscaled < 0n ? { lo: truncated - 1n, hi: truncated } : { lo: truncated, hi: truncated + 1n };
}

function integerRange(literal: LiteralInput): LiteralRange | undefined {
  const n = parseNumber(literal);
  return n && rescale(n, 0);
}

function decimalRange(literal: LiteralInput, scale: number): LiteralRange | undefined {
  const n = parseNumber(literal);
  return n && rescale(n, scale);
}

function parseFloating(literal: LiteralInput): number | undefined {
  if (typeof literal === 'number') return Number.isNaN(literal) ? undefined : literal;
  if (typeof literal === 'bigint') return Number(literal);
  if (typeof literal === 'boolean') return undefined;
  const t = unwrap(literal).toLowerCase();
  if (t === 'inf' || t === 'infinity' || t === '+inf' || t === '+infinity') return Infinity;
  if (t === '-inf' || t === '-infinity') return -Infinity;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/.test(t)) return undefined;
  return Number(t);
}

function parseDate(text: string): number | undefined {
  const m = /^(\d{1,7})-(\d{1,2})-(\d{1,2})( \(BC\))?$/i.exec(text);
  if (!m) return undefined;
  const year = m[4] ? 1 - Number(m[1]) : Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  if (month < 1 || month > 12 || day < 1 || day > 31) return undefined;
  // Reject dates that roll over (2023-02-30), as DuckDB's cast does.
  return day <= daysInMonth(year, month) ? daysFromCivil(year, month, day) : undefined;
}

function daysInMonth(year: number, month: number): number {
  return daysFromCivil(month === 12 ? year + 1 : year, month === 12 ? 1 : month + 1, 1) - daysFromCivil(year, month, 1);
}

/** Microseconds of a time of day; sub-microsecond digits widen the range. */
function timeOfDay(h: string, m: string, s: string | undefined, f: string | undefined): LiteralRange | undefined {
  const hours = Number(h);
  const minutes = Number(m);
  const seconds = s === undefined ? 0 : Number(s);
  if (hours > 24 || minutes > 59 || seconds > 59) return undefined;
  const whole = BigInt(((hours * 60 + minutes) * 60 + seconds)) * 1_000_000n;
  const digits = f ?? '';
  const micros = BigInt((digits.slice(0, 6) || '0').padEnd(6, '0'));
  const lo = whole + micros;
  const hi = digits.length > 6 && /[1-9]/.test(digits.slice(6)) ? lo + 1n : lo;
  return { lo, hi };
}

function parseTime(text: string): LiteralRange | undefined {
  const m = /^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?$/.exec(text);
  return m ? timeOfDay(m[1], m[2], m[3], m[4]) : undefined;
}

/** Any zone offset lies within 14 hours of UTC: the widest a zone-less literal can move. */
const MAX_OFFSET = 14n * MICROS_PER_HOUR;

function parseTimestamp(text: string, withZone: boolean): LiteralRange | undefined {
  const m = /^(\d{1,7}-\d{1,2}-\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|UTC|[+-]\d{1,2}(?::?\d{2})?)?$/i.exec(text);
  if (!m) return undefined;
  const days = parseDate(m[1]);
  if (days === undefined) return undefined;
  const time = m[2] === undefined ? { lo: 0n, hi: 0n } : timeOfDay(m[2], m[3], m[4], m[5]);
  if (!time) return undefined;
  const base = BigInt(days) * MICROS_PER_DAY;
  let lo = base + (time.lo as bigint);
  let hi = base + (time.hi as bigint);
  const zone = m[6];
  if (zone) {
    let offset = 0n;
    if (!/^(z|utc)$/i.test(zone)) {
      const z = /^([+-])(\d{1,2})(?::?(\d{2}))?$/.exec(zone);
      if (!z) return undefined;
      offset = BigInt(Number(z[2]) * 60 + Number(z[3] ?? 0)) * 60_000_000n * (z[1] === '-' ? -1n : 1n);
    }
    if (withZone) return { lo: lo - offset, hi: hi - offset };
    // A zoned literal against a zone-less column: DuckDB may drop or apply the offset.
    return { lo: offset > 0n ? lo - offset : lo, hi: offset < 0n ? hi - offset : hi };
  }
  if (withZone) {
    // Interpreted in the session time zone, which the planner does not know here.
    lo -= MAX_OFFSET;
    hi += MAX_OFFSET;
  }
  return { lo, hi };
}

function parseUuid(text: string): Uint8Array | undefined {
  const hex = text.replace(/^\{|\}$/g, '').replace(/-/g, '');
  if (!/^[0-9a-f]{32}$/i.test(hex)) return undefined;
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

/** DuckDB's BLOB text: \xHH escapes and printable ASCII characters. */
export function parseBlob(text: string): Uint8Array | undefined {
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5c) {
      const m = /^\\x([0-9a-f]{2})/i.exec(text.slice(i, i + 4));
      if (!m) return undefined;
      out.push(parseInt(m[1], 16));
      i += 3;
    } else if (c < 0x80) {
      out.push(c);
    } else {
      return undefined;
    }
  }
  return Uint8Array.from(out);
}
