// A Hudi table's active timeline: the instant files of `.hoodie/` (timeline layout 1, table
// version 6: `<instant>.<action>[.requested|.inflight]`) or of `.hoodie/timeline/` (layout 2,
// table version 8 / Hudi 1.x: a completed instant is `<requested>_<completed>.<action>`, its
// LSM history under `history/` is not read). Only completed instants count; of those, the
// `commit` and `replacecommit` actions make a copy-on-write table's file slices.
// Commit metadata is JSON (layout 1) or an Avro container file (layout 2, HoodieCommitMetadata
// / HoodieReplaceCommitMetadata); either is read by its first bytes. Completed instant files
// never change once written, so parsed metadata is cached by URI.

import { PuffinError } from '../../errors.ts';
import { readAvroContainer } from '../iceberg/avro.ts';
import { joinUri, type FileIO } from '../iceberg/io.ts';
import type { HudiConfig } from './properties.ts';

export type InstantState = 'requested' | 'inflight' | 'completed';

export interface Instant {
  /** The requested time as written: 14 (seconds) or 17 (milliseconds) digits. */
  requested: string;
  /** Layout 2: the completion time. */
  completed?: string;
  action: string;
  state: InstantState;
  fileName: string;
}

export interface Timeline {
  dirUri: string;
  /** Every instant found, in time order. */
  instants: Instant[];
  /** Completed `commit` and `replacecommit` instants, in time order. */
  commits: Instant[];
  /** The earliest time on the active timeline (older instants were archived), if any. */
  start?: string;
  /** Changes whenever an instant file appears, goes or changes state. */
  key: string;
}

const INSTANT = /^(\d{14}|\d{17})(?:_(\d{14}|\d{17}))?\.([a-z]+)(?:\.(requested|inflight))?$/;

/** An instant time comparable as text: second-precision times get '000' milliseconds. */
export function instantOrder(t: string): string {
  return t.length === 14 ? `${t}000` : t;
}

export function compareInstants(a: string, b: string): number {
  const x = instantOrder(a);
  const y = instantOrder(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** The instant an instant file's name describes, or undefined for any other file. */
export function parseInstantFileName(name: string): Instant | undefined {
  const m = INSTANT.exec(name);
  if (!m) return undefined;
  let action = m[3];
  let state: InstantState = (m[4] as InstantState | undefined) ?? 'completed';
  // `<t>.inflight` is a commit in flight (the commit action leaves its name out).
  if (action === 'inflight' && m[4] === undefined) {
    action = 'commit';
    state = 'inflight';
  } else if (action === 'requested' && m[4] === undefined) {
    return undefined;
  }
  if (m[2] !== undefined && state !== 'completed') return undefined; // only completed instants carry a completion time
  return { requested: m[1], ...(m[2] !== undefined ? { completed: m[2] } : {}), action, state, fileName: name };
}

/** The directory holding the active timeline. */
export function timelineDirUri(rootUri: string, config: HudiConfig): string {
  const hoodie = joinUri(rootUri, '.hoodie');
  return config.timelineLayout >= 2 ? joinUri(hoodie, config.timelinePath) : hoodie;
}

/** The data-writing actions of a copy-on-write table. */
const COMMIT_ACTIONS = new Set(['commit', 'replacecommit']);

export async function listTimeline(io: FileIO, rootUri: string, config: HudiConfig): Promise<Timeline> {
  const dirUri = timelineDirUri(rootUri, config);
  const names = (await io.list(dirUri)).filter((n) => !n.endsWith('.crc')).sort();
  const instants = names.map(parseInstantFileName).filter((i): i is Instant => i !== undefined);
  instants.sort((a, b) => compareInstants(a.requested, b.requested) || rank(a.state) - rank(b.state));
  const commits = instants.filter((i) => i.state === 'completed' && COMMIT_ACTIONS.has(i.action));
  return {
    dirUri,
    instants,
    commits,
    ...(instants.length > 0 ? { start: instants[0].requested } : {}),
    key: instants.map((i) => i.fileName).join('\n'),
  };
}

function rank(s: InstantState): number {
  return s === 'requested' ? 0 : s === 'inflight' ? 1 : 2;
}

/** One file written by an instant (a `HoodieWriteStat`), as this reader uses it. */
export interface WriteStat {
  partitionPath: string;
  fileId: string;
  /** Relative to the table root. */
  path: string;
  numWrites?: number;
  fileSizeInBytes?: number;
}

export interface CommitMetadata {
  writeStats: WriteStat[];
  /** Replace commits: the file groups they replace. */
  replaced: { partitionPath: string; fileId: string }[];
  /** `extraMetadata.schema`: the writer's Avro schema. */
  schema?: string;
  operationType?: string;
}

const AVRO_MAGIC = [0x4f, 0x62, 0x6a, 0x01]; // 'Obj' 1

function toNumber(v: unknown): number | undefined {
  if (typeof v === 'bigint') return Number(v);
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** An instant's metadata, JSON or Avro; empty content is metadata without files. */
export function parseCommitMetadata(bytes: Uint8Array, where: string): CommitMetadata {
  let raw: Record<string, unknown>;
  if (bytes.length === 0) {
    raw = {};
  } else if (AVRO_MAGIC.every((b, i) => bytes[i] === b)) {
    const records = readAvroContainer(bytes, where).records;
    if (records.length !== 1 || typeof records[0] !== 'object' || records[0] === null) throw new PuffinError('bad_request', `${where}: an instant's Avro metadata must hold one record, it holds ${records.length}`);
    raw = records[0] as Record<string, unknown>;
  } else {
    const text = new TextDecoder().decode(bytes);
    if (text.trim() === '') {
      raw = {};
    } else {
      try {
        raw = JSON.parse(text) as Record<string, unknown>;
      } catch (err) {
        throw new PuffinError('bad_request', `${where} is neither JSON nor Avro commit metadata: ${(err as Error).message}`);
      }
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new PuffinError('bad_request', `${where}: commit metadata must be a JSON object`);
    }
  }
  const writeStats: WriteStat[] = [];
  const byPartition = raw.partitionToWriteStats;
  if (byPartition !== null && byPartition !== undefined) {
    if (typeof byPartition !== 'object' || Array.isArray(byPartition)) throw new PuffinError('bad_request', `${where}: partitionToWriteStats must be an object`);
    for (const [partition, stats] of Object.entries(byPartition as Record<string, unknown>)) {
      if (!Array.isArray(stats)) throw new PuffinError('bad_request', `${where}: partitionToWriteStats['${partition}'] must be a list`);
      for (const s of stats as Record<string, unknown>[]) {
        const fileId = str(s?.fileId);
        const path = str(s?.path);
        if (fileId === undefined || path === undefined || path === '') continue; // deletes of a whole group, stats without a file
        const numWrites = toNumber(s.numWrites);
        const size = toNumber(s.fileSizeInBytes);
        writeStats.push({
          partitionPath: str(s.partitionPath) ?? partition,
          fileId,
          path,
          ...(numWrites !== undefined && Number.isSafeInteger(numWrites) && numWrites >= 0 ? { numWrites } : {}),
          ...(size !== undefined && Number.isSafeInteger(size) && size >= 0 ? { fileSizeInBytes: size } : {}),
        });
      }
    }
  }
  const replaced: CommitMetadata['replaced'] = [];
  const replaceMap = raw.partitionToReplaceFileIds;
  if (replaceMap !== null && replaceMap !== undefined) {
    if (typeof replaceMap !== 'object' || Array.isArray(replaceMap)) throw new PuffinError('bad_request', `${where}: partitionToReplaceFileIds must be an object`);
    for (const [partitionPath, ids] of Object.entries(replaceMap as Record<string, unknown>)) {
      if (!Array.isArray(ids)) throw new PuffinError('bad_request', `${where}: partitionToReplaceFileIds['${partitionPath}'] must be a list`);
      for (const id of ids) if (typeof id === 'string') replaced.push({ partitionPath, fileId: id });
    }
  }
  const extra = raw.extraMetadata;
  const schema = extra && typeof extra === 'object' && !Array.isArray(extra) ? str((extra as Record<string, unknown>).schema) : undefined;
  const operationType = str(raw.operationType);
  return { writeStats, replaced, ...(schema ? { schema } : {}), ...(operationType ? { operationType } : {}) };
}

/** Reads and caches instants' metadata (completed instant files never change). */
export class CommitReader {
  private readonly parsed = new Map<string, CommitMetadata>();

  constructor(private readonly io: FileIO) {}

  async metadata(timeline: Timeline, instant: Instant): Promise<CommitMetadata> {
    const uri = joinUri(timeline.dirUri, instant.fileName);
    const hit = this.parsed.get(uri);
    if (hit) return hit;
    const m = parseCommitMetadata(await this.io.read(uri), uri);
    this.parsed.set(uri, m);
    if (this.parsed.size > 4096) this.parsed.delete(this.parsed.keys().next().value as string);
    return m;
  }
}
