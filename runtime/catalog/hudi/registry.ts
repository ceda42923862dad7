// Registered Hudi tables of the warehouse catalog: one small JSON document per table
// (<catalog>/hudi-registrations/<name>.json, the table's root URI) and the snapshots read
// from their timelines. Every read reads `hoodie.properties` and lists the timeline again, so
// new commits show; a snapshot is rebuilt (the table's directories listed) only when the
// timeline changed, since every change to a table's files is an instant on it (commits write
// files, cleans and rollbacks delete them). Parsed commit metadata is cached by URI.

import { createHash } from 'node:crypto';
import { PuffinError } from '../../errors.ts';
import { joinUri, toUri, type FileIO } from '../iceberg/io.ts';
import { RegistrationFiles } from '../registrations.ts';
import type { TableSnapshot, TableVersion } from '../types.ts';
import { checkConfig, hudiConfig, parseProperties, type HudiConfig } from './properties.ts';
import { hudiColumns } from './schema.ts';
import { hudiSnapshot, instantAt, latestFileSlices, type HudiState } from './table.ts';
import { CommitReader, compareInstants, instantOrder, listTimeline, type Instant, type Timeline } from './timeline.ts';

const CACHED_SNAPSHOTS = 32;

/** The root URI of a table path or URI, without a trailing '/' (nor `/.hoodie`). */
export function hudiRootUri(location: string): string {
  if (typeof location !== 'string' || location === '') throw new PuffinError('bad_request', 'register needs the path of a Hudi table directory');
  return toUri(location).replace(/\/+$/, '').replace(/\/\.hoodie$/, '');
}

function propertiesUri(rootUri: string): string {
  return joinUri(joinUri(rootUri, '.hoodie'), 'hoodie.properties');
}

/** Whether `location` is a Hudi table's root: it has `.hoodie/hoodie.properties`. */
export async function isHudiLocation(io: FileIO, location: string): Promise<boolean> {
  try {
    const root = hudiRootUri(location);
    return (await io.exists(propertiesUri(root))) || (await io.exists(`${propertiesUri(root)}.backup`));
  } catch {
    return false;
  }
}

/** The table's properties text: hoodie.properties, else the backup Hudi keeps while updating it. */
async function readPropertiesText(io: FileIO, rootUri: string): Promise<string> {
  const uri = propertiesUri(rootUri);
  try {
    return new TextDecoder().decode(await io.read(uri));
  } catch (err) {
    if (!(err instanceof PuffinError && err.code === 'not_found')) throw err;
    try {
      return new TextDecoder().decode(await io.read(`${uri}.backup`));
    } catch (err2) {
      if (err2 instanceof PuffinError && err2.code === 'not_found') throw new PuffinError('not_found', `${rootUri} has no .hoodie/hoodie.properties: not a Hudi table`);
      throw err2;
    }
  }
}

export class HudiRegistry {
  private readonly commits: CommitReader;
  private readonly snapshots = new Map<string, TableSnapshot>();

  private constructor(private readonly registrations: RegistrationFiles, private readonly io: FileIO) {
    this.commits = new CommitReader(io);
  }

  static async open(dir: string, io: FileIO): Promise<HudiRegistry> {
    return new HudiRegistry(await RegistrationFiles.open(dir, 'Hudi'), io);
  }

  list(): Promise<string[]> {
    return this.registrations.list();
  }

  location(key: string): Promise<string | undefined> {
    return this.registrations.location(key);
  }

  /**
   * The table as of its newest completed commit, or as of `version`: snapshotId names a
   * completed commit instant (`AT (VERSION => 20240418173551906)`); timestampMs takes the
   * newest completed commit whose instant time is at or before it, read in UTC.
   */
  async snapshot(key: string, rootUri: string, version: TableVersion = {}): Promise<TableSnapshot> {
    const where = `Hudi table ${key} (${rootUri})`;
    const propertiesText = await readPropertiesText(this.io, rootUri);
    const config = hudiConfig(parseProperties(propertiesText), where);
    checkConfig(config, where);
    const timeline = await listTimeline(this.io, rootUri, config);
    const target = targetInstant(timeline, version, where);
    const cacheKey = [key, rootUri, createHash('sha256').update(propertiesText).update('\u0000').update(timeline.key).digest('hex'), target.requested].join('|');
    const hit = this.snapshots.get(cacheKey);
    if (hit) return hit;
    const state = await this.state(rootUri, config, timeline, target, where);
    const snap = hudiSnapshot(key, rootUri, state);
    this.snapshots.set(cacheKey, snap);
    if (this.snapshots.size > CACHED_SNAPSHOTS) this.snapshots.delete(this.snapshots.keys().next().value as string);
    return snap;
  }

  private async state(rootUri: string, config: HudiConfig, timeline: Timeline, target: Instant, where: string): Promise<HudiState> {
    const upTo = timeline.commits.filter((c) => compareInstants(c.requested, target.requested) <= 0);
    const commits = [];
    for (const instant of upTo) commits.push({ instant, metadata: await this.commits.metadata(timeline, instant) });
    // The writer's schema as of the instant: the newest commit that records one, else the
    // schema the table was created with.
    const schema = [...commits].reverse().find((c) => c.metadata.schema)?.metadata.schema ?? config.createSchema;
    if (schema === undefined) throw new PuffinError('bad_request', `${where}: no commit up to instant ${target.requested} records the table's schema (extraMetadata.schema), nor does hoodie.properties (hoodie.table.create.schema)`);
    const columns = hudiColumns(schema, config, where);
    if (!this.io.listTree) throw new PuffinError('internal', `${where}: this catalog's file IO cannot list directory trees, which reading Hudi tables needs`);
    const files = await this.io.listTree(rootUri);
    const slices = latestFileSlices(config, timeline, target.requested, commits, files, `${where} at instant ${target.requested}`);
    return { config, instant: target.requested, columns, slices };
  }

  /** Reads the table's newest snapshot (refusing what cannot be read), then records it. */
  async register(key: string, location: string): Promise<TableSnapshot> {
    const rootUri = hudiRootUri(location);
    const snap = await this.snapshot(key, rootUri);
    await this.registrations.create(key, rootUri);
    return snap;
  }

  drop(key: string): Promise<boolean> {
    return this.registrations.drop(key);
  }
}

/** The completed commit a snapshot is as of. */
function targetInstant(timeline: Timeline, version: TableVersion, where: string): Instant {
  const commits = timeline.commits;
  if (commits.length === 0) throw new PuffinError('not_found', `${where} has no completed commit on its timeline (${timeline.dirUri})`);
  const range = `its completed commits run from ${commits[0].requested} to ${commits[commits.length - 1].requested}`;
  if (version.snapshotId !== undefined) {
    if (!/^\d{14}$|^\d{17}$/.test(version.snapshotId)) throw new PuffinError('bad_request', `${where}: a Hudi version is a commit instant time (yyyyMMddHHmmss[SSS]), got ${version.snapshotId}`);
    const found = commits.find((c) => instantOrder(c.requested) === instantOrder(version.snapshotId as string));
    if (!found) throw new PuffinError('not_found', `${where}: instant ${version.snapshotId} is not a completed commit of the table (${range})`);
    return found;
  }
  if (version.timestampMs !== undefined) {
    const at = instantAt(version.timestampMs);
    const found = [...commits].reverse().find((c) => instantOrder(c.requested) <= at);
    if (!found) throw new PuffinError('not_found', `${where}: no completed commit at or before ${new Date(version.timestampMs).toISOString()} (instant ${at}; ${range})`);
    return found;
  }
  return commits[commits.length - 1];
}
