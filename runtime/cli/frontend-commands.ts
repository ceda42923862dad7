// The CLI's query front ends (runtime/sql/frontends.ts): `puffindb query --lang prql` and
// `--dialect snowflake` turn the text into DuckDB SQL before it runs, and `puffindb
// translate --from snowflake [--to duckdb] "SQL"` prints a translation without running it.

import { parseArgs } from 'node:util';
import { PuffinError } from '../errors.ts';
import { QUERY_LANGUAGES, sqlDialect, toDuckdbSql, translateSql, type QueryLanguage } from '../sql/frontends.ts';
import { catalogTables, type MalloyTables } from '../sql/malloy.ts';
import type { Catalog } from '../catalog/types.ts';

export const FRONTEND_HELP = `  puffindb query --lang prql "from t | take 5"      PRQL, compiled to DuckDB SQL
  puffindb query --lang malloy "run: t -> { group_by: a; aggregate: n is count() }"   Malloy, compiled against the catalog's tables
  puffindb query --dialect snowflake "SELECT TOP 5 ..."   SQL of another dialect (postgresql, mysql, tsql, bigquery, ...), translated
  puffindb translate --from snowflake [--to duckdb] "SQL"   print the translation (one of --from/--to is duckdb)`;

/** The parseArgs options `query` and `explain` take for the front ends. */
export const FRONTEND_OPTIONS = { lang: { type: 'string' }, dialect: { type: 'string' } } as const;

/** The DuckDB SQL of the command's text, given its --lang and --dialect (--lang malloy compiles against `tables`). */
export async function duckdbText(text: string, values: { lang?: unknown; dialect?: unknown }, tables?: MalloyTables): Promise<string> {
  const lang = values.lang === undefined ? 'sql' : String(values.lang);
  if (!(QUERY_LANGUAGES as readonly string[]).includes(lang)) throw new PuffinError('bad_request', `--lang must be one of ${QUERY_LANGUAGES.join(', ')}, got '${lang}'`);
  const dialect = values.dialect === undefined ? undefined : String(values.dialect);
  return (await toDuckdbSql({ text, language: lang as QueryLanguage, dialect, tables })).sql;
}

/** --lang malloy: the text compiles against the warehouse's tables, once it is open. */
export function needsCatalog(values: { lang?: unknown }): boolean {
  return values.lang === 'malloy';
}

/** A local warehouse's tables and views, as the CLI's queries (role admin) see them. */
export async function warehouseTables(catalog: Catalog): Promise<MalloyTables> {
  const { withViewTables } = await import('../exec/view-statements.ts');
  return catalogTables(withViewTables(catalog), 'admin');
}

/** `puffindb translate --from D [--to D] "SQL"`. */
export async function runTranslate(args: string[], out: (s: string) => void): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { from: { type: 'string' }, to: { type: 'string', default: 'duckdb' } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new PuffinError('bad_request', `${(err as Error).message}; usage: puffindb translate --from snowflake [--to duckdb] "SQL"`);
  }
  const { values, positionals } = parsed;
  if (values.from === undefined || positionals.length !== 1) throw new PuffinError('bad_request', 'usage: puffindb translate --from snowflake [--to duckdb] "SQL" (one SQL argument in quotes)');
  out(await translateSql(positionals[0], sqlDialect(values.from, '--from'), sqlDialect(values.to ?? 'duckdb', '--to')));
}
