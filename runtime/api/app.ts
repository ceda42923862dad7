// The HTTP API as one hono app: the local server (`puffindb serve`) mounts it on Node and
// the admin Lambda adapts it to API Gateway events. Routes are a table (runtime/api/route.ts)
// from which both the app and GET /v1/openapi.json are made. Every request passes, in
// order: the client address check, the body size limit, the API key (all but
// /v1/health), the key's rate limit, the route's role, and its input schemas; bad input
// is a 4xx with a JSON error `{error: {code, message}}`. The Iceberg REST catalog
// (runtime/api/iceberg-rest/) is mounted at /iceberg behind the same checks, answering
// refusals in the Iceberg error form its clients parse.

import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Catalog, TableSnapshot, TableSummary } from '../catalog/types.ts';
import { tableSummary } from '../catalog/summary.ts';
import { PuffinError, toPuffinError } from '../errors.ts';
import type { FinishedQuery, QueryManager } from '../exec/query-manager.ts';
import type { ClassifiedStatement } from '../sql/classify.ts';
import type { KeptResult } from '../exec/query-results.ts';
import type { QueryStats } from '../exec/query-service.ts';
import { QUERY_LOG_PREFIX } from '../exec/query-log.ts';
import { SETTINGS, type Settings } from '../settings.ts';
import type { QueryRecord, StateStore } from '../state/state-store.ts';
import { authenticate, createApiKey, hasRole, requireRole, StateSeed, type Principal } from './auth.ts';
import { createIcebergRestApp, type IcebergRestOptions } from './iceberg-rest/app.ts';
import { checkClient, allowedClients, clientAddress } from './client-access.ts';
import { API_KEY, ERROR_RESPONSE, KEY_REQUEST, LIST_QUERIES_PARAMS, LOGS_PARAMS, QUERY_RESULT, QUERY_STATUS, RESULT_PAGE, RESULT_PARAMS, TABLE, TABLE_FILES, TRANSLATE_REQUEST, TRANSLATION, PARSE_REQUEST, FORMAT_REQUEST } from './contract.ts';
import { sqlDialect, toDuckdbSql, translateSql } from '../sql/frontends.ts';
import { catalogTables } from '../sql/malloy.ts';
import { withViewTables } from '../exec/view-statements.ts';
import type { QuerySourceText } from '../state/state-store.ts';
import type { GeneratorRegistry } from '../state/generator-file.ts';
import { EXPLAIN_OR_GENERATOR_REQUEST, generatedSql, generatorRoutes, QUERY_OR_GENERATOR_REQUEST } from './generators.ts';
import { namesTaken, remoteRoutes, type NameTaken } from './remotes.ts';
import { openRemoteRegistry, type RemoteRegistry } from '../state/remote-file.ts';
import { catalogRoutes } from './catalogs.ts';
import { warehouseCatalogOf } from '../catalog/warehouse-catalog.ts';
import { fetchedResult, fetchFormat, PARQUET_TYPE } from './result-response.ts';
import { bindParams } from '../client/params.ts';
import { ARROW_STREAM_TYPE } from '../results/arrow.ts';
import { encodeResult, negotiateFormat, type ResultFormat } from '../results/formats.ts';
import { checkJsonDepth, parseJsonBody } from './json-body.ts';
import { LoginThrottle } from './login-throttle.ts';
import { openApiDocument } from './openapi.ts';
import { mountConsole } from './console.ts';
import { RateLimiter } from './rate-limit.ts';
import { honoPath, route, type Route } from './route.ts';
import { validateBody, validateQuery, type Infer } from './schema.ts';

export interface AppOptions {
  manager: QueryManager;
  state: StateStore;
  /** Tables as queries see them (including puffindb.query_log). */
  catalog: Catalog;
  settings: Settings;
  /** Largest accepted request body. Default 1 MiB. */
  maxBodyBytes?: number;
  version?: string;
  /** Serve the Iceberg REST catalog at /iceberg over these (the control plane's `iceberg`); absent: not served. */
  iceberg?: IcebergRestOptions;
  /** The configured admin key (PUFFINDB_ADMIN_KEY or its secret): put back at once if the state store loses its data. */
  adminKey?: string;
  /** 'ok' while fragments can run, else why not (the control plane's cluster.workersHealth); absent: not reported. */
  workersHealth?: () => 'ok' | string;
  /** Where query generators are registered (runtime/state/generator-file.ts openGeneratorRegistry); default: the state store. */
  generators?: GeneratorRegistry;
  /** How long a query generator has to answer (default GENERATOR_TIMEOUT_MS, 10 s). */
  generatorTimeoutMs?: number;
  /** Where remote instances are registered (runtime/state/remote-file.ts); default: openRemoteRegistry(settings, state), the one queries read. */
  remotes?: RemoteRegistry;
  /** Other things a remote's name may not be; local namespaces and external catalogs are always checked. */
  remoteNamesTaken?: NameTaken[];
}

/** What the middleware hands to routes. */
export interface ApiEnv {
  Variables: { principal: Principal };
}

export type ApiApp = Hono<ApiEnv>;

/** Names the query a response is about, so logs (the admin Lambda's) can correlate. */
export const QUERY_ID_HEADER = 'x-puffindb-query-id';

const RESULT_TYPES = ['application/json', 'text/csv', ARROW_STREAM_TYPE] as const;

function errorResponse(c: Context, err: unknown): Response {
  const e = toPuffinError(err);
  const retryAfter = e.details?.retryAfterSeconds;
  if (typeof retryAfter === 'number') c.header('retry-after', String(retryAfter));
  if (e.code === 'unauthorized') c.header('www-authenticate', 'Bearer');
  return c.json(e.toJSON(), e.httpStatus as 400);
}

/** Iceberg's exception type for a refusal made before the catalog sees the request. */
const ICEBERG_REFUSAL: Partial<Record<string, string>> = {
  unauthorized: 'NotAuthorizedException',
  forbidden: 'ForbiddenException',
  rate_limited: 'TooManyRequestsException',
  payload_too_large: 'BadRequestException',
};

/** A refusal in the Iceberg REST error form (`{error: {message, type, code}}`), which its clients parse. */
function icebergErrorResponse(c: Context, err: unknown): Response {
  const e = toPuffinError(err);
  const retryAfter = e.details?.retryAfterSeconds;
  if (typeof retryAfter === 'number') c.header('retry-after', String(retryAfter));
  if (e.code === 'unauthorized') c.header('www-authenticate', 'Bearer');
  const type = ICEBERG_REFUSAL[e.code] ?? (e.httpStatus >= 500 ? 'ServiceFailureException' : 'BadRequestException');
  return c.json({ error: { message: e.message, type, code: e.httpStatus } }, e.httpStatus as 400);
}

/** Longest path segment the Iceberg routes take, in UTF-8 bytes: a namespace or table name becomes a directory name. */
const MAX_ICEBERG_SEGMENT_BYTES = 255;

/**
 * The Iceberg routes' URL, checked at the edge: every path segment and query-string part is
 * valid percent-encoding, still holds no '%' once decoded (double encoding: no Iceberg name
 * here has one, and the catalog decodes its parameters again) and fits a file name. 400
 * otherwise.
 */
function checkIcebergUrl(url: string): void {
  const { pathname, search } = new URL(url);
  const parts = [...pathname.split('/').map((raw) => ({ raw, what: 'path segment' })), ...search.slice(1).split(/[&=]/).map((raw) => ({ raw: raw.replace(/\+/g, ' '), what: 'query-string part' }))];
  for (const { raw, what } of parts) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(raw);
    } catch {
      throw new PuffinError('bad_request', `${what} ${JSON.stringify(raw.slice(0, 64))} is not valid percent-encoding (UTF-8)`);
    }
    if (decoded.includes('%')) throw new PuffinError('bad_request', `${what} ${JSON.stringify(raw.slice(0, 64))} is encoded twice ('%' after decoding); names are letters, digits and underscores`);
    if (Buffer.byteLength(decoded) > MAX_ICEBERG_SEGMENT_BYTES) throw new PuffinError('bad_request', `a ${what} is over ${MAX_ICEBERG_SEGMENT_BYTES} bytes, the limit of a name`);
  }
}

/** The Iceberg REST catalog's reads (GET, HEAD) need a reader; everything else creates, commits or drops: a writer. */
function icebergRole(method: string): 'reader' | 'writer' {
  return method === 'GET' || method === 'HEAD' ? 'reader' : 'writer';
}

/** The request body as JSON: 400 when it is not JSON or nests too deep (runtime/api/json-body.ts). */
async function readJson(c: Context): Promise<unknown> {
  return parseJsonBody(await c.req.text());
}

/** A query id as the routes take it: a ULID (any case), upper-cased; 400 otherwise, before it is used anywhere. */
const QUERY_ID = /^[0-9A-HJKMNP-TV-Z]{26}$/i;
/** API key ids: `key_<ulid>` or the bootstrap key's. */
const KEY_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** A path parameter for a message: JSON-quoted (control characters escaped) and cut short. */
function shown(value: string): string {
  return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}...` : value);
}

/** Longest table name the routes look up (a name is a directory name in the local catalog). */
const MAX_TABLE_NAME_BYTES = 255;

const BAD_QUERY_ID = { description: 'Not a query id (a ULID).', schema: ERROR_RESPONSE };

function queryIdParam(id: string): string {
  if (!QUERY_ID.test(id)) throw new PuffinError('bad_request', `query id ${shown(id)} is not a query id (a ULID: 26 letters and digits)`);
  return id.toUpperCase();
}

/** The caller, on routes that require a key (the middleware put it there). */
function caller(principal: Principal | undefined): Principal {
  if (!principal) throw new PuffinError('internal', 'route reached without an authenticated caller');
  return principal;
}

function statusView(record: QueryRecord): Record<string, unknown> {
  return {
    queryId: record.id,
    status: record.status,
    user: record.user,
    sql: record.sql,
    source: record.source,
    remote: record.remote,
    submittedAt: record.submittedAt,
    startedAt: record.startedAt,
    finishedAt: record.finishedAt,
    deadline: record.deadline,
    progress: record.progress,
    cacheHit: record.cacheHit,
    shape: record.shape,
    singleNodeBytes: record.singleNodeBytes,
    partitionCache: record.partitionCache,
    error: record.error,
    result: record.status !== 'succeeded' ? undefined : { path: `/v1/queries/${record.id}/result` },
  };
}

function resultResponse(c: Context, format: ResultFormat, kept: KeptResult, envelope: Record<string, unknown>): Response {
  // A large result is fetched from the result route (in any format), never named by its server-side location.
  if (kept.kind === 'stored') return c.json({ ...envelope, rowCount: kept.rows, result: `/v1/queries/${String(envelope.queryId)}/result` });
  const { body, contentType } = encodeResult(kept.result, format, envelope);
  return c.body(typeof body === 'string' ? body : new Uint8Array(body), 200, { 'content-type': contentType });
}

/** Settings that are secrets are never shown; URLs lose any credentials they carry. */
const SECRET_SETTINGS: ReadonlySet<string> = new Set(['adminKey']);

function publicConfig(settings: Settings): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(SETTINGS)) {
    if (SECRET_SETTINGS.has(key)) continue;
    let value = (settings as unknown as Record<string, unknown>)[key];
    if (typeof value === 'string') value = value.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1');
    out[key] = { env: spec.env, value: value ?? null, description: spec.description };
  }
  return out;
}

export function createApp(options: AppOptions): ApiApp {
  const { manager, state, catalog, settings } = options;
  const generators = options.generators ?? state;
  const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
  const version = options.version ?? 'dev';
  const allowed = allowedClients(settings.apiAllowedCidrs);
  const limiter = new RateLimiter(settings.apiRatePerSecond, settings.apiRateBurst);
  const seed = new StateSeed(state, options.adminKey);
  /** The table a /v1/tables/{name} route names: a 400 for a name over the limit, a 404 for none. */
  const namedTable = async (name: string): Promise<TableSnapshot> => {
    if (Buffer.byteLength(name) > MAX_TABLE_NAME_BYTES) throw new PuffinError('bad_request', `table name ${shown(name)} is over ${MAX_TABLE_NAME_BYTES} bytes, the limit`);
    const t = await catalog.getTable(name);
    if (!t) throw new PuffinError('unknown_table', `unknown table '${name}'; GET /v1/tables lists them`);
    return t;
  };
  const logins = new LoginThrottle({ burst: settings.apiLoginFailureBurst ?? 20, perMinute: settings.apiLoginFailuresPerMinute ?? 60 });
  /** The caller's key, with failed logins throttled per client address (runtime/api/login-throttle.ts). */
  const login = (c: Context): Promise<Principal> => logins.guard(clientAddress(c), c.req.header('authorization') !== undefined, () => authenticate(c, state, seed));

  /** A query of the caller's, or 404 (another user's query is not revealed). */
  async function ownQuery(c: Context, principal: Principal, rawId: string): Promise<QueryRecord> {
    const id = queryIdParam(rawId);
    c.header(QUERY_ID_HEADER, id);
    const record = await manager.get(id);
    if (!record || (record.user !== principal.id && !hasRole(principal, 'admin'))) throw new PuffinError('not_found', `no query with id '${id}'`);
    return record;
  }

  /**
   * The statement, classified once (runtime/sql/classify.ts) and authorized: readers may run
   * SELECT statements only, a write needs a writer, checked before anything is recorded or
   * runs. The same classification then decides caching and execution.
   */
  async function authorizedStatement(principal: Principal, sql: string): Promise<ClassifiedStatement> {
    const statement = await manager.classify(sql);
    if (statement.access === 'write' && !hasRole(principal, 'writer')) {
      throw new PuffinError('forbidden', `key '${principal.name}' is a reader and may run SELECT statements only; this statement is ${statement.keyword}`);
    }
    return statement;
  }

  /**
   * The request's statement as the DuckDB SQL that will run (runtime/sql/frontends.ts: PRQL
   * compiled, another dialect translated), classified and authorized as that SQL: a reader's
   * PRQL or Snowflake SQL that becomes a write is refused like the write itself.
   */
  async function requestStatement(c: Context, principal: Principal, body: Infer<typeof QUERY_OR_GENERATOR_REQUEST>): Promise<{ statement: ClassifiedStatement; source?: QuerySourceText }> {
    if (body.sql === undefined && body.generator === undefined) throw new PuffinError('bad_request', "'sql' is required and must be a string (or, instead, 'generator' with 'input')");
    if (body.sql !== undefined && body.generator !== undefined) throw new PuffinError('bad_request', "give one of 'sql' and 'generator', not both");
    if (body.generator !== undefined) {
      // A remote query generator (runtime/api/generators.ts) makes DuckDB SQL from the input and
      // the schemas of the tables this caller may read; that SQL is then authorized and run as
      // the caller's own, and recorded with its source (generator, input, params).
      if (body.language !== undefined || body.dialect !== undefined) throw new PuffinError('bad_request', "'language' and 'dialect' go with 'sql'; a generator answers DuckDB SQL");
      const made = await generatedSql(generators, catalog, principal.role, body as typeof body & { generator: string }, { timeoutMs: options.generatorTimeoutMs, signal: c.req.raw.signal });
      return { statement: await authorizedStatement(principal, made.sql), source: made.source };
    }
    if (body.input !== undefined) throw new PuffinError('bad_request', "'input' goes with 'generator'");
    if (body.params !== undefined && !Array.isArray(body.params)) throw new PuffinError('bad_request', "'params' with 'sql' must be an array of values, one per $1, $2, ... or ?");
    const params = body.params as unknown[] | undefined;
    // Parameters go into DuckDB SQL only: another dialect's quoting is not the lexer's.
    const duckdbSql = (body.language ?? 'sql') === 'sql' && (body.dialect === undefined || sqlDialect(body.dialect) === 'duckdb');
    if (params !== undefined && !duckdbSql) throw new PuffinError('bad_request', "'params' apply to DuckDB SQL only; put the values in the PRQL, Malloy or dialect text");
    const front = await toDuckdbSql({ text: body.sql as string, language: body.language, dialect: body.dialect, tables: malloyTables(principal, body.language) });
    return { statement: await authorizedStatement(principal, bindParams(front.sql, params)), source: front.source };
  }

  /** What a Malloy text compiles against: the tables (and views) this caller may read. */
  function malloyTables(principal: Principal, language: string | undefined) {
    return language === 'malloy' ? catalogTables(withViewTables(catalog), principal.role) : undefined;
  }

  function submitOptions(c: Context, principal: Principal, body: Infer<typeof QUERY_OR_GENERATOR_REQUEST>, format: ResultFormat, source?: QuerySourceText) {
    return { user: principal.id, role: principal.role, format, fragments: body.fragments, timeoutMs: body.timeoutMs, signal: c.req.raw.signal, source };
  }

  const routes: Route[] = [
    route({
      method: 'get', path: '/v1/health', access: 'public',
      summary: 'Liveness, whether the state store is reachable and whether worker processes run (503 with the reason when not).',
      responses: { 200: { description: 'Serving.' }, 503: { description: 'Degraded: `state` or `workers` says why.' } },
      async handle(c) {
        // Each part is 'ok' or the reason it is not; either one failing makes the whole 503, so
        // a load balancer stops sending queries that could only fail.
        // Reachable in time, and not emptied since it was seeded (auth.ts StateSeed).
        const stateError = await seed.problem();
        const workers = options.workersHealth?.() ?? 'ok';
        const body = { status: 'ok', version, state: stateError?.message ?? 'ok', workers };
        if (!stateError && workers === 'ok') return c.json(body);
        // Degraded is also an error answer in the API's form, so clients that read `error` see why.
        const error = stateError ?? new PuffinError('unavailable', `worker processes: ${workers}`);
        return c.json({ ...body, status: 'degraded', error: { code: error.code, message: error.message } }, 503);
      },
    }),
    route({
      method: 'post', path: '/v1/query', access: 'reader', body: QUERY_OR_GENERATOR_REQUEST,
      summary: 'Run a query and answer with its result (format by Accept).',
      responses: { 200: { description: 'The result, or {location} of a large one.', schema: QUERY_RESULT, contentTypes: RESULT_TYPES } },
      async handle(c, { body, principal }) {
        const who = caller(principal);
        const format = negotiateFormat(c.req.header('accept'));
        const { statement, source } = await requestStatement(c, who, body);
        const done: FinishedQuery = await manager.run(statement, submitOptions(c, who, body, format, source));
        c.header(QUERY_ID_HEADER, done.record.id);
        return resultResponse(c, format, done.result, { queryId: done.record.id, shape: done.record.shape, cacheHit: done.record.cacheHit ?? false, stats: done.stats ?? statsOf(done.record) });
      },
    }),
    route({
      method: 'post', path: '/v1/explain', access: 'reader', body: EXPLAIN_OR_GENERATOR_REQUEST,
      summary: 'The distributed plan of a query, without running it.',
      responses: { 200: { description: 'The plan: shape, fragments, scans, reduce step.' } },
      async handle(c, { body, principal }) {
        const who = caller(principal);
        const { statement, source } = await requestStatement(c, who, body);
        if (!body.analyze) return c.json(await manager.explain(statement, { fragments: body.fragments, role: who.role }));
        // EXPLAIN ANALYZE: the query runs like POST /v1/query (recorded, logged, deadline), and
        // the answer is its plan with the measured figures of every stage instead of its rows.
        const done = await manager.run(statement, { ...submitOptions(c, who, body, 'json', source), fragments: body.fragments });
        c.header(QUERY_ID_HEADER, done.record.id);
        const plan = await manager.explain(statement, { fragments: body.fragments, role: who.role });
        return c.json({ queryId: done.record.id, plan, stats: done.stats ?? statsOf(done.record) });
      },
    }),
    route({
      method: 'post', path: '/v1/queries', access: 'reader', body: QUERY_OR_GENERATOR_REQUEST,
      summary: 'Submit a query to run in the background; answers with its id at once.',
      responses: { 202: { description: 'Queued.', schema: QUERY_STATUS } },
      async handle(c, { body, principal }) {
        const who = caller(principal);
        const { statement, source } = await requestStatement(c, who, body);
        const record = await manager.submit(statement, { ...submitOptions(c, who, body, negotiateFormat(c.req.header('accept')), source), signal: undefined });
        c.header('location', `/v1/queries/${record.id}`);
        c.header(QUERY_ID_HEADER, record.id);
        return c.json(statusView(record), 202);
      },
    }),
    route({
      method: 'post', path: '/v1/translate', access: 'reader', body: TRANSLATE_REQUEST,
      summary: 'Translate one SQL statement from a dialect to DuckDB SQL, or from DuckDB SQL to a dialect, without running it.',
      responses: { 200: { description: 'The translated statement.', schema: TRANSLATION }, 400: { description: 'Text that does not parse in `from`, or a construct that cannot be translated with its meaning (named).', schema: ERROR_RESPONSE } },
      async handle(c, { body }) {
        const from = sqlDialect(body.from, 'from');
        const to = sqlDialect(body.to ?? 'duckdb', 'to');
        return c.json({ sql: await translateSql(body.sql, from, to), from, to });
      },
    }),
    route({
      method: 'post', path: '/v1/parse', access: 'reader', body: PARSE_REQUEST,
      summary: "DuckDB's JSON AST of one SELECT statement (json_serialize_sql), without running it; PRQL, Malloy and other dialects are turned into DuckDB SQL first.",
      responses: { 200: { description: '{sql, ast}: the DuckDB SQL parsed and its AST.' }, 400: { description: 'A syntax error (with its position), or not one SELECT statement.', schema: ERROR_RESPONSE } },
      async handle(c, { body, principal }) {
        const front = await toDuckdbSql({ text: body.sql, language: body.language, dialect: body.dialect, tables: malloyTables(caller(principal), body.language) });
        return c.json({ sql: front.sql, ast: await manager.parse(front.sql) });
      },
    }),
    route({
      method: 'post', path: '/v1/format', access: 'reader', body: FORMAT_REQUEST,
      summary: 'SQL printed back from a statement\'s AST (json_deserialize_sql), laid out on several lines; nothing runs.',
      responses: { 200: { description: '{sql}.' }, 400: { description: 'Not an AST DuckDB can print as one SELECT statement.', schema: ERROR_RESPONSE } },
      async handle(c, { body }) {
        return c.json({ sql: await manager.format(body.ast, body.pretty ?? true) });
      },
    }),
    route({
      method: 'get', path: '/v1/queries', access: 'reader', query: LIST_QUERIES_PARAMS,
      summary: "Recent queries, most recent first (an admin sees everyone's).",
      responses: { 200: { description: 'Queries.' } },
      async handle(c, { query, principal }) {
        const who = caller(principal);
        const records = await manager.list({ limit: query.limit, status: query.status });
        return c.json({ queries: records.filter((r) => r.user === who.id || hasRole(who, 'admin')).map(statusView) });
      },
    }),
    route({
      method: 'get', path: '/v1/queries/{id}', access: 'reader',
      summary: 'Status and progress of a query.',
      responses: { 200: { description: 'The query.', schema: QUERY_STATUS }, 400: BAD_QUERY_ID, 404: { description: 'No such query.', schema: ERROR_RESPONSE } },
      async handle(c, { params, principal }) {
        return c.json(statusView(await ownQuery(c, caller(principal), params.id)));
      },
    }),
    route({
      method: 'get', path: '/v1/queries/{id}/result', access: 'reader', query: RESULT_PARAMS,
      summary: 'The result of a finished query, large ones included, streamed in the format asked for (?format=, else Accept): JSON paged by offset and limit, CSV, an Arrow IPC stream (batch by batch) or Parquet.',
      responses: {
        200: { description: 'The result. JSON: {queryId, shape, cacheHit, columns, rowCount, offset, limit, next, rows}; `next` is the path of the following page, or null. The x-puffindb-row-count header holds the whole result\'s row count.', schema: RESULT_PAGE, contentTypes: [...RESULT_TYPES, PARQUET_TYPE] },
        400: BAD_QUERY_ID,
        404: { description: 'No such query, or its result expired.', schema: ERROR_RESPONSE },
        409: { description: 'The query is still running, failed, or was cancelled.', schema: ERROR_RESPONSE },
        416: { description: 'format=parquet with a Range outside the stored result (Content-Range: bytes */size). A stored Parquet result answers one range (bytes=a-b, a-, -n) with 206 and Content-Range.', schema: ERROR_RESPONSE },
      },
      async handle(c, { params, principal, query }) {
        const format = fetchFormat(query.format, c.req.header('accept'));
        const record = await ownQuery(c, caller(principal), params.id);
        const kept = await manager.result(record.id);
        const response = await fetchedResult(manager.resultReader, kept, { queryId: record.id, format, offset: query.offset, limit: query.limit, envelope: { queryId: record.id, shape: record.shape, cacheHit: record.cacheHit ?? false }, range: c.req.header('range') });
        response.headers.set(QUERY_ID_HEADER, record.id);
        return response;
      },
    }),
    route({
      method: 'delete', path: '/v1/queries/{id}', access: 'reader',
      summary: 'Cancel a queued or running query: pending fragments are not started, running ones are abandoned.',
      responses: { 200: { description: 'The cancelled query.', schema: QUERY_STATUS }, 400: BAD_QUERY_ID, 409: { description: 'The query already finished.', schema: ERROR_RESPONSE } },
      async handle(c, { params, principal }) {
        const who = caller(principal);
        const record = await ownQuery(c, who, params.id);
        return c.json(statusView(await manager.cancel(record.id, `cancelled by key '${who.name}'`)));
      },
    }),
    route({
      method: 'get', path: '/v1/tables', access: 'reader',
      summary: 'Tables with their columns, snapshot, file count, rows and size.',
      responses: { 200: { description: 'Tables.' } },
      async handle(c) {
        const tables: TableSummary[] = [];
        for (const name of await catalog.listTables()) {
          const t = await catalog.getTable(name);
          if (t) tables.push(tableSummary(t));
        }
        return c.json({ tables });
      },
    }),
    route({
      method: 'get', path: '/v1/tables/{name}', access: 'reader',
      summary: 'One table: schema, snapshot, file count, rows and size.',
      responses: { 200: { description: 'The table.', schema: TABLE }, 404: { description: 'No such table.', schema: ERROR_RESPONSE } },
      async handle(c, { params }) {
        const t = await namedTable(params.name);
        return c.json(tableSummary(t));
      },
    }),
    route({
      method: 'get', path: '/v1/tables/{name}/files', access: 'reader',
      summary: "A table's data files at its current snapshot: URI, size, rows, partition values (the web console's table page). puffindb.query_log's need an admin key, as its rows do.",
      responses: { 200: { description: 'The files.', schema: TABLE_FILES }, 403: { description: 'An admin-only table, and not an admin key.', schema: ERROR_RESPONSE }, 404: { description: 'No such table.', schema: ERROR_RESPONSE } },
      async handle(c, { params, principal }) {
        const t = await namedTable(params.name);
        if (t.adminOnly) requireRole(caller(principal), 'admin', `the files of ${t.name}`);
        return c.json({
          name: t.name,
          kind: t.kind,
          snapshotId: t.snapshotId,
          files: t.files.map((f) => ({ uri: f.uri, sizeBytes: f.sizeBytes, rowCount: f.rowCount, ...(f.partitionValues ? { partitionValues: f.partitionValues } : {}) })),
        });
      },
    }),
    route({
      method: 'get', path: '/v1/logs', access: 'admin', query: LOGS_PARAMS,
      summary: 'Query log entries not yet flushed to the lake (older ones: SELECT ... FROM puffindb.query_log).',
      responses: { 200: { description: 'Entries, oldest first, and the cursor of the next page.' } },
      async handle(c, { query }) {
        const page = await state.readLog(query.cursor ?? null, query.limit ?? 100);
        return c.json({ entries: page.items, cursor: page.cursor, flushedTo: `${settings.warehouse}${QUERY_LOG_PREFIX}`, table: 'puffindb.query_log' });
      },
    }),
    route({
      method: 'post', path: '/v1/keys', access: 'admin', body: KEY_REQUEST,
      summary: 'Create an API key; its secret is in this response only.',
      responses: { 201: { description: 'The key, with its secret.', schema: API_KEY } },
      async handle(c, { body }) {
        const { record, secret } = await createApiKey(state, body.name, body.role);
        return c.json({ id: record.id, name: record.name, role: record.role, createdAt: record.createdAt, key: secret }, 201);
      },
    }),
    route({
      method: 'get', path: '/v1/keys', access: 'admin',
      summary: 'API keys (never their secrets or hashes).',
      responses: { 200: { description: 'Keys.' } },
      async handle(c) {
        const keys = await state.listApiKeys();
        return c.json({ keys: keys.map((k) => ({ id: k.id, name: k.name, role: k.role, createdAt: k.createdAt })) });
      },
    }),
    route({
      method: 'delete', path: '/v1/keys/{id}', access: 'admin',
      summary: 'Delete an API key; it stops working at once.',
      responses: { 200: { description: 'Deleted.' }, 400: { description: 'Not an API key id.', schema: ERROR_RESPONSE }, 404: { description: 'No such key.', schema: ERROR_RESPONSE } },
      async handle(c, { params }) {
        if (!KEY_ID.test(params.id)) throw new PuffinError('bad_request', `key id ${shown(params.id)} is not an API key id (letters, digits, '_' and '-')`);
        if (!(await state.deleteApiKey(params.id))) throw new PuffinError('not_found', `no API key with id '${params.id}'`);
        return c.json({ deleted: params.id });
      },
    }),
    route({
      method: 'get', path: '/v1/config', access: 'admin',
      summary: 'Settings in effect (secrets left out).',
      responses: { 200: { description: 'Each setting: its environment variable, value and meaning.' } },
      handle: (c) => c.json({ version, settings: publicConfig(settings) }),
    }),
    // Remote query generators: GET /v1/generators, POST (admin), DELETE /v1/generators/{name} (admin).
    ...generatorRoutes(generators),
    // Remote instances: GET /v1/remotes, POST, DELETE /v1/remotes/{name} (all admin).
    ...remoteRoutes(options.remotes ?? openRemoteRegistry(settings, state), [...namesTaken(catalog), ...(options.remoteNamesTaken ?? [])]),
    // External catalogs (admin): GET /v1/catalogs, POST /v1/catalogs, DELETE /v1/catalogs/{name}.
    ...catalogRoutes(() => warehouseCatalogOf(catalog)?.external),
    route({
      method: 'get', path: '/v1/openapi.json', access: 'reader',
      summary: 'This document.',
      responses: { 200: { description: 'OpenAPI 3.1.' } },
      handle: (c) => c.json(openApiDocument(routes, version)),
    }),
  ];

  const app = new Hono<ApiEnv>();
  app.onError((err, c) => errorResponse(c, err));
  app.notFound((c) => c.json(new PuffinError('not_found', `no route ${c.req.method} ${c.req.path}; GET /v1/openapi.json lists them`).toJSON(), 404));
  app.use('*', async (c, next) => {
    checkClient(c, allowed);
    await next();
  });
  app.use('/v1/*', bodyLimit({
    maxSize: maxBodyBytes,
    onError: (c) => c.json(new PuffinError('payload_too_large', `the request body is over ${maxBodyBytes} bytes`).toJSON(), 413),
  }));
  const publicPaths = new Set(routes.filter((r) => r.access === 'public').map((r) => r.path));
  app.use('/v1/*', async (c, next) => {
    if (publicPaths.has(c.req.path)) return next();
    const principal = await login(c);
    limiter.take(principal.id);
    c.set('principal', principal);
    await next();
  });

  if (options.iceberg) {
    app.use('/iceberg/*', bodyLimit({
      maxSize: maxBodyBytes,
      onError: (c) => icebergErrorResponse(c, new PuffinError('payload_too_large', `the request body is over ${maxBodyBytes} bytes`)),
    }));
    app.use('/iceberg/*', async (c, next) => {
      try {
        const principal = await login(c);
        limiter.take(principal.id);
        requireRole(principal, icebergRole(c.req.method), `${c.req.method} ${c.req.path}`);
        c.set('principal', principal);
        checkIcebergUrl(c.req.url);
        // Bad JSON is refused here, at the edge, for every Iceberg route (the catalog parses after).
        if (c.req.method !== 'GET' && c.req.method !== 'HEAD') checkJsonDepth(await c.req.text());
      } catch (err) {
        return icebergErrorResponse(c, err);
      }
      await next();
    });
    app.route('/iceberg', createIcebergRestApp(options.iceberg));
  }

  mountConsole(app); // the web console's static pages (runtime/api/console.ts)
  for (const r of routes) {
    app.on(r.method.toUpperCase(), honoPath(r.path), async (c) => {
      const principal: Principal | undefined = c.get('principal');
      if (r.access !== 'public') requireRole(caller(principal), r.access, `${r.method.toUpperCase()} ${r.path}`);
      const body = r.body ? validateBody(r.body, await readJson(c)) : undefined;
      const query = validateQuery(r.query ?? { type: 'object', properties: {}, required: [] }, c.req.query());
      return r.handle(c, { body, query, principal, params: c.req.param() as Record<string, string> });
    });
  }
  return app;
}

/**
 * Statistics as the record knows them, for answers without the executor's own (a cache hit,
 * where nothing ran, or a query run by a coordinator elsewhere): timings split unknown.
 */
function statsOf(record: QueryRecord): QueryStats {
  const totalMs = (record.finishedAt ?? Date.now()) - record.submittedAt;
  const { fragmentsTotal, bytesScanned } = record.progress;
  return { fragments: fragmentsTotal, retries: 0, bytesScanned, bytesShuffled: 0, planMs: 0, executeMs: 0, reduceMs: 0, totalMs, ...(record.singleNodeBytes !== undefined ? { singleNodeBytes: record.singleNodeBytes } : {}) };
}
