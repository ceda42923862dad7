// A real Postgres server for tests, from Debian's postgresql package: a throwaway cluster
// (initdb in a temporary directory, in memory where there is room; fsync off) on a free loopback port, its socket in that
// directory. Postgres refuses to run as root, so when the tests run as root (CI does) both
// initdb and the server run as the package's `postgres` user (or `nobody` where there is
// none), which is given the directory.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chown, mkdtemp, readdir, readFile, rm, statfs, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './redis-server.ts';

export interface TestPostgres {
  port: number;
  /** The superuser's name. */
  user: string;
  /** postgres://<user>@127.0.0.1:<port>/postgres (no password in it). */
  url: string;
  close(): Promise<void>;
}

export interface TestPostgresOptions {
  /** Require this password on TCP connections (scram-sha-256); none: trust. */
  password?: string;
}

const START_TIMEOUT_MS = 15_000;
const USER = 'puffin';

/** The directory of initdb/postgres: the newest /usr/lib/postgresql/<version>/bin, else PATH's. */
async function binDir(): Promise<string> {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? (await readdir(root)).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  if (versions[0]) return join(root, versions[0], 'bin');
  const found = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (found.status === 0 && existsSync(join(found.stdout.trim(), 'initdb'))) return found.stdout.trim();
  throw new Error("Postgres's initdb was not found (install Debian's postgresql package)");
}

/** Who runs the server: ourselves, unless we are root. */
async function serverAccount(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const passwd = await readFile('/etc/passwd', 'utf8');
  for (const name of ['postgres', 'nobody']) {
    const line = passwd.split('\n').find((l) => l.startsWith(`${name}:`));
    if (line) {
      const [, , uid, gid] = line.split(':');
      return { uid: Number(uid), gid: Number(gid) };
    }
  }
  throw new Error('running as root, and there is no postgres or nobody user to run Postgres as');
}

/**
 * Where the cluster goes: /dev/shm when it has room (initdb writes some 50 MB of small files,
 * several times faster in memory on a busy disk), else the temporary directory.
 */
async function clusterParent(): Promise<string> {
  try {
    const fs = await statfs('/dev/shm');
    if (fs.bavail * fs.bsize >= 512 * 1024 * 1024) return '/dev/shm';
  } catch {
    // no /dev/shm here
  }
  return tmpdir();
}

export async function startPostgresServer(options: TestPostgresOptions = {}): Promise<TestPostgres> {
  const bin = await binDir();
  const account = await serverAccount();
  const dir = await mkdtemp(join(await clusterParent(), 'puffindb-postgres-'));
  const data = join(dir, 'data');
  const as = account ? { uid: account.uid, gid: account.gid } : {};
  if (account) await chown(dir, account.uid, account.gid);
  const env = { ...process.env, LC_ALL: 'C', LANG: 'C' };

  const initArgs = ['-D', data, '-U', USER, '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions'];
  if (options.password !== undefined) {
    const pwfile = join(dir, 'pwfile');
    await writeFile(pwfile, `${options.password}\n`, { mode: 0o600 });
    if (account) await chown(pwfile, account.uid, account.gid);
    initArgs.push('--auth-host=scram-sha-256', `--pwfile=${pwfile}`);
  }
  // Not spawnSync: the caller's event loop goes on (a test file starts this before its other suites run).
  const init = spawn(join(bin, 'initdb'), initArgs, { ...as, env, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  init.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  init.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const status = await new Promise<string | number>((resolve) => {
    init.once('error', (e) => resolve(e.message));
    init.once('exit', (code, signal) => resolve(code ?? signal ?? 'killed'));
  });
  if (status !== 0) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`initdb failed (${status}): ${output.trim().slice(-2000)}`);
  }

  let child: ChildProcess | undefined;
  let port = 0;
  const launch = async (): Promise<void> => {
    port = await freePort();
    const proc = spawn(
      join(bin, 'postgres'),
      ['-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-k', dir, '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'],
      { ...as, env, cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child = proc;
    let stderr = '';
    proc.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<string>((resolve) => proc.once('exit', (code, signal) => resolve(`exited (${code ?? signal})`)));
    const failed = new Promise<string>((resolve) => proc.once('error', (e) => resolve(e.message)));
    const started = Date.now();
    while (Date.now() - started < START_TIMEOUT_MS) {
      const early = await Promise.race([exited, failed, pause(50).then(() => undefined)]);
      if (early) throw new Error(`postgres on port ${port} ${early}: ${stderr.trim().slice(-2000)}`);
      const client = new pg.Client({ host: '127.0.0.1', port, user: USER, database: 'postgres', password: options.password, connectionTimeoutMillis: 1_000 });
      try {
        await client.connect();
        await client.end();
        return;
      } catch {
        await client.end().catch(() => undefined); // still starting up
      }
    }
    throw new Error(`postgres on port ${port} did not accept connections within ${START_TIMEOUT_MS} ms: ${stderr.trim().slice(-2000)}`);
  };
  const stop = async (): Promise<void> => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGINT'); // fast shutdown: disconnect clients, stop
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
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
      if (attempt >= 3) {
        await rm(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }
  return {
    port,
    user: USER,
    url: `postgres://${USER}@127.0.0.1:${port}/postgres`,
    async close() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
