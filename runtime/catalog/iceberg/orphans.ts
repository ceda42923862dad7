// Orphan files: files under a table's location that no snapshot, manifest list, manifest or
// metadata file of the table references (what a writer that died between writing its files
// and committing leaves behind). Listing them is safe; deleting them is a maintenance
// decision (a commit in flight also has unreferenced files), so this module only lists.

import { PuffinError } from '../../errors.ts';
import { resolveLocation } from './io.ts';
import { decodeManifest, decodeManifestList } from './manifest.ts';
import { decodeTableMetadata } from './metadata.ts';
import type { PointerStore } from './pointer-store.ts';
import type { TableIO } from './writer-io.ts';

export interface OrphanReport {
  table: string;
  metadataLocation: string;
  /** Every file found under the table location. */
  filesTotal: number;
  referenced: number;
  /** URIs of files nothing references, sorted. */
  orphans: string[];
}

/** Referenced files of a table: its metadata files (current and logged), every snapshot's manifest list, manifests and content files. */
export async function referencedFiles(metadataLocation: string, io: TableIO): Promise<Set<string>> {
  const metadata = decodeTableMetadata(await io.read(metadataLocation), metadataLocation);
  const refs = new Set<string>([metadataLocation]);
  for (const e of metadata.metadataLog) refs.add(resolveLocation(e.metadataFile));
  const manifestsSeen = new Set<string>();
  for (const s of metadata.snapshots) {
    const manifests: string[] = [];
    if (s.manifestList) {
      const list = resolveLocation(s.manifestList);
      refs.add(list);
      for (const mf of decodeManifestList(await io.read(list), list)) manifests.push(resolveLocation(mf.path));
    }
    for (const m of s.manifests ?? []) manifests.push(resolveLocation(m));
    for (const path of manifests) {
      refs.add(path);
      if (manifestsSeen.has(path)) continue;
      manifestsSeen.add(path);
      for (const e of decodeManifest(await io.read(path), path).entries) refs.add(resolveLocation(e.file.filePath));
    }
  }
  return refs;
}

/** Files under the table's location that nothing references. */
export async function findOrphanFiles(store: PointerStore, name: string, io: TableIO): Promise<OrphanReport> {
  const metadataLocation = await store.get(name);
  if (!metadataLocation) throw new PuffinError('unknown_table', `table '${name}' does not exist in the catalog`);
  const metadata = decodeTableMetadata(await io.read(metadataLocation), metadataLocation);
  const refs = await referencedFiles(metadataLocation, io);
  const location = resolveLocation(metadata.location).replace(/\/+$/, '');
  const all = await io.listRecursive(location);
  // version-hint.text is a Hadoop-catalog convenience, not table state.
  const orphans = all.filter((uri) => !refs.has(uri) && !uri.endsWith('/metadata/version-hint.text')).sort();
  return { table: name, metadataLocation, filesTotal: all.length, referenced: all.length - orphans.length, orphans };
}
