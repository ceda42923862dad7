// The statement a worker runs for a fragment: COPY (fragment query) TO a Parquet partial.
// The fragment's SQL is prepared first, which proves it is one query (not a COPY, ATTACH or
// several statements spliced together) and yields its result columns. Those columns
// matter because DuckDB's Parquet writer stores HUGEINT and UHUGEINT as DOUBLE, which would
// silently round partial sums; such columns travel as DECIMAL(38,0) instead (exact, and an
// overflow is an error rather than a wrong answer) and are cast back by the reduce view.

import type { DuckDBConnection } from '@duckdb/node-api';
import { StatementType } from '@duckdb/node-api';
import { PuffinError, toPuffinError } from '../errors.ts';
import { sqlIdent, sqlString } from '../sql/quote.ts';

const WIDE_INTEGER = /\bU?HUGEINT\b/;
const WIDE_INTEGERS = /\bU?HUGEINT\b/g;
const EXACT_IN_PARQUET = 'DECIMAL(38,0)';

/** Build the COPY statement for `sql`; throws a PuffinError when it is not a single query. */
export async function fragmentCopySql(conn: DuckDBConnection, sql: string, partialPath: string): Promise<string> {
  // A trailing ';' or line comment must not swallow the closing parenthesis of the COPY.
  const query = sql.replace(/[\s;]+$/, '');
  const columns = await queryColumns(conn, query);
  const target = `TO ${sqlString(partialPath)} (FORMAT parquet)`;
  if (!columns.some((c) => WIDE_INTEGER.test(c.type))) return `COPY (\n${query}\n) ${target}`;
  // Positional references (#n) keep duplicate column names apart.
  const select = columns
    .map((c, i) => {
      const exact = c.type.replace(WIDE_INTEGERS, EXACT_IN_PARQUET);
      const value = exact === c.type ? `#${i + 1}` : `CAST(#${i + 1} AS ${exact})`;
      return `${value} AS ${sqlIdent(c.name)}`;
    })
    .join(', ');
  return `COPY (SELECT ${select} FROM (\n${query}\n) AS fragment) ${target}`;
}

/**
 * The result columns of `query`, prepared on `conn`; throws a PuffinError unless it is one
 * query (SELECT ...) without parameters, so it can be spliced into a COPY.
 */
export async function queryColumns(conn: DuckDBConnection, query: string): Promise<{ name: string; type: string }[]> {
  let prepared;
  try {
    prepared = await conn.prepare(query);
  } catch (err) {
    throw toPuffinError(err);
  }
  try {
    if (prepared.statementType !== StatementType.SELECT) {
      throw new PuffinError('bad_request', `fragment SQL must be a query (SELECT ...), got a ${StatementType[prepared.statementType]} statement`);
    }
    if (prepared.parameterCount > 0) {
      throw new PuffinError('bad_request', `fragment SQL has ${prepared.parameterCount} unbound parameter(s)`);
    }
    return Array.from({ length: prepared.columnCount }, (_, i) => ({
      name: prepared.columnName(i),
      type: prepared.columnType(i).toString(),
    }));
  } finally {
    prepared.destroySync();
  }
}
