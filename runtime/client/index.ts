// The Node library, `import { open, connect } from 'puffindb'` (lib/puffindb.js loads this
// file through tsx). Its public types are lib/puffindb.d.ts: the exports below are checked
// against them, so the declarations shipped cannot drift from what runs. Each front end is
// loaded on first use: connect() does not load the engine, catalog and planner.

import type * as Api from '../../lib/puffindb.js';
import { PuffinError as RuntimeError } from '../errors.ts';

export const open: typeof Api.open = async (options) => (await import('./embedded.ts')).open(options);
export const connect: typeof Api.connect = async (options) => (await import('./remote.ts')).connect(options);
export const PuffinError: typeof Api.PuffinError = RuntimeError;
export const translate: typeof Api.translate = async (sql, options) => (await import('./syntax.ts')).translate(sql, options);
export const compilePrql: typeof Api.compilePrql = async (prql) => (await import('./syntax.ts')).compilePrql(prql);
export const parse: typeof Api.parse = async (sql, options) => (await import('./syntax.ts')).parse(sql, options);
export const format: typeof Api.format = async (ast, options) => (await import('./syntax.ts')).format(ast, options);
