// Name resolution the planner needs, done conservatively: which table each FROM reference
// names, which columns of each table a query can touch, and which WHERE/ON conjuncts
// filter a single table reference so they can be pushed into its scan and prune its files.
// When in doubt (derived tables, ambiguous names, correlated references) nothing is pushed.

import type { Column } from '../catalog/types.ts';
import { PuffinError } from '../errors.ts';
import { conjuncts, expressionChildren, someExpression, type AstNode } from './ast.ts';
import { visitNodes } from '../sql/parse.ts';

/** A FROM reference to a catalog table (a BASE_TABLE node, after renaming to its view). */
export interface TableRef {
  node: AstNode;
  /** The catalog table's view name. */
  view: string;
  /** Name the query uses for it: its alias, or the table name. */
  binding: string;
}

/**
 * Every BASE_TABLE node below `root`, each with the node whose CTE map defines its name where
 * it stands (the innermost; undefined when it names no CTE), and every table function.
 */
export function tableReferences(root: AstNode): { tables: { node: AstNode; cte?: AstNode }[]; tableFunctions: AstNode[] } {
  const tables: { node: AstNode; cte?: AstNode }[] = [];
  const tableFunctions: AstNode[] = [];
  const walk = (value: unknown, ctes: ReadonlyMap<string, AstNode>): void => {
    if (Array.isArray(value)) {
      for (const v of value) walk(v, ctes);
      return;
    }
    if (!value || typeof value !== 'object') return;
    const node = value as AstNode;
    let scope = ctes;
    const map = node.cte_map?.map as AstNode[] | undefined;
    if (map?.length) {
      const next = new Map(ctes);
      for (const entry of map) next.set(String(entry.key).toLowerCase(), node);
      scope = next;
    }
    if (node.type === 'BASE_TABLE' && !('class' in node)) {
      const cte = !node.schema_name && !node.catalog_name ? scope.get(String(node.table_name).toLowerCase()) : undefined;
      tables.push(cte ? { node, cte } : { node });
      return;
    }
    if (node.type === 'TABLE_FUNCTION' && !('class' in node)) tableFunctions.push(node);
    for (const key of Object.keys(node)) walk(node[key], scope);
  };
  walk(root, new Map());
  return { tables, tableFunctions };
}

/** Every BASE_TABLE node that is not a CTE reference, plus table functions, found anywhere. */
export function findBaseTables(root: AstNode): { tables: AstNode[]; tableFunctions: AstNode[] } {
  const { tables, tableFunctions } = tableReferences(root);
  return { tables: tables.filter((t) => !t.cte).map((t) => t.node), tableFunctions };
}

/**
 * Table functions user SQL may call: they compute rows from their arguments and touch
 * nothing else. An allow-list rather than a deny list, because DuckDB has well over a
 * hundred table functions and every release adds some; most read files (read_*, glob,
 * parquet_*), run SQL from a value (query, query_table, json_execute_serialized_sql) or
 * expose the engine itself (duckdb_settings, duckdb_secrets, pragma_*, which_secret), and
 * a new one must not become reachable just by upgrading DuckDB.
 */
export const ALLOWED_TABLE_FUNCTIONS: ReadonlySet<string> = new Set(['range', 'generate_series', 'unnest']);

/**
 * Scalar functions refused in user SQL: they show the engine's settings (allowed
 * directories, temp directory: admin information), the process environment, or run SQL
 * from a value, which would escape the planner's checks of the statement's own text.
 */
const REFUSED_SCALAR_FUNCTIONS: ReadonlySet<string> = new Set([
  'current_setting', 'getenv', 'getvariable', 'query', 'query_table', 'json_execute_serialized_sql',
]);

// Table functions that read files get a message that says what to do instead.
const FILE_READERS = /^(read_|parquet_|sniff_csv|glob$|iceberg_|delta_scan)/i;

/**
 * Refuse (access_denied) any call user SQL may not make, anywhere in the statement: table
 * functions outside ALLOWED_TABLE_FUNCTIONS and the scalar functions above. The engines
 * that run user SQL are sandboxed as well; this check is the first line and gives a
 * message a user can act on.
 */
export function refuseUnsafeCalls(root: AstNode): void {
  visitNodes(root, (node) => {
    if (node.type === 'TABLE_FUNCTION' && !('class' in node)) {
      const name = String(node.function?.function_name ?? '').toLowerCase();
      const schema = String(node.function?.schema ?? '').toLowerCase();
      if (FILE_READERS.test(name)) {
        throw new PuffinError('access_denied', `table function ${name}() reads files directly, which queries may not do; register the files as a table (puffindb table add NAME 'path/*.parquet') and query it by name`);
      }
      if (!ALLOWED_TABLE_FUNCTIONS.has(name) || (schema && schema !== 'main')) {
        throw new PuffinError('access_denied', `table function ${name}() is not available to queries; queries may call ${[...ALLOWED_TABLE_FUNCTIONS].join(', ')} and read registered tables by name`);
      }
    } else if (node.class === 'FUNCTION') {
      const name = String(node.function_name ?? '').toLowerCase();
      if (REFUSED_SCALAR_FUNCTIONS.has(name)) {
        throw new PuffinError('access_denied', `function ${name}() is not available to queries: engine settings and the environment are admin information, and SQL may not be run from a value`);
      }
    }
  });
}

const VOLATILE = new Set(['random', 'gen_random_uuid', 'uuid', 'uuidv4', 'uuidv7', 'nextval', 'currval', 'setseed']);

/** The lower-case names one node refers to columns by: a column reference's parts, a join's USING columns. */
export function addColumnNames(node: AstNode, names: Set<string>): void {
  if (node.class === 'COLUMN_REF') for (const n of node.column_names as string[]) names.add(n.toLowerCase());
  if (node.type === 'JOIN' && Array.isArray(node.using_columns)) for (const n of node.using_columns as string[]) names.add(n.toLowerCase());
}

export interface ScopeInfo {
  /** For each table reference: the conjuncts that filter it alone (column refs as written). */
  pushable: Map<AstNode, AstNode[]>;
  /** Table references whose every column may be needed (a star over them). */
  starred: Set<AstNode>;
  /** Lower-case names of every column reference part in the query. */
  names: Set<string>;
  /** Every reference, with its binding, in query order. */
  refs: TableRef[];
  /**
   * For each table reference: its equi-join keys with other table references that an
   * inner join on the same WHERE clause makes mandatory (`r.a = s.b`, both references on
   * inner-join paths). A row of r without a match among s's rows cannot be in the result.
   */
  joinKeys: Map<AstNode, JoinKey[]>;
  /**
   * For each column reference of a pushable conjunct: its name parts relative to its table
   * (the qualifier that names the reference dropped, a struct field path kept), as written.
   * unqualify rewrites by it.
   */
  unqualified: Map<AstNode, string[]>;
}

export interface JoinKey {
  /** Column of this reference. */
  column: string;
  /** The other table reference and its column. */
  other: AstNode;
  otherColumn: string;
}

/** A SELECT's FROM bindings, as seen from the subqueries in its expressions. */
interface Scope {
  bindings: Binding[];
  /** Does the SELECT's WHERE filter this reference's rows (an inner-join path)? */
  filtered(ref: AstNode): boolean;
}

export interface Binding {
  name: string;
  /**
   * The name parts (lower case) that qualify a column of this reference: its alias; or, for
   * a table referenced by name alone, the name, main.name, temp.name and temp.main.name
   * (the planner's tables are temporary views).
   */
  qualifiers: string[][];
  /** Known columns (lower case), or null when unknown (derived tables, table functions). */
  columns: Set<string> | null;
  ref?: AstNode;
}

/** What a column reference binds to in one SELECT's FROM: a column and a struct field path (name parts as written). */
export interface Resolved {
  binding: Binding;
  column: string;
  /** Struct fields below the column, as written (empty for the column itself). */
  path: string[];
  /** The column and the path, as written: the reference relative to its table. */
  relative: string[];
}

/**
 * What the name parts of a column reference bind to among one SELECT's FROM bindings, by
 * DuckDB's rules: `a.b.c` is first catalog/schema qualified (`temp.main.t.c`, `main.t.c`),
 * then `table.column.field`, then `column.field.field`, the first reading under which some
 * reference has that column winning (`s.a` is the column a of a reference named s if it has
 * one, else the field a of a column s). 'none' when nothing here has such a column (DuckDB
 * then looks in the enclosing query), 'unknown' when a reference of unknown columns could
 * be meant or two could (DuckDB refuses those).
 */
export function resolveName(written: readonly string[], bindings: readonly Binding[]): Resolved | 'unknown' | 'none' {
  const names = written.map((n) => String(n).toLowerCase());
  for (let k = Math.min(3, names.length - 1); k >= 0; k--) {
    const column = names[k];
    const named = k === 0
      ? bindings
      : bindings.filter((b) => b.qualifiers.some((q) => q.length === k && q.every((p, i) => p === names[i])));
    const owners = named.filter((b) => b.columns === null || b.columns.has(column));
    if (owners.length === 0) continue;
    if (owners.length > 1 || owners[0].columns === null) return 'unknown';
    return { binding: owners[0], column, path: names.slice(k + 1), relative: written.slice(k).map(String) };
  }
  return 'none';
}

/**
 * The qualifiers of a FROM reference bound as `binding` (its alias or table name, lower
 * case): just that, or for a catalog table referenced by name alone (`byName`) also
 * main.name, temp.name and temp.main.name (the planner's tables are temporary views).
 */
export function tableQualifiers(binding: string, byName: boolean): string[][] {
  return byName ? [[binding], ['main', binding], ['temp', binding], ['temp', 'main', binding]] : [[binding]];
}

/**
 * The bindings of one FROM tree, for resolveName outside analyzeScopes (decorrelate.ts,
 * the planner's aggregate rewrite): catalog tables (`columnsOf` gives their columns) with
 * their columns, anything else (a CTE reference, a derived table, a function) with columns
 * unknown; undefined when `known` and the tree holds anything but catalog tables and joins.
 */
export function fromBindings(from: AstNode | null | undefined, columnsOf: (node: AstNode) => Column[] | undefined, known: boolean): Binding[] | undefined {
  if (!from || from.type === 'EMPTY') return [];
  if (from.type === 'BASE_TABLE') {
    const cols = columnsOf(from);
    if (!cols && known) return undefined;
    const name = String(from.alias || from.table_name).toLowerCase();
    const qualifiers = tableQualifiers(name, !from.alias && !!cols);
    return [cols ? { name, qualifiers, columns: new Set(cols.map((c) => c.name.toLowerCase())), ref: from } : { name, qualifiers, columns: null }];
  }
  if (from.type === 'JOIN') {
    const l = fromBindings(from.left, columnsOf, known);
    const r = fromBindings(from.right, columnsOf, known);
    return l && r ? [...l, ...r] : undefined;
  }
  if (known) return undefined;
  const alias = String(from.alias ?? '').toLowerCase();
  return [{ name: alias, qualifiers: alias ? [[alias]] : [], columns: null }];
}

/** Table qualifiers a fragment's view answers to, other than its name. */
const VIEW_QUALIFIERS: ReadonlySet<string> = new Set(['main', 'temp']);

/**
 * Analyze a whole (renamed) query. `columnsOf(node)` gives the columns of a BASE_TABLE node
 * that names a catalog table (undefined for CTE references), by node identity, so a CTE
 * that shadows a table's name is never mistaken for it.
 * `aggregates` is the set of aggregate function names, which never push down.
 */
export function analyzeScopes(root: AstNode, columnsOf: (node: AstNode) => Column[] | undefined, aggregates: ReadonlySet<string>): ScopeInfo {
  const info: ScopeInfo = { pushable: new Map(), starred: new Set(), names: new Set(), refs: [], joinKeys: new Map(), unqualified: new Map() };

  const visitSelect = (select: AstNode, existsBody: boolean, outer: readonly Scope[]): Scope => {
    const bindings: Binding[] = [];
    // Per reference: does the WHERE clause filter it (inner-join path), and the ON
    // conjuncts of joins that filter it.
    const refState = new Map<AstNode, { where: boolean; on: AstNode[] }>();

    const walkFrom = (from: AstNode | null | undefined, whereApplies: boolean, inherited: AstNode[]): void => {
      if (!from) return;
      switch (from.type) {
        case 'BASE_TABLE': {
          const cols = columnsOf(from);
          const binding = String(from.alias || from.table_name).toLowerCase();
          const qualifiers = tableQualifiers(binding, !from.alias && !!cols);
          if (cols) {
            bindings.push({ name: binding, qualifiers, columns: new Set(cols.map((c) => c.name.toLowerCase())), ref: from });
            refState.set(from, { where: whereApplies, on: inherited });
            info.refs.push({ node: from, view: from.table_name, binding });
          } else {
            bindings.push({ name: binding, qualifiers, columns: null }); // a CTE
          }
          return;
        }
        case 'JOIN': {
          const on = conjuncts(from.condition);
          const kind = String(from.join_type);
          const regular = from.ref_type === 'REGULAR' || from.ref_type === 'CROSS' || from.ref_type === 'NATURAL';
          if (!regular) {
            // ASOF, POSITIONAL, LATERAL: no pushdown through them.
            walkFrom(from.left, false, []);
            walkFrom(from.right, false, []);
            return;
          }
          switch (kind) {
            case 'INNER':
              walkFrom(from.left, whereApplies, [...inherited, ...on]);
              walkFrom(from.right, whereApplies, [...inherited, ...on]);
              return;
            case 'LEFT':
              // Rows of the left side survive; ON conjuncts only filter the right side.
              walkFrom(from.left, whereApplies, inherited);
              walkFrom(from.right, false, on);
              return;
            case 'RIGHT':
              walkFrom(from.left, false, on);
              walkFrom(from.right, whereApplies, inherited);
              return;
            case 'SEMI':
            case 'ANTI':
              walkFrom(from.left, whereApplies, inherited);
              walkFrom(from.right, false, on);
              return;
            default:
              walkFrom(from.left, false, []);
              walkFrom(from.right, false, []);
              return;
          }
        }
        default:
          // Derived tables, table functions, pivots: columns unknown here.
          bindings.push({ name: String(from.alias ?? '').toLowerCase(), qualifiers: from.alias ? [[String(from.alias).toLowerCase()]] : [], columns: null });
      }
    };
    walkFrom(select.from_table, true, []);

    // Stars in the select list need every column of the references they cover, except in
    // the body of EXISTS, where the select list is never read.
    if (!existsBody) {
      for (const item of select.select_list ?? []) {
        if (!someExpression(item, (e) => e.class === 'STAR')) continue;
        const relations = new Set<string>();
        let all = false;
        const visit = (e: AstNode) => {
          if (e.class === 'STAR') {
            if (e.relation_name) relations.add(String(e.relation_name).toLowerCase());
            else all = true;
          }
          expressionChildren(e).forEach(visit);
        };
        visit(item);
        for (const b of bindings) if (b.ref && (all || relations.has(b.name))) info.starred.add(b.ref);
      }
    }

    // Does every column reference of `expr` bind to `target`? Then each one's name relative
    // to the table is recorded (a pushed filter runs over the table's unaliased view).
    const resolvesOnlyTo = (expr: AstNode, target: Binding): boolean => {
      let ok = true;
      const relative = new Map<AstNode, string[]>();
      const visit = (e: AstNode) => {
        if (!ok) return;
        if (e.class === 'SUBQUERY' || e.class === 'WINDOW' || e.class === 'PARAMETER' || e.class === 'LAMBDA' || e.class === 'STAR') { ok = false; return; }
        if (e.class === 'FUNCTION') {
          const name = String(e.function_name).toLowerCase();
          if (aggregates.has(name) || VOLATILE.has(name)) { ok = false; return; }
        }
        if (e.class === 'COLUMN_REF') {
          const r = resolveName(e.column_names as string[], bindings);
          if (typeof r === 'string' || r.binding !== target) { ok = false; return; }
          // A field path `s.a` over the view would name the view's column a if the view (or
          // a qualifier it answers to) were called s.
          const view = String(target.ref!.table_name).toLowerCase();
          if (r.path.length > 0 && (r.column === view || VIEW_QUALIFIERS.has(r.column))) { ok = false; return; }
          relative.set(e, r.relative);
        }
        expressionChildren(e).forEach(visit);
      };
      visit(expr);
      if (ok) for (const [e, names] of relative) info.unqualified.set(e, names);
      return ok;
    };

    const where = conjuncts(select.where_clause);
    for (const b of bindings) {
      if (!b.ref) continue;
      const state = refState.get(b.ref)!;
      const candidates = [...(state.where ? where : []), ...state.on];
      info.pushable.set(b.ref, candidates.filter((c) => resolvesOnlyTo(c, b)));
    }

    // Equi-join keys between two references that the WHERE clause filters (inner paths).
    const resolveColumn = (e: AstNode): { binding: Binding; column: string } | undefined => {
      if (e.class !== 'COLUMN_REF') return undefined;
      const r = resolveName(e.column_names as string[], bindings);
      if (typeof r === 'string' || r.path.length > 0 || !r.binding.ref) return undefined;
      return { binding: r.binding, column: r.column };
    };
    for (const c of where) {
      if (c.class !== 'COMPARISON' || c.type !== 'COMPARE_EQUAL') continue;
      const l = resolveColumn(c.left);
      const r = resolveColumn(c.right);
      if (!l || !r || l.binding === r.binding) continue;
      if (!refState.get(l.binding.ref!)?.where || !refState.get(r.binding.ref!)?.where) continue;
      const add = (a: typeof l, b: typeof l) => {
        const list = info.joinKeys.get(a.binding.ref!) ?? [];
        list.push({ column: a.column, other: b.binding.ref!, otherColumn: b.column });
        info.joinKeys.set(a.binding.ref!, list);
      };
      add(l, r);
      add(r, l);
    }

    // Correlated equi-join keys: `inner.a = outer.b` in a subquery's WHERE, where b belongs
    // to a filtered reference of an enclosing query. The subquery only matters for outer
    // rows that pass the outer WHERE (its filters are ANDed there), so inner rows whose `a`
    // is not among the filtered outer `b` can never be used: the inner reference may be
    // reduced by the outer table (one direction only; outer rows may lack inner matches).
    // (A name this query's own FROM binds, as a column or a struct field, is not outer:
    // DuckDB binds in the innermost query first.)
    const resolveOuter = (e: AstNode): { binding: Binding; column: string } | undefined => {
      if (e.class !== 'COLUMN_REF') return undefined;
      const names = e.column_names as string[];
      if (resolveName(names, bindings) !== 'none') return undefined;
      for (const scope of outer) {
        const r = resolveName(names, scope.bindings);
        if (r === 'none') continue;
        if (r === 'unknown' || r.path.length > 0 || !r.binding.ref || !scope.filtered(r.binding.ref)) return undefined;
        return { binding: r.binding, column: r.column };
      }
      return undefined;
    };
    if (outer.length) {
      for (const c of where) {
        if (c.class !== 'COMPARISON' || c.type !== 'COMPARE_EQUAL') continue;
        for (const [innerSide, outerSide] of [[c.left, c.right], [c.right, c.left]] as const) {
          const inner = resolveColumn(innerSide);
          const o = resolveOuter(outerSide);
          if (!inner || !o || !refState.get(inner.binding.ref!)?.where) continue;
          const list = info.joinKeys.get(inner.binding.ref!) ?? [];
          list.push({ column: inner.column, other: o.binding.ref!, otherColumn: o.column });
          info.joinKeys.set(inner.binding.ref!, list);
        }
      }
    }
    return { bindings, filtered: (ref: AstNode) => !!refState.get(ref)?.where };
  };

  // Walk every node; SELECT nodes are analyzed where they stand. Subqueries in a SELECT's
  // expressions see its scope (and the enclosing ones) for correlation; derived tables and
  // CTE bodies see none (DuckDB may bind a derived table laterally, per row of the tables
  // before it, where the argument above does not hold).
  const walk = (value: unknown, existsBody: boolean, outer: readonly Scope[]): void => {
    if (Array.isArray(value)) {
      for (const v of value) walk(v, false, outer);
      return;
    }
    if (!value || typeof value !== 'object') return;
    const node = value as AstNode;
    addColumnNames(node, info.names);
    if (node.type === 'SELECT_NODE' && !('class' in node)) {
      const scope = visitSelect(node, existsBody, outer);
      for (const key of Object.keys(node)) walk(node[key], false, key === 'from_table' || key === 'cte_map' ? [] : [scope, ...outer]);
      return;
    }
    if (node.class === 'SUBQUERY' && (node.subquery_type === 'EXISTS' || node.subquery_type === 'NOT_EXISTS')) {
      walk(node.subquery?.node, true, outer);
      for (const key of Object.keys(node)) if (key !== 'subquery') walk(node[key], false, outer);
      return;
    }
    for (const key of Object.keys(node)) walk(node[key], false, key === 'cte_map' ? [] : outer);
  };
  walk(root, false, []);
  return info;
}

/**
 * A copy of a pushable conjunct (of `scope.pushable`) for its table's unaliased view: each
 * column reference relative to the table, the qualifier that names the reference dropped
 * and a struct field path kept (`t.s.a` is `s.a`, `s.a` stays `s.a`, `t.a` is `a`).
 */
export function unqualify(expr: AstNode, scope: Pick<ScopeInfo, 'unqualified'>): AstNode {
  const visit = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(visit);
    if (!value || typeof value !== 'object') return value;
    const node = value as AstNode;
    if (node.class === 'COLUMN_REF') {
      const names = scope.unqualified.get(node);
      if (!names) throw new PuffinError('internal', `column ${(node.column_names as string[]).join('.')} of a pushed filter was not resolved to its table`);
      return { ...node, column_names: [...names] };
    }
    const out: AstNode = {};
    for (const key of Object.keys(node)) out[key] = visit(node[key]);
    return out;
  };
  return visit(expr) as AstNode;
}

/** Does the function give a different value per call (so an expression with it is no constant)? */
export function isVolatileFunction(name: string): boolean {
  return VOLATILE.has(name.toLowerCase());
}
