// Bind parameters of the extended query protocol, substituted into the statement as SQL
// literals before it is classified: every value becomes a single-quoted string literal
// (quotes doubled; DuckDB's strings take no backslash escapes), cast to the parameter's
// declared type when the client declared one. A value therefore can never end its literal,
// and the classifier, the authorization and the planner all see the final text. `$n` is
// recognized by the same lexer the classifier uses, so a `$1` inside a string, a quoted
// identifier or a comment is left alone.

import { PuffinError } from '../errors.ts';
import { lex } from '../sql/lexer.ts';
import { sqlString } from '../sql/quote.ts';
import { duckTypeOfOid, OID } from './types.ts';

/** Highest `$n` a statement may use (PostgreSQL's own limit is 65535). */
export const MAX_PARAMS = 65_535;

/** The highest `$n` in the text (0 when it has none). */
export function parameterCount(sql: string): number {
  let max = 0;
  for (const t of lex(sql).tokens) {
    if (t.kind === 'param') max = Math.max(max, Number(t.text.slice(1)));
  }
  if (max > MAX_PARAMS) throw new PuffinError('bad_request', `parameter $${max} is over the limit of $${MAX_PARAMS}`);
  return max;
}

/** A parameter's value as a client sent it: its bytes (or null) and the format code. */
export interface BoundValue {
  value: Buffer | null;
  format: 0 | 1;
}

/** A binary-format value as text a cast can read. */
function binaryAsText(b: Buffer, oid: number): string {
  const bad = () => new PuffinError('bad_request', `binary parameter of type oid ${oid} has ${b.length} bytes`);
  switch (oid) {
    case OID.bool:
      if (b.length !== 1) throw bad();
      return b[0] ? 'true' : 'false';
    case OID.int2:
      if (b.length !== 2) throw bad();
      return String(b.readInt16BE());
    case OID.int4:
      if (b.length !== 4) throw bad();
      return String(b.readInt32BE());
    case OID.int8:
      if (b.length !== 8) throw bad();
      return b.readBigInt64BE().toString();
    case OID.float4:
      if (b.length !== 4) throw bad();
      return String(b.readFloatBE());
    case OID.float8:
      if (b.length !== 8) throw bad();
      return String(b.readDoubleBE());
    case OID.bytea:
      return `\\x${b.toString('hex')}`;
    case 0:
    case OID.text:
    case OID.varchar:
    case OID.json:
    case OID.unknown:
      return b.toString('utf8');
    default:
      throw new PuffinError('unsupported', `binary-format parameters of type oid ${oid} are not supported; send it in text format`);
  }
}

/** One parameter as a SQL literal. */
export function literal(v: BoundValue, oid: number): string {
  if (v.value === null) return 'NULL';
  const text = v.format === 1 ? binaryAsText(v.value, oid) : v.value.toString('utf8');
  if (text.includes('\u0000')) throw new PuffinError('bad_request', 'a parameter value contains a NUL character');
  if (oid === OID.bytea) {
    // bytea text is \x<hex> (or escape format): a BLOB from its hex digits.
    const hex = /^\\x([0-9a-fA-F]*)$/.exec(text);
    if (!hex || hex[1].length % 2) throw new PuffinError('bad_request', 'a bytea parameter must be in hex format (\\x...)');
    return `from_hex(${sqlString(hex[1])})`;
  }
  const duck = duckTypeOfOid(oid);
  return duck ? `CAST(${sqlString(text)} AS ${duck})` : sqlString(text);
}

/** The statement with each `$n` replaced by its parameter's literal. */
export function substitute(sql: string, values: readonly BoundValue[], oids: readonly number[]): string {
  const params = lex(sql).tokens.filter((t) => t.kind === 'param');
  if (params.length === 0) {
    if (values.length > 0) throw new PuffinError('bad_request', `bind message supplies ${values.length} parameters, but the statement has none`);
    return sql;
  }
  let out = '';
  let last = 0;
  for (const t of params) {
    const n = Number(t.text.slice(1));
    if (n < 1 || n > values.length) throw new PuffinError('bad_request', `there is no parameter $${n} (the bind message supplies ${values.length})`);
    out += sql.slice(last, t.start) + literal(values[n - 1], oids[n - 1] ?? 0);
    last = t.end;
  }
  return out + sql.slice(last);
}
