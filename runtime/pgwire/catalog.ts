// What PostgreSQL clients ask besides queries: session statements (SET, BEGIN, SHOW
// server_version, ...) answered by the session without running anything, and metadata
// queries over pg_catalog / information_schema (psql's \dt, \d, \l; what JDBC, DBeaver and
// Metabase send on connect) answered by a catalog mirror: a DuckDB of its own holding one
// EMPTY table per PuffinDB table, with the same columns, so DuckDB's own pg_catalog and
// information_schema describe PuffinDB's catalog. The mirror holds no data, reads no files
// (external access disabled, configuration locked) and runs only statements the classifier
// found to be SELECTs; admin-only tables (puffindb.query_log) are left out of it.

import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import type { Catalog } from '../catalog/types.ts';
import { materialize, type QueryResult } from '../engine/engine.ts';
import { PuffinError, toPuffinError } from '../errors.ts';
import { lex, type Token } from '../sql/lexer.ts';
import { SQL_DIALECTS, sqlDialect, type SqlDialect } from '../sql/frontends.ts';
import { sqlIdent, sqlString } from '../sql/quote.ts';
import { DUCK_TYPE_OIDS, OID, OID_NAMES, typeSize } from './types.ts';

export const SERVER_VERSION = '15.0';
export const SERVER_VERSION_NUM = '150000';
export const VERSION_TEXT = `PostgreSQL ${SERVER_VERSION} (PuffinDB; DuckDB inside), 64-bit`;

/** Session parameters reported at startup (ParameterStatus) and by SHOW. */
export const SESSION_PARAMETERS: Record<string, string> = {
  server_version: SERVER_VERSION,
  server_version_num: SERVER_VERSION_NUM,
  server_encoding: 'UTF8',
  client_encoding: 'UTF8',
  DateStyle: 'ISO, MDY',
  IntervalStyle: 'postgres',
  TimeZone: 'UTC',
  integer_datetimes: 'on',
  standard_conforming_strings: 'on',
  is_superuser: 'off',
  default_transaction_read_only: 'off',
  in_hot_standby: 'off',
};

const SHOWABLE: Record<string, string> = {
  ...Object.fromEntries(Object.entries(SESSION_PARAMETERS).map(([k, v]) => [k.toLowerCase(), v])),
  transaction_isolation: 'read committed',
  'transaction isolation level': 'read committed',
  default_transaction_isolation: 'read committed',
  search_path: 'main',
  max_identifier_length: '63',
  lc_collate: 'C',
  lc_ctype: 'C',
  max_index_keys: '32',
  statement_timeout: '0',
};

/**
 * What a session's statements are written in: `SET puffindb.language = 'prql'`, `SET
 * puffindb.dialect = 'snowflake'` (the dialect applies to language 'sql'). Every statement
 * but a session statement is turned into DuckDB SQL (runtime/sql/frontends.ts) before it is
 * classified and authorized.
 */
export interface FrontEndSettings {
  language: 'sql' | 'prql';
  dialect: SqlDialect;
}

export const DEFAULT_FRONT_END: FrontEndSettings = Object.freeze({ language: 'sql', dialect: 'duckdb' });

/** The session settings PuffinDB itself reads; any other `puffindb.` name is refused rather than ignored. */
const FRONT_END_SETTINGS = ['puffindb.dialect', 'puffindb.language'] as const;

/** A statement the session answers itself. */
export interface SessionAnswer {
  tag: string;
  result?: QueryResult;
  /** Transaction status after it. */
  transaction?: 'begin' | 'end';
  /** The session's front end after it, when it sets one (SET/RESET puffindb.*, RESET ALL, DISCARD ALL). */
  frontEnd?: FrontEndSettings;
}

function tokenName(t: Token): string {
  return t.kind === 'quoted_ident' ? t.text.slice(1, -1).replace(/""/g, '"') : t.text;
}

/** A dotted parameter name from tokens[from]: [lowercased name, index after it]. */
function parameterName(tokens: readonly Token[], from: number): [string, number] {
  let i = from;
  let name = '';
  while (i < tokens.length && (tokens[i].kind === 'word' || tokens[i].kind === 'quoted_ident')) {
    name += tokenName(tokens[i]);
    i++;
    if (tokens[i]?.text !== '.' || !tokens[i + 1]) break;
    name += '.';
    i++;
  }
  return [name.toLowerCase(), i];
}

function frontEndValue(name: string, current: FrontEndSettings, value: string | undefined): FrontEndSettings {
  if (name === 'puffindb.dialect') return { ...current, dialect: value === undefined ? 'duckdb' : sqlDialect(value, 'puffindb.dialect') };
  if (value === undefined) return { ...current, language: 'sql' };
  const language = value.trim().toLowerCase();
  if (language === 'sql' || language === 'prql') return { ...current, language };
  if (language === 'malloy') {
    throw new PuffinError('unsupported', "puffindb.language 'malloy' is not taken over the PostgreSQL wire protocol (a Malloy text's braces hold ';', which the simple-query protocol splits statements on); send Malloy over HTTP (POST /v1/query with \"language\": \"malloy\"), the CLI (puffindb query --lang malloy) or the Node library");
  }
  throw new PuffinError('bad_request', `'puffindb.language' ${JSON.stringify(value.slice(0, 40))} is not a query language the wire protocol takes; use sql or prql (and for language sql, puffindb.dialect: one of ${SQL_DIALECTS.join(', ')})`);
}

/** SET [SESSION|LOCAL] puffindb.x {=|TO} value|DEFAULT; undefined when the name is not PuffinDB's. */
function setFrontEnd(tokens: readonly Token[], current: FrontEndSettings): SessionAnswer | undefined {
  let i = 1;
  if (/^(SESSION|LOCAL)$/i.test(tokens[i]?.text ?? '') && tokens[i].kind === 'word' && tokens[i + 1]?.kind !== 'symbol') i++;
  const [name, after] = parameterName(tokens, i);
  if (!name.startsWith('puffindb.')) return undefined;
  if (!(FRONT_END_SETTINGS as readonly string[]).includes(name)) throw new PuffinError('bad_request', `unknown PuffinDB setting ${JSON.stringify(name)}; the wire protocol's settings are ${FRONT_END_SETTINGS.join(', ')}`);
  let j = after;
  if (tokens[j]?.text === '=' || (tokens[j]?.kind === 'word' && tokens[j].text.toUpperCase() === 'TO')) j++;
  else throw new PuffinError('bad_request', `SET ${name} needs a value: SET ${name} = '...'`);
  const rest = tokens.slice(j);
  const v = rest[0];
  if (rest.length !== 1 || !v || !(v.kind === 'string' || v.kind === 'word' || v.kind === 'quoted_ident')) {
    throw new PuffinError('bad_request', `SET ${name} takes one name, as in SET ${name} = '${name === 'puffindb.dialect' ? 'snowflake' : 'prql'}'`);
  }
  const value = v.kind === 'string' ? (/^'.*'$/s.test(v.text) ? v.text.slice(1, -1).replace(/''/g, "'") : undefined) : tokenName(v);
  if (value === undefined) throw new PuffinError('bad_request', `SET ${name} takes a plain '...' string`);
  const reset = v.kind === 'word' && value.toUpperCase() === 'DEFAULT';
  return { tag: 'SET', frontEnd: frontEndValue(name, current, reset ? undefined : value) };
}

function words(tokens: readonly Token[]): string[] {
  return tokens.map((t) => (t.kind === 'word' ? t.text.toUpperCase() : t.text));
}

/**
 * SET/RESET/BEGIN/COMMIT/ROLLBACK/DISCARD/DEALLOCATE and SHOW of a PostgreSQL parameter:
 * answered here, touching no engine (there are no transactions: each statement commits on
 * its own). undefined for anything else.
 */
export function sessionStatement(tokens: readonly Token[], frontEnd: FrontEndSettings = DEFAULT_FRONT_END): SessionAnswer | undefined {
  const w = words(tokens);
  switch (w[0]) {
    case 'SET':
      return setFrontEnd(tokens, frontEnd) ?? { tag: 'SET' };
    case 'RESET': {
      if (w[1] === 'ALL' && tokens.length === 2) return { tag: 'RESET', frontEnd: DEFAULT_FRONT_END };
      const [name, after] = parameterName(tokens, 1);
      if (!name.startsWith('puffindb.')) return { tag: 'RESET' };
      if (!(FRONT_END_SETTINGS as readonly string[]).includes(name) || after !== tokens.length) throw new PuffinError('bad_request', `unknown PuffinDB setting ${JSON.stringify(name)}; the wire protocol's settings are ${FRONT_END_SETTINGS.join(', ')}`);
      return { tag: 'RESET', frontEnd: frontEndValue(name, frontEnd, undefined) };
    }
    case 'BEGIN':
    case 'START':
      return { tag: 'BEGIN', transaction: 'begin' };
    case 'COMMIT':
    case 'END':
      return { tag: 'COMMIT', transaction: 'end' };
    case 'ROLLBACK':
    case 'ABORT':
      return { tag: 'ROLLBACK', transaction: 'end' };
    case 'DISCARD':
      return { tag: `DISCARD ${w[1] ?? 'ALL'}`, ...((w[1] ?? 'ALL') === 'ALL' ? { frontEnd: DEFAULT_FRONT_END } : {}) };
    case 'DEALLOCATE':
      return { tag: 'DEALLOCATE' };
    case 'SHOW': {
      const [setting, after] = parameterName(tokens, 1);
      if (setting.startsWith('puffindb.') && after === tokens.length) {
        if (!(FRONT_END_SETTINGS as readonly string[]).includes(setting)) throw new PuffinError('bad_request', `unknown PuffinDB setting ${JSON.stringify(setting)}; the wire protocol's settings are ${FRONT_END_SETTINGS.join(', ')}`);
        const value = setting === 'puffindb.dialect' ? frontEnd.dialect : frontEnd.language;
        return { tag: 'SHOW', result: { columns: [{ name: setting, type: 'VARCHAR' }], rows: [[value]] } };
      }
      const name = tokens.slice(1).map((t) => (t.kind === 'quoted_ident' ? t.text.slice(1, -1) : t.text)).join(' ').toLowerCase();
      if (name === 'all') return undefined;
      const value = SHOWABLE[name];
      if (value === undefined) return undefined;
      const column = name === 'transaction isolation level' ? 'transaction_isolation' : name;
      return { tag: 'SHOW', result: { columns: [{ name: column, type: 'VARCHAR' }], rows: [[value]] } };
    }
    default:
      return undefined;
  }
}

const CATALOG_WORDS = /^(pg_catalog|information_schema|pg_[a-z_]+|current_schemas?|current_database|current_setting|current_user|session_user|version|has_[a-z_]+_privilege|format_type|obj_description|col_description|shobj_description|set_config)$/i;

/**
 * Whether the statement is a metadata query the mirror answers: it names pg_catalog or
 * information_schema (or a PostgreSQL system function), and no PuffinDB table, so
 * nothing it reads has data the mirror lacks. A query mixing both goes to the engine.
 */
export function isCatalogQuery(tokens: readonly Token[], tables: ReadonlySet<string>): boolean {
  let catalog = false;
  for (const t of tokens) {
    const name = t.kind === 'word' ? t.text.toLowerCase() : t.kind === 'quoted_ident' ? t.text.slice(1, -1).replace(/""/g, '"').toLowerCase() : undefined;
    if (name === undefined) continue;
    if (tables.has(name)) return false;
    if (CATALOG_WORDS.test(name)) catalog = true;
  }
  return catalog;
}

/**
 * PostgreSQL spellings DuckDB does not take, rewritten (outside strings, identifiers and
 * comments). current_setting(...) is given the session's front end (`frontEnd`) as its
 * first two arguments, so current_setting('puffindb.dialect') answers what SHOW does.
 */
export function rewriteCatalogSql(sql: string, frontEnd: FrontEndSettings = DEFAULT_FRONT_END): string {
  const { tokens } = lex(sql);
  let out = '';
  let last = 0;
  const emit = (from: number, to: number, text: string) => {
    out += sql.slice(last, from) + text;
    last = to;
  };
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    const up = t.kind === 'word' ? t.text.toUpperCase() : '';
    // OPERATOR(pg_catalog.~) -> ~
    if (up === 'OPERATOR' && tokens[i + 1]?.text === '(') {
      const close = tokens.findIndex((x, j) => j > i && x.text === ')');
      if (close > 0) {
        const inner = tokens.slice(i + 2, close).filter((x) => x.kind === 'symbol' && x.text !== '.').map((x) => x.text).join('');
        emit(t.start, tokens[close].end, ` ${inner} `);
        i = close;
        continue;
      }
    }
    // COLLATE pg_catalog.default / COLLATE "C": DuckDB's collations differ; dropped
    if (up === 'COLLATE' && tokens[i + 1]) {
      let j = i + 1;
      if (tokens[j + 1]?.text === '.' && tokens[j + 2]) j += 2;
      emit(t.start, tokens[j].end, ' ');
      i = j;
      continue;
    }
    // pg_catalog.name -> name (DuckDB finds its pg_catalog tables and our macros on the search path)
    if (up === 'PG_CATALOG' && tokens[i + 1]?.text === '.') {
      emit(t.start, tokens[i + 1].end, '');
      i += 1;
      continue;
    }
    // ::regclass, ::regtype, ::regproc, ::oid casts of names: kept as text / integers
    if (t.text === ':' && tokens[i + 1]?.text === ':') {
      const k = tokens[i + 2]?.text.toLowerCase() === 'pg_catalog' && tokens[i + 3]?.text === '.' ? i + 4 : i + 2;
      if (tokens[k]?.kind === 'word' && /^reg[a-z]*$/i.test(tokens[k].text)) {
        emit(t.start, tokens[k].end, '::VARCHAR');
        i = k;
        continue;
      }
    }
    // information_schema.tables -> the emulation schema's view of it (without the emulation schema)
    if (up === 'INFORMATION_SCHEMA' && tokens[i + 1]?.text === '.' && tokens[i + 2]?.kind === 'word' && INFORMATION_SCHEMA_VIEWS.includes(tokens[i + 2].text.toLowerCase())) {
      emit(t.start, tokens[i + 2].end, `${EMULATION_SCHEMA}.information_schema_${tokens[i + 2].text.toLowerCase()}`);
      i += 2;
      continue;
    }
    if (up === 'CURRENT_SETTING' && tokens[i + 1]?.text === '(') {
      emit(t.start, tokens[i + 1].end, `pg_current_setting(${sqlString(frontEnd.dialect)}, ${sqlString(frontEnd.language)}, `);
      i += 1;
      continue;
    }
    if (['CURRENT_SCHEMA', 'CURRENT_SCHEMAS', 'CURRENT_DATABASE'].includes(up) && tokens[i + 1]?.text === '(') {
      emit(t.start, t.end, `pg_${up.toLowerCase()}`);
      continue;
    }
  }
  return out + sql.slice(last);
}

/** Functions PostgreSQL clients call that DuckDB lacks, as macros of the mirror. */
const MACROS = [
  `CREATE OR REPLACE MACRO pg_get_userbyid(x) AS 'puffindb'`,
  `CREATE OR REPLACE MACRO pg_encoding_to_char(x) AS 'UTF8'`,
  `CREATE OR REPLACE MACRO obj_description(x, y := NULL) AS CAST(NULL AS VARCHAR)`,
  `CREATE OR REPLACE MACRO col_description(x, y) AS CAST(NULL AS VARCHAR)`,
  `CREATE OR REPLACE MACRO shobj_description(x, y) AS CAST(NULL AS VARCHAR)`,
  `CREATE OR REPLACE MACRO pg_relation_size(x) AS 0`,
  `CREATE OR REPLACE MACRO pg_total_relation_size(x) AS 0`,
  `CREATE OR REPLACE MACRO pg_size_pretty(x) AS '0 bytes'`,
  `CREATE OR REPLACE MACRO pg_get_viewdef(x, y := NULL) AS CAST(NULL AS VARCHAR)`,
  `CREATE OR REPLACE MACRO pg_get_indexdef(x, y := NULL, z := NULL) AS CAST(NULL AS VARCHAR)`,
  `CREATE OR REPLACE MACRO pg_get_constraintdef(x, y := NULL) AS CAST(NULL AS VARCHAR)`,
  `CREATE OR REPLACE MACRO pg_get_statisticsobjdef_columns(x) AS CAST(NULL AS VARCHAR)`,
  `CREATE OR REPLACE MACRO pg_get_function_result(x) AS CAST(NULL AS VARCHAR)`,
  `CREATE OR REPLACE MACRO pg_get_function_arguments(x) AS CAST(NULL AS VARCHAR)`,
  `CREATE OR REPLACE MACRO pg_get_partkeydef(x) AS CAST(NULL AS VARCHAR)`,
  `CREATE OR REPLACE MACRO pg_tablespace_location(x) AS CAST(NULL AS VARCHAR)`,
  `CREATE OR REPLACE MACRO set_config(a, b, c) AS b`,
  `CREATE OR REPLACE MACRO version() AS ${sqlString(VERSION_TEXT)}`,
  `CREATE OR REPLACE MACRO pg_relation_is_publishable(x) AS false`,
  `CREATE OR REPLACE MACRO array_upper(a, d) AS len(a)`,
  `CREATE OR REPLACE MACRO array_lower(a, d) AS CASE WHEN len(a) > 0 THEN 1 END`,
  `CREATE OR REPLACE MACRO pg_get_triggerdef(x, y := NULL) AS CAST(NULL AS VARCHAR)`,
  `CREATE OR REPLACE MACRO pg_get_ruledef(x, y := NULL) AS CAST(NULL AS VARCHAR)`,
  `CREATE OR REPLACE MACRO pg_get_statisticsobjdef(x) AS CAST(NULL AS VARCHAR)`,
  `CREATE OR REPLACE MACRO pg_get_partition_constraintdef(x) AS CAST(NULL AS VARCHAR)`,
  `CREATE OR REPLACE MACRO pg_get_serial_sequence(x, y) AS CAST(NULL AS VARCHAR)`,
  `CREATE OR REPLACE MACRO pg_get_keywords() AS TABLE SELECT 'select' AS word, 'R' AS catcode, 'reserved' AS catdesc`,
  `CREATE OR REPLACE MACRO quote_ident(x) AS '"' || replace(x, '"', '""') || '"'`,
  `CREATE OR REPLACE MACRO has_database_privilege(a, b, c := NULL) AS true`,
  `CREATE OR REPLACE MACRO pg_backend_pid() AS 0`,
  `CREATE OR REPLACE MACRO txid_current() AS 0`,
  `CREATE OR REPLACE MACRO pg_is_in_recovery() AS false`,
  `CREATE OR REPLACE MACRO pg_postmaster_start_time() AS TIMESTAMPTZ '2026-01-01 00:00:00+00'`,
  `CREATE OR REPLACE MACRO inet_server_addr() AS CAST(NULL AS VARCHAR)`,
  `CREATE OR REPLACE MACRO pg_get_expr(a, b) AS CAST(NULL AS VARCHAR), (a, b, c) AS CAST(NULL AS VARCHAR)`,
];

/** Where the mirror keeps its PostgreSQL catalog additions; first on its search path, hidden from pg_class. */
const EMULATION_SCHEMA = 'puffindb_pg';

/** Empty catalog tables DuckDB lacks, with the columns psql and JDBC read. */
const EMPTY_TABLES: Record<string, string> = {
  pg_inherits: 'inhrelid BIGINT, inhparent BIGINT, inhseqno INTEGER, inhdetachpending BOOLEAN',
  pg_trigger: 'oid BIGINT, tgrelid BIGINT, tgparentid BIGINT, tgname VARCHAR, tgfoid BIGINT, tgtype INTEGER, tgenabled VARCHAR, tgisinternal BOOLEAN, tgconstrrelid BIGINT, tgconstrindid BIGINT, tgconstraint BIGINT, tgdeferrable BOOLEAN, tginitdeferred BOOLEAN, tgnargs INTEGER',
  pg_policy: 'oid BIGINT, polname VARCHAR, polrelid BIGINT, polcmd VARCHAR, polpermissive BOOLEAN, polroles BIGINT[], polqual VARCHAR, polwithcheck VARCHAR',
  pg_statistic_ext: 'oid BIGINT, stxrelid BIGINT, stxname VARCHAR, stxnamespace BIGINT, stxowner BIGINT, stxstattarget INTEGER, stxkeys INTEGER[], stxkind VARCHAR[]',
  pg_publication: 'oid BIGINT, pubname VARCHAR, pubowner BIGINT, puballtables BOOLEAN, pubinsert BOOLEAN, pubupdate BOOLEAN, pubdelete BOOLEAN, pubtruncate BOOLEAN, pubviaroot BOOLEAN',
  pg_publication_rel: 'oid BIGINT, prpubid BIGINT, prrelid BIGINT, prqual VARCHAR, prattrs INTEGER[]',
  pg_publication_namespace: 'oid BIGINT, pnpubid BIGINT, pnnspid BIGINT',
  pg_extension: 'oid BIGINT, extname VARCHAR, extowner BIGINT, extnamespace BIGINT, extrelocatable BOOLEAN, extversion VARCHAR',
  pg_range: 'rngtypid BIGINT, rngsubtype BIGINT, rngmultitypid BIGINT, rngcollation BIGINT, rngsubopc BIGINT',
  pg_matviews: 'schemaname VARCHAR, matviewname VARCHAR, matviewowner VARCHAR, tablespace VARCHAR, hasindexes BOOLEAN, ispopulated BOOLEAN, definition VARCHAR',
  pg_rewrite: 'oid BIGINT, rulename VARCHAR, ev_class BIGINT, ev_type VARCHAR, ev_enabled VARCHAR, is_instead BOOLEAN',
  pg_foreign_table: 'ftrelid BIGINT, ftserver BIGINT, ftoptions VARCHAR[]',
  pg_partitioned_table: 'partrelid BIGINT, partstrat VARCHAR, partnatts INTEGER, partdefid BIGINT',
  pg_opclass: 'oid BIGINT, opcmethod BIGINT, opcname VARCHAR, opcnamespace BIGINT, opcowner BIGINT, opcfamily BIGINT, opcintype BIGINT, opcdefault BOOLEAN, opckeytype BIGINT',
  pg_operator: 'oid BIGINT, oprname VARCHAR, oprnamespace BIGINT, oprowner BIGINT, oprkind VARCHAR, oprleft BIGINT, oprright BIGINT, oprresult BIGINT, oprcode VARCHAR',
};

const ALWAYS_EMPTY = new RegExp(`\\b(${Object.keys(EMPTY_TABLES).join('|')})\\b`, 'i');

/** information_schema views answered without the mirror's own emulation schema in them. */
const INFORMATION_SCHEMA_VIEWS = ['tables', 'columns', 'schemata', 'views'];

function oidCase(column: string): string {
  const exact = Object.entries(DUCK_TYPE_OIDS).map(([name, oid]) => `WHEN ${sqlString(name)} THEN ${oid}`).join(' ');
  return `CASE WHEN ${column} LIKE 'DECIMAL%' THEN ${OID.numeric} ELSE (CASE ${column} ${exact} ELSE ${OID.text} END) END`;
}

function lenCase(column: string): string {
  const fixed = Object.entries(DUCK_TYPE_OIDS).filter(([, oid]) => typeSize(oid) > 0).map(([name, oid]) => `WHEN ${sqlString(name)} THEN ${typeSize(oid)}`).join(' ');
  return `CASE ${column} ${fixed} ELSE -1 END`;
}

const ROLE_COLUMNS = `0::BIGINT AS oid, 'puffindb' AS rolname, false AS rolsuper, true AS rolinherit, false AS rolcreaterole, false AS rolcreatedb, true AS rolcanlogin, false AS rolreplication, -1 AS rolconnlimit, NULL::VARCHAR AS rolvaliduntil, false AS rolbypassrls, NULL::VARCHAR[] AS rolconfig`;

const EMULATION = [
  ...Object.entries(EMPTY_TABLES).map(([name, cols]) => `CREATE TABLE ${EMULATION_SCHEMA}.${name} (${cols})`),
  `CREATE VIEW ${EMULATION_SCHEMA}.pg_roles AS SELECT ${ROLE_COLUMNS}`,
  `CREATE VIEW ${EMULATION_SCHEMA}.pg_user AS SELECT 'puffindb' AS usename, 0::BIGINT AS usesysid, false AS usecreatedb, false AS usesuper, false AS userepl, false AS usebypassrls`,
  `CREATE VIEW ${EMULATION_SCHEMA}.pg_namespace AS SELECT * FROM pg_catalog.pg_namespace WHERE nspname NOT IN ('${EMULATION_SCHEMA}')`,
  `CREATE VIEW ${EMULATION_SCHEMA}.pg_class AS SELECT * REPLACE (CAST(NULL AS VARCHAR[]) AS reloptions, CAST(NULL AS BIGINT) AS relam, 'd' AS relreplident), false AS relforcerowsecurity FROM pg_catalog.pg_class WHERE relnamespace NOT IN (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = '${EMULATION_SCHEMA}')`,
  `CREATE VIEW ${EMULATION_SCHEMA}.pg_database AS SELECT oid, 'puffindb' AS datname, 0::BIGINT AS datdba, 6 AS encoding, 'c' AS datlocprovider, true AS datallowconn, false AS datistemplate, -1 AS datconnlimit, 'C' AS datcollate, 'C' AS datctype, NULL::VARCHAR AS daticulocale, NULL::VARCHAR AS datcollversion, NULL::VARCHAR[] AS datacl, 0::BIGINT AS dattablespace FROM pg_catalog.pg_database WHERE datname = 'memory'`,
  // Columns with PostgreSQL type OIDs and typmods (DuckDB's own view has its internal type ids), and format_type over them.
  `CREATE VIEW ${EMULATION_SCHEMA}.pg_attribute AS SELECT table_oid AS attrelid, column_name AS attname, ${oidCase('data_type')} AS atttypid, 0 AS attstattarget, ${lenCase('data_type')} AS attlen, column_index AS attnum, 0 AS attndims, -1 AS attcacheoff, CASE WHEN data_type LIKE 'DECIMAL%' THEN ((numeric_precision << 16) | numeric_scale) + 4 ELSE -1 END AS atttypmod, false AS attbyval, 'p' AS attstorage, 'i' AS attalign, NOT is_nullable AS attnotnull, column_default IS NOT NULL AS atthasdef, false AS atthasmissing, '' AS attidentity, '' AS attgenerated, false AS attisdropped, true AS attislocal, 0 AS attinhcount, 0::BIGINT AS attcollation, NULL AS attcompression, NULL AS attacl, NULL AS attoptions, NULL AS attfdwoptions, NULL AS attmissingval FROM duckdb_columns() WHERE schema_name <> '${EMULATION_SCHEMA}'`,
  `CREATE MACRO ${EMULATION_SCHEMA}.format_type(t, m) AS CASE WHEN t = ${OID.numeric} AND m >= 4 THEN 'numeric(' || ((m - 4) >> 16) || ',' || ((m - 4) & 65535) || ')' ${Object.entries(OID_NAMES).map(([oid, name]) => `WHEN t = ${oid} THEN ${sqlString(name)}`).join(' ')} WHEN t IS NULL THEN NULL ELSE 'text' END`,
  // Named apart from DuckDB's own (which its pg_catalog views call); queries are rewritten to them.
  `CREATE MACRO ${EMULATION_SCHEMA}.pg_current_schema() AS 'main'`,
  `CREATE MACRO ${EMULATION_SCHEMA}.pg_current_schemas(implicit) AS CASE WHEN implicit THEN ['pg_catalog', 'main'] ELSE ['main'] END`,
  `CREATE MACRO ${EMULATION_SCHEMA}.pg_current_database() AS 'puffindb'`,
  ...INFORMATION_SCHEMA_VIEWS.map((v) => `CREATE VIEW ${EMULATION_SCHEMA}.information_schema_${v} AS SELECT * FROM information_schema.${v} WHERE ${v === 'schemata' ? 'schema_name' : 'table_schema'} <> '${EMULATION_SCHEMA}'`),
];

/** The mirror of the catalog, rebuilt when the catalog's tables or columns change. */
export class CatalogMirror {
  private instance?: DuckDBInstance;
  private conn?: DuckDBConnection;
  private signature = '';
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly catalog: Catalog,
    /** Longest a metadata query may run. */
    private readonly timeoutMs = 10_000,
    /**
     * `postgres: false`: DuckDB's own catalog only, without the PostgreSQL emulation (what
     * DESCRIBE, SHOW TABLES and information_schema answer in DuckDB SQL, runtime/exec/catalog-statements.ts).
     * `adminOnly: true`: admin-only tables (puffindb.query_log) are in the mirror too, for admin callers.
     */
    private readonly options: { postgres?: boolean; adminOnly?: boolean } = {},
  ) {}

  /** Lower-cased names (and bare names of schema-qualified ones) of the catalog's tables. */
  async tableNames(): Promise<Set<string>> {
    const names = new Set<string>();
    for (const n of await this.catalog.listTables()) {
      names.add(n.toLowerCase());
      const dot = n.lastIndexOf('.');
      if (dot >= 0) names.add(n.slice(dot + 1).toLowerCase());
    }
    return names;
  }

  private async open(): Promise<DuckDBConnection> {
    if (this.conn) return this.conn;
    this.instance = await DuckDBInstance.create(':memory:', {
      threads: '1',
      autoinstall_known_extensions: 'false',
      autoload_known_extensions: 'false',
      enable_external_access: 'false',
    });
    const conn = await this.instance.connect();
    if (this.options.postgres !== false) {
      await conn.run(`CREATE SCHEMA ${EMULATION_SCHEMA}`);
      for (const m of [...MACROS.map((m) => m.replace('MACRO ', `MACRO ${EMULATION_SCHEMA}.`)), ...EMULATION]) await conn.run(m);
      const settings = Object.entries(SHOWABLE).map(([k, v]) => `${sqlString(k)}: ${sqlString(v)}`).join(', ');
      // The session's own settings come in as arguments (rewriteCatalogSql): the mirror is shared.
      await conn.run(`CREATE OR REPLACE MACRO ${EMULATION_SCHEMA}.pg_current_setting(dialect, language, n, missing_ok := false) AS CASE lower(n) WHEN 'puffindb.dialect' THEN dialect WHEN 'puffindb.language' THEN language ELSE MAP {${settings}}[lower(n)] END`);
      await conn.run(`SET search_path = '${EMULATION_SCHEMA},main'`);
    }
    await conn.run('SET lock_configuration = true');
    this.conn = conn;
    return conn;
  }

  private async refresh(conn: DuckDBConnection): Promise<void> {
    const tables: { schema: string; name: string; columns: { name: string; type: string }[] }[] = [];
    for (const full of await this.catalog.listTables()) {
      const t = await this.catalog.getTable(full);
      if (!t || (t.adminOnly && !this.options.adminOnly)) continue;
      const dot = full.lastIndexOf('.');
      tables.push({ schema: dot >= 0 ? full.slice(0, dot) : 'main', name: dot >= 0 ? full.slice(dot + 1) : full, columns: t.columns });
    }
    const signature = JSON.stringify(tables);
    if (signature === this.signature) return;
    const existing = materialize(await conn.runAndReadAll(`SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'memory' AND schema_name <> '${EMULATION_SCHEMA}' AND NOT internal`));
    for (const [schema, name] of existing.rows as string[][]) await conn.run(`DROP TABLE ${sqlIdent(schema)}.${sqlIdent(name)}`);
    for (const t of tables) {
      if (t.schema !== 'main') await conn.run(`CREATE SCHEMA IF NOT EXISTS ${sqlIdent(t.schema)}`);
      const cols = t.columns.map((c) => `${sqlIdent(c.name)} ${c.type}`).join(', ');
      if (cols) await conn.run(`CREATE TABLE ${sqlIdent(t.schema)}.${sqlIdent(t.name)} (${cols})`);
    }
    this.signature = signature;
  }

  /** Run a (classified, read-only) metadata query on the mirror. */
  query(sql: string): Promise<QueryResult> {
    const run = this.queue.then(async () => {
      const conn = await this.open();
      await this.refresh(conn);
      // A metadata query is bounded like any other: one that runs long (a huge generate_series)
      // is interrupted, so it cannot hold the mirror that every session's metadata queries share.
      const timer = setTimeout(() => conn.interrupt(), this.timeoutMs);
      try {
        const result = materialize(await conn.runAndReadAll(sql));
        // PostgreSQL names a function call's column after the function: version, current_setting.
        for (const c of this.options.postgres === false ? [] : result.columns) {
          const call = /^"?([a-z_]+)"?\(.*\)$/i.exec(c.name);
          if (call) c.name = call[1].replace(/^pg_current_/, 'current_');
        }
        return result;
      } catch (err) {
        // A query over catalog tables that are always empty here (publications, policies,
        // triggers, ...) that DuckDB cannot bind (PostgreSQL-only syntax): its answer is no rows.
        if (this.options.postgres !== false && ALWAYS_EMPTY.test(sql) && /^(Binder|Catalog|Parser) Error/.test((err as Error).message)) {
          return { columns: [{ name: '?column?', type: 'VARCHAR' }], rows: [] };
        }
        if (/INTERRUPT/i.test((err as Error).message)) throw new PuffinError('timeout', `the metadata query ran over ${this.timeoutMs} ms and was interrupted`);
        throw toPuffinError(err);
      } finally {
        clearTimeout(timer);
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  close(): void {
    this.conn?.closeSync();
    this.instance?.closeSync();
    this.conn = undefined;
    this.instance = undefined;
  }
}
