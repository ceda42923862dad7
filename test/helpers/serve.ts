// A real `puffindb serve` for attack tests: the CLI started as a child process on a free
// loopback port, over its own warehouse directory (optionally with the small TPC-H demo
// data), with a chosen admin key. Tests talk to it over HTTP like any client would, and
// can kill it, restart it on the same home, or look at its worker processes.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './redis-server.ts';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
const CLI = join(ROOT, 'bin', 'puffindb.js');
const START_TIMEOUT_MS = 60_000;

export const SERVE_ADMIN_KEY = 'serve-test-admin-key-0123456789';

export interface ServeOptions {
  /** Write the TPC-H demo data at this scale first (e.g. 0.01). Default: no data. */
  demoScale?: number;
  /** Extra environment (PUFFINDB_* settings, REDIS_URL, ...). */
  env?: Record<string, string>;
  /** Use this home instead of a fresh temporary one (kept on close). */
  home?: string;
  /** Extra `puffindb serve` arguments (e.g. ['--pg-port', '5433']). */
  args?: string[];
}

export interface RealServer {
  url: string;
  port: number;
  home: string;
  adminKey: string;
  /** Everything the server printed on stderr so far. */
  log(): string;
  /** The server process id. */
  pid(): number;
  /** Process ids of the server's worker processes (its direct children). */
  workerPids(): Promise<number[]>;
  /** An HTTP call: a string body is sent as is, anything else as JSON. */
  call(method: string, path: string, options?: { key?: string; body?: unknown; headers?: Record<string, string>; signal?: AbortSignal }): Promise<Response>;
  /** Run SQL through POST /v1/query with a key (default: the admin key). */
  query(sql: string, key?: string, extra?: Record<string, unknown>): Promise<Response>;
  /** SIGKILL the server (no cleanup runs), as a crash would. */
  kill(): Promise<void>;
  /** Start the server again on the same home and port. */
  restart(): Promise<void>;
  /** Stop for good; removes the home unless it was given. */
  close(): Promise<void>;
}

/** Run the `puffindb` CLI once with a home and environment; resolves with its stdout. */
export async function runCli(args: string[], home: string, env: Record<string, string> = {}): Promise<string> {
  const { stdout } = await run(process.execPath, [CLI, ...args], { env: { ...process.env, PUFFINDB_HOME: home, ...env }, maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

/** Settings that do not change what `puffindb demo` writes. */
const DEMO_NEUTRAL = /^PUFFINDB_(WORKERS|THREADS|PG_.*|API_.*|ADMIN_KEY)$/;

/**
 * The TPC-H demo data in `home`, as `puffindb demo --scale` writes it. Most attack tests
 * start a server over the same small demo, so the first writes it once per version of the
 * runtime's code into a shared directory (renamed into place whole, so a concurrent test
 * never sees half of it) and every later one copies it, rewriting the home's path in the
 * catalog's registrations (they name files by absolute path). Settings that could change
 * the demo (another warehouse, Redis) write it afresh.
 */
async function writeDemo(home: string, scale: number, env: Record<string, string>): Promise<void> {
  if (!Object.keys(env).every((k) => DEMO_NEUTRAL.test(k))) {
    await runCli(['demo', '--scale', String(scale)], home, env);
    return;
  }
  const cache = join(tmpdir(), `puffindb-test-demo-${scale}-${runtimeHash()}`);
  if (!existsSync(cache)) {
    const building = `${cache}.${process.pid}-${Date.now()}`;
    await runCli(['demo', '--scale', String(scale)], building, env);
    writeFileSync(join(building, 'demo-written-in'), building);
    try {
      renameSync(building, cache);
    } catch {
      await rm(building, { recursive: true, force: true }); // another test got there first
    }
  }
  cpSync(cache, home, { recursive: true });
  const writtenIn = readFileSync(join(cache, 'demo-written-in'), 'utf8');
  const jsonFiles = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? jsonFiles(join(dir, e.name)) : e.name.endsWith('.json') ? [join(dir, e.name)] : []));
  for (const file of jsonFiles(join(home, 'catalog'))) writeFileSync(file, readFileSync(file, 'utf8').split(writtenIn).join(home));
}

let hashed: string | undefined;
/** A hash of the runtime's source, so a demo written by other code is never reused. */
function runtimeHash(): string {
  if (hashed) return hashed;
  const h = createHash('sha256');
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(dir, e.name);
      if (e.isDirectory()) walk(path);
      else if (e.name.endsWith('.ts')) h.update(path).update(readFileSync(path));
    }
  };
  walk(join(ROOT, 'runtime'));
  return (hashed = h.digest('hex').slice(0, 16));
}

export async function startServe(options: ServeOptions = {}): Promise<RealServer> {
  const home = options.home ?? (await mkdtemp(join(tmpdir(), 'puffindb-serve-')));
  // One worker process: an attack test needs the pool, rarely two of its children (those
  // that do ask for PUFFINDB_WORKERS=2); every start and restart then starts one fewer.
  const env = { PUFFINDB_WORKERS: '1', PUFFINDB_THREADS: '2', ...options.env };
  if (options.demoScale !== undefined) await writeDemo(home, options.demoScale, env);
  const port = await freePort();
  let child: ChildProcess | undefined;
  let stderr = '';

  const launch = async (): Promise<void> => {
    stderr = '';
    const proc = spawn(process.execPath, [CLI, 'serve', '--port', String(port), ...(options.args ?? [])], {
      env: { ...process.env, PUFFINDB_HOME: home, PUFFINDB_ADMIN_KEY: SERVE_ADMIN_KEY, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child = proc;
    await new Promise<void>((resolveStart, reject) => {
      const timer = setTimeout(() => reject(new Error(`puffindb serve did not start in ${START_TIMEOUT_MS} ms:\n${stderr}`)), START_TIMEOUT_MS);
      proc.stderr!.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        if (stderr.includes('PuffinDB is serving')) {
          clearTimeout(timer);
          resolveStart();
        }
      });
      proc.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`puffindb serve exited (${code ?? signal}) before serving:\n${stderr}`));
      });
    });
    proc.removeAllListeners('exit');
  };

  const stopChild = async (signal: NodeJS.Signals): Promise<void> => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise<void>((done) => {
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
      }, 10_000);
      proc.once('exit', () => {
        clearTimeout(timer);
        done();
      });
      proc.kill(signal);
    });
  };

  await launch();
  const url = `http://127.0.0.1:${port}`;
  const server: RealServer = {
    url,
    port,
    home,
    adminKey: SERVE_ADMIN_KEY,
    log: () => stderr,
    pid: () => child?.pid ?? -1,
    async workerPids() {
      const pid = child?.pid;
      if (!pid) return [];
      try {
        const { stdout } = await run('pgrep', ['-P', String(pid)]);
        return stdout.split('\n').filter(Boolean).map(Number);
      } catch {
        return []; // pgrep exits 1 when there is no child
      }
    },
    async call(method, path, opts = {}) {
      const headers: Record<string, string> = { ...opts.headers };
      if (opts.key) headers.authorization = `Bearer ${opts.key}`;
      let body: string | undefined;
      if (opts.body !== undefined) {
        body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
        headers['content-type'] ??= 'application/json';
      }
      return fetch(`${url}${path}`, { method, headers, body, signal: opts.signal ?? AbortSignal.timeout(120_000) });
    },
    query(sql, key = SERVE_ADMIN_KEY, extra = {}) {
      return server.call('POST', '/v1/query', { key, body: { sql, ...extra } });
    },
    kill: () => stopChild('SIGKILL'),
    async restart() {
      await stopChild('SIGTERM');
      await launch();
    },
    async close() {
      await stopChild('SIGTERM');
      if (!options.home) await rm(home, { recursive: true, force: true });
    },
  };
  return server;
}

/** Make an API key of a role on a running server; returns its secret. */
export async function serveKey(server: RealServer, role: 'reader' | 'writer' | 'admin', name = `${role} key`): Promise<string> {
  const res = await server.call('POST', '/v1/keys', { key: server.adminKey, body: { name, role } });
  if (res.status !== 201) throw new Error(`cannot create a ${role} key: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { key: string }).key;
}

/** The `{error: {code, message}}` body of a refusal, checking its status. */
export async function refusal(res: Response): Promise<{ status: number; code: string; message: string }> {
  const text = await res.text();
  let body: { error?: { code?: string; message?: string } };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    throw new Error(`refusal is not JSON (${res.status}): ${text.slice(0, 300)}`);
  }
  return { status: res.status, code: String(body.error?.code ?? ''), message: String(body.error?.message ?? '') };
}
