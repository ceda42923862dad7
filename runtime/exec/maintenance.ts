// CALL puffindb.<procedure>(...): Iceberg table maintenance from SQL, named as Spark's
// Iceberg procedures (runtime/catalog/iceberg/maintenance.ts does the work):
//
//   CALL puffindb.snapshots('t')                                         -- read only
//   CALL puffindb.expire_snapshots('t', older_than => TIMESTAMP '...', retain_last => 5)
//   CALL puffindb.rewrite_data_files('t', target_file_size_bytes => 134217728)
//   CALL puffindb.remove_orphan_files('t', older_than => TIMESTAMP '...')
//   CALL puffindb.rewrite_manifests('t')
//
// Arguments are positional (the table first) or named with `=>` (DuckDB parses CALL with
// `=>` and `:=`); values are literals only: a string, a number, TIMESTAMP '...' (UTC unless
// it names an offset). Every procedure but `snapshots` writes (writer role, the classifier
// says so). The answer of a write is one row saying what was done.

import { linkSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ulid } from 'ulid';
import { expireSnapshots, listSnapshots, removeOrphanFiles, rewriteDataFiles, rewriteManifests } from '../catalog/iceberg/maintenance.ts';
import { uriTableIO } from '../catalog/iceberg/writer-io.ts';
import type { Catalog, Column } from '../catalog/types.ts';
import { Engine, type JsonValue } from '../engine/engine.ts';
import { PuffinError } from '../errors.ts';
import type { Plan } from '../planner/plan.ts';
import type { Settings } from '../settings.ts';
import type { ClassifiedStatement } from '../sql/classify.ts';
import { lex, type Token } from '../sql/lexer.ts';
import type { FileCache } from '../storage/file-cache.ts';
import { fileUriToPath } from '../storage/locations.ts';
import { resolveUri, type StoreOptions } from '../storage/open.ts';
import { stat } from 'node:fs/promises';
import type { QueryOptions, QueryOutcome } from './query-service.ts';
import { storeOptionsOf } from './worker.ts';

export interface MaintenanceHost {
  settings: Settings;
  catalog: Catalog;
  /** Local copies of table files (compaction reads through it). */
  files: FileCache;
}

type Value = string | number | { timestampMs: number };

export interface ProcedureCall {
  procedure: Procedure;
  table: string;
  args: Map<string, Value>;
}

const PROCEDURES = {
  snapshots: [],
  expire_snapshots: ['older_than', 'retain_last'],
  rewrite_data_files: ['target_file_size_bytes'],
  remove_orphan_files: ['older_than'],
  rewrite_manifests: ['target_manifest_size_bytes'],
} as const;
export type Procedure = keyof typeof PROCEDURES;

/** Procedures that only read (a reader key may call them). */
export const READ_ONLY_PROCEDURES: ReadonlySet<string> = new Set(['snapshots']);

const upper = (t: Token | undefined): string => (t && t.kind === 'word' ? t.text.toUpperCase() : '');

function unquote(t: Token): string {
  return t.text.slice(1, -1).replace(/''/g, "'");
}

function identText(t: Token): string {
  return t.kind === 'quoted_ident' ? t.text.slice(1, -1).replace(/""/g, '"') : t.text.toLowerCase();
}

/** Milliseconds since the epoch of a timestamp's text: UTC unless it carries an offset or Z. */
export function timestampMs(text: string, what: string): number {
  let t = text.trim().replace(' ', 'T');
  // An offset after the time of day as +HH or +HHMM: JavaScript wants +HH:MM.
  if (/T/.test(t)) t = t.replace(/(T[\d:.]+[+-]\d\d)$/, '$1:00').replace(/(T[\d:.]+[+-]\d\d)(\d\d)$/, '$1:$2');
  const withZone = /([zZ]|[+-]\d\d(:?\d\d)?)$/.test(t) && /T/.test(t) ? t : /T/.test(t) ? `${t}Z` : `${t}T00:00:00Z`;
  const ms = Date.parse(withZone);
  if (!Number.isFinite(ms)) throw new PuffinError('bad_request', `${what}: '${text}' is not a timestamp (e.g. TIMESTAMP '2024-01-01 00:00:00')`);
  return ms;
}

/** The procedure named by a CALL statement, or undefined when it is not one of ours. */
export function procedureName(text: string): string | undefined {
  const t = lex(text).tokens;
  if (upper(t[0]) !== 'CALL' || t[2]?.text !== '.' || !t[1] || !t[3]) return undefined;
  if (identText(t[1]) !== 'puffindb') return undefined;
  return identText(t[3]);
}

export function parseCall(text: string): ProcedureCall {
  const tokens = lex(text).tokens.filter((t) => t.kind !== 'semicolon');
  if (upper(tokens[0]) !== 'CALL') throw new PuffinError('internal', 'not a CALL statement');
  const known = Object.keys(PROCEDURES).map((p) => `puffindb.${p}`).join(', ');
  if (!(tokens[1] && tokens[2]?.text === '.' && tokens[3] && identText(tokens[1]) === 'puffindb')) {
    throw new PuffinError('unsupported', `CALL runs PuffinDB's procedures only: ${known}`);
  }
  const name = identText(tokens[3]);
  if (!(name in PROCEDURES)) throw new PuffinError('bad_request', `there is no procedure puffindb.${name}; the procedures are ${known}`);
  const procedure = name as Procedure;
  if (tokens[4]?.text !== '(' || tokens[tokens.length - 1]?.text !== ')') throw new PuffinError('syntax_error', `CALL puffindb.${name}('table', ...): the arguments go in parentheses`);
  // Split the arguments at top-level commas.
  const inner = tokens.slice(5, -1);
  const parts: Token[][] = [];
  let cur: Token[] = [];
  for (const t of inner) {
    if (t.text === ',' && t.kind === 'symbol') {
      parts.push(cur);
      cur = [];
    } else cur.push(t);
  }
  if (cur.length || parts.length) parts.push(cur);
  const allowed: readonly string[] = ['table', ...PROCEDURES[procedure]];
  const args = new Map<string, Value>();
  let position = 0;
  for (const p of parts) {
    let key: string;
    let value: Token[];
    const arrow = p.length >= 3 && ['word', 'quoted_ident'].includes(p[0].kind) && ((p[1].text === '=' && p[2].text === '>') || (p[1].text === ':' && p[2].text === '='));
    if (arrow) {
      key = identText(p[0]);
      value = p.slice(3);
      if (!allowed.includes(key)) throw new PuffinError('bad_request', `puffindb.${name} has no argument '${key}' (its arguments: ${allowed.join(', ')})`);
    } else {
      if (args.size > position || position >= allowed.length) throw new PuffinError('bad_request', `puffindb.${name}: positional arguments come first, at most ${allowed.length} (${allowed.join(', ')})`);
      key = allowed[position++];
      value = p;
    }
    if (args.has(key)) throw new PuffinError('bad_request', `puffindb.${name}: argument '${key}' is given twice`);
    args.set(key, literal(value, `puffindb.${name}(${key})`));
  }
  const table = args.get('table');
  if (typeof table !== 'string' || table === '') throw new PuffinError('bad_request', `puffindb.${name} needs the table's name as a string: CALL puffindb.${name}('table')`);
  args.delete('table');
  return { procedure, table: table.toLowerCase(), args };
}

function literal(tokens: Token[], what: string): Value {
  if (tokens.length === 1 && tokens[0].kind === 'string') return unquote(tokens[0]);
  if (tokens.length === 1 && tokens[0].kind === 'number') return Number(tokens[0].text);
  if (tokens.length === 2 && ['TIMESTAMP', 'TIMESTAMPTZ'].includes(upper(tokens[0])) && tokens[1].kind === 'string') return { timestampMs: timestampMs(unquote(tokens[1]), what) };
  throw new PuffinError('bad_request', `${what}: expected a literal (a 'string', a number or TIMESTAMP '...'), got ${tokens.map((t) => t.text).join(' ') || 'nothing'}`);
}

function timeArg(call: ProcedureCall, key: string): number | undefined {
  const v = call.args.get(key);
  if (v === undefined) return undefined;
  if (typeof v === 'object') return v.timestampMs;
  if (typeof v === 'number') return v;
  return timestampMs(v, `puffindb.${call.procedure}(${key})`);
}

function numberArg(call: ProcedureCall, key: string): number | undefined {
  const v = call.args.get(key);
  if (v === undefined) return undefined;
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 1) throw new PuffinError('bad_request', `puffindb.${call.procedure}(${key}) must be a whole number of at least 1`);
  return n;
}

const big = (name: string): Column => ({ name, type: 'BIGINT' });
const text = (name: string): Column => ({ name, type: 'VARCHAR' });

/** The answer's columns of each procedure. */
export const PROCEDURE_COLUMNS: Record<Procedure, Column[]> = {
  snapshots: [text('snapshot_id'), text('parent_id'), text('committed_at'), text('operation'), text('manifest_list'), { name: 'is_current', type: 'BOOLEAN' }, text('refs'), text('summary')],
  expire_snapshots: [text('table'), big('snapshots_expired'), big('snapshots_retained'), big('manifest_lists_deleted'), big('manifests_deleted'), big('data_files_deleted'), big('delete_files_deleted'), big('bytes_deleted'), big('files_kept_outside_location')],
  rewrite_data_files: [text('table'), big('rewritten_data_files'), big('added_data_files'), big('rewritten_bytes'), big('added_bytes'), big('rows'), text('snapshot_id')],
  remove_orphan_files: [text('table'), big('orphans_found'), big('files_deleted'), big('bytes_deleted'), big('orphans_kept_too_new'), text('older_than')],
  rewrite_manifests: [text('table'), big('rewritten_manifests'), big('added_manifests'), big('kept_manifests'), big('entries'), text('snapshot_id')],
};

/** A file's last modification time: stat for local files, the object listing on S3. */
export function modifiedTime(options: StoreOptions): (uri: string) => Promise<number | undefined> {
  return async (uri) => {
    if (/^file:/i.test(uri)) return stat(fileUriToPath(uri)).then((s) => s.mtimeMs, () => undefined);
    const { store, key } = resolveUri(uri, options);
    return (await store.list(key)).find((o) => o.key === key)?.lastModified;
  };
}

async function icebergTable(host: MaintenanceHost, name: string): Promise<void> {
  const pointers = host.catalog.pointers;
  if (!pointers) throw new PuffinError('unsupported', 'table maintenance needs a catalog that keeps Iceberg tables (the warehouse catalog)');
  if ((await pointers.get(name)) !== undefined) return;
  const t = await host.catalog.getTable(name);
  if (t) throw new PuffinError('unsupported', `table '${name}' is a ${t.kind} table; maintenance procedures apply to Iceberg tables`);
  throw new PuffinError('unknown_table', `table '${name}' does not exist in the catalog`);
}

function planOf(sql: string, call: ProcedureCall): Plan {
  return {
    shape: 'write', sql, output: PROCEDURE_COLUMNS[call.procedure].map((c) => ({ ...c })), fragments: [], reduce: { views: [], sql: '' }, scans: [], join: null,
    reason: `puffindb.${call.procedure} on Iceberg table ${call.table}: run by the coordinator${call.procedure === 'snapshots' ? ' (reads the table metadata)' : ', committed by a compare-and-swap of the table\'s metadata pointer'}`,
  };
}

export async function explainProcedure(host: MaintenanceHost, statement: ClassifiedStatement): Promise<Plan> {
  const call = parseCall(statement.text);
  await icebergTable(host, call.table);
  return planOf(statement.sql, call);
}

/** Run one CALL puffindb.<procedure>(...). */
export async function callProcedure(host: MaintenanceHost, statement: ClassifiedStatement, options: QueryOptions = {}): Promise<QueryOutcome> {
  const call = parseCall(statement.text);
  await icebergTable(host, call.table);
  const queryId = options.queryId ?? ulid();
  const started = performance.now();
  const storeOptions = storeOptionsOf(host.settings);
  const io = uriTableIO(storeOptions);
  const store = host.catalog.pointers!;
  let rows: JsonValue[][];
  switch (call.procedure) {
    case 'snapshots': {
      rows = (await listSnapshots(store, call.table, io)).map((s) => [s.id, s.parent, s.timestamp, s.operation, s.manifestList, s.current, s.refs.join(','), JSON.stringify(s.summary)]);
      break;
    }
    case 'expire_snapshots': {
      const r = await expireSnapshots(store, call.table, io, { olderThanMs: timeArg(call, 'older_than'), retainLast: numberArg(call, 'retain_last') });
      rows = [[call.table, r.snapshotsExpired, r.snapshotsRetained, r.manifestListsDeleted, r.manifestsDeleted, r.dataFilesDeleted, r.deleteFilesDeleted, r.bytesDeleted, r.filesKeptOutsideLocation].map(cell)];
      break;
    }
    case 'remove_orphan_files': {
      const r = await removeOrphanFiles(store, call.table, io, { olderThanMs: timeArg(call, 'older_than'), modifiedMs: modifiedTime(storeOptions) });
      rows = [[call.table, r.orphansFound, r.filesDeleted, r.bytesDeleted, r.orphansKeptTooNew, r.olderThan].map(cell)];
      break;
    }
    case 'rewrite_manifests': {
      const r = await rewriteManifests(store, call.table, io, { targetBytes: numberArg(call, 'target_manifest_size_bytes') });
      rows = [[call.table, r.manifestsRewritten, r.manifestsAdded, r.manifestsKept, r.entries, r.snapshotId].map(cell)];
      break;
    }
    case 'rewrite_data_files': {
      const r = await compact(host, call, queryId, io, options.signal);
      rows = [[call.table, r.filesRewritten, r.filesAdded, r.bytesRewritten, r.bytesAdded, r.rows, r.snapshotId].map(cell)];
      break;
    }
  }
  const totalMs = performance.now() - started;
  return {
    queryId,
    columns: PROCEDURE_COLUMNS[call.procedure].map((c) => ({ ...c })),
    rows,
    plan: planOf(statement.sql, call),
    stats: { fragments: 0, retries: 0, bytesScanned: 0, bytesShuffled: 0, planMs: 0, executeMs: totalMs, reduceMs: 0, totalMs },
  };
}

const cell = (v: string | number | null): JsonValue => (typeof v === 'number' ? String(v) : v);

/** Compaction on the coordinator, in a DuckDB of its own sandboxed to a staging directory (as writes are). */
async function compact(host: MaintenanceHost, call: ProcedureCall, queryId: string, io: ReturnType<typeof uriTableIO>, signal?: AbortSignal) {
  const s = host.settings;
  const staging = join(s.home, 'coordinator', 'staging', `${queryId}-compact`);
  mkdirSync(join(staging, 'in'), { recursive: true });
  const engine = await Engine.create({ threads: s.threads, memoryLimit: s.memoryLimit, allowedDirectories: [staging] });
  const conn = await engine.connect();
  const releases: (() => void)[] = [];
  let linked = 0;
  try {
    return await rewriteDataFiles(
      {
        conn, store: host.catalog.pointers!, io, stagingDir: staging, warehouseUri: s.warehouse,
        localFile: async (uri) => {
          const got = await host.files.acquire([uri], signal);
          releases.push(got.release);
          const path = join(staging, 'in', `${linked++}.${uri.split('.').pop()?.replace(/[^a-z0-9]/gi, '') || 'dat'}`);
          linkSync(got.paths[0], path);
          return path;
        },
      },
      call.table,
      { targetFileSize: numberArg(call, 'target_file_size_bytes') },
    );
  } finally {
    for (const r of releases) r();
    conn.closeSync();
    engine.close();
    rmSync(staging, { recursive: true, force: true });
  }
}
