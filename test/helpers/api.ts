// Calling the API app in tests: bearer keys, JSON bodies, adapter env (client address),
// and reading the `{error: {code, message}}` body of a refusal.

import assert from 'node:assert/strict';
import { createApp, type ApiApp } from '../../runtime/api/app.ts';
import { bootstrapAdminKey } from '../../runtime/api/auth.ts';
import type { Settings } from '../../runtime/settings.ts';
import { controlFixture, type ControlFixture } from './control-plane.ts';

export const ADMIN_KEY = 'test-admin-key-0123456789';

export interface CallOptions {
  key?: string;
  /** A string is sent as is; anything else as JSON. */
  body?: unknown;
  headers?: Record<string, string>;
  /** What the adapter passes as env, e.g. { incoming: { socket: { remoteAddress } } }. */
  env?: unknown;
}

export type Caller = (method: string, path: string, options?: CallOptions) => Promise<Response>;

export function caller(app: ApiApp): Caller {
  return async (method, path, options = {}) => {
    const headers: Record<string, string> = { ...options.headers };
    if (options.key) headers.authorization = `Bearer ${options.key}`;
    let body: string | undefined;
    if (options.body !== undefined) {
      body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
      headers['content-type'] ??= 'application/json';
    }
    return app.request(path, { method, body, headers }, options.env as never);
  };
}

/** The app over a fixture's control plane, with ADMIN_KEY as its bootstrap admin key. */
export async function appFor(f: ControlFixture, settings: Partial<Settings> = {}, maxBodyBytes = 4096): Promise<ApiApp> {
  await bootstrapAdminKey(f.state, ADMIN_KEY);
  // Every in-process request comes from one unknown address: the failed-login throttle is off
  // unless a test turns it on (test/runtime/api/login-throttle.test.ts, test/security/).
  return createApp({ manager: f.plane.manager, state: f.state, catalog: f.plane.catalog, settings: { ...f.settings, apiLoginFailureBurst: 0, ...settings }, maxBodyBytes, adminKey: ADMIN_KEY });
}

export async function errorOf(res: Response, status?: number): Promise<{ code: string; message: string }> {
  const text = await res.text();
  if (status !== undefined) assert.equal(res.status, status, text);
  const body = JSON.parse(text) as { error: { code: string; message: string } };
  assert.ok(body.error?.code && body.error?.message, `error body has code and message: ${text}`);
  return body.error;
}

/** Make a key through the API and return its secret. */
export async function newKey(call: Caller, role: 'reader' | 'writer' | 'admin', name = `${role} key`): Promise<{ id: string; key: string }> {
  const res = await call('POST', '/v1/keys', { key: ADMIN_KEY, body: { name, role } });
  assert.equal(res.status, 201);
  return (await res.json()) as { id: string; key: string };
}

/** A control fixture and a caller of its app, for a test file's `before`. */
export async function apiFixture(env: Record<string, string> = {}): Promise<{ f: ControlFixture; call: Caller }> {
  const f = await controlFixture(env);
  return { f, call: caller(await appFor(f)) };
}
