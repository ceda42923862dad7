// A minimal ZIP writer for Lambda deployment packages. No zip package is installed, and
// the format needed here is small: deflated (or stored) entries, no ZIP64 (Lambda caps an
// unzipped package at 250 MB, far below 4 GiB), and a fixed timestamp so the same files
// always give the same bytes. That determinism matters: Terraform's `filebase64sha256` of
// the archive is the Lambda's `source_code_hash`, so only a real change redeploys.

import { deflateRawSync } from 'node:zlib';
import { PuffinError } from '../runtime/errors.ts';

export interface ZipEntry {
  /** Path inside the archive, '/'-separated, no leading '/'. */
  path: string;
  data: Uint8Array;
  /** Unix permission bits; 0o644 unless the file must be executable. */
  mode?: number;
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (IEEE 802.3), as ZIP stores it. node:zlib has crc32 only from Node 20.15. */
export function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// 1980-01-01 00:00:00, the earliest MS-DOS date: fixed so archives are reproducible.
const DOS_TIME = 0;
const DOS_DATE = (0 << 9) | (1 << 5) | 1;
const METHOD_STORE = 0;
const METHOD_DEFLATE = 8;
const VERSION_NEEDED = 20;
// "made by" Unix (3) so external attributes carry Unix permissions.
const VERSION_MADE_BY = (3 << 8) | 20;
const FLAG_UTF8 = 0x0800;
const MAX_32 = 0xffffffff;

/** Build a ZIP archive. Entries are written in the order given; sort them for reproducibility. */
export function writeZip(entries: readonly ZipEntry[]): Buffer {
  const seen = new Set<string>();
  const chunks: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    if (!entry.path || entry.path.startsWith('/') || entry.path.includes('\\') || entry.path.split('/').includes('..')) {
      throw new PuffinError('bad_request', `zip entry path '${entry.path}' must be relative, '/'-separated and stay inside the archive`);
    }
    if (seen.has(entry.path)) throw new PuffinError('bad_request', `zip entry '${entry.path}' appears twice`);
    seen.add(entry.path);
    const name = Buffer.from(entry.path, 'utf8');
    const raw = entry.data;
    const deflated = deflateRawSync(raw, { level: 6 });
    // Already-compressed data can grow under deflate; store it then.
    const useDeflate = deflated.length < raw.length;
    const body = useDeflate ? deflated : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    const crc = crc32(raw);
    if (raw.length >= MAX_32 || body.length >= MAX_32 || offset >= MAX_32) {
      throw new PuffinError('unsupported', `zip entry '${entry.path}' needs ZIP64, which this writer does not produce`);
    }
    const method = useDeflate ? METHOD_DEFLATE : METHOD_STORE;

    // The local header and the central directory record share this run of fields
    // (version needed through extra-field length), at offsets 4 and 6 respectively.
    const writeShared = (buf: Buffer, at: number): void => {
      buf.writeUInt16LE(VERSION_NEEDED, at);
      buf.writeUInt16LE(FLAG_UTF8, at + 2);
      buf.writeUInt16LE(method, at + 4);
      buf.writeUInt16LE(DOS_TIME, at + 6);
      buf.writeUInt16LE(DOS_DATE, at + 8);
      buf.writeUInt32LE(crc, at + 10);
      buf.writeUInt32LE(body.length, at + 14);
      buf.writeUInt32LE(raw.length, at + 18);
      buf.writeUInt16LE(name.length, at + 22);
      buf.writeUInt16LE(0, at + 24); // extra field length
    };

    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    writeShared(local, 4);
    chunks.push(local, name, body);

    const header = Buffer.alloc(46);
    header.writeUInt32LE(0x02014b50, 0);
    header.writeUInt16LE(VERSION_MADE_BY, 4);
    writeShared(header, 6);
    header.writeUInt16LE(0, 32); // comment length
    header.writeUInt16LE(0, 34); // disk number
    header.writeUInt16LE(0, 36); // internal attributes
    header.writeUInt32LE((((entry.mode ?? 0o644) | 0o100000) << 16) >>> 0, 38); // regular file + mode
    header.writeUInt32LE(offset, 42);
    central.push(header, name);

    offset += local.length + name.length + body.length;
  }
  const centralStart = offset;
  const centralBytes = central.reduce((n, b) => n + b.length, 0);
  if (entries.length > 0xffff || centralStart + centralBytes >= MAX_32) {
    throw new PuffinError('unsupported', 'archive needs ZIP64 (too many entries or too large), which this writer does not produce');
  }
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(0, 4);
  end.writeUInt16LE(0, 6);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(centralBytes, 12);
  end.writeUInt32LE(centralStart, 16);
  end.writeUInt16LE(0, 20);
  return Buffer.concat([...chunks, ...central, end]);
}
