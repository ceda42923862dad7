// GET /v1/openapi.json: the OpenAPI 3.1 document of the route table, with request schemas
// taken from the very objects that validate requests.

import { ERROR_RESPONSE } from './contract.ts';
import type { Route } from './route.ts';
import { toJsonSchema } from './schema.ts';

const COMMON_ERRORS: Record<number, string> = {
  400: 'Bad input: malformed JSON, a missing or wrong-typed field, invalid SQL.',
  401: 'No API key, or not a valid one.',
  403: "The key's role does not allow this, or the client address is not allowed.",
  413: 'The request body is too large.',
  429: 'The key is over its rate limit; see Retry-After.',
  503: 'A dependency (the state store) is unreachable.',
};

function responsesOf(route: Route): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [status, spec] of Object.entries(route.responses)) {
    const types = spec.contentTypes ?? (spec.schema ? ['application/json'] : []);
    out[status] = {
      description: spec.description,
      ...(types.length ? { content: Object.fromEntries(types.map((t) => [t, t === 'application/json' && spec.schema ? { schema: toJsonSchema(spec.schema) } : {}])) } : {}),
    };
  }
  const errors = route.access === 'public' ? [503] : Object.keys(COMMON_ERRORS).map(Number);
  for (const status of errors) {
    if (route.body === undefined && status === 413) continue;
    out[String(status)] ??= { description: COMMON_ERRORS[status], content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
  }
  return out;
}

function parametersOf(route: Route): unknown[] {
  const path = [...route.path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
  const query = Object.entries(route.query?.properties ?? {}).map(([name, schema]) => ({
    name,
    in: 'query',
    required: route.query?.required.includes(name) ?? false,
    schema: toJsonSchema(schema),
  }));
  return [...path, ...query];
}

export function openApiDocument(routes: readonly Route[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const parameters = parametersOf(route);
    (paths[route.path] ??= {})[route.method] = {
      summary: route.summary,
      'x-puffindb-role': route.access,
      ...(route.access === 'public' ? { security: [] } : {}),
      ...(parameters.length ? { parameters } : {}),
      ...(route.body ? { requestBody: { required: true, content: { 'application/json': { schema: toJsonSchema(route.body) } } } } : {}),
      responses: responsesOf(route),
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'PuffinDB admin API',
      version,
      description: 'SQL over the lakehouse, query lifecycle, tables, query logs and API keys. Every route except /v1/health needs `Authorization: Bearer <key>`.',
    },
    security: [{ bearer: [] }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An API key (POST /v1/keys, or PUFFINDB_ADMIN_KEY).' } },
      schemas: { Error: toJsonSchema(ERROR_RESPONSE) },
    },
    paths,
  };
}
