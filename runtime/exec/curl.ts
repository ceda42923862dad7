// The curl() table function: `SELECT * FROM curl('https://host/path')` reads JSON, NDJSON,
// CSV or Parquet over HTTP(S) as rows (docs/ARCHITECTURE.md, "curl()").
//
// It is not a DuckDB function: before a SELECT is planned, LocalCluster replaces each
// curl('<url>') call by a materialized input (runtime/planner/materialize.ts). The coordinator
// fetches the URL once (runtime/exec/curl-fetch.ts: allowed prefixes, no redirect out of
// them, no link-local / metadata / unallowed loopback address, bounded size and time),
// converts the body to Parquet in a DuckDB of its own allowed only a scratch directory of
// this query, and stores the file under the shuffle prefix; the planner then reads it as a
// table named `__pdb_m...` like the result of a step, broadcast to or split across the
// fragments that read it. The files are deleted when the query ends. Only the rewritten SQL
// reaches the planner, whose own check refuses every table function that reads files.

import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Column, DataFile } from '../catalog/types.ts';
import { Engine } from '../engine/engine.ts';
import { PuffinError } from '../errors.ts';
import { baseTable } from '../planner/ast.ts';
import { tempName, type MaterializedInput } from '../planner/materialize.ts';
import type { FileRef } from '../planner/plan.ts';
import type { Settings } from '../settings.ts';
import { parseStatement, printNodes, visitNodes, type AstNode } from '../sql/parse.ts';
import { sqlString } from '../sql/quote.ts';
import { joinUrl, openStore } from '../storage/open.ts';
import { CURL_MAX_BYTES, CURL_TIMEOUT_MS, curlFetch, type Fetched, type Resolver } from './curl-fetch.ts';
import { storeOptionsOf } from './worker.ts';

/** A quick test before parsing: SQL that never says curl( has no curl() call. */
export function mayCallCurl(sql: string): boolean {
  return /\bcurl\s*\(/i.test(sql);
}

/** Every curl(...) table function node of a statement, with its URL (a constant string, else refused). */
function curlCalls(root: AstNode): { node: AstNode; url: string }[] {
  const out: { node: AstNode; url: string }[] = [];
  visitNodes(root, (node) => {
    if (node.type !== 'TABLE_FUNCTION' || 'class' in node || String(node.function?.function_name ?? '').toLowerCase() !== 'curl') return true;
    const schema = String(node.function?.schema ?? '').toLowerCase();
    const catalog = String(node.function?.catalog ?? '').toLowerCase();
    if ((schema && schema !== 'main') || catalog) return true;
    const args = (node.function?.children ?? []) as AstNode[];
    const arg = args[0];
    const constant = args.length === 1 && arg?.class === 'CONSTANT' && arg.value?.type?.id === 'VARCHAR' && !arg.value.is_null && typeof arg.value.value === 'string';
    if (!constant) throw new PuffinError('bad_request', "curl() takes one argument, a constant string URL: curl('https://host/path')");
    out.push({ node, url: arg.value.value as string });
    return false;
  });
  return out;
}

export interface CurlRewrite {
  /** The statement with each curl() call replaced by its temp table. */
  sql: string;
  /** The temp tables the planner reads (PlanOptions.temps). */
  temps: Map<string, MaterializedInput>;
  /** The stored files, deleted when the query ends. */
  files: FileRef[];
}

/**
 * The statement with its curl() calls replaced by table names (`__pdb_mc<salt>_<n>`, one per
 * distinct URL), and what each name stands for: `materialize` is called once per URL.
 * Returns undefined when the statement calls no curl().
 */
async function rewrite(engine: Engine, sql: string, materialize?: (url: string, name: string) => Promise<void>): Promise<{ sql: string; names: Map<string, string> } | undefined> {
  if (!mayCallCurl(sql)) return undefined;
  const root = (await parseStatement(engine, sql)).node;
  const calls = curlCalls(root);
  if (calls.length === 0) return undefined;
  const salt = `c${randomBytes(4).toString('hex')}`;
  const names = new Map<string, string>();
  for (const { url } of calls) if (!names.has(url)) names.set(url, tempName(salt, names.size + 1));
  // One at a time: each fetch is bounded, and their bodies are held until converted.
  if (materialize) for (const [url, name] of names) await materialize(url, name);
  for (const { node, url } of calls) {
    const replacement = { ...baseTable(names.get(url)!, String(node.alias || 'curl')), column_name_alias: node.column_name_alias ?? [] };
    for (const key of Object.keys(node)) delete node[key];
    Object.assign(node, replacement);
  }
  const [printed] = await printNodes(engine, [root]);
  return { sql: printed, names };
}

/** The statement as explain shows it before anything is fetched (fresh names: never a result-cache hit). */
export async function curlPlaceholderSql(engine: Engine, sql: string): Promise<{ sql: string; urls: string[] } | undefined> {
  const done = await rewrite(engine, sql);
  return done && { sql: done.sql, urls: [...done.names.keys()] };
}

export interface CurlContext {
  settings: Settings;
  /** The coordinator's engine (parses and prints only). */
  engine: Engine;
  queryId: string;
  deadline: number;
  signal?: AbortSignal;
  /** Tests: a resolver in place of DNS. */
  resolve?: Resolver;
}

/**
 * Fetch and store every curl() the statement calls; the rewritten SQL and its temps.
 * undefined when it calls none. On failure the files stored so far are deleted.
 */
export async function materializeCurl(ctx: CurlContext, sql: string, discard: (files: FileRef[]) => Promise<void>): Promise<CurlRewrite | undefined> {
  const temps = new Map<string, MaterializedInput>();
  const files: FileRef[] = [];
  try {
    const done = await rewrite(ctx.engine, sql, async (url, name) => {
      const remaining = ctx.deadline - Date.now();
      if (remaining <= 0) throw new PuffinError('timeout', `query ${ctx.queryId} passed its deadline before curl() fetched ${url}`);
      const fetched = await curlFetch(url, { allow: ctx.settings.curlAllow, timeoutMs: Math.min(remaining, ctx.settings.curlTimeoutMs ?? CURL_TIMEOUT_MS), maxBytes: ctx.settings.curlMaxBytes ?? CURL_MAX_BYTES, signal: ctx.signal, resolve: ctx.resolve });
      const stored = await storeAsParquet(ctx, fetched, name);
      files.push({ uri: stored.file.uri, sizeBytes: stored.file.sizeBytes, rowCount: stored.file.rowCount });
      temps.set(name, { kind: 'table', columns: stored.columns, files: [stored.file] });
    });
    if (!done) return undefined;
    return { sql: done.sql, temps, files };
  } catch (err) {
    if (files.length) await discard(files).catch(() => undefined);
    throw err;
  }
}

type Format = 'json' | 'ndjson' | 'csv' | 'parquet';

/** The body's format: by content type, else by the URL's extension, else by its first bytes. */
export function formatOf(fetched: Pick<Fetched, 'url' | 'contentType' | 'body'>): Format {
  const type = fetched.contentType.split(';')[0].trim().toLowerCase();
  if (/^application\/(x-)?(ndjson|jsonl|jsonlines|json-seq)$/.test(type)) return 'ndjson';
  if (type === 'application/json' || type.endsWith('+json') || type === 'text/json') return 'json';
  if (type === 'text/csv' || type === 'application/csv' || type === 'text/tab-separated-values') return 'csv';
  if (/^application\/(vnd\.apache\.|x-)?parquet$/.test(type)) return 'parquet';
  const path = new URL(fetched.url).pathname.toLowerCase();
  if (/\.(ndjson|jsonl)$/.test(path)) return 'ndjson';
  if (path.endsWith('.json')) return 'json';
  if (/\.(csv|tsv)$/.test(path)) return 'csv';
  if (path.endsWith('.parquet')) return 'parquet';
  if (fetched.body.subarray(0, 4).toString('latin1') === 'PAR1') return 'parquet';
  const first = fetched.body.subarray(0, 64).toString('utf8').trimStart()[0];
  if (first === '[' || first === '{') return 'json';
  throw new PuffinError('bad_request', `curl(): cannot tell the format of ${new URL(fetched.url).pathname} (content type '${type || 'none'}'): curl() reads JSON, NDJSON, CSV and Parquet`);
}

const READERS: Record<Format, (path: string) => string> = {
  json: (p) => `read_json_auto(${sqlString(p)})`,
  ndjson: (p) => `read_json_auto(${sqlString(p)}, format = 'newline_delimited')`,
  csv: (p) => `read_csv_auto(${sqlString(p)})`,
  parquet: (p) => `read_parquet(${sqlString(p)})`,
};

/**
 * Convert the body to one Parquet file under the shuffle prefix. DuckDB reads it in an
 * engine of this conversion's own, allowed only its scratch directory (the body and the
 * Parquet file it writes), so nothing the remote server sent can make it read anything else.
 */
async function storeAsParquet(ctx: CurlContext, fetched: Fetched, name: string): Promise<{ file: DataFile; columns: Column[] }> {
  const format = formatOf(fetched);
  const dir = join(ctx.settings.home, 'coordinator', 'curl', `${ctx.queryId}-${name}`);
  mkdirSync(dir, { recursive: true });
  const input = join(dir, `body.${format === 'ndjson' ? 'ndjson' : format}`);
  const output = join(dir, 'out.parquet');
  const engine = await Engine.create({ threads: 1, memoryLimit: ctx.settings.memoryLimit, allowedDirectories: [dir] });
  try {
    writeFileSync(input, fetched.body);
    const where = new URL(fetched.url);
    const source = `(SELECT * FROM ${READERS[format](input)})`;
    let columns: Column[];
    let rowCount: number;
    try {
      await engine.exec(`COPY ${source} TO ${sqlString(output)} (FORMAT parquet)`);
      const described = await engine.query(`DESCRIBE SELECT * FROM read_parquet(${sqlString(output)})`);
      columns = described.rows.map((r) => ({ name: String(r[0]), type: String(r[1]) }));
      rowCount = Number((await engine.query(`SELECT count(*) FROM read_parquet(${sqlString(output)})`)).rows[0][0]);
    } catch (err) {
      throw new PuffinError('bad_request', `curl(): cannot read ${where.origin}${where.pathname} as ${format.toUpperCase()}: ${(err as Error).message.replaceAll(dir, '<curl scratch>')}`);
    }
    const bytes = readFileSync(output);
    const key = `curl/${ctx.queryId}/${name}.parquet`;
    const store = openStore(ctx.settings.shuffleUrl, storeOptionsOf(ctx.settings));
    await store.put(key, bytes);
    return { file: { uri: joinUrl(ctx.settings.shuffleUrl, key), sizeBytes: statSync(output).size, rowCount, stats: {} }, columns };
  } finally {
    engine.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
