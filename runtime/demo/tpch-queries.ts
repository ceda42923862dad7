// The 22 TPC-H queries in DuckDB syntax with the specification's validation parameters
// (the text DuckDB's tpch extension ships), read from test/fixtures/tpch/qNN.sql so the
// benchmark, the demo and the differential tests all run the same text.

import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { PuffinError } from '../errors.ts';

const QUERY_DIR = fileURLToPath(new URL('../../test/fixtures/tpch/', import.meta.url));

export interface TpchQuery {
  /** 'q01' ... 'q22'. */
  id: string;
  sql: string;
}

export async function loadTpchQueries(): Promise<TpchQuery[]> {
  let names: string[];
  try {
    names = (await readdir(QUERY_DIR)).filter((n) => /^q\d{2}\.sql$/.test(n)).sort();
  } catch (err) {
    throw new PuffinError('internal', `cannot read the TPC-H queries in ${QUERY_DIR}: ${(err as Error).message}`);
  }
  if (names.length !== 22) {
    throw new PuffinError('internal', `expected 22 TPC-H queries in ${QUERY_DIR}, found ${names.length}`);
  }
  return Promise.all(
    names.map(async (name) => ({ id: name.slice(0, -'.sql'.length), sql: (await readFile(`${QUERY_DIR}${name}`, 'utf8')).trim() })),
  );
}
