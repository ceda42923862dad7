// The warehouse's one catalog: Parquet file sets (the first form, ParquetCatalog), Iceberg
// tables (a PointerStore names each table's current metadata.json; scan planning lists its
// files) and registered Delta Lake and Hudi tables (read only) behind the planner's Catalog
// interface. A name belongs to one kind at a time.
//
// An Iceberg table's snapshot is planned from its metadata: the data files of the chosen
// Iceberg snapshot with statistics from the manifests' bounds (so the planner prunes them
// like Parquet footers), each carrying the field-id read schema and delete files a worker
// needs to read it correctly. Metadata files and manifests never change once written, so
// opened tables and planned snapshots are cached by metadata location (and snapshot).

import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Engine } from '../engine/engine.ts';
import { PuffinError } from '../errors.ts';
import type { StoreOptions } from '../storage/open.ts';
import { FilePointerStore, pointerName } from './iceberg/file-pointer-store.ts';
import type { FileIO } from './iceberg/io.ts';
import { sharedManifestCache, type ManifestCache } from './iceberg/manifest-cache.ts';
import type { PointerStore } from './iceberg/pointer-store.ts';
import type { ScanPredicate } from './iceberg/predicate.ts';
import { planTableScan, type IcebergDataFile, type IcebergScan } from './iceberg/scan.ts';
import { openIcebergTable, type IcebergTable } from './iceberg/table.ts';
import { writeAbsoluteCopy } from './iceberg/reroot-copy.ts';
import type { TableIO } from './iceberg/writer-io.ts';
import { uriFileIO } from './iceberg/uri-file-io.ts';
import { ParquetCatalog, type AddTableOptions } from './parquet-catalog.ts';
import { DeltaRegistry, isDeltaLocation } from './delta/registry.ts';
import { HudiRegistry, isHudiLocation } from './hudi/registry.ts';
import type { Catalog, ColumnStats, DataFile, TableSnapshot, TableSummary, TableVersion } from './types.ts';
import { tableSummary } from './summary.ts';
import type { ViewDefinition } from '../sql/views.ts';
import type { ExternalCatalogs } from './external/external-catalog.ts';

/** Names of the Iceberg tables an IVF index keeps (exec/vector-index.ts): `__ivf_<index>` and `__ivf_<index>_centroids`. */
export const INDEX_TABLE_PREFIX = '__ivf_';

export interface WarehouseCatalogOptions {
  /** Where Iceberg metadata pointers live; default: files under <dir>/iceberg. */
  pointers?: PointerStore;
  /** How metadata, manifests and files are read; default: local files and S3 by URI. */
  io?: FileIO;
  /** Decoded manifests, shared by every table; default: the process-wide cache. */
  cache?: ManifestCache;
  storeOptions?: StoreOptions;
  /** Where views are kept (name -> definition JSON); default: files under <dir>/views. Redis when pointers are. */
  views?: PointerStore;
  /** Registered external catalogs (runtime/catalog/external/): names `CATALOG.namespace.table` resolve there. */
  external?: ExternalCatalogs;
}

export interface RegisterOptions {
  /** Resolve paths recorded under the table's `location` against the directory it was found in
   *  (tables copied from another tree, such as the fixtures). */
  reroot?: boolean;
  /**
   * With `reroot`: store the table with absolute paths instead, as a copy of its metadata
   * tree (metadata, manifest lists, manifests; data files stay in place) written under
   * `location` through `io` (iceberg/reroot-copy.ts), so other engines (through the REST
   * catalog) read it too and new files go under `location`. A table the copy cannot hold
   * (position deletes) is registered re-rooted in place as without this option.
   */
  absoluteCopy?: { io: TableIO; location: string };
}

export interface IcebergScanRequest {
  filter?: ScanPredicate;
  snapshotId?: string;
  asOfTimestampMs?: number;
}

/** How a registered Iceberg table is opened: kept beside the pointer, one document per table. */
interface Registration {
  name: string;
  reroot: boolean;
}

const CACHED_TABLES = 64;
const CACHED_SNAPSHOTS = 16;
const CACHED_FILTERED = 64;

/** An Iceberg table for the planner: its head now, its files once the query's filter is known. */
export interface DeferredTable {
  head: TableSnapshot;
  plan(filter: ScanPredicate | undefined): Promise<TableSnapshot>;
}

function remember<K, V>(map: Map<K, V>, key: K, value: V, limit: number): V {
  map.delete(key);
  map.set(key, value);
  if (map.size > limit) map.delete(map.keys().next().value as K);
  return value;
}

/** Each warehouse catalog by its pointer store (see warehouseCatalogOf). */
const byPointers = new WeakMap<PointerStore, WarehouseCatalog>();

/**
 * The warehouse catalog behind `catalog`: itself, or the one whose pointer store a wrapper
 * passes through (withQueryLogTable adds puffindb.query_log and keeps `pointers`), so views
 * are found under the wrappers queries run with.
 */
export function warehouseCatalogOf(catalog: Catalog): WarehouseCatalog | undefined {
  if (catalog instanceof WarehouseCatalog) return catalog;
  return catalog.pointers ? byPointers.get(catalog.pointers) : undefined;
}

export class WarehouseCatalog implements Catalog {
  private readonly tables = new Map<string, IcebergTable>();
  private readonly snapshots = new Map<string, TableSnapshot>();
  /** Snapshots planned for a query's filter (deferredTable), by metadata location and filter. */
  private readonly filtered = new Map<string, TableSnapshot>();

  private constructor(
    readonly parquet: ParquetCatalog,
    readonly pointers: PointerStore,
    private readonly registrationsDir: string,
    private readonly io: FileIO,
    private readonly cache: ManifestCache,
    /** Registered Delta Lake tables (read only; runtime/catalog/delta/). */
    readonly delta: DeltaRegistry,
    /** Registered Hudi tables (copy-on-write, read only; runtime/catalog/hudi/). */
    readonly hudi: HudiRegistry,
    /** Views: one definition (JSON) per name, swapped like a table's pointer (runtime/sql/views.ts). */
    readonly viewStore: PointerStore,
    /** External catalogs, whose tables are named `CATALOG.namespace.table` (runtime/catalog/external/). */
    readonly external?: ExternalCatalogs,
  ) {
    byPointers.set(pointers, this);
  }

  /**
   * Snapshots named for one statement only (a materialized view's refresh reads a source
   * table restricted to the files appended since it last ran): found by getTable, never listed.
   */
  private readonly pinned = new Map<string, TableSnapshot>();

  /** Make `name` resolve to `snapshot` until unpinSnapshot(name). */
  pinSnapshot(name: string, snapshot: TableSnapshot): void {
    this.pinned.set(pointerName(name), { ...snapshot, name: pointerName(name) });
  }

  unpinSnapshot(name: string): void {
    this.pinned.delete(pointerName(name));
  }

  /** Every view, sorted by name. */
  async listViews(): Promise<ViewDefinition[]> {
    const out: ViewDefinition[] = [];
    for (const p of await this.viewStore.list()) out.push(JSON.parse(p.metadataLocation) as ViewDefinition);
    return out;
  }

  async getView(name: string): Promise<ViewDefinition | undefined> {
    let key: string;
    try {
      key = pointerName(name);
    } catch {
      return undefined;
    }
    const text = await this.viewStore.get(key);
    return text === undefined ? undefined : (JSON.parse(text) as ViewDefinition);
  }

  /**
   * Store a view. A table of the same name is a conflict; so is an existing view unless
   * `replace` (then the definition is swapped for the one read, never for a newer one).
   */
  async putView(view: ViewDefinition, replace: boolean): Promise<void> {
    const key = pointerName(view.name);
    if ((await this.listTables()).includes(key)) throw new PuffinError('conflict', `'${view.name}' is a table; a view may not have a table's name`);
    const current = await this.viewStore.get(key);
    if (current !== undefined && !replace) throw new PuffinError('conflict', `view '${view.name}' already exists (CREATE OR REPLACE VIEW replaces it)`);
    if (!(await this.viewStore.compareAndSwap(key, current, JSON.stringify({ ...view, name: key })))) {
      throw new PuffinError('conflict', `view '${view.name}' changed while being created; try again`);
    }
  }

  /** Forget a view; false when there is none. */
  async dropView(name: string): Promise<boolean> {
    const key = pointerName(name);
    const current = await this.viewStore.get(key);
    if (current === undefined) return false;
    if (!(await this.viewStore.remove(key, current))) throw new PuffinError('conflict', `view '${name}' changed while being dropped; try again`);
    return true;
  }

  /** Opens (creating if needed) the catalog kept in `dir`, e.g. <PUFFINDB_HOME>/catalog. */
  /** Release the pointer store's connections (a Redis one keeps the process alive). */
  async close(): Promise<void> {
    await this.pointers.close?.();
    await this.viewStore.close?.();
    await this.external?.close();
  }

  static async open(dir: string, engine: Engine, options: WarehouseCatalogOptions = {}): Promise<WarehouseCatalog> {
    const root = resolve(dir);
    const parquet = await ParquetCatalog.open(root, engine);
    const registrationsDir = join(root, 'iceberg-registrations');
    await mkdir(registrationsDir, { recursive: true });
    const io = options.io ?? uriFileIO(options.storeOptions);
    return new WarehouseCatalog(
      parquet,
      options.pointers ?? new FilePointerStore(join(root, 'iceberg')),
      registrationsDir,
      io,
      options.cache ?? sharedManifestCache,
      await DeltaRegistry.open(join(root, 'delta-registrations'), io, engine),
      await HudiRegistry.open(join(root, 'hudi-registrations'), io),
      options.views ?? new FilePointerStore(join(root, 'views')),
      options.external,
    );
  }

  async listTables(): Promise<string[]> {
    // An IVF index's tables are its storage, not the user's tables: readable by name (explain
    // names them), not listed (SHOW TABLES, information_schema, GET /v1/tables, pgwire).
    const iceberg = (await this.pointers.list()).map((p) => p.name).filter((name) => !name.startsWith(INDEX_TABLE_PREFIX));
    return [...new Set([...(await this.parquet.listTables()), ...iceberg, ...(await this.delta.list()), ...(await this.hudi.list())])].sort();
  }

  async getTable(name: string): Promise<TableSnapshot | undefined> {
    const pinned = this.pinned.size ? this.pinned.get(name.toLowerCase()) : undefined;
    if (pinned) return pinned;
    // CATALOG.namespace.table of a registered external catalog is that catalog's.
    const external = this.external ? await this.external.getTable(name) : null;
    if (external !== null) return external;
    const table = await this.openIceberg(name);
    if (!table) {
      const delta = await this.openDelta(name);
      if (delta) return this.delta.snapshot(delta.name, delta.location);
      const hudi = await this.openHudi(name);
      if (hudi) return this.hudi.snapshot(hudi.name, hudi.location);
      return this.parquet.getTable(name);
    }
    return this.snapshotOf(table.name, table.table, {});
  }

  async getTableAt(name: string, version: TableVersion): Promise<TableSnapshot | undefined> {
    const external = this.external ? await this.external.getTable(name, version) : null;
    if (external !== null) {
      if (external && version.snapshotId === undefined && version.timestampMs === undefined) throw new PuffinError('bad_request', 'time travel needs a snapshot id or a timestamp');
      return external;
    }
    const table = await this.openIceberg(name);
    if (!table) {
      const delta = await this.openDelta(name);
      if (delta) {
        if (version.snapshotId === undefined && version.timestampMs === undefined) throw new PuffinError('bad_request', 'time travel needs a version or a timestamp');
        return this.delta.snapshot(delta.name, delta.location, version);
      }
      const hudi = await this.openHudi(name);
      if (hudi) {
        if (version.snapshotId === undefined && version.timestampMs === undefined) throw new PuffinError('bad_request', 'time travel needs an instant or a timestamp');
        return this.hudi.snapshot(hudi.name, hudi.location, version);
      }
      const files = await this.parquet.getTable(name);
      if (files) {
        throw new PuffinError('unsupported', `table ${name} is a set of ${files.kind === 'parquet' ? 'Parquet' : files.kind.toUpperCase()} files, which keeps no history; time travel (AT ...) needs an Iceberg, Delta or Hudi table`);
      }
      return undefined;
    }
    if (version.snapshotId === undefined && version.timestampMs === undefined) throw new PuffinError('bad_request', 'time travel needs a snapshot id or a timestamp');
    return this.snapshotOf(table.name, table.table, version);
  }

  async summaries(): Promise<TableSummary[]> {
    const out = await this.parquet.summaries();
    for (const { name } of await this.pointers.list()) {
      const t = await this.getTable(name);
      if (!t) continue; // dropped between listing and reading
      out.push(tableSummary(t));
    }
    for (const name of [...(await this.delta.list()), ...(await this.hudi.list())]) {
      const t = await this.getTable(name);
      if (t) out.push(tableSummary(t));
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Registers files (Parquet, CSV, TSV, JSON, NDJSON) as a table (see ParquetCatalog.addTable); refused over an Iceberg table. */
  async addTable(name: string, pattern: string, options: AddTableOptions = {}): Promise<TableSnapshot> {
    await this.refuseExternalName(name);
    if (await this.pointers.get(pointerName(name))) {
      throw new PuffinError('conflict', `table '${name}' is an Iceberg table; drop it first to bind the name to Parquet files`);
    }
    if (await this.openDelta(name)) throw new PuffinError('conflict', `table '${name}' is a Delta table; drop it first to bind the name to Parquet files`);
    if (await this.openHudi(name)) throw new PuffinError('conflict', `table '${name}' is a Hudi table; drop it first to bind the name to Parquet files`);
    return this.parquet.addTable(name, pattern, options);
  }

  /** Forgets a table of either kind; its files are left alone. */
  async dropTable(name: string): Promise<void> {
    const key = pointerName(name);
    const location = await this.pointers.get(key);
    if (location === undefined) {
      if (await this.delta.drop(key)) return;
      if (await this.hudi.drop(key)) return;
      return this.parquet.dropTable(name);
    }
    if (!(await this.pointers.remove(key, location))) {
      throw new PuffinError('conflict', `table '${name}' changed while being dropped; try again`);
    }
    await rm(this.registrationPath(key), { force: true });
  }

  /**
   * Adopts an existing Iceberg table: `location` is its directory (the current metadata file
   * is found from version-hint.text or the highest-numbered *.metadata.json) or one metadata
   * file. The table is opened and its current snapshot planned before anything is recorded,
   * so a missing or corrupt metadata file, an unsupported format version or a manifest that
   * does not decode is refused with the file's name and leaves the catalog unchanged.
   */
  async registerIceberg(name: string, location: string, options: RegisterOptions = {}): Promise<TableSnapshot> {
    await this.refuseExternalName(name);
    const key = pointerName(name);
    if (await this.parquet.getTable(key)) throw new PuffinError('conflict', `table '${name}' already exists (a Parquet table); drop it first`);
    if ((await this.pointers.get(key)) !== undefined) throw new PuffinError('conflict', `table '${name}' already exists (an Iceberg table); drop it first`);
    if (typeof location !== 'string' || location === '') throw new PuffinError('bad_request', 'register needs the path of an Iceberg table directory or metadata file');
    if ((await this.delta.location(key)) !== undefined) throw new PuffinError('conflict', `table '${name}' already exists (a Delta table); drop it first`);
    if ((await this.hudi.location(key)) !== undefined) throw new PuffinError('conflict', `table '${name}' already exists (a Hudi table); drop it first`);
    let reroot = options.reroot === true;
    let table = await openIcebergTable(location, { io: this.io, reroot });
    let snapshot = await this.snapshotOf(key, table, {});
    if (reroot && options.absoluteCopy) {
      let copy: string | undefined;
      try {
        copy = await writeAbsoluteCopy(table, options.absoluteCopy.io, options.absoluteCopy.location);
      } catch (err) {
        if (!(err instanceof PuffinError && err.code === 'unsupported')) throw err;
      }
      if (copy !== undefined) {
        table = await openIcebergTable(copy, { io: this.io });
        snapshot = await this.snapshotOf(key, table, {});
        reroot = false;
      }
    }
    // The registration is written first: a reader that finds the pointer must find how to open it.
    const previous = await this.readRegistration(key);
    await this.writeRegistration({ name: key, reroot });
    if (!(await this.pointers.compareAndSwap(key, undefined, table.metadataLocation))) {
      if (previous) await this.writeRegistration(previous);
      else await rm(this.registrationPath(key), { force: true });
      throw new PuffinError('conflict', `table '${name}' was created by someone else meanwhile`);
    }
    return snapshot;
  }

  /** A local table may not take the name CATALOG.namespace.table of a registered external catalog: SQL would find that catalog's. */
  private async refuseExternalName(name: string): Promise<void> {
    if (typeof name === 'string' && this.external && (await this.external.resolve(name))) {
      throw new PuffinError('conflict', `'${name}' names a table of external catalog '${name.split('.')[0].toLowerCase()}'; a local table cannot take that name`);
    }
  }

  /** Whether `location` is a Delta table (has a `_delta_log/` directory with files). */
  async isDelta(location: string): Promise<boolean> {
    return isDeltaLocation(this.io, location);
  }

  /**
   * Adopts an existing Delta Lake table (its root directory, local or s3://) for reads. Its
   * newest version is read before anything is recorded, so a protocol needing a reader
   * feature this reader lacks, a broken log or an unreadable schema is refused.
   */
  async registerDelta(name: string, location: string): Promise<TableSnapshot> {
    await this.refuseExternalName(name);
    const key = pointerName(name);
    if (await this.parquet.getTable(key)) throw new PuffinError('conflict', `table '${name}' already exists (a Parquet table); drop it first`);
    if ((await this.pointers.get(key)) !== undefined) throw new PuffinError('conflict', `table '${name}' already exists (an Iceberg table); drop it first`);
    if ((await this.hudi.location(key)) !== undefined) throw new PuffinError('conflict', `table '${name}' already exists (a Hudi table); drop it first`);
    return this.delta.register(key, location);
  }

  /** Whether `location` is a Hudi table (has `.hoodie/hoodie.properties`). */
  async isHudi(location: string): Promise<boolean> {
    return isHudiLocation(this.io, location);
  }

  /**
   * Adopts an existing Hudi table (its root directory, local or s3://) for reads. Its newest
   * snapshot is read before anything is recorded, so a merge-on-read table, an unsupported
   * table version or a broken timeline is refused.
   */
  async registerHudi(name: string, location: string): Promise<TableSnapshot> {
    await this.refuseExternalName(name);
    const key = pointerName(name);
    if (await this.parquet.getTable(key)) throw new PuffinError('conflict', `table '${name}' already exists (a Parquet table); drop it first`);
    if ((await this.pointers.get(key)) !== undefined) throw new PuffinError('conflict', `table '${name}' already exists (an Iceberg table); drop it first`);
    if ((await this.delta.location(key)) !== undefined) throw new PuffinError('conflict', `table '${name}' already exists (a Delta table); drop it first`);
    return this.hudi.register(key, location);
  }

  /** The registered Hudi table named `name`, or undefined when it is not one. */
  async openHudi(name: string): Promise<{ name: string; location: string } | undefined> {
    let key: string;
    try {
      key = pointerName(name);
    } catch {
      return undefined;
    }
    const location = await this.hudi.location(key);
    return location === undefined ? undefined : { name: key, location };
  }

  /** The registered Delta table named `name`, or undefined when it is not one. */
  async openDelta(name: string): Promise<{ name: string; location: string } | undefined> {
    let key: string;
    try {
      key = pointerName(name);
    } catch {
      return undefined;
    }
    const location = await this.delta.location(key);
    return location === undefined ? undefined : { name: key, location };
  }

  /** Plans a scan of an Iceberg table with a predicate (the `table scan` command). */
  async scanIceberg(name: string, request: IcebergScanRequest = {}): Promise<IcebergScan> {
    const found = await this.openIceberg(name);
    if (!found) {
      const files = await this.parquet.getTable(name);
      if (files) throw new PuffinError('unsupported', `table ${name} is a set of ${files.kind === 'parquet' ? 'Parquet' : files.kind.toUpperCase()} files, not an Iceberg table`);
      if (await this.openDelta(name)) throw new PuffinError('unsupported', `table ${name} is a Delta table, not an Iceberg table`);
      if (await this.openHudi(name)) throw new PuffinError('unsupported', `table ${name} is a Hudi table, not an Iceberg table`);
      throw new PuffinError('unknown_table', `unknown table '${name}'`);
    }
    return planTableScan(found.table, { cache: this.cache, filter: request.filter, snapshotId: request.snapshotId, asOfTimestampMs: request.asOfTimestampMs });
  }

  /** The Iceberg table named `name` as of its current pointer, or undefined when it is not one. */
  async openIceberg(name: string): Promise<{ name: string; table: IcebergTable } | undefined> {
    let key: string;
    try {
      key = pointerName(name);
    } catch {
      return undefined; // not a valid name: no such table
    }
    const location = await this.pointers.get(key);
    if (location === undefined) return undefined;
    const registration = await this.readRegistration(key);
    const reroot = registration?.reroot === true;
    const cacheKey = `${reroot}|${location}`;
    let table = this.tables.get(cacheKey);
    if (!table) table = remember(this.tables, cacheKey, await openIcebergTable(location, { io: this.io, reroot }), CACHED_TABLES);
    return { name: key, table };
  }

  /**
   * How the planner reads an Iceberg table: `head` is the current snapshot as getTable gives
   * it but without files (columns, snapshot id, field mapping: read from the metadata file
   * alone), and `plan(filter)` lists the files of that same snapshot that may hold rows
   * matching `filter` (every file without one). Planning with the query's filter skips whole
   * manifests by the manifest list's partition summaries, then files by partition values
   * and column bounds, as DELETE and UPDATE do. Undefined when `name` is not a local Iceberg
   * table (or is pinned for a statement): getTable answers for it.
   */
  async deferredTable(name: string): Promise<DeferredTable | undefined> {
    if (this.pinned.size && this.pinned.has(name.toLowerCase())) return undefined;
    if (this.external && (await this.external.resolve(name))) return undefined;
    const found = await this.openIceberg(name);
    if (!found) return undefined;
    const head = toTableSnapshot(found.name, await planTableScan(found.table, { cache: this.cache, headOnly: true }));
    return {
      head,
      plan: (filter) => (filter ? this.filteredSnapshotOf(found.name, found.table, filter) : this.snapshotOf(found.name, found.table, {})),
    };
  }

  private async filteredSnapshotOf(name: string, table: IcebergTable, filter: ScanPredicate): Promise<TableSnapshot> {
    const key = `${name}|${table.reroot ? 'r' : ''}|${table.metadataLocation}|${JSON.stringify(filter)}`;
    const cached = this.filtered.get(key);
    if (cached) return remember(this.filtered, key, cached, CACHED_FILTERED);
    const scan = await planTableScan(table, { cache: this.cache, filter });
    return remember(this.filtered, key, toTableSnapshot(name, scan, filter), CACHED_FILTERED);
  }

  private async snapshotOf(name: string, table: IcebergTable, version: TableVersion): Promise<TableSnapshot> {
    const key = `${name}|${table.reroot ? 'r' : ''}|${table.metadataLocation}|${version.snapshotId ?? ''}|${version.timestampMs ?? ''}`;
    const cached = this.snapshots.get(key);
    if (cached) return cached;
    const scan = await planTableScan(table, { cache: this.cache, snapshotId: version.snapshotId, asOfTimestampMs: version.timestampMs });
    return remember(this.snapshots, key, toTableSnapshot(name, scan), CACHED_SNAPSHOTS);
  }

  private registrationPath(key: string): string {
    return join(this.registrationsDir, `${key}.json`);
  }

  private async readRegistration(key: string): Promise<Registration | undefined> {
    try {
      return JSON.parse(await readFile(this.registrationPath(key), 'utf8')) as Registration;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new PuffinError('internal', `registration ${this.registrationPath(key)} cannot be read: ${(err as Error).message}`);
    }
  }

  private async writeRegistration(reg: Registration): Promise<void> {
    const path = this.registrationPath(reg.name);
    const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await writeFile(temp, `${JSON.stringify(reg)}\n`, 'utf8');
      await rename(temp, path);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
  }
}

/** The planner's view of a planned Iceberg scan (`filter`: the predicate it was planned with). */
export function toTableSnapshot(name: string, scan: IcebergScan, filter?: ScanPredicate): TableSnapshot {
  const c = scan.counts;
  return {
    name,
    kind: 'iceberg',
    columns: scan.schema.map((col) => ({ ...col })),
    files: scan.dataFiles.map(toDataFile),
    // A table without snapshots has no files; its metadata file still tells versions apart.
    snapshotId: scan.snapshotId ?? `none:${scan.metadataLocation}`,
    iceberg: { fields: scan.fields.map((f) => ({ ...f })) },
    planned: { manifestsTotal: c.manifestsTotal, manifestsRead: c.manifestsTotal - c.manifestsSkipped, filesTotal: c.filesTotal, filesKept: c.filesKept, filter: filter ? JSON.stringify(filter) : null },
  };
}

function toDataFile(d: IcebergDataFile): DataFile {
  return {
    uri: d.uri,
    sizeBytes: d.sizeBytes,
    rowCount: d.rowCount,
    stats: withPartitionStats(d),
    iceberg: {
      path: d.path,
      format: d.format,
      sequenceNumber: d.sequenceNumber,
      ...(d.firstRowId !== undefined ? { firstRowId: d.firstRowId } : {}),
      partition: { ...d.partition },
      readSchema: d.readSchema.map((f) => ({ ...f })),
      deletes: d.deletes.map((x) => ({ ...x })),
    },
  };
}

/**
 * Identity-partition columns are often not stored in the files, so the manifest has no bounds
 * for them; their value is the file's partition constant, which is as good as min = max.
 */
function withPartitionStats(d: IcebergDataFile): Record<string, ColumnStats> {
  const stats: Record<string, ColumnStats> = { ...d.stats };
  for (const f of d.readSchema) {
    if (f.defaultValue !== null && stats[f.name] === undefined) stats[f.name] = { min: f.defaultValue, max: f.defaultValue, nulls: 0 };
  }
  return stats;
}
