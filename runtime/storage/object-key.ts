// What counts as an object key, checked the same way by every ObjectStore so that a key
// valid on the local filesystem is valid on S3 and the other way round: '/'-separated
// segments relative to the store's root, never reaching above it.

import { PuffinError } from '../errors.ts';

/** Name prefix of a store's in-progress writes; such files are never listed as objects. */
export const TEMP_NAME_PREFIX = '.puffin-tmp-';

function checkSegments(segments: string[], what: string, value: string): void {
  for (const segment of segments) {
    if (segment === '..') {
      throw new PuffinError('access_denied', `${what} '${value}' reaches outside the store root ('..' segment)`);
    }
    if (segment === '' || segment === '.') {
      throw new PuffinError('bad_request', `${what} '${value}' has an empty or '.' path segment`);
    }
    if (segment.startsWith(TEMP_NAME_PREFIX)) {
      throw new PuffinError('bad_request', `${what} '${value}' uses the reserved name prefix '${TEMP_NAME_PREFIX}'`);
    }
  }
}

function checkCommon(value: unknown, what: string): asserts value is string {
  if (typeof value !== 'string') throw new PuffinError('bad_request', `${what} must be a string, got ${typeof value}`);
  if (value.startsWith('/')) throw new PuffinError('access_denied', `${what} '${value}' is absolute; keys are relative to the store root`);
  if (value.includes('\0')) throw new PuffinError('bad_request', `${what} contains a NUL character`);
}

/** Throws unless `key` names an object: non-empty relative segments, no '..' or '.'. */
export function checkKey(key: unknown): asserts key is string {
  checkCommon(key, 'object key');
  if (key === '') throw new PuffinError('bad_request', 'object key is empty');
  checkSegments(key.split('/'), 'object key', key);
}

/** Throws unless `prefix` is a valid list prefix; its last, partial segment may be anything. */
export function checkPrefix(prefix: unknown): asserts prefix is string {
  checkCommon(prefix, 'list prefix');
  const complete = prefix.split('/').slice(0, -1);
  checkSegments(complete, 'list prefix', prefix);
}

/** Throws bad_request unless offset and length describe a byte range. */
export function checkRange(offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new PuffinError('bad_request', `range offset must be a non-negative integer, got ${offset}`);
  if (!Number.isSafeInteger(length) || length < 0) throw new PuffinError('bad_request', `range length must be a non-negative integer, got ${length}`);
}

/** S3's key order: by UTF-8 bytes (differs from JS string order only beyond the BMP). */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
