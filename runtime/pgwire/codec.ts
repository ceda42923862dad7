// PostgreSQL frontend/backend protocol v3: framing of the messages a client sends and
// encoding of the ones the server answers with. Framing is bounded: a length over the
// limit is refused before a byte of the body is buffered, so a hostile length costs
// nothing (the session answers with an ErrorResponse and closes).

export const PROTOCOL_3 = 196608;
export const SSL_REQUEST = 80877103;
export const GSSENC_REQUEST = 80877104;
export const CANCEL_REQUEST = 80877102;

/** Largest startup packet (PostgreSQL's own limit is 10000 bytes). */
export const MAX_STARTUP_BYTES = 10_000;
/** Largest regular message: a query text or a Bind with its parameters. */
export const DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024;

export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

export interface FrontendMessage {
  /** The type byte as a character ('Q', 'P', 'B', ...); '' for the untyped startup-phase packets. */
  type: string;
  body: Buffer;
}

/**
 * Accumulates bytes and cuts complete messages out of them. Before startup completes the
 * packets have no type byte (StartupMessage, SSLRequest, CancelRequest).
 */
export class MessageReader {
  private chunks: Buffer[] = [];
  private length = 0;
  /** Whether the next packet is a startup-phase packet (no type byte). */
  startup = true;

  constructor(private readonly maxMessageBytes: number = DEFAULT_MAX_MESSAGE_BYTES) {}

  /** Bytes held that do not yet make a whole message. */
  get pending(): number {
    return this.length;
  }

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  private flat(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.length)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  /** The next complete message, undefined when more bytes are needed; throws ProtocolError on a bad length. */
  next(): FrontendMessage | undefined {
    const head = this.startup ? 4 : 5;
    if (this.length < head) return undefined;
    const buf = this.flat();
    const type = this.startup ? '' : String.fromCharCode(buf[0]);
    const len = buf.readUInt32BE(this.startup ? 0 : 1);
    const limit = this.startup ? MAX_STARTUP_BYTES : this.maxMessageBytes;
    if (len < 4) throw new ProtocolError(`invalid message length ${len}`);
    if (len > limit) throw new ProtocolError(`message of ${len} bytes is over the limit of ${limit}`);
    const total = len + (this.startup ? 0 : 1);
    if (this.length < total) return undefined;
    const body = Buffer.from(buf.subarray(head, total));
    const rest = buf.subarray(total);
    this.chunks = rest.length ? [rest] : [];
    this.length = rest.length;
    return { type, body };
  }
}

/** Reads the fields of one message body; every read is bounds-checked. */
export class BodyReader {
  private offset = 0;
  constructor(private readonly body: Buffer) {}

  get remaining(): number {
    return this.body.length - this.offset;
  }

  private need(n: number): void {
    if (n < 0 || this.offset + n > this.body.length) throw new ProtocolError('message is shorter than its fields');
  }

  int16(): number {
    this.need(2);
    const v = this.body.readInt16BE(this.offset);
    this.offset += 2;
    return v;
  }

  int32(): number {
    this.need(4);
    const v = this.body.readInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  byte(): number {
    this.need(1);
    return this.body[this.offset++];
  }

  /** A NUL-terminated UTF-8 string. */
  cstring(): string {
    const end = this.body.indexOf(0, this.offset);
    if (end < 0) throw new ProtocolError('a string field is not NUL-terminated');
    const s = this.body.toString('utf8', this.offset, end);
    this.offset = end + 1;
    return s;
  }

  bytes(n: number): Buffer {
    this.need(n);
    const b = this.body.subarray(this.offset, this.offset + n);
    this.offset += n;
    return b;
  }

  rest(): Buffer {
    return this.bytes(this.remaining);
  }
}

/** Builds one backend message: type byte, length, fields. */
export class MessageWriter {
  private parts: Buffer[] = [];
  private size = 0;

  constructor(private readonly type: string) {}

  private add(b: Buffer): this {
    this.parts.push(b);
    this.size += b.length;
    return this;
  }

  int16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeInt16BE(v);
    return this.add(b);
  }

  int32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32BE(v);
    return this.add(b);
  }

  cstring(s: string): this {
    return this.add(Buffer.from(`${s.replace(/\0/g, '')}\0`, 'utf8'));
  }

  raw(b: Buffer): this {
    return this.add(b);
  }

  done(): Buffer {
    const head = Buffer.alloc(5);
    head.write(this.type, 0, 'latin1');
    head.writeUInt32BE(this.size + 4, 1);
    return Buffer.concat([head, ...this.parts], 5 + this.size);
  }
}

export function msg(type: string): MessageWriter {
  return new MessageWriter(type);
}

export const readyForQuery = (status: 'I' | 'T' | 'E'): Buffer => msg('Z').raw(Buffer.from(status, 'latin1')).done();
export const authOk = (): Buffer => msg('R').int32(0).done();
export const parseComplete = (): Buffer => msg('1').done();
export const bindComplete = (): Buffer => msg('2').done();
export const closeComplete = (): Buffer => msg('3').done();
export const noData = (): Buffer => msg('n').done();
export const portalSuspended = (): Buffer => msg('s').done();
export const emptyQuery = (): Buffer => msg('I').done();
export const commandComplete = (tag: string): Buffer => msg('C').cstring(tag).done();
export const parameterStatus = (name: string, value: string): Buffer => msg('S').cstring(name).cstring(value).done();
export const backendKeyData = (pid: number, secret: number): Buffer => msg('K').int32(pid).int32(secret).done();

export interface ErrorFields {
  severity: 'ERROR' | 'FATAL' | 'NOTICE' | 'WARNING';
  code: string;
  message: string;
  detail?: string;
  hint?: string;
  position?: number;
}

/** ErrorResponse ('E') or NoticeResponse ('N'). */
export function errorResponse(fields: ErrorFields, type: 'E' | 'N' = 'E'): Buffer {
  const w = msg(type);
  w.raw(Buffer.from('S')).cstring(fields.severity);
  w.raw(Buffer.from('V')).cstring(fields.severity);
  w.raw(Buffer.from('C')).cstring(fields.code);
  w.raw(Buffer.from('M')).cstring(fields.message);
  if (fields.detail) w.raw(Buffer.from('D')).cstring(fields.detail);
  if (fields.hint) w.raw(Buffer.from('H')).cstring(fields.hint);
  if (fields.position !== undefined) w.raw(Buffer.from('P')).cstring(String(fields.position));
  w.raw(Buffer.from([0]));
  return w.done();
}

export interface FieldDescription {
  name: string;
  typeOid: number;
  typeSize: number;
  format: 0 | 1;
}

export function rowDescription(fields: readonly FieldDescription[]): Buffer {
  const w = msg('T').int16(fields.length);
  for (const f of fields) w.cstring(f.name).int32(0).int16(0).int32(f.typeOid).int16(f.typeSize).int32(-1).int16(f.format);
  return w.done();
}

export function parameterDescription(oids: readonly number[]): Buffer {
  const w = msg('t').int16(oids.length);
  for (const o of oids) w.int32(o);
  return w.done();
}

/** DataRow: each value already encoded (text or binary), null for SQL NULL. */
export function dataRow(values: readonly (Buffer | null)[]): Buffer {
  const w = msg('D').int16(values.length);
  for (const v of values) {
    if (v === null) w.int32(-1);
    else w.int32(v.length).raw(v);
  }
  return w.done();
}
