// How the Iceberg reader reaches files: a small FileIO (read, exists, list) over absolute
// URIs, with a local-filesystem implementation and one over an ObjectStore, and the
// re-rooting of paths written relative to another tree (see the fixtures' README): the part
// of a path after the table's recorded location is resolved against where the table was
// actually opened from.

import { readFile, readdir, stat } from 'node:fs/promises';
import { isAbsolute, join as joinPath, resolve as resolvePath } from 'node:path';
import { PuffinError } from '../../errors.ts';
import { canonicalUri, fileUriToPath, pathToFileUri } from '../../storage/locations.ts';
import type { ObjectStore } from '../../storage/object-store.ts';

export interface FileIO {
  /** Whole file; PuffinError 'not_found' naming the URI when absent. */
  read(uri: string): Promise<Uint8Array>;
  exists(uri: string): Promise<boolean>;
  /** Names (not paths) of the files directly inside a directory URI; [] when absent. */
  list(dirUri: string): Promise<string[]>;
  /**
   * Every file below a directory URI, at any depth: '/'-separated paths relative to it, with
   * sizes; [] when absent. Optional (readers that need it, such as Hudi's, say so without it).
   * Entries (files or directories) whose name starts with '.' are left out, and so is
   * everything inside such a directory.
   */
  listTree?(dirUri: string): Promise<TreeEntry[]>;
}

/** A file found by FileIO.listTree. */
export interface TreeEntry {
  /** Relative to the listed directory, '/'-separated. */
  path: string;
  size: number;
}

/** Whether a relative path names nothing hidden (no part starts with '.'). */
export function isVisiblePath(relative: string): boolean {
  return relative.split('/').every((part) => part !== '' && !part.startsWith('.'));
}

const SCHEME = /^[a-z][a-z0-9+.-]*:/i;

/**
 * Turn a local path or any URI into an absolute URI ('file:///abs', 's3://b/k'). A file:
 * URI keeps its path byte for byte (no percent-decoding: `%3A` in a name is three
 * characters of it, as Java's and PyIceberg's file IO read it); only its form is canonical.
 */
export function toUri(pathOrUri: string): string {
  if (/^file:/i.test(pathOrUri)) return canonicalUri(pathOrUri);
  if (SCHEME.test(pathOrUri) && !/^[a-z]:[\\/]/i.test(pathOrUri)) return pathOrUri;
  return pathToFileUri(resolvePath(pathOrUri));
}

/** Join a directory URI and a relative path. */
export function joinUri(dirUri: string, relative: string): string {
  return `${dirUri.replace(/\/+$/, '')}/${relative.replace(/^\/+/, '')}`;
}

/** The directory part of a URI (without the trailing '/'). */
export function parentUri(uri: string): string {
  const trimmed = uri.replace(/\/+$/, '');
  return trimmed.slice(0, trimmed.lastIndexOf('/'));
}

/**
 * Re-rooting: paths under `from` (the table location recorded in its metadata, possibly
 * relative such as './lineitem_iceberg') are moved under `to` (a directory or URI).
 */
export interface Reroot {
  from: string;
  to: string;
}

function normalizeRelative(path: string): string {
  return path.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
}

/**
 * The absolute URI of a path found in table metadata. With `reroot`, a path under the
 * recorded location moves to the new root. A relative path that cannot be placed is an
 * error: it would otherwise resolve against the process's working directory.
 */
export function resolveLocation(path: string, reroot?: Reroot): string {
  if (reroot) {
    const from = normalizeRelative(SCHEME.test(reroot.from) || isAbsolute(reroot.from) ? toUri(reroot.from) : reroot.from);
    const candidate = SCHEME.test(from) ? toUri(path) : normalizeRelative(path);
    if (candidate === from || candidate.startsWith(`${from}/`)) {
      return joinUri(toUri(reroot.to), candidate.slice(from.length + 1));
    }
  }
  if (SCHEME.test(path) || isAbsolute(path)) return toUri(path);
  throw new PuffinError(
    'bad_request',
    `path '${path}' in the table's metadata is relative${reroot ? ` and not under the table location '${reroot.from}'` : ''}; open the table with the reroot option to resolve it against the directory it was opened from`,
  );
}

function notFound(uri: string): PuffinError {
  return new PuffinError('not_found', `${uri} does not exist`);
}

function localPathOf(uri: string): string {
  if (!/^file:/i.test(uri)) throw new PuffinError('bad_request', `${uri} is not a local file URI; this table needs an object store FileIO`);
  return fileUriToPath(uri);
}

/** Files on the local filesystem, named by file:// URIs (or plain absolute paths). */
export function localFileIO(): FileIO {
  return {
    async read(uri) {
      const path = localPathOf(toUri(uri));
      try {
        return new Uint8Array(await readFile(path));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(uri);
        throw new PuffinError('unavailable', `${uri} could not be read: ${(err as Error).message}`);
      }
    },
    async exists(uri) {
      try {
        return (await stat(localPathOf(toUri(uri)))).isFile();
      } catch {
        return false;
      }
    },
    async list(dirUri) {
      try {
        return (await readdir(localPathOf(toUri(dirUri)), { withFileTypes: true })).filter((d) => d.isFile()).map((d) => d.name);
      } catch {
        return [];
      }
    },
    async listTree(dirUri) {
      const out: TreeEntry[] = [];
      // Symbolic links are followed (by stat); the depth bound stops a link cycle.
      const walk = async (dir: string, prefix: string, depth: number): Promise<void> => {
        if (depth > 64) throw new PuffinError('bad_request', `${dirUri}: directories nest more than 64 deep (a symbolic link cycle?)`);
        let entries;
        try {
          entries = await readdir(dir, { withFileTypes: true });
        } catch (err) {
          if (depth === 0 && (err as NodeJS.ErrnoException).code === 'ENOENT') return;
          throw new PuffinError('unavailable', `${dirUri}: cannot list ${prefix || '.'}: ${(err as Error).message}`);
        }
        for (const d of entries) {
          if (d.name.startsWith('.')) continue;
          const full = joinPath(dir, d.name);
          const rel = prefix ? `${prefix}/${d.name}` : d.name;
          let isDir = d.isDirectory();
          let isFile = d.isFile();
          let size = 0;
          if (d.isSymbolicLink() || isFile) {
            const info = await stat(full).catch(() => undefined);
            if (!info) continue; // a dangling link
            isDir = info.isDirectory();
            isFile = info.isFile();
            size = info.size;
          }
          if (isDir) await walk(full, rel, depth + 1);
          else if (isFile) out.push({ path: rel, size });
        }
      };
      await walk(localPathOf(toUri(dirUri)), '', 0);
      return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    },
  };
}

/** Files in an ObjectStore, named by URIs under the store's root URL. */
export function objectStoreFileIO(store: ObjectStore): FileIO {
  const keyOf = (uri: string): string => {
    if (!uri.startsWith(store.url)) throw new PuffinError('bad_request', `${uri} is outside the object store ${store.url}`);
    return uri.slice(store.url.length);
  };
  return {
    async read(uri) {
      try {
        return await store.get(keyOf(uri));
      } catch (err) {
        if (err instanceof PuffinError && err.code === 'not_found') throw notFound(uri);
        throw err;
      }
    },
    async exists(uri) {
      return (await store.head(keyOf(uri))) !== undefined;
    },
    async list(dirUri) {
      const prefix = `${keyOf(dirUri).replace(/\/+$/, '')}/`;
      return (await store.list(prefix)).map((o) => o.key.slice(prefix.length)).filter((name) => name && !name.includes('/'));
    },
    async listTree(dirUri) {
      const prefix = `${keyOf(dirUri).replace(/\/+$/, '')}/`;
      return (await store.list(prefix)).map((o) => ({ path: o.key.slice(prefix.length), size: o.size })).filter((e) => isVisiblePath(e.path));
    },
  };
}
