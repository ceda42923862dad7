// The admin Lambda: the API's hono app behind API Gateway (HTTP API, payload v2) or a
// function URL, adapted by hono/aws-lambda. A thin adapter: the app, its state store and
// the query manager are built once per container; queries run on the coordinator Lambda
// when PUFFINDB_COORDINATOR_FUNCTION is set (this function may freeze as soon as it answers).

import { defaultIsContentTypeBinary, handle, type APIGatewayProxyResult, type LambdaContext, type LambdaEvent } from 'hono/aws-lambda';
import { createApp, QUERY_ID_HEADER, type ApiApp } from '../api/app.ts';
import { bootstrapAdminKey, resolveAdminKey } from '../api/auth.ts';
import { openCatalog } from '../catalog/open.ts';
import { Engine } from '../engine/engine.ts';
import { toPuffinError } from '../errors.ts';
import { openControlPlane } from '../exec/control-plane.ts';
import { loadSettings, type Settings } from '../settings.ts';
import { ColdStart, lambdaLogSink, writeLog, type LogSink } from './log.ts';

export type AdminHandler = (event: LambdaEvent, context?: LambdaContext) => Promise<APIGatewayProxyResult>;

const isBinary = (contentType: string) => defaultIsContentTypeBinary(contentType) || contentType.startsWith('application/vnd.apache.arrow');

/** The deployed wiring: catalog under PUFFINDB_HOME, state from REDIS_URL, queries on the coordinator Lambda. */
export async function openAdminApp(settings: Settings): Promise<ApiApp> {
  const catalogEngine = await Engine.create({ threads: 1 });
  const catalog = await openCatalog(settings, catalogEngine);
  const plane = await openControlPlane({ settings, catalog, dispatch: true });
  // A generated key would have to be logged to be of use; in AWS the first key is configured
  // (a Secrets Manager secret named by PUFFINDB_ADMIN_KEY_SECRET_ARN).
  const adminKey = await resolveAdminKey(settings);
  if (adminKey) await bootstrapAdminKey(plane.state, adminKey);
  return createApp({ manager: plane.manager, state: plane.state, catalog: plane.catalog, settings, adminKey });
}

/** A handler over the app `build` makes on the first invocation (retried after a failure). */
export function createAdminHandler(build: () => Promise<ApiApp>, sink: LogSink | undefined = lambdaLogSink()): AdminHandler {
  let ready: Promise<AdminHandler> | undefined;
  const coldStart = new ColdStart();
  return async (event, context) => {
    const started = Date.now();
    const cold = coldStart.take();
    const request = describe(event);
    try {
      ready ??= build().then((app) => handle(app, { isContentTypeBinary: isBinary }) as AdminHandler);
      const adapter = await ready.catch((err: unknown) => {
        ready = undefined;
        throw err;
      });
      const result = await adapter(event, context);
      const queryId = headerOf(result, QUERY_ID_HEADER);
      writeLog(sink, { level: result.statusCode >= 500 ? 'error' : 'info', message: 'request', function: 'admin', ...request, status: result.statusCode, queryId, coldStart: cold, durationMs: Date.now() - started });
      return result;
    } catch (err) {
      // Only the app's construction can land here (the app answers its own errors).
      const e = toPuffinError(err);
      writeLog(sink, { level: 'error', message: 'request', function: 'admin', ...request, status: e.httpStatus, code: e.code, error: e.message, coldStart: cold, durationMs: Date.now() - started });
      return { statusCode: e.httpStatus, headers: { 'content-type': 'application/json' }, body: JSON.stringify(e.toJSON()), isBase64Encoded: false };
    }
  };
}

function describe(event: LambdaEvent): { method?: string; path?: string } {
  const e = event as { requestContext?: { http?: { method?: string; path?: string } }; rawPath?: string; httpMethod?: string; path?: string };
  return { method: e.requestContext?.http?.method ?? e.httpMethod, path: e.rawPath ?? e.path };
}

function headerOf(result: APIGatewayProxyResult, name: string): string | undefined {
  const value = result.headers?.[name] ?? result.multiValueHeaders?.[name];
  return Array.isArray(value) ? value[0] : value;
}

export const handler: AdminHandler = createAdminHandler(() => openAdminApp(loadSettings()));
