// A real redis-server for tests: started on a free loopback port with persistence off, in a
// throwaway directory; it can be stopped and started again on the same port (outage tests).

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestRedis {
  port: number;
  /** redis://127.0.0.1:<port> */
  url: string;
  /** Stop the server (the port stays reserved for start()). */
  stop(): Promise<void>;
  /** Start it again on the same port, empty. */
  start(): Promise<void>;
  /** Freeze the server (SIGSTOP): connections stay open, nothing answers. */
  freeze(): void;
  /** Let a frozen server run again (SIGCONT). */
  thaw(): void;
  /** The redis-server process id (-1 when stopped). */
  pid(): number;
  /** Stop for good and remove its directory. */
  close(): Promise<void>;
}

export interface TestRedisOptions {
  /** Extra redis-server arguments, e.g. ['--requirepass', 'token'] or TLS settings. */
  args?: string[];
  /** When the server speaks TLS only, its TLS port is the one served (args set '--port 0'). */
  tls?: boolean;
}

const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function startRedisServer(options: TestRedisOptions = {}): Promise<TestRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'puffindb-redis-'));
  let port = await freePort();
  let child: ChildProcess | undefined;

  const launch = async (): Promise<void> => {
    const portArgs = options.tls ? ['--port', '0', '--tls-port', String(port)] : ['--port', String(port)];
    const proc = spawn(
      'redis-server',
      [...portArgs, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning', ...(options.args ?? [])],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child = proc;
    let stderr = '';
    proc.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    const spawnFailed = new Promise<Error>((resolve) => proc.once('error', resolve));
    const started = Date.now();
    while (Date.now() - started < START_TIMEOUT_MS) {
      const early = await Promise.race([exited.then((code) => `exited with code ${code}`), spawnFailed.then((e) => e.message), pause(50).then(() => undefined)]);
      if (early) throw new Error(`redis-server on port ${port} ${early}: ${stderr.trim()}`);
      if (await canConnect(port)) return;
    }
    proc.kill('SIGKILL');
    throw new Error(`redis-server on port ${port} did not accept connections within ${START_TIMEOUT_MS} ms: ${stderr.trim()}`);
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGCONT'); // a frozen server cannot act on SIGTERM
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  };

  // Another process may take the free port between the probe and the launch: try a few.
  for (let attempt = 1; ; attempt++) {
    try {
      await launch();
      break;
    } catch (err) {
      await stop();
      if (attempt >= 3) throw err;
      port = await freePort();
    }
  }

  return {
    port,
    url: `${options.tls ? 'rediss' : 'redis'}://127.0.0.1:${port}`,
    stop,
    start: launch,
    freeze() {
      if (!child?.pid) throw new Error('redis-server is not running');
      process.kill(child.pid, 'SIGSTOP');
    },
    thaw() {
      if (child?.pid) process.kill(child.pid, 'SIGCONT');
    },
    pid: () => child?.pid ?? -1,
    async close() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
