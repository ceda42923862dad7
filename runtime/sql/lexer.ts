// A lexer with DuckDB's (PostgreSQL's scan.l) rules for the parts that decide where a
// statement's words are: block comments nest, `--` runs to the end of the line, '...'
// strings double their quote (E'...' also takes backslash escapes), "..." identifiers
// double theirs, and $tag$...$tag$ quotes anything. It never decides what a statement is
// on its own: runtime/sql/classify.ts checks everything it says against DuckDB's parse of
// the same text, and refuses the statement when the two disagree.

import { PuffinError } from '../errors.ts';

export type TokenKind = 'word' | 'quoted_ident' | 'string' | 'number' | 'param' | 'symbol' | 'semicolon';

export interface Token {
  kind: TokenKind;
  /** The token's text as written. */
  text: string;
  /** Offset of its first character in the source. */
  start: number;
  end: number;
}

export interface Lexed {
  tokens: Token[];
  /** The source with every comment replaced by one space; all other characters unchanged. */
  withoutComments: string;
  /** [start, end) of every comment in the source. */
  comments: [number, number][];
}

/** The source between two offsets with its comments replaced by one space each. */
export function sliceWithoutComments(sql: string, lexed: Lexed, from: number, to: number): string {
  let out = '';
  let at = from;
  for (const [start, end] of lexed.comments) {
    if (end <= from || start >= to) continue;
    out += `${sql.slice(at, Math.max(at, start))} `;
    at = Math.max(at, end);
  }
  return out + sql.slice(at, to);
}

const IDENT_START = /[A-Za-z_\u0080-\uffff]/;
const IDENT_PART = /[A-Za-z0-9_$\u0080-\uffff]/;

export function lex(sql: string): Lexed {
  const tokens: Token[] = [];
  const comments: [number, number][] = [];
  let out = '';
  let last = 0;
  let i = 0;
  const n = sql.length;
  const dropComment = (from: number, to: number) => {
    comments.push([from, to]);
    out += `${sql.slice(last, from)} `;
    last = to;
  };
  while (i < n) {
    const ch = sql[i];
    if (/\s/.test(ch)) {
      i++;
      continue;
    }
    if (ch === '-' && sql[i + 1] === '-') {
      let j = i + 2;
      while (j < n && sql[j] !== '\n' && sql[j] !== '\r') j++;
      dropComment(i, j);
      i = j;
      continue;
    }
    if (ch === '/' && sql[i + 1] === '*') {
      let depth = 1;
      let j = i + 2;
      while (j < n && depth > 0) {
        if (sql[j] === '/' && sql[j + 1] === '*') {
          depth++;
          j += 2;
        } else if (sql[j] === '*' && sql[j + 1] === '/') {
          depth--;
          j += 2;
        } else j++;
      }
      if (depth > 0) throw new PuffinError('syntax_error', 'Parser Error: unterminated /* comment', { position: i });
      dropComment(i, j);
      i = j;
      continue;
    }
    const start = i;
    if (ch === "'" || ((ch === 'E' || ch === 'e') && sql[i + 1] === "'")) {
      const escapes = ch !== "'";
      let j = escapes ? i + 2 : i + 1;
      for (;;) {
        if (j >= n) throw new PuffinError('syntax_error', 'Parser Error: unterminated quoted string', { position: start });
        if (escapes && sql[j] === '\\') {
          j += 2;
          continue;
        }
        if (sql[j] === "'") {
          if (sql[j + 1] === "'") {
            j += 2;
            continue;
          }
          j++;
          break;
        }
        j++;
      }
      tokens.push({ kind: 'string', text: sql.slice(start, j), start, end: j });
      i = j;
      continue;
    }
    if (ch === '"') {
      let j = i + 1;
      for (;;) {
        if (j >= n) throw new PuffinError('syntax_error', 'Parser Error: unterminated quoted identifier', { position: start });
        if (sql[j] === '"') {
          if (sql[j + 1] === '"') {
            j += 2;
            continue;
          }
          j++;
          break;
        }
        j++;
      }
      tokens.push({ kind: 'quoted_ident', text: sql.slice(start, j), start, end: j });
      i = j;
      continue;
    }
    if (ch === '$') {
      // $1 is a parameter; $tag$ or $$ opens a dollar-quoted string closed by the same tag.
      const param = /^\$\d+/.exec(sql.slice(i, i + 24));
      if (param) {
        tokens.push({ kind: 'param', text: param[0], start, end: i + param[0].length });
        i += param[0].length;
        continue;
      }
      const tag = /^\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(sql.slice(i, i + 256));
      if (tag) {
        const close = sql.indexOf(tag[0], i + tag[0].length);
        if (close < 0) throw new PuffinError('syntax_error', 'Parser Error: unterminated dollar-quoted string', { position: start });
        const j = close + tag[0].length;
        tokens.push({ kind: 'string', text: sql.slice(start, j), start, end: j });
        i = j;
        continue;
      }
      tokens.push({ kind: 'symbol', text: '$', start, end: i + 1 });
      i++;
      continue;
    }
    if (IDENT_START.test(ch)) {
      let j = i + 1;
      while (j < n && IDENT_PART.test(sql[j])) j++;
      tokens.push({ kind: 'word', text: sql.slice(start, j), start, end: j });
      i = j;
      continue;
    }
    if (/[0-9]/.test(ch) || (ch === '.' && /[0-9]/.test(sql[i + 1] ?? ''))) {
      let j = i + 1;
      while (j < n && /[0-9A-Za-z_.]/.test(sql[j])) j++;
      tokens.push({ kind: 'number', text: sql.slice(start, j), start, end: j });
      i = j;
      continue;
    }
    if (ch === ';') {
      tokens.push({ kind: 'semicolon', text: ';', start, end: i + 1 });
      i++;
      continue;
    }
    tokens.push({ kind: 'symbol', text: ch, start, end: i + 1 });
    i++;
  }
  return { tokens, withoutComments: out + sql.slice(last), comments };
}

/** The tokens of each non-empty statement (split at semicolons). */
export function splitStatements(tokens: readonly Token[]): Token[][] {
  const statements: Token[][] = [];
  let current: Token[] = [];
  for (const t of tokens) {
    if (t.kind === 'semicolon') {
      if (current.length) statements.push(current);
      current = [];
    } else current.push(t);
  }
  if (current.length) statements.push(current);
  return statements;
}

/** Position of a top-level keyword (outside quotes and parentheses), or -1. */
export function topLevelKeyword(sql: string, word: string): number {
  let depth = 0;
  const re = new RegExp(`^${word}\\b`, 'i');
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i];
    if (c === "'" || c === '"') {
      const close = sql.indexOf(c, i + 1);
      if (close < 0) return -1;
      i = close;
    } else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (depth === 0 && /[A-Za-z]/.test(c) && (i === 0 || /[^A-Za-z0-9_$]/.test(sql[i - 1])) && re.test(sql.slice(i))) return i;
  }
  return -1;
}
