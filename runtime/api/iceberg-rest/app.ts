// The Iceberg REST catalog protocol (apache/iceberg open-api/rest-catalog-open-api.yaml) as a
// hono sub-app, so Spark, Trino, PyIceberg or DuckDB can list, load, create and commit
// PuffinDB's tables. Mount it under `/iceberg`: its routes are `/v1/...`.
//
// Table identifiers map to pointer-store names: namespace parts and the table name joined by
// dots ('sales.orders'); tables created without a namespace (SQL `CREATE TABLE t`) appear in
// the namespace named by `defaultNamespace`. Namespaces live in their own PointerStore
// (name -> a properties JSON file under the warehouse), so they are as durable as tables.
// Commits are the same compare-and-swap as the SQL writer's: requirements are checked on the
// base this request read, and a lost race answers 409 CommitFailedException (clients retry).

import { randomUUID } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { PuffinError } from '../../errors.ts';
import { createTable, loadTable, newTableMetadata, writeMetadataFile, type LoadedTable } from '../../catalog/iceberg/commit.ts';
import { decodeTableMetadata, quoteBigIntegers, type TableMetadata } from '../../catalog/iceberg/metadata.ts';
import type { PointerStore } from '../../catalog/iceberg/pointer-store.ts';
import type { TableIO } from '../../catalog/iceberg/writer-io.ts';
import { metadataToJsonObject, stringifyWithBigInts } from '../../catalog/iceberg/writer-metadata.ts';
import { applyUpdates, checkRequirements, CommitFailed, isJsonObject, lastColumnIdOf, objectList, parseRestSchema, parseRestSpec, stringList, stringMap } from './updates.ts';
import { tableNameTooLong } from '../../catalog/names.ts';
import { MemoryPointerStore } from '../../catalog/iceberg/memory-pointer-store.ts';
import { LocationPolicy } from '../../storage/locations.ts';

export interface IcebergRestOptions {
  /** Table metadata pointers (the same store the SQL writer commits through). */
  pointerStore: PointerStore;
  /** Namespace registry; defaults to an in-process map (namespaces then last as long as the process, tables do not depend on them). */
  namespaceStore?: PointerStore;
  io: TableIO;
  /** URI under which new tables get a directory: `${warehouseUrl}/${ns}/${table}`. */
  warehouseUrl: string;
  /** Namespace for tables whose names have no dot. */
  defaultNamespace?: string;
  /**
   * Where table locations, registered metadata and manifest lists may lie: the warehouse and
   * the admin's PUFFINDB_ALLOWED_LOCATIONS. Default: under `warehouseUrl` only.
   */
  locations?: LocationPolicy;
}

type Json = Record<string, unknown>;

const ERROR_TYPE: Partial<Record<string, string>> = {
  not_found: 'NoSuchTableException',
  unknown_table: 'NoSuchTableException',
  conflict: 'CommitFailedException',
  bad_request: 'BadRequestException',
  syntax_error: 'BadRequestException',
  unsupported: 'UnsupportedOperationException',
  unavailable: 'ServiceUnavailableException',
  access_denied: 'ForbiddenException',
  forbidden: 'ForbiddenException',
};

function errorBody(code: number, type: string, message: string): Json {
  return { error: { message, type, code } };
}

function fail(c: Context, err: unknown): Response {
  if (err instanceof PuffinError) {
    const status = err.code === 'unknown_table' ? 404 : err.httpStatus;
    const type = (err.details?.icebergType as string | undefined) ?? ERROR_TYPE[err.code] ?? 'ServiceFailureException';
    return c.json(errorBody(status, type, err.message), status as 400);
  }
  // Not one of ours: its message may quote anything (a file's bytes, a path); say only what failed.
  return c.json(errorBody(500, 'ServiceFailureException', `internal error (${(err as Error)?.name ?? 'unknown'}); see the server log`), 500);
}

function typed(code: PuffinError['code'], icebergType: string, message: string): PuffinError {
  return new PuffinError(code, message, { icebergType });
}

const badRequest = (message: string): PuffinError => typed('bad_request', 'BadRequestException', message);

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A name as an error message shows it: JSON-quoted, long ones cut. */
function shown(v: unknown): string {
  const text = typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
  return JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}...` : text);
}

/**
 * A namespace's parts, checked: each a name of letters, digits and underscores, and the whole
 * (dot-joined, the key of its pointer-store entry and the prefix of its tables' names) short
 * enough to be a file name (runtime/catalog/names.ts). Stored lower-case.
 */
function validNamespace(parts: readonly unknown[], what = "'namespace'"): string[] {
  if (parts.length === 0) throw badRequest(`${what} must be a non-empty list of names`);
  for (const p of parts) {
    if (typeof p !== 'string') throw badRequest(`${what} must be a list of strings, got ${shown(p)} in it`);
    if (!IDENTIFIER.test(p)) throw badRequest(`invalid namespace part ${shown(p)}: use letters, digits and underscores, not starting with a digit`);
  }
  const ns = (parts as string[]).map((p) => p.toLowerCase());
  const tooLong = tableNameTooLong(ns.join('.'), 'namespace');
  if (tooLong) throw badRequest(tooLong);
  return ns;
}

/** A namespace path segment or `parent` query value (already percent-decoded by the router):
 *  parts separated by the unit separator (0x1F). */
function namespaceParts(segment: string): string[] {
  return validNamespace(segment.split('\u001f'), 'namespace');
}

/** A path parameter as the router decoded it (decoding it again would turn '%2541' into 'A'). */
function param(c: Context, name: string): string {
  const v = c.req.param(name);
  if (v === undefined) throw badRequest(`missing path parameter '${name}'`);
  return v;
}

/** Table names: letters, digits and underscores, lower-cased. Their length is checked with
 *  the namespace (`checkedStoreName`): the two make one pointer-store name. */
function validTableName(name: unknown, what = "'name'"): string {
  if (typeof name !== 'string') throw badRequest(`${what} must be a string, got ${shown(name)}`);
  if (!IDENTIFIER.test(name)) throw badRequest(`invalid table name ${shown(name)}: use letters, digits and underscores, not starting with a digit`);
  return name.toLowerCase();
}

/** A table identifier of a request body: {namespace: string[], name: string}. */
function identifierOf(v: unknown, what: string): { namespace: string[]; name: string } {
  if (!isJsonObject(v)) throw badRequest(`${what} must be a table identifier {namespace, name}, got ${shown(v)}`);
  if (!Array.isArray(v.namespace)) throw badRequest(`${what}.namespace must be a list of names`);
  return { namespace: validNamespace(v.namespace, `${what}.namespace`), name: validTableName(v.name, `${what}.name`) };
}

/**
 * Some clients (iceberg-js's updateTable) send `{schema?, 'partition-spec'?, properties?}`
 * instead of the spec's requirements/updates: read it as the updates it stands for.
 */
function shorthandUpdates(b: Json): Json[] {
  const out: Json[] = [];
  if (b.schema !== undefined) out.push({ action: 'add-schema', schema: b.schema }, { action: 'set-current-schema', 'schema-id': -1 });
  if (b['partition-spec'] !== undefined) out.push({ action: 'add-spec', spec: b['partition-spec'] }, { action: 'set-default-spec', 'spec-id': -1 });
  if (b.properties !== undefined) out.push({ action: 'set-properties', updates: b.properties });
  return out;
}

export function createIcebergRestApp(options: IcebergRestOptions): Hono {
  const app = new Hono();
  const tables = options.pointerStore;
  const namespaces = options.namespaceStore ?? new MemoryPointerStore();
  const io = options.io;
  const defaultNs = (options.defaultNamespace ?? 'default').toLowerCase();
  const warehouse = options.warehouseUrl.replace(/\/+$/, '');
  const locations = options.locations ?? new LocationPolicy([options.warehouseUrl]);

  /**
   * Everything a table's metadata makes this server write or read must lie where it may:
   * the table location, the data and metadata paths other engines honour, and the manifest
   * list of every snapshot that `base` does not have yet.
   */
  async function checkTableLocations(m: TableMetadata, base?: TableMetadata): Promise<void> {
    if (m.location !== base?.location) await locations.check(m.location, 'table location');
    for (const key of ['write.data.path', 'write.metadata.path', 'write.object-storage.path', 'write.folder-storage.path']) {
      const value = m.properties[key];
      if (value !== undefined && value !== base?.properties[key]) await locations.check(value, `table property ${key}`);
    }
    const known = new Set((base?.snapshots ?? []).map((s) => s.snapshotId));
    for (const s of m.snapshots) {
      if (known.has(s.snapshotId)) continue;
      if (s.manifestList !== undefined) await locations.check(s.manifestList, `manifest list of snapshot ${s.snapshotId}`);
      for (const manifest of s.manifests ?? []) await locations.check(manifest, `manifest of snapshot ${s.snapshotId}`);
    }
  }

  const storeName = (ns: string[], table: string): string => {
    const name = ns.length === 1 && ns[0] === defaultNs ? table : `${ns.join('.')}.${table}`;
    // The pointer store keeps the table under a file named so: refused before any store call.
    const tooLong = tableNameTooLong(name, 'table name');
    if (tooLong) throw badRequest(tooLong);
    return name;
  };
  const splitName = (name: string): { namespace: string[]; name: string } => {
    const parts = name.split('.');
    return parts.length === 1 ? { namespace: [defaultNs], name } : { namespace: parts.slice(0, -1), name: parts[parts.length - 1] };
  };

  async function namespaceProperties(ns: string[]): Promise<Record<string, string> | undefined> {
    const key = ns.join('.');
    const loc = await namespaces.get(key);
    if (loc) return JSON.parse(Buffer.from(await io.read(loc)).toString('utf8')) as Record<string, string>;
    // A namespace is implied by the tables in it (and the default one always exists).
    if (key === defaultNs) return {};
    const all = await tables.list();
    return all.some((t) => t.name.startsWith(`${key}.`)) ? {} : undefined;
  }

  async function requireNamespace(ns: string[]): Promise<Record<string, string>> {
    const props = await namespaceProperties(ns);
    if (!props) throw typed('not_found', 'NoSuchNamespaceException', `namespace '${ns.join('.')}' does not exist`);
    return props;
  }

  async function writeNamespace(ns: string[], props: Record<string, string>, expected: string | undefined): Promise<boolean> {
    const uri = `${warehouse}/${ns.join('/')}/.namespace-${randomUUID()}.json`;
    await io.write(uri, new TextEncoder().encode(JSON.stringify(props)));
    return namespaces.compareAndSwap(ns.join('.'), expected, uri);
  }

  async function load(ns: string[], table: string): Promise<LoadedTable> {
    const name = storeName(ns, table);
    try {
      return await loadTable(tables, name, io);
    } catch (err) {
      if (err instanceof PuffinError && err.code === 'unknown_table') throw typed('not_found', 'NoSuchTableException', `table '${[...ns, table].join('.')}' does not exist`);
      throw err;
    }
  }

  const tableResult = (t: { metadataLocation: string; metadata: TableMetadata }): string =>
    stringifyWithBigInts({ 'metadata-location': t.metadataLocation, metadata: metadataToJsonObject(t.metadata), config: {} });

  const jsonText = (c: Context, text: string, status = 200): Response => c.body(text, status as 200, { 'content-type': 'application/json' });

  async function body(c: Context): Promise<Json> {
    const text = await c.req.text();
    if (!text) return {};
    try {
      const parsed = JSON.parse(quoteBigIntegers(text));
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
      return parsed as Json;
    } catch (err) {
      throw typed('bad_request', 'BadRequestException', `request body is not a JSON object: ${(err as Error).message}`);
    }
  }

  const handle = (fn: (c: Context) => Promise<Response>) => async (c: Context): Promise<Response> => {
    try {
      return await fn(c);
    } catch (err) {
      return fail(c, err);
    }
  };

  app.get('/v1/config', handle(async (c) => c.json({ defaults: {}, overrides: { warehouse }, endpoints: [
    'GET /v1/{prefix}/namespaces', 'POST /v1/{prefix}/namespaces', 'GET /v1/{prefix}/namespaces/{namespace}', 'HEAD /v1/{prefix}/namespaces/{namespace}',
    'DELETE /v1/{prefix}/namespaces/{namespace}', 'POST /v1/{prefix}/namespaces/{namespace}/properties', 'GET /v1/{prefix}/namespaces/{namespace}/tables',
    'POST /v1/{prefix}/namespaces/{namespace}/tables', 'GET /v1/{prefix}/namespaces/{namespace}/tables/{table}', 'HEAD /v1/{prefix}/namespaces/{namespace}/tables/{table}',
    'POST /v1/{prefix}/namespaces/{namespace}/tables/{table}', 'DELETE /v1/{prefix}/namespaces/{namespace}/tables/{table}', 'POST /v1/{prefix}/namespaces/{namespace}/register',
    'POST /v1/{prefix}/tables/rename',
  ] })));

  app.get('/v1/namespaces', handle(async (c) => {
    const parentParam = c.req.query('parent');
    const parent = parentParam ? namespaceParts(parentParam) : [];
    const all = new Set<string>([defaultNs]);
    for (const n of await namespaces.list()) all.add(n.name);
    for (const t of await tables.list()) if (t.name.includes('.')) all.add(t.name.slice(0, t.name.lastIndexOf('.')));
    const children = new Set<string>();
    for (const n of all) {
      const parts = n.split('.');
      if (parts.length > parent.length && parent.every((p, i) => parts[i] === p)) children.add(parts.slice(0, parent.length + 1).join('.'));
    }
    return c.json({ namespaces: [...children].sort().map((n) => n.split('.')) });
  }));

  app.post('/v1/namespaces', handle(async (c) => {
    const b = await body(c);
    if (!Array.isArray(b.namespace) || b.namespace.length === 0) throw badRequest("'namespace' must be a non-empty list of names");
    const ns = validNamespace(b.namespace);
    const props = stringMap(b.properties, "'properties'") ?? {};
    if (ns.join('.') === defaultNs || (await namespaces.get(ns.join('.'))) || !(await writeNamespace(ns, props, undefined))) {
      throw typed('conflict', 'AlreadyExistsException', `namespace '${ns.join('.')}' already exists`);
    }
    return c.json({ namespace: ns, properties: props });
  }));

  // Hono answers HEAD by running the GET route (a HEAD route is never reached), so the GET
  // handlers answer HEAD themselves: 204 when it exists, as the spec says (404 when not).
  const isHead = (c: Context): boolean => c.req.method === 'HEAD';

  app.get('/v1/namespaces/:ns', handle(async (c) => {
    const ns = namespaceParts(param(c, 'ns'));
    const properties = await requireNamespace(ns);
    if (isHead(c)) return c.body(null, 204);
    return c.json({ namespace: ns, properties });
  }));

  app.delete('/v1/namespaces/:ns', handle(async (c) => {
    const ns = namespaceParts(param(c, 'ns'));
    await requireNamespace(ns);
    const key = ns.join('.');
    const inside = (await tables.list()).filter((t) => (key === defaultNs ? !t.name.includes('.') : t.name.startsWith(`${key}.`)));
    if (inside.length) throw typed('conflict', 'NamespaceNotEmptyException', `namespace '${key}' is not empty (${inside.length} tables, e.g. ${inside[0].name})`);
    const loc = await namespaces.get(key);
    if (loc) await namespaces.remove(key, loc);
    return c.body(null, 204);
  }));

  app.post('/v1/namespaces/:ns/properties', handle(async (c) => {
    const ns = namespaceParts(param(c, 'ns'));
    const b = await body(c);
    const removals = stringList(b.removals, "'removals'") ?? [];
    const updates = stringMap(b.updates, "'updates'") ?? {};
    if (removals.some((k) => k in updates)) throw typed('unsupported', 'UnprocessableEntityException', 'a property cannot be both updated and removed');
    const before = await requireNamespace(ns);
    const props = { ...before, ...updates };
    const missing = removals.filter((k) => !(k in before));
    for (const k of removals) delete props[k];
    if (!(await writeNamespace(ns, props, await namespaces.get(ns.join('.'))))) throw typed('conflict', 'CommitFailedException', 'namespace properties changed concurrently; retry');
    return c.json({ updated: Object.keys(updates), removed: removals.filter((k) => k in before), missing });
  }));

  app.get('/v1/namespaces/:ns/tables', handle(async (c) => {
    const ns = namespaceParts(param(c, 'ns'));
    await requireNamespace(ns);
    const identifiers = (await tables.list())
      .map((t) => splitName(t.name))
      .filter((t) => t.namespace.join('.') === ns.join('.'))
      .map((t) => ({ namespace: t.namespace, name: t.name }));
    return c.json({ identifiers });
  }));

  app.post('/v1/namespaces/:ns/tables', handle(async (c) => {
    const ns = namespaceParts(param(c, 'ns'));
    await requireNamespace(ns);
    const b = await body(c);
    const table = validTableName(b.name);
    const name = storeName(ns, table);
    const schema = parseRestSchema(b.schema);
    const spec = parseRestSpec(b['partition-spec'], schema);
    if (b.location !== undefined && b.location !== null && typeof b.location !== 'string') throw badRequest("'location' must be a string");
    if (b['write-order'] !== undefined && b['write-order'] !== null && !isJsonObject(b['write-order'])) throw badRequest("'write-order' must be an object");
    if (b['stage-create'] !== undefined && typeof b['stage-create'] !== 'boolean') throw badRequest("'stage-create' must be a boolean");
    const location = typeof b.location === 'string' ? b.location.replace(/\/+$/, '') : `${warehouse}/${ns.join('/')}/${table}`;
    const properties = stringMap(b.properties, "'properties'") ?? {};
    await checkTableLocations({ location, properties, snapshots: [] } as unknown as TableMetadata);
    if (b['stage-create'] === true) {
      const metadata = newTableMetadata({ schema, lastColumnId: lastColumnIdOf(schema), spec, location, properties });
      return jsonText(c, stringifyWithBigInts({ metadata: metadataToJsonObject(metadata), config: {} }));
    }
    try {
      const created = await createTable(tables, name, { schema, lastColumnId: lastColumnIdOf(schema), spec, location, properties }, io);
      return jsonText(c, tableResult(created));
    } catch (err) {
      if (err instanceof PuffinError && err.code === 'conflict') throw typed('conflict', 'AlreadyExistsException', `table '${[...ns, table].join('.')}' already exists`);
      throw err;
    }
  }));

  app.post('/v1/namespaces/:ns/register', handle(async (c) => {
    const ns = namespaceParts(param(c, 'ns'));
    await requireNamespace(ns);
    const b = await body(c);
    const table = validTableName(b.name);
    const name = storeName(ns, table);
    if (b.overwrite !== undefined && typeof b.overwrite !== 'boolean') throw badRequest("'overwrite' must be a boolean");
    const location = b['metadata-location'];
    if (typeof location !== 'string' || location === '') throw typed('bad_request', 'BadRequestException', "'metadata-location' is required");
    // Checked before anything is read: a file outside is never opened, so its bytes cannot leak.
    await locations.check(location, "'metadata-location'");
    const metadata = decodeTableMetadata(await io.read(location), location);
    await checkTableLocations(metadata);
    if (!(await tables.compareAndSwap(name, undefined, location))) throw typed('conflict', 'AlreadyExistsException', `table '${[...ns, table].join('.')}' already exists`);
    return jsonText(c, tableResult({ metadataLocation: location, metadata }));
  }));

  app.get('/v1/namespaces/:ns/tables/:table', handle(async (c) => {
    const loaded = await load(namespaceParts(param(c, 'ns')), validTableName(param(c, 'table'), 'table'));
    if (isHead(c)) return c.body(null, 204);
    return jsonText(c, tableResult(loaded));
  }));

  app.delete('/v1/namespaces/:ns/tables/:table', handle(async (c) => {
    const ns = namespaceParts(param(c, 'ns'));
    const t = await load(ns, validTableName(param(c, 'table'), 'table'));
    // Files stay: purging data is a maintenance decision (and other engines may share them).
    if (!(await tables.remove(t.name, t.metadataLocation))) throw typed('conflict', 'CommitFailedException', `table '${t.name}' changed while being dropped; retry`);
    return c.body(null, 204);
  }));

  app.post('/v1/namespaces/:ns/tables/:table', handle(async (c) => {
    const ns = namespaceParts(param(c, 'ns'));
    const tableName = validTableName(param(c, 'table'), 'table');
    const name = storeName(ns, tableName);
    const b = await body(c);
    if (b.identifier !== undefined && b.identifier !== null) {
      const id = identifierOf(b.identifier, "'identifier'");
      if (storeName(id.namespace, id.name) !== name) throw badRequest(`'identifier' names ${[...id.namespace, id.name].join('.')}, not the table of the path (${[...ns, tableName].join('.')})`);
    }
    const requirements = objectList(b.requirements, "'requirements'") ?? [];
    const updates = objectList(b.updates, "'updates'") ?? shorthandUpdates(b);
    const current = await tables.get(name);
    if (current === undefined && !requirements.some((r) => r.type === 'assert-create')) throw typed('not_found', 'NoSuchTableException', `table '${[...ns, tableName].join('.')}' does not exist`);
    const base = current === undefined ? undefined : decodeTableMetadata(await io.read(current), current);
    try {
      checkRequirements(base, requirements, [...ns, tableName].join('.'));
    } catch (err) {
      if (err instanceof CommitFailed) throw typed('conflict', 'CommitFailedException', err.message);
      throw err;
    }
    const start: TableMetadata = base ?? {
      ...newTableMetadata({ schema: { schemaId: 0, fields: [], identifierFieldIds: [] }, lastColumnId: 0, spec: { specId: 0, fields: [] }, location: `${warehouse}/${ns.join('/')}/${tableName}` }),
      schemas: [],
      partitionSpecs: [],
    };
    let next: TableMetadata;
    try {
      next = applyUpdates(start, updates);
    } catch (err) {
      if (err instanceof CommitFailed) throw typed('conflict', 'CommitFailedException', err.message);
      throw err;
    }
    if (next.schemas.length === 0) throw typed('bad_request', 'BadRequestException', 'a table needs a schema (add-schema)');
    if (next.partitionSpecs.length === 0) next.partitionSpecs = [{ specId: 0, fields: [] }];
    await checkTableLocations(next, base);
    const metadataLocation = await writeMetadataFile(io, { ...next, metadataLog: current ? [...next.metadataLog, { timestampMs: base?.lastUpdatedMs ?? Date.now(), metadataFile: current }] : next.metadataLog }, current, name);
    const written = decodeTableMetadata(await io.read(metadataLocation), metadataLocation);
    if (!(await tables.compareAndSwap(name, current, metadataLocation))) {
      throw typed('conflict', 'CommitFailedException', `table '${[...ns, tableName].join('.')}' was changed by a concurrent commit; refresh and retry`);
    }
    return jsonText(c, stringifyWithBigInts({ 'metadata-location': metadataLocation, metadata: metadataToJsonObject(written) }));
  }));

  app.post('/v1/tables/rename', handle(async (c) => {
    const b = await body(c);
    if (b.source === undefined || b.destination === undefined) throw badRequest("'source' and 'destination' identifiers are required");
    const src = identifierOf(b.source, "'source'");
    const dst = identifierOf(b.destination, "'destination'");
    const to = storeName(dst.namespace, dst.name);
    const from = await load(src.namespace, src.name);
    await requireNamespace(dst.namespace);
    if (!(await tables.compareAndSwap(to, undefined, from.metadataLocation))) throw typed('conflict', 'AlreadyExistsException', `table '${to}' already exists`);
    await tables.remove(from.name, from.metadataLocation);
    return c.body(null, 204);
  }));

  app.notFound((c) => c.json(errorBody(404, 'NotFoundException', `no route for ${c.req.method} ${c.req.path}`), 404));
  return app;
}
