// Views: the statements that define them (CREATE [OR REPLACE] [MATERIALIZED] VIEW, DROP
// [MATERIALIZED] VIEW, REFRESH MATERIALIZED VIEW; DuckDB serializes none of them, so their
// heads are read here from the lexer's tokens and the query they hold is left to DuckDB),
// and their expansion: a query naming a view has the reference replaced by the view's query,
// as a derived table aliased by the view's name (the reference's own alias and column
// aliases kept), recursively, before anything is planned. The planner (and its plan cache,
// keyed by SQL text) only ever sees the expanded SQL, so the caller's role applies to what
// the view reads, and a changed view definition is a different query.

import type { Engine } from '../engine/engine.ts';
import type { DuckDBConnection } from '@duckdb/node-api';
import { PuffinError } from '../errors.ts';
import type { Column } from '../catalog/types.ts';
import { lex, type Token } from './lexer.ts';
import { parseStatement, type AstNode } from './parse.ts';

/** A (plain) view as the catalog keeps it. */
export interface ViewDefinition {
  /** Lower-case, possibly dotted name. */
  name: string;
  /** The view's query, without comments, as it was written. */
  sql: string;
  /** Its columns when it was created (names as the view presents them). */
  columns: Column[];
  /** `CREATE VIEW v (a, b) AS ...`: the names given to the query's columns. */
  columnNames?: string[];
  /** It reads a table only admin keys may read (then it is listed to admin keys only). */
  adminOnly?: boolean;
  createdAt: string;
}

export type ViewStatement =
  | { kind: 'create_view'; name: string; replace: boolean; ifNotExists: boolean; columnNames?: string[]; query: string }
  | { kind: 'create_materialized_view'; name: string; ifNotExists: boolean; partitionBy?: string; query: string }
  | { kind: 'drop_view'; name: string; ifExists: boolean; materialized: boolean }
  | { kind: 'refresh_materialized_view'; name: string }
  /** ALTER MATERIALIZED VIEW v SET REFRESH EVERY '<interval>' (every) or SET REFRESH MANUAL (null). */
  | { kind: 'alter_materialized_view'; name: string; every: string | null };

function word(t: Token | undefined): string {
  return t && t.kind === 'word' ? t.text.toUpperCase() : '';
}

function identifierText(t: Token | undefined, what: string): string {
  if (t?.kind === 'word') return t.text.toLowerCase();
  if (t?.kind === 'quoted_ident') return t.text.slice(1, -1).replace(/""/g, '"');
  throw new PuffinError('syntax_error', `expected ${what}${t ? ` at: ${t.text}` : ' at the end of the statement'}`);
}

/**
 * Read a view statement (comments already removed); undefined when `text` is not one.
 * Throws syntax errors naming what was expected.
 */
export function parseViewStatement(text: string): ViewStatement | undefined {
  const tokens = lex(text).tokens.filter((t) => t.kind !== 'semicolon');
  let i = 0;
  const is = (...words: string[]): boolean => {
    if (!words.every((w, k) => word(tokens[i + k]) === w)) return false;
    i += words.length;
    return true;
  };
  const name = (): string => {
    const parts = [identifierText(tokens[i++], 'a view name')];
    while (tokens[i]?.kind === 'symbol' && tokens[i].text === '.') {
      i++;
      parts.push(identifierText(tokens[i++], 'a view name'));
    }
    return parts.join('.');
  };
  /** The tokens' source text inside the parentheses starting at token i; moves past them. */
  const parenthesized = (): string => {
    if (tokens[i]?.text !== '(') throw new PuffinError('syntax_error', `expected '('${tokens[i] ? ` at: ${tokens[i].text}` : ''}`);
    const open = i;
    let depth = 0;
    for (; i < tokens.length; i++) {
      if (tokens[i].kind !== 'symbol') continue;
      if (tokens[i].text === '(') depth++;
      else if (tokens[i].text === ')' && --depth === 0) {
        const inner = text.slice(tokens[open].end, tokens[i].start);
        i++;
        return inner;
      }
    }
    throw new PuffinError('syntax_error', 'unbalanced parentheses');
  };
  const end = (what: string): void => {
    if (i < tokens.length) throw new PuffinError('syntax_error', `unexpected text after ${what}: ${text.slice(tokens[i].start, tokens[i].start + 40)}`);
  };
  const query = (what: string): string => {
    if (!is('AS')) throw new PuffinError('syntax_error', `${what} needs AS followed by a query`);
    const q = i < tokens.length ? text.slice(tokens[i].start).trim().replace(/;\s*$/, '').trim() : '';
    if (!/^(\(|SELECT\b|WITH\b|VALUES\b|FROM\b|TABLE\b)/i.test(q)) throw new PuffinError('syntax_error', `${what} AS must be followed by a query`);
    return q;
  };

  if (is('CREATE')) {
    const replace = is('OR', 'REPLACE');
    if (is('MATERIALIZED', 'VIEW')) {
      if (replace) throw new PuffinError('unsupported', 'CREATE OR REPLACE MATERIALIZED VIEW is not supported; DROP MATERIALIZED VIEW first');
      const ifNotExists = is('IF', 'NOT', 'EXISTS');
      const view = name();
      const partitionBy = is('PARTITIONED', 'BY') ? parenthesized() : undefined;
      return { kind: 'create_materialized_view', name: view, ifNotExists, ...(partitionBy ? { partitionBy } : {}), query: query(`CREATE MATERIALIZED VIEW ${view}`) };
    }
    if (is('TEMP') || is('TEMPORARY')) throw new PuffinError('unsupported', 'CREATE TEMPORARY VIEW is not supported: views are kept in the catalog (CREATE VIEW)');
    if (!is('VIEW')) return undefined;
    const ifNotExists = is('IF', 'NOT', 'EXISTS');
    if (replace && ifNotExists) throw new PuffinError('syntax_error', 'CREATE OR REPLACE VIEW cannot have IF NOT EXISTS');
    const view = name();
    let columnNames: string[] | undefined;
    if (tokens[i]?.text === '(') {
      const inner = lex(parenthesized()).tokens.filter((t) => !(t.kind === 'symbol' && t.text === ','));
      columnNames = inner.map((t) => identifierText(t, 'a column name'));
      if (columnNames.length === 0) throw new PuffinError('syntax_error', `CREATE VIEW ${view} (...) needs column names`);
    }
    return { kind: 'create_view', name: view, replace, ifNotExists, ...(columnNames ? { columnNames } : {}), query: query(`CREATE VIEW ${view}`) };
  }
  if (is('DROP')) {
    const materialized = is('MATERIALIZED');
    if (!is('VIEW')) return undefined;
    const ifExists = is('IF', 'EXISTS');
    const view = name();
    is('RESTRICT');
    if (word(tokens[i]) === 'CASCADE') throw new PuffinError('unsupported', 'DROP VIEW ... CASCADE is not supported');
    end(`DROP VIEW ${view}`);
    return { kind: 'drop_view', name: view, ifExists, materialized };
  }
  if (is('REFRESH', 'MATERIALIZED', 'VIEW')) {
    const view = name();
    end(`REFRESH MATERIALIZED VIEW ${view}`);
    return { kind: 'refresh_materialized_view', name: view };
  }
  if (is('ALTER', 'MATERIALIZED', 'VIEW')) {
    const view = name();
    const usage = `ALTER MATERIALIZED VIEW ${view} takes SET REFRESH EVERY '<interval>' (e.g. '15 minutes') or SET REFRESH MANUAL`;
    if (!is('SET', 'REFRESH')) throw new PuffinError('syntax_error', usage);
    if (is('MANUAL')) {
      end(`ALTER MATERIALIZED VIEW ${view} SET REFRESH MANUAL`);
      return { kind: 'alter_materialized_view', name: view, every: null };
    }
    const every = is('EVERY') ? tokens[i++] : undefined;
    if (every?.kind !== 'string' || !every.text.startsWith("'")) throw new PuffinError('syntax_error', usage);
    end(`ALTER MATERIALIZED VIEW ${view} SET REFRESH EVERY ${every.text}`);
    return { kind: 'alter_materialized_view', name: view, every: every.text.slice(1, -1).replace(/''/g, "'") };
  }
  return undefined;
}

function isBaseTable(node: AstNode): boolean {
  return node?.type === 'BASE_TABLE' && !('class' in node);
}

/** The dotted, lower-case name a table reference is written with. */
export function referenceName(node: AstNode): string {
  return [node.catalog_name, node.schema_name, node.table_name].filter((p) => typeof p === 'string' && p !== '').join('.').toLowerCase();
}

/** The CTE names a query node defines (they hide views of the same name inside it). */
function cteNames(node: AstNode): string[] {
  const map = node?.cte_map?.map;
  return Array.isArray(map) ? map.map((e: AstNode) => String(e.key).toLowerCase()) : [];
}

export interface ExpandOptions {
  /** The view named so, or undefined when there is none. */
  lookup: (name: string) => ViewDefinition | undefined;
  /** The views the expansion is inside already (a cycle check across calls). */
  path?: string[];
}

/**
 * Replace, in place, every reference in `root` (a statement or query node of DuckDB's JSON
 * AST) to a view by the view's query, recursively. Returns the views expanded (each once,
 * in order of first use). A view that reaches itself is an error naming the cycle.
 */
export async function expandViews(engine: Engine | DuckDBConnection, root: AstNode, options: ExpandOptions): Promise<string[]> {
  const used: string[] = [];
  const visit = async (value: unknown, hidden: ReadonlySet<string>, path: readonly string[]): Promise<void> => {
    if (Array.isArray(value)) {
      for (const v of value) await visit(v, hidden, path);
      return;
    }
    if (!value || typeof value !== 'object') return;
    const node = value as AstNode;
    if (isBaseTable(node)) {
      const name = referenceName(node);
      const view = hidden.has(name) ? undefined : options.lookup(name);
      if (!view) return;
      if (path.includes(view.name)) throw new PuffinError('bad_request', `view ${view.name} refers to itself: ${[...path.slice(path.indexOf(view.name)), view.name].join(' -> ')}`);
      if (node.at_clause) throw new PuffinError('bad_request', `${view.name} is a view: time travel (AT ...) applies to tables, not views`);
      if (!used.includes(view.name)) used.push(view.name);
      const body = (await parseStatement(engine, view.sql)).statement;
      await visit(body, new Set(), [...path, view.name]);
      const aliases = Array.isArray(node.column_name_alias) && node.column_name_alias.length ? node.column_name_alias : view.columnNames ?? [];
      const replacement: AstNode = {
        type: 'SUBQUERY',
        alias: node.alias || view.name.split('.').pop(),
        sample: node.sample ?? null,
        query_location: node.query_location ?? 0,
        subquery: { node: body.node, named_param_map: body.named_param_map ?? [] },
        column_name_alias: aliases,
      };
      for (const key of Object.keys(node)) delete node[key];
      Object.assign(node, replacement);
      return;
    }
    const ctes = cteNames(node);
    const inner = ctes.length ? new Set([...hidden, ...ctes]) : hidden;
    for (const key of Object.keys(node)) await visit(node[key], inner, path);
  };
  await visit(root, new Set(), options.path ?? []);
  return used;
}

/** Every table (or view) name a statement's AST refers to, CTE names excluded. */
export function referencedNames(root: AstNode): string[] {
  const out = new Set<string>();
  const visit = (value: unknown, hidden: ReadonlySet<string>): void => {
    if (Array.isArray(value)) {
      for (const v of value) visit(v, hidden);
      return;
    }
    if (!value || typeof value !== 'object') return;
    const node = value as AstNode;
    if (isBaseTable(node)) {
      const name = referenceName(node);
      if (!hidden.has(name)) out.add(name);
      return;
    }
    const ctes = cteNames(node);
    const inner = ctes.length ? new Set([...hidden, ...ctes]) : hidden;
    for (const key of Object.keys(node)) visit(node[key], inner);
  };
  visit(root, new Set());
  return [...out];
}
