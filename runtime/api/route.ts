// One API route as data: method, path, who may call it, the schemas of its input, its
// responses and its handler. The app registers routes from this table and the OpenAPI
// document is generated from the same table.

import type { Context } from 'hono';
import type { ApiKeyRole } from '../state/state-store.ts';
import type { Principal } from './auth.ts';
import type { Infer, ObjectSchema, Schema } from './schema.ts';

export interface ResponseSpec {
  description: string;
  schema?: Schema;
  /** Content types of the body; default application/json when a schema is given. */
  contentTypes?: readonly string[];
}

export interface RouteInput<B, Q> {
  body: B;
  query: Q;
  /** Absent only on public routes. */
  principal: Principal | undefined;
  /** Path parameters, e.g. { id } for /v1/queries/{id}. */
  params: Record<string, string>;
}

export interface Route {
  method: 'get' | 'post' | 'delete';
  /** OpenAPI form: /v1/queries/{id}. */
  path: string;
  summary: string;
  /** Lowest role that may call the route, or 'public' (no key needed). */
  access: 'public' | ApiKeyRole;
  body?: ObjectSchema;
  query?: ObjectSchema;
  responses: Readonly<Record<number, ResponseSpec>>;
  handle(c: Context, input: RouteInput<unknown, unknown>): Response | Promise<Response>;
}

type InferOr<S, Fallback> = S extends ObjectSchema ? Infer<S> : Fallback;

/** A route whose handler sees its validated body and query typed from their schemas. */
export function route<B extends ObjectSchema | undefined = undefined, Q extends ObjectSchema | undefined = undefined>(
  spec: Omit<Route, 'handle' | 'body' | 'query'> & {
    body?: B;
    query?: Q;
    handle(c: Context, input: RouteInput<InferOr<B, undefined>, InferOr<Q, Record<string, never>>>): Response | Promise<Response>;
  },
): Route {
  return spec as unknown as Route;
}

/** Hono's form of an OpenAPI path: /v1/queries/{id} -> /v1/queries/:id. */
export function honoPath(path: string): string {
  return path.replace(/\{(\w+)\}/g, ':$1');
}
