// The ObjectStore over a local directory: the embedded mode's warehouse, and the store
// DuckDB reads in place. Writes are atomic (temp file in the same directory, then rename or
// link), so a reader never sees half an object and `ifNoneMatch` cannot lose a race.

import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readdir, readFile, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { PuffinError } from '../errors.ts';
import { checkKey, checkPrefix, checkRange, compareKeys, TEMP_NAME_PREFIX } from './object-key.ts';
import type { ObjectInfo, ObjectStore, PutOptions } from './object-store.ts';

const ABSENT = new Set(['ENOENT', 'ENOTDIR', 'EISDIR']);

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

export class LocalObjectStore implements ObjectStore {
  readonly url: string;
  /** Absolute path of the root directory. */
  readonly rootDir: string;

  constructor(rootDir: string) {
    if (typeof rootDir !== 'string' || rootDir === '') throw new PuffinError('bad_request', 'LocalObjectStore needs a root directory');
    this.rootDir = resolve(rootDir);
    // Literally: a key is a file name byte for byte, so the URI of key k is url + k.
    this.url = this.rootDir.endsWith('/') ? `file://${this.rootDir}` : `file://${this.rootDir}/`;
  }

  localPath(key: string): string {
    checkKey(key);
    return join(this.rootDir, key);
  }

  async get(key: string): Promise<Uint8Array> {
    const path = this.localPath(key);
    try {
      return await readFile(path);
    } catch (err) {
      throw this.fsError(err, key, 'read');
    }
  }

  async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    checkRange(offset, length);
    const path = this.localPath(key);
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      throw this.fsError(err, key, 'read');
    }
    try {
      const info = await fh.stat();
      if (!info.isFile()) throw this.notFound(key);
      const want = Math.max(0, Math.min(info.size, offset + length) - offset);
      const buf = Buffer.alloc(want);
      let got = 0;
      while (got < want) {
        const { bytesRead } = await fh.read(buf, got, want - got, offset + got);
        if (bytesRead === 0) break; // truncated under us: return what exists
        got += bytesRead;
      }
      return got === want ? buf : buf.subarray(0, got);
    } catch (err) {
      throw this.fsError(err, key, 'read');
    } finally {
      await fh.close();
    }
  }

  async put(key: string, body: Uint8Array | string, options: PutOptions = {}): Promise<void> {
    const path = this.localPath(key);
    const data = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    if (!(data instanceof Uint8Array)) throw new PuffinError('bad_request', `body of '${key}' must be bytes or a string`);
    const dir = dirname(path);
    try {
      await mkdir(dir, { recursive: true });
    } catch (err) {
      throw this.fsError(err, key, 'write');
    }
    const temp = join(dir, `${TEMP_NAME_PREFIX}${randomBytes(8).toString('hex')}`);
    try {
      const fh = await open(temp, 'wx');
      try {
        await fh.writeFile(data);
        await fh.sync();
      } finally {
        await fh.close();
      }
      // link() fails with EEXIST instead of replacing, which makes create-only writes
      // race-free; rename() replaces atomically for ordinary writes.
      if (options.ifNoneMatch) await link(temp, path);
      else await rename(temp, path);
    } catch (err) {
      if (options.ifNoneMatch && errnoOf(err) === 'EEXIST') {
        throw new PuffinError('conflict', `object '${key}' already exists in ${this.url}`, { key });
      }
      throw this.fsError(err, key, 'write');
    } finally {
      await unlink(temp).catch(() => undefined);
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    checkPrefix(prefix);
    // Start at the deepest directory the prefix names completely; its last partial
    // segment filters names inside it.
    const base = prefix.slice(0, prefix.lastIndexOf('/') + 1);
    const found: ObjectInfo[] = [];
    await this.walk(join(this.rootDir, base), base, prefix, found);
    return found.sort((a, b) => compareKeys(a.key, b.key));
  }

  private async walk(dir: string, keyPrefix: string, prefix: string, found: ObjectInfo[]): Promise<void> {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (ABSENT.has(errnoOf(err) ?? '')) return;
      throw this.fsError(err, keyPrefix, 'list');
    }
    await Promise.all(
      entries.map(async (entry) => {
        if (entry.name.startsWith(TEMP_NAME_PREFIX)) return;
        const key = keyPrefix + entry.name;
        if (entry.isDirectory()) {
          const sub = `${key}/`;
          if (sub.startsWith(prefix) || prefix.startsWith(sub)) await this.walk(join(dir, entry.name), sub, prefix, found);
          return;
        }
        if (!key.startsWith(prefix) || !(entry.isFile() || entry.isSymbolicLink())) return;
        const info = await this.statObject(join(dir, entry.name), key);
        if (info) found.push(info);
      }),
    );
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    return this.statObject(this.localPath(key), key);
  }

  private async statObject(path: string, key: string): Promise<ObjectInfo | undefined> {
    try {
      const info = await stat(path);
      return info.isFile() ? { key, size: info.size, lastModified: Math.floor(info.mtimeMs) } : undefined;
    } catch (err) {
      if (ABSENT.has(errnoOf(err) ?? '')) return undefined;
      throw this.fsError(err, key, 'stat');
    }
  }

  async delete(key: string): Promise<void> {
    const path = this.localPath(key);
    try {
      await unlink(path);
    } catch (err) {
      if (ABSENT.has(errnoOf(err) ?? '')) return;
      throw this.fsError(err, key, 'delete');
    }
  }

  private notFound(key: string): PuffinError {
    return new PuffinError('not_found', `object '${key}' not found in ${this.url}`, { key });
  }

  private fsError(err: unknown, key: string, op: string): PuffinError {
    if (err instanceof PuffinError) return err;
    const code = errnoOf(err);
    if (op === 'read' && code && ABSENT.has(code)) return this.notFound(key);
    if (op === 'write' && (code === 'ENOTDIR' || code === 'EEXIST' || code === 'EISDIR')) {
      // The filesystem cannot hold both 'a' and 'a/b' as objects, unlike S3.
      return new PuffinError('conflict', `cannot write '${key}' in ${this.url}: a file or directory in its path is in the way`, { key });
    }
    if (code === 'EACCES' || code === 'EPERM') return new PuffinError('access_denied', `permission denied to ${op} '${key}' in ${this.url}`, { key });
    const message = err instanceof Error ? err.message : String(err);
    return new PuffinError('internal', `cannot ${op} '${key}' in ${this.url}: ${message}`, { key });
  }
}
