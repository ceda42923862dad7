// The HTTP API as one hono app: the local server (`puffindb serve`) mounts it on Node and
// the admin Lambda adapts it to API Gateway events. Every route validates its input and
// answers bad input with a 4xx and a JSON error `{error: {code, message}}`.

import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { QueryResult } from '../engine/engine.ts';
import { PuffinError, toPuffinError } from '../errors.ts';
import type { QueryOptions, QueryService } from '../exec/query-service.ts';
import { toCsv, toJsonRows } from './formats.ts';

export interface AppOptions {
  service: QueryService;
  /** Largest accepted request body. Default 1 MiB. */
  maxBodyBytes?: number;
  version?: string;
}

interface QueryRequest {
  sql: string;
  options: QueryOptions;
}

function errorResponse(c: Context, err: unknown): Response {
  const e = toPuffinError(err);
  return c.json(e.toJSON(), e.httpStatus as 400);
}

async function readJson(c: Context): Promise<Record<string, unknown>> {
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    throw new PuffinError('bad_request', 'the request body is not valid JSON');
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new PuffinError('bad_request', 'the request body must be a JSON object');
  return body as Record<string, unknown>;
}

function positiveInt(body: Record<string, unknown>, field: string, max: number): number | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) {
    throw new PuffinError('bad_request', `'${field}' must be an integer from 1 to ${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Validate `{"sql": "...", "fragments"?: n, "timeoutMs"?: n}`. */
export function parseQueryRequest(body: Record<string, unknown>): QueryRequest {
  if (typeof body.sql !== 'string') throw new PuffinError('bad_request', `'sql' is required and must be a string`);
  if (body.sql.trim() === '') throw new PuffinError('bad_request', `'sql' is empty`);
  const known = new Set(['sql', 'fragments', 'timeoutMs']);
  const unknown = Object.keys(body).filter((k) => !known.has(k));
  if (unknown.length) throw new PuffinError('bad_request', `unknown field(s): ${unknown.join(', ')}; expected sql, fragments, timeoutMs`);
  return {
    sql: body.sql,
    options: { fragments: positiveInt(body, 'fragments', 100_000), timeoutMs: positiveInt(body, 'timeoutMs', 3_600_000) },
  };
}

function resultBody(c: Context, result: QueryResult, envelope: Record<string, unknown>): Response {
  if ((c.req.header('accept') ?? '').includes('text/csv')) {
    return c.body(toCsv(result), 200, { 'content-type': 'text/csv; charset=utf-8' });
  }
  // Rows are written by toJsonRows so decimals and big integers stay exact.
  const head = JSON.stringify(envelope).slice(0, -1);
  return c.body(`${head},"columns":${JSON.stringify(result.columns)},"rows":${toJsonRows(result)}}`, 200, { 'content-type': 'application/json; charset=utf-8' });
}

export function createApp(options: AppOptions): Hono {
  const { service } = options;
  const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
  const app = new Hono();

  app.onError((err, c) => errorResponse(c, err));
  app.notFound((c) => c.json(new PuffinError('not_found', `no route ${c.req.method} ${c.req.path}`).toJSON(), 404));
  app.use('/v1/*', bodyLimit({
    maxSize: maxBodyBytes,
    onError: (c) => c.json(new PuffinError('payload_too_large', `the request body is over ${maxBodyBytes} bytes`).toJSON(), 413),
  }));

  app.get('/v1/health', (c) => c.json({ status: 'ok', version: options.version ?? 'dev' }));

  app.post('/v1/query', async (c) => {
    const { sql, options: queryOptions } = parseQueryRequest(await readJson(c));
    const outcome = await service.query(sql, { ...queryOptions, signal: c.req.raw.signal });
    return resultBody(c, outcome, { queryId: outcome.queryId, shape: outcome.plan.shape, stats: outcome.stats });
  });

  app.post('/v1/explain', async (c) => {
    const { sql, options: queryOptions } = parseQueryRequest(await readJson(c));
    return c.json(await service.explain(sql, queryOptions));
  });

  app.get('/v1/tables', async (c) => c.json({ tables: await service.listTables() }));

  return app;
}
