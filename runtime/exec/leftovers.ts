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
// Scratch that lives as long as its process rather than a query (SQL runner slots, the pool's
// per-child caches and sandboxes, the coordinator's file cache) lives in per-process
// directories instead (ownProcessDir below), removed once their process is gone.
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

// Per-process directories: scratch that lives as long as its process (SQL runner slots, the
// worker pool's caches and sandboxes, the coordinator's file cache) sits under a directory
// named after its process, <pid>-<kernel start time>, so processes sharing a home never touch
// each other's, and a directory is removed once its process is gone (whatever its mtime).

/** <pid>-<start time> of this process (the start time is Date.now() in base 36, prefixed 't', without /proc). */
let ownDirName: string | undefined;
export function processDirName(): string {
  ownDirName ??= `${process.pid}-${processStartTime(process.pid) ?? `t${Date.now().toString(36)}`}`;
  return ownDirName;
}

const PROCESS_DIR = /^(\d+)-(t?[0-9a-z]+)$/;

/** Whether the process a per-process directory is named after still runs; undefined for other names. */
export function processDirOwnerAlive(name: string): boolean | undefined {
  const match = PROCESS_DIR.exec(name);
  if (!match) return undefined;
  const pid = Number(match[1]);
  if (name === processDirName()) return true;
  // A name made without /proc records no kernel start time: the pid alone decides.
  return isAlive({ pid, registeredAt: 0, startTime: match[2].startsWith('t') ? undefined : match[2], what: '' });
}

/**
 * Remove the per-process directories under `root` whose process is gone (and nothing else
 * there); answers what was removed and kept.
 */
export function removeDeadProcessDirs(root: string): { removed: string[]; bytes: number; kept: string[] } {
  const result = { removed: [] as string[], bytes: 0, kept: [] as string[] };
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return result;
  }
  for (const name of names) {
    const alive = processDirOwnerAlive(name);
    if (alive === undefined) continue;
    const path = join(root, name);
    if (alive) {
      result.kept.push(path);
      continue;
    }
    const bytes = sizeOf(path);
    try {
      rmSync(path, { recursive: true, force: true });
      result.removed.push(path);
      result.bytes += bytes;
    } catch {
      result.kept.push(path);
    }
  }
  return result;
}

/**
 * This process's own directory under `root` (a directory shared by the processes of a home),
 * after removing those of dead processes there. Not created here.
 */
export function ownProcessDir(root: string): string {
  removeDeadProcessDirs(root);
  return join(root, processDirName());
}

/** Roots of per-process directories (see ownProcessDir) in a home. */
export function processDirRoots(settings: Settings): string[] {
  const { home, cacheDir } = settings;
  return [
    join(home, 'coordinator', 'runners'), // SqlRunnerPool (reduce steps): <proc>/<n>/slot-<i>
    join(home, 'coordinator', 'planning'), // SqlRunnerPool (planning)
    join(home, 'coordinator', 'files'), // LocalCluster's FileCache
    join(cacheDir, 'procs'), // ProcessPoolInvoker: <proc>/<n>/pool-<i> (each child's cache and sandboxes)
  ];
}

/**
 * What the layout before per-process directories left: <cacheDir>/pool-<i> (shared by every
 * process's pool), slot-<i> under the runner roots and cached files directly under
 * coordinator/files. No process of this version writes there, so they are removed whole,
 * but only when no other live process is registered (an older server might still run).
 */
function legacyEntries(settings: Settings): string[] {
  // (Their per-query staging/partials entries are scratch locations too, removed by age meanwhile.)
  const { home, cacheDir } = settings;
  const entries: string[] = [];
  const add = (dir: string, keep: (name: string) => boolean) => {
    try {
      for (const name of readdirSync(dir)) if (keep(name) && processDirOwnerAlive(name) === undefined) entries.push(join(dir, name));
    } catch {
      // absent
    }
  };
  add(cacheDir, (name) => /^pool-\d+$/.test(name));
  add(join(home, 'coordinator', 'runners'), (name) => /^slot-\d+$/.test(name));
  add(join(home, 'coordinator', 'planning'), (name) => /^slot-\d+$/.test(name));
  add(join(home, 'coordinator', 'files'), () => true);
  return entries;
}

/**
 * Directories whose every entry is scratch of one query or one write, created under a unique
 * name and removed when it ends. Nothing else (caches, catalog, data) is ever touched.
 */
export function scratchLocations(settings: Settings): string[] {
  const { home, cacheDir } = settings;
  // A Worker in this process (the in-process invoker) works in <cacheDir>/sandbox/<n>/, a
  // directory per fragment; pool children work inside their process's directory (processDirRoots).
  const sandboxes: string[] = [];
  try {
    for (const name of readdirSync(join(cacheDir, 'sandbox'))) if (/^\d+$/.test(name)) sandboxes.push(join(cacheDir, 'sandbox', name));
  } catch {
    // no sandbox yet
  }
  // The layout before sandboxes and per-process directories: <cacheDir>[/pool-<n>]/{staging,partials}.
  const legacyWorkerDirs = [cacheDir];
  try {
    for (const name of readdirSync(cacheDir)) if (/^pool-\d+$/.test(name)) legacyWorkerDirs.push(join(cacheDir, name));
  } catch {
    // no cache directory yet
  }
  return [
    join(home, 'coordinator', 'staging'), // LocalCluster.write: <queryId>
    join(home, 'coordinator', 'partials'), // Coordinator: <queryId>-<uuid> work directories
    join(home, 'control', 'results'), // ResultKeeper's Parquet scratch: rows-<uuid>.*
    join(home, 'control', 'logs'), // query log flushes: rows-<uuid>.*
    ...sandboxes, // Worker: a fragment's directory (its files' links, partial, write staging)
    ...legacyWorkerDirs.flatMap((d) => [join(d, 'staging'), join(d, 'partials')]),
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
  // Per-process directories go with their process, whatever their age.
  for (const root of processDirRoots(settings)) {
    const { removed, bytes, kept } = removeDeadProcessDirs(root);
    result.removed.push(...removed);
    result.bytes += bytes;
    result.kept.push(...kept);
  }
  if (live.length === 0) for (const path of legacyEntries(settings)) candidates.push({ path, mtimeMs: 0 });
  else result.kept.push(...legacyEntries(settings));
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
