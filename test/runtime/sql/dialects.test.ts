// SQL dialects translated to DuckDB (runtime/sql/frontends.ts): for each dialect, real
// queries of that dialect (its date and string functions, TOP/LIMIT, quoting, casts,
// IFNULL/NVL, QUALIFY, ...) are translated and run over a small table, and the answer is
// compared with the answer of a DuckDB query written by hand. Constructs the translator
// would change in meaning are refused with a 400 naming them, and the rewrites that keep
// their meaning (CONCAT's NULLs, Oracle's ||) are checked the same way. DuckDB to a target
// dialect is checked on the text, since no other engine runs here.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { PuffinError } from '../../../runtime/errors.ts';
import { compilePrql, sqlDialect, toDuckdbSql, translateSql, type SqlDialect } from '../../../runtime/sql/frontends.ts';
import { duckdbText, runTranslate } from '../../../runtime/cli/frontend-commands.ts';
import * as library from '../../../runtime/client/index.ts';

let db: DuckDBInstance;
let conn: DuckDBConnection;

before(async () => {
  db = await DuckDBInstance.create(':memory:');
  conn = await db.connect();
  await conn.run(`CREATE TABLE t AS SELECT * FROM (VALUES
    (1, 'Alice', 'x', DATE '2024-01-07', 10.5, 1),
    (2, 'bob', NULL, DATE '2024-02-29', NULL, 1),
    (3, 'Carol', 'z', DATE '2023-12-31', 3.25, 2),
    (4, 'dave', 'w', DATE '2024-03-15', 7.0, 2)
  ) v(id, name, tag, d, x, g)`);
  await conn.run('ALTER TABLE t ALTER x TYPE DOUBLE');
});
after(() => {
  conn.closeSync();
  db.closeSync();
});

async function rows(sql: string): Promise<unknown> {
  return (await conn.runAndReadAll(sql)).getRowsJson();
}

/** Each dialect's queries, with the DuckDB query that means the same, written by hand. */
const CASES: Record<string, [source: string, duckdb: string][]> = {
  postgresql: [
    ["SELECT id, COALESCE(tag, 'none') AS tag, name::text || '!' AS n FROM t ORDER BY id LIMIT 2 OFFSET 1", "SELECT id, coalesce(tag, 'none'), name || '!' FROM t ORDER BY id LIMIT 2 OFFSET 1"],
    ["SELECT EXTRACT(YEAR FROM d) AS y, DATE_TRUNC('month', d)::date AS m, d + INTERVAL '1 day' AS next FROM t ORDER BY id", "SELECT year(d), date_trunc('month', d)::DATE, d + INTERVAL 1 DAY FROM t ORDER BY id"],
    ["SELECT UPPER(name), LENGTH(name), SUBSTRING(name FROM 2 FOR 3), POSITION('a' IN name) FROM t ORDER BY id", 'SELECT upper(name), length(name), substr(name, 2, 3), strpos(name, \'a\') FROM t ORDER BY id'],
    ['SELECT g, COUNT(*) FILTER (WHERE x > 5) AS big, STRING_AGG(name, \',\' ORDER BY name) FROM t GROUP BY g ORDER BY g', "SELECT g, count(*) FILTER (WHERE x > 5), string_agg(name, ',' ORDER BY name) FROM t GROUP BY g ORDER BY g"],
  ],
  mysql: [
    ["SELECT `id`, IFNULL(tag, 'none'), CONCAT(name, '-', tag) FROM t ORDER BY id LIMIT 1, 2", "SELECT id, coalesce(tag, 'none'), name || '-' || tag FROM t ORDER BY id LIMIT 2 OFFSET 1"],
    ["SELECT DATE_FORMAT(d, '%Y-%m'), YEAR(d), DATEDIFF(d, '2024-01-01'), DATE_ADD(d, INTERVAL 1 DAY) FROM t ORDER BY id", "SELECT strftime(d, '%Y-%m'), year(d), date_diff('day', DATE '2024-01-01', d), d + INTERVAL 1 DAY FROM t ORDER BY id"],
    ["SELECT UPPER(name), CHAR_LENGTH(name), LEFT(name, 2), CAST(id AS CHAR) FROM t ORDER BY id", 'SELECT upper(name), length(name), left(name, 2), CAST(id AS VARCHAR) FROM t ORDER BY id'],
    ['SELECT g, SUM(x), 7 DIV 2 FROM t GROUP BY g ORDER BY g', 'SELECT g, sum(x), 3 FROM t GROUP BY g ORDER BY g'],
  ],
  sqlite: [
    ["SELECT id, ifnull(tag, 'none'), substr(name, 2), strftime('%Y', d) FROM t ORDER BY id LIMIT 2 OFFSET 1", "SELECT id, coalesce(tag, 'none'), substr(name, 2), strftime(d, '%Y') FROM t ORDER BY id LIMIT 2 OFFSET 1"],
    ["SELECT \"name\" || '?' , length(name), upper(name), CAST(id AS TEXT) FROM t ORDER BY id", "SELECT name || '?', length(name), upper(name), CAST(id AS VARCHAR) FROM t ORDER BY id"],
  ],
  snowflake: [
    ["SELECT TOP 2 id, NVL(tag, 'none'), IFF(x > 5, 'big', 'small'), \"NAME\" FROM t ORDER BY id", "SELECT id, coalesce(tag, 'none'), CASE WHEN x > 5 THEN 'big' ELSE 'small' END, name FROM t ORDER BY id LIMIT 2"],
    ['SELECT g, name FROM t QUALIFY ROW_NUMBER() OVER (PARTITION BY g ORDER BY id DESC) = 1 ORDER BY g', 'SELECT g, name FROM t QUALIFY row_number() OVER (PARTITION BY g ORDER BY id DESC) = 1 ORDER BY g'],
    ["SELECT DATEADD(day, 1, d)::DATE, DATEDIFF(day, '2024-01-01'::DATE, d), YEAR(d), id::VARCHAR, name::VARCHAR FROM t ORDER BY id", "SELECT d + 1, date_diff('day', DATE '2024-01-01', d), year(d), CAST(id AS VARCHAR), name FROM t ORDER BY id"],
    ["SELECT CONCAT(name, tag), SPLIT_PART('a,b,c', ',', 2), LEFT(name, 2) FROM t ORDER BY id", "SELECT name || tag, 'b', left(name, 2) FROM t ORDER BY id"],
  ],
  bigquery: [
    ["SELECT id, IFNULL(tag, 'none'), SAFE_CAST(id AS STRING), `name` FROM t ORDER BY id LIMIT 3", "SELECT id, coalesce(tag, 'none'), CAST(id AS VARCHAR), name FROM t ORDER BY id LIMIT 3"],
    ["SELECT DATE_ADD(d, INTERVAL 1 DAY), DATE_DIFF(d, DATE '2024-01-01', DAY), FORMAT_DATE('%Y/%m', d), EXTRACT(MONTH FROM d) FROM t ORDER BY id", "SELECT d + 1, date_diff('day', DATE '2024-01-01', d), strftime(d, '%Y/%m'), month(d) FROM t ORDER BY id"],
    ['SELECT g, name FROM t WHERE true QUALIFY ROW_NUMBER() OVER (PARTITION BY g ORDER BY x) = 1 ORDER BY g', 'SELECT g, name FROM t QUALIFY row_number() OVER (PARTITION BY g ORDER BY x NULLS FIRST) = 1 ORDER BY g'],
  ],
  redshift: [
    ["SELECT TOP 2 id, NVL(tag, 'none'), DATEADD(day, 1, d) FROM t ORDER BY id", "SELECT id, coalesce(tag, 'none'), d + INTERVAL 1 DAY FROM t ORDER BY id LIMIT 2"],
    ["SELECT DATEDIFF(day, '2024-01-01', d), LEN(name), UPPER(name), id::VARCHAR FROM t ORDER BY id", "SELECT date_diff('day', DATE '2024-01-01', d), length(name), upper(name), CAST(id AS VARCHAR) FROM t ORDER BY id"],
  ],
  trino: [
    ["SELECT id, COALESCE(tag, 'none'), date_add('day', 1, d), date_diff('day', DATE '2024-01-01', d) FROM t ORDER BY id LIMIT 2", "SELECT id, coalesce(tag, 'none'), d + INTERVAL 1 DAY, date_diff('day', DATE '2024-01-01', d) FROM t ORDER BY id LIMIT 2"],
    ["SELECT day_of_week(d), CAST(id AS VARCHAR), upper(name), try_cast('x' AS INTEGER), concat(name, tag) FROM t ORDER BY id", "SELECT isodow(d), CAST(id AS VARCHAR), upper(name), NULL::INTEGER, name || tag FROM t ORDER BY id"],
    // array_join skips NULL elements (an array of only NULLs joins to ''), or replaces them.
    ["SELECT id, array_join(ARRAY[name, tag], '-'), array_join(ARRAY[tag, tag], ','), array_join(ARRAY[name, tag], '/', '?') FROM t ORDER BY id", "SELECT id, CASE WHEN tag IS NULL THEN name ELSE name || '-' || tag END, coalesce(tag || ',' || tag, ''), name || '/' || coalesce(tag, '?') FROM t ORDER BY id"],
  ],
  presto: [
    ["SELECT id, date_format(d, '%Y-%m'), length(name), CAST(x AS INTEGER) FROM t ORDER BY id", "SELECT id, strftime(d, '%Y-%m'), length(name), CAST(x AS INTEGER) FROM t ORDER BY id"],
    ["SELECT id, coalesce(tag, 'none'), upper(name), substr(name, 2, 2), \"name\" FROM t ORDER BY id LIMIT 2", "SELECT id, coalesce(tag, 'none'), upper(name), substr(name, 2, 2), name FROM t ORDER BY id LIMIT 2"],
    ["SELECT year(d), date_trunc('month', d), date_diff('day', DATE '2024-01-01', d), CAST(id AS VARCHAR) FROM t ORDER BY id", "SELECT year(d), date_trunc('month', d), date_diff('day', DATE '2024-01-01', d), CAST(id AS VARCHAR) FROM t ORDER BY id"],
    // array_join of non-strings, with a NULL replacement; a NULL array, delimiter or replacement is NULL.
    ["SELECT id, array_join(ARRAY[id, g], '+', 'none'), array_join(ARRAY[x, NULL], ';', 'NA'), array_join(ARRAY[name], CAST(NULL AS VARCHAR)), array_join(CAST(NULL AS ARRAY(VARCHAR)), ','), array_join(ARRAY[tag], ',', CAST(NULL AS VARCHAR)) FROM t ORDER BY id", "SELECT id, id || '+' || g, coalesce(CAST(x AS VARCHAR), 'NA') || ';NA', NULL, NULL, NULL FROM t ORDER BY id"],
  ],
  athena: [
    ["SELECT id, coalesce(tag, '-'), date_add('month', 1, d), year(d) FROM t ORDER BY id LIMIT 3", "SELECT id, coalesce(tag, '-'), d + INTERVAL 1 MONTH, year(d) FROM t ORDER BY id LIMIT 3"],
    ["SELECT \"id\", substr(name, 1, 2), upper(name), CAST(id AS VARCHAR), date_diff('day', DATE '2024-01-01', d) FROM t ORDER BY id", "SELECT id, substr(name, 1, 2), upper(name), CAST(id AS VARCHAR), date_diff('day', DATE '2024-01-01', d) FROM t ORDER BY id"],
    ["SELECT g, max_by(name, id), count(*) FROM t GROUP BY g ORDER BY g", "SELECT g, arg_max(name, id), count(*) FROM t GROUP BY g ORDER BY g"],
  ],
  spark: [
    ["SELECT `id`, nvl(tag, 'none'), datediff(d, DATE '2024-01-01'), date_format(d, 'yyyy-MM') FROM t ORDER BY id LIMIT 3", "SELECT id, coalesce(tag, 'none'), date_diff('day', DATE '2024-01-01', d), strftime(d, '%Y-%m') FROM t ORDER BY id LIMIT 3"],
    ['SELECT id, concat(name, tag), size(array(1, 2)), CAST(FLOOR(x) AS INT), CAST(ROUND(x) AS INT) FROM t ORDER BY id', 'SELECT id, name || tag, len([1, 2]), CAST(floor(x) AS INTEGER), CAST(round(x) AS INTEGER) FROM t ORDER BY id'],
  ],
  databricks: [
    ["SELECT id, ifnull(tag, 'none'), upper(name), CAST(id AS STRING) FROM t ORDER BY id LIMIT 2", "SELECT id, coalesce(tag, 'none'), upper(name), CAST(id AS VARCHAR) FROM t ORDER BY id LIMIT 2"],
    ['SELECT g, name FROM t QUALIFY row_number() OVER (PARTITION BY g ORDER BY id) = 1 ORDER BY g', 'SELECT g, name FROM t QUALIFY row_number() OVER (PARTITION BY g ORDER BY id) = 1 ORDER BY g'],
  ],
  hive: [
    ["SELECT id, nvl(tag, 'none'), year(d), date_format(d, 'yyyy'), length(name) FROM t ORDER BY id LIMIT 2", "SELECT id, coalesce(tag, 'none'), year(d), strftime(d, '%Y'), length(name) FROM t ORDER BY id LIMIT 2"],
    ["SELECT `id`, concat_ws('-', name, 'x'), substr(name, 2, 2), datediff(d, '2024-01-01'), CAST(id AS STRING), upper(name) FROM t ORDER BY id LIMIT 3", "SELECT id, concat_ws('-', name, 'x'), substr(name, 2, 2), date_diff('day', DATE '2024-01-01', d), CAST(id AS VARCHAR), upper(name) FROM t ORDER BY id LIMIT 3"],
  ],
  tsql: [
    ["SELECT TOP 2 [id], ISNULL(tag, 'none'), LEN(name), DATEADD(day, 1, d) FROM t ORDER BY id", "SELECT id, coalesce(tag, 'none'), length(name), d + INTERVAL 1 DAY FROM t ORDER BY id LIMIT 2"],
    ["SELECT DATEDIFF(day, '2024-01-01', d), YEAR(d), CAST(id AS VARCHAR(10)), CHARINDEX('a', name), UPPER(name) FROM t ORDER BY id", "SELECT date_diff('day', DATE '2024-01-01', d), year(d), CAST(id AS VARCHAR), strpos(name, 'a'), upper(name) FROM t ORDER BY id"],
    ['SELECT id FROM t ORDER BY id OFFSET 1 ROWS FETCH NEXT 2 ROWS ONLY', 'SELECT id FROM t ORDER BY id LIMIT 2 OFFSET 1'],
    ["SELECT id, IIF(x > 5, 'big', IIF(x IS NULL, 'none', 'small')) FROM t ORDER BY id", "SELECT id, CASE WHEN x > 5 THEN 'big' WHEN x IS NULL THEN 'none' ELSE 'small' END FROM t ORDER BY id"],
  ],
  oracle: [
    ["SELECT id, NVL(tag, 'none'), name || tag, SUBSTR(name, 2, 2), INSTR(name, 'a') FROM t ORDER BY id FETCH FIRST 3 ROWS ONLY", "SELECT id, coalesce(tag, 'none'), concat(name, tag), substr(name, 2, 2), strpos(name, 'a') FROM t ORDER BY id LIMIT 3"],
    ["SELECT DECODE(g, 1, 'one', 'other'), UPPER(name), CAST(id AS VARCHAR2(10)) FROM t ORDER BY id", "SELECT CASE WHEN g = 1 THEN 'one' ELSE 'other' END, upper(name), CAST(id AS VARCHAR) FROM t ORDER BY id"],
    ["SELECT EXTRACT(YEAR FROM d), UPPER(name), LENGTH(name), \"ID\" FROM t ORDER BY id", "SELECT year(d), upper(name), length(name), id FROM t ORDER BY id"],
  ],
  clickhouse: [
    ["SELECT id, ifNull(tag, 'none'), lower(name), CAST(id AS String) FROM t ORDER BY id LIMIT 2", "SELECT id, coalesce(tag, 'none'), lower(name), CAST(id AS VARCHAR) FROM t ORDER BY id LIMIT 2"],
    ['SELECT g, countIf(x > 5), sum(x) FROM t GROUP BY g ORDER BY g', 'SELECT g, count_if(x > 5), sum(x) FROM t GROUP BY g ORDER BY g'],
    ['SELECT id, toYear(d), toQuarter(d), toMonth(d), toDayOfMonth(d) FROM t ORDER BY id', 'SELECT id, year(d), quarter(d), month(d), day(d) FROM t ORDER BY id'],
  ],
  teradata: [
    ["SELECT TOP 2 id, COALESCE(tag, 'none'), UPPER(name) FROM t ORDER BY id", "SELECT id, coalesce(tag, 'none'), upper(name) FROM t ORDER BY id LIMIT 2"],
    ["SELECT id, name || '!', CAST(id AS VARCHAR(10)), EXTRACT(YEAR FROM d) FROM t ORDER BY id", "SELECT id, name || '!', CAST(id AS VARCHAR), year(d) FROM t ORDER BY id"],
    ["SELECT g, name FROM t QUALIFY ROW_NUMBER() OVER (PARTITION BY g ORDER BY id) = 1 ORDER BY g", "SELECT g, name FROM t QUALIFY row_number() OVER (PARTITION BY g ORDER BY id) = 1 ORDER BY g"],
  ],
  cockroachdb: [
    ["SELECT id, COALESCE(tag, 'none'), name::STRING FROM t ORDER BY id LIMIT 2", "SELECT id, coalesce(tag, 'none'), name FROM t ORDER BY id LIMIT 2"],
    ["SELECT id, EXTRACT(YEAR FROM d), d + INTERVAL '1 day', upper(name), \"name\" FROM t ORDER BY id LIMIT 2 OFFSET 1", "SELECT id, year(d), d + INTERVAL 1 DAY, upper(name), name FROM t ORDER BY id LIMIT 2 OFFSET 1"],
  ],
  doris: [
    ["SELECT id, IFNULL(tag, 'none'), DATE_FORMAT(d, '%Y') FROM t ORDER BY id LIMIT 2", "SELECT id, coalesce(tag, 'none'), strftime(d, '%Y') FROM t ORDER BY id LIMIT 2"],
    ["SELECT `id`, CONCAT_WS('-', name, 'x'), DATEDIFF(d, '2024-01-01'), CAST(id AS CHAR), UPPER(name) FROM t ORDER BY id LIMIT 2", "SELECT id, concat_ws('-', name, 'x'), date_diff('day', DATE '2024-01-01', d), CAST(id AS VARCHAR), upper(name) FROM t ORDER BY id LIMIT 2"],
  ],
  starrocks: [
    ["SELECT `id`, IFNULL(tag, 'none'), UPPER(name) FROM t ORDER BY id LIMIT 1, 2", "SELECT id, coalesce(tag, 'none'), upper(name) FROM t ORDER BY id LIMIT 2 OFFSET 1"],
    ["SELECT YEAR(d), DATE_FORMAT(d, '%Y-%m'), LENGTH(name), SUBSTR(name, 1, 2) FROM t ORDER BY id", "SELECT year(d), strftime(d, '%Y-%m'), length(name), substr(name, 1, 2) FROM t ORDER BY id"],
  ],
  singlestore: [
    ["SELECT id, IFNULL(tag, 'none'), CONCAT(name, tag) FROM t ORDER BY id LIMIT 3", "SELECT id, coalesce(tag, 'none'), name || tag FROM t ORDER BY id LIMIT 3"],
    ["SELECT `id`, DATE_FORMAT(d, '%Y'), UPPER(name), CAST(id AS CHAR), IFNULL(x, 0) FROM t ORDER BY id LIMIT 2", "SELECT id, strftime(d, '%Y'), upper(name), CAST(id AS VARCHAR), coalesce(x, 0) FROM t ORDER BY id LIMIT 2"],
  ],
  tidb: [
    ["SELECT id, IFNULL(tag, 'none'), YEAR(d) FROM t ORDER BY id LIMIT 2", "SELECT id, coalesce(tag, 'none'), year(d) FROM t ORDER BY id LIMIT 2"],
    ["SELECT `id`, DATE_FORMAT(d, '%Y-%m'), LEFT(name, 2), DATEDIFF(d, '2024-01-01'), CAST(id AS CHAR) FROM t ORDER BY id LIMIT 1, 2", "SELECT id, strftime(d, '%Y-%m'), left(name, 2), date_diff('day', DATE '2024-01-01', d), CAST(id AS VARCHAR) FROM t ORDER BY id LIMIT 2 OFFSET 1"],
  ],
};

describe('dialect to DuckDB: the answer of the translation is the answer of the hand-written DuckDB query', () => {
  for (const [dialect, cases] of Object.entries(CASES)) {
    test(dialect, async () => {
      for (const [source, duckdb] of cases) {
        const translated = await translateSql(source, dialect as SqlDialect, 'duckdb');
        assert.deepEqual(await rows(translated), await rows(duckdb), `${dialect}: ${source}\n  translated: ${translated}`);
      }
    });
  }
  test('at least 19 dialects are covered', () => {
    assert.ok(Object.keys(CASES).length >= 19, `${Object.keys(CASES).length} dialects`);
  });
});

describe('constructs that would change meaning', () => {
  const REFUSED: [SqlDialect, string, RegExp][] = [
    ['postgresql', 'SELECT id / 2 FROM t', /^'\/' cannot be translated.*PostgreSQL divides two integers/],
    ['tsql', 'SELECT SUM(id) / COUNT(*) FROM t', /^'\/'/],
    ['sqlite', 'SELECT 7 / 2', /^'\/'/],
    ['presto', 'SELECT 7 / 2', /^'\/'/],
    ['mysql', 'SELECT DAYOFWEEK(d) FROM t', /day of the week/],
    ['bigquery', 'SELECT EXTRACT(DAYOFWEEK FROM d) FROM t', /day of the week/],
    ['tsql', 'SELECT DATEPART(weekday, d) FROM t', /day of the week/],
    ['spark', 'SELECT dayofweek(d) FROM t', /day of the week/],
    ['oracle', "SELECT TO_CHAR(d, 'YYYY-MM') FROM t", /date format 'YYYY-MM'/],
    ['snowflake', "SELECT TO_CHAR(d, 'YYYY-MM') FROM t", /date format/],
    ['tsql', "SELECT FORMAT(d, 'yyyy-MM') FROM t", /^FORMAT\(\)/],
    ['mysql', 'SELECT CONCAT(name, tag), 7 DIV 2 FROM t', /^CONCAT, \|\| or DATE_ADD/],
    ['spark', 'SELECT CAST(x AS INT) FROM t', /^CAST to an integer type .*Spark SQL truncates/],
    ['tsql', 'SELECT CAST(x AS BIGINT) FROM t', /^CAST to an integer type/],
    ['clickhouse', 'SELECT CAST(x AS Int32) FROM t', /^CAST to an integer type/],
  ];
  for (const [dialect, sql, message] of REFUSED) {
    test(`${dialect}: ${sql}`, async () => {
      await assert.rejects(translateSql(sql, dialect, 'duckdb'), (err: unknown) => {
        assert.ok(err instanceof PuffinError && err.httpStatus === 400, String(err));
        assert.match(err.message, message);
        assert.ok(typeof err.details?.construct === 'string');
        return true;
      });
    });
  }

  test('fractional division, and the same integer division in DuckDB SQL, run', async () => {
    assert.deepEqual(await rows(await translateSql('SELECT id / 2.0, CAST(id AS DECIMAL(10, 2)) / 2 FROM t ORDER BY id', 'postgresql', 'duckdb')), await rows('SELECT id / 2.0, CAST(id AS DECIMAL(10, 2)) / 2 FROM t ORDER BY id'));
  });

  test("CONCAT is NULL on a NULL argument where the dialect says so, and Oracle's || treats NULL as ''", async () => {
    const mysql = await translateSql("SELECT CONCAT(name, tag), CONCAT('a', 'b') FROM t ORDER BY id", 'mysql', 'duckdb');
    assert.deepEqual(await rows(mysql), [['Alicex', 'ab'], [null, 'ab'], ['Carolz', 'ab'], ['davew', 'ab']]);
    const oracle = await translateSql("SELECT name || tag, tag || NULL, NULL || NULL FROM t ORDER BY id", 'oracle', 'duckdb');
    assert.deepEqual(await rows(oracle), [['Alicex', 'x', null], ['bob', null, null], ['Carolz', 'z', null], ['davew', 'w', null]]);
    // PostgreSQL's CONCAT skips NULLs like DuckDB's: left as it is.
    assert.equal(await translateSql('SELECT CONCAT(name, tag) FROM t', 'postgresql', 'duckdb'), 'SELECT CONCAT(name, tag) FROM t');
  });

  test('text that is not one statement of the dialect is a 400 with the position', async () => {
    await assert.rejects(translateSql('SELEC 1', 'postgresql', 'duckdb'), /could not be read: .*line 1, column/);
    await assert.rejects(translateSql('SELECT 1; DROP TABLE t', 'snowflake', 'duckdb'), /send one SQL statement per request; this text holds 2/);
    await assert.rejects(translateSql('', 'snowflake', 'duckdb'), /empty/);
  });
});

describe('DuckDB to a dialect', () => {
  test('LIMIT becomes TOP, quoting and functions follow the target', async () => {
    assert.equal(await translateSql('SELECT "a b", coalesce(x, 0) FROM t LIMIT 3', 'duckdb', 'tsql'), 'SELECT TOP 3 [a b], ISNULL(x, 0) FROM t');
    assert.equal(await translateSql('SELECT "a b" FROM t LIMIT 3', 'duckdb', 'mysql'), 'SELECT `a b` FROM t LIMIT 3');
  });
  test('QUALIFY with LIMIT is refused for a target without QUALIFY, kept for one with it', async () => {
    await assert.rejects(translateSql('SELECT id FROM t QUALIFY row_number() OVER (ORDER BY id) = 1 LIMIT 3', 'duckdb', 'tsql'), /^Error: QUALIFY with LIMIT|QUALIFY with LIMIT cannot be translated/);
    assert.match(await translateSql('SELECT id FROM t QUALIFY row_number() OVER (ORDER BY id) = 1 LIMIT 3', 'duckdb', 'snowflake'), /QUALIFY .* LIMIT 3/);
  });
  test('DATE_ADD stays a DATE where the dialect says so (Spark, Hive, Databricks, BigQuery)', async () => {
    for (const [dialect, sql] of [['spark', 'SELECT date_add(d, 1), date_sub(d, 1) FROM t WHERE id = 1'], ['hive', 'SELECT date_add(d, 1), date_sub(d, 1) FROM t WHERE id = 1'], ['bigquery', 'SELECT DATE_ADD(d, INTERVAL 1 DAY), DATE_SUB(d, INTERVAL 1 DAY) FROM t WHERE id = 1']] as const) {
      assert.deepEqual(await rows(await translateSql(sql, dialect, 'duckdb')), [['2024-01-08', '2024-01-06']], dialect);
    }
  });
  test('known difference (documented): Snowflake DATEADD on a DATE answers a TIMESTAMP at midnight', async () => {
    const translated = await translateSql('SELECT DATEADD(day, 1, d) FROM t WHERE id = 1', 'snowflake', 'duckdb');
    assert.deepEqual(await rows(translated), [['2024-01-08 00:00:00']]);
  });
  test('neither side DuckDB is refused', async () => {
    await assert.rejects(translateSql('SELECT 1', 'mysql', 'tsql'), /translate from or to duckdb/);
  });
});

describe('names and PRQL', () => {
  test('dialect names take aliases and any case; unknown ones are a 400 listing the known ones', () => {
    assert.equal(sqlDialect('Postgres'), 'postgresql');
    assert.equal(sqlDialect('MSSQL'), 'tsql');
    assert.throws(() => sqlDialect('cobol'), /not a SQL dialect PuffinDB translates; use one of duckdb, postgresql/);
  });
  test('PRQL compiles to DuckDB SQL whose answer is the hand-written query\'s', async () => {
    const sql = await compilePrql('from t\nfilter g == 2\nderive {twice = x * 2}\nsort {-id}\nselect {id, name, twice}\ntake 1');
    assert.deepEqual(await rows(sql), await rows('SELECT id, name, x * 2 FROM t WHERE g = 2 ORDER BY id DESC LIMIT 1'));
    const grouped = await compilePrql('from t\ngroup {g} (aggregate {n = count this, total = sum x})\nsort g');
    assert.deepEqual(await rows(grouped), await rows('SELECT g, count(*), sum(x) FROM t GROUP BY g ORDER BY g'));
  });
  test('a PRQL error names the problem and its place; a prql target header cannot change the target', async () => {
    await assert.rejects(compilePrql('from t | dlete'), (err: unknown) => {
      assert.ok(err instanceof PuffinError && err.code === 'syntax_error');
      assert.match(err.message, /^PRQL: Unknown name `dlete` at line 1, column 10/);
      return true;
    });
    assert.match(await compilePrql('prql target:sql.mssql\nfrom t | take 2'), /LIMIT\s+2/);
  });
  test('a query that overflows a compiler is a 400, and the compiler still works for the next one', async () => {
    // 300 terms are enough to overflow prqlc's stack, which broke its instance for good before.
    await assert.rejects(compilePrql(`from t | derive {x = ${'1 + '.repeat(500)}1}`), /^PuffinError: PRQL: the compiler could not compile this query .*nested too deep or chains too many operators/);
    assert.match(await compilePrql('from t | take 1'), /LIMIT/);
    await assert.rejects(translateSql(`SELECT ${'1 + '.repeat(12_000)}1`, 'mysql', 'duckdb'), (err: unknown) => err instanceof PuffinError && err.httpStatus === 400);
    await assert.rejects(translateSql(`SELECT ${'('.repeat(600)}1${')'.repeat(600)}`, 'mysql', 'duckdb'), /NESTING_DEPTH_EXCEEDED/);
    assert.equal(await translateSql('SELECT IFNULL(a, 1)', 'mysql', 'duckdb'), 'SELECT COALESCE(a, 1)');
  });
  test("loading the translator leaves the process's fetch as it was: no file: URLs", async () => {
    await translateSql('SELECT 1', 'mysql', 'duckdb');
    await assert.rejects(fetch('file:///etc/hostname'));
  });
  test('toDuckdbSql keeps the source beside the SQL; DuckDB SQL passes through unchanged', async () => {
    assert.deepEqual(await toDuckdbSql({ text: 'SELECT 1' }), { sql: 'SELECT 1' });
    assert.deepEqual(await toDuckdbSql({ text: 'SELECT TOP 1 id FROM t', dialect: 'tsql' }), { sql: 'SELECT id FROM t LIMIT 1', source: { language: 'sql', dialect: 'tsql', text: 'SELECT TOP 1 id FROM t' } });
    await assert.rejects(toDuckdbSql({ text: 'from t', language: 'prql', dialect: 'mysql' }), /'dialect' applies to language 'sql' only/);
  });
});

// The CLI's front ends (runtime/cli/frontend-commands.ts) are tested here, in the process that
// has the translators loaded already: a file of their own paid for loading the WASM again.
describe('CLI: puffindb translate, --lang, --dialect', () => {
  async function translate(args: string[]): Promise<string[]> {
    const lines: string[] = [];
    await runTranslate(args, (s) => lines.push(s));
    return lines;
  }
  test("translate prints the DuckDB SQL, or a dialect's from DuckDB SQL", async () => {
    assert.deepEqual(await translate(['--from', 'snowflake', 'SELECT TOP 1 NVL(a, 0) FROM t']), ['SELECT COALESCE(a, 0) FROM t LIMIT 1']);
    assert.deepEqual(await translate(['--from', 'duckdb', '--to', 'mssql', 'SELECT a FROM t LIMIT 2']), ['SELECT TOP 2 a FROM t']);
  });
  test('translate refusals name the problem', async () => {
    await assert.rejects(translate(['SELECT 1']), /usage: puffindb translate --from/);
    await assert.rejects(translate(['--from', 'cobol', 'SELECT 1']), /'--from' "cobol" is not a SQL dialect/);
    await assert.rejects(translate(['--from', 'oracle', "SELECT TO_CHAR(d, 'YYYY') FROM t"]), /date format 'YYYY' cannot be translated/);
  });
  test('--lang and --dialect give the DuckDB SQL that query and explain run', async () => {
    assert.match(await duckdbText('from t | take 3', { lang: 'prql' }), /^SELECT\s+\*\s+FROM\s+t\s+LIMIT\s+3$/);
    assert.equal(await duckdbText('SELECT `a` FROM t LIMIT 1, 2', { dialect: 'mysql' }), 'SELECT "a" FROM t LIMIT 2 OFFSET 1');
    assert.equal(await duckdbText('SELECT 1', {}), 'SELECT 1');
    await assert.rejects(duckdbText('x', { lang: 'cobol' }), /--lang must be one of sql, prql, malloy/);
  });
});

// The Node library's exports of the same functions (runtime/client/syntax.ts), here for the
// same reason: the translators are loaded in this process already.
describe('library: translate, compilePrql, parse, format', () => {
  test('each answers what the API answers', async () => {
    assert.equal(await library.translate('SELECT TOP 2 ISNULL(x, 0) FROM t', { from: 'mssql' }), 'SELECT COALESCE(x, 0) FROM t LIMIT 2');
    assert.equal(await library.translate('SELECT x FROM t LIMIT 2', { from: 'duckdb', to: 'tsql' }), 'SELECT TOP 2 x FROM t');
    assert.match(await library.compilePrql('from t | take 1'), /LIMIT\s+1/);
    const { sql, ast } = await library.parse('from t | filter g == 1 | select {id}', { language: 'prql' });
    assert.deepEqual(await rows(await library.format(ast)), await rows(sql));
    await assert.rejects(library.translate("SELECT TO_CHAR(d, 'YYYY') FROM t", { from: 'oracle' }), (err: unknown) => err instanceof library.PuffinError && err.code === 'bad_request');
  });
});
