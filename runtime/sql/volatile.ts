// Which statements can give a different answer when run twice over the same tables: those
// that call a volatile function (random(), now(), nextval(), ...) or read a special value
// (current_date, current_user, ...). The result cache never keeps their answers.

import type { DuckDBConnection } from '@duckdb/node-api';
import type { Engine } from '../engine/engine.ts';
import type { AstNode } from './parse.ts';

/** Special SQL values that parse as column references but change from query to query. */
const VOLATILE_VALUES = ['current_date', 'current_time', 'current_timestamp', 'localtime', 'localtimestamp', 'current_user', 'session_user', 'current_query'];

/** Our own functions whose answer is not a function of the tables: curl() reads whatever a URL serves now. */
const VOLATILE_OWN_FUNCTIONS = ['curl'];

// DuckDB's function list is the same for every engine of one process: read it once.
let volatileNames: Promise<Set<string>> | undefined;

async function volatileFunctions(engine: Engine | DuckDBConnection): Promise<Set<string>> {
  const sql = `SELECT DISTINCT lower(function_name) FROM duckdb_functions() WHERE stability IN ('VOLATILE', 'CONSISTENT_WITHIN_QUERY')`;
  volatileNames ??= (async () => {
    const rows = 'instance' in engine ? (await engine.query(sql)).rows : (await engine.runAndReadAll(sql)).getRows();
    return new Set([...rows.map((row) => String(row[0])), ...VOLATILE_VALUES, ...VOLATILE_OWN_FUNCTIONS]);
  })();
  try {
    return await volatileNames;
  } catch (err) {
    volatileNames = undefined;
    throw err;
  }
}

function mentionsAny(node: unknown, names: Set<string>): boolean {
  if (Array.isArray(node)) return node.some((child) => mentionsAny(child, names));
  if (!node || typeof node !== 'object') return false;
  const n = node as AstNode;
  if (n.class === 'FUNCTION' && names.has(String(n.function_name).toLowerCase())) return true;
  if (n.class === 'COLUMN_REF' && Array.isArray(n.column_names) && n.column_names.length === 1 && VOLATILE_VALUES.includes(String(n.column_names[0]).toLowerCase())) return true;
  return Object.values(n).some((child) => mentionsAny(child, names));
}

/** True when the query node calls a volatile function or reads a special value anywhere. */
export async function mentionsVolatile(engine: Engine | DuckDBConnection, node: AstNode): Promise<boolean> {
  return mentionsAny(node, await volatileFunctions(engine));
}
