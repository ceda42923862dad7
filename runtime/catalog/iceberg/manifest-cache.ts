// Decoded manifests and manifest lists, cached in memory by location. Iceberg never rewrites
// one in place (a change writes a new file under a new name), so an entry never goes stale;
// the cache is bounded by the number of entries it holds and evicts the least recently used.

import { PuffinError } from '../../errors.ts';
import type { FileIO } from './io.ts';
import { decodeManifest, decodeManifestList, type Manifest, type ManifestFile } from './manifest.ts';

type Cached = { kind: 'list'; value: ManifestFile[] } | { kind: 'manifest'; value: Manifest };

export interface ManifestCacheStats {
  hits: number;
  misses: number;
  /** Entries (manifest rows and manifest-list rows) currently held. */
  size: number;
  files: number;
}

export class ManifestCache {
  private readonly items = new Map<string, { item: Cached; weight: number }>();
  private readonly loading = new Map<string, Promise<Cached>>();
  private weight = 0;
  private hits = 0;
  private misses = 0;

  /**
   * @param maxEntries upper bound on the rows held, summed over all cached files. A decoded
   * manifest row takes about 0.9 KB (0.6 KB of objects and 0.3 KB of the decoded Avro blocks
   * its metrics are parsed from; measured on 100,000 rows), so the default holds the
   * manifests of a 500,000-file table in roughly 450 MB.
   */
  constructor(readonly maxEntries = 500_000) {}

  async manifestList(uri: string, io: FileIO): Promise<ManifestFile[]> {
    const item = await this.get(uri, io, 'list');
    return item.value as ManifestFile[];
  }

  async manifest(uri: string, io: FileIO): Promise<Manifest> {
    const item = await this.get(uri, io, 'manifest');
    return item.value as Manifest;
  }

  stats(): ManifestCacheStats {
    return { hits: this.hits, misses: this.misses, size: this.weight, files: this.items.size };
  }

  clear(): void {
    this.items.clear();
    this.weight = 0;
  }

  private async get(uri: string, io: FileIO, kind: Cached['kind']): Promise<Cached> {
    const key = `${kind}:${uri}`;
    const held = this.items.get(key);
    if (held) {
      this.hits++;
      // Re-insert: Map order is the recency order.
      this.items.delete(key);
      this.items.set(key, held);
      return held.item;
    }
    const pending = this.loading.get(key);
    if (pending) return pending;
    this.misses++;
    const load = (async (): Promise<Cached> => {
      const bytes = await io.read(uri).catch((err: unknown) => {
        if (err instanceof PuffinError && err.code === 'not_found') {
          throw new PuffinError('not_found', `${kind === 'list' ? 'manifest list' : 'manifest'} ${uri} does not exist`);
        }
        throw err;
      });
      const item: Cached = kind === 'list' ? { kind, value: decodeManifestList(bytes, uri) } : { kind, value: decodeManifest(bytes, uri) };
      this.put(key, item);
      return item;
    })();
    this.loading.set(key, load);
    try {
      return await load;
    } finally {
      this.loading.delete(key);
    }
  }

  private put(key: string, item: Cached): void {
    const weight = 1 + (item.kind === 'list' ? item.value.length : item.value.entries.length);
    if (weight > this.maxEntries) return;
    this.items.set(key, { item, weight });
    this.weight += weight;
    for (const [k, v] of this.items) {
      if (this.weight <= this.maxEntries) break;
      this.items.delete(k);
      this.weight -= v.weight;
    }
  }
}

/** The process-wide cache scan planning uses unless given another. */
export const sharedManifestCache = new ManifestCache();
