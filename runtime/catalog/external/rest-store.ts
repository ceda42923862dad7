// An Iceberg REST catalog as a PointerStore, so the built-in commit path (runtime/catalog/
// iceberg/commit.ts: write new files, then one compare-and-swap) commits through the
// catalog's own commit endpoint. Names are 'namespace.table' (the last dot separates the
// table; earlier dots separate nested namespaces).
//
// compareAndSwap(name, expected, next): the commit path has written `next`, a complete
// metadata file made from `expected`. A REST catalog does not take a metadata file; it takes
// the change: so the two are compared and POSTed as updates (add-schema, set-current-schema,
// add-spec, set-default-spec, add-sort-order, set-default-sort-order, add-snapshot,
// set-snapshot-ref, remove-snapshot-ref, remove-snapshots, set-properties,
// remove-properties, set-location, upgrade-format-version) under requirements that make it a
// compare-and-swap of what matters: assert-table-uuid, assert-ref-snapshot-id for every
// branch it moves (the table's `main` always), assert-current-schema-id,
// assert-default-spec-id, and assert-last-assigned-field-id / -partition-id when it adds a
// schema or spec. A 409 (CommitFailedException) is a lost race: false, and the commit path
// re-reads the table and tries again on the new base; the catalog writes its own metadata
// file, and `next` is deleted. Create (expected undefined) registers `next` where the catalog
// has the register endpoint, else creates the table from its schema, spec, properties and
// location. remove() drops the table with purgeRequested as the catalog type requires
// (S3 Tables: true, it refuses false; Glue and others: false, files stay).

import { PuffinError } from '../../errors.ts';
import type { FileIO } from '../iceberg/io.ts';
import { decodeTableMetadata, type TableMetadata } from '../iceberg/metadata.ts';
import type { PointerStore, TablePointer } from '../iceberg/pointer-store.ts';
import { metadataToJsonObject, stringifyWithBigInts } from '../iceberg/writer-metadata.ts';
import { CatalogError, type Json, type RestCatalogClient } from './rest-client.ts';

export interface RestStoreOptions {
  /** Deletes a metadata file the catalog did not take (default: leave it). */
  deleteFile?: (uri: string) => Promise<void>;
  /** Namespaces listed below the top level, at most this deep (default 3). */
  listDepth?: number;
}

function split(name: string): { ns: string[]; table: string } {
  const parts = name.toLowerCase().split('.');
  if (parts.length < 2 || parts.some((p) => !/^[a-z_][a-z0-9_]*$/.test(p))) {
    throw new PuffinError('bad_request', `table name '${name.slice(0, 80)}' in an external catalog must be namespace.table (letters, digits, underscores)`);
  }
  return { ns: parts.slice(0, -1), table: parts[parts.length - 1] };
}

const same = (a: unknown, b: unknown): boolean => a === b || (a !== undefined && b !== undefined && stringifyWithBigInts(a) === stringifyWithBigInts(b));

/** The requirements and updates that turn `base` into `next` on a REST catalog. */
export function restChange(base: TableMetadata, next: TableMetadata): { requirements: Json[]; updates: Json[] } {
  const b = metadataToJsonObject(base) as Json;
  const n = metadataToJsonObject(next) as Json;
  const requirements: Json[] = [];
  const updates: Json[] = [];
  if (base.tableUuid) requirements.push({ type: 'assert-table-uuid', uuid: base.tableUuid });
  requirements.push({ type: 'assert-current-schema-id', 'current-schema-id': base.currentSchemaId });
  requirements.push({ type: 'assert-default-spec-id', 'default-spec-id': base.defaultSpecId });

  if (next.formatVersion !== base.formatVersion) updates.push({ action: 'upgrade-format-version', 'format-version': next.formatVersion });
  const byId = <T>(list: unknown, key: string): Map<string, T> => new Map(((list as Json[]) ?? []).map((x) => [stringifyWithBigInts(x[key]), x as T]));

  const baseSchemas = byId<Json>(b.schemas, 'schema-id');
  let addsSchema = false;
  for (const s of (n.schemas as Json[]) ?? []) {
    if (baseSchemas.has(stringifyWithBigInts(s['schema-id']))) continue;
    updates.push({ action: 'add-schema', schema: s, 'last-column-id': next.lastColumnId });
    addsSchema = true;
  }
  if (addsSchema) requirements.push({ type: 'assert-last-assigned-field-id', 'last-assigned-field-id': base.lastColumnId });
  if (next.currentSchemaId !== base.currentSchemaId) updates.push({ action: 'set-current-schema', 'schema-id': next.currentSchemaId });

  const baseSpecs = byId<Json>(b['partition-specs'], 'spec-id');
  let addsSpec = false;
  for (const s of (n['partition-specs'] as Json[]) ?? []) {
    if (baseSpecs.has(stringifyWithBigInts(s['spec-id']))) continue;
    updates.push({ action: 'add-spec', spec: s });
    addsSpec = true;
  }
  if (addsSpec) requirements.push({ type: 'assert-last-assigned-partition-id', 'last-assigned-partition-id': b['last-partition-id'] });
  if (next.defaultSpecId !== base.defaultSpecId) updates.push({ action: 'set-default-spec', 'spec-id': next.defaultSpecId });

  const baseOrders = byId<Json>(b['sort-orders'], 'order-id');
  for (const o of (n['sort-orders'] as Json[]) ?? []) if (!baseOrders.has(stringifyWithBigInts(o['order-id']))) updates.push({ action: 'add-sort-order', 'sort-order': o });
  if (next.defaultSortOrderId !== base.defaultSortOrderId) updates.push({ action: 'set-default-sort-order', 'sort-order-id': next.defaultSortOrderId });

  const baseSnaps = byId<Json>(b.snapshots, 'snapshot-id');
  const nextSnaps = byId<Json>(n.snapshots, 'snapshot-id');
  for (const [id, s] of nextSnaps) if (!baseSnaps.has(id)) updates.push({ action: 'add-snapshot', snapshot: s });

  // Branches and tags: every ref moved or removed is asserted where the base had it; main always.
  const baseRefs = (b.refs as Record<string, Json>) ?? {};
  const nextRefs = (n.refs as Record<string, Json>) ?? {};
  const asserted = new Set<string>(['main']);
  for (const [ref, r] of Object.entries(nextRefs)) {
    if (same(baseRefs[ref], r)) continue;
    asserted.add(ref);
    updates.push({ action: 'set-snapshot-ref', 'ref-name': ref, ...r });
  }
  for (const ref of Object.keys(baseRefs)) {
    if (nextRefs[ref]) continue;
    asserted.add(ref);
    updates.push({ action: 'remove-snapshot-ref', 'ref-name': ref });
  }
  for (const ref of asserted) requirements.push({ type: 'assert-ref-snapshot-id', ref, 'snapshot-id': baseRefs[ref]?.['snapshot-id'] ?? null });

  const removed = [...baseSnaps.keys()].filter((id) => !nextSnaps.has(id));
  if (removed.length) updates.push({ action: 'remove-snapshots', 'snapshot-ids': removed.map((id) => baseSnaps.get(id)!['snapshot-id']) });

  const set: Record<string, string> = {};
  for (const [k, v] of Object.entries(next.properties)) if (base.properties[k] !== v) set[k] = v;
  if (Object.keys(set).length) updates.push({ action: 'set-properties', updates: set });
  const gone = Object.keys(base.properties).filter((k) => !(k in next.properties));
  if (gone.length) updates.push({ action: 'remove-properties', removals: gone });
  if (next.location !== base.location) updates.push({ action: 'set-location', location: next.location });
  return { requirements, updates };
}

export class RestPointerStore implements PointerStore {
  /** Decoded metadata files by location (they never change). */
  private readonly decoded = new Map<string, TableMetadata>();
  /** Tables made by the create endpoint: the metadata file the commit path wrote -> the catalog's (its own table uuid). */
  private readonly aliases = new Map<string, string>();

  constructor(
    readonly client: RestCatalogClient,
    private readonly io: FileIO,
    private readonly options: RestStoreOptions = {},
  ) {}

  private async metadata(location: string): Promise<TableMetadata> {
    let m = this.decoded.get(location);
    if (!m) {
      m = decodeTableMetadata(await this.io.read(location), location);
      this.decoded.set(location, m);
      if (this.decoded.size > 64) this.decoded.delete(this.decoded.keys().next().value!);
    }
    return m;
  }

  async get(name: string): Promise<string | undefined> {
    const { ns, table } = split(name);
    return (await this.client.loadTable(ns, table))?.metadataLocation;
  }

  async list(): Promise<TablePointer[]> {
    const out: TablePointer[] = [];
    const depth = this.options.listDepth ?? 3;
    const walk = async (parent: string[] | undefined, level: number): Promise<void> => {
      for (const ns of await this.client.listNamespaces(parent)) {
        for (const t of await this.client.listTables(ns)) {
          const name = [...t.namespace, t.name].join('.').toLowerCase();
          const loaded = await this.client.loadTable(t.namespace, t.name).catch(() => undefined);
          if (loaded) out.push({ name, metadataLocation: loaded.metadataLocation });
        }
        if (level < depth) await walk(ns, level + 1).catch((err) => {
          if (!(err instanceof CatalogError)) throw err; // a catalog without nested namespaces
        });
      }
    };
    await walk(undefined, 1);
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async compareAndSwap(name: string, expected: string | undefined, next: string): Promise<boolean> {
    const { ns, table } = split(name);
    const nextMeta = await this.metadata(next);
    if (expected === undefined) return this.create(ns, table, next, nextMeta);
    const base = await this.metadata(expected);
    const { requirements, updates } = restChange(base, nextMeta);
    const alias = this.aliases.get(expected);
    if (alias) {
      const created = await this.metadata(alias);
      for (const r of requirements) if (r.type === 'assert-table-uuid') r.uuid = created.tableUuid;
    }
    try {
      await this.client.commitTable(ns, table, requirements, updates, stringifyWithBigInts({ identifier: { namespace: ns, name: table }, requirements, updates }));
    } catch (err) {
      if (err instanceof CatalogError && err.status === 409) return false;
      // The table is gone: as a pointer store whose entry went away.
      if (err instanceof CatalogError && err.status === 404 && /NoSuchTable/.test(err.type)) return false;
      throw err;
    }
    // The catalog wrote its own metadata file from the updates; ours is nobody's.
    await this.options.deleteFile?.(next).catch(() => undefined);
    return true;
  }

  private async create(ns: string[], table: string, location: string, m: TableMetadata): Promise<boolean> {
    try {
      if (await this.client.registerTable(ns, table, location)) return true;
    } catch (err) {
      if (err instanceof CatalogError && err.status === 409) return false;
      throw err;
    }
    // No register endpoint (S3 Tables): create from the schema; only an empty table can be made so.
    if (m.snapshots.length) throw new PuffinError('unsupported', `catalog '${this.client.record.name}' has no register endpoint, so a table with snapshots cannot be created there (rename or register refused)`);
    const j = metadataToJsonObject(m) as Json;
    const schema = (j.schemas as Json[]).find((s) => s['schema-id'] === m.currentSchemaId);
    const spec = (j['partition-specs'] as Json[]).find((s) => s['spec-id'] === m.defaultSpecId);
    try {
      const created = await this.client.createTable(ns, JSON.parse(stringifyWithBigInts({ name: table, location: m.location, schema, 'partition-spec': spec, properties: m.properties, 'stage-create': false })) as Json);
      this.aliases.set(location, created.metadataLocation);
    } catch (err) {
      if (err instanceof CatalogError && err.status === 409) return false;
      throw err;
    }
    return true;
  }

  async remove(name: string, expected: string): Promise<boolean> {
    const { ns, table } = split(name);
    const current = await this.client.loadTable(ns, table);
    if (!current) return false;
    // A REST drop takes no condition: checked just before (a commit in between is dropped too).
    if (current.metadataLocation !== expected) return false;
    return this.client.dropTable(ns, table, this.client.record.type === 's3tables');
  }
}
