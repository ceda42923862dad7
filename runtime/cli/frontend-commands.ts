// The CLI's query front ends (runtime/sql/frontends.ts): `puffindb query --lang prql` and
// `--dialect snowflake` turn the text into DuckDB SQL before it runs, and `puffindb
// translate --from snowflake [--to duckdb] "SQL"` prints a translation without running it.

import { parseArgs } from 'node:util';
import { PuffinError } from '../errors.ts';
import { QUERY_LANGUAGES, sqlDialect, toDuckdbSql, translateSql, type QueryLanguage } from '../sql/frontends.ts';

export const FRONTEND_HELP = `  puffindb query --lang prql "from t | take 5"      PRQL, compiled to DuckDB SQL
  puffindb query --dialect snowflake "SELECT TOP 5 ..."   SQL of another dialect (postgresql, mysql, tsql, bigquery, ...), translated
  puffindb translate --from snowflake [--to duckdb] "SQL"   print the translation (one of --from/--to is duckdb)`;

/** The parseArgs options `query` and `explain` take for the front ends. */
export const FRONTEND_OPTIONS = { lang: { type: 'string' }, dialect: { type: 'string' } } as const;

/** The DuckDB SQL of the command's text, given its --lang and --dialect. */
export async function duckdbText(text: string, values: { lang?: unknown; dialect?: unknown }): Promise<string> {
  const lang = values.lang === undefined ? 'sql' : String(values.lang);
  if (!(QUERY_LANGUAGES as readonly string[]).includes(lang)) throw new PuffinError('bad_request', `--lang must be one of ${QUERY_LANGUAGES.join(', ')}, got '${lang}'`);
  const dialect = values.dialect === undefined ? undefined : String(values.dialect);
  return (await toDuckdbSql({ text, language: lang as QueryLanguage, dialect })).sql;
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
