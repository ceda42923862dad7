// Malloy (https://www.malloydata.dev) as a query language: a Malloy text becomes one DuckDB
// SELECT here, compiled in this process by @malloydata/malloy from the schemas of the tables
// the caller may read. Malloy never sees a database: its connection answers schema requests
// from the catalog (the same columns and types DESCRIBE shows) and refuses to run anything.
// The SQL it compiles then goes through the classifier, authorization and sandbox exactly as
// SQL sent by the client would (frontends.ts), so nothing Malloy emits (its raw-SQL escape
// hatches included) can do more than the caller's own SQL.
//
// Naming tables: `duckdb.table('name')` (Malloy's own form; `duckdb` is the only connection),
// or the catalog name alone as a source, `run: lineitem -> {...}`: every catalog table the
// text names and does not define itself is declared for it as `source: name is
// duckdb.table('name')`, in a model the text extends (so positions in messages are the
// text's own). `duckdb.sql(...)` sources and `import` are refused (no database, no files).
//
// The text may define sources and queries; what runs is its last `run:` statement, or, when
// it has none, its last `query:` definition. The package (6 MB of JavaScript and its ANTLR
// runtime) is imported on the first Malloy query only.

import { PuffinError } from '../errors.ts';
import type { Catalog, Column } from '../catalog/types.ts';
import { sqlIdent } from './quote.ts';

/** The tables a Malloy query may read: the caller's view of the catalog. */
export interface MalloyTables {
  /** The columns of table `name` (a catalog name, lower case), or undefined when there is none this caller may read. */
  columns(name: string): Promise<readonly Column[] | undefined>;
  /** The catalog's names: one the text names bare (and `columns` answers for) is declared for it as a source. */
  names(): Promise<readonly string[]>;
}

/** `catalog` as a role sees it: admin-only tables (puffindb.query_log) exist for admins only. */
export function catalogTables(catalog: Catalog, role: string): MalloyTables {
  const seen = new Map<string, Promise<readonly Column[] | undefined>>();
  return {
    columns(name) {
      let columns = seen.get(name);
      if (!columns) {
        columns = catalog.getTable(name).then((t) => (t && !(t.adminOnly && role !== 'admin') ? t.columns : undefined));
        seen.set(name, columns);
      }
      return columns;
    },
    names: () => catalog.listTables(),
  };
}

type MalloyModule = typeof import('@malloydata/malloy');
let malloy: Promise<MalloyModule> | undefined;

function loadMalloy(): Promise<MalloyModule> {
  return (malloy ??= import('@malloydata/malloy').catch((err: unknown) => {
    malloy = undefined;
    throw new PuffinError('unavailable', `Malloy is not available here: its compiler (@malloydata/malloy) did not load: ${(err as Error).message.slice(0, 200)}`);
  }));
}

/** The one connection name a Malloy text uses for PuffinDB's tables. */
export const MALLOY_CONNECTION = 'duckdb';

interface Problem {
  message: string;
  code: string;
  severity?: string;
  at?: { url?: string; range?: { start?: { line: number; character: number } } };
}

/** A catalog name as the FROM clause of the compiled SQL names it: each dotted part quoted unless it is a plain identifier. */
function tablePathSql(name: string): string {
  return name.split('.').map((part) => (/^[a-z_][a-z0-9_]*$/.test(part) ? part : sqlIdent(part))).join('.');
}

/** Identifiers the text uses that are catalog names (comments and string literals included: an extra one only costs a declaration). */
function namedTables(text: string, names: readonly string[]): string[] {
  const plain = new Set(names.filter((n) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(n)));
  const used = new Set<string>();
  for (const m of text.matchAll(/[A-Za-z_][A-Za-z0-9_]*/g)) {
    const word = m[0].toLowerCase();
    if (plain.has(word)) used.add(word);
  }
  return [...used].sort();
}

/** Names the text declares itself (`source: x is`, `query: x is`, and further `, y is` in the same statement). */
function declaredNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/(?:\b(?:source|query)\s*:|,)\s*([A-Za-z_][A-Za-z0-9_]*)\s+is\b/g)) names.add(m[1].toLowerCase());
  return names;
}

/**
 * The DuckDB SQL of a Malloy text over `tables`. 400 for a syntax or semantic error (Malloy's
 * message, line and column), 404 for a table that is not there for this caller.
 */
export async function compileMalloy(text: string, tables: MalloyTables): Promise<string> {
  const lib = await loadMalloy();
  const dialect = new lib.DuckDBDialect();
  const connection = {
    name: MALLOY_CONNECTION,
    dialectName: 'duckdb',
    getDigest: () => 'puffindb-catalog',
    async fetchSchemaForTables(request: Record<string, string>) {
      const schemas: Record<string, import('@malloydata/malloy').TableSourceDef> = {};
      const errors: Record<string, string> = {};
      for (const [key, path] of Object.entries(request)) {
        const name = path.trim().toLowerCase();
        const columns = await tables.columns(name);
        if (!columns) {
          errors[key] = `no table named '${path.slice(0, 100)}' that this key may read (GET /v1/tables lists them)`;
          continue;
        }
        schemas[key] = {
          type: 'table', name: key, tablePath: tablePathSql(name), connection: MALLOY_CONNECTION, dialect: 'duckdb',
          fields: columns.map((c) => lib.mkFieldDef(dialect.parseDuckDBType(c.type), c.name)),
        } as import('@malloydata/malloy').TableSourceDef;
      }
      return { schemas, errors };
    },
    async fetchSchemaForSQLStruct() {
      return { error: `${MALLOY_CONNECTION}.sql() sources are not supported by PuffinDB's Malloy; read a table (${MALLOY_CONNECTION}.table('name')) or define a view with CREATE VIEW and read that` };
    },
    async runSQL(): Promise<never> {
      throw new PuffinError('internal', 'Malloy tried to run SQL; PuffinDB only compiles Malloy');
    },
    isPool: () => false, canPersist: () => false, canStream: () => false,
    async close() {}, async idle() {},
    async estimateQueryCost() { return {}; },
    async fetchMetadata() { return {}; },
    async fetchTableMetadata() { return {}; },
  };
  const runtime = new lib.Runtime({
    connections: {
      async lookupConnection(name?: string) {
        if (name === undefined || name === MALLOY_CONNECTION) return connection as unknown as import('@malloydata/malloy').Connection;
        throw new Error(`there is no connection '${name}': PuffinDB's tables are ${MALLOY_CONNECTION}.table('name'), or the table's name alone`);
      },
    },
    urlReader: {
      async readURL(url: URL): Promise<string> {
        throw new Error(`imports are not supported (${String(url).slice(0, 100)}): send the whole Malloy text in one request`);
      },
    },
  });

  // Only the few names the text uses are looked up (a table's snapshot may take a metadata read).
  const userDeclared = declaredNames(text);
  const candidates = namedTables(text, await tables.names()).filter((n) => !userDeclared.has(n));
  const readable = await Promise.all(candidates.map(async (n) => ((await tables.columns(n)) ? n : undefined)));
  let declare = readable.filter((n): n is string => n !== undefined);
  for (let attempt = 0; ; attempt++) {
    const prelude = declare.map((n) => `source: ${n} is ${MALLOY_CONNECTION}.table('${n}')`).join('\n');
    try {
      const model = runtime.loadModel(prelude).extendModel(text);
      const defined = await model.getModel();
      const hasRun = defined._modelDef.queryList.length > 0;
      const named = defined.namedQueries;
      if (!hasRun && named.length === 0) {
        throw new PuffinError('bad_request', 'Malloy: the text has no query to run; end it with `run: source -> { ... }` (or a `query: name is ...` definition)');
      }
      const query = hasRun ? model.loadFinalQuery() : model.loadQueryByName(named[named.length - 1].as ?? named[named.length - 1].name);
      const sql = (await query.getSQL()).trim();
      if (!sql) throw new PuffinError('bad_request', 'Malloy: the query compiled to no SQL');
      return sql;
    } catch (err) {
      if (err instanceof PuffinError) throw err;
      const problems = ((err as { problems?: Problem[] }).problems ?? []).filter((p) => p.severity !== 'warn' && p.severity !== 'debug');
      // A source the text defines under a catalog table's name that the scan above missed:
      // that name is left to the text, and the model compiled again.
      const redefined = problems.map((p) => /^Cannot redefine '([^']+)'/.exec(p.message)?.[1]?.toLowerCase()).filter((n): n is string => n !== undefined && declare.includes(n));
      if (redefined.length > 0 && attempt < 3) {
        declare = declare.filter((n) => !redefined.includes(n));
        continue;
      }
      throw malloyError(err, problems, text);
    }
  }
}

/** Malloy's problems as one PuffinError: its messages with line and column (1-based), the first one's position in details. */
function malloyError(err: unknown, problems: Problem[], source: string): PuffinError {
  const overflow = (m: string) => /Maximum call stack size exceeded/.test(m);
  if (problems.length === 0 || problems.some((p) => overflow(p.message))) {
    const message = err instanceof Error ? err.message : String(err);
    if (overflow(message) || problems.some((p) => overflow(p.message))) {
      return new PuffinError('bad_request', 'Malloy: the compiler could not compile this text: it is nested too deep or chains too many operators in one expression (its stack overflowed); split it into smaller steps (dimensions, measures, a pipeline)');
    }
    return new PuffinError('bad_request', `Malloy: ${message.replace(/\s+/g, ' ').slice(0, 500)}`);
  }
  const at = (p: Problem) => p.at?.range?.start;
  const text = problems.slice(0, 5).map((p) => {
    const start = at(p);
    return `${problemMessage(p, source)}${start ? ` at line ${start.line + 1}, column ${start.character + 1}` : ''}`;
  }).join('; ');
  const more = problems.length > 5 ? ` (and ${problems.length - 5} more)` : '';
  const first = problems[0];
  const start = at(first);
  const details = { ...(start ? { line: start.line + 1, column: start.character + 1 } : {}), malloyCode: first.code };
  const code = problems.some((p) => p.code === 'failed-to-fetch-table-schema' || p.code === 'source-or-query-not-found') ? 'unknown_table'
    : problems.every((p) => p.code === 'syntax-error') ? 'syntax_error' : 'bad_request';
  return new PuffinError(code, `Malloy: ${text}${more}`.slice(0, 2000), details);
}

/** Malloy's message, said in PuffinDB's terms where Malloy's own would point elsewhere. */
function problemMessage(p: Problem, source: string): string {
  const message = p.message.replace(/\s+/g, ' ');
  if (p.code === 'source-or-query-not-found') {
    const name = /'([^']+)'/.exec(message)?.[1];
    if (name) return `'${name}' is neither a source the text defines nor a table this key may read (GET /v1/tables lists them; a table is named by its name or as ${MALLOY_CONNECTION}.table('name'))`;
  }
  if (p.code === 'import-error') return 'imports are not supported: send the whole Malloy text in one request';
  if (p.code === 'failed-to-fetch-table-schema' && /import reference failure/.test(message)) {
    // A connection other than ours: Malloy reports only that the reference failed.
    const start = p.at?.range?.start;
    const line = start ? source.split('\n')[start.line] ?? '' : '';
    const connection = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\./.exec(line.slice(start?.character ?? 0))?.[1];
    if (connection && connection !== MALLOY_CONNECTION) return `there is no connection '${connection}': PuffinDB's tables are ${MALLOY_CONNECTION}.table('name'), or the table's name alone`;
  }
  return message;
}
