// The web console: plain static files (runtime/api/console/: HTML, CSS, ES modules; no build
// step, nothing fetched from elsewhere) served at /console/, and / sends a browser there.
// The pages carry no data: the browser asks for it through the public API with the key the
// user signed in with (kept in sessionStorage, sent as `Authorization: Bearer`). Every page
// is answered with a strict Content-Security-Policy (no inline script or style, no framing,
// connections to this origin only) and nosniff.
// A table's files come from GET /v1/tables/{name}/files, a route of the API like the others
// (runtime/api/app.ts).

import { readFile } from 'node:fs/promises';
import type { Context, Hono } from 'hono';
import type { Principal } from './auth.ts';

/** The files the console is made of, and their types: nothing else under /console/ is served. */
const FILES: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'console.css': 'text/css; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'api.js': 'text/javascript; charset=utf-8',
  'dom.js': 'text/javascript; charset=utf-8',
  'plan.js': 'text/javascript; charset=utf-8',
  'grid.js': 'text/javascript; charset=utf-8',
  'favicon.svg': 'image/svg+xml',
};

const DIRECTORY = new URL('./console/', import.meta.url);

export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Headers on every console response (the pages and their redirects). */
function secure(c: Context): void {
  c.header('content-security-policy', CONSOLE_CSP);
  c.header('x-content-type-options', 'nosniff');
  c.header('x-frame-options', 'DENY');
  c.header('referrer-policy', 'no-referrer');
  c.header('cross-origin-opener-policy', 'same-origin');
  c.header('cache-control', 'no-cache');
}

async function serveFile(c: Context, name: string): Promise<Response> {
  secure(c);
  const type = FILES[name];
  if (!type) return c.text('not found', 404);
  let body: Buffer;
  try {
    body = await readFile(new URL(name, DIRECTORY));
  } catch {
    // Bundles without the console's files (the admin Lambda) answer 404, not 500.
    return c.text('the web console is not part of this build', 404);
  }
  return c.body(new Uint8Array(body), 200, { 'content-type': type });
}

/** Mount the console's pages on the API app. */
export function mountConsole(app: Hono<{ Variables: { principal: Principal } }>): void {
  app.get('/', (c) => {
    secure(c);
    return c.redirect('/console/', 302);
  });
  app.get('/console', (c) => {
    secure(c);
    return c.redirect('/console/', 301);
  });
  app.get('/console/', (c) => serveFile(c, 'index.html'));
  app.get('/console/:file', (c) => serveFile(c, c.req.param('file')));
}
