// Delta Lake deletion vectors (protocol: "Deletion Vector Descriptor Schema", "Deletion Vector
// Format"). A descriptor in an `add` action locates the deleted row positions of its file:
//   storageType 'u': a file under the table root named from a UUID; pathOrInlineDv is an
//                    optional random prefix (a directory) followed by the UUID, Z85-encoded
//                    (20 characters): <root>/<prefix>/deletion_vector_<uuid>.bin
//   storageType 'p': pathOrInlineDv is the file's absolute path (a URI)
//   storageType 'i': pathOrInlineDv is the vector itself, Z85-encoded
// In a file, the vector at `offset` is framed as u32 big-endian size, `sizeInBytes` bytes of
// vector, u32 big-endian CRC-32 of them: exactly Iceberg's `deletion-vector-v1` blob (the
// vector begins with the same magic, 1681511377 little-endian = D1 D3 39 64, then the
// "portable" 64-bit Roaring serialization, RoaringBitmapArray), so workers read Delta
// vectors with the Iceberg reader's decoder (iceberg/puffin.ts). An inline vector travels
// to the worker as such a blob (IcebergDeleteRead.inlineBlob), built here with its CRC.

import { crc32 } from 'node:zlib';
import { PuffinError } from '../../errors.ts';
import { joinUri, toUri } from '../iceberg/io.ts';
import { decodeDeletionVector, cardinality } from '../iceberg/puffin.ts';

const Z85 = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';
const Z85_VALUE = new Map([...Z85].map((c, i) => [c, i]));

/** Z85 (ZeroMQ RFC 32) text to bytes; the text's length must be a multiple of 5. */
export function z85Decode(text: string, where = 'Z85 text'): Uint8Array {
  if (text.length % 5 !== 0) throw new PuffinError('bad_request', `${where}: Z85 text has ${text.length} characters, not a multiple of 5`);
  const out = new Uint8Array((text.length / 5) * 4);
  for (let i = 0, o = 0; i < text.length; i += 5, o += 4) {
    let v = 0;
    for (let k = 0; k < 5; k++) {
      const d = Z85_VALUE.get(text[i + k]);
      if (d === undefined) throw new PuffinError('bad_request', `${where}: '${text[i + k]}' is not a Z85 character`);
      v = v * 85 + d;
    }
    if (v > 0xffffffff) throw new PuffinError('bad_request', `${where}: Z85 group ${text.slice(i, i + 5)} exceeds 32 bits`);
    out[o] = v >>> 24;
    out[o + 1] = (v >>> 16) & 0xff;
    out[o + 2] = (v >>> 8) & 0xff;
    out[o + 3] = v & 0xff;
  }
  return out;
}

/** Bytes (length a multiple of 4) to Z85 text: for tests and writers. */
export function z85Encode(bytes: Uint8Array): string {
  if (bytes.length % 4 !== 0) throw new PuffinError('bad_request', `Z85 encodes multiples of 4 bytes, got ${bytes.length}`);
  let out = '';
  for (let i = 0; i < bytes.length; i += 4) {
    let v = ((bytes[i] << 24) >>> 0) + (bytes[i + 1] << 16) + (bytes[i + 2] << 8) + bytes[i + 3];
    const chars: string[] = [];
    for (let k = 0; k < 5; k++) {
      chars.unshift(Z85[v % 85]);
      v = Math.floor(v / 85);
    }
    out += chars.join('');
  }
  return out;
}

export interface DeletionVectorDescriptor {
  storageType: string;
  pathOrInlineDv: string;
  offset?: number;
  sizeInBytes: number;
  cardinality: number;
}

/** The descriptor's identity for reconciling adds and removes (protocol: "dvId"). */
export function deletionVectorId(dv: DeletionVectorDescriptor | undefined | null): string {
  if (!dv) return '';
  return `${dv.storageType}${dv.pathOrInlineDv}${dv.offset === undefined || dv.offset === null ? '' : `@${dv.offset}`}`;
}

function uuidText(bytes: Uint8Array): string {
  const hex = Buffer.from(bytes).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Where a deletion vector is read from, as the worker's delete read needs it. */
export type ResolvedDeletionVector =
  | { kind: 'file'; uri: string; offset: number; blobSize: number; cardinality: number }
  | { kind: 'inline'; blob: Uint8Array; cardinality: number };

function check(dv: DeletionVectorDescriptor, where: string): void {
  if (typeof dv !== 'object' || dv === null) throw new PuffinError('bad_request', `${where}: deletionVector is not an object`);
  if (typeof dv.pathOrInlineDv !== 'string' || dv.pathOrInlineDv === '') throw new PuffinError('bad_request', `${where}: deletionVector.pathOrInlineDv is missing`);
  if (!Number.isInteger(dv.sizeInBytes) || dv.sizeInBytes < 4) throw new PuffinError('bad_request', `${where}: deletionVector.sizeInBytes must be an integer of at least 4, got ${JSON.stringify(dv.sizeInBytes)}`);
  if (!Number.isInteger(dv.cardinality) || dv.cardinality < 0) throw new PuffinError('bad_request', `${where}: deletionVector.cardinality must be a non-negative integer, got ${JSON.stringify(dv.cardinality)}`);
}

/** Resolve a descriptor against the table root URI. */
export function resolveDeletionVector(dv: DeletionVectorDescriptor, rootUri: string, where: string): ResolvedDeletionVector {
  check(dv, where);
  if (dv.storageType === 'i') {
    const bytes = z85Decode(dv.pathOrInlineDv, `${where}: inline deletion vector`);
    if (bytes.length < dv.sizeInBytes) throw new PuffinError('bad_request', `${where}: inline deletion vector has ${bytes.length} bytes, sizeInBytes says ${dv.sizeInBytes}`);
    const body = bytes.subarray(0, dv.sizeInBytes);
    const blob = new Uint8Array(body.length + 8);
    const view = new DataView(blob.buffer);
    view.setUint32(0, body.length, false);
    blob.set(body, 4);
    view.setUint32(4 + body.length, crc32(body), false);
    // Decoded here too, so a malformed inline vector is refused when the table is opened.
    const n = cardinality(decodeDeletionVector(blob, `${where}: inline deletion vector`));
    if (n !== BigInt(dv.cardinality)) throw new PuffinError('bad_request', `${where}: inline deletion vector holds ${n} positions, its descriptor says ${dv.cardinality}`);
    return { kind: 'inline', blob, cardinality: dv.cardinality };
  }
  if (dv.offset === undefined || dv.offset === null || !Number.isInteger(dv.offset) || dv.offset < 0) {
    throw new PuffinError('bad_request', `${where}: a deletion vector stored in a file needs an integer offset, got ${JSON.stringify(dv.offset)}`);
  }
  let uri: string;
  if (dv.storageType === 'u') {
    const text = dv.pathOrInlineDv;
    if (text.length < 20) throw new PuffinError('bad_request', `${where}: deletion vector id '${text}' is shorter than a Z85-encoded UUID (20 characters)`);
    const prefix = text.slice(0, text.length - 20);
    const name = `deletion_vector_${uuidText(z85Decode(text.slice(-20), `${where}: deletion vector UUID`))}.bin`;
    uri = joinUri(rootUri, prefix ? `${prefix}/${name}` : name);
  } else if (dv.storageType === 'p') {
    uri = toUri(decodeURIComponentSafe(dv.pathOrInlineDv, where));
  } else {
    throw new PuffinError('unsupported', `${where}: deletion vector storage type '${dv.storageType}' is not one of u, i, p`);
  }
  return { kind: 'file', uri, offset: dv.offset, blobSize: dv.sizeInBytes + 8, cardinality: dv.cardinality };
}

/** Paths in the log are URIs: percent-encoded. */
export function decodeURIComponentSafe(path: string, where: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    throw new PuffinError('bad_request', `${where}: path '${path}' has invalid percent-encoding`);
  }
}
