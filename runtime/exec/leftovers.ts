// Crash leftovers: the per-query scratch a process removes when a query ends (write staging,
// partial files, Parquet scratch) stays on disk when the process is killed mid-query. They
// are removed at start-up, but several processes may use one home at once (`puffindb serve`
// beside a `puffindb query`), so an entry is removed only when no live process can own it.
//
// Ownership rule: every process that may create such scratch registers itself under
// <home>/run first (registerProcess), and creates scratch only afterwards, under names that
// are unique per query. So an entry last modified before a live process registered cannot
// be that process's; an entry that every live process postdates is a dead process's
// leftover. Registrations of dead processes (pid gone, or the pid reused by a process that
// started later) are removed too. A pool child orphaned by a killed server exits within
// about a second (pool-child.ts); if cleanup removes a directory it is still writing, only
// its abandoned work is lost.
//
// Data files uploaded to a table's location by a killed write are not scratch: they stay,
// listed by `puffindb table orphans` (only the table's snapshots can tell what is garbage).

import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Settings } from '../settings.ts';

/** Filesystem timestamps can be coarser than Date.now() (and lag it by a tick); be generous. */
const CLOCK_SLACK_MS = 2_000;

interface Registration {
  pid: number;
  /** Date.now() when the process registered, before it created any scratch. */
  registeredAt: number;
  /** The kernel's start time of the process (Linux), so a reused pid is not taken for it. */
  startTime?: string;
  what: string;
}

export interface ProcessRegistration {
  /** The registration file. */
  path: string;
  /** Remove the registration (also done at process exit). */
  release(): void;
}

export interface LeftoverCleanup {
  /** Entries removed (absolute paths). */
  removed: string[];
  /** Bytes they held. */
  bytes: number;
  /** Entries kept because a live process may own them. */
  kept: string[];
  /** Live processes (other than this one) registered in the home. */
  liveProcesses: number;
}

function runDir(home: string): string {
  return join(home, 'run');
}

/** The kernel's start time of a process (field 22 of /proc/<pid>/stat), where there is one. */
function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses; fields resume after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function isAlive(r: Registration): boolean {
  try {
    process.kill(r.pid, 0);
  } catch (err) {
    // EPERM: a process of another user holds the pid; it is alive (and may be ours under sudo).
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const now = processStartTime(r.pid);
  return r.startTime === undefined || now === undefined || now === r.startTime;
}

/**
 * Register this process as a user of the home's scratch directories until it exits (or
 * release() is called). Call it before creating any per-query scratch.
 */
export function registerProcess(home: string, what: string): ProcessRegistration {
  const dir = runDir(home);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${process.pid}.json`);
  const record: Registration = { pid: process.pid, registeredAt: Date.now(), startTime: processStartTime(process.pid), what };
  // Whole or not at all: a reader never sees half a registration.
  const temp = `${path}.tmp`;
  writeFileSync(temp, JSON.stringify(record));
  renameSync(temp, path);
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    process.off('exit', release);
    rmSync(path, { force: true });
  };
  process.on('exit', release);
  return { path, release };
}

/** Live registrations other than this process's; dead ones are removed on the way. */
function otherLiveProcesses(home: string): Registration[] {
  const dir = runDir(home);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const live: Registration[] = [];
  for (const name of names) {
    const path = join(dir, name);
    let record: Registration;
    try {
      record = JSON.parse(readFileSync(path, 'utf8')) as Registration;
    } catch {
      // A temp file of a registration being written, or garbage: a live writer renames its
      // temp file within microseconds, so only a dead one leaves it for long.
      if (name.endsWith('.tmp') && Date.now() - mtimeOf(path) > 60_000) rmSync(path, { force: true });
      continue;
    }
    if (!Number.isInteger(record.pid) || typeof record.registeredAt !== 'number') continue;
    if (record.pid === process.pid) continue;
    if (isAlive(record)) live.push(record);
    else rmSync(path, { force: true });
  }
  return live;
}

function mtimeOf(path: string): number {
  try {
    return lstatSync(path).mtimeMs;
  } catch {
    return Date.now();
  }
}

/**
 * Directories whose every entry is scratch of one query or one write, created under a unique
 * name and removed when it ends. Nothing else (caches, catalog, data) is ever touched.
 */
export function scratchLocations(settings: Settings): string[] {
  const { home, cacheDir } = settings;
  const workerDirs = [cacheDir];
  // Pool children each work in <cacheDir>/pool-<n> (process-pool-invoker.ts).
  try {
    for (const name of readdirSync(cacheDir)) if (/^pool-\d+$/.test(name)) workerDirs.push(join(cacheDir, name));
  } catch {
    // no cache directory yet
  }
  return [
    join(home, 'coordinator', 'staging'), // LocalCluster.write: <queryId>
    join(home, 'coordinator', 'partials'), // Coordinator: <queryId>-<uuid> work directories
    join(home, 'control', 'results'), // ResultKeeper's Parquet scratch: rows-<uuid>.*
    join(home, 'control', 'logs'), // query log flushes: rows-<uuid>.*
    ...workerDirs.flatMap((d) => [join(d, 'staging'), join(d, 'partials')]), // Worker: write-<id>, <query>-<fragment>-<uuid>.parquet
  ];
}

function sizeOf(path: string): number {
  let info;
  try {
    info = lstatSync(path);
  } catch {
    return 0;
  }
  if (!info.isDirectory()) return info.size;
  let total = 0;
  try {
    for (const name of readdirSync(path)) total += sizeOf(join(path, name));
  } catch {
    // unreadable: counted as empty
  }
  return total;
}

/**
 * Remove the scratch entries that no live process can own. Call it after registerProcess and
 * before this process creates any scratch of its own.
 */
export function cleanLeftovers(settings: Settings): LeftoverCleanup {
  // Listed before the registrations are read: a process that registers later creates its
  // entries after this listing, so none of them can be among the candidates.
  const candidates: { path: string; mtimeMs: number }[] = [];
  for (const dir of scratchLocations(settings)) {
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      candidates.push({ path, mtimeMs: mtimeOf(path) });
    }
  }
  const live = otherLiveProcesses(settings.home);
  const oldestLive = Math.min(...live.map((r) => r.registeredAt));
  const result: LeftoverCleanup = { removed: [], bytes: 0, kept: [], liveProcesses: live.length };
  for (const { path, mtimeMs } of candidates) {
    if (mtimeMs >= oldestLive - CLOCK_SLACK_MS) {
      result.kept.push(path);
      continue;
    }
    const bytes = sizeOf(path);
    try {
      rmSync(path, { recursive: true, force: true });
      result.removed.push(path);
      result.bytes += bytes;
    } catch {
      result.kept.push(path); // e.g. permissions; never a reason not to start
    }
  }
  return result;
}
