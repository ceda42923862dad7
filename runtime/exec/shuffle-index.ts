// The shuffle's plain data: the offset index a producer task returns, the key layout of
// shuffle objects, how a column travels through a Parquet piece, and the sizing rules that
// keep GETs per stage bounded. Everything here is JSON-safe and free of I/O, so it can
// travel in task results, the state store and plans.
//
// One producer task writes ONE object (or, when small, nothing: its bytes ride inline in
// the index). The object is its partitions' pieces laid end to end in partition order; a
// piece is one self-contained Parquet file, or, when DuckDB split a partition while
// writing it, a few Parquet files back to back (`files` gives their lengths). A consumer of
// partition p fetches bytes [offsets[p], offsets[p] + lengths[p]) of every producer's
// object with one ranged GET, so a stage costs at most producers x consumers GETs and
// objects grow with tasks, not with tasks x partitions.

import { createHash } from 'node:crypto';
import { PuffinError } from '../errors.ts';
import type { Column } from '../catalog/types.ts';
import { assertSafeId } from './wire.ts';

export const SHUFFLE_FORMAT = 'puffindb-shuffle/1';

/** Where a producer's bytes are: one object in the shuffle store, or inline (base64). */
export type ShuffleLocation =
  | { kind: 'object'; key: string; size: number }
  | { kind: 'inline'; base64: string };

/**
 * What a producer task returns (and what the coordinator keeps in the state store). The
 * per-partition arrays are columnar, `offsets[p]`, `lengths[p]`, `rows[p]`, which keeps an
 * index of 1,000 partitions near 20 KB of JSON; `pieceOf` gives one partition's entry.
 */
export interface ShuffleIndex {
  format: typeof SHUFFLE_FORMAT;
  queryId: string;
  stageId: string;
  taskId: string;
  attempt: number;
  /** DuckDB version that computed the partition ids (`version()`); producers of one shuffle must agree. */
  duckdb: string;
  /** The rows' columns and declared DuckDB types (the consumer's view has exactly these). */
  columns: Column[];
  partitions: number;
  location: ShuffleLocation;
  /** Byte offset of each partition's piece in the object (or the inline bytes). */
  offsets: number[];
  /** Byte length of each piece; 0 for an empty partition (no piece at all). */
  lengths: number[];
  rows: number[];
  /**
   * Partitions whose piece is more than one Parquet file (DuckDB rolls a partition over to a
   * new file past `partitioned_write_max_open_files` open partitions): the files' lengths in
   * order, summing to the piece's length. Absent partitions are one file.
   */
  files?: Record<string, number[]>;
  totalRows: number;
  totalBytes: number;
}

/** One partition's piece of one producer. */
export interface ShufflePiece {
  offset: number;
  length: number;
  rows: number;
  /** Lengths of the Parquet files of the piece, in order (one entry unless DuckDB split it). */
  files: number[];
}

/**
 * One producer's piece of one partition, as a consumer task needs it: self-contained, so the
 * coordinator can hand a consumer only its own slice of every index. Inline pieces carry
 * just their own bytes (offset 0), never the producer's whole inline payload.
 */
export interface PartitionSource {
  taskId: string;
  location: ShuffleLocation;
  offset: number;
  length: number;
  rows: number;
  files: number[];
}

export function pieceOf(index: ShuffleIndex, partition: number): ShufflePiece {
  if (!Number.isInteger(partition) || partition < 0 || partition >= index.partitions) {
    throw new PuffinError('bad_request', `partition ${partition} is outside 0..${index.partitions - 1} of task ${index.taskId}`);
  }
  const length = index.lengths[partition];
  const files = index.files?.[String(partition)] ?? (length > 0 ? [length] : []);
  return { offset: index.offsets[partition], length, rows: index.rows[partition], files };
}

/**
 * The pieces of `partition` over every producer of a stage, skipping empty ones. Checks
 * that the producers describe the same shuffle (same partition count, columns and DuckDB).
 */
export function partitionSources(indexes: readonly ShuffleIndex[], partition: number): PartitionSource[] {
  return partitionSlicer(indexes)(partition);
}

/**
 * partitionSources for every partition of a stage's producers, checked once and with each
 * inline payload decoded once (the coordinator slices P indexes for N tasks).
 */
export function partitionSlicer(indexes: readonly ShuffleIndex[]): (partition: number) => PartitionSource[] {
  assertCompatible(indexes);
  const inline = indexes.map((index) => (index.location.kind === 'inline' ? Buffer.from(index.location.base64, 'base64') : undefined));
  return (partition) => {
    const sources: PartitionSource[] = [];
    indexes.forEach((index, i) => {
      const piece = pieceOf(index, partition);
      if (piece.length === 0) return;
      const bytes = inline[i];
      sources.push(bytes
        ? { taskId: index.taskId, location: { kind: 'inline', base64: bytes.subarray(piece.offset, piece.offset + piece.length).toString('base64') }, offset: 0, length: piece.length, rows: piece.rows, files: piece.files }
        : { taskId: index.taskId, location: index.location, offset: piece.offset, length: piece.length, rows: piece.rows, files: piece.files });
    });
    return sources;
  };
}

/** Shuffle bytes a later stage's task reads, about, by default (PUFFINDB_STAGE_TASK_BYTES). */
export const DEFAULT_STAGE_TASK_BYTES = 8 * 1024 * 1024;

/**
 * The tasks of a later stage, as contiguous ranges [from, to) of its partitions: partitions
 * are taken in order into one task until the next would bring its bytes (every producer's
 * piece of them, over every stage it reads) past `targetBytes`; a partition larger than the
 * target is a task of its own (a partition cannot be split: its rows share keys). Hash
 * partitions can be read together because a task's SQL is the same for any set of whole
 * partitions; range partitions stay in order. The shuffle's partition count is fixed when
 * its producers run (the planner's estimate at most); this is the run-time correction
 * (Spark's adaptive coalescing of shuffle partitions), so a small shuffle is a few tasks,
 * not one per worker. targetBytes <= 0: one task per partition.
 */
export function coalescePartitions(bytes: readonly number[], targetBytes: number): [number, number][] {
  if (bytes.length === 0) return [];
  if (!(targetBytes > 0)) return bytes.map((_, p) => [p, p + 1]);
  const ranges: [number, number][] = [];
  let from = 0;
  let sum = 0;
  for (let p = 0; p < bytes.length; p++) {
    if (p > from && sum + bytes[p] > targetBytes) {
      ranges.push([from, p]);
      from = p;
      sum = 0;
    }
    sum += bytes[p];
  }
  ranges.push([from, bytes.length]);
  return ranges;
}

/** Bytes of each partition over every producer of the stages a later stage reads. */
export function partitionBytes(reads: readonly (readonly ShuffleIndex[])[], partitions: number): number[] {
  const bytes = new Array<number>(partitions).fill(0);
  for (const indexes of reads) {
    for (const index of indexes) {
      if (index.partitions !== partitions) throw new PuffinError('internal', `task ${index.taskId} wrote ${index.partitions} partitions, its consumer stage has ${partitions}`);
      for (let p = 0; p < partitions; p++) bytes[p] += index.lengths[p];
    }
  }
  return bytes;
}

/**
 * Pieces of a range of partitions, with each producer's adjacent pieces joined: partitions
 * are laid end to end in a producer's object, so partitions from..to-1 of one producer are
 * one ranged GET (its Parquet files listed in order), not one per partition.
 */
export function joinAdjacentSources(sources: readonly PartitionSource[]): PartitionSource[] {
  const out: PartitionSource[] = [];
  const last = new Map<string, number>();
  for (const s of sources) {
    const i = s.location.kind === 'object' ? last.get(`${s.taskId}\n${s.location.key}`) : undefined;
    const prev = i === undefined ? undefined : out[i];
    if (prev && prev.location.kind === 'object' && prev.offset + prev.length === s.offset) {
      out[i!] = { ...prev, length: prev.length + s.length, rows: prev.rows + s.rows, files: [...prev.files, ...s.files] };
      continue;
    }
    if (s.location.kind === 'object') last.set(`${s.taskId}\n${s.location.key}`, out.length);
    out.push(s);
  }
  return out;
}

/** Structural check of a PartitionSource that crossed a process boundary. */
export function decodePartitionSource(value: unknown): PartitionSource {
  const bad = (why: string): never => {
    throw new PuffinError('bad_request', `invalid shuffle piece: ${why}`);
  };
  if (typeof value !== 'object' || value === null) return bad('not an object');
  const o = value as Record<string, unknown>;
  assertSafeId('shuffle piece taskId', o.taskId);
  for (const f of ['offset', 'length', 'rows'] as const) if (!Number.isSafeInteger(o[f]) || (o[f] as number) < 0) bad(`${f} is not a non-negative integer`);
  const length = o.length as number;
  if (!Array.isArray(o.files) || !o.files.every((x) => Number.isSafeInteger(x) && x > 0) || o.files.reduce((sum: number, x) => sum + Number(x), 0) !== length) bad('files do not add up to the length');
  const loc = o.location as Record<string, unknown> | undefined;
  if (loc?.kind === 'object') {
    if (typeof loc.key !== 'string' || !Number.isSafeInteger(loc.size) || (o.offset as number) + length > (loc.size as number)) bad('the piece is outside its object');
  } else if (loc?.kind === 'inline') {
    if (typeof loc.base64 !== 'string' || o.offset !== 0 || Buffer.from(loc.base64, 'base64').byteLength !== length) bad('inline bytes do not match the piece');
  } else bad('location');
  return o as unknown as PartitionSource;
}

/**
 * Throws unless every index has the same partition count, columns and DuckDB version. The
 * version matters because partition ids come from DuckDB's hash(), which is stable across
 * processes of one DuckDB build but not promised across versions: a fleet mixing builds
 * mid-deploy would send equal keys to different partitions. Both sides of a partitioned
 * join must pass this check together.
 */
export function assertCompatible(indexes: readonly ShuffleIndex[]): void {
  const first = indexes[0];
  if (!first) return;
  const columns = JSON.stringify(first.columns);
  for (const index of indexes) {
    if (index.format !== SHUFFLE_FORMAT) throw new PuffinError('internal', `shuffle index of task ${index.taskId} has format ${String(index.format)}, expected ${SHUFFLE_FORMAT}`);
    if (index.partitions !== first.partitions) {
      throw new PuffinError('internal', `shuffle producers disagree on the partition count: ${first.taskId} has ${first.partitions}, ${index.taskId} has ${index.partitions}`);
    }
    if (index.duckdb !== first.duckdb) {
      throw new PuffinError('internal', `shuffle producers ran different DuckDB versions (${first.duckdb} and ${index.duckdb}); hash partitions would not line up`);
    }
    if (JSON.stringify(index.columns) !== columns) {
      throw new PuffinError('internal', `shuffle producers disagree on the columns: ${first.taskId} and ${index.taskId}`);
    }
  }
}

/**
 * Structural check of an index that crossed a process boundary: arrays of the right
 * length, pieces contiguous and inside the object. Returns the index typed.
 */
export function decodeShuffleIndex(value: unknown): ShuffleIndex {
  const bad = (why: string): never => {
    throw new PuffinError('bad_request', `invalid shuffle index: ${why}`);
  };
  if (typeof value !== 'object' || value === null) return bad('not an object');
  const o = value as Record<string, unknown>;
  if (o.format !== SHUFFLE_FORMAT) bad(`format ${JSON.stringify(o.format)}`);
  for (const f of ['queryId', 'stageId', 'taskId'] as const) assertSafeId(f, o[f]);
  if (typeof o.duckdb !== 'string') bad('duckdb is not a string');
  const n = o.partitions;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) return bad('partitions is not a positive integer');
  const nonNegInts = (name: string): number[] => {
    const a = o[name];
    if (!Array.isArray(a) || a.length !== n || !a.every((x) => Number.isSafeInteger(x) && x >= 0)) return bad(`${name} is not ${n} non-negative integers`);
    return a as number[];
  };
  const offsets = nonNegInts('offsets');
  const lengths = nonNegInts('lengths');
  nonNegInts('rows');
  if (!Array.isArray(o.columns) || !o.columns.every((c) => typeof c?.name === 'string' && typeof c?.type === 'string')) bad('columns');
  let end = 0;
  for (let p = 0; p < n; p++) {
    if (offsets[p] !== end) bad(`partition ${p} starts at ${offsets[p]}, expected ${end} (pieces are contiguous)`);
    end += lengths[p];
  }
  if (o.totalBytes !== end) bad(`totalBytes ${String(o.totalBytes)} but the pieces span ${end}`);
  const loc = o.location as Record<string, unknown> | undefined;
  if (loc?.kind === 'object') {
    if (typeof loc.key !== 'string' || loc.size !== end) bad('object location needs a key and the pieces\' total size');
  } else if (loc?.kind === 'inline') {
    if (typeof loc.base64 !== 'string' || Buffer.from(loc.base64, 'base64').byteLength !== end) bad('inline bytes do not match the pieces');
  } else bad('location');
  if (o.files !== undefined) {
    if (typeof o.files !== 'object' || o.files === null) bad('files');
    for (const [p, lens] of Object.entries(o.files as Record<string, unknown>)) {
      const i = Number(p);
      if (!Number.isInteger(i) || i < 0 || i >= n || !Array.isArray(lens) || lens.reduce((s: number, x) => s + Number(x), 0) !== lengths[i]) bad(`files of partition ${p}`);
    }
  }
  return o as unknown as ShuffleIndex;
}

// ---- key layout ----------------------------------------------------------------------

export interface ShuffleKeyLayout {
  /** Prepended to every key ('' or ending in '/'), inside the shuffle store's root. */
  keyPrefix?: string;
  /**
   * Hex digits of the spreading hash at the start of each key: 16^digits top-level prefixes.
   * S3 serves about 5,500 GETs/s per prefix, so 2 digits (256 prefixes) allow ~1.4 M GETs/s
   * once S3 has split the bucket's keyspace, and cleanup of a query costs 256 LISTs. Default 2.
   */
  prefixDigits?: number;
}

const DEFAULT_PREFIX_DIGITS = 2;

function layout(options: ShuffleKeyLayout): { keyPrefix: string; digits: number } {
  const keyPrefix = options.keyPrefix ?? '';
  if (keyPrefix !== '' && !keyPrefix.endsWith('/')) throw new PuffinError('bad_request', `shuffle keyPrefix '${keyPrefix}' must be empty or end with '/'`);
  const digits = options.prefixDigits ?? DEFAULT_PREFIX_DIGITS;
  if (!Number.isInteger(digits) || digits < 0 || digits > 4) throw new PuffinError('bad_request', `shuffle prefixDigits must be 0..4, got ${digits}`);
  return { keyPrefix, digits };
}

/** The spreading prefix of a task: the first hex digits of sha256(query/stage/task). */
export function spreadOf(queryId: string, stageId: string, taskId: string, digits = DEFAULT_PREFIX_DIGITS): string {
  return createHash('sha256').update(`${queryId}/${stageId}/${taskId}`).digest('hex').slice(0, digits);
}

/**
 * Key of a producer's object: `<keyPrefix><spread>/<queryId>/<stageId>/<taskId>-a<attempt>-<nonce>.shuffle`.
 * The spread comes first so a query's objects land on many S3 prefixes; the query id comes
 * next so its objects can still be listed (one LIST per spread prefix) and deleted. The
 * nonce keeps duplicate attempts (straggler copies) from overwriting each other.
 */
export function shuffleObjectKey(ids: { queryId: string; stageId: string; taskId: string; attempt: number }, nonce: string, options: ShuffleKeyLayout = {}): string {
  const { keyPrefix, digits } = layout(options);
  assertSafeId('queryId', ids.queryId);
  assertSafeId('stageId', ids.stageId);
  assertSafeId('taskId', ids.taskId);
  assertSafeId('nonce', nonce);
  if (!Number.isSafeInteger(ids.attempt) || ids.attempt < 0) throw new PuffinError('bad_request', `attempt must be a non-negative integer, got ${ids.attempt}`);
  const spread = digits > 0 ? `${spreadOf(ids.queryId, ids.stageId, ids.taskId, digits)}/` : '';
  return `${keyPrefix}${spread}${ids.queryId}/${ids.stageId}/${ids.taskId}-a${ids.attempt}-${nonce}.shuffle`;
}

/**
 * Every list prefix under which a query's shuffle objects can be: one per spread value, or,
 * when the query's tasks are known (the plan names them), only the spreads those tasks hash
 * to. Either way every attempt's object is found, reported or not, since the spread depends
 * on the task only.
 */
export function queryShufflePrefixes(queryId: string, options: ShuffleKeyLayout & { tasks?: readonly { stageId: string; taskId: string }[] } = {}): string[] {
  const { keyPrefix, digits } = layout(options);
  assertSafeId('queryId', queryId);
  if (digits === 0) return [`${keyPrefix}${queryId}/`];
  if (options.tasks) {
    const spreads = new Set(options.tasks.map((t) => spreadOf(queryId, assertSafeId('stageId', t.stageId), assertSafeId('taskId', t.taskId), digits)));
    return [...spreads].sort().map((spread) => `${keyPrefix}${spread}/${queryId}/`);
  }
  const count = 16 ** digits;
  return Array.from({ length: count }, (_, i) => `${keyPrefix}${i.toString(16).padStart(digits, '0')}/${queryId}/`);
}

// ---- how columns travel --------------------------------------------------------------

/**
 * Whether a column of this DuckDB type is written to Parquet as VARCHAR and cast back on
 * read. DuckDB's Parquet writer loses these (measured on 1.5.6): HUGEINT and UHUGEINT become
 * DOUBLE, INTERVAL keeps milliseconds only, TIME WITH TIME ZONE is normalized to +00, also
 * inside lists, structs and maps. Their text form casts back exactly (nested values included).
 * A struct field merely named like one of these types also goes as text: still exact.
 */
export function travelsAsText(type: string): boolean {
  return /\b(U?HUGEINT|INT128|UINT128|INTERVAL|TIMETZ|TIME\s+WITH\s+TIME\s+ZONE)\b/i.test(type);
}

/** Throws for types no Parquet piece can carry faithfully. */
export function assertShuffleable(columns: readonly Column[]): void {
  const names = new Set<string>();
  for (const c of columns) {
    // UNION comes back from Parquet as a STRUCT that does not cast back, and its text form
    // loses the tag.
    if (/\bUNION\s*\(/i.test(c.type)) throw new PuffinError('unsupported', `column ${c.name} of type ${c.type}: UNION values cannot be shuffled`);
    const lower = c.name.toLowerCase();
    if (names.has(lower)) throw new PuffinError('internal', `shuffle output has two columns named ${c.name}; Parquet pieces need distinct names`);
    names.add(lower);
  }
}

// ---- sizing --------------------------------------------------------------------------

/** Upper bound of the GETs of one shuffle: every consumer reads every producer's piece once. */
export function shuffleGetCount(producers: number, consumers: number): number {
  return producers * consumers;
}

