// How the coordinator reaches workers. Every Invoker runs one fragment per call; bounds on
// concurrency, retries and deadlines are the coordinator's, timeouts per call the invoker's.

import type { ColumnStats } from '../catalog/types.ts';
import type { Fragment } from '../planner/plan.ts';
import type { ShuffleIndex } from './shuffle-index.ts';

export interface FragmentRequest {
  queryId: string;
  fragment: Fragment;
  /** Absolute time (ms since epoch) after which the work is abandoned. */
  deadline: number;
  /** Partials larger than this go to the shuffle prefix instead of inline. */
  inlineLimitBytes?: number;
}

export type PartialLocation =
  /** Parquet bytes, base64 encoded, inline in the response. */
  | { kind: 'inline'; parquetBase64: string }
  /** Parquet written to the object store; `uri` is absolute. */
  | { kind: 'stored'; uri: string }
  /** Hash-partitioned for a later stage: one shuffle object (or inline pieces) and its offset index. */
  | { kind: 'shuffle'; index: ShuffleIndex };

export interface FragmentResult {
  fragmentId: string;
  partial: PartialLocation;
  rows: number;
  bytes: number;
  /** Bytes of table data the fragment read. */
  bytesScanned: number;
  durationMs: number;
  /** Tasks that read or wrote a shuffle: ranged GETs, PUTs and bytes of shuffle pieces read. */
  shuffle?: { gets: number; puts: number; bytesRead: number };
  /**
   * Fragments with inputs the filtered-partition cache may serve (runtime/exec/partition-cache.ts):
   * files served from a cached entry, files read (and cached), and the bytes of file not read.
   */
  cache?: { hits: number; misses: number; bytesSaved: number };
  /**
   * A file of a materialized result (Fragment.store): the lowest and highest value and the
   * NULL count of each of its integer columns, by name, as a table file's statistics, so the
   * planner's estimates and file pruning see the result as they see a table.
   */
  columnStats?: Record<string, ColumnStats>;
}

export interface Invoker {
  /** Run one fragment; rejects with a PuffinError on failure or timeout. */
  invoke(request: FragmentRequest, signal?: AbortSignal): Promise<FragmentResult>;
  /** Release processes, sockets. */
  close(): Promise<void>;
  /**
   * 'ok' while fragments can run, else why not (e.g. no worker process can start). Optional:
   * an invoker that cannot know (Lambda: the platform starts workers) leaves it out.
   */
  health?(): 'ok' | string;
}

/** Where an asynchronously invoked worker reports: a completion stream of the state store. */
export interface CompletionTarget {
  /** Completion stream (StateStore.publishCompletion's first argument) of this query run. */
  stream: string;
  /** Attempt number of this invocation; a report from a superseded attempt is ignored. */
  attempt: number;
}

export interface AsyncFragmentRequest extends FragmentRequest {
  report: CompletionTarget;
}

/**
 * Starts fragments without waiting for them (Lambda `InvocationType: Event`): the worker
 * publishes its FragmentResult, or its error, to `request.report.stream`, and the
 * coordinator gathers them from the state store. No connection is held per running fragment.
 */
export interface AsyncInvoker {
  /** Resolves once the platform accepted the invocation; rejects with a PuffinError when it did not. */
  dispatch(request: AsyncFragmentRequest, signal?: AbortSignal): Promise<void>;
  /**
   * Optional: start these fragments through one relay, a worker invocation that dispatches
   * each of them itself (an invocation tree: the coordinator's serial cost per fragment is
   * then one landing, not one Invoke call). Resolves once the relay was accepted; a fragment
   * the relay cannot dispatch is reported failed on its own completion stream.
   */
  dispatchRelay?(relay: RelayRequest, signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/** The event of a relay invocation: fragments for the relaying worker to dispatch. */
export interface RelayRequest {
  relay: AsyncFragmentRequest[];
}
