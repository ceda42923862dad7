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
import {
  SHUFFLE_FORMAT, assertCompatible, decodeShuffleIndex, pieceOf, shuffleObjectKey,
  type ShuffleIndex, type ShuffleKeyLayout, type ShuffleLocation,
} from './shuffle-index.ts';
import { forEachLimit, hedgedGetRange } from './shuffle-read.ts';

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
  if (!(above > 0) || consumers < 2) return false;
  const stored = indexes.filter((i) => i.location.kind === 'object').length;
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

export interface CombineOptions extends ShuffleKeyLayout {
  store: ObjectStore;
  /** The row's producer indexes (decoded). */
  indexes: readonly ShuffleIndex[];
  from: number;
  to: number;
  queryId: string;
  /** The combining pseudo-stage and this combiner's task id (the object key's parts). */
  stageId: string;
  taskId: string;
  attempt?: number;
  /** A combined output of at most this many bytes travels inline. */
  inlineLimitBytes: number;
  /** GETs in flight at once; default 16. */
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
  const { store, indexes, from, to, signal } = options;
  if (!indexes.length) throw new PuffinError('internal', `combiner ${options.taskId} has no producers`);
  assertCompatible(indexes);
  const first = indexes[0];
  const n = first.partitions;
  if (!(Number.isInteger(from) && Number.isInteger(to) && from >= 0 && from < to && to <= n)) {
    throw new PuffinError('bad_request', `combiner ${options.taskId}: partitions ${from}..${to - 1} are outside 0..${n - 1}`);
  }
  // Each producer's bytes for partitions from..to-1: one contiguous range of its object.
  const ranges: (Uint8Array | undefined)[] = new Array(indexes.length);
  let gets = 0;
  let bytesRead = 0;
  await forEachLimit(indexes, options.concurrency ?? 16, signal, async (index, i) => {
    const start = index.offsets[from];
    const end = index.offsets[to - 1] + index.lengths[to - 1];
    if (end <= start) return;
    if (index.location.kind === 'inline') {
      ranges[i] = Buffer.from(index.location.base64, 'base64').subarray(start, end);
      return;
    }
    gets += 1;
    const got = await hedgedGetRange(store, index.location.key, start, end - start, 2_000, () => { gets += 1; });
    if (got.bytes.byteLength !== end - start) throw new PuffinError('internal', `shuffle object ${index.location.key}: asked for ${end - start} bytes, got ${got.bytes.byteLength}`);
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
  let total = 0;
  for (let p = 0; p < n; p++) {
    offsets[p] = total;
    if (p < from || p >= to) continue;
    const pieceFiles: number[] = [];
    indexes.forEach((index, i) => {
      const piece = pieceOf(index, p);
      if (piece.length === 0) return;
      const base = index.offsets[from];
      parts.push(ranges[i]!.subarray(piece.offset - base, piece.offset - base + piece.length));
      pieceFiles.push(...piece.files);
      lengths[p] += piece.length;
      rows[p] += piece.rows;
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
    duckdb: first.duckdb, columns: first.columns, partitions: n, location, offsets, lengths, rows,
    ...(Object.keys(files).length ? { files } : {}),
    totalRows: rows.reduce((s, r) => s + r, 0), totalBytes: total,
  };
  return { index, gets, puts, bytesRead };
}

/** A worker's run of a combiner fragment (Fragment.shuffleCombine): no sandbox, no SQL, no table files. */
export async function runCombineTask(request: FragmentRequest, store: ObjectStore, inlineLimitBytes: number, signal?: AbortSignal): Promise<FragmentResult> {
  const started = Date.now();
  const task = request.fragment.shuffleCombine;
  if (!task) throw new PuffinError('internal', `fragment ${request.fragment.id} is not a shuffle combiner`);
  const done = await combineShuffle({
    store, indexes: task.indexes.map(decodeShuffleIndex), from: task.from, to: task.to,
    queryId: request.queryId, stageId: task.stage, taskId: request.fragment.id, inlineLimitBytes, signal,
  });
  return {
    fragmentId: request.fragment.id, partial: { kind: 'shuffle', index: done.index }, rows: done.index.totalRows, bytes: done.index.totalBytes,
    bytesScanned: 0, durationMs: Date.now() - started, shuffle: { gets: done.gets, puts: done.puts, bytesRead: done.bytesRead },
  };
}
