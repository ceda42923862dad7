// The library's front-end functions (lib/puffindb.d.ts): translate between SQL dialects,
// compile PRQL, parse to DuckDB's AST and print an AST back, without a warehouse or a
// server: the same code as POST /v1/translate, /v1/parse and /v1/format. Parsing uses one
// small DuckDB of its own, made on first use; nothing it is given is ever run.

import type * as Api from '../../lib/puffindb.js';
import { Engine } from '../engine/engine.ts';
import { formatAst, parseToAst } from '../sql/ast-api.ts';
import { compilePrql as compile, sqlDialect, toDuckdbSql, translateSql } from '../sql/frontends.ts';

let engine: Promise<Engine> | undefined;
const syntaxEngine = (): Promise<Engine> => (engine ??= Engine.create({ threads: 1 }));

export const translate: typeof Api.translate = (sql, options) => translateSql(sql, sqlDialect(options.from, 'from'), sqlDialect(options.to ?? 'duckdb', 'to'));

export const compilePrql: typeof Api.compilePrql = (prql) => compile(prql);

export const parse: typeof Api.parse = async (sql, options = {}) => {
  const front = await toDuckdbSql({ text: sql, language: options.language, dialect: options.dialect });
  return { sql: front.sql, ast: await parseToAst(await syntaxEngine(), front.sql) };
};

export const format: typeof Api.format = async (ast, options = {}) => formatAst(await syntaxEngine(), ast, options.pretty ?? true);
