// Where the coordinator runs user SQL that computes (the reduce step, 'local' plans,
// constants evaluated while planning): a runner slot, i.e. one sandboxed DuckDB that can read
// exactly one directory, which holds only the files of the job it is running.
//
// Two reasons for slots rather than the coordinator's own DuckDB:
// - Sandbox. DuckDB's allowed_directories cannot change once lock_configuration is set, so a
//   long-lived engine that may read the scratch directory may read every query's partials,
//   write staging and cached table copies. A slot's directory is fixed, but the runner links
//   a job's files into it before the job and empties it after, and a slot runs one job at a
//   time: user SQL in a job sees its own files and nothing else.
// - Deadlines. DuckDB's interrupt is only checked between vectors, so a long scalar call
//   (levenshtein of two 100 KB strings) runs on for many seconds after it. A process slot is
//   a child process that is SIGKILLed when its job's signal aborts, which frees the CPU at
//   the deadline; a fresh child takes the slot's place.

import { compiledEntry } from '../compiled.js';
import { fork, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { link, mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Engine, runQuery, type QueryResult } from '../engine/engine.ts';
import { PuffinError, toPuffinError } from '../errors.ts';
import { ownProcessDir } from './leftovers.ts';

/** What one job runs: files to read, and the statements over their paths in the slot. */
export interface RunnerJob {
  /** Files the job may read; each is hard-linked (or copied) into the slot for the job. */
  files?: readonly string[];
  /** The statements, given the slot paths of `files` (same order). */
  build(paths: string[]): { setup: string[]; sql: string };
}

export interface SqlRunner {
  /** Run a job; rejects with the signal's reason once it aborts, and the work stops. */
  run(job: RunnerJob, signal?: AbortSignal): Promise<QueryResult>;
  close(): Promise<void>;
}

export interface RunnerPoolOptions {
  /**
   * Root of the slots' directories, which processes sharing a home share: this pool's slots
   * live in <dir>/<pid>-<start time>/<n>/slot-<i> (leftovers.ts), so no other process's pool
   * ever removes or reuses them. Nothing else may live there.
   */
  dir: string;
  /** Slots, i.e. jobs at once; further jobs wait for a free slot. */
  size: number;
  /** Child processes (killable at a deadline) or engines in this process (tests, Lambda bundles). */
  kind: 'process' | 'in-process';
  threads?: number;
  memoryLimit?: string;
  /** Time a child has to start its DuckDB. Default 30 s. */
  startTimeoutMs?: number;
  /** Start the first slot's process now (default) rather than at the first job. */
  warm?: boolean;
}

const CHILD_MODULE = fileURLToPath(new URL('./sql-runner-child.ts', import.meta.url));
/** Pools of this process, numbered: two pools given one dir still get directories of their own. */
let nextPoolId = 0;

export type RunnerParentMessage =
  | { type: 'init'; dir: string; threads?: number; memoryLimit?: string }
  | { type: 'run'; id: number; setup: string[]; sql: string };

export type RunnerChildMessage =
  | { type: 'ready' }
  | { type: 'init-failed'; error: { code: string; message: string } }
  | { type: 'result'; id: number; result: QueryResult }
  | { type: 'error'; id: number; error: { code: string; message: string } };

interface Slot {
  index: number;
  dir: string;
  /** Process slots: the started child (undefined after it died or was killed). */
  proc?: ChildProcess;
  /** Process slots: a child being started. */
  starting?: Promise<ChildProcess>;
  /** In-process slots: the engine. */
  engine?: Promise<Engine>;
  /** Process slots: the pending restart of a child that died or failed to start. */
  restart?: NodeJS.Timeout;
}

/** Consecutive failures from which the runner backs off and, with no child up, is unhealthy. */
const REPEATED_FAILURES = 2;
const RESTART_BASE_MS = 200;
const RESTART_MAX_MS = 10_000;
const HEALTHY_AFTER_MS = 30_000;

function isRunning(proc: ChildProcess | undefined): boolean {
  return !!proc && proc.connected && proc.exitCode === null && proc.signalCode === null;
}

export class SqlRunnerPool implements SqlRunner {
  private readonly free: Slot[] = [];
  private readonly waiting: ((slot: Slot) => void)[] = [];
  private readonly all: Slot[] = [];
  private nextJobId = 1;
  private closed = false;
  /** Consecutive failures of process slots (failed starts, deaths not caused by an abort). */
  private failures = 0;
  private lastFailure: string | undefined;
  private readonly killAllOnExit = () => {
    for (const slot of this.all) slot.proc?.kill('SIGKILL');
  };

  /** This pool's own directory: <dir>/<pid>-<start time>/<n>. */
  private readonly root: string;

  constructor(private readonly options: RunnerPoolOptions) {
    // Jobs of dead processes (killed mid-query) left their files here; live ones' are theirs.
    this.root = join(ownProcessDir(resolve(options.dir)), String(nextPoolId++));
    rmSync(this.root, { recursive: true, force: true });
    const size = Math.max(1, Math.floor(options.size));
    for (let index = 0; index < size; index++) {
      const slot: Slot = { index, dir: join(this.root, `slot-${index}`) };
      this.all.push(slot);
      this.free.push(slot);
    }
    if (options.kind === 'process') process.once('exit', this.killAllOnExit);
    // The first slot starts now, so the first query does not wait for a process to start
    // (unless the owner prefers starting nothing it may not need).
    if (options.warm !== false) this.warm(this.all[0]);
  }

  /**
   * 'ok' while jobs can run; otherwise why not: no runner process is up and they keep failing
   * (failed starts, or deaths not caused by a deadline). A slot whose child died is started
   * again after a pause that grows with the failures, so health recovers once the children
   * stay up, without waiting for a job.
   */
  health(): 'ok' | string {
    if (this.closed) return 'the SQL runner is closed';
    if (this.options.kind !== 'process' || this.failures < REPEATED_FAILURES) return 'ok';
    if (this.all.some((slot) => isRunning(slot.proc))) return 'ok';
    return `no SQL runner process is running: ${this.failures} consecutive failure(s)${this.lastFailure ? ` (last: ${this.lastFailure})` : ''}; they are restarted`;
  }

  async run(job: RunnerJob, signal?: AbortSignal): Promise<QueryResult> {
    if (this.closed) throw new PuffinError('unavailable', 'the SQL runner is closed');
    if (signal?.aborted) throw signal.reason;
    const slot = await this.acquire(signal);
    try {
      return await this.runIn(slot, job, signal);
    } finally {
      this.release(slot);
    }
  }

  private acquire(signal?: AbortSignal): Promise<Slot> {
    const slot = this.free.shift();
    if (slot) return Promise.resolve(slot);
    return new Promise<Slot>((resolveSlot, reject) => {
      const take = (s: Slot) => {
        signal?.removeEventListener('abort', onAbort);
        resolveSlot(s);
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(take);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(take);
    });
  }

  private release(slot: Slot): void {
    const next = this.waiting.shift();
    if (next) next(slot);
    // Most recently used first: the next job takes a slot whose process (or engine) is up,
    // and the others start only when jobs overlap (round robin started a second process for
    // the second query of a server).
    else this.free.unshift(slot);
  }

  /** Slots whose child process is running (diagnostics and tests). */
  runningProcesses(): number {
    return this.all.filter((slot) => isRunning(slot.proc)).length;
  }

  private async runIn(slot: Slot, job: RunnerJob, signal?: AbortSignal): Promise<QueryResult> {
    // A fresh job directory inside the slot's allowed directory: the job's files and nothing
    // else (named per job, so no path of an earlier job ever names a file again).
    const jobDir = join(slot.dir, `job-${this.nextJobId++}`);
    await rm(jobDir, { recursive: true, force: true });
    await mkdir(jobDir, { recursive: true });
    try {
      const paths: string[] = [];
      for (const [i, file] of (job.files ?? []).entries()) {
        const target = join(jobDir, `${i}.${file.split('.').pop()?.replace(/[^a-z0-9]/gi, '') || 'dat'}`);
        await link(file, target).catch((err: NodeJS.ErrnoException) => {
          throw new PuffinError('internal', `could not hand a file to the SQL runner (${err.code ?? err.message})`);
        });
        paths.push(target);
      }
      const { setup, sql } = job.build(paths);
      if (signal?.aborted) throw signal.reason;
      return this.options.kind === 'process' ? await this.runInChild(slot, setup, sql, signal) : await this.runInEngine(slot, setup, sql, signal);
    } finally {
      await rm(jobDir, { recursive: true, force: true });
    }
  }

  private async runInEngine(slot: Slot, setup: string[], sql: string, signal?: AbortSignal): Promise<QueryResult> {
    slot.engine ??= this.createEngine(slot);
    const engine = await slot.engine;
    const conn = await engine.connect();
    const interrupt = () => conn.interrupt();
    signal?.addEventListener('abort', interrupt, { once: true });
    try {
      for (const statement of setup) await runQuery(conn, statement);
      return await runQuery(conn, sql);
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw err;
    } finally {
      signal?.removeEventListener('abort', interrupt);
      conn.closeSync();
    }
  }

  private createEngine(slot: Slot): Promise<Engine> {
    const { threads, memoryLimit } = this.options;
    return Engine.create({ threads, memoryLimit, allowedDirectories: [slot.dir] });
  }

  private async runInChild(slot: Slot, setup: string[], sql: string, signal?: AbortSignal): Promise<QueryResult> {
    const child = await this.childOf(slot);
    const id = this.nextJobId++;
    return new Promise<QueryResult>((resolveRun, reject) => {
      const done = () => {
        child.off('message', onMessage);
        child.off('exit', onExit);
        signal?.removeEventListener('abort', onAbort);
      };
      const onMessage = (message: RunnerChildMessage) => {
        if ((message.type === 'result' || message.type === 'error') && message.id === id) {
          done();
          if (message.type === 'result') resolveRun(message.result);
          else reject(PuffinError.fromJSON({ error: message.error }));
        }
      };
      const onExit = (code: number | null, sig: string | null) => {
        done();
        slot.proc = undefined;
        reject(new PuffinError('internal', `the SQL runner process exited (${code ?? sig}) while running a query`));
      };
      const onAbort = () => {
        done();
        // The only way to stop a long scalar call: the process goes, and a new one takes its place.
        slot.proc = undefined;
        child.kill('SIGKILL');
        this.warm(slot);
        reject(signal!.reason);
      };
      child.on('message', onMessage);
      child.once('exit', onExit);
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
      const message: RunnerParentMessage = { type: 'run', id, setup, sql };
      child.send(message, (err) => {
        if (err) {
          done();
          slot.proc = undefined;
          child.kill('SIGKILL');
          reject(new PuffinError('internal', `could not send a query to the SQL runner process: ${err.message}`));
        }
      });
    });
  }

  /** Start a slot's process (or engine) ahead of its first job; failures surface on use. */
  private warm(slot: Slot | undefined): void {
    if (!slot || this.closed) return;
    if (this.options.kind === 'process') this.childOf(slot).catch(() => undefined);
  }

  private childOf(slot: Slot): Promise<ChildProcess> {
    const proc = slot.proc;
    if (isRunning(proc)) return Promise.resolve(proc!);
    // A child that failed to start is forgotten, so the next job tries a new one.
    slot.starting ??= this.spawn(slot).then(
      (c) => {
        slot.proc = c;
        slot.starting = undefined;
        const readyAt = Date.now();
        c.once('exit', (code, sig) => {
          // Killed by the pool (an aborted job, close) only when slot.proc no longer names it.
          if (slot.proc !== c) return;
          slot.proc = undefined;
          // A child that stayed up a while proved the slot sound: counting starts over.
          if (Date.now() - readyAt >= HEALTHY_AFTER_MS) this.failures = 0;
          this.failed(slot, `the SQL runner process ${c.pid} exited (${code ?? sig})`);
        });
        return c;
      },
      (err: unknown) => {
        slot.starting = undefined;
        this.failed(slot, (err as Error).message);
        throw err;
      },
    );
    return slot.starting;
  }

  /** Count a failure and start the slot's next child after a pause (none for a first failure). */
  private failed(slot: Slot, why: string): void {
    if (this.closed || this.options.kind !== 'process') return;
    this.failures++;
    this.lastFailure = why;
    const delay = this.failures < REPEATED_FAILURES ? 0 : Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** (this.failures - REPEATED_FAILURES));
    clearTimeout(slot.restart);
    slot.restart = setTimeout(() => {
      slot.restart = undefined;
      if (!slot.proc && !slot.starting) this.warm(slot);
    }, delay);
    slot.restart.unref();
  }

  private spawn(slot: Slot): Promise<ChildProcess> {
    // The compiled child when this process has it (runtime/compiled.js), else through tsx.
    const compiled = compiledEntry('sql-runner-child');
    const child = fork(compiled ?? CHILD_MODULE, [], {
      execArgv: compiled ? [] : ['--import', import.meta.resolve('tsx')],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'json',
    });
    const timeoutMs = this.options.startTimeoutMs ?? 30_000;
    return new Promise<ChildProcess>((resolveStart, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new PuffinError('unavailable', `the SQL runner process did not start within ${timeoutMs} ms`));
      }, timeoutMs);
      const onMessage = (message: RunnerChildMessage) => {
        if (message.type !== 'ready' && message.type !== 'init-failed') return;
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
        if (message.type === 'ready') {
          resolveStart(child);
        } else {
          child.kill('SIGKILL');
          reject(PuffinError.fromJSON({ error: message.error }));
        }
      };
      const onExit = (code: number | null, sig: string | null) => {
        clearTimeout(timer);
        reject(new PuffinError('unavailable', `the SQL runner process exited (${code ?? sig}) while starting`));
      };
      child.on('message', onMessage);
      child.once('exit', onExit);
      child.on('error', () => undefined); // 'exit' follows
      const init: RunnerParentMessage = { type: 'init', dir: slot.dir, threads: this.options.threads, memoryLimit: this.options.memoryLimit };
      child.send(init, (err) => err && child.kill('SIGKILL'));
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    process.off('exit', this.killAllOnExit);
    await Promise.allSettled(this.all.map(async (slot) => {
      clearTimeout(slot.restart);
      await slot.starting?.catch(() => undefined);
      const child = slot.proc;
      if (child && child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((r) => child.once('exit', () => r()));
        child.kill('SIGKILL');
        await exited;
      }
      const engine = await slot.engine?.catch(() => undefined);
      engine?.close();
    }));
    await rm(this.root, { recursive: true, force: true });
  }
}

/**
 * A runner over one existing engine, reading files in place: what the coordinator did
 * before runner slots, for callers that build a Coordinator from an engine alone (tests,
 * benchmarks). It is neither per-job sandboxed nor killable.
 */
export class EngineRunner implements SqlRunner {
  constructor(private readonly engine: Engine) {}

  async run(job: RunnerJob, signal?: AbortSignal): Promise<QueryResult> {
    if (signal?.aborted) throw signal.reason;
    const { setup, sql } = job.build([...(job.files ?? [])]);
    const conn = await this.engine.connect();
    const interrupt = () => conn.interrupt();
    signal?.addEventListener('abort', interrupt, { once: true });
    try {
      for (const statement of setup) await runQuery(conn, statement);
      return await runQuery(conn, sql);
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw toPuffinError(err);
    } finally {
      signal?.removeEventListener('abort', interrupt);
      conn.closeSync();
    }
  }

  async close(): Promise<void> {}
}
