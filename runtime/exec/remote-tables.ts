// Queries across PuffinDB instances (docs/ARCHITECTURE.md, "Remote instances"):
// `SELECT ... THROUGH 'url'` runs the whole statement on another instance, and a registered
// remote's tables are read in local queries as `name.table`.
//
// THROUGH: the statement is sent, without its first THROUGH clause, to the instance at the
// URL (runtime/sql/through.ts); its rows are the answer. Nothing runs locally.
//
// `name.table`: before planning, each reference to a remote's table becomes a table of this
// query's own (`__pdb_mr<salt>_<n>`, a materialized input like curl()'s), fetched from the
// remote with one query per reference and stored as Parquet under the shuffle prefix, where
// the planner and the workers read it like any step's result. What is pushed into that query:
// - the columns the statement can name of it (all of them under a `*` of its SELECT or a
//   NATURAL join), so only those travel;
// - the conjuncts of the WHERE (and of an inner join's ON) that read that table alone, are
//   deterministic and hold no subquery: a column qualified by the table's alias, or any
//   column when it is the only table of its FROM. They are also kept in the local query (a
//   filter applied twice is the same filter). Not into a table on the NULL side of an outer
//   join (there a WHERE filter means something else), nor with TABLESAMPLE;
// - a whole aggregate (GROUP BY, aggregates, HAVING, DISTINCT, ORDER BY output names, LIMIT)
//   whose FROM is that table alone and which reads nothing else: the remote answers the groups.
// Joins with local tables, and everything else, run locally. Each remote table's columns are
// read first (GET v1/tables/{name} on the remote), to know what a name refers to.

import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Column } from '../catalog/types.ts';
import { Engine } from '../engine/engine.ts';
import { PuffinError } from '../errors.ts';
import { baseTable, colRef, conjunction, conjuncts, expressionChildren, func, integerConstant, integerValue, modifierExpressions, selectExpressions, selectNode, someExpression, type AstNode } from '../planner/ast.ts';
import { tempName, type MaterializedInput } from '../planner/materialize.ts';
import type { FileRef, Plan, RemoteRun } from '../planner/plan.ts';
import type { Settings } from '../settings.ts';
import type { ClassifiedStatement } from '../sql/classify.ts';
import { parseStatement, printNodes, visitNodes } from '../sql/parse.ts';
import { mentionsVolatile } from '../sql/volatile.ts';
import type { RemoteRecord, RemoteRegistry } from '../state/remote-file.ts';
import { joinUrl, openStore } from '../storage/open.ts';
import { writeParquet } from './parquet-writer.ts';
import type { QueryOptions, QueryOutcome } from './query-service.ts';
import { checkHop, hopOf, remoteColumns, remoteFor, remoteQuery, remoteTarget, REMOTE_TIMEOUT_MS, type RemoteTarget } from './remote-fetch.ts';
import { storeOptionsOf } from './worker.ts';

/** How long a remote table's columns are reused (explain, then the query, read them once). */
const COLUMNS_TTL_MS = 5_000;

/** One remote table reference of a statement, as it will be (or was) fetched. */
interface RemoteInput {
  /** The name the local statement reads it by. */
  name: string;
  target: RemoteTarget;
  table: string;
  /** The query sent to the remote. */
  sql: string;
  /** What was pushed: 'aggregate' (the whole aggregate), 'partial aggregate' (below a join), else the filters and columns. */
  pushed: 'aggregate' | 'partial aggregate' | 'scan';
}

export interface RemoteRewrite {
  sql: string;
  inputs: RemoteInput[];
}

export interface RemoteRunContext {
  /** The statement as this instance received it (its leading comment says which hop it is). */
  received: string;
  queryId: string;
  deadline: number;
  signal?: AbortSignal;
}

function runOf(input: Pick<RemoteInput, 'target' | 'sql'> & { table?: string }): RemoteRun {
  return { remote: input.target.remote.name, url: input.target.base, ...(input.table ? { table: input.table } : {}), sql: input.sql };
}

function lower(s: unknown): string {
  return String(s ?? '').toLowerCase();
}

export class RemoteTables {
  private readonly columnsCache = new Map<string, { at: number; columns: Promise<Column[]> }>();
  private aggregateNames?: Promise<Set<string>>;

  constructor(
    private readonly settings: Settings,
    /** Parses and prints only. */
    private readonly engine: Engine,
    readonly registry: RemoteRegistry & { close?(): Promise<void> },
  ) {}

  async close(): Promise<void> {
    await this.registry.close?.();
  }

  private timeout(deadline: number): number {
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw new PuffinError('timeout', 'the query passed its deadline before a remote was called');
    return Math.min(remaining, this.settings.remoteTimeoutMs ?? REMOTE_TIMEOUT_MS);
  }

  // -- THROUGH

  private async throughTarget(statement: ClassifiedStatement): Promise<RemoteTarget> {
    return remoteFor(await this.registry.listRemotes(), statement.through!.url);
  }

  private throughPlan(statement: ClassifiedStatement, target: RemoteTarget, output: Column[] = []): Plan {
    const forward = statement.through!.forward;
    const rest = statement.through!.chain.length > 1 ? `, which sends it on THROUGH ${statement.through!.chain.slice(1).join(' -> ')}` : '';
    return {
      shape: 'local', sql: statement.sql, output, fragments: [], reduce: { views: [], sql: '' }, scans: [], join: null,
      remote: [runOf({ target, sql: forward })],
      reason: `THROUGH: the statement runs on remote '${target.remote.name}' (${target.base}) as ${JSON.stringify(forward)}${rest}; its rows are the answer`,
    };
  }

  /** The plan of a THROUGH statement: where it runs and what is sent (403 for a URL under no remote). */
  async explainThrough(statement: ClassifiedStatement): Promise<Plan> {
    return this.throughPlan(statement, await this.throughTarget(statement));
  }

  async runThrough(statement: ClassifiedStatement, options: QueryOptions, queryId: string): Promise<QueryOutcome> {
    const started = Date.now();
    const target = await this.throughTarget(statement);
    const deadline = started + (options.timeoutMs ?? this.settings.queryTimeoutMs);
    const result = await remoteQuery(target, statement.through!.forward, { hop: hopOf(statement.sql) + 1, timeoutMs: this.timeout(deadline), signal: options.signal });
    const totalMs = Date.now() - started;
    return {
      queryId,
      columns: result.columns,
      rows: result.rows,
      plan: { ...this.throughPlan(statement, target, result.columns), remote: [{ ...runOf({ target, sql: statement.through!.forward }), rows: result.rows.length }] },
      stats: { fragments: 0, retries: 0, bytesScanned: 0, bytesShuffled: 0, planMs: 0, executeMs: totalMs, reduceMs: 0, totalMs },
    };
  }

  // -- name.table

  private columnsOf(target: RemoteTarget, table: string, deadline: number, signal?: AbortSignal): Promise<Column[]> {
    const key = `${target.base}\u0000${table}`;
    const cached = this.columnsCache.get(key);
    if (cached && Date.now() - cached.at < COLUMNS_TTL_MS) return cached.columns;
    const columns = remoteColumns(target, table, { timeoutMs: this.timeout(deadline), signal });
    this.columnsCache.set(key, { at: Date.now(), columns });
    columns.catch(() => this.columnsCache.delete(key));
    return columns;
  }

  private aggregates(): Promise<Set<string>> {
    this.aggregateNames ??= this.engine
      .query(`SELECT DISTINCT lower(function_name) FROM duckdb_functions() WHERE function_type = 'aggregate'`)
      .then((r) => new Set(r.rows.map((row) => String(row[0]))));
    return this.aggregateNames;
  }

  /**
   * The statement with each remote table reference replaced by a name of its own, and what
   * each name is fetched with. undefined when it names no remote table.
   */
  async rewrite(sql: string, deadline: number, signal?: AbortSignal, received = sql): Promise<RemoteRewrite | undefined> {
    const remotes = await this.registry.listRemotes();
    if (remotes.length === 0) return undefined;
    const byName = new Map(remotes.map((r) => [r.name, r]));
    const mentioned = remotes.filter((r) => new RegExp(`(^|[^A-Za-z0-9_$])"?${r.name}"?\\s*\\.`, 'i').test(sql));
    if (mentioned.length === 0) return undefined;
    const root = (await parseStatement(this.engine, sql)).node;
    const isRemoteRef = (n: AstNode) => n?.type === 'BASE_TABLE' && !('class' in n) && !n.catalog_name && byName.has(lower(n.schema_name));
    let any = false;
    visitNodes(root, (n) => void (isRemoteRef(n) && (any = true)));
    if (!any) return undefined;
    // A statement that came through too many instances is refused before any is asked anything.
    checkHop(hopOf(received) + 1, mentioned[0].name);

    const salt = `r${randomBytes(4).toString('hex')}`;
    const inputs: RemoteInput[] = [];
    const remoteSql: AstNode[] = [];
    const aggregates = await this.aggregates();
    // SELECT nodes, outermost first; each handles the remote tables of its own FROM.
    const selects: AstNode[] = [];
    visitNodes(root, (n) => void (n.type === 'SELECT_NODE' && !('class' in n) && selects.push(n)));
    for (const node of selects) {
      const refs = fromRefs(node.from_table).filter((r) => isRemoteRef(r.ref));
      for (const { ref, nullable, onConditions } of refs) {
        const remote = byName.get(lower(ref.schema_name))!;
        const target = remoteTarget(remote);
        const table = String(ref.table_name);
        const columns = await this.columnsOf(target, table, deadline, signal);
        const alias = String(ref.alias || table);
        const refer = referrer(remote, table, alias, columns, node.from_table === ref);
        const name = tempName(salt, inputs.length + 1);
        const remoteRef = { ...baseTable(table, alias), at_clause: ref.at_clause ?? null };
        const whole = node.from_table === ref && !ref.sample && !(ref.column_name_alias ?? []).length ? wholeAggregate(node, refer, aggregates) : undefined;
        if (whole) {
          const pushedNode = requalify(structuredClone({ ...node, from_table: remoteRef }), refer);
          remoteSql.push(pushedNode);
          inputs.push({ name, target, table, sql: '', pushed: 'aggregate' });
          for (const key of Object.keys(node)) delete node[key];
          Object.assign(node, selectNode([starAll()], baseTable(name, ''), { modifiers: whole.localModifiers }));
          continue;
        }
        const needed = neededColumns(root, node, ref, refer, columns);
        const filters: AstNode[] = [];
        const pushedConjuncts = new Set<AstNode>();
        if (!ref.sample) {
          const candidates = [...(nullable ? [] : conjuncts(node.where_clause)), ...onConditions.flatMap((c) => conjuncts(c))];
          for (const c of candidates) {
            if (!(await pushable(this.engine, c, refer))) continue;
            filters.push(requalify(structuredClone(c), refer));
            pushedConjuncts.add(c);
          }
        }
        // An aggregate over a join: the remote answers partial aggregates grouped by every
        // column of this table the rest of the query reads, and the query aggregates them.
        const partial = !nullable && !ref.sample && !(ref.column_name_alias ?? []).length ? partialAggregate(root, node, ref, refer, aggregates, pushedConjuncts) : undefined;
        if (partial) {
          const where = filters.length ? conjunction('AND', filters) : null;
          remoteSql.push(selectNode([...partial.keys.map((k) => colRef(refer.alias, k)), ...partial.pushed], remoteRef, {
            where_clause: where, group_expressions: partial.keys.map((k) => colRef(refer.alias, k)), group_sets: partial.keys.length ? [partial.keys.map((_, i) => i)] : [],
          }));
          inputs.push({ name, target, table, sql: '', pushed: 'partial aggregate' });
          partial.apply();
          const replacement = { ...baseTable(name, alias) };
          for (const key of Object.keys(ref)) delete ref[key];
          Object.assign(ref, replacement);
          continue;
        }
        const list = needed.length ? needed.map((col) => colRef(col)) : [{ ...trueConstant(), alias: '__pdb_row' }];
        remoteSql.push(selectNode(list, remoteRef, { where_clause: filters.length ? conjunction('AND', filters) : null }));
        inputs.push({ name, target, table, sql: '', pushed: 'scan' });
        const replacement = { ...baseTable(name, alias), column_name_alias: ref.column_name_alias ?? [], sample: ref.sample ?? null };
        for (const key of Object.keys(ref)) delete ref[key];
        Object.assign(ref, replacement);
      }
    }
    // Three-part names of remote columns (east.orders.amount) read the table's alias now.
    visitNodes(root, (n) => {
      if (n.class !== 'COLUMN_REF' || !Array.isArray(n.column_names) || n.column_names.length < 3) return;
      const remote = byName.get(lower(n.column_names[0]));
      if (remote) n.column_names = n.column_names.slice(1);
    });
    let left = false;
    visitNodes(root, (n) => void (isRemoteRef(n) && (left = true)));
    if (left) throw new PuffinError('unsupported', `a remote table is read here where it cannot be fetched (in a PIVOT or a table function?); read it in a FROM clause, or in a CTE: WITH r AS (SELECT ... FROM ${mentioned[0].name}.table) ...`);
    const printed = await printNodes(this.engine, [root, ...remoteSql]);
    printed.slice(1).forEach((s, i) => (inputs[i].sql = s));
    return { sql: printed[0], inputs };
  }

  /** What explain answers for a statement over remote tables: the remote queries, planned after the fetch. */
  async placeholder(sql: string, deadline: number, signal?: AbortSignal, received = sql): Promise<Plan | undefined> {
    const done = await this.rewrite(sql, deadline, signal, received);
    if (!done) return undefined;
    return {
      shape: 'staged', sql: done.sql, output: [], fragments: [], reduce: { views: [], sql: '' }, scans: [], join: null,
      remote: done.inputs.map(runOf),
      reason: `remote tables: ${done.inputs.map((i) => `${i.target.remote.name}.${i.table} fetched as ${i.name} with ${JSON.stringify(i.sql)}${i.pushed === 'aggregate' ? ' (the aggregate pushed whole)' : i.pushed === 'partial aggregate' ? ' (partial aggregates, grouped by the columns the rest of the query reads)' : ''}`).join('; ')}; each is stored as Parquet under the shuffle prefix and read as a table; the rest of the query is planned after the fetch`,
    };
  }

  /**
   * Fetch every remote table the statement reads and store it; the rewritten SQL, its temps,
   * the stored files (deleted when the query ends) and what ran remotely. undefined when it
   * reads none. On failure the files stored so far are deleted.
   */
  async materialize(sql: string, run: RemoteRunContext, discard: (files: FileRef[]) => Promise<void>): Promise<{ sql: string; temps: Map<string, MaterializedInput>; files: FileRef[]; remote: RemoteRun[] } | undefined> {
    const done = await this.rewrite(sql, run.deadline, run.signal, run.received);
    if (!done) return undefined;
    const temps = new Map<string, MaterializedInput>();
    const files: FileRef[] = [];
    const dir = join(this.settings.home, 'coordinator', 'remote', run.queryId);
    mkdirSync(dir, { recursive: true });
    // A DuckDB of this conversion's own, allowed only its scratch directory.
    const engine = await Engine.create({ threads: 1, memoryLimit: this.settings.memoryLimit, allowedDirectories: [dir] });
    try {
      const store = openStore(this.settings.shuffleUrl, storeOptionsOf(this.settings));
      await Promise.all(done.inputs.map(async (input) => {
        const result = await remoteQuery(input.target, input.sql, { hop: hopOf(run.received) + 1, timeoutMs: this.timeout(run.deadline), signal: run.signal });
        const columns: Column[] = result.columns.map((c) => ({ name: c.name, type: c.type }));
        const bytes = await writeParquet(engine, dir, columns, result.rows);
        const key = `remote/${run.queryId}/${input.name}.parquet`;
        await store.put(key, bytes);
        const file = { uri: joinUrl(this.settings.shuffleUrl, key), sizeBytes: bytes.byteLength, rowCount: result.rows.length };
        files.push(file);
        temps.set(input.name, { kind: 'table', columns, files: [{ ...file, stats: {} }] });
      }));
      return { sql: done.sql, temps, files, remote: done.inputs.map((input) => ({ ...runOf(input), rows: (temps.get(input.name) as { files: FileRef[] }).files[0].rowCount })) };
    } catch (err) {
      if (files.length) await discard(files).catch(() => undefined);
      throw err;
    } finally {
      engine.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** A write that names a remote table: refused (remote tables are read by SELECT statements). */
  async refuseInWrite(statement: ClassifiedStatement): Promise<void> {
    const remotes = await this.registry.listRemotes();
    const named = remotes.find((r) => new RegExp(`(^|[^A-Za-z0-9_$."])"?${r.name}"?\\s*\\.\\s*[A-Za-z_"]`, 'i').test(statement.text));
    if (named) throw new PuffinError('unsupported', `${statement.keyword} names a table of remote '${named.name}'; remote tables are read by SELECT statements only (run the SELECT, or write through the remote itself)`);
  }
}

function trueConstant(): AstNode {
  return { class: 'CONSTANT', type: 'VALUE_CONSTANT', alias: '', query_location: 0, value: { type: { id: 'BOOLEAN', type_info: null }, is_null: false, value: true } };
}

function starAll(): AstNode {
  return { class: 'STAR', type: 'STAR', alias: '', query_location: 0, relation_name: '', exclude_list: [], replace_list: [], columns: false, expr: null, qualified_exclude_list: [], rename_list: [] };
}

/** Every table reference of a FROM tree with whether it is on the NULL side of an outer join, and the ON conditions that may filter it first. */
function fromRefs(from: AstNode | null | undefined, nullable = false, on: AstNode[] = []): { ref: AstNode; nullable: boolean; onConditions: AstNode[] }[] {
  if (!from) return [];
  if (from.type === 'BASE_TABLE') return [{ ref: from, nullable, onConditions: on }];
  if (from.type !== 'JOIN') return [];
  const regular = from.ref_type === 'REGULAR' || from.ref_type === 'CROSS';
  const kind = String(from.join_type ?? 'INNER');
  if (!regular || !['INNER', 'LEFT', 'RIGHT', 'OUTER'].includes(kind)) {
    // Semi, anti, ASOF, POSITIONAL, NATURAL, LATERAL: nothing is pushed into either side.
    return [...fromRefs(from.left, true), ...fromRefs(from.right, true)].map((r) => ({ ...r, nullable: true, onConditions: [] }));
  }
  const cond = from.condition && (from.using_columns ?? []).length === 0 ? [from.condition] : [];
  // An inner join's ON filters both sides; an outer join's ON filters the side it can NULL out.
  const leftOn = kind === 'INNER' || kind === 'RIGHT' ? cond : [];
  const rightOn = kind === 'INNER' || kind === 'LEFT' ? cond : [];
  return [
    ...fromRefs(from.left, nullable || kind === 'RIGHT' || kind === 'OUTER', kind === 'INNER' ? [...on, ...leftOn] : leftOn),
    ...fromRefs(from.right, nullable || kind === 'LEFT' || kind === 'OUTER', kind === 'INNER' ? [...on, ...rightOn] : rightOn),
  ];
}

/** How column references name one remote table reference. */
interface Referrer {
  remote: RemoteRecord;
  table: string;
  alias: string;
  columns: Set<string>;
  /** The only table of its FROM: an unqualified column of it is its. */
  sole: boolean;
  /** The column of this table a reference names, or undefined when it names another. */
  column(ref: AstNode): string | undefined;
}

function referrer(remote: RemoteRecord, table: string, alias: string, columns: Column[], sole: boolean): Referrer {
  const names = new Set(columns.map((c) => c.name.toLowerCase()));
  return {
    remote, table, alias, columns: names, sole,
    column(ref) {
      const parts = (ref.column_names as string[]).map(lower);
      if (parts.length >= 3 && parts[0] === remote.name && parts[1] === table.toLowerCase()) return names.has(parts[2]) ? parts[2] : undefined;
      if (parts.length >= 2 && parts[0] === alias.toLowerCase()) return names.has(parts[1]) ? parts[1] : undefined;
      if (sole && names.has(parts[0])) return parts[0];
      return undefined;
    },
  };
}

/** The columns of the table any part of the statement may name (a superset is fine; too few is not). */
function neededColumns(root: AstNode, node: AstNode, ref: AstNode, refer: Referrer, columns: Column[]): string[] {
  // Column aliases (FROM east.t AS x(a, b)) name the columns by position: all of them, in order.
  let all = someStar(node, refer.alias) || naturalJoin(node.from_table) || (ref.column_name_alias ?? []).length > 0;
  const names = new Set<string>();
  // Names of the statement's other table references: `c.id` is c's column, not this table's.
  const others = new Set<string>();
  visitNodes(root, (n) => {
    if (n === ref || 'class' in n) return;
    if ((n.type === 'BASE_TABLE' || n.type === 'SUBQUERY' || n.type === 'TABLE_FUNCTION') && (n.alias || n.table_name)) others.add(lower(n.alias || n.table_name));
  });
  others.delete(refer.alias.toLowerCase());
  if (!all) {
    visitNodes(root, (n) => {
      if (n.class === 'COLUMN_REF' && Array.isArray(n.column_names)) {
        const own = refer.column(n);
        if (own) names.add(own);
        if (n.column_names.length >= 2 && others.has(lower(n.column_names[0]))) return;
        // Unqualified, or through another name: any part that is one of its columns may be it.
        for (const p of n.column_names as string[]) if (refer.columns.has(lower(p))) names.add(lower(p));
      }
      if (n.type === 'JOIN' && Array.isArray(n.using_columns)) for (const u of n.using_columns as string[]) if (refer.columns.has(lower(u))) names.add(lower(u));
      if (n.type === 'JOIN' && n.ref_type === 'NATURAL') all = true;
    });
  }
  return columns.filter((c) => all || names.has(c.name.toLowerCase())).map((c) => c.name);
}

/** A `*` (or COLUMNS(...)) of the node's own expressions that may expand to the table's columns. */
function someStar(node: AstNode, alias: string): boolean {
  return selectExpressions(node).some((e) => someExpression(e, (x) => x.class === 'STAR' && (!x.relation_name || lower(x.relation_name) === alias.toLowerCase())));
}

function naturalJoin(from: AstNode | null | undefined): boolean {
  if (!from || from.type !== 'JOIN') return false;
  return from.ref_type === 'NATURAL' || naturalJoin(from.left) || naturalJoin(from.right);
}

/** A conjunct that reads only this table, deterministically, without subqueries or parameters. */
async function pushable(engine: Engine, expr: AstNode, refer: Referrer): Promise<boolean> {
  let refs = 0;
  let foreign = false;
  someExpression(expr, (e) => {
    if (e.class === 'SUBQUERY' || e.class === 'WINDOW' || e.class === 'PARAMETER' || e.class === 'LAMBDA' || e.class === 'STAR') foreign = true;
    if (e.class === 'COLUMN_REF') {
      refs++;
      if (!refer.column(e)) foreign = true;
    }
    return false;
  });
  if (foreign || refs === 0) return false;
  return !(await mentionsVolatile(engine, expr));
}

/** Column references of the pushed SQL name the table by its alias (the remote has no `remote.` schema). */
function requalify<T extends AstNode>(node: T, refer: Referrer): T {
  visitNodes(node, (n) => {
    if (n.class !== 'COLUMN_REF' || !Array.isArray(n.column_names) || n.column_names.length < 3) return;
    if (lower(n.column_names[0]) === refer.remote.name && lower(n.column_names[1]) === refer.table.toLowerCase()) n.column_names = [refer.alias, ...n.column_names.slice(2)];
  });
  return node;
}

/**
 * Whether the SELECT node is an aggregate over this table alone that the remote can answer
 * whole, and the modifiers the local query keeps (ORDER BY by output names or positions,
 * LIMIT, DISTINCT: applying them again to the remote's answer changes nothing).
 */
function wholeAggregate(node: AstNode, refer: Referrer, aggregates: Set<string>): { localModifiers: AstNode[] } | undefined {
  const expressions = selectExpressions(node);
  const isAggregate = (node.group_expressions ?? []).length > 0 || expressions.some((e) => someExpression(e, (x) => x.class === 'FUNCTION' && aggregates.has(lower(x.function_name))));
  if (!isAggregate || node.qualify || node.sample || (node.cte_map?.map ?? []).length) return undefined;
  const aliases = new Set((node.select_list as AstNode[]).map((e) => lower(e.alias)).filter(Boolean));
  const outputs = new Set((node.select_list as AstNode[]).map((e) => lower(e.alias || (e.class === 'COLUMN_REF' ? e.column_names[e.column_names.length - 1] : ''))).filter(Boolean));
  let ok = true;
  for (const e of expressions) {
    someExpression(e, (x) => {
      if (x.class === 'SUBQUERY' || x.class === 'WINDOW' || x.class === 'PARAMETER') ok = false;
      if (x.class === 'COLUMN_REF' && !refer.column(x) && !(x.column_names.length === 1 && aliases.has(lower(x.column_names[0])))) ok = false;
      return false;
    });
  }
  if (!ok) return undefined;
  const localModifiers: AstNode[] = [];
  for (const mod of node.modifiers ?? []) {
    if (mod.type === 'ORDER_MODIFIER') {
      const local = (mod.orders as AstNode[]).every((o) => integerValue(o.expression) !== undefined || (o.expression.class === 'COLUMN_REF' && o.expression.column_names.length === 1 && outputs.has(lower(o.expression.column_names[0]))));
      if (!local) return undefined;
    } else if (mod.type === 'DISTINCT_MODIFIER') {
      if ((mod.distinct_on_targets ?? []).length) return undefined;
    } else if (mod.type !== 'LIMIT_MODIFIER') return undefined;
    if (modifierExpressions({ modifiers: [mod] }).some((e) => someExpression(e, (x) => x.class === 'SUBQUERY' || x.class === 'PARAMETER'))) return undefined;
    localModifiers.push(structuredClone(mod));
  }
  return { localModifiers };
}

/** Aggregates that split into partials the remote computes and a final the query computes over them. */
const PARTIAL_RULES: Record<string, { partials: string[]; final: (cols: AstNode[]) => AstNode }> = {
  sum: { partials: ['sum'], final: ([p]) => func('sum', [p]) },
  min: { partials: ['min'], final: ([p]) => func('min', [p]) },
  max: { partials: ['max'], final: ([p]) => func('max', [p]) },
  count: { partials: ['count'], final: ([p]) => coalesceNode([func('sum', [p]), integerConstant(0)]) },
  count_star: { partials: ['count_star'], final: ([p]) => coalesceNode([func('sum', [p]), integerConstant(0)]) },
  // avg's DOUBLE: the sum divided by the count (NULL for no non-NULL value, as avg).
  avg: { partials: ['sum', 'count'], final: ([s, c]) => func('/', [castNode(func('sum', [s]), 'DOUBLE'), func('nullif', [func('sum', [c]), integerConstant(0)])], { operator: true }) },
};

function coalesceNode(children: AstNode[]): AstNode {
  return { class: 'OPERATOR', type: 'OPERATOR_COALESCE', alias: '', query_location: 0, children };
}

function castNode(child: AstNode, type: 'DOUBLE'): AstNode {
  return { class: 'CAST', type: 'OPERATOR_CAST', alias: '', query_location: 0, child, cast_type: { id: type, type_info: null }, try_cast: false };
}

/**
 * Eager aggregation below a join: when the SELECT node aggregates over a join with this
 * (inner-side, not NULL-able) remote table and every aggregate is one of PARTIAL_RULES over
 * this table's columns alone (or count(*)), the remote groups the table by every column of it
 * the rest of the node reads (join keys, group keys, filters it could not take) and computes
 * the partials. Each join row then stands for the rows of its group: sums and counts add up
 * over the join as they did row by row (a partial row that joins m times counts m times, as
 * its rows would), and min/max are unchanged. The node's aggregates are replaced by their
 * finals over the partial columns when `apply` is called. undefined when any condition fails.
 */
function partialAggregate(root: AstNode, node: AstNode, ref: AstNode, refer: Referrer, aggregates: Set<string>, pushedConjuncts: ReadonlySet<AstNode>): { keys: string[]; pushed: AstNode[]; apply(): void } | undefined {
  if (node.from_table === ref || node.from_table?.type !== 'JOIN') return undefined;
  if (node.qualify || node.sample || (node.cte_map?.map ?? []).length || someStar(node, refer.alias) || naturalJoin(node.from_table)) return undefined;
  if ((node.modifiers ?? []).some((m: AstNode) => m.type === 'DISTINCT_MODIFIER') || (node.group_sets?.length ?? 0) > 1) return undefined;
  const isAggregate = (x: AstNode) => x.class === 'FUNCTION' && aggregates.has(lower(x.function_name));
  // The conjuncts the remote applies are gone from the query (they read this table only, on
  // its inner side): what is left names the columns the partials must keep.
  const kept = (e: AstNode | null | undefined) => conjuncts(e).filter((c) => !pushedConjuncts.has(c));
  const expressions = [
    ...selectExpressions({ ...node, where_clause: null }),
    ...kept(node.where_clause),
    ...joinConditions(node.from_table).flatMap(kept),
  ];
  if (!expressions.some((e) => someExpression(e, isAggregate))) return undefined;
  // Anything the rewrite cannot see through: subqueries (they may name this table), windows, parameters.
  if (expressions.some((e) => someExpression(e, (x) => x.class === 'SUBQUERY' || x.class === 'WINDOW' || x.class === 'PARAMETER' || x.class === 'LAMBDA'))) return undefined;
  // Other SELECTs of the statement must not read this table's alias (a correlated reference).
  let outside = false;
  visitNodes(root, (n) => {
    if (n === node) return false;
    if (n.class === 'COLUMN_REF' && refer.column(n)) outside = true;
    return undefined;
  });
  if (outside) return undefined;
  const calls: AstNode[] = [];
  const keys = new Set<string>();
  let ok = true;
  // Columns of this table outside aggregates are the partials' group keys; aggregates are checked.
  const walk = (e: AstNode): void => {
    if (!e || typeof e !== 'object') return;
    if (isAggregate(e)) {
      const rule = PARTIAL_RULES[lower(e.function_name)];
      if (!rule || e.distinct || e.filter || (e.order_bys?.orders ?? []).length || e.export_state) ok = false;
      for (const arg of e.children ?? []) {
        someExpression(arg, (x) => {
          if (x.class === 'COLUMN_REF' && !refer.column(x)) ok = false;
          if (isAggregate(x)) ok = false;
          return false;
        });
      }
      calls.push(e);
      return;
    }
    if (e.class === 'COLUMN_REF') {
      const own = refer.column(e);
      if (own) keys.add(own);
      // An unqualified name that may be this table's column (SQL lets a join leave it so): not seen through.
      else if (e.column_names.length === 1 && refer.columns.has(lower(e.column_names[0]))) ok = false;
      return;
    }
    for (const child of expressionChildren(e)) walk(child);
  };
  for (const e of expressions) walk(e);
  if (!ok || calls.length === 0) return undefined;
  const pushed: AstNode[] = [];
  const finals: { call: AstNode; final: AstNode }[] = [];
  calls.forEach((call, i) => {
    const rule = PARTIAL_RULES[lower(call.function_name)];
    const cols = rule.partials.map((fn, j) => {
      const name = `__pdb_p${i}_${j}`;
      const part = requalify(structuredClone({ ...call, function_name: fn, alias: name }), refer);
      pushed.push(part);
      return colRef(refer.alias, name);
    });
    finals.push({ call, final: rule.final(cols) });
  });
  return {
    keys: [...keys],
    pushed,
    apply() {
      // The pushed conjuncts leave the WHERE clause and the ON conditions.
      const rest = kept(node.where_clause);
      node.where_clause = rest.length ? conjunction('AND', rest) : null;
      const strip = (from: AstNode | null | undefined): void => {
        if (!from || from.type !== 'JOIN') return;
        if (from.condition) {
          const left = kept(from.condition);
          from.condition = left.length ? conjunction('AND', left) : trueConstant();
        }
        strip(from.left);
        strip(from.right);
      };
      strip(node.from_table);
      for (const { call, final } of finals) {
        const alias = call.alias;
        for (const key of Object.keys(call)) delete call[key];
        Object.assign(call, final, { alias });
      }
    },
  };
}

/** The ON conditions of a FROM tree's joins. */
function joinConditions(from: AstNode | null | undefined): AstNode[] {
  if (!from || from.type !== 'JOIN') return [];
  return [...(from.condition ? [from.condition] : []), ...joinConditions(from.left), ...joinConditions(from.right)];
}
