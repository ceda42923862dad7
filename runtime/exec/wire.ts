// The JSON form of fragment requests, results and errors as they cross process and Lambda
// boundaries. Everything arriving from another process is checked here, so a malformed
// message becomes a PuffinError naming the bad field instead of a crash deeper down.

import { PuffinError, toPuffinError, type ErrorCode } from '../errors.ts';
import type { CompletionTarget, FragmentRequest, FragmentResult, PartialLocation } from './invoker.ts';
import type { CompletionMessage } from '../state/state-store.ts';
import type { Fragment, FragmentInput, FileRef, ShuffleRead } from '../planner/plan.ts';
import { decodeShuffleIndex } from './shuffle-index.ts';
import type { Column } from '../catalog/types.ts';
import { decodeIcebergFile, decodeIcebergInput } from './wire-iceberg.ts';
import { validateReaderOptions, type FileSetRead, type TextFormat } from '../catalog/file-sets.ts';

/** The error body every boundary carries: PuffinError.toJSON(). */
export interface WireError {
  error: { code: ErrorCode; message: string; details?: Record<string, unknown> };
}

/**
 * Query and fragment ids become parts of file names and object keys, so they are limited to
 * characters that cannot climb out of a directory.
 */
const ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;

export function assertSafeId(what: string, value: unknown): string {
  if (typeof value !== 'string' || !ID_PATTERN.test(value)) {
    throw new PuffinError('bad_request', `${what} must be 1-128 letters, digits, '_' or '-', got ${JSON.stringify(value)}`);
  }
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function field<T>(where: string, obj: Record<string, unknown>, name: string, check: (v: unknown) => v is T, expected: string): T {
  const value = obj[name];
  if (!check(value)) throw new PuffinError('bad_request', `${where}.${name} must be ${expected}, got ${JSON.stringify(value) ?? 'undefined'}`);
  return value;
}

const isString = (v: unknown): v is string => typeof v === 'string';
const isNonEmptyString = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;
const isArray = (v: unknown): v is unknown[] => Array.isArray(v);

function objectAt(where: string, value: unknown): Record<string, unknown> {
  if (!isObject(value)) throw new PuffinError('bad_request', `${where} must be an object, got ${JSON.stringify(value) ?? 'undefined'}`);
  return value;
}

function decodeColumn(where: string, value: unknown): Column {
  const o = objectAt(where, value);
  return { name: field(where, o, 'name', isNonEmptyString, 'a non-empty string'), type: field(where, o, 'type', isNonEmptyString, 'a DuckDB type name') };
}

function decodeFile(where: string, value: unknown): FileRef {
  const o = objectAt(where, value);
  const file: FileRef = {
    uri: field(where, o, 'uri', isNonEmptyString, 'a URI'),
    sizeBytes: field(where, o, 'sizeBytes', isCount, 'a byte count'),
    rowCount: field(where, o, 'rowCount', isCount, 'a row count'),
  };
  if (o.iceberg !== undefined) file.iceberg = decodeIcebergFile(`${where}.iceberg`, o.iceberg);
  if (o.partitionValues !== undefined) {
    file.partitionValues = field(where, o, 'partitionValues', isArray, 'an array').map((v, i) => {
      if (v !== null && typeof v !== 'string') throw new PuffinError('bad_request', `${where}.partitionValues[${i}] must be a string or null, got ${JSON.stringify(v)}`);
      return v;
    });
  }
  if (o.rows !== undefined) {
    // A split (planner/assign.ts): whole row groups, rows [start, end) of the file.
    const rows = objectAt(`${where}.rows`, o.rows);
    const isRow = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
    const start = field(`${where}.rows`, rows, 'start', isRow, 'a row number');
    const end = field(`${where}.rows`, rows, 'end', isRow, 'a row number');
    if (end <= start) throw new PuffinError('bad_request', `${where}.rows must be a non-empty range, got ${start} to ${end}`);
    file.rows = { start, end };
  }
  return file;
}

const TEXT_FORMATS: readonly TextFormat[] = ['csv', 'tsv', 'json', 'ndjson'];
/** Hive partition columns are typed by catalog/file-sets.ts's partitionType, nothing else. */
const PARTITION_TYPES = new Set(['BIGINT', 'DATE', 'VARCHAR']);

/** A CSV/JSON table's read description; its options are checked against the reader allow-list again. */
function decodeFileSet(where: string, value: unknown): FileSetRead {
  const o = objectAt(where, value);
  const format = o.format;
  if (typeof format !== 'string' || !TEXT_FORMATS.includes(format as TextFormat)) throw new PuffinError('bad_request', `${where}.format must be one of ${TEXT_FORMATS.join(', ')}, got ${JSON.stringify(format)}`);
  const partitionColumns = field(where, o, 'partitionColumns', isArray, 'an array').map((c, i) => decodeColumn(`${where}.partitionColumns[${i}]`, c));
  for (const c of partitionColumns) if (!PARTITION_TYPES.has(c.type)) throw new PuffinError('bad_request', `${where}: partition column ${c.name} must be BIGINT, DATE or VARCHAR, got ${c.type}`);
  return {
    format: format as TextFormat,
    options: validateReaderOptions(format as TextFormat, o.options, true),
    fileColumns: field(where, o, 'fileColumns', isArray, 'an array').map((c, i) => decodeColumn(`${where}.fileColumns[${i}]`, c)),
    partitionColumns,
  };
}

function decodeInput(where: string, value: unknown): FragmentInput {
  const o = objectAt(where, value);
  return {
    view: field(where, o, 'view', isNonEmptyString, 'a view name'),
    table: field(where, o, 'table', isString, 'a table name'),
    columns: field(where, o, 'columns', isArray, 'an array').map((c, i) => decodeColumn(`${where}.columns[${i}]`, c)),
    files: field(where, o, 'files', isArray, 'an array').map((f, i) => decodeFile(`${where}.files[${i}]`, f)),
    ...(o.iceberg !== undefined ? { iceberg: decodeIcebergInput(`${where}.iceberg`, o.iceberg) } : {}),
    ...(o.fileSet !== undefined ? { fileSet: decodeFileSet(`${where}.fileSet`, o.fileSet) } : {}),
  };
}

export function decodeFragment(where: string, value: unknown): Fragment {
  const o = objectAt(where, value);
  return {
    id: assertSafeId(`${where}.id`, o.id),
    output: field(where, o, 'output', isNonEmptyString, 'a partial set name'),
    inputs: field(where, o, 'inputs', isArray, 'an array').map((input, i) => decodeInput(`${where}.inputs[${i}]`, input)),
    sql: field(where, o, 'sql', isNonEmptyString, 'SQL text'),
    ...(o.write !== undefined ? { write: decodeWrite(`${where}.write`, o.write) } : {}),
    ...(o.shuffleReads !== undefined ? { shuffleReads: field(where, o, 'shuffleReads', isArray, 'an array').map((r, i) => decodeShuffleRead(`${where}.shuffleReads[${i}]`, r)) } : {}),
    ...(o.shuffleWrite !== undefined ? { shuffleWrite: decodeShuffleWrite(`${where}.shuffleWrite`, o.shuffleWrite) } : {}),
    ...(o.shuffleCombine !== undefined ? { shuffleCombine: decodeShuffleCombine(`${where}.shuffleCombine`, o.shuffleCombine) } : {}),
    ...(o.store !== undefined ? { store: field(where, o, 'store', (v): v is boolean => typeof v === 'boolean', 'a boolean') } : {}),
  };
}

function decodeShuffleRead(where: string, value: unknown): ShuffleRead {
  const o = objectAt(where, value);
  const partition = o.partition;
  if (typeof partition !== 'number' || !Number.isInteger(partition) || partition < 0) throw new PuffinError('bad_request', `${where}.partition must be a partition number, got ${JSON.stringify(partition)}`);
  return {
    view: field(where, o, 'view', isNonEmptyString, 'a view name'),
    columns: field(where, o, 'columns', isArray, 'an array').map((c, i) => decodeColumn(`${where}.columns[${i}]`, c)),
    partition,
    // Each source is checked in full where it is used (decodePartitionSource).
    sources: field(where, o, 'sources', isArray, 'an array of shuffle pieces'),
  };
}

function decodeShuffleCombine(where: string, value: unknown): NonNullable<Fragment['shuffleCombine']> {
  const o = objectAt(where, value);
  const bound = (name: 'from' | 'to'): number => {
    const v = o[name];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new PuffinError('bad_request', `${where}.${name} must be a partition number, got ${JSON.stringify(v)}`);
    return v;
  };
  const partitions = o.partitions;
  if (typeof partitions !== 'number' || !Number.isInteger(partitions) || partitions < 1) throw new PuffinError('bad_request', `${where}.partitions must be a positive integer, got ${JSON.stringify(partitions)}`);
  return {
    stage: assertSafeId(`${where}.stage`, o.stage),
    partitions,
    columns: field(where, o, 'columns', isArray, 'an array').map((c, i) => decodeColumn(`${where}.columns[${i}]`, c)),
    duckdb: field(where, o, 'duckdb', isNonEmptyString, 'a DuckDB version'),
    from: bound('from'),
    to: bound('to'),
    // Each source is checked in full where it is used (decodeCombineSource).
    sources: field(where, o, 'sources', isArray, 'an array of combine sources'),
  };
}

function decodeShuffleWrite(where: string, value: unknown): NonNullable<Fragment['shuffleWrite']> {
  const o = objectAt(where, value);
  const p = objectAt(`${where}.partitioning`, o.partitioning);
  const count = p.count;
  if (p.kind !== 'hash' || typeof count !== 'number' || !Number.isInteger(count) || count < 1) throw new PuffinError('bad_request', `${where}.partitioning must be a hash partitioning with a positive count`);
  const keys = field(`${where}.partitioning`, p, 'keys', isArray, 'an array').map((k, i) => {
    const key = objectAt(`${where}.partitioning.keys[${i}]`, k);
    return { expr: field(`${where}.partitioning.keys[${i}]`, key, 'expr', isNonEmptyString, 'SQL text'), type: field(`${where}.partitioning.keys[${i}]`, key, 'type', isNonEmptyString, 'a type') };
  });
  return { stage: assertSafeId(`${where}.stage`, o.stage), partitioning: { kind: 'hash', keys, count } };
}

function decodeWrite(where: string, value: unknown): NonNullable<Fragment['write']> {
  const o = objectAt(where, value);
  return {
    table: field(where, o, 'table', isNonEmptyString, 'a table name'),
    metadataLocation: field(where, o, 'metadataLocation', isNonEmptyString, 'a metadata file URI'),
    ...(o.setup !== undefined ? { setup: field(where, o, 'setup', (v): v is string[] => Array.isArray(v) && v.every(isNonEmptyString), 'an array of SQL statements') } : {}),
    ...(o.lineage !== undefined ? { lineage: field(where, o, 'lineage', (v): v is boolean => typeof v === 'boolean', 'true or false') } : {}),
  };
}

const isAttempt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1;

/** The `report` of an asynchronous request; throws 'bad_request' when malformed. */
export function decodeCompletionTarget(value: unknown): CompletionTarget {
  const o = objectAt('request.report', value);
  return {
    stream: assertSafeId('request.report.stream', o.stream),
    attempt: field('request.report', o, 'attempt', isAttempt, 'an attempt number (1 or more)'),
  };
}

/**
 * A FragmentRequest as received from another process; throws 'bad_request' when malformed.
 * An asynchronous request also names where to report (`report`).
 */
export function decodeRequest(value: unknown): FragmentRequest & { report?: CompletionTarget } {
  const o = objectAt('request', value);
  const request: FragmentRequest & { report?: CompletionTarget } = {
    queryId: assertSafeId('request.queryId', o.queryId),
    fragment: decodeFragment('request.fragment', o.fragment),
    deadline: field('request', o, 'deadline', isCount, 'a time in ms since the epoch'),
  };
  if (o.inlineLimitBytes !== undefined) {
    request.inlineLimitBytes = field('request', o, 'inlineLimitBytes', isCount, 'a byte count');
  }
  if (o.report !== undefined) request.report = decodeCompletionTarget(o.report);
  return request;
}

function decodePartial(value: unknown): PartialLocation {
  const o = objectAt('result.partial', value);
  if (o.kind === 'inline') return { kind: 'inline', parquetBase64: field('result.partial', o, 'parquetBase64', isString, 'base64 text') };
  if (o.kind === 'stored') return { kind: 'stored', uri: field('result.partial', o, 'uri', isNonEmptyString, 'a URI') };
  if (o.kind === 'shuffle') return { kind: 'shuffle', index: decodeShuffleIndex(o.index) };
  throw new PuffinError('internal', `result.partial.kind must be 'inline', 'stored' or 'shuffle', got ${JSON.stringify(o.kind)}`);
}

/** A FragmentResult as received from a worker; a malformed one is the worker's fault ('internal'). */
export function decodeResult(value: unknown): FragmentResult {
  try {
    const o = objectAt('result', value);
    return {
      fragmentId: field('result', o, 'fragmentId', isNonEmptyString, 'a fragment id'),
      partial: decodePartial(o.partial),
      rows: field('result', o, 'rows', isCount, 'a row count'),
      bytes: field('result', o, 'bytes', isCount, 'a byte count'),
      bytesScanned: field('result', o, 'bytesScanned', isCount, 'a byte count'),
      durationMs: field('result', o, 'durationMs', isCount, 'a duration in ms'),
      ...(o.shuffle !== undefined ? { shuffle: decodeShuffleStats(o.shuffle) } : {}),
      ...(o.cache !== undefined ? { cache: decodeCacheStats(o.cache) } : {}),
      ...(o.columnStats !== undefined ? { columnStats: decodeColumnStats(o.columnStats) } : {}),
    };
  } catch (err) {
    const e = toPuffinError(err);
    throw new PuffinError('internal', `worker returned a malformed result: ${e.message}`);
  }
}

function decodeShuffleStats(value: unknown): NonNullable<FragmentResult['shuffle']> {
  const o = objectAt('result.shuffle', value);
  return {
    gets: field('result.shuffle', o, 'gets', isCount, 'a count'),
    puts: field('result.shuffle', o, 'puts', isCount, 'a count'),
    bytesRead: field('result.shuffle', o, 'bytesRead', isCount, 'a byte count'),
  };
}

function decodeColumnStats(value: unknown): NonNullable<FragmentResult['columnStats']> {
  const o = objectAt('result.columnStats', value);
  const out: NonNullable<FragmentResult['columnStats']> = {};
  for (const [name, v] of Object.entries(o)) {
    const st = objectAt(`result.columnStats.${name}`, v);
    const bound = (key: 'min' | 'max'): string | null => {
      const b = st[key];
      if (b === null) return null;
      // Integer columns only: a bound is the decimal text of an integer.
      if (typeof b !== 'string' || !/^-?\d+$/.test(b)) throw new PuffinError('internal', `result.columnStats.${name}.${key} must be an integer as text or null, got ${JSON.stringify(b)}`);
      return b;
    };
    out[name] = { min: bound('min'), max: bound('max'), nulls: field(`result.columnStats.${name}`, st, 'nulls', isCount, 'a count') };
  }
  return out;
}

function decodeCacheStats(value: unknown): NonNullable<FragmentResult['cache']> {
  const o = objectAt('result.cache', value);
  return {
    hits: field('result.cache', o, 'hits', isCount, 'a count'),
    misses: field('result.cache', o, 'misses', isCount, 'a count'),
    bytesSaved: field('result.cache', o, 'bytesSaved', isCount, 'a byte count'),
  };
}

export function encodeError(err: unknown): WireError {
  return toPuffinError(err).toJSON();
}

/** True when `value` has our error shape, `{ error: { code, message } }`. */
export function isWireError(value: unknown): value is WireError {
  return isObject(value) && isObject(value.error) && typeof value.error.code === 'string' && typeof value.error.message === 'string';
}

export function decodeError(value: unknown): PuffinError {
  return PuffinError.fromJSON(value);
}

/** A worker's report for the completion stream: its result, or its error in wire form. */
export function completionOf(fragmentId: string, attempt: number, outcome: { result: FragmentResult } | { error: unknown }): CompletionMessage {
  return 'result' in outcome
    ? { fragmentId, attempt, ok: true, payload: outcome.result }
    : { fragmentId, attempt, ok: false, payload: encodeError(outcome.error) };
}

/** What a completion message says: a checked FragmentResult, or the worker's PuffinError. */
export function decodeCompletion(message: CompletionMessage): { ok: true; result: FragmentResult } | { ok: false; error: PuffinError } {
  if (message.ok) return { ok: true, result: decodeResult(message.payload) };
  if (isWireError(message.payload)) return { ok: false, error: decodeError(message.payload) };
  return { ok: false, error: new PuffinError('internal', `worker reported a failure without an error body: ${JSON.stringify(message.payload)?.slice(0, 200)}`) };
}

/** Messages between the process pool and its children (Node IPC, JSON serialized). */
export type PoolParentMessage =
  | { type: 'init'; settings: unknown }
  | { type: 'run'; id: number; request: FragmentRequest }
  | { type: 'cancel'; id: number };

export type PoolChildMessage =
  | { type: 'ready'; pid: number }
  | { type: 'init-failed'; error: WireError['error'] }
  | { type: 'result'; id: number; result: FragmentResult }
  | { type: 'error'; id: number; error: WireError['error'] };
