// Query front ends: what a client sends in another language (PRQL, Malloy) or another SQL dialect
// (Snowflake, T-SQL, ...) becomes DuckDB SQL here, before anything else looks at it. The
// one statement classifier (classify.ts) then sees only the DuckDB SQL that will run, so
// roles, the sandbox and the one-statement rule apply to what runs, not to what was sent:
// a reader's PRQL whose s-string smuggles a DELETE is refused exactly like the DELETE.
//
// PRQL compiles with `prqlc` (its DuckDB target). Dialects translate with
// `@polyglot-sql/sdk` (a sqlglot-style translator in WASM), strictly: its unsupported-
// construct errors are raised, and constructs it is known to translate into different
// meanings are refused by name (dialect-guards.ts) rather than run with another answer.
// Both libraries are loaded on first use: a server that never sees PRQL or a dialect does
// not pay for their WASM. Malloy (malloy.ts) compiles against the schemas of the tables the
// caller may read, which the caller passes as `tables`; it too loads on first use.

import { createRequire } from 'node:module';
import { setFlagsFromString } from 'node:v8';
import { PuffinError } from '../errors.ts';
import { guardSource, guardTarget, rewriteSource, type PolyglotNode } from './dialect-guards.ts';
import { compileMalloy, type MalloyTables } from './malloy.ts';

/** Languages a query may be written in. */
export const QUERY_LANGUAGES = ['sql', 'prql', 'malloy'] as const;
export type QueryLanguage = (typeof QUERY_LANGUAGES)[number];

/** SQL dialects translated to and from DuckDB's (the translator's names). */
export const SQL_DIALECTS = [
  'duckdb', 'postgresql', 'mysql', 'sqlite', 'snowflake', 'bigquery', 'redshift', 'trino', 'presto', 'athena',
  'spark', 'databricks', 'hive', 'tsql', 'oracle', 'clickhouse', 'teradata', 'doris', 'starrocks', 'materialize',
  'risingwave', 'singlestore', 'cockroachdb', 'tidb', 'druid', 'dune', 'fabric', 'drill', 'dremio', 'exasol',
  'datafusion', 'generic',
] as const;
export type SqlDialect = (typeof SQL_DIALECTS)[number];

/** Other common names of the same dialects. */
const DIALECT_ALIASES: Readonly<Record<string, SqlDialect>> = {
  postgres: 'postgresql', pg: 'postgresql', mssql: 'tsql', sqlserver: 'tsql', 'sql-server': 'tsql', 't-sql': 'tsql',
  azuresql: 'tsql', synapse: 'tsql', mariadb: 'mysql', spark2: 'spark', sparksql: 'spark', memsql: 'singlestore',
};

/** Display names, for messages. */
const DIALECT_NAMES: Partial<Record<SqlDialect, string>> = {
  duckdb: 'DuckDB', postgresql: 'PostgreSQL', mysql: 'MySQL', sqlite: 'SQLite', snowflake: 'Snowflake', bigquery: 'BigQuery',
  redshift: 'Redshift', trino: 'Trino', presto: 'Presto', athena: 'Athena', spark: 'Spark SQL', databricks: 'Databricks',
  hive: 'Hive', tsql: 'T-SQL', oracle: 'Oracle', clickhouse: 'ClickHouse', teradata: 'Teradata', cockroachdb: 'CockroachDB',
};

export function dialectName(dialect: SqlDialect): string {
  return DIALECT_NAMES[dialect] ?? dialect;
}

/** A dialect name as a client spells it (any case, aliases), or a 400 listing the known ones. */
export function sqlDialect(name: string, field = 'dialect'): SqlDialect {
  const key = name.trim().toLowerCase();
  if ((SQL_DIALECTS as readonly string[]).includes(key)) return key as SqlDialect;
  const alias = DIALECT_ALIASES[key];
  if (alias) return alias;
  throw new PuffinError('bad_request', `'${field}' ${JSON.stringify(name.slice(0, 40))} is not a SQL dialect PuffinDB translates; use one of ${SQL_DIALECTS.join(', ')}`);
}

/** What the client sent, when it was not DuckDB SQL: kept with the query beside the SQL that ran. */
export interface QuerySource {
  language: QueryLanguage;
  /** The SQL dialect, for language 'sql'. */
  dialect?: SqlDialect;
  text: string;
}

export interface FrontEndRequest {
  text: string;
  language?: QueryLanguage;
  dialect?: string;
  /** The tables the caller may read, with their columns: what a Malloy text compiles against (malloy.ts catalogTables). */
  tables?: MalloyTables;
}

export interface FrontEndResult {
  /** DuckDB SQL: what the classifier, the planner and the query record's `sql` see. */
  sql: string;
  /** Absent when the client sent DuckDB SQL. */
  source?: QuerySource;
}

/** Longest text the front ends translate (the API's body limit is the usual bound; this one guards the library). */
const MAX_SOURCE_CHARS = 1_000_000;

/**
 * The DuckDB SQL of a query written in `language` (default 'sql') and, for SQL, `dialect`
 * (default 'duckdb': the text is returned as sent). 400 for text that does not compile or
 * translate, naming the construct.
 */
export async function toDuckdbSql(request: FrontEndRequest): Promise<FrontEndResult> {
  const { text } = request;
  const language = request.language ?? 'sql';
  if (typeof text !== 'string' || text.trim() === '') throw new PuffinError('bad_request', `the ${language === 'prql' ? 'PRQL' : language === 'malloy' ? 'Malloy' : 'SQL'} text is empty`);
  if (text.length > MAX_SOURCE_CHARS) throw new PuffinError('payload_too_large', `the query text is over ${MAX_SOURCE_CHARS} characters`);
  if (text.includes('\u0000')) throw new PuffinError('bad_request', `the query text contains a NUL character (U+0000) at position ${text.indexOf('\u0000')}; remove it`);
  if (language === 'prql') {
    if (request.dialect !== undefined && sqlDialect(request.dialect) !== 'duckdb') {
      throw new PuffinError('bad_request', "'dialect' applies to language 'sql' only; PRQL compiles to DuckDB SQL");
    }
    return { sql: await compilePrql(text), source: { language, text } };
  }
  if (language === 'malloy') {
    if (request.dialect !== undefined && sqlDialect(request.dialect) !== 'duckdb') {
      throw new PuffinError('bad_request', "'dialect' applies to language 'sql' only; Malloy compiles to DuckDB SQL");
    }
    if (!request.tables) throw new PuffinError('bad_request', 'Malloy compiles against the tables of a warehouse: run it as a query (POST /v1/query, puffindb query --lang malloy, or a database\'s query()), not on its own');
    return { sql: await compileMalloy(text, request.tables), source: { language, text } };
  }
  if (language !== 'sql') throw new PuffinError('bad_request', `'language' must be one of ${QUERY_LANGUAGES.join(', ')}, got ${JSON.stringify(String(language).slice(0, 40))}`);
  const dialect = request.dialect === undefined ? 'duckdb' : sqlDialect(request.dialect);
  if (dialect === 'duckdb') return { sql: text };
  return { sql: await translateSql(text, dialect, 'duckdb'), source: { language, dialect, text } };
}

/**
 * The translators' WASM (30 MB together) runs on V8's baseline compiler. Their calls are
 * short, and V8's optimizing tier recompiling them in the background took seconds of CPU
 * from queries on two cores (50 translations: 6.5 s with it, 0.8 s without; the first
 * PRQL compile after the dialect translator loaded: 21 s, 0.4 s without). Set once, before
 * either module is compiled; it applies to WebAssembly only, and nothing else here is.
 */
let baselineOnly = false;
function wasmBaselineOnly(): void {
  if (baselineOnly) return;
  baselineOnly = true;
  setFlagsFromString('--liftoff-only');
}

// ---------------------------------------------------------------------------- PRQL

type Prqlc = typeof import('prqlc');
let prqlc: Prqlc | undefined;
const requireCjs = createRequire(import.meta.url);

/**
 * prqlc's module, instantiated afresh after a crash: a query nested deep enough, or a long
 * enough chain of operators, overflows the compiler's stack inside its WASM, and the
 * instance it leaves behind fails every later compile ("memory access out of bounds").
 * One client's query must not break PRQL for every other, so the broken instance is
 * dropped and the next compile loads a new one (the module is CommonJS: forgetting it in
 * require's cache re-runs its instantiation).
 */
function loadPrqlc(fresh = false): Prqlc {
  if (fresh) {
    delete requireCjs.cache[requireCjs.resolve('prqlc')];
    prqlc = undefined;
  }
  try {
    return (prqlc ??= requireCjs('prqlc') as Prqlc);
  } catch (err) {
    throw new PuffinError('unavailable', `PRQL is not available here: its compiler (prqlc) did not load: ${(err as Error).message.slice(0, 200)}`);
  }
}

interface PrqlMessage {
  reason?: string;
  hints?: string[];
  span?: string | null;
  location?: { start?: [number, number] } | null;
}

/** PRQL's error (a JSON text of messages) as one readable line per message. */
function prqlError(err: unknown): PuffinError {
  const raw = err instanceof Error ? err.message : String(err);
  let messages: PrqlMessage[] = [];
  try {
    messages = (JSON.parse(raw) as { inner?: PrqlMessage[] }).inner ?? [];
  } catch {
    // not PRQL's JSON form: shown as it is
  }
  const text = messages.length
    ? messages.map((m) => {
      const at = m.location?.start ? ` at line ${m.location.start[0] + 1}, column ${m.location.start[1] + 1}` : '';
      const hints = m.hints?.length ? ` (${m.hints.join('; ')})` : '';
      return `${m.reason ?? 'error'}${at}${hints}`;
    }).join('; ')
    : raw.slice(0, 500);
  const first = messages[0]?.location?.start;
  return new PuffinError('syntax_error', `PRQL: ${text}`, first ? { line: first[0] + 1, column: first[1] + 1 } : undefined);
}

/** PRQL to DuckDB SQL (prqlc's sql.duckdb target; a `prql target:` header cannot change it). */
export async function compilePrql(text: string): Promise<string> {
  wasmBaselineOnly();
  let sql: string | undefined;
  try {
    const lib = loadPrqlc();
    // A CompileOptions is consumed by compile() (wasm-bindgen moves it): one per call.
    const options = new lib.CompileOptions();
    options.target = 'sql.duckdb';
    options.signature_comment = false;
    options.format = true;
    sql = lib.compile(text, options);
  } catch (err) {
    // PRQL's own errors are a JSON text; anything else is the compiler itself failing.
    if (err instanceof PuffinError) throw err;
    if (err instanceof Error && !err.message.startsWith('{')) {
      loadPrqlc(true);
      throw new PuffinError('bad_request', `PRQL: the compiler could not compile this query (${err.message.slice(0, 100)}); it is nested too deep or chains too many operators in one expression: split it into smaller steps (derive, let)`);
    }
    throw prqlError(err);
  }
  if (!sql || sql.trim() === '') throw new PuffinError('syntax_error', 'PRQL: the query compiled to no SQL');
  return sql.trim();
}

// ---------------------------------------------------------------------------- SQL dialects

type Polyglot = typeof import('@polyglot-sql/sdk');
let polyglot: Promise<Polyglot> | undefined;

export async function loadPolyglot(): Promise<Polyglot> {
  wasmBaselineOnly();
  return (polyglot ??= (async () => {
    // Its Node entry wraps the global fetch so that file: URLs read local files (how it loads
    // its own .wasm). Left in place, any later fetch of a URL a client chose could read this
    // machine's files: the process's own fetch is put back once the module is loaded.
    const fetchBefore = globalThis.fetch;
    try {
      const lib = await import('@polyglot-sql/sdk');
      if (!lib.isInitialized()) await lib.init();
      return lib;
    } catch (err) {
      polyglot = undefined;
      throw new PuffinError('unavailable', `SQL dialect translation is not available here: its module (@polyglot-sql/sdk) did not load: ${(err as Error).message.slice(0, 200)}`);
    } finally {
      globalThis.fetch = fetchBefore;
    }
  })());
}

/** The translator's error, with the line and column it gives. */
function translateError(what: string, result: { error?: string | null; errorLine?: number; errorColumn?: number }): PuffinError {
  const at = result.errorLine ? ` (line ${result.errorLine}, column ${result.errorColumn ?? 0})` : '';
  const message = (result.error ?? 'unknown error').replace(/\s+/g, ' ').slice(0, 500);
  return new PuffinError('bad_request', `${what}: ${message}${at}`, result.errorLine ? { line: result.errorLine, column: result.errorColumn } : undefined);
}

/**
 * `sql` written in dialect `from`, translated to dialect `to` (one of them is DuckDB). One
 * statement in, one out; 400 naming the construct for text the translator cannot read or
 * that it would translate into something that means another thing.
 */
export async function translateSql(sql: string, from: SqlDialect, to: SqlDialect): Promise<string> {
  if (typeof sql !== 'string' || sql.trim() === '') throw new PuffinError('bad_request', 'the SQL text is empty');
  if (sql.length > MAX_SOURCE_CHARS) throw new PuffinError('payload_too_large', `the SQL text is over ${MAX_SOURCE_CHARS} characters`);
  if (sql.includes('\u0000')) throw new PuffinError('bad_request', `the SQL text contains a NUL character (U+0000) at position ${sql.indexOf('\u0000')}; remove it`);
  if (from !== 'duckdb' && to !== 'duckdb') throw new PuffinError('bad_request', `translate from or to duckdb; ${from} to ${to} would go through DuckDB SQL anyway: translate twice`);
  if (from === to) return sql;
  const lib = await loadPolyglot();
  const parsed = lib.parse(sql, from as never);
  if (!parsed.success || !Array.isArray(parsed.ast)) throw translateError(`the ${dialectName(from)} SQL could not be read`, parsed);
  const statements = parsed.ast as PolyglotNode[];
  if (statements.length !== 1) {
    throw new PuffinError('bad_request', statements.length === 0 ? 'the SQL text holds no statement' : `send one SQL statement per request; this text holds ${statements.length}`);
  }
  guardSource(statements[0], from, to, dialectName);
  // Constructs whose translation would differ are rewritten in the source dialect first.
  let text = sql;
  const reparse = (snippet: string, dialect: string): PolyglotNode[] => {
    const r = lib.parse(snippet, dialect as never);
    if (!r.success || !Array.isArray(r.ast)) throw new PuffinError('internal', `a rewrite template did not parse in ${dialect}: ${r.error}`);
    return r.ast as PolyglotNode[];
  };
  const options = { unsupportedLevel: 'raise' as const, maxUnsupported: 5 };
  const rewritten = structuredClone(statements);
  if (to === 'duckdb' && rewriteSource(rewritten[0], from, reparse)) {
    // The rewrite is printed back in the source dialect and translated again. That is only
    // sound when printing back loses nothing the translation reads: the unchanged statement,
    // printed back, must translate exactly as the text the client sent.
    const asSent = lib.transpile(sql, from as never, to as never, options);
    const printed = lib.generate(statements, from as never);
    const reprinted = printed.success && printed.sql?.length === 1 ? lib.transpile(printed.sql[0], from as never, to as never, options) : undefined;
    if (!asSent.success || !reprinted?.success || JSON.stringify(asSent.sql) !== JSON.stringify(reprinted.sql)) {
      throw new PuffinError('bad_request', `CONCAT, || or DATE_ADD cannot be translated here without changing its meaning: ${dialectName(from)}'s NULL handling in concatenation (or the type of its date arithmetic) differs from DuckDB's, and this statement could not be rewritten to keep it (printing it back changes its translation); send DuckDB SQL (a || b is NULL when either side is, concat(a, b) skips NULLs; d + 1 keeps a DATE)`, { construct: 'CONCAT' });
    }
    const regenerated = lib.generate(rewritten, from as never);
    if (!regenerated.success || !regenerated.sql || regenerated.sql.length !== 1) throw translateError(`the ${dialectName(from)} SQL could not be rewritten for translation`, regenerated);
    text = regenerated.sql[0];
  }
  const result = lib.transpile(text, from as never, to as never, options);
  if (!result.success || !result.sql) throw translateError(`the ${dialectName(from)} SQL could not be translated to ${dialectName(to)}`, result);
  if (result.sql.length !== 1) throw new PuffinError('bad_request', `the translation of this statement holds ${result.sql.length} statements; send one SQL statement per request`);
  const out = result.sql[0].trim();
  guardTarget(out, from, to, dialectName);
  return out;
}
