// Iceberg v3 deletion vectors (Puffin spec, blob type `deletion-vector-v1`): the deleted row
// positions of one data file as a Roaring bitmap in the "portable" 64-bit serialization.
// A manifest entry locates the blob directly (content_offset, content_size_in_bytes), so the
// Puffin footer is never read. Blob layout, all from the spec:
//   u32 big-endian  length of magic + vector
//   4 bytes         magic D1 D3 39 64
//   vector          u64 LE count of 32-bit bitmaps, then per bitmap a u32 LE key (the high
//                   32 bits of its positions) and a 32-bit Roaring bitmap (portable format)
//   u32 big-endian  CRC-32 of magic + vector

import { closeSync, openSync, readSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { PuffinError } from '../../errors.ts';

const MAGIC = [0xd1, 0xd3, 0x39, 0x64];
const SERIAL_COOKIE_NO_RUNCONTAINER = 12346;
const SERIAL_COOKIE = 12347;
const NO_OFFSET_THRESHOLD = 4;

/** Deleted positions as sorted, disjoint half-open ranges [start, end). */
export type PositionRanges = [start: bigint, end: bigint][];

class Cursor {
  pos = 0;
  constructor(readonly bytes: Uint8Array, readonly where: string) {}

  need(n: number): void {
    if (this.pos + n > this.bytes.length) throw new PuffinError('bad_request', `${this.where}: the Roaring bitmap ends early (at byte ${this.pos}, ${n} more needed)`);
  }

  u16(): number {
    this.need(2);
    const v = this.bytes[this.pos] | (this.bytes[this.pos + 1] << 8);
    this.pos += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const b = this.bytes;
    const v = (b[this.pos] | (b[this.pos + 1] << 8) | (b[this.pos + 2] << 16)) + b[this.pos + 3] * 0x1000000;
    this.pos += 4;
    return v;
  }

  u64(): bigint {
    const lo = BigInt(this.u32());
    const hi = BigInt(this.u32());
    return (hi << 32n) | lo;
  }
}

/** Append [start, end) to ranges, merging with the last one when adjacent. */
function push(out: [number, number][], start: number, end: number): void {
  const last = out[out.length - 1];
  if (last && last[1] === start) last[1] = end;
  else out.push([start, end]);
}

/** One 32-bit portable Roaring bitmap, as ranges of 32-bit values; `c` ends after it. */
function decodeBitmap32(c: Cursor): [number, number][] {
  const cookie = c.u32();
  let size: number;
  let runFlags: Uint8Array | undefined;
  if ((cookie & 0xffff) === SERIAL_COOKIE) {
    size = (cookie >>> 16) + 1;
    const n = Math.ceil(size / 8);
    c.need(n);
    runFlags = c.bytes.subarray(c.pos, c.pos + n);
    c.pos += n;
  } else if (cookie === SERIAL_COOKIE_NO_RUNCONTAINER) {
    size = c.u32();
  } else {
    throw new PuffinError('bad_request', `${c.where}: not a portable Roaring bitmap (cookie ${cookie})`);
  }
  if (size > 65536) throw new PuffinError('bad_request', `${c.where}: a Roaring bitmap claims ${size} containers (at most 65536)`);
  const keys: number[] = [];
  const cardinalities: number[] = [];
  for (let i = 0; i < size; i++) {
    keys.push(c.u16());
    cardinalities.push(c.u16() + 1);
  }
  if (!runFlags || size >= NO_OFFSET_THRESHOLD) {
    c.need(4 * size);
    c.pos += 4 * size; // container offsets: containers follow in order anyway
  }
  const out: [number, number][] = [];
  for (let i = 0; i < size; i++) {
    const base = keys[i] * 65536;
    if (i > 0 && keys[i] <= keys[i - 1]) throw new PuffinError('bad_request', `${c.where}: Roaring container keys are not increasing`);
    const isRun = runFlags !== undefined && (runFlags[i >> 3] & (1 << (i & 7))) !== 0;
    if (isRun) {
      const runs = c.u16();
      for (let r = 0; r < runs; r++) {
        const start = c.u16();
        const length = c.u16();
        push(out, base + start, base + start + length + 1);
      }
    } else if (cardinalities[i] <= 4096) {
      for (let k = 0; k < cardinalities[i]; k++) {
        const v = base + c.u16();
        push(out, v, v + 1);
      }
    } else {
      c.need(8192);
      const words = c.bytes.subarray(c.pos, c.pos + 8192);
      c.pos += 8192;
      for (let byte = 0; byte < 8192; byte++) {
        const w = words[byte];
        if (w === 0) continue;
        for (let bit = 0; bit < 8; bit++) if (w & (1 << bit)) push(out, base + byte * 8 + bit, base + byte * 8 + bit + 1);
      }
    }
  }
  return out;
}

/** The portable 64-bit Roaring serialization (without the DV framing) as position ranges. */
export function decodeRoaring64(bytes: Uint8Array, where = 'roaring bitmap'): PositionRanges {
  const c = new Cursor(bytes, where);
  const count = c.u64();
  if (count > BigInt(bytes.length)) throw new PuffinError('bad_request', `${where}: claims ${count} bitmaps in ${bytes.length} bytes`);
  const out: PositionRanges = [];
  let lastKey = -1;
  for (let i = 0; i < Number(count); i++) {
    const key = c.u32();
    if (key <= lastKey) throw new PuffinError('bad_request', `${where}: 64-bit Roaring keys are not increasing`);
    lastKey = key;
    const high = BigInt(key) << 32n;
    for (const [s, e] of decodeBitmap32(c)) {
      const start = high + BigInt(s);
      const end = high + BigInt(e);
      const last = out[out.length - 1];
      if (last && last[1] === start) last[1] = end;
      else out.push([start, end]);
    }
  }
  if (c.pos !== bytes.length) throw new PuffinError('bad_request', `${where}: ${bytes.length - c.pos} bytes follow the Roaring bitmap`);
  return out;
}

/** A `deletion-vector-v1` blob (length, magic, vector, CRC) as position ranges. */
export function decodeDeletionVector(blob: Uint8Array, where = 'deletion vector'): PositionRanges {
  if (blob.length < 12) throw new PuffinError('bad_request', `${where}: a deletion vector blob has at least 12 bytes, this one ${blob.length}`);
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const length = view.getUint32(0, false);
  if (length !== blob.length - 8) throw new PuffinError('bad_request', `${where}: the blob's length field says ${length} bytes of magic and vector, but it has ${blob.length - 8}`);
  for (let i = 0; i < 4; i++) {
    if (blob[4 + i] !== MAGIC[i]) throw new PuffinError('bad_request', `${where}: not a deletion-vector-v1 blob (wrong magic bytes)`);
  }
  const body = blob.subarray(4, 4 + length);
  const expected = view.getUint32(4 + length, false);
  const actual = crc32(body);
  if (actual !== expected) throw new PuffinError('bad_request', `${where}: CRC-32 mismatch (0x${actual.toString(16)}, expected 0x${expected.toString(16)})`);
  return decodeRoaring64(body.subarray(4), where);
}

/** Number of positions in ranges. */
export function cardinality(ranges: PositionRanges): bigint {
  return ranges.reduce((n, [s, e]) => n + (e - s), 0n);
}

/** Read one deletion vector from a local Puffin file. */
export function readDeletionVector(localPath: string, offset: number, length: number, where: string): PositionRanges {
  const blob = new Uint8Array(length);
  const fd = openSync(localPath, 'r');
  try {
    let done = 0;
    while (done < length) {
      const n = readSync(fd, blob, done, length - done, offset + done);
      if (n === 0) throw new PuffinError('bad_request', `${where}: the file ends before the deletion vector at bytes ${offset}..${offset + length}`);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  return decodeDeletionVector(blob, where);
}

// ---------------------------------------------------------------------------------------
// Writing: deletion vectors and the Puffin files that hold them.

/** The portable 64-bit Roaring serialization of sorted, disjoint position ranges (no run containers). */
export function encodeRoaring64(ranges: PositionRanges): Uint8Array {
  // Group positions by their high 32 bits, then by 16-bit container key.
  const byHigh = new Map<number, Map<number, number[]>>();
  for (const [start, end] of ranges) {
    for (let p = start; p < end; p++) {
      const high = Number(p >> 32n);
      const low = Number(p & 0xffffffffn);
      let containers = byHigh.get(high);
      if (!containers) byHigh.set(high, (containers = new Map()));
      const key = low >>> 16;
      let values = containers.get(key);
      if (!values) containers.set(key, (values = []));
      values.push(low & 0xffff);
    }
  }
  const parts: Uint8Array[] = [];
  const u32 = (v: number): Uint8Array => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, true);
    return b;
  };
  const head = new Uint8Array(8);
  new DataView(head.buffer).setBigUint64(0, BigInt(byHigh.size), true);
  parts.push(head);
  for (const high of [...byHigh.keys()].sort((a, b) => a - b)) {
    parts.push(u32(high));
    const containers = byHigh.get(high) as Map<number, number[]>;
    const keys = [...containers.keys()].sort((a, b) => a - b);
    const bodies = keys.map((k) => {
      const values = containers.get(k) as number[];
      if (values.length <= 4096) {
        const b = new Uint8Array(values.length * 2);
        const v = new DataView(b.buffer);
        values.forEach((x, i) => v.setUint16(i * 2, x, true));
        return b;
      }
      const b = new Uint8Array(8192);
      for (const x of values) b[x >> 3] |= 1 << (x & 7);
      return b;
    });
    const header = new Uint8Array(8 + keys.length * 8);
    const hv = new DataView(header.buffer);
    hv.setUint32(0, SERIAL_COOKIE_NO_RUNCONTAINER, true);
    hv.setUint32(4, keys.length, true);
    let offset = header.length;
    keys.forEach((k, i) => {
      hv.setUint16(8 + i * 4, k, true);
      hv.setUint16(8 + i * 4 + 2, (containers.get(k) as number[]).length - 1, true);
      hv.setUint32(8 + keys.length * 4 + i * 4, offset, true);
      offset += bodies[i].length;
    });
    parts.push(header, ...bodies);
  }
  return Buffer.concat(parts);
}

/** A `deletion-vector-v1` blob: length, magic, the Roaring bitmap, CRC-32 (all as the spec lays out). */
export function encodeDeletionVector(ranges: PositionRanges): Uint8Array {
  const vector = encodeRoaring64(ranges);
  const body = Buffer.concat([Uint8Array.from(MAGIC), vector]);
  const out = new Uint8Array(body.length + 8);
  const v = new DataView(out.buffer);
  v.setUint32(0, body.length, false);
  out.set(body, 4);
  v.setUint32(4 + body.length, crc32(body), false);
  return out;
}

/** Reserved field id of `_row_pos`, which a deletion vector's blob names (spec: Puffin). */
const ROW_POS_FIELD_ID = 2147483545;
const FILE_MAGIC = [0x50, 0x46, 0x41, 0x31]; // "PFA1"

/**
 * A Puffin file of deletion vectors, one per data file: the file's bytes and, per vector, the
 * blob's offset and length (a manifest entry locates it by those: content_offset/size).
 */
export function encodePuffinDeletionVectors(vectors: { referencedDataFile: string; ranges: PositionRanges }[], createdBy = 'PuffinDB'): { bytes: Uint8Array; blobs: { offset: number; length: number; cardinality: bigint }[] } {
  const parts: Uint8Array[] = [Uint8Array.from(FILE_MAGIC)];
  let offset = 4;
  const blobs: { offset: number; length: number; cardinality: bigint }[] = [];
  const meta: unknown[] = [];
  for (const v of vectors) {
    const blob = encodeDeletionVector(v.ranges);
    const n = cardinality(v.ranges);
    blobs.push({ offset, length: blob.length, cardinality: n });
    meta.push({
      type: 'deletion-vector-v1', fields: [ROW_POS_FIELD_ID], 'snapshot-id': -1, 'sequence-number': -1, offset, length: blob.length,
      properties: { 'referenced-data-file': v.referencedDataFile, cardinality: String(n) },
    });
    parts.push(blob);
    offset += blob.length;
  }
  const payload = new TextEncoder().encode(JSON.stringify({ blobs: meta, properties: { 'created-by': createdBy } }));
  const tail = new Uint8Array(12);
  const tv = new DataView(tail.buffer);
  tv.setUint32(0, payload.length, true);
  tv.setUint32(4, 0, true); // flags: payload not compressed
  tail.set(FILE_MAGIC, 8);
  parts.push(Uint8Array.from(FILE_MAGIC), payload, tail);
  return { bytes: Buffer.concat(parts), blobs };
}
