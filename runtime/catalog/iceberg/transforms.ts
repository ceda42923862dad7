// Partition transforms (spec: Partition Transforms, Bucket and Truncate details, Appendix B):
// computing a partition value from a source value, and projecting a predicate on a source
// column onto the partition value (the spec's inclusive projection), for pruning.

import { PuffinError } from '../../errors.ts';
import { twosComplementMinBytes } from './bounds.ts';
import { murmur3x86_32 } from './murmur3.ts';
import type { LiteralRange } from './literals.ts';
import type { ValueTest } from './predicate.ts';
import type { PrimitiveType } from './types.ts';
import { civilFromDays, floorDiv, MICROS_PER_DAY, MICROS_PER_HOUR, compareValues, type IcebergValue } from './values.ts';

export type Transform =
  | { kind: 'identity' }
  | { kind: 'bucket'; n: number }
  | { kind: 'truncate'; width: number }
  | { kind: 'year' }
  | { kind: 'month' }
  | { kind: 'day' }
  | { kind: 'hour' }
  | { kind: 'void' }
  /** A transform this reader does not know: ignored for filtering, as the spec requires. */
  | { kind: 'unknown'; name: string };

export function parseTransform(text: string): Transform {
  const t = text.trim().toLowerCase();
  if (t === 'identity' || t === 'year' || t === 'month' || t === 'day' || t === 'hour' || t === 'void') return { kind: t };
  const bucket = /^bucket\[(\d+)\]$/.exec(t);
  if (bucket && Number(bucket[1]) > 0) return { kind: 'bucket', n: Number(bucket[1]) };
  const truncate = /^truncate\[(\d+)\]$/.exec(t);
  if (truncate && Number(truncate[1]) > 0) return { kind: 'truncate', width: Number(truncate[1]) };
  return { kind: 'unknown', name: text };
}

export function transformToString(t: Transform): string {
  switch (t.kind) {
    case 'bucket': return `bucket[${t.n}]`;
    case 'truncate': return `truncate[${t.width}]`;
    case 'unknown': return t.name;
    default: return t.kind;
  }
}

const INT: PrimitiveType = { kind: 'int' };

/** The type of the partition values a transform produces, or undefined when it cannot apply. */
export function transformResultType(t: Transform, source: PrimitiveType): PrimitiveType | undefined {
  switch (t.kind) {
    case 'identity':
    case 'void':
      return source;
    case 'bucket':
      return canBucket(source) ? INT : undefined;
    case 'truncate':
      return ['int', 'long', 'decimal', 'string', 'binary'].includes(source.kind) ? source : undefined;
    case 'year':
    case 'month':
    case 'day':
      return ['date', 'timestamp', 'timestamptz', 'timestamp_ns', 'timestamptz_ns'].includes(source.kind) ? INT : undefined;
    case 'hour':
      return ['timestamp', 'timestamptz', 'timestamp_ns', 'timestamptz_ns'].includes(source.kind) ? INT : undefined;
    case 'unknown':
      return undefined;
  }
}

function canBucket(source: PrimitiveType): boolean {
  return !['boolean', 'float', 'double'].includes(source.kind);
}

function longBytes(v: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigInt64(0, BigInt.asIntN(64, v), true);
  return out;
}

/** The bytes Appendix B hashes for a value of `type`. */
export function hashBytes(type: PrimitiveType, value: IcebergValue): Uint8Array {
  switch (type.kind) {
    case 'int':
    case 'date':
      return longBytes(BigInt(value as number));
    case 'long':
    case 'time':
    case 'timestamp':
    case 'timestamptz':
      return longBytes(value as bigint);
    // Appendix B: nanosecond timestamps hash as their microseconds.
    case 'timestamp_ns':
    case 'timestamptz_ns':
      return longBytes(floorDiv(value as bigint, 1000n));
    case 'decimal':
      return twosComplementMinBytes(value as bigint);
    case 'string':
      return new TextEncoder().encode(value as string);
    case 'uuid':
    case 'fixed':
    case 'binary':
      return value as Uint8Array;
    default:
      throw new PuffinError('unsupported', `bucket transform does not apply to ${type.kind} values`);
  }
}

/** The Appendix B hash of a value: the signed 32-bit Murmur3 of its bytes. */
export function icebergHash(type: PrimitiveType, value: IcebergValue): number {
  return murmur3x86_32(hashBytes(type, value));
}

export function bucketValue(type: PrimitiveType, value: IcebergValue, n: number): number {
  return (icebergHash(type, value) & 0x7fffffff) % n;
}

/**
 * truncate[W] of an int or long exactly as Java (the reference implementation) computes it:
 * `v - (((v % W) + W) % W)` in 32- or 64-bit two's-complement arithmetic, so the few values
 * within W of the type's minimum wrap around to a value near its maximum (Java's and so
 * Spark's partition values; `projectTest` accounts for them).
 */
export function truncateInteger(kind: 'int' | 'long', value: bigint, width: number): bigint {
  const bits = kind === 'int' ? 32 : 64;
  const w = BigInt(width);
  const inner = BigInt.asIntN(bits, (value % w) + w);
  return BigInt.asIntN(bits, value - (inner % w));
}

function truncateValue(type: PrimitiveType, value: IcebergValue, width: number): IcebergValue {
  switch (type.kind) {
    case 'int': return Number(truncateInteger('int', BigInt(value as number), width));
    case 'long': return truncateInteger('long', value as bigint, width);
    case 'decimal': {
      // On the unscaled value; Java uses BigInteger here, so there is no wrap-around.
      const v = value as bigint;
      const w = BigInt(width);
      return v - (((v % w) + w) % w);
    }
    case 'string': {
      // Truncate to `width` code points, never splitting a surrogate pair.
      const s = value as string;
      let end = 0;
      for (let count = 0; count < width && end < s.length; count++) end += (s.codePointAt(end) ?? 0) > 0xffff ? 2 : 1;
      return s.slice(0, end);
    }
    case 'binary':
      return (value as Uint8Array).slice(0, width);
    default:
      throw new PuffinError('unsupported', `truncate transform does not apply to ${type.kind} values`);
  }
}

function daysOf(type: PrimitiveType, value: IcebergValue): number {
  return type.kind === 'date' ? (value as number) : Number(floorDiv(value as bigint, MICROS_PER_DAY * unitsPerMicro(type)));
}

/** v3 nanosecond timestamps count nanoseconds; the others, microseconds. */
function unitsPerMicro(type: PrimitiveType): bigint {
  return type.kind === 'timestamp_ns' || type.kind === 'timestamptz_ns' ? 1000n : 1n;
}

/** Apply a transform to a source value; null in, null out. */
export function applyTransform(t: Transform, type: PrimitiveType, value: IcebergValue | null): IcebergValue | null {
  if (value === null) return null;
  switch (t.kind) {
    case 'identity': return value;
    case 'void': return null;
    case 'bucket': return bucketValue(type, value, t.n);
    case 'truncate': return truncateValue(type, value, t.width);
    case 'year': return civilFromDays(daysOf(type, value)).year - 1970;
    case 'month': {
      const { year, month } = civilFromDays(daysOf(type, value));
      return (year - 1970) * 12 + (month - 1);
    }
    case 'day': return daysOf(type, value);
    case 'hour': return Number(floorDiv(value as bigint, MICROS_PER_HOUR * unitsPerMicro(type)));
    case 'unknown': throw new PuffinError('unsupported', `unknown partition transform '${t.name}'`);
  }
}

/** The next (+1) or previous (-1) value of an integer-like type; other values unchanged. */
function step(type: PrimitiveType, value: IcebergValue, by: 1 | -1): IcebergValue {
  if (typeof value === 'bigint') return value + BigInt(by);
  if (typeof value === 'number' && (type.kind === 'int' || type.kind === 'date')) return value + by;
  return value;
}

/**
 * The partition values truncate[W] gives the int/long values in [lo, hi] (either end open):
 * one range of ordinary values, plus the single wrapped-around value of those below the first
 * multiple of W at or above the type's minimum (see `truncateInteger`). Bounds outside the
 * type are clamped (an int column never holds 3e9). Undefined when W is so large that Java's
 * `(v % W) + W` itself overflows and the result is not monotone.
 */
function truncateIntegerRanges(kind: 'int' | 'long', width: number, lo: bigint | undefined, hi: bigint | undefined): LiteralRange[] | undefined {
  const bits = kind === 'int' ? 32n : 64n;
  const min = -(1n << (bits - 1n));
  const max = (1n << (bits - 1n)) - 1n;
  const w = BigInt(width);
  if (w > 1n << (bits - 2n)) return undefined;
  const l = lo === undefined || lo < min ? min : lo;
  const h = hi === undefined || hi > max ? max : hi;
  if (l > h) return [];
  const exact = (v: bigint): bigint => v - (((v % w) + w) % w);
  const first = exact(min) === min ? min : exact(min) + w;
  const out: { lo: bigint; hi: bigint }[] = [];
  if (l < first) {
    const wrapped = exact(min) + (1n << bits);
    out.push({ lo: wrapped, hi: wrapped });
  }
  if (h >= first) out.push({ lo: exact(l < first ? first : l), hi: exact(h) });
  return kind === 'int' ? out.map((r) => ({ lo: Number(r.lo), hi: Number(r.hi) })) : out;
}

const toBig = (v: IcebergValue | undefined): bigint | undefined => (v === undefined ? undefined : BigInt(v as number | bigint));

/** Transforms whose output never decreases as their input grows: ranges map to ranges. */
function isOrderPreserving(t: Transform): boolean {
  return ['identity', 'truncate', 'year', 'month', 'day', 'hour'].includes(t.kind);
}

/**
 * Inclusive projection: a test on the partition value that every partition holding a row
 * passing `test` (on the source column) also passes. Undefined means "no constraint".
 */
export function projectTest(t: Transform, source: PrimitiveType, test: ValueTest): ValueTest | undefined {
  if (transformResultType(t, source) === undefined || t.kind === 'void') return undefined;
  if (t.kind === 'identity') return test;
  switch (test.kind) {
    case 'is_null':
    case 'not_null':
      return test;
    case 'ne':
      return undefined;
    case 'in': {
      if (t.kind === 'bucket') {
        if (!test.ranges.every((r) => compareValues(r.lo, r.hi) === 0)) return undefined;
        const buckets = [...new Set(test.ranges.map((r) => bucketValue(source, r.lo, t.n)))];
        return { kind: 'in', ranges: buckets.map((b) => ({ lo: b, hi: b })) };
      }
      if (t.kind === 'truncate' && (source.kind === 'int' || source.kind === 'long')) {
        const ranges: LiteralRange[] = [];
        for (const r of test.ranges) {
          const projected = truncateIntegerRanges(source.kind, t.width, toBig(r.lo), toBig(r.hi));
          if (!projected) return undefined;
          ranges.push(...projected);
        }
        return { kind: 'in', ranges };
      }
      return {
        kind: 'in',
        ranges: test.ranges.map((r) => ({ lo: applyTransform(t, source, r.lo) as IcebergValue, hi: applyTransform(t, source, r.hi) as IcebergValue })),
      };
    }
    case 'range': {
      if (t.kind === 'bucket') {
        const isPoint = test.lo !== undefined && test.hi !== undefined && test.loInclusive && test.hiInclusive && compareValues(test.lo, test.hi) === 0;
        if (!isPoint) return undefined;
        const b = bucketValue(source, test.lo as IcebergValue, t.n);
        return { kind: 'in', ranges: [{ lo: b, hi: b }] };
      }
      if (!isOrderPreserving(t)) return undefined;
      if (t.kind === 'truncate' && (source.kind === 'int' || source.kind === 'long')) {
        const lo = test.lo === undefined ? undefined : toBig(test.lo) as bigint + (test.loInclusive ? 0n : 1n);
        const hi = test.hi === undefined ? undefined : toBig(test.hi) as bigint - (test.hiInclusive ? 0n : 1n);
        const ranges = truncateIntegerRanges(source.kind, t.width, lo, hi);
        if (!ranges) return undefined;
        if (ranges.length === 1) {
          const only: ValueTest = { kind: 'range', loInclusive: true, hiInclusive: true };
          if (test.lo !== undefined) only.lo = ranges[0].lo;
          if (test.hi !== undefined) only.hi = ranges[0].hi;
          return only;
        }
        return { kind: 'in', ranges };
      }
      // Boundaries become inclusive: the partition of an excluded boundary value may still
      // hold values inside the range. On integer-like types an excluded boundary first steps
      // to its neighbour (ts < midnight -> ts <= midnight - 1us -> day <= the day before).
      const projected: ValueTest = { kind: 'range', loInclusive: true, hiInclusive: true };
      if (test.lo !== undefined) projected.lo = applyTransform(t, source, test.loInclusive ? test.lo : step(source, test.lo, 1)) as IcebergValue;
      if (test.hi !== undefined) projected.hi = applyTransform(t, source, test.hiInclusive ? test.hi : step(source, test.hi, -1)) as IcebergValue;
      return projected;
    }
  }
}
