// Typed errors. Every failure a user can cause or act on is a PuffinError with a stable
// `code`; the HTTP status for each code is decided here and nowhere else.

import { homedir } from 'node:os';
import { join } from 'node:path';

export type ErrorCode =
  | 'bad_request'        // malformed input: JSON, missing fields, wrong types
  | 'syntax_error'       // DuckDB could not parse the SQL
  | 'binder_error'       // SQL parsed but names a column/function that does not exist
  | 'unknown_table'      // a table the catalog does not know
  | 'unsupported'        // a valid statement this version does not run (e.g. writes before Iceberg)
  | 'access_denied'      // the query reaches outside the warehouse / sandbox
  | 'not_found'
  | 'conflict'
  | 'unauthorized'
  | 'forbidden'
  | 'payload_too_large'
  | 'rate_limited'
  | 'timeout'            // a query or invocation deadline passed
  | 'fragment_failed'    // a fragment failed past the retry bound
  | 'bad_gateway'        // a remote service the request named (a query generator) failed or answered nonsense
  | 'unavailable'        // a dependency (Redis, S3, Lambda) is unreachable
  | 'internal';

const HTTP_STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
  syntax_error: 400,
  binder_error: 400,
  unknown_table: 404,
  unsupported: 400,
  access_denied: 403,
  not_found: 404,
  conflict: 409,
  unauthorized: 401,
  forbidden: 403,
  payload_too_large: 413,
  rate_limited: 429,
  timeout: 504,
  fragment_failed: 502,
  bad_gateway: 502,
  unavailable: 503,
  internal: 500,
};

export class PuffinError extends Error {
  readonly code: ErrorCode;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(scrubInternalPaths(message));
    this.name = 'PuffinError';
    this.code = code;
    this.details = details;
  }

  get httpStatus(): number {
    return HTTP_STATUS[this.code];
  }

  toJSON(): { error: { code: ErrorCode; message: string; details?: Record<string, unknown> } } {
    return { error: { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) } };
  }

  /** Plain-data form that crosses process and Lambda boundaries. */
  static fromJSON(body: unknown): PuffinError {
    const e = (body as { error?: { code?: string; message?: string; details?: Record<string, unknown> } })?.error;
    if (e && typeof e.code === 'string' && e.code in HTTP_STATUS) {
      return new PuffinError(e.code as ErrorCode, e.message ?? e.code, e.details);
    }
    return new PuffinError('internal', typeof body === 'string' ? body : JSON.stringify(body));
  }
}

/**
 * Directories of the server's own (home, worker caches, DuckDB's home) that error messages
 * must not show: where the server keeps files is admin information, and a path in an error
 * is a map for the next attack. Each is replaced by a label in every PuffinError message.
 */
const internalPaths = new Map<string, string>();

/** Hide `path` (and everything under it) from error messages, showing `label` instead. */
export function registerInternalPath(path: string, label: string): void {
  const trimmed = path.replace(/\/+$/, '');
  if (trimmed.length > 1) internalPaths.set(trimmed, label);
}

export function scrubInternalPaths(message: string): string {
  if (internalPaths.size === 0 || typeof message !== 'string') return message;
  // Longest first, so a path under another registered one gets its own label.
  for (const [path, label] of [...internalPaths].sort((a, b) => b[0].length - a[0].length)) {
    if (message.includes(path)) message = message.split(path).join(label);
  }
  return message;
}

// DuckDB's own home (extensions, secrets): it shows in DuckDB's messages whatever the settings.
registerInternalPath(join(homedir(), '.duckdb'), '<duckdb home>');

export function httpStatusOf(code: ErrorCode): number {
  return HTTP_STATUS[code];
}

/** Wrap anything thrown into a PuffinError, classifying DuckDB's own error prefixes. */
export function toPuffinError(err: unknown): PuffinError {
  if (err instanceof PuffinError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (/^Parser Error/.test(message)) return new PuffinError('syntax_error', message);
  if (/^(Binder|Catalog) Error/.test(message)) return new PuffinError('binder_error', message);
  if (/^Permission Error/.test(message)) return new PuffinError('access_denied', message);
  if (/^(Conversion|Invalid Input|Out of Range|Constraint|Not implemented) Error/.test(message)) {
    return new PuffinError('bad_request', message);
  }
  return new PuffinError('internal', message);
}
