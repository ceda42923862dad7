// Avro object container files (Iceberg manifests and manifest lists) decoded from bytes with
// `avsc`, synchronously. Records decode with the writer schema embedded in the file, so the
// Iceberg field ids it carries stay available; longs decode as BigInt so 63-bit snapshot ids
// stay exact. Compiled avsc types are cached by schema text: every manifest of a table
// usually shares one schema, and compiling it is most of the cost of a small file.
// For manifests, int-keyed maps (column bounds and counts) can stay encoded and be parsed on
// demand: a 100,000-entry manifest set decodes several times faster that way.

import avro from 'avsc';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { PuffinError } from '../../errors.ts';

/** The slice of avsc's Tap (its byte cursor) the types below use. */
interface Tap {
  buf: Buffer;
  pos: number;
  readLong(): number;
  writeLong(n: number): void;
}

const TWO_POW_49 = 2 ** 49;

/**
 * avsc's `long`, read and written as BigInt so 63-bit snapshot ids stay exact. It decodes
 * the zig-zag varint straight from avsc's cursor: the `LongType.__with` route allocates a
 * Buffer per long, which dominated decoding 100,000 manifest entries.
 */
export class BigIntLongType extends avro.types.LongType {
  _check(val: unknown): boolean {
    return (typeof val === 'bigint' && BigInt.asIntN(64, val) === val) || (typeof val === 'number' && Number.isSafeInteger(val));
  }

  _read(tap: Tap): bigint {
    const buf = tap.buf;
    let pos = tap.pos;
    let b = buf[pos++];
    let n = b & 0x7f;
    let scale = 128;
    while (b & 0x80 && scale < TWO_POW_49) {
      b = buf[pos++];
      n += (b & 0x7f) * scale;
      scale *= 128;
    }
    if (b & 0x80) {
      // Past 49 bits: finish in BigInt arithmetic.
      let big = BigInt(n);
      let shift = 49n;
      do {
        b = buf[pos++];
        big |= BigInt(b & 0x7f) << shift;
        shift += 7n;
      } while (b & 0x80 && shift < 70n);
      tap.pos = pos;
      return (big >> 1n) ^ -(big & 1n);
    }
    tap.pos = pos;
    return BigInt(n % 2 ? -(n + 1) / 2 : n / 2);
  }

  _write(tap: Tap, val: bigint | number): void {
    if (!this._check(val)) throw new Error(`${String(val)} is not a 64-bit integer`);
    const v = BigInt(val);
    if (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) {
      tap.writeLong(Number(v));
      return;
    }
    let z = BigInt.asUintN(64, (v << 1n) ^ (v >> 63n));
    const bytes: number[] = [];
    while (z >= 0x80n) {
      bytes.push(Number(z & 0x7fn) | 0x80);
      z >>= 7n;
    }
    bytes.push(Number(z));
    for (const byte of bytes) tap.buf[tap.pos++] = byte;
  }
}

/** avsc's `bytes`, read as a Uint8Array view into the decoded block instead of a zero-filled
 *  Buffer copy (bounds are many and small; the copies dominated decoding). */
export class BytesViewType extends avro.types.BytesType {
  _read(tap: Tap): Uint8Array {
    const len = tap.readLong();
    const start = tap.pos;
    tap.pos += len;
    return new Uint8Array(tap.buf.buffer, tap.buf.byteOffset + start, len);
  }
}

// Unions pick a branch by the JavaScript type of a value, and BigInt is no `number`: as an
// "abstract" long (what LongType.__with makes) a union asks the type itself (`_check`).
Object.defineProperty(BigIntLongType.prototype, 'typeName', { value: 'abstract:long' });
Object.defineProperty(BigIntLongType.prototype, '_deref', { value: () => 'long' });
Object.defineProperty(BigIntLongType.prototype, '_concreteTypeName', { value: 'long' });

const bigIntLong = new BigIntLongType();
const bytesView = new BytesViewType();

// A cursor shared by the encoded-array readers below: they are synchronous and never nest,
// so one position variable avoids allocating a [value, position] pair per number.
let at = 0;

/** Read the zig-zag varint at `at` and advance past it. Exact below 2^53. */
function varint(buf: Uint8Array): number {
  let n = 0;
  let scale = 1;
  let b: number;
  do {
    b = buf[at++];
    n += (b & 0x7f) * scale;
    scale *= 128;
  } while (b & 0x80);
  return n % 2 ? -(n + 1) / 2 : n / 2;
}

type ItemKind = 'int' | 'long' | 'bytes';

/** The item count of the array block at `at`, moving past its header; 0 ends the array. */
function nextBlock(buf: Uint8Array): number {
  const count = varint(buf);
  if (count >= 0) return count;
  varint(buf); // a negative count is followed by the block's size in bytes
  return -count;
}

/** Read one value of `kind` at `at` (bytes as a view) and advance past it. */
function readValue(buf: Uint8Array, kind: ItemKind): number | Uint8Array {
  if (kind !== 'bytes') return varint(buf);
  const len = varint(buf);
  const start = at;
  at += len;
  return new Uint8Array(buf.buffer, buf.byteOffset + start, len);
}

function skipValue(buf: Uint8Array, kind: ItemKind): void {
  const n = varint(buf);
  if (kind === 'bytes') at += n;
}

/**
 * An Avro `map<int, X>` (Iceberg writes these as arrays of key/value records) left in its
 * encoding and parsed on demand. Manifests carry several per data file (bounds, counts) and
 * a scan reads one or two entries of each; materializing them all as records dominated the
 * cost, in allocation and garbage collection, of decoding a large manifest.
 */
export class AvroIntMap<T extends number | Uint8Array> {
  constructor(
    private readonly buf: Uint8Array,
    private readonly start: number,
    private readonly kind: ItemKind,
  ) {}

  get(key: number): T | undefined {
    const buf = this.buf;
    at = this.start;
    for (let n = nextBlock(buf); n > 0; n = nextBlock(buf)) {
      for (let i = 0; i < n; i++) {
        if (varint(buf) === key) return readValue(buf, this.kind) as T;
        skipValue(buf, this.kind);
      }
    }
    return undefined;
  }

  entries(): [number, T][] {
    const buf = this.buf;
    const out: [number, T][] = [];
    at = this.start;
    for (let n = nextBlock(buf); n > 0; n = nextBlock(buf)) {
      for (let i = 0; i < n; i++) {
        const k = varint(buf);
        out.push([k, readValue(buf, this.kind) as T]);
      }
    }
    return out;
  }
}

/** An Avro `list<int>` or `list<long>` left in its encoding (numbers, exact below 2^53). */
export class AvroNumberList {
  constructor(
    private readonly buf: Uint8Array,
    private readonly start: number,
  ) {}

  values(): number[] {
    const buf = this.buf;
    const out: number[] = [];
    at = this.start;
    for (let n = nextBlock(buf); n > 0; n = nextBlock(buf)) {
      for (let i = 0; i < n; i++) out.push(varint(buf));
    }
    return out;
  }
}

function primitiveName(schema: unknown): string | undefined {
  if (typeof schema === 'string') return schema;
  if (schema && typeof schema === 'object' && !Array.isArray(schema)) {
    const t = (schema as { type?: unknown }).type;
    if (typeof t === 'string' && !('logicalType' in schema)) return t;
  }
  return undefined;
}

/** The item kind of an array schema we can keep encoded: int-keyed maps and number lists. */
function lazyArrayKind(schema: unknown): { map: boolean; kind: ItemKind } | undefined {
  if (!schema || typeof schema !== 'object' || (schema as { type?: unknown }).type !== 'array') return undefined;
  const items = (schema as { items?: unknown }).items;
  const simple = primitiveName(items);
  if (simple === 'int' || simple === 'long') return { map: false, kind: simple };
  const record = items as { type?: unknown; fields?: { name: string; type: unknown }[] } | undefined;
  if ((schema as { logicalType?: unknown }).logicalType !== 'map' || record?.type !== 'record' || record.fields?.length !== 2) return undefined;
  const [key, value] = record.fields;
  const valueKind = primitiveName(value.type);
  if (primitiveName(key.type) !== 'int' || (valueKind !== 'int' && valueKind !== 'long' && valueKind !== 'bytes')) return undefined;
  return { map: true, kind: valueKind };
}

const lazyKinds = new WeakMap<object, { map: boolean; kind: ItemKind }>();

/** An array type whose values stay encoded (AvroIntMap / AvroNumberList) when read. */
class LazyArrayType extends avro.types.ArrayType {
  _read(tap: Tap): AvroIntMap<number | Uint8Array> | AvroNumberList {
    const start = tap.pos;
    (this as unknown as { _skip(t: Tap): void })._skip(tap);
    const how = lazyKinds.get(this) as { map: boolean; kind: ItemKind };
    return how.map ? new AvroIntMap(tap.buf, start, how.kind) : new AvroNumberList(tap.buf, start);
  }
}

function lazyArrayHook(schema: unknown, opts: unknown): avro.Type | undefined {
  const how = lazyArrayKind(schema);
  if (!how) return undefined;
  const type = new LazyArrayType(schema as never, opts);
  lazyKinds.set(type, how);
  return type;
}

/**
 * A long written as an object (`{type: 'long', logicalType: 'timestamp-micros', ...}`: time
 * and timestamp partition fields, as the spec's Avro mapping annotates them) does not go
 * through the registry: avsc makes a plain LongType of it, which refuses BigInt and reads
 * numbers (losing nanosecond timestamps past 2^53). It is read and written as the BigInt long
 * too; the annotation stays in the schema text written into the file.
 */
function logicalLongHook(schema: unknown): avro.Type | undefined {
  if (schema && typeof schema === 'object' && !Array.isArray(schema) && (schema as { type?: unknown }).type === 'long') return bigIntLong;
  return undefined;
}

function lazyOrLogicalLongHook(schema: unknown, opts: unknown): avro.Type | undefined {
  return logicalLongHook(schema) ?? lazyArrayHook(schema, opts);
}

/** A raw Avro schema object, as JSON (field ids and logical types included). */
export type AvroSchemaJson = unknown;

export interface AvroContainer {
  /** The writer schema embedded in the file, as JSON. */
  schema: AvroSchemaJson;
  /** The file's key-value metadata as text (`avro.schema` and `avro.codec` excluded). */
  metadata: Record<string, string>;
  records: unknown[];
}

const MAGIC = Buffer.from('Obj\x01', 'binary');

const headerType = avro.Type.forSchema({
  type: 'record',
  name: 'org.apache.avro.file.Header',
  fields: [
    { name: 'magic', type: { type: 'fixed', name: 'Magic', size: 4 } },
    { name: 'meta', type: { type: 'map', values: 'bytes' } },
    { name: 'sync', type: { type: 'fixed', name: 'Sync', size: 16 } },
  ],
});

const typeCache = new Map<string, avro.Type>();

/**
 * An avsc type for a raw schema, longs as BigInt; cached by the schema's text. With
 * `lazyArrays`, int-keyed maps and number lists read as AvroIntMap / AvroNumberList.
 */
export function avroType(schema: AvroSchemaJson, text = JSON.stringify(schema), lazyArrays = false): avro.Type {
  const key = lazyArrays ? `lazy:${text}` : text;
  let type = typeCache.get(key);
  if (!type) {
    type = avro.Type.forSchema(schema as avro.Schema, {
      wrapUnions: false,
      registry: { long: bigIntLong, bytes: bytesView } as never,
      typeHook: (lazyArrays ? lazyOrLogicalLongHook : logicalLongHook) as never,
    });
    if (typeCache.size > 256) typeCache.clear();
    typeCache.set(key, type);
  }
  return type;
}

function readVarLong(buf: Buffer, pos: number, file: string): [number, number] {
  let result = 0;
  let shift = 1;
  let p = pos;
  for (;;) {
    if (p >= buf.length) throw corrupt(file, 'truncated block header');
    const b = buf[p++];
    result += (b & 0x7f) * shift;
    if (!(b & 0x80)) break;
    shift *= 128;
    if (shift > 2 ** 56) throw corrupt(file, 'block header integer too long');
  }
  // zig-zag: even -> non-negative, odd -> negative
  return [result % 2 === 0 ? result / 2 : -(result + 1) / 2, p];
}

function corrupt(file: string, why: string): PuffinError {
  return new PuffinError('bad_request', `${file} is not a readable Avro file: ${why}`);
}

export interface ReadAvroOptions {
  /** Keep int-keyed maps and number lists encoded, parsed on demand (see AvroIntMap). */
  lazyArrays?: boolean;
}

/** Decode a whole Avro object container file held in memory. `file` names it in errors. */
export function readAvroContainer(bytes: Uint8Array, file: string, options: ReadAvroOptions = {}): AvroContainer {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 4 || !buf.subarray(0, 4).equals(MAGIC)) throw corrupt(file, 'missing the Avro magic bytes');
  let header: { value: { meta: Record<string, Buffer>; sync: Buffer }; offset: number };
  try {
    header = headerType.decode(buf, 0) as typeof header;
  } catch (err) {
    throw corrupt(file, `bad header (${(err as Error).message})`);
  }
  if (header.offset < 0) throw corrupt(file, 'truncated header');
  const meta = header.value.meta;
  const sync = header.value.sync;
  const schemaText = meta['avro.schema']?.toString('utf8');
  if (!schemaText) throw corrupt(file, 'no avro.schema in the header');
  const codec = meta['avro.codec']?.toString('utf8') || 'null';
  if (codec !== 'null' && codec !== 'deflate') {
    throw new PuffinError('unsupported', `${file} uses the Avro codec '${codec}'; only 'null' and 'deflate' are supported`);
  }

  let schema: AvroSchemaJson;
  let type: avro.Type;
  try {
    schema = JSON.parse(schemaText);
    type = avroType(schema, schemaText, options.lazyArrays === true);
  } catch (err) {
    throw corrupt(file, `its schema does not parse (${(err as Error).message})`);
  }

  const records: unknown[] = [];
  let pos = header.offset;
  while (pos < buf.length) {
    const [count, afterCount] = readVarLong(buf, pos, file);
    const [size, afterSize] = readVarLong(buf, afterCount, file);
    if (count < 0 || size < 0 || afterSize + size + 16 > buf.length) throw corrupt(file, 'truncated data block');
    const raw = buf.subarray(afterSize, afterSize + size);
    let block: Buffer;
    try {
      block = codec === 'deflate' ? inflateRawSync(raw) : raw;
    } catch (err) {
      throw corrupt(file, `a data block does not inflate (${(err as Error).message})`);
    }
    let offset = 0;
    for (let i = 0; i < count; i++) {
      let decoded: { value: unknown; offset: number };
      try {
        decoded = type.decode(block, offset);
      } catch (err) {
        throw corrupt(file, `record ${records.length} does not decode (${(err as Error).message})`);
      }
      if (decoded.offset < 0) throw corrupt(file, `record ${records.length} runs past its block`);
      records.push(decoded.value);
      offset = decoded.offset;
    }
    pos = afterSize + size;
    if (!buf.subarray(pos, pos + 16).equals(sync)) throw corrupt(file, 'a data block is not followed by the sync marker');
    pos += 16;
  }

  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(meta)) if (k !== 'avro.schema' && k !== 'avro.codec') metadata[k] = v.toString('utf8');
  return { schema, metadata, records };
}

export interface WriteAvroOptions {
  codec?: 'null' | 'deflate';
  /** Records per data block. */
  blockSize?: number;
}

/** Encode records as an Avro object container file (longs given as BigInt). */
export function writeAvroContainer(
  schema: AvroSchemaJson,
  records: readonly unknown[],
  metadata: Record<string, string> = {},
  options: WriteAvroOptions = {},
): Uint8Array {
  const codec = options.codec ?? 'deflate';
  const blockSize = options.blockSize ?? 4096;
  const type = avroType(schema);
  const sync = randomBytes(16);
  const meta: Record<string, Buffer> = { 'avro.schema': Buffer.from(JSON.stringify(schema)), 'avro.codec': Buffer.from(codec) };
  for (const [k, v] of Object.entries(metadata)) meta[k] = Buffer.from(v);
  const parts: Buffer[] = [headerType.toBuffer({ magic: MAGIC, meta, sync })];
  const longType = avro.Type.forSchema('long');
  for (let start = 0; start < records.length; start += blockSize) {
    const chunk = records.slice(start, start + blockSize);
    const body = Buffer.concat(chunk.map((r) => type.toBuffer(r)));
    const data = codec === 'deflate' ? deflateRawSync(body) : body;
    parts.push(longType.toBuffer(chunk.length), longType.toBuffer(data.length), data, sync);
  }
  return new Uint8Array(Buffer.concat(parts));
}
