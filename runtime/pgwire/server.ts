// The PostgreSQL wire-protocol listener of `puffindb serve --pg-port N`: loopback unless a
// host is given, a bounded number of connections, TLS offered (SSLRequest answered 'S')
// only when a certificate and key are configured (PUFFINDB_PG_TLS_CERT/KEY).

import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, isIP, type BlockList, type Server, type Socket } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { StateSeed } from '../api/auth.ts';
import { allowedClients } from '../api/client-access.ts';
import { LoginThrottle } from '../api/login-throttle.ts';
import { RateLimiter } from '../api/rate-limit.ts';
import type { Catalog } from '../catalog/types.ts';
import type { QueryManager } from '../exec/query-manager.ts';
import type { Settings } from '../settings.ts';
import type { StateStore } from '../state/state-store.ts';
import { errorResponse } from './codec.ts';
import { PgAuthenticator } from './auth.ts';
import { CatalogMirror } from './catalog.ts';
import { Session } from './session.ts';
import { TOO_MANY_CONNECTIONS } from './sqlstate.ts';

export interface PgServerOptions {
  manager: QueryManager;
  state: StateStore;
  catalog: Catalog;
  settings: Settings;
  seed?: StateSeed;
  port: number;
  host?: string;
  maxConnections?: number;
  maxMessageBytes?: number;
  startupTimeoutMs?: number;
  stallTimeoutMs?: number;
}

export interface RunningPgServer {
  port: number;
  host: string;
  close(): Promise<void>;
}

function tlsContext(settings: Settings): SecureContext | undefined {
  if (!settings.pgTlsCert && !settings.pgTlsKey) return undefined;
  if (!settings.pgTlsCert || !settings.pgTlsKey) throw new Error('PUFFINDB_PG_TLS_CERT and PUFFINDB_PG_TLS_KEY must be set together');
  return createSecureContext({ cert: readFileSync(settings.pgTlsCert), key: readFileSync(settings.pgTlsKey) });
}

/** PUFFINDB_API_ALLOWED_CIDRS applies to the wire protocol too. */
function clientAllowed(allowed: BlockList | undefined, socket: Socket): boolean {
  if (!allowed) return true;
  const address = socket.remoteAddress;
  const family = address ? isIP(address) : 0;
  return !!address && !!family && allowed.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

export async function startPgServer(options: PgServerOptions): Promise<RunningPgServer> {
  const { settings } = options;
  const host = options.host ?? '127.0.0.1';
  const sessions = new Map<number, Session>();
  const mirror = new CatalogMirror(options.catalog);
  const logins = new LoginThrottle({ burst: settings.apiLoginFailureBurst ?? 20, perMinute: settings.apiLoginFailuresPerMinute ?? 60 });
  const limiter = new RateLimiter(settings.apiRatePerSecond, settings.apiRateBurst);
  const tls = tlsContext(settings);
  const allowed = allowedClients(settings.apiAllowedCidrs);
  const maxConnections = options.maxConnections ?? 128;
  const open = new Set<Socket>();
  const usedPids = new Set<number>();
  const ctx = {
    manager: options.manager,
    mirror,
    auth: new PgAuthenticator(options.state, logins, options.seed),
    limiter,
    tls,
    maxMessageBytes: options.maxMessageBytes ?? 8 * 1024 * 1024,
    startupTimeoutMs: options.startupTimeoutMs ?? 10_000,
    stallTimeoutMs: options.stallTimeoutMs ?? 30_000,
    maxPrepared: 1000,
    sessions,
    newBackendKey() {
      let pid = randomInt(1, 2 ** 31 - 1);
      for (let i = 0; i < 16 && (usedPids.has(pid) || sessions.has(pid)); i++) pid = randomInt(1, 2 ** 31 - 1);
      return { pid, secret: randomInt(-(2 ** 31), 2 ** 31 - 1) };
    },
    onError(err: unknown, context: string) {
      console.error(JSON.stringify({ level: 'error', message: context, error: err instanceof Error ? err.message : String(err) }));
    },
  };
  const server: Server = createServer((socket) => {
    socket.setNoDelay(true);
    if (!clientAllowed(allowed, socket)) {
      socket.destroy();
      return;
    }
    if (open.size >= maxConnections) {
      socket.end(errorResponse({ severity: 'FATAL', code: TOO_MANY_CONNECTIONS, message: `sorry, too many clients already (${maxConnections})` }));
      return;
    }
    open.add(socket);
    socket.once('close', () => open.delete(socket));
    try {
      new Session(socket, ctx);
    } catch (err) {
      ctx.onError(err, 'pgwire connection');
      socket.destroy();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => ctx.onError(err, 'pgwire listener'));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return {
    port,
    host,
    async close() {
      for (const s of open) s.destroy();
      await new Promise<void>((done) => server.close(() => done()));
      mirror.close();
    },
  };
}
