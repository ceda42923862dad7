// The registered external catalogs behind the warehouse catalog's names `CATALOG.namespace.table`
// (runtime/catalog/warehouse-catalog.ts asks `resolve` for every name of three parts or more).
//
// Every type is a PointerStore (names 'namespace.table') plus the object store the tables'
// files are in: for the REST types a RestPointerStore over the catalog's API
// (rest-store.ts), for glue-catalog, dynamodb and postgres the store stores.ts opens. Reads
// are the built-in Iceberg reads (open the metadata file, plan the snapshot with the
// manifests' statistics, so scans are pruned and split like local tables); writes go through
// the built-in commit path with this store (see writeTarget), so a REST commit is the
// catalog's commit endpoint with requirements and a pointer-store commit is its
// compare-and-swap.

import { PuffinError } from '../../errors.ts';
import type { FileIO } from '../iceberg/io.ts';
import { sharedManifestCache, type ManifestCache } from '../iceberg/manifest-cache.ts';
import type { PointerStore, TablePointer } from '../iceberg/pointer-store.ts';
import { planTableScan } from '../iceberg/scan.ts';
import { openIcebergTable, type IcebergTable } from '../iceberg/table.ts';
import type { TableIO } from '../iceberg/writer-io.ts';
import type { TableSnapshot, TableVersion } from '../types.ts';
import { toTableSnapshot } from '../warehouse-catalog.ts';
import { CATALOG_NAME, CatalogRegistry, POINTER_STORE_TYPE, REST_TYPES, type CatalogRecord } from './registry.ts';
import { RestCatalogClient, type RestClientOptions } from './rest-client.ts';
import { RestPointerStore } from './rest-store.ts';

/** Opens the PointerStore of a glue-catalog, dynamodb or postgres catalog (default: stores.ts's openExternalPointerStore). */
export type OpenPointerStore = (type: 'glue' | 'dynamodb' | 'postgres', options: Record<string, string>, record: CatalogRecord) => Promise<PointerStore>;

export interface ExternalCatalogsOptions {
  /** Reads metadata and manifests (the warehouse catalog's FileIO). */
  io: FileIO;
  /** Writes and deletes metadata files (the REST store deletes the ones a catalog did not take). */
  tableIO?: TableIO;
  cache?: ManifestCache;
  openPointerStore?: OpenPointerStore;
  rest?: RestClientOptions;
  /** The local tables' names (a catalog may not take a name local tables start with). */
  localTables?: () => Promise<string[]>;
}

/** Where a write to an external table commits: the store (taking full names) and where a new table's files go. */
export interface ExternalWriteTarget {
  catalog: string;
  store: PointerStore;
  /** `${warehouseUri}/${full name}` is a new table's location; undefined: CREATE TABLE is refused there. */
  warehouseUri?: string;
}

/** A PointerStore taking full names `catalog.ns.table`, passing 'ns.table' to the catalog's store. */
class PrefixedStore implements PointerStore {
  constructor(
    private readonly prefix: string,
    private readonly inner: PointerStore,
  ) {}

  private strip(name: string): string {
    const lower = name.toLowerCase();
    if (!lower.startsWith(`${this.prefix}.`)) throw new PuffinError('bad_request', `table '${name}' is not in catalog '${this.prefix}'; a statement may write one catalog's tables only`);
    return lower.slice(this.prefix.length + 1);
  }

  get(name: string): Promise<string | undefined> {
    return this.inner.get(this.strip(name));
  }

  async list(): Promise<TablePointer[]> {
    return (await this.inner.list()).map((p) => ({ name: `${this.prefix}.${p.name}`, metadataLocation: p.metadataLocation }));
  }

  compareAndSwap(name: string, expected: string | undefined, next: string): Promise<boolean> {
    return this.inner.compareAndSwap(this.strip(name), expected, next);
  }

  remove(name: string, expected: string): Promise<boolean> {
    return this.inner.remove(this.strip(name), expected);
  }
}

/** One opened catalog. */
export class ExternalCatalog {
  private readonly tables = new Map<string, IcebergTable>();
  private readonly snapshots = new Map<string, TableSnapshot>();

  constructor(
    readonly record: CatalogRecord,
    /** Names 'namespace.table'. */
    readonly store: PointerStore,
    private readonly io: FileIO,
    private readonly cache: ManifestCache,
    /** The REST client, for the REST types. */
    readonly client?: RestCatalogClient,
  ) {}

  get name(): string {
    return this.record.name;
  }

  /** 'namespace.table' names, sorted. */
  async listTables(): Promise<string[]> {
    return (await this.store.list()).map((p) => p.name);
  }

  private async open(table: string): Promise<IcebergTable | undefined> {
    const location = await this.store.get(table);
    if (location === undefined) return undefined;
    let t = this.tables.get(location);
    if (!t) {
      t = await openIcebergTable(location, { io: this.io });
      this.tables.set(location, t);
      if (this.tables.size > 64) this.tables.delete(this.tables.keys().next().value!);
    }
    return t;
  }

  /** The table 'namespace.table' as the planner sees it, named `fullName`. */
  async getTable(table: string, fullName: string, version: TableVersion = {}): Promise<TableSnapshot | undefined> {
    const t = await this.open(table);
    if (!t) return undefined;
    const key = `${t.metadataLocation}|${version.snapshotId ?? ''}|${version.timestampMs ?? ''}`;
    const cached = this.snapshots.get(key);
    if (cached) return cached;
    const scan = await planTableScan(t, { cache: this.cache, snapshotId: version.snapshotId, asOfTimestampMs: version.timestampMs });
    const snapshot = toTableSnapshot(fullName, scan);
    this.snapshots.set(key, snapshot);
    if (this.snapshots.size > 16) this.snapshots.delete(this.snapshots.keys().next().value!);
    return snapshot;
  }

  /** Where a new table's files go: the record's location, else a REST catalog's configured warehouse when it is a URI. */
  async warehouseUri(): Promise<string | undefined> {
    if (this.record.location) return this.record.location;
    if (!this.client) return undefined;
    const config = await this.client.config();
    const w = config.overrides.warehouse ?? config.defaults.warehouse;
    return w && /^(s3|file):\/\//.test(w) ? w.replace(/\/+$/, '') : undefined;
  }

  async close(): Promise<void> {
    await this.store.close?.();
  }
}

/** The registered catalogs, opened on first use and reopened when their record changes. */
export class ExternalCatalogs {
  readonly registry: CatalogRegistry;
  private readonly opened = new Map<string, { text: string; catalog: Promise<ExternalCatalog> }>();

  constructor(
    registryStore: PointerStore,
    private readonly options: ExternalCatalogsOptions,
  ) {
    this.registry = new CatalogRegistry(registryStore);
  }

  /** Refuses a catalog name local tables already use as their first part (it would shadow them). */
  async checkNameFree(name: string): Promise<void> {
    const local = (await this.options.localTables?.()) ?? [];
    const clash = local.find((t) => t.toLowerCase().startsWith(`${name}.`));
    if (clash) throw new PuffinError('conflict', `catalog name '${name}' would shadow local table ${clash}; choose another name`);
  }

  /** The opened catalog named `name`, or undefined when none is registered. */
  async catalog(name: string): Promise<ExternalCatalog | undefined> {
    if (!CATALOG_NAME.test(name)) return undefined;
    const text = await this.registry.store.get(name);
    if (text === undefined) {
      this.forget(name);
      return undefined;
    }
    const seen = this.opened.get(name);
    if (seen && seen.text === text) return seen.catalog;
    if (seen) this.forget(name);
    const catalog = this.open(JSON.parse(text) as CatalogRecord);
    this.opened.set(name, { text, catalog });
    catalog.catch(() => this.opened.delete(name));
    return catalog;
  }

  private forget(name: string): void {
    const seen = this.opened.get(name);
    if (!seen) return;
    this.opened.delete(name);
    seen.catalog.then((c) => c.close()).catch(() => undefined);
  }

  private async open(record: CatalogRecord): Promise<ExternalCatalog> {
    const cache = this.options.cache ?? sharedManifestCache;
    if (REST_TYPES.includes(record.type)) {
      const client = new RestCatalogClient(record, this.options.rest);
      const tableIO = this.options.tableIO;
      const store = new RestPointerStore(client, this.options.io, tableIO ? { deleteFile: (uri) => tableIO.delete(uri) } : {});
      return new ExternalCatalog(record, store, this.options.io, cache, client);
    }
    const type = POINTER_STORE_TYPE[record.type as keyof typeof POINTER_STORE_TYPE];
    // glue-catalog and dynamodb take the record's region as their `region` option (postgres has none).
    const options = { ...(record.options ?? {}), ...(record.region && type !== 'postgres' ? { region: record.region } : {}) };
    const openStore: OpenPointerStore = this.options.openPointerStore ?? (async (t, o) => (await import('./stores.ts')).openExternalPointerStore(t, o));
    return new ExternalCatalog(record, await openStore(type, options, record), this.options.io, cache);
  }

  /** For a name of three parts or more whose first part is a registered catalog: that catalog and 'namespace.table'. */
  async resolve(name: string): Promise<{ catalog: ExternalCatalog; table: string } | undefined> {
    const lower = name.toLowerCase();
    const dot = lower.indexOf('.');
    if (dot <= 0 || lower.indexOf('.', dot + 1) < 0) return undefined;
    const catalog = await this.catalog(lower.slice(0, dot));
    return catalog ? { catalog, table: lower.slice(dot + 1) } : undefined;
  }

  async getTable(name: string, version?: TableVersion): Promise<TableSnapshot | undefined | null> {
    const found = await this.resolve(name);
    if (!found) return null;
    return found.catalog.getTable(found.table, name.toLowerCase(), version);
  }

  /** Where a write to `name` commits, or undefined when it is not an external table's name. */
  async writeTarget(name: string): Promise<ExternalWriteTarget | undefined> {
    const found = await this.resolve(name);
    if (!found) return undefined;
    const { catalog } = found;
    const base = await catalog.warehouseUri();
    const store = new PrefixedStore(catalog.name, catalog.store);
    // A new table's location is `${warehouseUri}/${full name}`: under the catalog's location.
    return { catalog: catalog.name, store, ...(base ? { warehouseUri: base } : {}) };
  }

  async close(): Promise<void> {
    const all = [...this.opened.values()];
    this.opened.clear();
    await Promise.all(all.map((o) => o.catalog.then((c) => c.close()).catch(() => undefined)));
    // The registry's own store (a Redis connection when deployed): left open, it kept the process alive.
    await this.registry.store.close?.();
  }
}
