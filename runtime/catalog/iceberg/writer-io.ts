// Where the writer puts files: a FileIO that can also write whole files and list a table's
// tree (for the orphan check), over the local filesystem or an ObjectStore. Data files,
// manifests and metadata are written once under fresh names and never overwritten, so a
// reader can never see a partly written file through a committed pointer.

import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { randomUUID } from 'node:crypto';
import { PuffinError } from '../../errors.ts';
import type { ObjectStore } from '../../storage/object-store.ts';
import { fileUriToPath, type LocationPolicy } from '../../storage/locations.ts';
import { resolveUri, type StoreOptions } from '../../storage/open.ts';
import { localFileIO, objectStoreFileIO, toUri, type FileIO } from './io.ts';

export interface TableIO extends FileIO {
  /** Write a whole file (atomically: it appears complete or not at all). */
  write(uri: string, bytes: Uint8Array): Promise<void>;
  /** Every file under a directory URI, as absolute URIs. */
  listRecursive(dirUri: string): Promise<string[]>;
  /** Delete a file this writer wrote and never published (an attempt that lost its race); absent is fine. */
  delete(uri: string): Promise<void>;
}

function localPath(uri: string): string {
  const u = toUri(uri);
  if (!/^file:/i.test(u)) throw new PuffinError('bad_request', `${uri} is not a local file URI; this table needs an object store TableIO`);
  return fileUriToPath(u);
}

export function localTableIO(): TableIO {
  const base = localFileIO();
  return {
    ...base,
    async write(uri, bytes) {
      const path = localPath(uri);
      await mkdir(dirname(path), { recursive: true });
      const tmp = `${path}.${randomUUID()}.tmp`;
      await writeFile(tmp, bytes);
      await rename(tmp, path);
    },
    async delete(uri) {
      await rm(localPath(uri), { force: true });
    },
    async listRecursive(dirUri) {
      const root = localPath(dirUri);
      let entries: string[];
      try {
        entries = (await readdir(root, { recursive: true, withFileTypes: true }))
          .filter((d) => d.isFile())
          .map((d) => join(d.parentPath ?? (d as unknown as { path: string }).path, d.name));
      } catch {
        return [];
      }
      const prefix = toUri(dirUri).replace(/\/+$/, '');
      return entries.map((p) => `${prefix}/${relative(root, p).split('\\').join('/')}`).sort();
    },
  };
}

export function objectStoreTableIO(store: ObjectStore): TableIO {
  const base = objectStoreFileIO(store);
  const keyOf = (uri: string): string => {
    if (!uri.startsWith(store.url)) throw new PuffinError('bad_request', `${uri} is outside the object store ${store.url}`);
    return uri.slice(store.url.length);
  };
  return {
    ...base,
    async write(uri, bytes) {
      await store.put(keyOf(uri), bytes);
    },
    async delete(uri) {
      await store.delete(keyOf(uri));
    },
    async listRecursive(dirUri) {
      const prefix = `${keyOf(dirUri).replace(/\/+$/, '')}/`;
      return (await store.list(prefix)).map((o) => `${store.url}${o.key}`).sort();
    },
  };
}

/**
 * A TableIO for whatever URIs a table names: file:// on the local filesystem, s3:// through
 * the object store of that bucket (as uriFileIO does for reads), so one catalog can write
 * local tables and tables on S3 side by side. With `storeOptions.locations`, files are
 * written and deleted only under its roots (the warehouse and the admin's allowed
 * locations): a table whose location lies elsewhere cannot be written through it.
 */
export function uriTableIO(storeOptions: StoreOptions = {}): TableIO {
  const io = anyUriTableIO(storeOptions);
  return storeOptions.locations ? confinedTableIO(io, storeOptions.locations) : io;
}

/** `io` refusing (access_denied, before touching anything) writes and deletes outside `locations`. */
export function confinedTableIO(io: TableIO, locations: LocationPolicy): TableIO {
  return {
    ...io,
    async write(uri, bytes) {
      await locations.check(uri, 'write of');
      return io.write(uri, bytes);
    },
    async delete(uri) {
      await locations.check(uri, 'delete of');
      return io.delete(uri);
    },
  };
}

function anyUriTableIO(storeOptions: StoreOptions): TableIO {
  const local = localTableIO();
  const pick = (uri: string): TableIO => {
    const full = toUri(uri);
    // resolveUri needs an object key, not a directory: any name inside finds the store.
    return /^file:/i.test(full) ? local : objectStoreTableIO(resolveUri(`${full.replace(/\/+$/, '')}/_`, storeOptions).store);
  };
  return {
    read: (uri) => pick(uri).read(toUri(uri)),
    exists: (uri) => pick(uri).exists(toUri(uri)),
    list: (dirUri) => pick(dirUri).list(toUri(dirUri)),
    write: (uri, bytes) => pick(uri).write(toUri(uri), bytes),
    listRecursive: (dirUri) => pick(dirUri).listRecursive(toUri(dirUri)),
    delete: (uri) => pick(uri).delete(toUri(uri)),
  };
}
