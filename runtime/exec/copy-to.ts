// COPY (query) TO 'location' (options) and COPY table TO 'location' (options): a query's rows
// written as Parquet, CSV or JSON files under an export location.
//
// - Locations: a relative location ('x', 'exports/x') is the directory x under the
//   warehouse's exports/ prefix; an absolute one (a local path, file:///..., s3://...) must
//   lie strictly below a root of PUFFINDB_EXPORT_LOCATIONS (or below the exports/ prefix).
//   '.' and '..' segments, other schemes (http:, ...), file: URIs naming a host, and local
//   paths whose existing part resolves (symlinks) outside the roots are refused before
//   anything is written. The location is always a directory; PuffinDB names the files.
// - Writers: a plain scan (filters, projections, broadcast joins: the answer is the union
//   of the fragments' rows, in no order) is written by the fragments in parallel, each its
//   own files (runtime/exec/export-write.ts); anything else (ORDER BY, aggregates, DISTINCT,
//   LIMIT, joins of large tables, ...) runs as a query and the coordinator writes its result.
// - Existing files: a location that holds files is refused (409) unless OVERWRITE (the old
//   files are removed once every new one is written) or OVERWRITE_OR_IGNORE (they stay; the
//   new files have names of their own).
// - Failure: every file the COPY wrote (named by its query id) is removed, and the error is
//   the statement's answer.
// - The answer: one row per file written: path (its URI), rows, bytes.

import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ulid } from 'ulid';
import type { Column } from '../catalog/types.ts';
import { Engine } from '../engine/engine.ts';
import { PuffinError } from '../errors.ts';
import type { Plan } from '../planner/plan.ts';
import type { PlanOptions } from '../planner/planner.ts';
import type { Settings } from '../settings.ts';
import type { ClassifiedStatement } from '../sql/classify.ts';
import { lex, type Token } from '../sql/lexer.ts';
import { parseStatements } from '../sql/parse.ts';
import { canonicalUri, LocationPolicy } from '../storage/locations.ts';
import { joinUrl, openStore } from '../storage/open.ts';
import type { ExecuteOptions, ExecuteOutcome } from './coordinator.ts';
import { COMPRESSIONS, exportWrite, writeExport, type ExportedFile, type ExportFormat, type ExportTarget } from './export-write.ts';
import { rowsAsQuery } from './parquet-writer.ts';
import type { QueryOptions, QueryOutcome } from './query-service.ts';
import { storeOptionsOf } from './worker.ts';

/** What a COPY needs of the cluster that runs it. */
export interface CopyHost {
  settings: Settings;
  /** Parses the query (ORDER BY decides the writer). */
  engine: Engine;
  plan(sql: string, options: PlanOptions): Promise<Plan>;
  execute(plan: Plan, options: ExecuteOptions): Promise<ExecuteOutcome>;
  /** Runs a SELECT as a query (the one-writer path). */
  query(sql: string, options: QueryOptions): Promise<QueryOutcome>;
}

export interface CopyStatement {
  /** The query whose rows are written. */
  select: string;
  /** The location as written. */
  location: string;
  format: ExportFormat;
  partitionBy: string[];
  compression?: string;
  header?: boolean;
  delimiter?: string;
  /** What to do when the location holds files already. */
  existing: 'refuse' | 'overwrite' | 'keep';
}

/** The answer's columns: one row per file written. */
export const COPY_COLUMNS: readonly Column[] = [
  { name: 'path', type: 'VARCHAR' }, { name: 'rows', type: 'BIGINT' }, { name: 'bytes', type: 'BIGINT' },
];

/** The partial set of an export plan: one row per file written, described as JSON. */
const EXPORTED_VIEW = '__exported';

const OPTIONS = ['FORMAT', 'PARTITION_BY', 'COMPRESSION', 'HEADER', 'DELIMITER', 'DELIM', 'SEP', 'OVERWRITE', 'OVERWRITE_OR_IGNORE'];
/** Options DuckDB has that would name files or directories, or write elsewhere: PuffinDB names the files. */
const PATH_OPTIONS = new Set(['FILENAME_PATTERN', 'FILE_EXTENSION', 'USE_TMP_FILE', 'PER_THREAD_OUTPUT', 'FILE_SIZE_BYTES', 'ROW_GROUPS_PER_FILE', 'WRITE_PARTITION_COLUMNS', 'RETURN_FILES', 'RETURN_STATS', 'PRESERVE_ORDER', 'APPEND']);

const QUERY_START = /^\s*(\(|SELECT\b|WITH\b|VALUES\b|FROM\b|TABLE\b)/i;

function upper(t: Token | undefined): string {
  return t && t.kind === 'word' ? t.text.toUpperCase() : t?.text ?? '';
}

/** Index of the ')' matching the '(' at tokens[open]. */
function closing(tokens: Token[], open: number): number {
  let depth = 0;
  for (let i = open; i < tokens.length; i++) {
    if (tokens[i].kind !== 'symbol') continue;
    if (tokens[i].text === '(') depth++;
    else if (tokens[i].text === ')' && --depth === 0) return i;
  }
  throw new PuffinError('syntax_error', 'COPY: unbalanced parentheses');
}

/** The value of a plain '...' string literal. */
function stringValue(t: Token, what: string): string {
  if (t.kind !== 'string' || !t.text.startsWith("'")) throw new PuffinError('bad_request', `COPY: ${what} must be a plain '...' string`);
  return t.text.slice(1, -1).replace(/''/g, "'");
}

function identifierValue(t: Token): string {
  if (t.kind === 'quoted_ident') return t.text.slice(1, -1).replace(/""/g, '"');
  if (t.kind === 'word') return t.text;
  throw new PuffinError('bad_request', `COPY: expected a column name, got ${t.text}`);
}

function booleanValue(name: string, value: Token[]): boolean {
  if (value.length === 0) return true;
  const v = value.length === 1 ? (value[0].kind === 'string' ? stringValue(value[0], name) : value[0].text).toLowerCase() : '';
  if (['true', '1', 'on'].includes(v)) return true;
  if (['false', '0', 'off'].includes(v)) return false;
  throw new PuffinError('bad_request', `COPY option ${name} takes true or false`);
}

function wordValue(name: string, value: Token[]): string {
  if (value.length !== 1 || !['word', 'string'].includes(value[0].kind)) throw new PuffinError('bad_request', `COPY option ${name} takes one value`);
  return (value[0].kind === 'string' ? stringValue(value[0], name) : value[0].text).toLowerCase();
}

/**
 * Read a COPY statement (the classifier's comment-free text). Refuses COPY ... FROM, options
 * outside the supported list (naming them), and anything after the options.
 */
export function parseCopy(text: string): CopyStatement {
  const tokens = lex(text).tokens.filter((t) => t.kind !== 'semicolon');
  if (upper(tokens[0]) !== 'COPY') throw new PuffinError('internal', 'not a COPY statement');
  let i = 1;
  let select: string;
  if (tokens[i]?.text === '(' && tokens[i].kind === 'symbol') {
    const end = closing(tokens, i);
    select = text.slice(tokens[i].end, tokens[end].start).trim();
    if (!QUERY_START.test(select)) throw new PuffinError('bad_request', 'COPY (...) TO must hold a query (SELECT ...)');
    i = end + 1;
  } else {
    if (upper(tokens[i]) === 'FROM') throw new PuffinError('unsupported', 'COPY FROM DATABASE is not supported; PuffinDB runs COPY (query) TO and COPY table TO');
    const start = i;
    if (!tokens[i] || !['word', 'quoted_ident'].includes(tokens[i].kind)) throw new PuffinError('bad_request', 'COPY must be followed by a table name or a (query)');
    i++;
    while (tokens[i]?.text === '.' && tokens[i + 1] && ['word', 'quoted_ident'].includes(tokens[i + 1].kind)) i += 2;
    const table = text.slice(tokens[start].start, tokens[i - 1].end);
    let columns = '*';
    if (tokens[i]?.text === '(') {
      const end = closing(tokens, i);
      const names = tokens.slice(i + 1, end).filter((t) => t.text !== ',');
      if (names.length === 0 || tokens.slice(i + 1, end).some((t, k) => (k % 2 === 1 ? t.text !== ',' : !['word', 'quoted_ident'].includes(t.kind)))) {
        throw new PuffinError('bad_request', 'COPY table (columns): the column list must be column names');
      }
      columns = names.map((t) => t.text).join(', ');
      i = end + 1;
    }
    select = `SELECT ${columns} FROM ${table}`;
  }
  const direction = upper(tokens[i]);
  if (direction === 'FROM') throw new PuffinError('unsupported', 'COPY ... FROM (loading files) is not supported; register files as a table (`puffindb table add`) and INSERT ... SELECT from it');
  if (direction !== 'TO') throw new PuffinError('syntax_error', `COPY: expected TO after the ${select.startsWith('SELECT * FROM') ? 'table' : 'query'}`);
  i++;
  if (!tokens[i]) throw new PuffinError('syntax_error', "COPY ... TO needs a location: TO 'exports/name'");
  const location = stringValue(tokens[i], 'the location');
  i++;
  if (upper(tokens[i]) === 'WITH') i++;
  const options = new Map<string, Token[]>();
  if (tokens[i]) {
    if (tokens[i].text !== '(') throw new PuffinError('bad_request', `COPY: options go in parentheses after the location, e.g. (FORMAT csv, HEADER); got ${tokens[i].text}`);
    const end = closing(tokens, i);
    if (end !== tokens.length - 1) throw new PuffinError('syntax_error', `COPY: unexpected text after the options: ${text.slice(tokens[end + 1].start, tokens[end + 1].start + 40)}`);
    let k = i + 1;
    while (k < end) {
      const nameToken = tokens[k];
      if (nameToken.kind !== 'word') throw new PuffinError('bad_request', `COPY: expected an option name, got ${nameToken.text}`);
      const name = nameToken.text.toUpperCase();
      k++;
      const value: Token[] = [];
      let depth = 0;
      while (k < end && !(depth === 0 && tokens[k].text === ',' && tokens[k].kind === 'symbol')) {
        if (tokens[k].kind === 'symbol' && tokens[k].text === '(') depth++;
        if (tokens[k].kind === 'symbol' && tokens[k].text === ')') depth--;
        value.push(tokens[k++]);
      }
      k++;
      if (PATH_OPTIONS.has(name)) throw new PuffinError('unsupported', `COPY option ${name} is not supported: PuffinDB names the files it writes under the location (supported options: ${OPTIONS.join(', ')})`);
      if (!OPTIONS.includes(name)) throw new PuffinError('unsupported', `COPY option ${name} is not supported (supported options: ${OPTIONS.join(', ')})`);
      const key = name === 'DELIM' || name === 'SEP' ? 'DELIMITER' : name;
      if (options.has(key)) throw new PuffinError('bad_request', `COPY option ${name} is given twice`);
      options.set(key, value);
    }
  }

  const format = options.has('FORMAT') ? wordValue('FORMAT', options.get('FORMAT')!) : 'parquet';
  if (format !== 'parquet' && format !== 'csv' && format !== 'json') throw new PuffinError('unsupported', `COPY FORMAT ${format} is not supported; use parquet (the default), csv or json`);
  const statement: CopyStatement = { select, location, format, partitionBy: [], existing: 'refuse' };
  const partition = options.get('PARTITION_BY');
  if (partition) {
    const names = partition[0]?.text === '(' ? partition.slice(1, -1) : partition;
    const columns = names.filter((t, k) => {
      if (k % 2 === 1) {
        if (t.text !== ',') throw new PuffinError('bad_request', 'COPY option PARTITION_BY takes column names: PARTITION_BY (a, b)');
        return false;
      }
      return true;
    }).map(identifierValue);
    if (columns.length === 0 || (partition[0]?.text === '(' && partition[partition.length - 1]?.text !== ')')) throw new PuffinError('bad_request', 'COPY option PARTITION_BY takes column names: PARTITION_BY (a, b)');
    statement.partitionBy = columns;
  }
  if (options.has('COMPRESSION')) {
    let c = wordValue('COMPRESSION', options.get('COMPRESSION')!);
    if (format !== 'parquet' && c === 'uncompressed') c = 'none';
    if (!COMPRESSIONS[format].includes(c)) throw new PuffinError('unsupported', `COPY COMPRESSION ${c} is not supported for ${format}; use one of ${COMPRESSIONS[format].join(', ')}`);
    statement.compression = c;
  }
  for (const name of ['HEADER', 'DELIMITER']) {
    if (options.has(name) && format !== 'csv') throw new PuffinError('bad_request', `COPY option ${name} applies to FORMAT csv only`);
  }
  if (options.has('HEADER')) statement.header = booleanValue('HEADER', options.get('HEADER')!);
  if (options.has('DELIMITER')) {
    const value = options.get('DELIMITER')!;
    const d = value.length === 1 ? stringValue(value[0], 'DELIMITER') : '';
    if ([...d].length !== 1 || /[\r\n"]/.test(d)) throw new PuffinError('bad_request', "COPY option DELIMITER takes one character, e.g. DELIMITER '|'");
    statement.delimiter = d;
  }
  const overwrite = options.has('OVERWRITE') && booleanValue('OVERWRITE', options.get('OVERWRITE')!);
  const keep = options.has('OVERWRITE_OR_IGNORE') && booleanValue('OVERWRITE_OR_IGNORE', options.get('OVERWRITE_OR_IGNORE')!);
  if (overwrite && keep) throw new PuffinError('bad_request', 'COPY options OVERWRITE and OVERWRITE_OR_IGNORE exclude each other');
  statement.existing = overwrite ? 'overwrite' : keep ? 'keep' : 'refuse';
  return statement;
}

/** The warehouse's export prefix: where relative locations go. */
export function exportsRoot(settings: Pick<Settings, 'warehouse'>): string {
  return joinUrl(settings.warehouse, 'exports/');
}

/** The roots COPY may write below, as shown in messages. */
export function exportRoots(settings: Pick<Settings, 'warehouse' | 'exportLocations'>): string[] {
  return [exportsRoot(settings), ...(settings.exportLocations ?? [])];
}

/**
 * The directory URI (ending in '/') a COPY location names, or a 400 naming the allowed
 * locations. Checked before anything is written.
 */
export async function resolveExportLocation(location: string, settings: Pick<Settings, 'warehouse' | 'exportLocations'>): Promise<string> {
  const roots = exportRoots(settings);
  // A location outside what COPY may write is refused as access is (403); a malformed one is a bad request.
  const message = (why: string) => `COPY location '${location}' ${why}; COPY writes below ${roots.join(', ')} (relative locations such as 'name' or 'exports/name' go under the warehouse's exports/; an admin can allow more with PUFFINDB_EXPORT_LOCATIONS)`;
  const refuse = (why: string) => new PuffinError('bad_request', message(why));
  const deny = (why: string) => new PuffinError('access_denied', message(why));
  if (location.trim() === '') throw refuse('is empty');
  if (/[\0\\]/.test(location) || /[\r\n]/.test(location)) throw refuse('holds a NUL, backslash or line break');
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(location)?.[1]?.toLowerCase();
  // '.' and '..' are refused wherever they are, not normalized away: the path checked is the path written.
  const pathPart = scheme === 's3' ? location.replace(/^s3:\/\/[^/]*/i, '') : scheme === 'file' ? location.replace(/^file:(\/\/[^/]*)?/i, '') : location;
  if (pathPart.split('/').some((s) => s === '.' || s === '..')) throw refuse("has a '.' or '..' segment");
  let uri: string;
  if (scheme === undefined) {
    if (location.startsWith('/')) {
      if (/\/\//.test(location)) throw refuse('has an empty path segment');
      uri = `file://${location}`;
    } else {
      let relative = location.replace(/\/+$/, '');
      if (relative.split('/').some((s) => s === '')) throw refuse('has an empty path segment');
      if (relative === 'exports') throw refuse('is the exports/ prefix itself: name a directory below it');
      if (relative.startsWith('exports/')) relative = relative.slice('exports/'.length);
      uri = joinUrl(exportsRoot(settings), `${relative}/`);
    }
  } else if (scheme === 'file' || scheme === 's3') {
    try {
      uri = canonicalUri(location);
    } catch (err) {
      throw refuse(`is not a usable ${scheme}: location (${(err as Error).message})`);
    }
    if (scheme === 's3' && !/^s3:\/\/[A-Za-z0-9][A-Za-z0-9._-]*\/./.test(uri)) throw refuse('does not name a directory in a bucket');
    if (uri.replace(/^s3:\/\/[^/]*|^file:\/\//, '').replace(/\/+$/, '').split('/').slice(1).some((s) => s === '')) throw refuse('has an empty path segment');
  } else {
    throw deny(`uses the scheme '${scheme}:', which COPY does not write to`);
  }
  if (!uri.endsWith('/')) uri += '/';
  const policy = new LocationPolicy(roots);
  if (!(await policy.allows(uri, { below: true }))) throw deny('is not below an allowed location (symlinks are followed)');
  return uri;
}

/** Whether the plan's rows can be written where the fragments run: a plain scan, no ORDER BY. */
async function parallel(host: CopyHost, copy: CopyStatement, plan: Plan): Promise<boolean> {
  if (!plan.unionOfFragments || plan.fragments.length === 0 || plan.stages?.length || plan.stored || plan.materialized) return false;
  const [parsed] = await parseStatements(host.engine, copy.select);
  const modifiers = (parsed?.node?.modifiers ?? []) as { type?: string }[];
  return !modifiers.some((m) => m.type === 'ORDER_MODIFIER');
}

function targetOf(copy: CopyStatement, uri: string, queryId: string, plan: Plan): ExportTarget {
  const names = new Map(plan.output.map((c) => [c.name.toLowerCase(), c.name]));
  const partitionBy = copy.partitionBy.map((p) => {
    const name = names.get(p.toLowerCase());
    if (name === undefined) throw new PuffinError('binder_error', `COPY PARTITION_BY: the query has no column ${p} (its columns: ${plan.output.map((c) => c.name).join(', ')})`);
    return name;
  });
  if (partitionBy.length > 0 && partitionBy.length >= plan.output.length) throw new PuffinError('bad_request', 'COPY PARTITION_BY: the files would have no columns left; partition by fewer columns');
  return {
    uri, format: copy.format, partitionBy, prefix: queryId,
    ...(copy.compression !== undefined ? { compression: copy.compression } : {}),
    ...(copy.header !== undefined ? { header: copy.header } : {}),
    ...(copy.delimiter !== undefined ? { delimiter: copy.delimiter } : {}),
  };
}

/** The plan whose fragments export their rows to `target`. */
function exportPlan(plan: Plan, target: ExportTarget, sql: string): Plan {
  const write = exportWrite(target);
  return {
    ...plan,
    sql,
    shape: 'write',
    output: COPY_COLUMNS.map((c) => ({ ...c })),
    fragments: plan.fragments.map((f) => ({ ...f, output: EXPORTED_VIEW, write })),
    reduce: { views: [{ name: EXPORTED_VIEW, columns: [{ name: 'file', type: 'VARCHAR' }] }], sql: `SELECT file FROM ${EXPORTED_VIEW}` },
    unionOfFragments: false,
    reason: `COPY TO ${target.uri}: each of ${plan.fragments.length} fragment(s) writes its rows as ${target.format} files (${plan.reason})`,
  };
}

/** The plan of a COPY the coordinator writes: the query runs as planned, then one writer. */
function coordinatorPlan(sql: string, uri: string, format: string, why: string): Plan {
  return {
    shape: 'write', sql, output: COPY_COLUMNS.map((c) => ({ ...c })), fragments: [], reduce: { views: [], sql: '' }, scans: [], join: null,
    reason: `COPY TO ${uri}: the query runs distributed and the coordinator writes its result as ${format} files (${why})`,
  };
}

/** What the query needs of its planner and location: refusals come here, before anything is written. */
async function prepare(host: CopyHost, statement: ClassifiedStatement, options: QueryOptions, queryId: string) {
  const copy = parseCopy(statement.text);
  const uri = await resolveExportLocation(copy.location, host.settings);
  const plan = await host.plan(copy.select, { fragments: options.fragments, partitions: options.partitions, role: options.role, signal: options.signal, storeResult: true });
  const target = targetOf(copy, uri, queryId, plan);
  const inParallel = await parallel(host, copy, plan);
  return { copy, uri, plan, target, inParallel };
}

/** The plan `explain` shows for a COPY. */
export async function explainCopy(host: CopyHost, statement: ClassifiedStatement, options: QueryOptions = {}): Promise<Plan> {
  const { uri, plan, target, inParallel, copy } = await prepare(host, statement, options, options.queryId ?? ulid());
  return inParallel ? exportPlan(plan, target, statement.sql) : coordinatorPlan(statement.sql, uri, copy.format, plan.reason);
}

/** Run a COPY ... TO; answers one row per file written (path, rows, bytes). */
export async function copyTo(host: CopyHost, statement: ClassifiedStatement, options: QueryOptions = {}): Promise<QueryOutcome> {
  const queryId = options.queryId ?? ulid();
  const started = performance.now();
  const { copy, uri, plan, target, inParallel } = await prepare(host, statement, options, queryId);
  const planMs = performance.now() - started;
  const storeOptions = storeOptionsOf(host.settings);
  const store = openStore(uri, storeOptions);
  const existing = await store.list('');
  if (existing.length > 0 && copy.existing === 'refuse') {
    throw new PuffinError('conflict', `COPY location ${uri} already holds ${existing.length} file(s); add (OVERWRITE) to replace them (they are removed once the new files are written) or (OVERWRITE_OR_IGNORE) to add files beside them`);
  }

  const timeoutMs = options.timeoutMs ?? host.settings.queryTimeoutMs;
  let files: ExportedFile[];
  let ranPlan: Plan;
  let stats: QueryOutcome['stats'];
  try {
    if (inParallel) {
      ranPlan = exportPlan(plan, target, statement.sql);
      const ran = await host.execute(ranPlan, { queryId, timeoutMs, signal: options.signal });
      files = ran.rows.map((row) => JSON.parse(String(row[0])) as ExportedFile);
      const { mode: _mode, ...rest } = ran.stats;
      stats = { ...rest, planMs, totalMs: 0 };
    } else {
      const result = await host.query(copy.select, { fragments: options.fragments, partitions: options.partitions, role: options.role, signal: options.signal, timeoutMs });
      files = await writeOnCoordinator(host, result, target, queryId, options.signal);
      ranPlan = coordinatorPlan(statement.sql, uri, copy.format, result.plan.reason);
      stats = { ...result.stats, planMs: planMs + result.stats.planMs };
    }
  } catch (err) {
    await removeWritten(store, queryId);
    throw err;
  }
  if (copy.existing === 'overwrite') {
    const written = new Set(files.map((f) => f.uri));
    await Promise.all(existing.filter((o) => !written.has(`${uri}${o.key}`)).map((o) => store.delete(o.key)));
  }
  files.sort((a, b) => (a.uri < b.uri ? -1 : a.uri > b.uri ? 1 : 0));
  return {
    queryId,
    columns: COPY_COLUMNS.map((c) => ({ ...c })),
    rows: files.map((f) => [f.uri, String(f.rows), String(f.bytes)]),
    plan: ranPlan,
    stats: { ...stats, totalMs: performance.now() - started },
  };
}

/** Sweeps of a failed COPY's location, in ms after the failure (see removeWritten). */
const SWEEPS_MS = [0, 100, 300, 700];

/**
 * Remove every file under the location whose name is this query's (a failed COPY leaves
 * none). The coordinator answers a failure without waiting for fragments still running: a
 * worker that hears the cancellation deletes what it uploads after it, and the location is
 * swept a few more times over the next moments for files that landed just before.
 */
async function removeWritten(store: ReturnType<typeof openStore>, queryId: string): Promise<void> {
  let waited = 0;
  for (const at of SWEEPS_MS) {
    if (at > waited) await new Promise((r) => setTimeout(r, at - waited));
    waited = at;
    const objects = await store.list('').catch(() => []);
    await Promise.allSettled(objects.filter((o) => o.key.split('/').pop()!.startsWith(`${queryId}-`)).map((o) => store.delete(o.key)));
  }
}

/** The one-writer path: the result's rows written by a DuckDB of this COPY's own, sandboxed to its staging directory. */
async function writeOnCoordinator(host: CopyHost, result: QueryOutcome, target: ExportTarget, queryId: string, signal?: AbortSignal): Promise<ExportedFile[]> {
  const staging = join(host.settings.home, 'coordinator', 'staging', `${queryId}-copy`);
  mkdirSync(staging, { recursive: true });
  const engine = await Engine.create({ threads: host.settings.threads, memoryLimit: host.settings.memoryLimit, allowedDirectories: [staging] });
  const conn = await engine.connect();
  try {
    const source = await rowsAsQuery(join(staging, 'rows'), result.columns, result.rows);
    try {
      return await writeExport({ conn, sql: source.sql, target, stagingDir: staging, writer: 'c0', storeOptions: storeOptionsOf(host.settings), signal });
    } finally {
      await source.remove();
    }
  } finally {
    conn.closeSync();
    engine.close();
    rmSync(staging, { recursive: true, force: true });
  }
}
