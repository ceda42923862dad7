// Locations as object keys, and where a server may put tables.
//
// A location in Iceberg metadata names an object byte for byte, on local disk as on S3:
// `file:///a/b%3Ac` is the file literally named `b%3Ac` (as Java's HadoopFileIO and
// PyIceberg read it), never `b:c`. So file: URIs are converted to paths and back without
// any percent-decoding or -encoding; only the form is made canonical (scheme case,
// `file:/p` and `file://localhost/p` as `file:///p`, `.`, `..` and `//` segments resolved
// lexically, so the path checked is the path opened).
//
// A LocationPolicy holds the roots a server may create tables, register metadata and write
// files under: the warehouse and the locations the admin configured
// (PUFFINDB_ALLOWED_LOCATIONS). A local location is checked after resolving the symlinks of
// its longest existing prefix, so a link inside the warehouse that points out does not
// make its target writable.

import { realpath } from 'node:fs/promises';
import { posix, resolve as resolvePath } from 'node:path';
import { PuffinError } from '../errors.ts';

const SCHEME = /^([a-z][a-z0-9+.-]*):/i;

/** The local path a file: URI names, literally (no percent-decoding). */
export function fileUriToPath(uri: string): string {
  if (typeof uri !== 'string' || !/^file:/i.test(uri)) throw new PuffinError('bad_request', `'${uri}' is not a file: URI`);
  if (uri.includes('\0')) throw new PuffinError('bad_request', 'a file URI contains a NUL character');
  let rest = uri.slice('file:'.length);
  // A query or fragment has no meaning for a file; '?' and '#' are part of the name.
  if (rest.startsWith('//')) {
    const slash = rest.indexOf('/', 2);
    const host = slash < 0 ? rest.slice(2) : rest.slice(2, slash);
    if (host !== '' && host.toLowerCase() !== 'localhost') throw new PuffinError('bad_request', `'${uri}' names the host '${host}'; only local files (file:///path) are supported`);
    rest = slash < 0 ? '/' : rest.slice(slash);
  }
  if (!rest.startsWith('/')) throw new PuffinError('bad_request', `'${uri}' is not an absolute file URI (file:///path)`);
  return posix.normalize(rest);
}

/** The file: URI of a local path, literally (`file://` + the absolute path; a trailing '/' is kept). */
export function pathToFileUri(path: string): string {
  if (path.includes('\0')) throw new PuffinError('bad_request', 'a path contains a NUL character');
  const abs = posix.normalize(resolvePath(path));
  return `file://${abs}${path.endsWith('/') && !abs.endsWith('/') ? '/' : ''}`;
}

/** One canonical spelling of a location URI: lower-case scheme, file: paths normalized, S3 as given. */
export function canonicalUri(uri: string): string {
  const scheme = SCHEME.exec(uri)?.[1]?.toLowerCase();
  if (scheme === 'file') return pathToFileUri(fileUriToPath(uri));
  if (scheme === undefined || /^[a-z]:[\\/]/i.test(uri)) return pathToFileUri(uri);
  return `${scheme}${uri.slice(scheme.length)}`;
}

/** Resolve the symlinks of the longest existing prefix of an absolute path; the rest stays as written. */
async function realpathOfExisting(path: string): Promise<string> {
  let head = path;
  const tail: string[] = [];
  for (;;) {
    try {
      const real = await realpath(head);
      return tail.length ? posix.join(real, ...tail.reverse()) : real;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new PuffinError('access_denied', `location '${path}' cannot be checked (${code ?? 'error'})`);
      const parent = posix.dirname(head);
      if (parent === head) return path;
      tail.push(posix.basename(head));
      head = parent;
    }
  }
}

interface Root {
  /** As configured, for messages. */
  shown: string;
  scheme: string;
  /** file: the real path of the root; other schemes: everything after 'scheme://', no trailing '/'. */
  body: string;
}

function under(body: string, root: string): boolean {
  return root === '' || body === root || body.startsWith(root.endsWith('/') ? root : `${root}/`);
}

/** S3-style keys are literal, but '.' and '..' segments are refused (they mean something to some readers). */
function objectBody(uri: string, scheme: string): string {
  const body = uri.slice(scheme.length + '://'.length);
  if (!uri.slice(scheme.length).startsWith('://')) throw new PuffinError('bad_request', `'${uri}' is not a ${scheme}:// URI`);
  const segments = body.split('/');
  if (segments.some((s) => s === '.' || s === '..')) throw new PuffinError('access_denied', `location '${uri}' has a '.' or '..' segment`);
  if (body.includes('\0')) throw new PuffinError('bad_request', 'a location contains a NUL character');
  return body.replace(/\/+$/, '');
}

export class LocationPolicy {
  private readonly roots: { shown: string; uri: string }[];
  private resolved: Promise<Root[]> | undefined;

  /** `roots`: URIs or local paths ('file:///dir/', 's3://bucket/prefix/', '/dir'). */
  constructor(roots: string[]) {
    this.roots = roots.map((r) => r.trim()).filter(Boolean).map((r) => ({ shown: r, uri: canonicalUri(r) }));
  }

  /** The allowed roots, as configured. */
  get allowed(): string[] {
    return this.roots.map((r) => r.shown);
  }

  private rootsResolved(): Promise<Root[]> {
    this.resolved ??= Promise.all(this.roots.map(async ({ shown, uri }) => {
      const scheme = SCHEME.exec(uri)![1].toLowerCase();
      if (scheme === 'file') return { shown, scheme, body: await realpathOfExisting(fileUriToPath(uri)) };
      return { shown, scheme, body: objectBody(uri, scheme) };
    }));
    return this.resolved;
  }

  /**
   * Whether `uri` lies under one of the roots (after normalizing it and, locally, resolving
   * symlinks). `below`: strictly below one, not a root itself.
   */
  async allows(uri: string, options: { below?: boolean } = {}): Promise<boolean> {
    let canonical: string;
    try {
      canonical = canonicalUri(uri);
    } catch {
      return false;
    }
    const scheme = SCHEME.exec(canonical)![1].toLowerCase();
    let body: string;
    try {
      body = scheme === 'file' ? await realpathOfExisting(fileUriToPath(canonical)) : objectBody(canonical, scheme);
    } catch {
      return false;
    }
    const stripped = body.replace(/\/+$/, '');
    return (await this.rootsResolved()).some((r) => r.scheme === scheme && under(body, r.body) && !(options.below && stripped === r.body.replace(/\/+$/, '')));
  }

  /** Throws access_denied (naming what and the allowed roots) unless `uri` is allowed. */
  async check(uri: string, what: string): Promise<void> {
    if (typeof uri !== 'string' || uri === '') throw new PuffinError('bad_request', `${what} must be a non-empty URI`);
    if (await this.allows(uri)) return;
    throw new PuffinError('access_denied', `${what} '${uri}' is outside the warehouse and the allowed locations (${this.allowed.join(', ')}); an admin can allow more with PUFFINDB_ALLOWED_LOCATIONS`);
  }
}

const policies = new WeakMap<object, LocationPolicy>();

/** The policy of a server's settings: the warehouse and PUFFINDB_ALLOWED_LOCATIONS (one per settings object). */
export function locationPolicyOf(settings: { warehouse: string; allowedLocations?: string[] }): LocationPolicy {
  let policy = policies.get(settings);
  if (!policy) {
    policy = new LocationPolicy([settings.warehouse, ...(settings.allowedLocations ?? [])]);
    policies.set(settings, policy);
  }
  return policy;
}
