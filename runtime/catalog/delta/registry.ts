// Registered Delta tables of the warehouse catalog: one small JSON document per table
// (<catalog>/delta-registrations/<name>.json, the table's root URI) and the snapshots read
// from their logs. Every read lists `_delta_log/` again, so new commits show; snapshots
// (one per table version) and parsed log files are cached.

import type { Engine } from '../../engine/engine.ts';
import { PuffinError } from '../../errors.ts';
import { toUri, type FileIO } from '../iceberg/io.ts';
import { RegistrationFiles } from '../registrations.ts';
import type { TableSnapshot, TableVersion } from '../types.ts';
import { DeltaLogReader, listLog, logUriOf } from './log.ts';
import { deltaSnapshot } from './table.ts';

const CACHED_SNAPSHOTS = 32;

/** The root URI of a table path or URI, without a trailing '/'. */
export function deltaRootUri(location: string): string {
  if (typeof location !== 'string' || location === '') throw new PuffinError('bad_request', 'register needs the path of a Delta table directory');
  return toUri(location).replace(/\/+$/, '').replace(/\/_delta_log$/, '');
}

/** Whether `location` is a Delta table's root: it has a `_delta_log/` with files. */
export async function isDeltaLocation(io: FileIO, location: string): Promise<boolean> {
  try {
    return (await io.list(logUriOf(deltaRootUri(location)))).length > 0;
  } catch {
    return false;
  }
}

export class DeltaRegistry {
  private readonly reader: DeltaLogReader;
  private readonly snapshots = new Map<string, TableSnapshot>();

  private constructor(private readonly registrations: RegistrationFiles, private readonly io: FileIO, engine: Engine) {
    this.reader = new DeltaLogReader(io, engine);
  }

  static async open(dir: string, io: FileIO, engine: Engine): Promise<DeltaRegistry> {
    return new DeltaRegistry(await RegistrationFiles.open(dir, 'Delta'), io, engine);
  }

  list(): Promise<string[]> {
    return this.registrations.list();
  }

  location(key: string): Promise<string | undefined> {
    return this.registrations.location(key);
  }

  /** The table at its newest version, or at `version` (snapshotId: the Delta version). */
  async snapshot(key: string, rootUri: string, version: TableVersion = {}): Promise<TableSnapshot> {
    const listing = await listLog(this.io, rootUri);
    let v: number | undefined;
    if (version.snapshotId !== undefined) {
      if (!/^\d+$/.test(version.snapshotId)) throw new PuffinError('bad_request', `a Delta table's versions are non-negative integers, got ${version.snapshotId}`);
      v = Number(version.snapshotId);
    } else if (version.timestampMs !== undefined) {
      v = await this.reader.versionAt(listing, version.timestampMs);
    }
    // The newest version moves: it is keyed by the version the listing shows.
    const newest = Math.max(-1, ...listing.commits.keys(), ...listing.checkpoints.keys());
    const key2 = `${key}|${rootUri}|${v ?? newest}`;
    const hit = this.snapshots.get(key2);
    if (hit) return hit;
    const state = await this.reader.state(listing, v);
    const snap = deltaSnapshot(key, rootUri, state);
    this.snapshots.set(key2, snap);
    if (this.snapshots.size > CACHED_SNAPSHOTS) this.snapshots.delete(this.snapshots.keys().next().value as string);
    return snap;
  }

  /** Reads the table's newest version (refusing what cannot be read), then records it. */
  async register(key: string, location: string): Promise<TableSnapshot> {
    const rootUri = deltaRootUri(location);
    const snap = await this.snapshot(key, rootUri);
    await this.registrations.create(key, rootUri);
    return snap;
  }

  drop(key: string): Promise<boolean> {
    return this.registrations.drop(key);
  }
}
