// The filtered-partition cache on workers: a fragment's filtered, projected rows of one file,
// kept as Parquet in the worker's file cache (same directory, same byte bound, same
// least-recently-used eviction as the whole files: storage/file-cache.ts "derived" entries).
// A file no row of which passes the filter is an empty entry, kept here in memory only.
//
// The unit is (file, predicate, columns). The worker reads the predicate and the columns off
// the fragment's own SQL (the statement that runs, so they cannot drift from it):
// - the predicate of an input is the conjunction of the WHERE (and inner-join ON) conjuncts
//   that read only that input's columns, of the one SELECT that reads the input, on an inner
//   path of its FROM; without subqueries, lambdas, parameters or volatile functions
//   (sql/volatile.ts; a volatile conjunct is never part of an entry, the fragment applies
//   it to the cached rows). Nothing else is ever cached: an input without such a conjunct,
//   an input read twice, a statement with CTEs, a write, a type Parquet does not return
//   unchanged.
// - the columns are every column of the input the statement names anywhere (all of them
//   for a star), so a cached entry holds all the fragment can read.
// A later fragment reads an entry when its own predicate implies the entry's (every cached
// conjunct is implied by one of its conjuncts: the same expression, or a range, equality or
// IN on the same column that is contained in the cached one) and the entry's columns are a
// superset of its own, with the same types. The fragment's SQL is run over the cached rows
// unchanged, so its full predicate is re-applied.
//
// The file is identified by its URI, its size, for a local file its inode, size and mtime,
// and everything that decides how it is read: Iceberg read schema, partition constants and
// the delete files applied (their set is part of the key, so a new snapshot with deletes is
// another entry), the table's field-id mapping, a text table's reader options.

import { createHash } from 'node:crypto';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { Engine } from '../engine/engine.ts';
import type { Column } from '../catalog/types.ts';
import type { FileRef, Fragment, FragmentInput } from '../planner/plan.ts';
import { colRef, conjuncts, type AstNode } from '../planner/ast.ts';
import { parseStatement, visitNodes } from '../sql/parse.ts';
import { mentionsVolatile } from '../sql/volatile.ts';
import type { FileCache } from '../storage/file-cache.ts';

// ---------------------------------------------------------------------------------------
// Predicates as atoms, and implication between them.

/** A literal value in one comparison domain. */
export type Literal =
  /** A number as an exact decimal m * 10^-s; `exact`: an integer literal (converted without rounding). */
  | { d: 'num'; m: bigint; s: number; exact: boolean }
  /** VARCHAR, compared byte for byte (UTF-8), as DuckDB does. */
  | { d: 'str'; v: string; exact: true }
  /** A canonical ISO date (YYYY-MM-DD) against a DATE column. */
  | { d: 'date'; v: string; exact: true }
  /** A canonical ISO timestamp (or date) against a TIMESTAMP column: ordered, not exact. */
  | { d: 'ts'; v: string; exact: false };

export interface Bound {
  lit: Literal;
  strict: boolean;
}

/** One conjunct of a predicate, as far as implication is concerned. */
export type Atom =
  | { kind: 'range'; key: string; column: string; colExact: boolean; lower?: Bound; upper?: Bound; values?: Literal[] }
  | { kind: 'set'; key: string; column: string; colExact: boolean; values: Literal[] }
  | { kind: 'notnull'; key: string; column: string }
  | { kind: 'opaque'; key: string };

type Domain = 'num' | 'str' | 'date' | 'ts';

const INTEGER_TYPES = /^(TINYINT|SMALLINT|INTEGER|BIGINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|INT1|INT2|INT4|INT8)$/;
const INTEGER_LITERALS = new Set(['TINYINT', 'SMALLINT', 'INTEGER', 'BIGINT', 'UTINYINT', 'USMALLINT', 'UINTEGER', 'UBIGINT']);
const DATE_TEXT = /^\d{4}-\d{2}-\d{2}$/;
const TIMESTAMP_TEXT = /^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2}(\.\d{1,9})?)?$/;
/** The parser's tag on integers beyond 2^53 (sql/parse.ts), process-specific: never part of a key. */
const BIG_TAG = /__puffindb_int_\d+_[0-9a-z]+__:/g;

/** The comparison domain of a column type, and whether literals convert to it without rounding. */
function domainOf(type: string): { domain: Domain; exact: boolean } | undefined {
  const t = type.trim().toUpperCase();
  if (INTEGER_TYPES.test(t)) return { domain: 'num', exact: true };
  if (/^(FLOAT|DOUBLE|REAL|FLOAT4|FLOAT8)$/.test(t) || /^DECIMAL\(\d+,\s*\d+\)$/.test(t)) return { domain: 'num', exact: false };
  if (t === 'VARCHAR') return { domain: 'str', exact: true };
  if (t === 'DATE') return { domain: 'date', exact: true };
  if (/^TIMESTAMP(_S|_MS|_NS)?$/.test(t)) return { domain: 'ts', exact: false };
  return undefined;
}

function untag(value: unknown): string | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'string') return value.replace(BIG_TAG, '');
  return undefined;
}

/** '12.50', '-3', '1e3', '2.5E-2' as m * 10^-s. */
export function parseDecimal(text: string): { m: bigint; s: number } | undefined {
  const match = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text.trim());
  if (!match || (match[2] === '' && (match[3] ?? '') === '')) return undefined;
  const frac = match[3] ?? '';
  let m = BigInt(`${match[1]}${match[2] || '0'}${frac}`);
  let s = frac.length - Number(match[4] ?? 0);
  if (s < 0) {
    m *= 10n ** BigInt(-s);
    s = 0;
  }
  return { m, s };
}

function literalOf(node: AstNode | null | undefined, domain: Domain): Literal | undefined {
  if (!node) return undefined;
  if (node.class === 'CONSTANT') {
    const value = node.value;
    if (!value || value.is_null) return undefined;
    const id = String(value.type?.id ?? '');
    if (domain === 'num') {
      if (INTEGER_LITERALS.has(id)) {
        const text = untag(value.value);
        const parsed = text === undefined ? undefined : parseDecimal(text);
        return parsed && parsed.s === 0 ? { d: 'num', ...parsed, exact: true } : undefined;
      }
      if (id === 'DECIMAL') {
        const text = untag(value.value);
        const scale = Number(value.type?.type_info?.scale);
        if (text === undefined || !/^-?\d+$/.test(text) || !Number.isInteger(scale)) return undefined;
        return { d: 'num', m: BigInt(text), s: scale, exact: false };
      }
      if (id === 'DOUBLE' || id === 'FLOAT') {
        const text = untag(value.value);
        const parsed = text === undefined ? undefined : parseDecimal(text);
        return parsed ? { d: 'num', ...parsed, exact: false } : undefined;
      }
      return undefined;
    }
    if (id !== 'VARCHAR' || typeof value.value !== 'string') return undefined;
    const text = value.value;
    if (domain === 'str') return { d: 'str', v: text, exact: true };
    if (domain === 'date') return DATE_TEXT.test(text) ? { d: 'date', v: text, exact: true } : undefined;
    return TIMESTAMP_TEXT.test(text) ? { d: 'ts', v: text, exact: false } : undefined;
  }
  // DATE '2020-01-01', TIMESTAMP '...': a cast of a string constant.
  if (node.class === 'CAST' && !node.try_cast && (domain === 'date' || domain === 'ts')) {
    const target = String(node.cast_type?.id ?? '');
    const child = node.child;
    if (child?.class !== 'CONSTANT' || child.value?.is_null || child.value?.type?.id !== 'VARCHAR' || typeof child.value.value !== 'string') return undefined;
    const text = child.value.value;
    if (target === 'DATE' && DATE_TEXT.test(text)) return domain === 'date' ? { d: 'date', v: text, exact: true } : { d: 'ts', v: text, exact: false };
    if (domain === 'ts' && target === 'TIMESTAMP' && TIMESTAMP_TEXT.test(text)) return { d: 'ts', v: text, exact: false };
  }
  return undefined;
}

function compareLiterals(a: Literal, b: Literal): number | undefined {
  if (a.d !== b.d) return undefined;
  if (a.d === 'num' && b.d === 'num') {
    const s = Math.max(a.s, b.s);
    const x = a.m * 10n ** BigInt(s - a.s);
    const y = b.m * 10n ** BigInt(s - b.s);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  const x = (a as { v: string }).v;
  const y = (b as { v: string }).v;
  if (a.d === 'str') return Buffer.compare(Buffer.from(x, 'utf8'), Buffer.from(y, 'utf8'));
  return x < y ? -1 : x > y ? 1 : 0;
}

const FLIPPED: Record<string, string> = {
  COMPARE_GREATERTHAN: 'COMPARE_LESSTHAN', COMPARE_LESSTHAN: 'COMPARE_GREATERTHAN',
  COMPARE_GREATERTHANOREQUALTO: 'COMPARE_LESSTHANOREQUALTO', COMPARE_LESSTHANOREQUALTO: 'COMPARE_GREATERTHANOREQUALTO',
  COMPARE_EQUAL: 'COMPARE_EQUAL',
};

/** A structural key of a normalized conjunct: equal for the same expression in any process. */
export function atomKey(node: AstNode): string {
  return JSON.stringify(node, (key, value) => {
    if (key === 'alias' || key === 'query_location') return undefined;
    if (key === 'column_names' && Array.isArray(value)) return value.map((s: string) => s.toLowerCase());
    if (key === 'function_name' && typeof value === 'string') return value.toLowerCase();
    if (typeof value === 'string') return value.replace(BIG_TAG, '');
    return value;
  });
}

/**
 * The atom of a conjunct whose column references are already normalized to one-part names of
 * the input's columns; `types` gives each column's declared type.
 */
export function atomOf(node: AstNode, types: ReadonlyMap<string, string>): Atom {
  const key = atomKey(node);
  const opaque: Atom = { kind: 'opaque', key };
  const columnOf = (e: AstNode | undefined): { column: string; domain: Domain; exact: boolean } | undefined => {
    if (e?.class !== 'COLUMN_REF' || e.column_names?.length !== 1) return undefined;
    const column = String(e.column_names[0]);
    const type = types.get(column);
    const d = type === undefined ? undefined : domainOf(type);
    return d ? { column, domain: d.domain, exact: d.exact } : undefined;
  };
  if (node.class === 'COMPARISON' && FLIPPED[node.type]) {
    let col = columnOf(node.left);
    let other = node.right;
    let op = String(node.type);
    if (!col) {
      col = columnOf(node.right);
      other = node.left;
      op = FLIPPED[op];
    }
    if (!col) return opaque;
    const lit = literalOf(other, col.domain);
    if (!lit) return opaque;
    const base = { kind: 'range' as const, key, column: col.column, colExact: col.exact };
    switch (op) {
      case 'COMPARE_EQUAL': return { ...base, lower: { lit, strict: false }, upper: { lit, strict: false }, values: [lit] };
      case 'COMPARE_GREATERTHAN': return { ...base, lower: { lit, strict: true } };
      case 'COMPARE_GREATERTHANOREQUALTO': return { ...base, lower: { lit, strict: false } };
      case 'COMPARE_LESSTHAN': return { ...base, upper: { lit, strict: true } };
      case 'COMPARE_LESSTHANOREQUALTO': return { ...base, upper: { lit, strict: false } };
    }
    return opaque;
  }
  if (node.class === 'BETWEEN') {
    const col = columnOf(node.input);
    if (!col) return opaque;
    const lower = literalOf(node.lower, col.domain);
    const upper = literalOf(node.upper, col.domain);
    if (!lower || !upper) return opaque;
    return { kind: 'range', key, column: col.column, colExact: col.exact, lower: { lit: lower, strict: false }, upper: { lit: upper, strict: false } };
  }
  if (node.class === 'OPERATOR' && node.type === 'COMPARE_IN') {
    const [first, ...rest] = (node.children ?? []) as AstNode[];
    const col = columnOf(first);
    if (!col || rest.length === 0) return opaque;
    const values = rest.map((r) => literalOf(r, col.domain));
    if (values.some((v) => v === undefined)) return opaque;
    return { kind: 'set', key, column: col.column, colExact: col.exact, values: values as Literal[] };
  }
  if (node.class === 'OPERATOR' && node.type === 'OPERATOR_IS_NOT_NULL' && node.children?.length === 1 && node.children[0]?.class === 'COLUMN_REF' && node.children[0].column_names?.length === 1) {
    return { kind: 'notnull', key, column: String(node.children[0].column_names[0]) };
  }
  return opaque;
}

/**
 * Does a value bound `n` of the new predicate imply the cached bound `c` (both lower, or both
 * upper)? Literals convert to the comparison type monotonically (rounding may merge two of
 * them), so a strict cached bound is implied by a non-strict one only when the conversion
 * is exact (integers against an integer column, strings, dates).
 */
function boundImplies(n: Bound, c: Bound, side: 'lower' | 'upper', colExact: boolean): boolean {
  const cmp = compareLiterals(n.lit, c.lit);
  if (cmp === undefined) return false;
  const tighter = side === 'lower' ? cmp > 0 : cmp < 0;
  if (cmp === 0) return n.strict || !c.strict;
  if (!tighter) return false;
  return n.strict || !c.strict || (colExact && n.lit.exact && c.lit.exact);
}

/** A value `v` (an equality's or IN's) against a cached bound. */
function valueWithin(v: Literal, c: Bound, side: 'lower' | 'upper', colExact: boolean): boolean {
  return boundImplies({ lit: v, strict: false }, c, side, colExact);
}

/** Does the new conjunct `n` imply the cached conjunct `c`? */
export function atomImplies(n: Atom, c: Atom): boolean {
  if (n.key === c.key) return true;
  if (c.kind === 'opaque' || n.kind === 'opaque') return false;
  if (n.column !== c.column) return false;
  // Comparisons, BETWEEN and IN are true only for non-NULL values.
  if (c.kind === 'notnull') return true;
  if (n.kind === 'notnull') return false;
  const values = n.kind === 'set' ? n.values : n.values;
  if (c.kind === 'set') {
    return !!values && values.every((v) => c.values.some((w) => compareLiterals(v, w) === 0));
  }
  const colExact = c.colExact && n.colExact;
  if (values) {
    return values.every((v) => (!c.lower || valueWithin(v, c.lower, 'lower', colExact)) && (!c.upper || valueWithin(v, c.upper, 'upper', colExact)));
  }
  if (n.kind !== 'range') return false;
  if (c.lower && !(n.lower && boundImplies(n.lower, c.lower, 'lower', colExact))) return false;
  if (c.upper && !(n.upper && boundImplies(n.upper, c.upper, 'upper', colExact))) return false;
  return true;
}

/**
 * Does the new predicate (a conjunction) imply the cached one? Every cached conjunct must be
 * implied by some new conjunct; the new predicate may have more conjuncts (it is re-applied
 * to the cached rows).
 */
export function predicateImplies(newAtoms: readonly Atom[], cachedAtoms: readonly Atom[]): boolean {
  return cachedAtoms.every((c) => newAtoms.some((n) => atomImplies(n, c)));
}

// ---------------------------------------------------------------------------------------
// What a fragment reads of each input, from its SQL.

/** One input's cacheable scan: its deterministic filter over its columns, and the columns read. */
export interface ScanSpec {
  /** The filter's conjuncts, over the input's columns by one-part names. */
  filter: AstNode[];
  atoms: Atom[];
  /** A key of the filter (its conjuncts' keys, sorted). */
  filterKey: string;
  /** The input's columns the statement may read, in the input's order. */
  columns: Column[];
}

/** Types whose values come back from DuckDB's Parquet unchanged (HUGEINT would come back DOUBLE, INTERVAL lose micros). */
const ROUND_TRIP = /^(BOOLEAN|TINYINT|SMALLINT|INTEGER|BIGINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|FLOAT|DOUBLE|DECIMAL\(\d+,\s*\d+\)|VARCHAR|BLOB|DATE|TIME|TIMESTAMP|TIMESTAMP_S|TIMESTAMP_MS|TIMESTAMP_NS|TIMESTAMP WITH TIME ZONE|UUID)(\[\d*\])?$/;

export function cacheableType(type: string): boolean {
  return ROUND_TRIP.test(type.trim().toUpperCase());
}

/** Expression classes a cached filter never holds. */
const REFUSED_CLASSES = new Set(['SUBQUERY', 'LAMBDA', 'LAMBDA_REF', 'PARAMETER', 'WINDOW', 'STAR', 'POSITIONAL_REFERENCE', 'DEFAULT']);

/** A copy of `node` whose column references are one-part names given by `name`. */
function renameColumns(node: unknown, name: (ref: AstNode) => string): AstNode {
  const copy = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(copy);
    if (!v || typeof v !== 'object') return v;
    const n = v as AstNode;
    if (n.class === 'COLUMN_REF') return colRef(name(n));
    const out: AstNode = {};
    for (const k of Object.keys(n)) out[k] = copy(n[k]);
    return out;
  };
  return copy(node) as AstNode;
}

/** The table references of a FROM clause through its joins (leaves: tables, subqueries, functions). */
function fromLeaves(from: AstNode | null | undefined): AstNode[] {
  if (!from) return [];
  if (from.type === 'JOIN') return [...fromLeaves(from.left), ...fromLeaves(from.right)];
  return [from];
}

/** The joins from the FROM clause's root down to `target`, with the side `target` is on. */
function joinPath(from: AstNode, target: AstNode): { join: AstNode; side: 'left' | 'right' }[] | undefined {
  if (from === target) return [];
  if (from.type !== 'JOIN') return undefined;
  for (const side of ['left', 'right'] as const) {
    const below = from[side] ? joinPath(from[side], target) : undefined;
    if (below) return [{ join: from, side }, ...below];
  }
  return undefined;
}

function isBaseTable(node: AstNode, name: string): boolean {
  return node?.type === 'BASE_TABLE' && !('class' in node) && String(node.table_name).toLowerCase() === name.toLowerCase() && !node.schema_name && !node.catalog_name;
}

/**
 * For each input of `fragment`, its cacheable scan, or undefined when none is safe (see the
 * rules at the top of this file). `root` is the fragment statement's query node.
 */
export async function scanSpecsOf(conn: Engine | DuckDBConnection, root: AstNode, inputs: readonly FragmentInput[]): Promise<(ScanSpec | undefined)[]> {
  let hasCte = false;
  const baseTables: AstNode[] = [];
  const selects: AstNode[] = [];
  visitNodes(root, (n) => {
    if (n.cte_map?.map?.length) hasCte = true;
    if (n.type === 'BASE_TABLE' && !('class' in n)) baseTables.push(n);
    if (n.type === 'SELECT_NODE' && !('class' in n)) selects.push(n);
  });
  if (hasCte) return inputs.map(() => undefined);
  const out: (ScanSpec | undefined)[] = [];
  for (const input of inputs) out.push(await specOf(conn, root, input, inputs, baseTables, selects));
  return out;
}

async function specOf(conn: Engine | DuckDBConnection, root: AstNode, input: FragmentInput, inputs: readonly FragmentInput[], baseTables: AstNode[], selects: AstNode[]): Promise<ScanSpec | undefined> {
  const refs = baseTables.filter((t) => isBaseTable(t, input.view));
  if (refs.length !== 1) return undefined;
  const ref = refs[0];
  if (ref.sample || ref.at_clause || ref.column_name_alias?.length) return undefined;
  const select = selects.find((s) => fromLeaves(s.from_table).includes(ref));
  if (!select || select.sample) return undefined;
  const path = joinPath(select.from_table, ref);
  if (!path) return undefined;

  const byLower = new Map(input.columns.map((c) => [c.name.toLowerCase(), c]));
  const binding = String(ref.alias || ref.table_name).toLowerCase();

  // The columns the statement may read: any name part that is one of the input's columns;
  // everything for a star, a positional reference or the table used as a value.
  let all = false;
  const used = new Set<string>();
  visitNodes(root, (n) => {
    if (n.class === 'STAR' || n.class === 'POSITIONAL_REFERENCE') all = true;
    if (n.class === 'COLUMN_REF' && Array.isArray(n.column_names)) {
      const parts = n.column_names.map((p: unknown) => String(p).toLowerCase());
      for (const p of parts) if (byLower.has(p)) used.add(byLower.get(p)!.name);
      if (parts.length === 1 && !byLower.has(parts[0]) && (parts[0] === binding || parts[0] === input.view.toLowerCase())) all = true;
    }
  });
  const columns = all ? [...input.columns] : input.columns.filter((c) => used.has(c.name));
  if (columns.length === 0 || !columns.every((c) => cacheableType(c.type))) return undefined;

  // Conjuncts that filter the input's rows: the WHERE's, and the ON conditions of the inner
  // joins on its path. Any other join on the path must keep the input's side whole.
  const sources = [...conjuncts(select.where_clause)];
  for (const { join, side } of path) {
    if (join.using_columns?.length) return undefined;
    const refType = String(join.ref_type);
    const joinType = String(join.join_type);
    if (refType === 'CROSS') continue;
    if (refType !== 'REGULAR') return undefined;
    if (joinType === 'INNER') sources.push(...conjuncts(join.condition));
    else if (!((joinType === 'LEFT' || joinType === 'SEMI' || joinType === 'ANTI') && side === 'left') && !(joinType === 'RIGHT' && side === 'right')) return undefined;
  }

  // Unqualified names belong to the input only when no other table of the FROM has them.
  const leaves = fromLeaves(select.from_table).filter((l) => l !== ref);
  const opaqueOthers = leaves.some((l) => l.type !== 'BASE_TABLE' || !inputs.some((i) => isBaseTable(l, i.view)));
  const otherColumns = new Set(leaves.flatMap((l) => inputs.filter((i) => isBaseTable(l, i.view)).flatMap((i) => i.columns.map((c) => c.name.toLowerCase()))));
  const otherBindings = new Set(leaves.map((l) => String(l.alias || l.table_name || '').toLowerCase()));
  const resolve = (e: AstNode): string | undefined => {
    const parts = (e.column_names as unknown[]).map((p) => String(p));
    if (parts.length === 1) {
      const col = byLower.get(parts[0].toLowerCase());
      if (!col || opaqueOthers || otherColumns.has(parts[0].toLowerCase())) return undefined;
      return col.name;
    }
    if (parts.length === 2 && parts[0].toLowerCase() === binding && !otherBindings.has(binding)) return byLower.get(parts[1].toLowerCase())?.name;
    return undefined;
  };

  const types = new Map(input.columns.map((c) => [c.name, c.type]));
  const filter: AstNode[] = [];
  for (const c of sources) {
    // Every column reference of the raw tree (no subquery or lambda may open another scope).
    let refsSeen = 0;
    let ok = true;
    visitNodes(c, (n) => {
      if (REFUSED_CLASSES.has(String(n.class)) || n.type === 'SELECT_NODE') ok = false;
      if (n.class === 'COLUMN_REF') {
        refsSeen++;
        if (!resolve(n)) ok = false;
      }
    });
    if (!ok || refsSeen === 0) continue;
    if (await mentionsVolatile(conn, c)) continue;
    filter.push(renameColumns(c, (e) => resolve(e)!));
  }
  if (filter.length === 0) return undefined;
  const atoms = filter.map((f) => atomOf(f, types));
  const filterKey = [...new Set(atoms.map((a) => a.key))].sort().join('\u0001');
  return { filter, atoms, filterKey, columns };
}

/** The cacheable scans of a fragment's inputs (none for writes and combiners). */
export async function fragmentScanSpecs(conn: Engine | DuckDBConnection, fragment: Fragment): Promise<(ScanSpec | undefined)[]> {
  const none = fragment.inputs.map(() => undefined);
  if (fragment.write || (fragment as { shuffleCombine?: unknown }).shuffleCombine) return none;
  let root: AstNode;
  try {
    root = (await parseStatement(conn, fragment.sql)).node;
  } catch {
    return none;
  }
  return scanSpecsOf(conn, root, fragment.inputs);
}

// ---------------------------------------------------------------------------------------
// File identity and the cache itself.

/** What identifies a local source file's content: its inode, size and mtime. */
export interface LocalStamp {
  ino: number;
  size: number;
  mtimeMs: number;
}

/** The key of one file as an input reads it (see the top of this file). */
export function fileKeyOf(input: FragmentInput, file: FileRef, local?: LocalStamp): string {
  const identity = {
    v: 1,
    uri: file.uri,
    size: file.sizeBytes,
    local: local ?? null,
    iceberg: file.iceberg ?? null,
    fields: input.iceberg?.fields ?? null,
    fileSet: input.fileSet ?? null,
    partitionValues: file.partitionValues ?? null,
    // A split of the file (planner/assign.ts) holds other rows than the whole file.
    rows: file.rows ?? null,
  };
  return createHash('sha256').update(JSON.stringify(identity)).digest('hex');
}

interface Variant {
  name: string;
  atoms: Atom[];
  filterKey: string;
  columns: Column[];
  bytes: number;
  /** No row of the file passes the filter: nothing on disk, only this record. */
  empty?: boolean;
}

export interface PartitionHit {
  /** The entry's Parquet file; undefined for a file no row of which passes the filter. */
  path: string | undefined;
  bytes: number;
  /** Unpin the entry; calling it twice is harmless. */
  release(): void;
  /** The entry's file could not be used (gone from disk): forget the entry; it is computed again. */
  lost?(): void;
}

export interface PartitionCacheStats {
  entries: number;
  hits: number;
  misses: number;
  bytesSaved: number;
  /** Entries not kept: larger than `maxFraction` of their file, or than the cache. */
  skipped: number;
}

export interface PartitionCacheOptions {
  /** An entry is kept only when it is at most this share of its file's bytes. Default 0.5. */
  maxFraction?: number;
}

const MAX_REMEMBERED_SKIPS = 10_000;
/** Empty entries (no file on disk, outside the byte bound) remembered at most. */
const MAX_EMPTY_ENTRIES = 100_000;

/** Columns `have` hold every column of `need`, with the same type. */
function coversColumns(have: readonly Column[], need: readonly Column[]): boolean {
  return need.every((n) => have.some((h) => h.name === n.name && h.type === n.type));
}

/**
 * The index of cached filtered partitions over a FileCache's derived entries: which entry
 * holds which file's rows under which predicate and columns. Entries are evicted by the
 * FileCache (one bound, one LRU order with the whole files); the index forgets them then.
 */
export class PartitionCache {
  private readonly byFile = new Map<string, Variant[]>();
  private readonly skippedNames = new Set<string>();
  /** Empty entries, least recently used first: name -> file key. */
  private readonly empties = new Map<string, string>();
  private readonly maxFraction: number;
  private hits = 0;
  private misses = 0;
  private bytesSaved = 0;
  private skipped = 0;

  constructor(private readonly files: FileCache, options: PartitionCacheOptions = {}) {
    this.maxFraction = options.maxFraction ?? 0.5;
  }

  /** The entry name of (file, filter, columns). */
  static entryName(fileKey: string, spec: Pick<ScanSpec, 'filterKey' | 'columns'>): string {
    const cols = spec.columns.map((c) => `${c.name}\u0000${c.type}`).join('\u0001');
    return `p-${createHash('sha256').update(`${fileKey}\u0002${spec.filterKey}\u0002${cols}`).digest('hex').slice(0, 32)}.parquet`;
  }

  /**
   * An entry that can serve `spec` over the file: its predicate implied by the spec's, its
   * columns a superset. The smallest such entry, pinned until released.
   */
  find(fileKey: string, spec: ScanSpec): PartitionHit | undefined {
    const variants = this.byFile.get(fileKey) ?? [];
    const fits = variants.filter((v) => coversColumns(v.columns, spec.columns) && predicateImplies(spec.atoms, v.atoms)).sort((a, b) => a.bytes - b.bytes);
    for (const v of fits) {
      if (v.empty) {
        this.empties.delete(v.name);
        this.empties.set(v.name, fileKey);
        return { path: undefined, bytes: 0, release: () => undefined };
      }
      const used = this.files.useDerived(v.name);
      if (used) {
        return {
          path: used.path, bytes: v.bytes, release: used.release,
          lost: () => {
            used.release();
            this.files.dropDerived(v.name);
            this.forget(fileKey, v.name);
          },
        };
      }
      this.forget(fileKey, v.name);
    }
    return undefined;
  }

  /** Files larger than this are not cached (an eighth of the cache's bound). */
  get maxSourceBytes(): number {
    return this.files.maxSize / 8;
  }

  /** Do not compute the entry (file, spec) again (its write failed). */
  skipEntry(fileKey: string, spec: ScanSpec): void {
    this.skip(PartitionCache.entryName(fileKey, spec));
  }

  /** True when the entry (file, spec) was computed before and found not worth keeping. */
  wasSkipped(fileKey: string, spec: ScanSpec): boolean {
    return this.skippedNames.has(PartitionCache.entryName(fileKey, spec));
  }

  /** Count a fragment's use of the cache. */
  record(hits: number, misses: number, bytesSaved: number): void {
    this.hits += hits;
    this.misses += misses;
    this.bytesSaved += bytesSaved;
  }

  /**
   * Keep `path` (a Parquet file of the file's rows under the spec) as an entry: linked into
   * the cache, the file at `path` stays where it is. False when it is not kept.
   */
  async admit(fileKey: string, spec: ScanSpec, path: string, bytes: number, sourceBytes: number): Promise<boolean> {
    const name = PartitionCache.entryName(fileKey, spec);
    if (sourceBytes > 0 && bytes > this.maxFraction * sourceBytes) {
      this.skip(name);
      return false;
    }
    if ((this.byFile.get(fileKey) ?? []).some((v) => v.name === name)) return true;
    const stored = await this.files.putDerived(name, path, () => this.forget(fileKey, name));
    if (!stored) {
      this.skip(name);
      return false;
    }
    this.add(fileKey, { name, atoms: spec.atoms, filterKey: spec.filterKey, columns: spec.columns, bytes });
    return true;
  }

  /** Remember that no row of the file passes the spec's filter (nothing is written). */
  admitEmpty(fileKey: string, spec: ScanSpec): void {
    const name = PartitionCache.entryName(fileKey, spec);
    if ((this.byFile.get(fileKey) ?? []).some((v) => v.name === name)) return;
    this.empties.set(name, fileKey);
    for (const [oldest, key] of this.empties) {
      if (this.empties.size <= MAX_EMPTY_ENTRIES) break;
      this.empties.delete(oldest);
      this.forget(key, oldest);
    }
    this.add(fileKey, { name, atoms: spec.atoms, filterKey: spec.filterKey, columns: spec.columns, bytes: 0, empty: true });
  }

  private add(fileKey: string, variant: Variant): void {
    // An entry the new one serves every query of (a narrower predicate, fewer columns) goes.
    for (const old of [...(this.byFile.get(fileKey) ?? [])]) {
      if (!(coversColumns(variant.columns, old.columns) && predicateImplies(old.atoms, variant.atoms))) continue;
      if (old.empty) {
        this.empties.delete(old.name);
        this.forget(fileKey, old.name);
      } else this.files.dropDerived(old.name);
    }
    const list = this.byFile.get(fileKey) ?? [];
    list.push(variant);
    this.byFile.set(fileKey, list);
  }

  stats(): PartitionCacheStats {
    let entries = 0;
    for (const list of this.byFile.values()) entries += list.length;
    return { entries, hits: this.hits, misses: this.misses, bytesSaved: this.bytesSaved, skipped: this.skipped };
  }

  private skip(name: string): void {
    this.skipped++;
    if (this.skippedNames.size >= MAX_REMEMBERED_SKIPS) this.skippedNames.clear();
    this.skippedNames.add(name);
  }

  private forget(fileKey: string, name: string): void {
    const list = this.byFile.get(fileKey);
    if (!list) return;
    const kept = list.filter((v) => v.name !== name);
    if (kept.length) this.byFile.set(fileKey, kept);
    else this.byFile.delete(fileKey);
  }
}
