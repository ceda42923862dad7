// What the dialect translator (frontends.ts, @polyglot-sql/sdk) is known to get wrong, kept
// as a table: constructs it would translate into valid DuckDB SQL that gives another answer.
// Each is either refused by name (a 400 saying why and what to write instead) or rewritten
// in the source dialect into a form whose translation means the same thing. Every entry was
// found by running the source dialect's meaning against DuckDB's answer
// (test/runtime/sql/dialects.test.ts), and a translator upgrade that changes one shows up
// there.

import { PuffinError } from '../errors.ts';
import { lex } from './lexer.ts';

/** A node of the translator's JSON AST: `{<type>: {fields}}`. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type PolyglotNode = Record<string, any>;

type Name = (dialect: never) => string;

/** Dialects where `/` between two integers truncates (7 / 2 = 3); DuckDB's `/` does not (3.5). */
const INTEGER_DIVISION = new Set([
  'postgresql', 'redshift', 'tsql', 'fabric', 'trino', 'presto', 'athena', 'dune', 'sqlite', 'cockroachdb',
  'materialize', 'risingwave', 'teradata', 'datafusion',
]);

/** Dialects whose DAYOFWEEK (or DATEPART(weekday) / EXTRACT(DAYOFWEEK)) counts 1 = Sunday to 7; the translation counts otherwise. */
const SUNDAY_ONE = new Set(['mysql', 'tidb', 'singlestore', 'doris', 'starrocks', 'hive', 'spark', 'databricks', 'bigquery', 'tsql', 'fabric']);

/** Dialects whose CONCAT is NULL when any argument is NULL; DuckDB's CONCAT skips NULLs. */
const CONCAT_PROPAGATES_NULL = new Set([
  'mysql', 'tidb', 'singlestore', 'doris', 'starrocks', 'hive', 'spark', 'databricks', 'bigquery', 'snowflake',
  'trino', 'presto', 'athena', 'dune', 'redshift', 'clickhouse',
]);

/** Dialects whose CAST of a fraction to an integer truncates toward zero (10.5 -> 10); DuckDB's rounds (11). */
const CAST_TRUNCATES = new Set(['spark', 'databricks', 'hive', 'tsql', 'fabric', 'sqlite', 'clickhouse']);

/** Operands a truncating cast to an integer type takes as they are: literals, and values already whole. */
const WHOLE_FUNCTIONS = /^(TRUNC|TRUNCATE|FLOOR|CEIL|CEILING|ROUND|FIX)$/i;

function integerType(to: unknown): boolean {
  const t = JSON.stringify(to ?? {}).toLowerCase();
  return /"(int|integer|bigint|smallint|tinyint|long|short|byte|int\d*|uint\d*)"/.test(t) || /"data_type":"(big_?int|small_?int|tiny_?int|int)/.test(t);
}

function whole(node: PolyglotNode | undefined): boolean {
  if (!node) return true;
  const [type, fields] = Object.entries(node)[0] ?? [];
  if (type === 'literal' || type === 'null') return true;
  if (type === 'function') return WHOLE_FUNCTIONS.test(String(fields?.name));
  return type !== undefined && WHOLE_FUNCTIONS.test(type);
}

/** Dialects whose DATE_ADD/DATE_SUB always answer a DATE; their translation (d + INTERVAL n DAY) answers a TIMESTAMP. */
const DATE_ADD_IS_DATE = new Set(['spark', 'databricks', 'hive', 'bigquery']);

/** Targets with a QUALIFY clause of their own (elsewhere the translator moves LIMIT inside the window's subquery). */
const HAS_QUALIFY = new Set(['duckdb', 'snowflake', 'bigquery', 'databricks', 'teradata', 'clickhouse']);

/** Date format functions of DuckDB's, whose format strings use % codes. */
const FORMAT_FUNCTIONS = new Set(['STRFTIME', 'STRPTIME', 'TRY_STRPTIME']);

/** Every `{type: fields}` node under `node`, depth first, with its parent. */
function visit(node: unknown, fn: (type: string, fields: PolyglotNode) => void): void {
  if (Array.isArray(node)) {
    for (const item of node) visit(item, fn);
    return;
  }
  if (!node || typeof node !== 'object') return;
  for (const [key, value] of Object.entries(node as PolyglotNode)) {
    if (value && typeof value === 'object' && !Array.isArray(value)) fn(key, value as PolyglotNode);
    visit(value, fn);
  }
}

function functionName(type: string, fields: PolyglotNode): string | undefined {
  return type === 'function' && typeof fields.name === 'string' ? fields.name.toUpperCase() : undefined;
}

/** A side of `/` that is certainly not an integer: a fractional literal or a cast to a fractional type. */
function fractional(node: PolyglotNode | undefined): boolean {
  if (!node) return false;
  if (node.literal?.literal_type === 'number') return /[.eE]/.test(String(node.literal.value));
  if (node.cast || node.try_cast || node.safe_cast) {
    const cast = node.cast ?? node.try_cast ?? node.safe_cast;
    return /double|float|real|decimal|numeric|money|number/i.test(JSON.stringify(cast.to ?? {}));
  }
  if (node.paren) return fractional(node.paren.this);
  return false;
}

function refuse(construct: string, why: string, instead: string): PuffinError {
  return new PuffinError('bad_request', `${construct} cannot be translated without changing its meaning: ${why}; ${instead}`, { construct });
}

/**
 * Refuse constructs of `from` that the translation to `to` would change in meaning. Runs on
 * the source statement's AST before translating.
 */
export function guardSource(statement: PolyglotNode, from: string, to: string, name: Name): void {
  const dialect = name(from as never);
  visit(statement, (type, fields) => {
    if (to === 'duckdb' && type === 'div' && INTEGER_DIVISION.has(from) && !fractional(fields.left) && !fractional(fields.right)) {
      throw refuse(
        "'/'",
        `${dialect} divides two integers with truncation (7 / 2 = 3) and DuckDB does not (3.5), and whether both sides are integers is only known once the query runs`,
        'make one side fractional (CAST(x AS DECIMAL(18, 6)) / y, or x / 2.0) for a fractional result, or send DuckDB SQL and write x // y for integer division',
      );
    }
    if (to === 'duckdb' && CAST_TRUNCATES.has(from) && (type === 'cast' || type === 'try_cast' || type === 'safe_cast') && integerType(fields.to) && !whole(fields.this)) {
      throw refuse(
        'CAST to an integer type',
        `${dialect} truncates a fraction toward zero (10.5 -> 10) and DuckDB rounds it (11), and whether the value has a fraction is only known once the query runs`,
        'say which you mean: CAST(TRUNC(x) AS INT) or CAST(ROUND(x) AS INT)',
      );
    }
    const fn = functionName(type, fields);
    if (to === 'duckdb' && SUNDAY_ONE.has(from)) {
      const datePartWeekday = (fn === 'DATE_PART' || fn === 'DATEPART') && /"(DAYOFWEEK|WEEKDAY|DW)"/i.test(JSON.stringify(fields.args?.[0] ?? {}));
      if (type === 'day_of_week' || fn === 'DAYOFWEEK' || (type === 'extract' && fields.field === 'DayOfWeek') || datePartWeekday) {
        throw refuse(
          'the day of the week (DAYOFWEEK / EXTRACT(DAYOFWEEK) / DATEPART(weekday))',
          `${dialect} numbers days 1 (Sunday) to 7 and the translation would number them otherwise`,
          "send DuckDB SQL with dayofweek(d) + 1 (DuckDB's dayofweek is 0 for Sunday)",
        );
      }
    }
    if (to === 'duckdb' && (from === 'tsql' || from === 'fabric') && fn === 'FORMAT') {
      throw refuse('FORMAT()', 'it takes .NET format strings, which DuckDB has no equivalent of', "send DuckDB SQL with strftime(d, '%Y-%m') or format('{}', x)");
    }
    if (from === 'duckdb' && type === 'select' && fields.qualify && (fields.limit || fields.top || fields.fetch) && !HAS_QUALIFY.has(to)) {
      throw refuse('QUALIFY with LIMIT', `${name(to as never)} has no QUALIFY, and the translation would apply the LIMIT before the QUALIFY filter`, 'wrap the query with QUALIFY in a subquery and put the LIMIT outside it');
    }
  });
}

/**
 * Check the translation's output: DuckDB's strftime/strptime read % codes, so a format
 * string without any (Oracle's 'YYYY-MM', kept as written) would print itself. Reads the
 * output with DuckDB's quoting rules (the translator cannot read back every DuckDB operator).
 */
export function guardTarget(sql: string, from: string, to: string, name: Name): void {
  if (to !== 'duckdb') return;
  const tokens = lex(sql).tokens;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t.kind !== 'word' || !FORMAT_FUNCTIONS.has(t.text.toUpperCase()) || tokens[i + 1]?.text !== '(') continue;
    let depth = 0;
    let argument = 0;
    for (let j = i + 1; j < tokens.length; j++) {
      const u = tokens[j];
      if (u.text === '(') depth++;
      else if (u.text === ')') {
        if (--depth === 0) break;
      } else if (u.text === ',' && depth === 1) argument++;
      else if (u.kind === 'string' && depth === 1 && argument === 1) {
        const format = u.text.slice(1, -1);
        if (format !== '' && !format.includes('%')) {
          throw refuse(
            `the date format '${format}'`,
            `it is written in ${name(from as never)}'s format codes, which were not converted to DuckDB's % codes, so DuckDB would print it literally`,
            "send DuckDB SQL with strftime(d, '%Y-%m-%d') and its % codes",
          );
        }
      }
    }
  }
}

/** Dialects with IIF(condition, then, else). */
const IIF_DIALECTS = new Set(['tsql']);

/** ClickHouse's one-argument date part functions, as EXTRACT fields. */
const CLICKHOUSE_DATE_PARTS: Record<string, string> = {
  TOYEAR: 'YEAR', TOQUARTER: 'QUARTER', TOMONTH: 'MONTH', TODAYOFMONTH: 'DAY', TOHOUR: 'HOUR', TOMINUTE: 'MINUTE', TOSECOND: 'SECOND',
};

/** Trino-family dialects with array_join(array, delimiter [, null_replacement]), which the translator passes through and DuckDB lacks. */
const ARRAY_JOIN_DIALECTS = new Set(['presto', 'trino', 'athena', 'dune']);

/**
 * array_join in DuckDB terms. array_to_string differs on NULLs: it answers NULL for an array
 * of only NULLs (array_join: '') and reads a NULL delimiter as ',' (array_join: NULL); NULL
 * elements are dropped first, and a NULL delimiter or replacement answers NULL. With a
 * replacement, each element is cast to VARCHAR and NULLs replaced before joining.
 */
const ARRAY_JOIN_TEMPLATES: Record<number, string> = {
  2: 'CASE WHEN __pdb_1 IS NULL THEN NULL ELSE array_to_string(list_filter(__pdb_0, __pdb_e -> __pdb_e IS NOT NULL), __pdb_1) END',
  3: 'CASE WHEN __pdb_1 IS NULL OR __pdb_2 IS NULL THEN NULL ELSE array_to_string(list_transform(__pdb_0, __pdb_e -> COALESCE(CAST(__pdb_e AS VARCHAR), __pdb_2)), __pdb_1) END',
};

/** The expression of `SELECT <expression>` parsed in `dialect`, with `__pdb_N` columns standing for arguments. */
type Parse = (sql: string, dialect: string) => PolyglotNode[];

function template(parse: Parse, dialect: string, expression: string, args: PolyglotNode[]): PolyglotNode {
  const parsed = parse(`SELECT ${expression}`, dialect);
  const node = structuredClone(parsed[0].select.expressions[0]) as PolyglotNode;
  const substitute = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(substitute);
    if (!value || typeof value !== 'object') return value;
    const column = (value as PolyglotNode).column;
    const m = column && !column.table && /^__pdb_(\d+)$/.exec(String(column.name?.name ?? ''));
    if (m) return args[Number(m[1])];
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v)]));
  };
  return substitute(node) as PolyglotNode;
}

/**
 * Rewrite, in the source dialect, constructs whose translation would differ, into ones whose
 * translation does not: CONCAT where it is NULL on a NULL argument becomes a CASE that says
 * so around DuckDB's NULL-skipping CONCAT; Oracle's `a || b` (NULL concatenates as the empty
 * string, and an empty result is NULL) becomes NULLIF(CONCAT(a, b), ''); DATE_ADD/DATE_SUB
 * where they always answer a DATE are cast to DATE; T-SQL's IIF and ClickHouse's toYear /
 * toMonth / ... (passed through as functions DuckDB lacks) become CASE and EXTRACT, and
 * Presto/Trino's array_join becomes array_to_string with its NULL handling. Returns
 * whether anything changed.
 */
export function rewriteSource(statement: PolyglotNode, from: string, parse: Parse): boolean {
  let changed = false;
  const walk = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(walk);
    if (!value || typeof value !== 'object') return value;
    const node = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v)])) as PolyglotNode;
    const fn = node.function;
    if (CONCAT_PROPAGATES_NULL.has(from) && fn && String(fn.name).toUpperCase() === 'CONCAT' && Array.isArray(fn.args) && fn.args.length > 0) {
      const args = fn.args as PolyglotNode[];
      if (args.every((a) => a.literal)) return node;
      const refs = args.map((_, i) => `__pdb_${i}`);
      changed = true;
      return template(parse, from, `CASE WHEN ${refs.map((r) => `${r} IS NULL`).join(' OR ')} THEN NULL ELSE CONCAT(${refs.join(', ')}) END`, args);
    }
    if (DATE_ADD_IS_DATE.has(from) && fn && /^DATE_(ADD|SUB)$/i.test(String(fn.name)) && Array.isArray(fn.args) && fn.args.length === 2) {
      changed = true;
      return template(parse, from, 'CAST(__pdb_0 AS DATE)', [node]);
    }
    // T-SQL's IIF(condition, then, else), which the translator passes through and DuckDB lacks.
    const iif = node.if_func;
    if (IIF_DIALECTS.has(from) && iif && String(iif.original_name).toUpperCase() === 'IIF' && iif.condition && iif.true_value) {
      changed = true;
      return template(parse, from, 'CASE WHEN __pdb_0 THEN __pdb_1 ELSE __pdb_2 END', [iif.condition, iif.true_value, iif.false_value ?? { null: {} }]);
    }
    // ClickHouse's date part functions, passed through as names DuckDB lacks.
    const part = from === 'clickhouse' && fn && Array.isArray(fn.args) && fn.args.length === 1 ? CLICKHOUSE_DATE_PARTS[String(fn.name).toUpperCase()] : undefined;
    if (part) {
      changed = true;
      return template(parse, from, `EXTRACT(${part} FROM __pdb_0)`, fn.args as PolyglotNode[]);
    }
    // Presto/Trino's array_join, passed through as a name DuckDB lacks.
    const joinTemplate = ARRAY_JOIN_DIALECTS.has(from) && fn && String(fn.name).toUpperCase() === 'ARRAY_JOIN' && Array.isArray(fn.args) ? ARRAY_JOIN_TEMPLATES[fn.args.length] : undefined;
    if (joinTemplate) {
      changed = true;
      return template(parse, from, joinTemplate, fn.args as PolyglotNode[]);
    }
    if (from === 'oracle' && node.concat && node.concat.left && node.concat.right) {
      changed = true;
      return template(parse, from, "NULLIF(CONCAT(__pdb_0, __pdb_1), '')", [node.concat.left, node.concat.right]);
    }
    return node;
  };
  const rewritten = walk(statement) as PolyglotNode;
  if (changed) for (const key of Object.keys(statement)) statement[key] = rewritten[key];
  return changed;
}
