// `SELECT ... THROUGH 'https://host/' FROM ...`: run the statement on another PuffinDB (the
// seed's edge-driven data integration). THROUGH is not DuckDB syntax, so it is found and
// cut out here, with the lexer (DuckDB's quoting and comment rules), before anything
// parses the statement: classify.ts classifies the statement without its THROUGH clauses
// and keeps what this module found beside it.
//
// Where it stands: at the top level (outside parentheses) of a SELECT, between the select
// list of its first top-level SELECT and what follows (FROM, WHERE, ... or the end), as one
// or more clauses in a row: `SELECT * THROUGH 'A' THROUGH 'B' FROM t`. The first URL is where
// the statement runs; it is sent there with the remaining clauses (`SELECT * THROUGH 'B' FROM
// t`), so A sends it on to B: a chain cascades one hop per clause. THROUGH anywhere else (in a
// subquery, after FROM, in a statement that is not a SELECT) is refused with a message saying
// where it goes. THROUGH followed by a string is never valid DuckDB (a column alias cannot be
// followed by a string literal), so no DuckDB statement changes meaning here.

import { PuffinError } from '../errors.ts';
import { lex, splitStatements, type Token } from './lexer.ts';

export interface ThroughClause {
  /** The PuffinDB the statement runs on (the first clause's URL, as written). */
  url: string;
  /** Every clause's URL, in order: the whole chain. */
  chain: string[];
  /** What is sent to `url`: the statement without the first clause (the rest of the chain kept). */
  forward: string;
  /** The statement without any THROUGH clause: what is classified, and what finally runs. */
  statement: string;
}

/** A quick test before lexing: SQL that never says THROUGH has no THROUGH clause. */
export function mayGoThrough(sql: string): boolean {
  return /\bthrough\b/i.test(sql);
}

/** Words that end a SELECT's select list at the top level. */
const AFTER_SELECT_LIST = new Set(['FROM', 'WHERE', 'GROUP', 'HAVING', 'QUALIFY', 'WINDOW', 'ORDER', 'LIMIT', 'OFFSET', 'UNION', 'INTERSECT', 'EXCEPT', 'USING', 'SAMPLE', 'TABLESAMPLE']);

function upper(t: Token | undefined): string {
  return t?.kind === 'word' ? t.text.toUpperCase() : '';
}

/** The value of a plain '...' string token (doubled quotes undone); undefined for E'', $$...$$ and others. */
function stringValue(t: Token | undefined): string | undefined {
  if (!t || t.kind !== 'string' || !t.text.startsWith("'") || !t.text.endsWith("'") || t.text.length < 2) return undefined;
  return t.text.slice(1, -1).replaceAll("''", "'");
}

const WHERE_IT_GOES = "THROUGH goes after the select list of a SELECT: SELECT ... THROUGH 'https://host/' FROM ...";

/**
 * The THROUGH clauses of a statement, or undefined when it has none. Refuses (400) a THROUGH
 * that is misplaced, not followed by a plain string URL, or in a statement other than a SELECT.
 */
export function throughClause(sql: string): ThroughClause | undefined {
  if (!mayGoThrough(sql)) return undefined;
  const lexed = lex(sql);
  const statements = splitStatements(lexed.tokens);
  // Several statements are refused by the classifier; THROUGH is looked for in one.
  if (statements.length !== 1) return undefined;
  const tokens = statements[0];
  // Every THROUGH word followed by a string, and the depth it stands at.
  const found: { at: number; depth: number }[] = [];
  let depth = 0;
  tokens.forEach((t, i) => {
    if (t.kind === 'symbol' && t.text === '(') depth++;
    else if (t.kind === 'symbol' && t.text === ')') depth--;
    else if (upper(t) === 'THROUGH' && tokens[i + 1]?.kind === 'string') found.push({ at: i, depth });
  });
  if (found.length === 0) return undefined;
  const head = upper(tokens[0]);
  if (head !== 'SELECT' && head !== 'WITH' && !(tokens[0].kind === 'symbol' && tokens[0].text === '(')) {
    throw new PuffinError('bad_request', `THROUGH runs a SELECT on another PuffinDB; this statement starts with ${tokens[0].text.toUpperCase()}, and writes are never sent through. ${WHERE_IT_GOES}`);
  }
  if (found.some((f) => f.depth !== 0)) throw new PuffinError('bad_request', `THROUGH applies to a whole statement, not to a subquery. ${WHERE_IT_GOES}`);
  // The clauses must be one run: THROUGH 'a' THROUGH 'b' ...
  const first = found[0].at;
  found.forEach((f, k) => {
    if (f.at !== first + 2 * k) throw new PuffinError('bad_request', `THROUGH clauses must follow each other (SELECT * THROUGH 'A' THROUGH 'B' FROM t). ${WHERE_IT_GOES}`);
  });
  // ... standing right after the select list of the first top-level SELECT.
  depth = 0;
  let select = -1;
  for (let i = 0; i < first; i++) {
    const t = tokens[i];
    if (t.kind === 'symbol' && t.text === '(') depth++;
    else if (t.kind === 'symbol' && t.text === ')') depth--;
    else if (depth === 0 && select < 0 && upper(t) === 'SELECT') select = i;
    else if (depth === 0 && select >= 0 && AFTER_SELECT_LIST.has(upper(t))) throw new PuffinError('bad_request', `THROUGH stands after ${t.text.toUpperCase()} here. ${WHERE_IT_GOES}`);
  }
  if (select < 0 || first === select + 1) throw new PuffinError('bad_request', `THROUGH needs a select list before it. ${WHERE_IT_GOES}`);
  const chain = found.map((f) => {
    const url = stringValue(tokens[f.at + 1]);
    if (url === undefined || url.trim() === '') throw new PuffinError('bad_request', `THROUGH takes a URL as a plain string literal ('https://host/'), got ${tokens[f.at + 1].text.slice(0, 80)}`);
    return url;
  });
  const cut = (from: number, to: number) => `${sql.slice(0, tokens[from].start).trimEnd()} ${sql.slice(tokens[to].end).trimStart()}`.trim();
  const lastString = found[found.length - 1].at + 1;
  return {
    url: chain[0],
    chain,
    forward: cut(first, first + 1),
    statement: cut(first, lastString),
  };
}
