// Input checks and stream-id arithmetic shared by the state store implementations, so the
// in-memory and the Redis store refuse the same bad input with the same PuffinError.

import { PuffinError } from '../errors.ts';
import { TERMINAL_STATUSES, type ApiKeyRecord, type ApiKeyRole, type GeneratorRecord, type QueryRecord, type QueryStatus } from './state-store.ts';

const ALL_STATUSES: readonly QueryStatus[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
const STATUSES: ReadonlySet<string> = new Set(ALL_STATUSES);
/** What updateQuery accepts by default: a query that has not finished. */
export const NON_TERMINAL_STATUSES: readonly QueryStatus[] = ALL_STATUSES.filter((s) => !TERMINAL_STATUSES.includes(s));
const ROLES: ReadonlySet<string> = new Set<ApiKeyRole>(['admin', 'writer', 'reader']);
const SHA256_HEX = /^[0-9a-f]{64}$/;
const STREAM_ID = /^(\d{1,15})-(\d{1,15})$/;
const MAX_KEY_LENGTH = 1024;

export const DEFAULT_LIST_LIMIT = 100;
export const DEFAULT_READ_COUNT = 100;

function bad(message: string): PuffinError {
  return new PuffinError('bad_request', message);
}

export function checkKey(what: string, key: unknown): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw bad(`${what} must be a non-empty string of at most ${MAX_KEY_LENGTH} characters, got ${JSON.stringify(key)?.slice(0, 80)}`);
  }
  return key;
}

export function checkStatus(what: string, status: unknown): QueryStatus {
  if (typeof status !== 'string' || !STATUSES.has(status)) {
    throw bad(`${what} must be one of ${[...STATUSES].join(', ')}, got ${JSON.stringify(status)}`);
  }
  return status as QueryStatus;
}

export function checkPositiveMs(what: string, ms: unknown): number {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0) throw bad(`${what} must be a positive number of milliseconds, got ${JSON.stringify(ms)}`);
  return Math.ceil(ms);
}

export function checkCount(what: string, n: unknown, fallback: number): number {
  if (n === undefined) return fallback;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) throw bad(`${what} must be a positive integer, got ${JSON.stringify(n)}`);
  return n;
}

export function checkBlockMs(ms: unknown): number {
  if (ms === undefined) return 0;
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) throw bad(`blockMs must be 0 or a positive number of milliseconds, got ${JSON.stringify(ms)}`);
  return Math.ceil(ms);
}

function checkCounter(what: string, n: unknown): number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw bad(`${what} must be an integer, got ${JSON.stringify(n)}`);
  return n;
}

export function checkQueryRecord(record: QueryRecord): void {
  if (typeof record !== 'object' || record === null) throw bad('query record must be an object');
  checkKey('query id', record.id);
  checkStatus('query status', record.status);
  for (const name of ['submittedAt', 'deadline'] as const) {
    if (typeof record[name] !== 'number' || !Number.isFinite(record[name])) throw bad(`query ${name} must be a time in ms, got ${JSON.stringify(record[name])}`);
  }
  if (typeof record.progress !== 'object' || record.progress === null) throw bad('query progress must be an object');
  checkProgress(record.progress);
}

export function checkPatch(patch: Partial<Omit<QueryRecord, 'id'>>): void {
  if (typeof patch !== 'object' || patch === null) throw bad('query patch must be an object');
  if ('id' in patch) throw bad("a query's id cannot be changed");
  if (patch.status !== undefined) checkStatus('query status', patch.status);
  if (patch.progress !== undefined) checkProgress(patch.progress);
}

function checkProgress(progress: Partial<QueryRecord['progress']>): void {
  for (const name of ['fragmentsDone', 'fragmentsTotal', 'bytesScanned'] as const) {
    if (progress[name] !== undefined) checkCounter(`progress.${name}`, progress[name]);
  }
}

export function checkProgressDelta(delta: Partial<QueryRecord['progress']>): void {
  if (typeof delta !== 'object' || delta === null) throw bad('progress delta must be an object');
  checkProgress(delta);
}

/** The record after `patch`; undefined fields of the patch leave the record's value. */
export function applyPatch(record: QueryRecord, patch: Partial<Omit<QueryRecord, 'id'>>): QueryRecord {
  const next: Record<string, unknown> = { ...record };
  for (const [name, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    next[name] = name === 'progress' ? { ...record.progress, ...definedFields(value as Record<string, unknown>) } : value;
  }
  return next as unknown as QueryRecord;
}

function definedFields(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

export function checkApiKey(record: ApiKeyRecord): void {
  if (typeof record !== 'object' || record === null) throw bad('API key record must be an object');
  checkKey('API key id', record.id);
  if (typeof record.name !== 'string') throw bad(`API key name must be a string, got ${JSON.stringify(record.name)}`);
  if (!ROLES.has(record.role)) throw bad(`API key role must be one of ${[...ROLES].join(', ')}, got ${JSON.stringify(record.role)}`);
  if (typeof record.hash !== 'string' || !SHA256_HEX.test(record.hash)) {
    throw bad('API key hash must be the sha256 of the secret in lowercase hex (64 characters); the secret itself is never stored');
  }
}

/** A query generator's name: a letter, then letters, digits, '_' and '-' (it is a path segment of /v1/generators/{name}). */
export const GENERATOR_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;

export function checkGeneratorName(name: unknown): string {
  if (typeof name !== 'string' || !GENERATOR_NAME.test(name)) {
    throw bad(`a generator name is a letter then up to 63 letters, digits, '_' or '-', got ${JSON.stringify(name)?.slice(0, 80)}`);
  }
  return name;
}

export function checkGenerator(record: GeneratorRecord): void {
  if (typeof record !== 'object' || record === null) throw bad('generator record must be an object');
  checkGeneratorName(record.name);
  if (typeof record.url !== 'string' || record.url.length === 0 || record.url.length > 2048) throw bad('generator url must be a string of at most 2048 characters');
  if (record.keyEnv !== undefined && (typeof record.keyEnv !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(record.keyEnv))) {
    throw bad(`generator keyEnv must be an environment variable name, got ${JSON.stringify(record.keyEnv)?.slice(0, 80)}`);
  }
  if (typeof record.createdAt !== 'number' || !Number.isFinite(record.createdAt)) throw bad('generator createdAt must be a time in ms');
}

export function conflictingKey(hash: string): PuffinError {
  return new PuffinError('conflict', `another API key already has the hash ${hash.slice(0, 12)}...`);
}

/** Stream ids are 'ms-seq', as Redis makes them; both stores use them as cursors. */
export function parseStreamId(what: string, id: unknown): [number, number] {
  const m = typeof id === 'string' ? STREAM_ID.exec(id) : null;
  if (!m) throw bad(`${what} must be a cursor returned by the store ('<ms>-<seq>'), got ${JSON.stringify(id)}`);
  return [Number(m[1]), Number(m[2])];
}

export function compareStreamIds(a: [number, number], b: [number, number]): number {
  return a[0] - b[0] || a[1] - b[1];
}

/** The smallest id after `id`: what XTRIM MINID needs to drop `id` itself. */
export function streamIdAfter(id: [number, number]): string {
  return `${id[0]}-${id[1] + 1}`;
}

/** Issues increasing stream ids the way Redis does: wall-clock ms, then a sequence within it. */
export class StreamIdClock {
  private last: [number, number] = [0, 0];

  next(): string {
    const now = Date.now();
    this.last = now > this.last[0] ? [now, 0] : [this.last[0], this.last[1] + 1];
    return `${this.last[0]}-${this.last[1]}`;
  }
}
