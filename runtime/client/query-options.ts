// The Node library's query options (lib/puffindb.d.ts QueryOptions): what query(), stream()
// and explain() take after the text, either a bare parameter list or {params, language,
// dialect}. Checked here alike for open() and connect(), with the API's messages.

import { PuffinError } from '../errors.ts';
import { QUERY_LANGUAGES, sqlDialect, type QueryLanguage } from '../sql/frontends.ts';
import type { Param, QueryOptions } from '../../lib/puffindb.js';

export interface QueryArgs {
  params?: readonly unknown[];
  /** Absent for DuckDB SQL. */
  language?: QueryLanguage;
  dialect?: string;
  /** The text is DuckDB SQL as it is (no front end to run). */
  duckdb: boolean;
}

/** The options of one call, checked: a language among QUERY_LANGUAGES, params with DuckDB SQL only. */
export function queryArgs(arg: readonly Param[] | QueryOptions | undefined): QueryArgs {
  if (arg === undefined || Array.isArray(arg)) return { params: arg as readonly unknown[] | undefined, duckdb: true };
  if (typeof arg !== 'object' || arg === null) throw new PuffinError('bad_request', 'the second argument must be an array of parameters or options {params, language, dialect}');
  const { params, language, dialect } = arg as QueryOptions;
  if (params !== undefined && !Array.isArray(params)) throw new PuffinError('bad_request', "'params' must be an array of values, one per $1, $2, ... or ?");
  if (language !== undefined && !(QUERY_LANGUAGES as readonly string[]).includes(language)) {
    throw new PuffinError('bad_request', `'language' must be one of ${QUERY_LANGUAGES.join(', ')}, got ${JSON.stringify(String(language).slice(0, 40))}`);
  }
  if (dialect !== undefined && typeof dialect !== 'string') throw new PuffinError('bad_request', "'dialect' must be a string");
  const duckdb = (language ?? 'sql') === 'sql' && (dialect === undefined || sqlDialect(dialect) === 'duckdb');
  if (params !== undefined && !duckdb) throw new PuffinError('bad_request', "'params' apply to DuckDB SQL only; put the values in the PRQL, Malloy or dialect text");
  return { params, duckdb, ...(language !== undefined && language !== 'sql' ? { language } : {}), ...(dialect !== undefined ? { dialect } : {}) };
}
