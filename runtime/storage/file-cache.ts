// The worker-side file cache: turns object URIs into local paths DuckDB can read. Files
// under a direct root are read in place; everything else is fetched once into a bounded
// directory (Lambda's /tmp survives warm invocations, so the cache outlives the process)
// and evicted least-recently-used first, except while a caller holds it.
//
// Derived entries (putDerived) are files made from fetched ones, such as the filtered
// partitions of runtime/exec/partition-cache.ts: they share the directory, the byte bound
// and the least-recently-used order with the whole files, and their owner is told when one
// is evicted. They do not outlive the process: its index of them is in memory.

import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { copyFile, link, open, rename, rm, stat, utimes } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';
import { PuffinError } from '../errors.ts';
import type { ObjectStore } from './object-store.ts';
import { fileUriToPath } from './locations.ts';
import { resolveUri, type StoreOptions } from './open.ts';

export interface FileCacheOptions {
  /** Directory holding cached files; created if absent. Give each process its own. */
  dir: string;
  /** Bound on the bytes of cached files; exceeded only while pinned files need it. */
  maxBytes: number;
  /** Directories whose files are read in place (paths or file:// URLs). */
  directRoots?: string[];
  storeOptions?: StoreOptions;
  /** How a non-file URI finds its store; defaults to `resolveUri` with `storeOptions`. */
  resolveUri?: (uri: string) => { store: ObjectStore; key: string };
}

export interface AcquiredFiles {
  /** Local paths, one per requested URI, in the same order. */
  paths: string[];
  /** Bytes copied or downloaded into the cache by this call (a hard link counts 0). */
  bytesFetched: number;
  /** Unpin the files so they may be evicted; calling it twice is harmless. */
  release(): void;
}

export interface FileCacheStats {
  files: number;
  bytes: number;
  hits: number;
  misses: number;
  evictions: number;
}

interface CacheEntry {
  path: string;
  size: number;
  /** Hard link to a local source: never touched, so the source's timestamps stay as they are. */
  linked: boolean;
  /** For a copy of a local file: the source's mtime when copied (unknown after a restart). */
  sourceMtimeMs?: number;
  /** A derived entry (putDerived): told when it is evicted or dropped. */
  derived?: { onEvict?: () => void };
}

type Plan = { kind: 'direct'; uri: string; path: string } | { kind: 'cached'; uri: string; name: string; size?: number };

interface Fetched {
  size: number;
  /** Bytes actually copied or downloaded. */
  copied: number;
  linked: boolean;
  sourceMtimeMs?: number;
}

interface Obtained {
  path: string;
  bytesFetched: number;
}

/**
 * A remote file is fetched in ranged GETs of this size, PARTS_IN_PARALLEL at once: 16 MiB,
 * the larger of the byte-range sizes AWS's S3 performance guidelines name (8 or 16 MB). On a
 * large scan the request rate per S3 prefix (5,500 GETs a second) bounds a fleet before its
 * bandwidth does, so fewer, larger ranges; a Lambda's 625 Mbit/s moves one in about 0.2 s.
 */
export const CHUNK_BYTES = 16 * 1024 * 1024;
const PARTS_IN_PARALLEL = 4;
const FILES_IN_PARALLEL = 8;
const TEMP_PREFIX = '.fetch-';
const CACHE_NAME = /^[0-9a-f]{32}(\.[A-Za-z0-9]{1,12})?$/;
/** Names of derived entries: a prefix no cached file's name (a hash) has. */
const DERIVED_NAME = /^p-[0-9a-f]{32}\.parquet$/;
const LINK_UNSUPPORTED = new Set(['EXDEV', 'EPERM', 'EMLINK', 'ENOTSUP', 'EOPNOTSUPP', 'EACCES']);

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** Cache file name: a hash of the URI, keeping the extension readers may dispatch on. */
export function cacheFileName(uri: string): string {
  const lastSegment = uri.slice(uri.lastIndexOf('/') + 1);
  const ext = extname(lastSegment);
  const hash = createHash('sha256').update(uri).digest('hex').slice(0, 32);
  return /^\.[A-Za-z0-9]{1,12}$/.test(ext) ? hash + ext : hash;
}

/** Run `task` over `items` with at most `limit` at once; on failure, settle the running ones first. */
async function mapBounded<T, R>(items: T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (!failure && next < items.length) {
      const index = next++;
      try {
        results[index] = await task(items[index]);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
  return results;
}

function abortError(signal: AbortSignal): PuffinError {
  const reason: unknown = signal.reason;
  if (reason instanceof PuffinError) return reason;
  const why = reason instanceof Error ? reason.message : String(reason);
  return new PuffinError('timeout', `fetching files was aborted: ${why}`);
}

/** `promise`, or a rejection as soon as `signal` aborts; the work itself carries on. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise<T>((resolvePromise, reject) => {
    const onAbort = (): void => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolvePromise(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

export class FileCache {
  private readonly dir: string;
  private readonly maxBytes: number;
  private readonly directRoots: string[];
  private readonly resolveStore: (uri: string) => { store: ObjectStore; key: string };
  /** Cached files by name, least recently used first (a Map keeps insertion order). */
  private entries = new Map<string, CacheEntry>();
  /** Names held by unreleased acquires; pinned before the file exists, so a fetch is covered too. */
  private readonly pins = new Map<string, number>();
  private readonly inFlight = new Map<string, Promise<Obtained>>();
  private bytes = 0;
  /** Bytes of fetches under way, counted against the bound before they land. */
  private reserved = 0;
  private hits = 0;
  private misses = 0;
  private evictions = 0;

  constructor(options: FileCacheOptions) {
    if (!options || typeof options.dir !== 'string' || options.dir === '') throw new PuffinError('bad_request', 'FileCache needs a directory');
    if (typeof options.maxBytes !== 'number' || !(options.maxBytes >= 0)) {
      throw new PuffinError('bad_request', `FileCache maxBytes must be a non-negative number, got ${String(options.maxBytes)}`);
    }
    this.dir = resolve(options.dir);
    this.maxBytes = options.maxBytes;
    this.directRoots = (options.directRoots ?? []).map((root) => {
      const abs = resolve(root.startsWith('file:') ? fileUriToPath(root) : root);
      return abs.endsWith(sep) ? abs : abs + sep;
    });
    const storeOptions = options.storeOptions ?? {};
    this.resolveStore = options.resolveUri ?? ((uri) => resolveUri(uri, storeOptions));
    mkdirSync(this.dir, { recursive: true });
    this.indexExisting();
    this.evict();
  }

  /** Adopt the files a previous process left, oldest modification first. */
  private indexExisting(): void {
    const found: { name: string; path: string; size: number; mtimeMs: number; linked: boolean }[] = [];
    for (const name of readdirSync(this.dir)) {
      const path = join(this.dir, name);
      if (name.startsWith(TEMP_PREFIX) || DERIVED_NAME.test(name)) {
        // A fetch cut short by the previous process, or a derived entry whose index died with it.
        rmSync(path, { force: true });
        continue;
      }
      if (!CACHE_NAME.test(name)) continue;
      const info = statSync(path, { throwIfNoEntry: false });
      if (!info?.isFile()) continue;
      found.push({ name, path, size: info.size, mtimeMs: info.mtimeMs, linked: info.nlink > 1 });
    }
    found.sort((a, b) => a.mtimeMs - b.mtimeMs);
    for (const { name, path, size, linked } of found) {
      this.entries.set(name, { path, size, linked });
      this.bytes += size;
    }
  }

  /** The bound on the bytes of cached files. */
  get maxSize(): number {
    return this.maxBytes;
  }

  stats(): FileCacheStats {
    return { files: this.entries.size, bytes: this.bytes, hits: this.hits, misses: this.misses, evictions: this.evictions };
  }

  /**
   * Keep a file made from cached ones as the derived entry `name` (see the top of this file):
   * `source` is hard-linked (or copied) in and stays where it is; room is made under the
   * bound first. Returns the entry's path, or undefined when it cannot fit (larger than the
   * bound, or everything else is pinned). `onEvict` is called once the entry is gone.
   */
  async putDerived(name: string, source: string, onEvict?: () => void): Promise<string | undefined> {
    if (!DERIVED_NAME.test(name)) throw new PuffinError('internal', `'${name}' is not a derived cache entry name`);
    if (this.entries.has(name)) return this.entries.get(name)!.path;
    const info = await stat(source).catch(() => undefined);
    if (!info?.isFile()) throw new PuffinError('internal', `file cache cannot keep ${source}: it does not exist`);
    if (info.size > this.maxBytes) return undefined;
    const path = join(this.dir, name);
    this.reserved += info.size;
    try {
      this.evict();
      if (this.bytes + this.reserved > this.maxBytes) return undefined;
      const temp = join(this.dir, `${TEMP_PREFIX}${name}-${randomBytes(6).toString('hex')}`);
      try {
        await link(source, temp);
      } catch (err) {
        if (!LINK_UNSUPPORTED.has(errnoOf(err) ?? '')) throw this.ioError(err, source);
        await copyFile(source, temp).catch((e: unknown) => {
          throw this.ioError(e, source);
        });
      }
      await rename(temp, path);
      // Another caller may have put the same entry meanwhile: the rename replaced its file with an equal one.
      const earlier = this.entries.get(name);
      if (earlier) this.forget(name, earlier);
      this.entries.set(name, { path, size: info.size, linked: false, derived: { onEvict } });
      this.bytes += info.size;
    } finally {
      this.reserved -= info.size;
    }
    this.evict();
    return this.entries.has(name) ? path : undefined;
  }

  /** A derived entry's path, marked most recently used and pinned until released; undefined when absent. */
  useDerived(name: string): { path: string; release: () => void } | undefined {
    const entry = this.entries.get(name);
    if (!entry?.derived) return undefined;
    this.entries.delete(name);
    this.entries.set(name, entry);
    this.pins.set(name, (this.pins.get(name) ?? 0) + 1);
    let released = false;
    return {
      path: entry.path,
      release: () => {
        if (released) return;
        released = true;
        const count = (this.pins.get(name) ?? 1) - 1;
        if (count > 0) this.pins.set(name, count);
        else this.pins.delete(name);
        this.evict();
      },
    };
  }

  /** Remove a derived entry (its owner found a better one); a pinned one goes once released. */
  dropDerived(name: string): void {
    const entry = this.entries.get(name);
    if (!entry?.derived) return;
    if ((this.pins.get(name) ?? 0) > 0) {
      // Least recently used: the next eviction after its release takes it first.
      this.entries.delete(name);
      this.entries = new Map([[name, entry], ...this.entries]);
      return;
    }
    this.remove(name, entry);
  }

  private remove(name: string, entry: CacheEntry): void {
    this.entries.delete(name);
    this.bytes -= entry.size;
    // Synchronous, so a later fetch of the same name cannot be renamed in before the unlink.
    try {
      rmSync(entry.path, { force: true });
    } catch {
      // Left on disk; a restart re-indexes it and evicts it then.
    }
    entry.derived?.onEvict?.();
  }

  /**
   * Local paths for `uris`, fetching what is not cached. `sizes[i]`, when given, is the
   * object's size as its catalog recorded it (lake files are written once): the fetch then
   * starts with its ranged GETs, without a HEAD request first. A wrong size is caught: a short
   * last range fails the fetch, and a longer object fails its reader at the footer.
   */
  async acquire(uris: string[], signal?: AbortSignal, sizes?: readonly (number | undefined)[]): Promise<AcquiredFiles> {
    if (!Array.isArray(uris)) throw new PuffinError('bad_request', 'acquire expects an array of URIs');
    const plans = uris.map((uri, i) => this.plan(uri, sizes?.[i]));
    const pinned = plans.flatMap((p) => (p.kind === 'cached' ? [p.name] : []));
    for (const name of pinned) this.pins.set(name, (this.pins.get(name) ?? 0) + 1);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      for (const name of pinned) {
        const count = (this.pins.get(name) ?? 1) - 1;
        if (count > 0) this.pins.set(name, count);
        else this.pins.delete(name);
      }
      this.evict();
    };
    try {
      const obtained = await mapBounded(plans, FILES_IN_PARALLEL, (plan) => this.obtain(plan, signal));
      return {
        paths: obtained.map((o) => o.path),
        bytesFetched: obtained.reduce((sum, o) => sum + o.bytesFetched, 0),
        release,
      };
    } catch (err) {
      release();
      throw err;
    }
  }

  private plan(uri: string, size?: number): Plan {
    if (typeof uri !== 'string' || uri === '') throw new PuffinError('bad_request', 'a file URI must be a non-empty string');
    if (/^file:/i.test(uri)) {
      let path: string;
      try {
        path = fileUriToPath(uri);
      } catch (err) {
        throw new PuffinError('bad_request', `'${uri}' is not a local file URL: ${(err as Error).message}`);
      }
      if (this.directRoots.some((root) => path.startsWith(root))) return { kind: 'direct', uri, path };
    }
    return { kind: 'cached', uri, name: cacheFileName(uri), ...(Number.isSafeInteger(size) && size! >= 0 ? { size } : {}) };
  }

  private async obtain(plan: Plan, signal: AbortSignal | undefined): Promise<Obtained> {
    if (signal?.aborted) throw abortError(signal);
    if (plan.kind === 'direct') {
      const info = await stat(plan.path).catch(() => undefined);
      if (!info?.isFile()) throw new PuffinError('not_found', `'${plan.uri}' does not exist`, { uri: plan.uri });
      return { path: plan.path, bytesFetched: 0 };
    }
    const { name, uri } = plan;
    const entry = this.entries.get(name);
    if (entry && !(await this.isFresh(entry, uri))) {
      // The local source was rewritten in place (say, `puffindb demo` run again): fetch anew.
      this.forget(name, entry);
    } else if (entry) {
      if (await this.touch(entry)) {
        if (this.entries.get(name) === entry) {
          this.entries.delete(name); // re-insert: most recently used goes last
          this.entries.set(name, entry);
        }
        this.hits++;
        return { path: entry.path, bytesFetched: 0 };
      }
      this.forget(name, entry); // deleted behind our back: fetch it again
    }
    const running = this.inFlight.get(name);
    if (running) {
      this.hits++;
      const { path } = await untilAborted(running, signal);
      return { path, bytesFetched: 0 };
    }
    this.misses++;
    const fetching = this.fetch(uri, name, plan.size).finally(() => this.inFlight.delete(name));
    fetching.catch(() => undefined); // waiters that gave up must not leave the rejection unhandled
    this.inFlight.set(name, fetching);
    return untilAborted(fetching, signal);
  }

  /**
   * Is a cached copy of a local file still that file? A hard link must share the source's
   * inode; a copy must match the source's size and mtime. Objects in a lake are written
   * once (Iceberg data files, unique shuffle keys), so remote entries are always fresh.
   */
  private async isFresh(entry: CacheEntry, uri: string): Promise<boolean> {
    if (!/^file:/i.test(uri)) return true;
    const source = await stat(fileUriToPath(uri)).catch(() => undefined);
    if (!source?.isFile()) return false;
    if (entry.linked) {
      const cached = await stat(entry.path).catch(() => undefined);
      return !!cached && cached.ino === source.ino && cached.dev === source.dev;
    }
    return entry.sourceMtimeMs === source.mtimeMs && entry.size === source.size;
  }

  /** Mark a cached file used, for recency across restarts; false when it has vanished. */
  private async touch(entry: CacheEntry): Promise<boolean> {
    try {
      if (entry.linked) await stat(entry.path);
      else {
        const now = new Date();
        await utimes(entry.path, now, now);
      }
      return true;
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return false;
      throw new PuffinError('internal', `file cache cannot use ${entry.path}: ${(err as Error).message}`);
    }
  }

  private forget(name: string, entry: CacheEntry): void {
    if (this.entries.get(name) !== entry) return;
    this.entries.delete(name);
    this.bytes -= entry.size;
    entry.derived?.onEvict?.();
  }

  private async fetch(uri: string, name: string, size?: number): Promise<Obtained> {
    const path = join(this.dir, name);
    const temp = join(this.dir, `${TEMP_PREFIX}${name}-${randomBytes(6).toString('hex')}`);
    // Room is made before the bytes land, so the disk never holds more than the bound allows.
    let held = 0;
    const reserve = (bytes: number): void => {
      held += bytes;
      this.reserved += bytes;
      this.evict();
    };
    try {
      const fetched = /^file:/i.test(uri)
        ? await this.copyLocal(fileUriToPath(uri), temp, uri, reserve)
        : await this.download(uri, temp, reserve, size);
      // Renamed into place whole, so no reader ever sees half a file.
      await rename(temp, path);
      this.reserved -= held;
      held = 0;
      this.entries.set(name, { path, size: fetched.size, linked: fetched.linked, sourceMtimeMs: fetched.sourceMtimeMs });
      this.bytes += fetched.size;
      this.evict();
      return { path, bytesFetched: fetched.copied };
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    } finally {
      this.reserved -= held;
    }
  }

  private async copyLocal(source: string, temp: string, uri: string, reserve: (bytes: number) => void): Promise<Fetched> {
    const info = await stat(source).catch(() => undefined);
    if (!info?.isFile()) throw new PuffinError('not_found', `'${uri}' does not exist`, { uri });
    reserve(info.size);
    try {
      await link(source, temp);
      return { size: info.size, copied: 0, linked: true };
    } catch (err) {
      if (!LINK_UNSUPPORTED.has(errnoOf(err) ?? '')) throw this.ioError(err, uri);
    }
    try {
      await copyFile(source, temp);
    } catch (err) {
      throw this.ioError(err, uri);
    }
    return { size: info.size, copied: info.size, linked: false, sourceMtimeMs: info.mtimeMs };
  }

  private async download(uri: string, temp: string, reserve: (bytes: number) => void, known?: number): Promise<Fetched> {
    const { store, key } = this.resolveStore(uri);
    let size = known;
    if (size === undefined) {
      const info = await store.head(key);
      if (!info) throw new PuffinError('not_found', `'${uri}' does not exist`, { uri });
      size = info.size;
    } else if (size === 0) {
      // No range to fetch: the HEAD is what says the object is there.
      if (!(await store.head(key))) throw new PuffinError('not_found', `'${uri}' does not exist`, { uri });
    }
    reserve(size);
    const fh = await open(temp, 'wx');
    try {
      const offsets: number[] = [];
      for (let offset = 0; offset < size; offset += CHUNK_BYTES) offsets.push(offset);
      await mapBounded(offsets, PARTS_IN_PARALLEL, async (offset) => {
        const want = Math.min(CHUNK_BYTES, size - offset);
        const part = await store.getRange(key, offset, want);
        if (part.length !== want) {
          throw new PuffinError('unavailable', `'${uri}' changed while being fetched: expected ${want} bytes at ${offset}, got ${part.length}`, { uri });
        }
        let written = 0;
        while (written < want) {
          const { bytesWritten } = await fh.write(part, written, want - written, offset + written);
          written += bytesWritten;
        }
      });
    } catch (err) {
      throw err instanceof PuffinError ? err : this.ioError(err, uri);
    } finally {
      await fh.close();
    }
    return { size, copied: size, linked: false };
  }

  private ioError(err: unknown, uri: string): PuffinError {
    const message = err instanceof Error ? err.message : String(err);
    return new PuffinError('internal', `file cache cannot fetch '${uri}' into ${this.dir}: ${message}`, { uri });
  }

  /** Drop least recently used, unpinned files until the cache (with fetches under way) fits. */
  private evict(): void {
    for (const [name, entry] of this.entries) {
      if (this.bytes + this.reserved <= this.maxBytes) return;
      if ((this.pins.get(name) ?? 0) > 0) continue;
      this.evictions++;
      this.remove(name, entry);
    }
  }
}
