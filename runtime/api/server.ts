// Serves the hono app on Node. Binds to loopback unless told otherwise: listening on a
// network is a deliberate choice (--host), even though every route but /v1/health needs a key.

import { serve, type ServerType } from '@hono/node-server';

export interface RunningServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Anything with hono's fetch signature (the app). */
export interface FetchApp {
  fetch(request: Request, env?: unknown): Response | Promise<Response>;
}

export function startServer(app: FetchApp, options: { port: number; host?: string }): Promise<RunningServer> {
  const host = options.host ?? '127.0.0.1';
  return new Promise((resolve, reject) => {
    let server: ServerType;
    try {
      server = serve({ fetch: (request, env) => app.fetch(request, env), port: options.port, hostname: host }, (info) => {
        const shownHost = host.includes(':') ? `[${host}]` : host;
        resolve({
          url: `http://${shownHost}:${info.port}`,
          port: info.port,
          close: () => new Promise((done) => server.close(() => done())),
        });
      });
      server.once('error', reject);
    } catch (err) {
      reject(err);
    }
  });
}
