// Delta Lake log replay (protocol: "Delta Log Entries", "Checkpoints", "Action
// Reconciliation"). A table's state at version v is the newest complete checkpoint at or
// before v (classic single file, multi-part, or v2 with sidecar files; all Parquet, read
// with DuckDB, or a v2 JSON checkpoint) followed by the JSON commits after it up to v:
// `add` and `remove` reconciled by (path, deletion vector id), the last `metaData` and
// `protocol` winning. `_last_checkpoint` is only a hint; the directory listing decides.
// Commit and checkpoint files never change once written, so their parsed actions are cached
// by URI: re-reading a table costs one listing of `_delta_log/` plus its new commits.

import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Engine } from '../../engine/engine.ts';
import { PuffinError } from '../../errors.ts';
import { sqlString } from '../../sql/quote.ts';
import type { FileIO } from '../iceberg/io.ts';
import { fileUriToPath } from '../../storage/locations.ts';
import { joinUri, parentUri, toUri } from '../iceberg/io.ts';
import { decodeURIComponentSafe, deletionVectorId, type DeletionVectorDescriptor } from './deletion-vectors.ts';

export interface AddAction {
  path: string;
  partitionValues?: Record<string, string | null>;
  size: number;
  modificationTime?: number;
  dataChange?: boolean;
  stats?: string | null;
  deletionVector?: DeletionVectorDescriptor | null;
}

export interface RemoveAction {
  path: string;
  deletionVector?: DeletionVectorDescriptor | null;
}

export interface MetaDataAction {
  id?: string;
  format?: { provider?: string; options?: Record<string, string> };
  schemaString: string;
  partitionColumns: string[];
  configuration?: Record<string, string>;
}

export interface ProtocolAction {
  minReaderVersion: number;
  minWriterVersion?: number;
  readerFeatures?: string[];
  writerFeatures?: string[];
}

/** The actions of one log file this reader uses. */
export interface Actions {
  adds: AddAction[];
  removes: RemoveAction[];
  metaData?: MetaDataAction;
  protocol?: ProtocolAction;
  sidecars: string[];
  /** commitInfo.inCommitTimestamp, else commitInfo.timestamp (milliseconds). */
  timestampMs?: number;
}

export interface DeltaState {
  version: number;
  metaData: MetaDataAction;
  protocol: ProtocolAction;
  /** Live files in the order they were added. */
  files: AddAction[];
}

/** Reader features this reader implements (protocol "Table Features"). */
export const SUPPORTED_READER_FEATURES = new Set(['columnMapping', 'deletionVectors', 'timestampNtz', 'v2Checkpoint', 'vacuumProtocolCheck']);

/** Refuses a protocol needing a reader feature this reader does not implement, naming it. */
export function checkProtocol(p: ProtocolAction, where: string): void {
  const v = p.minReaderVersion;
  if (!Number.isInteger(v) || v < 1) throw new PuffinError('bad_request', `${where}: protocol.minReaderVersion must be a positive integer, got ${JSON.stringify(v)}`);
  if (v > 3) throw new PuffinError('unsupported', `${where}: the table needs Delta reader version ${v}; this reader implements versions 1 to 3`);
  if (v === 3) {
    if (!Array.isArray(p.readerFeatures)) throw new PuffinError('bad_request', `${where}: reader version 3 needs protocol.readerFeatures`);
    const missing = p.readerFeatures.filter((f) => !SUPPORTED_READER_FEATURES.has(f));
    if (missing.length > 0) {
      throw new PuffinError('unsupported', `${where}: the table needs Delta reader feature${missing.length > 1 ? 's' : ''} ${missing.join(', ')}, which this reader does not implement (it implements ${[...SUPPORTED_READER_FEATURES].join(', ')})`);
    }
  }
}

const COMMIT = /^(\d{20})\.json$/;
const CLASSIC = /^(\d{20})\.checkpoint\.parquet$/;
const MULTI = /^(\d{20})\.checkpoint\.(\d{10})\.(\d{10})\.parquet$/;
const V2 = /^(\d{20})\.checkpoint\.[0-9a-fA-F-]{36}\.(parquet|json)$/;

export interface LogListing {
  logUri: string;
  commits: Map<number, string>;
  /** Complete checkpoints by version: the URIs of its files (several for multi-part). */
  checkpoints: Map<number, string[]>;
}

/** The `_delta_log/` directory of a table root. */
export function logUriOf(rootUri: string): string {
  return joinUri(rootUri, '_delta_log');
}

export async function listLog(io: FileIO, rootUri: string): Promise<LogListing> {
  const logUri = logUriOf(rootUri);
  const names = await io.list(logUri);
  const commits = new Map<number, string>();
  const checkpoints = new Map<number, string[]>();
  const parts = new Map<string, { version: number; total: number; got: Map<number, string> }>();
  for (const name of names) {
    let m: RegExpExecArray | null;
    if ((m = COMMIT.exec(name))) commits.set(Number(m[1]), joinUri(logUri, name));
    else if ((m = CLASSIC.exec(name)) || (m = V2.exec(name))) {
      // Several checkpoints of one version are equivalent; the first one found serves.
      const v = Number(m[1]);
      if (!checkpoints.has(v)) checkpoints.set(v, [joinUri(logUri, name)]);
    } else if ((m = MULTI.exec(name))) {
      const v = Number(m[1]);
      const total = Number(m[3]);
      const key = `${v}/${total}`;
      let p = parts.get(key);
      if (!p) parts.set(key, (p = { version: v, total, got: new Map() }));
      p.got.set(Number(m[2]), joinUri(logUri, name));
    }
  }
  for (const p of parts.values()) {
    if (checkpoints.has(p.version) || p.got.size !== p.total) continue; // incomplete multi-part checkpoints are skipped
    const uris: string[] = [];
    for (let i = 1; i <= p.total; i++) if (p.got.has(i)) uris.push(p.got.get(i) as string);
    if (uris.length === p.total) checkpoints.set(p.version, uris);
  }
  if (commits.size === 0 && checkpoints.size === 0) throw new PuffinError('not_found', `${logUri} holds no Delta commits or checkpoints: not a Delta table`);
  return { logUri, commits, checkpoints };
}

function parseActionObject(obj: Record<string, unknown>, into: Actions): void {
  if (obj.add && typeof obj.add === 'object') into.adds.push(obj.add as AddAction);
  else if (obj.remove && typeof obj.remove === 'object') into.removes.push(obj.remove as RemoveAction);
  else if (obj.metaData && typeof obj.metaData === 'object') into.metaData = obj.metaData as MetaDataAction;
  else if (obj.protocol && typeof obj.protocol === 'object') into.protocol = obj.protocol as ProtocolAction;
  else if (obj.sidecar && typeof obj.sidecar === 'object') into.sidecars.push(String((obj.sidecar as { path: unknown }).path));
  else if (obj.commitInfo && typeof obj.commitInfo === 'object') {
    const c = obj.commitInfo as { timestamp?: unknown; inCommitTimestamp?: unknown };
    const t = typeof c.inCommitTimestamp === 'number' ? c.inCommitTimestamp : c.timestamp;
    if (typeof t === 'number' && Number.isFinite(t)) into.timestampMs = t;
  }
}

function emptyActions(): Actions {
  return { adds: [], removes: [], sidecars: [] };
}

/** A newline-delimited JSON log file (a commit or a v2 JSON checkpoint). */
export function parseJsonActions(text: string, where: string): Actions {
  const out = emptyActions();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '') continue;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (err) {
      throw new PuffinError('bad_request', `${where} line ${i + 1} is not JSON: ${(err as Error).message}`);
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new PuffinError('bad_request', `${where} line ${i + 1} is not an action object`);
    parseActionObject(obj as Record<string, unknown>, out);
  }
  return out;
}

/** DuckDB's JSON of a Parquet row: MAPs become objects (partitionValues, configuration). */
async function parquetActions(engine: Engine, io: FileIO, uri: string, into: Actions): Promise<void> {
  let local: string;
  let temp: string | undefined;
  if (/^file:/i.test(uri)) {
    local = fileUriToPath(uri);
    if (!(await io.exists(uri))) throw new PuffinError('not_found', `${uri} does not exist`);
  } else {
    temp = join(tmpdir(), `puffindb-delta-${process.pid}-${randomBytes(6).toString('hex')}.parquet`);
    await writeFile(temp, await io.read(uri));
    local = temp;
  }
  try {
    // The top-level action columns this checkpoint has (a checkpoint holds only some).
    const top = (await engine.query(`SELECT column_name FROM (DESCRIBE SELECT * FROM read_parquet(${sqlString(local)}))`)).rows.map((r) => String(r[0]));
    const wanted = ['add', 'remove', 'metaData', 'protocol', 'sidecar'].filter((c) => top.includes(c));
    if (wanted.length === 0) return;
    const conditions = wanted.map((c) => `"${c}" IS NOT NULL`).join(' OR ');
    const result = await engine.query(`SELECT to_json(struct_pack(${wanted.map((c) => `"${c}" := "${c}"`).join(', ')}))::VARCHAR FROM read_parquet(${sqlString(local)}) WHERE ${conditions}`);
    for (const row of result.rows) {
      const obj = JSON.parse(String(row[0])) as Record<string, unknown>;
      for (const k of Object.keys(obj)) if (obj[k] === null) delete obj[k];
      if (obj.add) {
        const a = obj.add as AddAction;
        // A checkpoint's stats_parsed/partitionValues_parsed are not needed: stats JSON serves.
        delete (a as unknown as Record<string, unknown>).stats_parsed;
        delete (a as unknown as Record<string, unknown>).partitionValues_parsed;
      }
      parseActionObject(obj, into);
    }
  } catch (err) {
    if (err instanceof PuffinError) throw err;
    throw new PuffinError('bad_request', `checkpoint ${uri} cannot be read: ${(err as Error).message}`);
  } finally {
    if (temp) await rm(temp, { force: true });
  }
}

export class DeltaLogReader {
  private readonly parsed = new Map<string, Actions>();

  constructor(private readonly io: FileIO, private readonly engine: Engine) {}

  private remember(uri: string, a: Actions): Actions {
    this.parsed.delete(uri);
    this.parsed.set(uri, a);
    if (this.parsed.size > 4096) this.parsed.delete(this.parsed.keys().next().value as string);
    return a;
  }

  async commit(uri: string): Promise<Actions> {
    const hit = this.parsed.get(uri);
    if (hit) return hit;
    return this.remember(uri, parseJsonActions(new TextDecoder().decode(await this.io.read(uri)), uri));
  }

  /** All actions of a checkpoint (its parts and sidecars). */
  async checkpoint(uris: readonly string[], logUri: string): Promise<Actions> {
    const key = uris.join('\n');
    const hit = this.parsed.get(key);
    if (hit) return hit;
    const out = emptyActions();
    for (const uri of uris) {
      if (uri.endsWith('.json')) {
        const a = parseJsonActions(new TextDecoder().decode(await this.io.read(uri)), uri);
        out.adds.push(...a.adds);
        out.metaData = a.metaData ?? out.metaData;
        out.protocol = a.protocol ?? out.protocol;
        out.sidecars.push(...a.sidecars);
      } else {
        await parquetActions(this.engine, this.io, uri, out);
      }
    }
    // v2 checkpoints: the file actions live in sidecar files under _delta_log/_sidecars/.
    for (const sidecar of out.sidecars.splice(0)) {
      const path = decodeURIComponentSafe(sidecar, `checkpoint ${uris[0]}`);
      const uri = /^[a-z][a-z0-9+.-]*:/i.test(path) ? path : joinUri(joinUri(logUri, '_sidecars'), path);
      if (uri.endsWith('.json')) out.adds.push(...parseJsonActions(new TextDecoder().decode(await this.io.read(uri)), uri).adds);
      else await parquetActions(this.engine, this.io, uri, out);
    }
    out.removes = []; // a checkpoint's removes are tombstones for VACUUM: not part of the state
    return this.remember(key, out);
  }

  /** The table's state at `version` (default: the newest). */
  async state(listing: LogListing, version?: number): Promise<DeltaState> {
    const newestCommit = Math.max(-1, ...listing.commits.keys());
    const newestCheckpoint = Math.max(-1, ...listing.checkpoints.keys());
    const newest = Math.max(newestCommit, newestCheckpoint);
    const target = version ?? newest;
    if (!Number.isSafeInteger(target) || target < 0) throw new PuffinError('bad_request', `Delta version must be a non-negative integer, got ${version}`);
    if (target > newest) throw new PuffinError('not_found', `version ${target} does not exist: the table's newest version is ${newest}`);
    const base = Math.max(-1, ...[...listing.checkpoints.keys()].filter((v) => v <= target));
    const rootUri = parentUri(listing.logUri);
    const files = new Map<string, AddAction>();
    let metaData: MetaDataAction | undefined;
    let protocol: ProtocolAction | undefined;
    if (base >= 0) {
      const cp = await this.checkpoint(listing.checkpoints.get(base) as string[], listing.logUri);
      for (const a of cp.adds) files.set(fileKey(a, rootUri), a);
      metaData = cp.metaData;
      protocol = cp.protocol;
      if (!metaData || !protocol) throw new PuffinError('bad_request', `checkpoint of version ${base} in ${listing.logUri} has no ${metaData ? 'protocol' : 'metaData'} action`);
    }
    for (let v = base + 1; v <= target; v++) {
      const uri = listing.commits.get(v);
      if (uri === undefined) {
        throw new PuffinError('not_found', `version ${target} cannot be reconstructed: commit ${v} is missing from ${listing.logUri}${base >= 0 ? ` (after the checkpoint of version ${base})` : ' and there is no checkpoint before it'}`);
      }
      const a = await this.commit(uri);
      // Within one commit a file's remove applies before its add (a deletion vector update
      // removes the file without its new vector and adds it with it).
      for (const r of a.removes) files.delete(fileKey(r, rootUri));
      for (const add of a.adds) files.set(fileKey(add, rootUri), add);
      metaData = a.metaData ?? metaData;
      protocol = a.protocol ?? protocol;
    }
    if (!metaData) throw new PuffinError('bad_request', `${listing.logUri}: no metaData action up to version ${target}`);
    if (!protocol) throw new PuffinError('bad_request', `${listing.logUri}: no protocol action up to version ${target}`);
    return { version: target, metaData, protocol, files: [...files.values()] };
  }

  /**
   * The newest version committed at or before `timestampMs`, by the commits' own timestamps
   * (commitInfo.inCommitTimestamp, else commitInfo.timestamp; made increasing as Delta does,
   * each at least one millisecond after the one before). File modification times are not
   * used: copying a table changes them.
   */
  async versionAt(listing: LogListing, timestampMs: number): Promise<number> {
    const versions = [...listing.commits.keys()].sort((a, b) => a - b);
    let found: number | undefined;
    let previous = -Infinity;
    for (const v of versions) {
      const a = await this.commit(listing.commits.get(v) as string);
      if (a.timestampMs === undefined) throw new PuffinError('unsupported', `commit ${v} in ${listing.logUri} has no commitInfo timestamp: the table cannot be read as of a timestamp (read it AT (VERSION => n))`);
      const t = Math.max(a.timestampMs, previous + 1);
      previous = t;
      if (t <= timestampMs) found = v;
      else break;
    }
    if (found === undefined) {
      const first = versions.length ? new Date(previous === -Infinity ? 0 : (await this.commit(listing.commits.get(versions[0]) as string)).timestampMs ?? 0).toISOString() : 'none';
      throw new PuffinError('not_found', `no version at or before ${new Date(timestampMs).toISOString()}: the oldest commit in the log is from ${first}`);
    }
    return found;
  }
}

/**
 * Reconciliation key: the file's absolute URI (a path may be recorded relative to the root in
 * one action and absolute in another) and its deletion vector's id.
 */
function fileKey(a: { path: string; deletionVector?: DeletionVectorDescriptor | null }, rootUri: string): string {
  if (typeof a.path !== 'string' || a.path === '') throw new PuffinError('bad_request', `a file action has no path: ${JSON.stringify(a).slice(0, 200)}`);
  const path = decodeURIComponentSafe(a.path, `${rootUri}: file action`);
  const uri = /^[a-z][a-z0-9+.-]*:/i.test(path) ? toUri(path) : joinUri(rootUri, path);
  return `${uri}\n${deletionVectorId(a.deletionVector)}`;
}
