// Positional parameters (`$1`, `$2`, ... or `?`) of the Node library and of
// POST /v1/query's `params`, bound into the statement's text as SQL literals before it is
// classified. They are not bound by a DuckDB prepared statement: a query is split into
// fragment SQL that other DuckDB instances run (worker processes, Lambdas), and the server
// classifies and authorizes the text itself, so the values must be in the text those steps
// see. Safety comes from where and how they go in: parameters are found by the lexer the
// classifier uses (a `$1` or `?` inside a string, quoted identifier or comment is left
// alone), and every value becomes one parenthesized literal that cannot end its token
// (strings single-quoted with quotes doubled; DuckDB's plain strings take no backslash
// escapes; numbers written by JavaScript and checked against a number pattern).

import { PuffinError } from '../errors.ts';
import { lex, type Token } from '../sql/lexer.ts';
import { sqlString } from '../sql/quote.ts';

/** A value a parameter may take. */
export type ParamValue = string | number | bigint | boolean | null | Date | Uint8Array;

/** Most parameters one statement may take (PostgreSQL's limit). */
export const MAX_PARAMS = 65_535;

const NUMBER = /^-?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i;

/** One value as a parenthesized SQL literal. */
export function paramLiteral(value: unknown, position: number): string {
  const where = `parameter ${position}`;
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'boolean') return value ? 'TRUE' : 'FALSE';
  if (typeof value === 'bigint') return `(${value.toString()})`;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new PuffinError('bad_request', `${where} is ${value}; pass NaN and infinities as the strings 'NaN', 'Infinity' with a cast, e.g. CAST($1 AS DOUBLE)`);
    const text = String(value);
    if (!NUMBER.test(text)) throw new PuffinError('bad_request', `${where} (${text}) is not a number DuckDB reads`);
    // Integers outside DuckDB's exact range would be rounded doubles already: say so rather than bind them.
    if (Number.isInteger(value) && !Number.isSafeInteger(value)) throw new PuffinError('bad_request', `${where} (${text}) is an integer beyond 2^53, which a JavaScript number cannot hold exactly; pass a BigInt or a string`);
    return Number.isInteger(value) ? `(${text})` : `(${text}::DOUBLE)`;
  }
  if (typeof value === 'string') {
    if (value.includes('\u0000')) throw new PuffinError('bad_request', `${where} contains a NUL character`);
    return `(${sqlString(value)})`;
  }
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw new PuffinError('bad_request', `${where} is an invalid Date`);
    return `(CAST(${sqlString(value.toISOString())} AS TIMESTAMPTZ))`;
  }
  if (value instanceof Uint8Array) return `(from_hex(${sqlString(Buffer.from(value).toString('hex'))}))`;
  throw new PuffinError('bad_request', `${where} is ${Array.isArray(value) ? 'an array' : `a ${typeof value}`}; parameters are strings, numbers, BigInts, booleans, null, Dates or Uint8Arrays`);
}

/** The statement with its `$n` or `?` parameters replaced by `params`' literals. */
export function bindParams(sql: string, params: readonly unknown[] | undefined): string {
  if (params !== undefined && !Array.isArray(params)) throw new PuffinError('bad_request', 'params must be an array of values, one per $1, $2, ... or ? in the statement');
  const values = params ?? [];
  const marks = lex(sql).tokens.filter((t) => t.kind === 'param' || (t.kind === 'symbol' && t.text === '?'));
  if (marks.length === 0) {
    if (values.length > 0) throw new PuffinError('bad_request', `${values.length} parameter(s) given, but the statement has no $1 or ? placeholder`);
    return sql;
  }
  if (values.length > MAX_PARAMS) throw new PuffinError('bad_request', `${values.length} parameters given; at most ${MAX_PARAMS}`);
  const numbered = marks.filter((t) => t.kind === 'param');
  if (numbered.length > 0 && numbered.length < marks.length) throw new PuffinError('bad_request', 'the statement mixes $n and ? placeholders; use one style');
  const literals = values.map((v, i) => paramLiteral(v, i + 1));
  const indexOf = (t: Token, order: number): number => (t.kind === 'param' ? Number(t.text.slice(1)) : order + 1);
  const wanted = numbered.length > 0 ? Math.max(...numbered.map((t, i) => indexOf(t, i))) : marks.length;
  if (wanted !== values.length) throw new PuffinError('bad_request', `the statement takes ${wanted} parameter(s) (${numbered.length > 0 ? `up to $${wanted}` : `${wanted} ?`}), but ${values.length} were given`);
  let out = '';
  let at = 0;
  marks.forEach((t, order) => {
    const index = indexOf(t, order);
    if (index < 1) throw new PuffinError('bad_request', `$${index} is not a parameter; they start at $1`);
    // Spaces keep a literal from joining a neighbouring token.
    out += `${sql.slice(at, t.start)} ${literals[index - 1]} `;
    at = t.end;
  });
  return out + sql.slice(at);
}
