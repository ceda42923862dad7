// The Iceberg REST catalog's table commit: requirements (assertions on the base metadata)
// and updates (metadata changes) from a CommitTableRequest, applied to parsed table metadata
// (spec: open-api/rest-catalog-open-api.yaml, TableRequirement and TableUpdate).

import { PuffinError } from '../../errors.ts';
import { parsePartitionFieldsJson, type PartitionSpec, type Snapshot, type SortOrder, type TableMetadata } from '../../catalog/iceberg/metadata.ts';
import { parseTransform } from '../../catalog/iceberg/transforms.ts';
import { parseSchema, type IcebergSchema, type NestedField } from '../../catalog/iceberg/types.ts';

type Json = Record<string, unknown>;

/** A failed requirement: the REST spec's CommitFailedException (409). */
export class CommitFailed extends PuffinError {
  constructor(message: string) {
    super('conflict', message);
  }
}

// Request bodies are checked field by field: a wrong type is a 400 naming the field, never a
// TypeError (a 500) or a silent conversion (a string spread into a map of its characters).

export function isJsonObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function shownValue(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 64 ? `${text.slice(0, 64)}...` : text;
}

/** A string-to-string map field (properties, updates); undefined or null when absent. */
export function stringMap(v: unknown, what: string): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isJsonObject(v)) throw new PuffinError('bad_request', `${what} must be an object of strings, got ${shownValue(v)}`);
  for (const [k, x] of Object.entries(v)) if (typeof x !== 'string') throw new PuffinError('bad_request', `${what}: the value of ${JSON.stringify(k)} must be a string, got ${shownValue(x)}`);
  return { ...(v as Record<string, string>) };
}

/** A list-of-strings field (removals); undefined or null when absent. */
export function stringList(v: unknown, what: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw new PuffinError('bad_request', `${what} must be a list of strings, got ${shownValue(v)}`);
  for (const x of v) if (typeof x !== 'string') throw new PuffinError('bad_request', `${what} must be a list of strings, got ${shownValue(x)} in it`);
  return [...(v as string[])];
}

/** A list-of-objects field (requirements, updates); undefined or null when absent. */
export function objectList(v: unknown, what: string): Json[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw new PuffinError('bad_request', `${what} must be a list of objects, got ${shownValue(v)}`);
  for (const x of v) if (!isJsonObject(x)) throw new PuffinError('bad_request', `${what} must be a list of objects, got ${shownValue(x)} in it`);
  return v as Json[];
}

function stringOf(v: unknown, what: string): string {
  if (typeof v === 'string') return v;
  throw new PuffinError('bad_request', `${what} must be a string, got ${shownValue(v)}`);
}

function bigOf(v: unknown, what: string): bigint {
  if ((typeof v === 'number' && Number.isInteger(v)) || (typeof v === 'string' && /^-?\d+$/.test(v)) || typeof v === 'bigint') return BigInt(v);
  throw new PuffinError('bad_request', `${what} must be an integer, got ${JSON.stringify(v)}`);
}

function intOf(v: unknown, what: string): number {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  throw new PuffinError('bad_request', `${what} must be an integer, got ${JSON.stringify(v)}`);
}

function maxFieldId(fields: readonly NestedField[]): number {
  let max = 0;
  for (const f of fields) {
    max = Math.max(max, f.id);
    const t = f.type;
    if (t.kind === 'struct') max = Math.max(max, maxFieldId(t.fields));
    if (t.kind === 'list') max = Math.max(max, t.elementId, t.element.kind === 'struct' ? maxFieldId(t.element.fields) : 0);
    if (t.kind === 'map') max = Math.max(max, t.keyId, t.valueId, t.value.kind === 'struct' ? maxFieldId(t.value.fields) : 0);
  }
  return max;
}

export function lastColumnIdOf(schema: IcebergSchema): number {
  return maxFieldId(schema.fields);
}

export function parseRestSchema(json: unknown, what = 'schema'): IcebergSchema {
  if (!isJsonObject(json)) throw new PuffinError('bad_request', `${what} is required and must be an object`);
  return parseSchema({ type: 'struct', ...(json as Json) }, what);
}

export function parseRestSpec(json: unknown, schema: IcebergSchema): PartitionSpec {
  if (json === undefined || json === null) return { specId: 0, fields: [] };
  if (!isJsonObject(json)) throw new PuffinError('bad_request', `partition-spec must be an object, got ${shownValue(json)}`);
  const obj = json;
  const fields = parsePartitionFieldsJson(obj.fields ?? [], 'partition-spec');
  for (const f of fields) {
    if (!schema.fields.some((c) => c.id === f.sourceId)) throw new PuffinError('bad_request', `partition field '${f.name}' names source-id ${f.sourceId}, which is not a column`);
  }
  return { specId: typeof obj['spec-id'] === 'number' ? obj['spec-id'] : 0, fields };
}

function parseSortOrder(json: unknown): SortOrder {
  if (!isJsonObject(json)) throw new PuffinError('bad_request', `add-sort-order: sort-order must be an object, got ${shownValue(json)}`);
  const obj = json;
  const fields = objectList(obj.fields, 'add-sort-order: sort-order.fields') ?? [];
  return {
    orderId: typeof obj['order-id'] === 'number' ? obj['order-id'] : 0,
    fields: fields.map((f) => ({
      sourceId: intOf(f['source-id'], 'sort field source-id'),
      transform: parseTransform(typeof f.transform === 'string' ? f.transform : 'identity'),
      direction: f.direction === 'desc' ? 'desc' : 'asc',
      nullOrder: f['null-order'] === 'nulls-last' ? 'nulls-last' : 'nulls-first',
    })),
  };
}

function parseSnapshot(json: unknown): Snapshot {
  if (!isJsonObject(json)) throw new PuffinError('bad_request', `add-snapshot: snapshot must be an object, got ${shownValue(json)}`);
  const s = json;
  if (typeof s['manifest-list'] !== 'string') throw new PuffinError('bad_request', 'add-snapshot: snapshot.manifest-list is required');
  const snapshot: Snapshot = {
    snapshotId: bigOf(s['snapshot-id'], 'snapshot-id'),
    sequenceNumber: s['sequence-number'] === undefined ? 0n : bigOf(s['sequence-number'], 'sequence-number'),
    timestampMs: intOf(s['timestamp-ms'], 'timestamp-ms'),
    manifestList: s['manifest-list'],
    summary: stringMap(s.summary, 'add-snapshot: snapshot.summary') ?? {},
  };
  if (s['parent-snapshot-id'] !== undefined && s['parent-snapshot-id'] !== null) snapshot.parentSnapshotId = bigOf(s['parent-snapshot-id'], 'parent-snapshot-id');
  if (typeof s['schema-id'] === 'number') snapshot.schemaId = s['schema-id'];
  // v3 row lineage: the first row id the snapshot assigned and how many it assigned.
  if (s['first-row-id'] !== undefined && s['first-row-id'] !== null) snapshot.firstRowId = bigOf(s['first-row-id'], 'first-row-id');
  if (s['added-rows'] !== undefined && s['added-rows'] !== null) snapshot.addedRows = bigOf(s['added-rows'], 'added-rows');
  if (!snapshot.summary.operation) throw new PuffinError('bad_request', 'add-snapshot: snapshot.summary.operation is required');
  return snapshot;
}

/** Check every requirement against the base (undefined: the table does not exist yet). */
export function checkRequirements(base: TableMetadata | undefined, requirements: readonly Json[], table: string): void {
  for (const r of requirements) {
    const type = stringOf(r.type, 'a requirement\'s type');
    if (type === 'assert-create') {
      if (base) throw new CommitFailed(`requirement failed: table '${table}' already exists`);
      continue;
    }
    if (!base) throw new PuffinError('not_found', `table '${table}' does not exist`);
    const fail = (what: string): never => {
      throw new CommitFailed(`requirement failed for table '${table}': ${what}`);
    };
    switch (type) {
      case 'assert-table-uuid':
        if (r.uuid !== base.tableUuid) fail(`table uuid is ${base.tableUuid}, expected ${String(r.uuid)}`);
        break;
      case 'assert-ref-snapshot-id': {
        const ref = base.refs[String(r.ref)];
        const want = r['snapshot-id'];
        if (want === null || want === undefined) {
          if (ref) fail(`ref '${String(r.ref)}' exists (snapshot ${ref.snapshotId}), expected it not to`);
        } else if (!ref || ref.snapshotId !== bigOf(want, 'snapshot-id')) {
          fail(`ref '${String(r.ref)}' is at ${ref ? ref.snapshotId : 'nothing'}, expected ${String(want)}`);
        }
        break;
      }
      case 'assert-last-assigned-field-id':
        if (base.lastColumnId !== r['last-assigned-field-id']) fail(`last assigned field id is ${base.lastColumnId}, expected ${String(r['last-assigned-field-id'])}`);
        break;
      case 'assert-current-schema-id':
        if (base.currentSchemaId !== r['current-schema-id']) fail(`current schema id is ${base.currentSchemaId}, expected ${String(r['current-schema-id'])}`);
        break;
      case 'assert-last-assigned-partition-id': {
        const last = base.lastPartitionId ?? 999;
        if (last !== r['last-assigned-partition-id']) fail(`last assigned partition id is ${last}, expected ${String(r['last-assigned-partition-id'])}`);
        break;
      }
      case 'assert-default-spec-id':
        if (base.defaultSpecId !== r['default-spec-id']) fail(`default spec id is ${base.defaultSpecId}, expected ${String(r['default-spec-id'])}`);
        break;
      case 'assert-default-sort-order-id':
        if (base.defaultSortOrderId !== r['default-sort-order-id']) fail(`default sort order id is ${base.defaultSortOrderId}, expected ${String(r['default-sort-order-id'])}`);
        break;
      default:
        throw new PuffinError('bad_request', `unknown requirement type '${type}'`);
    }
  }
}

/** Apply updates in order, returning new metadata (the input is not modified). */
export function applyUpdates(base: TableMetadata, updates: readonly Json[], now = Date.now()): TableMetadata {
  const m: TableMetadata = structuredClone(base);
  let lastAddedSchema: number | undefined;
  let lastAddedSpec: number | undefined;
  let lastAddedOrder: number | undefined;
  for (const u of updates) {
    const action = stringOf(u.action, 'an update\'s action');
    switch (action) {
      case 'assign-uuid':
        m.tableUuid = stringOf(u.uuid, 'assign-uuid: uuid');
        break;
      case 'upgrade-format-version': {
        const v = u['format-version'];
        if (v !== 2 && v !== 3) throw new PuffinError('unsupported', `format version ${String(v)} is not supported; this catalog writes format versions 2 and 3`);
        if (v < m.formatVersion) throw new PuffinError('bad_request', `upgrade-format-version: table is format v${m.formatVersion}, and a format version is never lowered (asked for ${v})`);
        // v2 -> v3: row lineage starts at 0 (rows written before have no ids).
        if (v === 3 && m.formatVersion < 3) m.nextRowId = 0n;
        m.formatVersion = v;
        break;
      }
      case 'add-schema': {
        const parsed = parseRestSchema(u.schema, 'add-schema.schema');
        const schemaId = Math.max(-1, ...m.schemas.map((s) => s.schemaId)) + 1;
        const schema = { ...parsed, schemaId };
        m.schemas.push(schema);
        m.lastColumnId = Math.max(m.lastColumnId, typeof u['last-column-id'] === 'number' ? u['last-column-id'] : 0, lastColumnIdOf(schema));
        lastAddedSchema = schemaId;
        break;
      }
      case 'set-current-schema': {
        const id = u['schema-id'] === -1 ? lastAddedSchema : intOf(u['schema-id'], 'schema-id');
        if (id === undefined || !m.schemas.some((s) => s.schemaId === id)) throw new PuffinError('bad_request', `set-current-schema: schema ${String(u['schema-id'])} does not exist`);
        m.currentSchemaId = id;
        break;
      }
      case 'add-spec': {
        const schema = m.schemas.find((s) => s.schemaId === m.currentSchemaId) as IcebergSchema;
        const spec = parseRestSpec(u.spec, schema);
        spec.specId = Math.max(-1, ...m.partitionSpecs.map((s) => s.specId)) + 1;
        m.partitionSpecs.push(spec);
        m.lastPartitionId = Math.max(m.lastPartitionId ?? 999, ...spec.fields.map((f) => f.fieldId));
        lastAddedSpec = spec.specId;
        break;
      }
      case 'set-default-spec': {
        const id = u['spec-id'] === -1 ? lastAddedSpec : intOf(u['spec-id'], 'spec-id');
        if (id === undefined || !m.partitionSpecs.some((s) => s.specId === id)) throw new PuffinError('bad_request', `set-default-spec: spec ${String(u['spec-id'])} does not exist`);
        m.defaultSpecId = id;
        break;
      }
      case 'add-sort-order': {
        const order = parseSortOrder(u['sort-order']);
        if (order.fields.length > 0 || !m.sortOrders.some((o) => o.orderId === order.orderId)) {
          order.orderId = order.fields.length === 0 ? 0 : Math.max(0, ...m.sortOrders.map((o) => o.orderId)) + 1;
          if (!m.sortOrders.some((o) => o.orderId === order.orderId)) m.sortOrders.push(order);
        }
        lastAddedOrder = order.orderId;
        break;
      }
      case 'set-default-sort-order': {
        const id = u['sort-order-id'] === -1 ? lastAddedOrder : intOf(u['sort-order-id'], 'sort-order-id');
        if (id === undefined || !m.sortOrders.some((o) => o.orderId === id)) throw new PuffinError('bad_request', `set-default-sort-order: order ${String(u['sort-order-id'])} does not exist`);
        m.defaultSortOrderId = id;
        break;
      }
      case 'add-snapshot': {
        const s = parseSnapshot(u.snapshot);
        if (m.snapshots.some((x) => x.snapshotId === s.snapshotId)) throw new CommitFailed(`snapshot ${s.snapshotId} already exists`);
        if (s.sequenceNumber <= m.lastSequenceNumber && m.snapshots.length > 0) {
          throw new CommitFailed(`snapshot ${s.snapshotId} has sequence number ${s.sequenceNumber}, not above the table's last sequence number ${m.lastSequenceNumber}`);
        }
        if (m.formatVersion >= 3) {
          // As Java's TableMetadata does: a v3 snapshot says which row ids it assigned, from the
          // table's next-row-id on, and the table's next-row-id moves past them.
          const next = m.nextRowId ?? 0n;
          if (s.firstRowId === undefined || s.addedRows === undefined) throw new PuffinError('bad_request', `add-snapshot: snapshot ${s.snapshotId} of a format v3 table needs first-row-id and added-rows (row lineage)`);
          if (s.firstRowId < next) throw new CommitFailed(`snapshot ${s.snapshotId} has first-row-id ${s.firstRowId}, behind the table's next-row-id ${next}`);
          m.nextRowId = next + s.addedRows;
        }
        m.snapshots.push(s);
        if (s.sequenceNumber > m.lastSequenceNumber) m.lastSequenceNumber = s.sequenceNumber;
        m.lastUpdatedMs = Math.max(m.lastUpdatedMs, s.timestampMs);
        break;
      }
      case 'set-snapshot-ref': {
        const name = stringOf(u['ref-name'], 'set-snapshot-ref: ref-name');
        const snapshotId = bigOf(u['snapshot-id'], 'snapshot-id');
        if (!m.snapshots.some((s) => s.snapshotId === snapshotId)) throw new PuffinError('bad_request', `set-snapshot-ref: snapshot ${snapshotId} does not exist`);
        m.refs[name] = { snapshotId, type: u.type === 'tag' ? 'tag' : 'branch' };
        if (name === 'main') {
          m.currentSnapshotId = snapshotId;
          m.snapshotLog.push({ timestampMs: now, snapshotId });
        }
        break;
      }
      case 'remove-snapshot-ref': {
        const name = stringOf(u['ref-name'], 'remove-snapshot-ref: ref-name');
        delete m.refs[name];
        if (name === 'main') m.currentSnapshotId = null;
        break;
      }
      case 'remove-snapshots': {
        if (!Array.isArray(u['snapshot-ids'])) throw new PuffinError('bad_request', 'remove-snapshots: snapshot-ids must be a list of snapshot ids');
        const ids = new Set((u['snapshot-ids'] as unknown[]).map((x) => bigOf(x, 'remove-snapshots: snapshot-ids')));
        if (m.currentSnapshotId !== null && ids.has(m.currentSnapshotId)) throw new PuffinError('bad_request', 'remove-snapshots: cannot remove the current snapshot');
        m.snapshots = m.snapshots.filter((s) => !ids.has(s.snapshotId));
        m.snapshotLog = m.snapshotLog.filter((e) => !ids.has(e.snapshotId));
        break;
      }
      case 'set-location':
        m.location = stringOf(u.location, 'set-location: location').replace(/\/+$/, '');
        break;
      case 'set-properties':
        Object.assign(m.properties, stringMap(u.updates, 'set-properties: updates') ?? {});
        break;
      case 'remove-properties':
        for (const k of stringList(u.removals, 'remove-properties: removals') ?? []) delete m.properties[k];
        break;
      default:
        throw new PuffinError('unsupported', `table update '${action}' is not supported by this catalog`);
    }
  }
  m.lastUpdatedMs = Math.max(now, m.lastUpdatedMs);
  return m;
}
