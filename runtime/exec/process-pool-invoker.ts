// The local cluster's Invoker: a fixed pool of child processes, each with its own Worker
// (its own DuckDB and cache), so fragments run in parallel across cores and a crash or a
// runaway fragment takes down one child, never the coordinator. A child that dies or
// overruns is killed and replaced; its fragment fails and the coordinator decides on a retry.

import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PuffinError } from '../errors.ts';
import type { Settings } from '../settings.ts';
import type { FragmentRequest, FragmentResult, Invoker } from './invoker.ts';
import { decodeError, decodeResult, type PoolChildMessage, type PoolParentMessage } from './wire.ts';

export interface ProcessPoolOptions {
  /** Settings of every child's Worker; each child gets its own cache directory under cacheDir. */
  settings: Settings;
  /** Number of child processes; default settings.workers (one per core). */
  size?: number;
  /** Time a child has to start its Worker before it is killed. Default 30 s. */
  startTimeoutMs?: number;
  /** Time a child has to stop a cancelled fragment before it is killed. Default 2 s. */
  cancelGraceMs?: number;
}

export interface PoolChildInfo {
  slot: number;
  pid: number | undefined;
  state: SlotState;
  /** The fragment the child is running, if any. */
  fragmentId: string | undefined;
  /** Fragments this slot has completed (successfully or not), across replacements. */
  fragmentsRun: number;
}

type SlotState = 'starting' | 'idle' | 'busy' | 'draining' | 'stopping' | 'dead';

interface Job {
  id: number;
  request: FragmentRequest;
  resolve: (result: FragmentResult) => void;
  reject: (err: PuffinError) => void;
  timer?: NodeJS.Timeout;
  slot?: Slot;
  signal?: AbortSignal;
  onAbort?: () => void;
}

interface Slot {
  index: number;
  child?: ChildProcess;
  pid?: number;
  state: SlotState;
  job?: Job;
  /** Id of a cancelled job whose answer the child still owes. */
  drainingId?: number;
  timer?: NodeJS.Timeout;
  startFailures: number;
  fragmentsRun: number;
  markReady: () => void;
  markFailed: (err: PuffinError) => void;
}

const CHILD_MODULE = fileURLToPath(new URL('./pool-child.ts', import.meta.url));
/** A slot whose child fails to start this many times in a row stops being restarted. */
const MAX_START_FAILURES = 3;
const CLOSE_TIMEOUT_MS = 5_000;

export class ProcessPoolInvoker implements Invoker {
  /** Resolves when every child has started; rejects when a slot gives up starting. */
  readonly ready: Promise<void>;
  private readonly slots: Slot[];
  private readonly queue: Job[] = [];
  private readonly size: number;
  private readonly startTimeoutMs: number;
  private readonly cancelGraceMs: number;
  private nextJobId = 1;
  private closed = false;
  private lastStartError: PuffinError | undefined;
  private readonly killAllOnExit = () => {
    for (const slot of this.slots) slot.child?.kill('SIGKILL');
  };

  constructor(private readonly options: ProcessPoolOptions) {
    this.size = Math.max(1, options.size ?? options.settings.workers);
    this.startTimeoutMs = options.startTimeoutMs ?? 30_000;
    this.cancelGraceMs = options.cancelGraceMs ?? 2_000;
    const readiness: Promise<void>[] = [];
    this.slots = Array.from({ length: this.size }, (_, index) => {
      let markReady!: () => void;
      let markFailed!: (err: PuffinError) => void;
      readiness.push(
        new Promise<void>((resolve, reject) => {
          markReady = resolve;
          markFailed = reject;
        }),
      );
      return { index, state: 'starting' as SlotState, startFailures: 0, fragmentsRun: 0, markReady, markFailed };
    });
    this.ready = Promise.all(readiness).then(() => undefined);
    // Nobody has to await readiness; a failure also surfaces on invoke().
    this.ready.catch(() => {});
    process.once('exit', this.killAllOnExit);
    for (const slot of this.slots) this.spawn(slot);
  }

  /** A pool whose children have all started. */
  static async start(options: ProcessPoolOptions): Promise<ProcessPoolInvoker> {
    const pool = new ProcessPoolInvoker(options);
    try {
      await pool.ready;
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  /** What each child is doing (for diagnostics and tests). */
  children(): PoolChildInfo[] {
    return this.slots.map((s) => ({
      slot: s.index,
      pid: s.pid,
      state: s.state,
      fragmentId: s.job?.request.fragment.id,
      fragmentsRun: s.fragmentsRun,
    }));
  }

  invoke(request: FragmentRequest, signal?: AbortSignal): Promise<FragmentResult> {
    return new Promise<FragmentResult>((resolve, reject) => {
      if (this.closed) return reject(new PuffinError('unavailable', 'the worker process pool is closed'));
      if (this.slots.every((s) => s.state === 'dead')) return reject(this.noWorkersError());
      if (signal?.aborted) return reject(abortReason(request, signal.reason));
      const job: Job = { id: this.nextJobId++, request, resolve, reject, signal };
      job.onAbort = () => this.abortJob(job);
      signal?.addEventListener('abort', job.onAbort, { once: true });
      // While queued only the query deadline applies; the invocation timeout starts at dispatch.
      this.armTimer(job, request.deadline - Date.now(), 'its deadline passed while waiting for a worker process');
      this.queue.push(job);
      this.pump();
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    process.off('exit', this.killAllOnExit);
    const closedError = new PuffinError('unavailable', 'the worker process pool was closed');
    for (const job of this.queue.splice(0)) this.settle(job, closedError);
    const exits: Promise<void>[] = [];
    for (const slot of this.slots) {
      if (slot.job) this.settle(slot.job, closedError);
      slot.markFailed(closedError);
      const child = slot.child;
      if (child && child.exitCode === null && child.signalCode === null) {
        exits.push(new Promise<void>((resolve) => child.once('exit', () => resolve())));
        child.kill('SIGKILL');
      }
      slot.state = 'dead';
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(exits), new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_TIMEOUT_MS)))]);
    clearTimeout(timer);
  }

  private spawn(slot: Slot): void {
    const { settings } = this.options;
    const childSettings: Settings = {
      ...settings,
      // Separate caches: one process must not evict or half-write files another is reading.
      cacheDir: join(settings.cacheDir, `pool-${slot.index}`),
      cacheBytes: Math.floor(settings.cacheBytes / this.size),
    };
    const child = fork(CHILD_MODULE, [], {
      // Resolved from here, so children find tsx whatever their working directory.
      execArgv: ['--import', import.meta.resolve('tsx')],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'json',
    });
    slot.child = child;
    slot.pid = child.pid;
    slot.state = 'starting';
    slot.timer = setTimeout(() => {
      this.lastStartError = new PuffinError('unavailable', `worker process ${child.pid} did not start within ${this.startTimeoutMs} ms`);
      child.kill('SIGKILL');
    }, this.startTimeoutMs);
    child.on('message', (message: PoolChildMessage) => this.onMessage(slot, child, message));
    child.once('exit', (code, signal) => this.onExit(slot, child, code, signal));
    child.on('error', (err) => {
      // Spawn failures and failed sends land here; the 'exit' event (if any) does the rest.
      this.lastStartError = new PuffinError('unavailable', `worker process error: ${err.message}`);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    this.send(child, { type: 'init', settings: childSettings });
  }

  private send(child: ChildProcess, message: PoolParentMessage): void {
    // A failed send means the child is dying; its 'exit' handler fails the job it held.
    if (child.connected) child.send(message, (err) => err && child.kill('SIGKILL'));
  }

  private onMessage(slot: Slot, child: ChildProcess, message: PoolChildMessage): void {
    if (slot.child !== child) return;
    switch (message.type) {
      case 'ready':
        clearTimeout(slot.timer);
        slot.state = 'idle';
        slot.startFailures = 0;
        slot.markReady();
        break;
      case 'init-failed':
        this.lastStartError = PuffinError.fromJSON({ error: message.error });
        child.kill('SIGKILL');
        return;
      case 'result':
      case 'error': {
        if (slot.state === 'draining' && slot.drainingId === message.id) {
          clearTimeout(slot.timer);
          slot.drainingId = undefined;
          slot.state = 'idle';
          break;
        }
        const job = slot.job;
        if (!job || job.id !== message.id) return;
        slot.job = undefined;
        slot.state = 'idle';
        slot.fragmentsRun++;
        if (message.type === 'result') {
          try {
            this.settle(job, decodeResult(message.result));
          } catch (err) {
            this.settle(job, err as PuffinError);
          }
        } else {
          this.settle(job, decodeError({ error: message.error }));
        }
        break;
      }
    }
    this.pump();
  }

  private onExit(slot: Slot, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (slot.child !== child) return;
    clearTimeout(slot.timer);
    slot.child = undefined;
    const how = signal ? `signal ${signal}` : `exit code ${code}`;
    const wasStarting = slot.state === 'starting';
    if (slot.job) {
      const { fragment, queryId } = slot.job.request;
      slot.fragmentsRun++;
      this.settle(
        slot.job,
        new PuffinError('fragment_failed', `worker process ${child.pid} exited (${how}) while running fragment ${fragment.id} of query ${queryId}`, {
          fragmentId: fragment.id,
        }),
      );
    }
    if (this.closed) {
      slot.state = 'dead';
      return;
    }
    if (wasStarting) {
      slot.startFailures++;
      this.lastStartError ??= new PuffinError('unavailable', `worker process ${child.pid} exited (${how}) before it was ready`);
      if (slot.startFailures >= MAX_START_FAILURES) {
        slot.state = 'dead';
        slot.markFailed(this.noWorkersError());
        if (this.slots.every((s) => s.state === 'dead')) {
          for (const job of this.queue.splice(0)) this.settle(job, this.noWorkersError());
        }
        return;
      }
    }
    this.spawn(slot);
  }

  /** Hand queued jobs to idle children. */
  private pump(): void {
    while (this.queue.length > 0) {
      const slot = this.slots.find((s) => s.state === 'idle');
      if (!slot?.child) return;
      const job = this.queue.shift()!;
      job.slot = slot;
      slot.job = job;
      slot.state = 'busy';
      const timeoutMs = Math.min(this.options.settings.invokeTimeoutMs, job.request.deadline - Date.now());
      this.armTimer(job, timeoutMs, `it ran longer than ${timeoutMs} ms`);
      this.send(slot.child, { type: 'run', id: job.id, request: job.request });
    }
  }

  private armTimer(job: Job, ms: number, why: string): void {
    clearTimeout(job.timer);
    job.timer = setTimeout(() => {
      const { fragment, queryId } = job.request;
      const err = new PuffinError('timeout', `fragment ${fragment.id} of query ${queryId} timed out: ${why}`, { fragmentId: fragment.id });
      const slot = job.slot;
      this.settle(job, err);
      if (slot && slot.job === job) {
        // A runaway fragment may not respond to interruption; only a new process is certain.
        slot.job = undefined;
        slot.state = 'stopping';
        slot.child?.kill('SIGKILL');
      }
    }, Math.max(0, ms));
  }

  private abortJob(job: Job): void {
    const reason = abortReason(job.request, job.signal?.reason);
    const slot = job.slot;
    const queued = this.queue.indexOf(job);
    if (queued >= 0) this.queue.splice(queued, 1);
    this.settle(job, reason);
    if (slot && slot.job === job && slot.child) {
      // Ask the child to interrupt DuckDB; kill it if it does not answer in time.
      slot.job = undefined;
      slot.state = 'draining';
      slot.drainingId = job.id;
      this.send(slot.child, { type: 'cancel', id: job.id });
      const child = slot.child;
      slot.timer = setTimeout(() => child.kill('SIGKILL'), this.cancelGraceMs);
    }
  }

  private settle(job: Job, outcome: FragmentResult | PuffinError): void {
    clearTimeout(job.timer);
    if (job.onAbort) job.signal?.removeEventListener('abort', job.onAbort);
    if (outcome instanceof PuffinError) job.reject(outcome);
    else job.resolve(outcome);
  }

  private noWorkersError(): PuffinError {
    const cause = this.lastStartError ? `: ${this.lastStartError.message}` : '';
    return new PuffinError('unavailable', `no worker process could be started${cause}`);
  }
}

function abortReason(request: FragmentRequest, reason: unknown): PuffinError {
  if (reason instanceof PuffinError) return reason;
  return new PuffinError('timeout', `fragment ${request.fragment.id} of query ${request.queryId} was cancelled`, {
    fragmentId: request.fragment.id,
  });
}
