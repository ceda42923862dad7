// The combining exchange: a two-level shuffle for stages with many producers (Lambada's
// "multi-level exchange", Starling's combiners). A direct shuffle costs every consumer one
// ranged GET per producer, so at P producers and N consumers a stage issues P x N GETs and
// each consumer waits for P of them, which at 1,000 Lambda producers is seconds of request
// latency per consumer however little data there is. The combining exchange inserts one round
// of tasks between them, laid out as a grid:
//
// - producers are cut into R rows of about sqrt(P) producers each, partitions into C column
//   groups of contiguous partitions;
// - combiner (r, c) fetches, from each producer of row r, the byte range holding column group
//   c's pieces (one ranged GET: a producer's pieces lie end to end in partition order) and
//   writes ONE object with those partitions' pieces, each the producers' pieces back to back;
// - a consumer of partition p then reads R objects, the combiners of p's column group.
//
// Requests fall from P x N to P x C + N x R (about 2 P sqrt(P) at P = N), and each task waits
// for about sqrt(P) GETs instead of P. Nothing is decoded: a combined piece is several Parquet
// files back to back, which the index already describes (ShuffleIndex.files), so consumers
// read combined objects exactly as they read a producer's.

import { randomBytes } from 'node:crypto';
import { PuffinError } from '../errors.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import type { FragmentRequest, FragmentResult } from './invoker.ts';
import type { Column } from '../catalog/types.ts';
import { assertSafeId } from './wire.ts';
import {
  SHUFFLE_FORMAT, shuffleObjectKey,
  type ShuffleIndex, type ShuffleKeyLayout, type ShuffleLocation,
} from './shuffle-index.ts';
import { DEFAULT_SHUFFLE_GET_CONCURRENCY, forEachLimit, hedgedGetRange } from './shuffle-read.ts';

/** Stored producer objects from which a stage's shuffle is combined; default. */
export const DEFAULT_COMBINE_ABOVE = 128;

/** One combiner's share of the grid: producers [from, to) of the stage's indexes, partitions [lo, hi). */
export interface CombineCell {
  producers: [number, number];
  partitions: [number, number];
}

/**
 * Whether a shuffle is worth combining: only when enough producers stored an object (inline
 * pieces cost no GET) and the direct GETs per consumer would exceed what one combining round
 * costs (two rounds of about sqrt(objects) GETs).
 */
export function shouldCombine(indexes: readonly ShuffleIndex[], consumers: number, above = DEFAULT_COMBINE_ABOVE): boolean {
  return combinesObjects(indexes.filter((i) => i.location.kind === 'object').length, consumers, above);
}

/** The same rule over counts: `stored` producer objects read by `consumers` tasks (the scale model's too). */
export function combinesObjects(stored: number, consumers: number, above = DEFAULT_COMBINE_ABOVE): boolean {
  if (!(above > 0) || consumers < 2) return false;
  return stored >= above && stored > 2 * Math.ceil(Math.sqrt(stored));
}

/** The grid for P producers and N partitions: rows of ~sqrt(P) producers, column groups of contiguous partitions. */
export function combineGrid(producers: number, partitions: number): CombineCell[] {
  if (!(Number.isInteger(producers) && producers >= 1 && Number.isInteger(partitions) && partitions >= 1)) {
    throw new PuffinError('internal', `combine grid needs positive producer and partition counts, got ${producers} x ${partitions}`);
  }
  const side = Math.ceil(Math.sqrt(producers));
  const rowSize = Math.ceil(producers / side);
  const groups = Math.min(partitions, side);
  const width = Math.ceil(partitions / groups);
  const cells: CombineCell[] = [];
  for (let from = 0; from < producers; from += rowSize) {
    for (let lo = 0; lo < partitions; lo += width) {
      cells.push({ producers: [from, Math.min(producers, from + rowSize)], partitions: [lo, Math.min(partitions, lo + width)] });
    }
  }
  return cells;
}

/**
 * One producer's share of a combiner's column group, as the combiner is sent it: the byte
 * range of its object holding partitions from..to-1 and each one's piece, no more (a whole
 * index is three numbers per partition of the stage: at 1,000 producers x 1,000 partitions
 * a row's indexes would be megabytes of request).
 */
export interface CombineSource {
  taskId: string;
  /** The producer's object, or (inline) only this range's bytes. */
  location: ShuffleLocation;
  /** Offset in the object of partition `from`'s piece (0 for inline bytes). */
  start: number;
  /** Per partition from..to-1: its piece's length and rows. */
  lengths: number[];
  rows: number[];
  /** Partitions (numbered from `from`) whose piece is several Parquet files: their lengths. */
  files?: Record<string, number[]>;
}

/** The share of partitions from..to-1 of one producer's index. */
export function combineSourceOf(index: ShuffleIndex, from: number, to: number): CombineSource {
  const start = index.offsets[from];
  const end = index.offsets[to - 1] + index.lengths[to - 1];
  const files: Record<string, number[]> = {};
  for (let p = from; p < to; p++) {
    const many = index.files?.[String(p)];
    if (many && many.length > 1) files[String(p - from)] = many;
  }
  return {
    taskId: index.taskId,
    location: index.location.kind === 'inline'
      ? { kind: 'inline', base64: Buffer.from(index.location.base64, 'base64').subarray(start, end).toString('base64') }
      : index.location,
    start: index.location.kind === 'inline' ? 0 : start,
    lengths: index.lengths.slice(from, to),
    rows: index.rows.slice(from, to),
    ...(Object.keys(files).length ? { files } : {}),
  };
}

/** Structural check of a CombineSource that crossed a process boundary, for a group of `span` partitions. */
export function decodeCombineSource(value: unknown, span: number): CombineSource {
  const bad = (why: string): never => {
    throw new PuffinError('bad_request', `invalid shuffle combine source: ${why}`);
  };
  if (typeof value !== 'object' || value === null) return bad('not an object');
  const o = value as Record<string, unknown>;
  assertSafeId('combine source taskId', o.taskId);
  const ints = (name: string): number[] => {
    const a = o[name];
    if (!Array.isArray(a) || a.length !== span || !a.every((x) => Number.isSafeInteger(x) && x >= 0)) return bad(`${name} is not ${span} non-negative integers`);
    return a as number[];
  };
  const lengths = ints('lengths');
  ints('rows');
  const total = lengths.reduce((sum, n) => sum + n, 0);
  if (!Number.isSafeInteger(o.start) || (o.start as number) < 0) bad('start');
  const loc = o.location as Record<string, unknown> | undefined;
  if (loc?.kind === 'object') {
    if (typeof loc.key !== 'string' || !Number.isSafeInteger(loc.size) || (o.start as number) + total > (loc.size as number)) bad('the range is outside the object');
  } else if (loc?.kind === 'inline') {
    if (typeof loc.base64 !== 'string' || o.start !== 0 || Buffer.from(loc.base64, 'base64').byteLength !== total) bad('inline bytes do not match the pieces');
  } else bad('location');
  if (o.files !== undefined) {
    if (typeof o.files !== 'object' || o.files === null) bad('files');
    for (const [k, lens] of Object.entries(o.files as Record<string, unknown>)) {
      const i = Number(k);
      if (!Number.isInteger(i) || i < 0 || i >= span || !Array.isArray(lens) || !lens.every((x) => Number.isSafeInteger(x) && x > 0) || lens.reduce((sum: number, x) => sum + Number(x), 0) !== lengths[i]) bad(`files of partition ${k}`);
    }
  }
  return o as unknown as CombineSource;
}

export interface CombineOptions extends ShuffleKeyLayout {
  store: ObjectStore;
  /** The row's producers' shares of partitions from..to-1 (combineSourceOf). */
  sources: readonly CombineSource[];
  /** The shuffle's partition count, its columns and the producers' DuckDB (the combined index repeats them). */
  partitions: number;
  columns: Column[];
  duckdb: string;
  from: number;
  to: number;
  queryId: string;
  /** The combining pseudo-stage and this combiner's task id (the object key's parts). */
  stageId: string;
  taskId: string;
  attempt?: number;
  /** A combined output of at most this many bytes travels inline. */
  inlineLimitBytes: number;
  /** GETs in flight at once; default DEFAULT_SHUFFLE_GET_CONCURRENCY. */
  concurrency?: number;
  signal?: AbortSignal;
}

export interface CombineResult {
  index: ShuffleIndex;
  gets: number;
  puts: number;
  bytesRead: number;
}

/** Run one combiner: fetch its column group's ranges of its row's producers, write one object. */
export async function combineShuffle(options: CombineOptions): Promise<CombineResult> {
  const { store, sources, from, to, signal } = options;
  const n = options.partitions;
  if (!(Number.isInteger(from) && Number.isInteger(to) && from >= 0 && from < to && to <= n)) {
    throw new PuffinError('bad_request', `combiner ${options.taskId}: partitions ${from}..${to - 1} are outside 0..${n - 1}`);
  }
  const span = to - from;
  for (const source of sources) {
    if (source.lengths.length !== span || source.rows.length !== span) throw new PuffinError('bad_request', `combiner ${options.taskId}: producer ${source.taskId} describes ${source.lengths.length} partitions, expected ${span}`);
  }
  // Each producer's bytes for partitions from..to-1: one contiguous range of its object.
  const ranges: (Uint8Array | undefined)[] = new Array(sources.length);
  let gets = 0;
  let bytesRead = 0;
  await forEachLimit(sources, options.concurrency ?? DEFAULT_SHUFFLE_GET_CONCURRENCY, signal, async (source, i) => {
    const length = source.lengths.reduce((sum, x) => sum + x, 0);
    if (length === 0) return;
    if (source.location.kind === 'inline') {
      ranges[i] = Buffer.from(source.location.base64, 'base64');
      return;
    }
    gets += 1;
    const got = await hedgedGetRange(store, source.location.key, source.start, length, 2_000, () => { gets += 1; });
    if (got.bytes.byteLength !== length) throw new PuffinError('internal', `shuffle object ${source.location.key}: asked for ${length} bytes, got ${got.bytes.byteLength}`);
    ranges[i] = got.bytes;
    bytesRead += got.bytes.byteLength;
  });
  if (signal?.aborted) throw signal.reason;

  // Partition by partition, the producers' pieces back to back; their files in order.
  const parts: Uint8Array[] = [];
  const offsets = new Array<number>(n).fill(0);
  const lengths = new Array<number>(n).fill(0);
  const rows = new Array<number>(n).fill(0);
  const files: Record<string, number[]> = {};
  const cursor = new Array<number>(sources.length).fill(0);
  let total = 0;
  for (let p = 0; p < n; p++) {
    offsets[p] = total;
    if (p < from || p >= to) continue;
    const k = p - from;
    const pieceFiles: number[] = [];
    sources.forEach((source, i) => {
      const length = source.lengths[k];
      if (length === 0) return;
      parts.push(ranges[i]!.subarray(cursor[i], cursor[i] + length));
      cursor[i] += length;
      pieceFiles.push(...(source.files?.[String(k)] ?? [length]));
      lengths[p] += length;
      rows[p] += source.rows[k];
    });
    if (pieceFiles.length > 1) files[String(p)] = pieceFiles;
    total += lengths[p];
  }
  const bytes = Buffer.concat(parts, total);
  const attempt = options.attempt ?? 0;
  let location: ShuffleLocation;
  let puts = 0;
  if (total <= options.inlineLimitBytes) {
    location = { kind: 'inline', base64: bytes.toString('base64') };
  } else {
    const key = shuffleObjectKey({ queryId: options.queryId, stageId: options.stageId, taskId: options.taskId, attempt }, randomBytes(6).toString('hex'), options);
    await store.put(key, bytes);
    puts = 1;
    if (signal?.aborted) {
      await store.delete(key).catch(() => {});
      throw signal.reason;
    }
    location = { kind: 'object', key, size: total };
  }
  const index: ShuffleIndex = {
    format: SHUFFLE_FORMAT, queryId: options.queryId, stageId: options.stageId, taskId: options.taskId, attempt,
    duckdb: options.duckdb, columns: options.columns, partitions: n, location, offsets, lengths, rows,
    ...(Object.keys(files).length ? { files } : {}),
    totalRows: rows.reduce((sum, r) => sum + r, 0), totalBytes: total,
  };
  return { index, gets, puts, bytesRead };
}

/** A worker's run of a combiner fragment (Fragment.shuffleCombine): no sandbox, no SQL, no table files. */
export async function runCombineTask(request: FragmentRequest, store: ObjectStore, inlineLimitBytes: number, signal?: AbortSignal): Promise<FragmentResult> {
  const started = Date.now();
  const task = request.fragment.shuffleCombine;
  if (!task) throw new PuffinError('internal', `fragment ${request.fragment.id} is not a shuffle combiner`);
  const span = task.to - task.from;
  const done = await combineShuffle({
    store, sources: task.sources.map((x) => decodeCombineSource(x, span)), partitions: task.partitions, columns: task.columns, duckdb: task.duckdb,
    from: task.from, to: task.to, queryId: request.queryId, stageId: task.stage, taskId: request.fragment.id, inlineLimitBytes, signal,
  });
  return {
    fragmentId: request.fragment.id, partial: { kind: 'shuffle', index: done.index }, rows: done.index.totalRows, bytes: done.index.totalBytes,
    bytesScanned: 0, durationMs: Date.now() - started, shuffle: { gets: done.gets, puts: done.puts, bytesRead: done.bytesRead },
  };
}
