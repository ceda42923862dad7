// The local cluster's Invoker: a fixed pool of child processes, each with its own Worker
// (its own DuckDB and cache), so fragments run in parallel across cores and a crash or a
// runaway fragment takes down one child, never the coordinator. A child that dies or
// overruns is killed and replaced; its fragment fails and the coordinator decides on a retry.
//
// A slot never gives up: a child that fails to start, or dies idle soon after starting, is
// started again after a bounded exponential backoff (reset once a child has stayed up for a
// healthy period), so a burst of crashes or kills costs a pause, never the pool. While no
// child is running and every slot is backing off, fragments are refused at once with
// `unavailable` (503) rather than queued, and health() says why.
//
// Fragments are routed to the child likely to hold their files in its cache (whole files and
// the filtered partitions of runtime/exec/partition-cache.ts): each file of a fragment's
// first input (the table it splits) belongs to the slot that last read it, or for a file no
// slot has read yet the one its URI hashes to (rendezvous hashing over the slots), and the
// fragment prefers the slot most of its bytes belong to. An idle slot takes the first queued
// fragment that prefers it, else the oldest one: work never waits for its preferred slot
// while another is idle, and a file read elsewhere that way then belongs there (its cache
// entries are there now).

import { compiledEntry } from '../compiled.js';
import { fork, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PuffinError } from '../errors.ts';
import type { Settings } from '../settings.ts';
import type { FragmentRequest, FragmentResult, Invoker } from './invoker.ts';
import { ownProcessDir } from './leftovers.ts';
import { decodeError, decodeResult, type PoolChildMessage, type PoolParentMessage } from './wire.ts';

export interface ProcessPoolOptions {
  /**
   * Settings of every child's Worker; each child gets its own cache directory,
   * <cacheDir>/procs/<pid>-<start time>/<n>/pool-<slot>: its own to this process (another
   * process sharing the cache directory never touches it) and removed when the pool closes
   * or, after a crash, once this process is gone (leftovers.ts).
   */
  settings: Settings;
  /** Number of child processes; default settings.workers (one per core). */
  size?: number;
  /** Time a child has to start its Worker before it is killed. Default 30 s. */
  startTimeoutMs?: number;
  /** Time a child has to stop a cancelled fragment before it is killed. Default 2 s. */
  cancelGraceMs?: number;
  /** First pause before restarting a slot that failed, doubled per consecutive failure. Default 200 ms. */
  restartBaseMs?: number;
  /** Longest pause between restarts of a failing slot. Default 10 s. */
  restartMaxMs?: number;
  /** A child up this long has proven healthy: its slot's failure count starts over. Default 30 s. */
  healthyAfterMs?: number;
  /**
   * Start the children at the first invoke() rather than now: a one-shot CLI command whose
   * query needs no worker (a 'local' plan, a catalog statement) then starts none. `ready`
   * resolves once they have started. Default false (a server starts them with itself).
   */
  lazy?: boolean;
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

/** 'waiting': backing off before the next start; 'dead': only once the pool is closed. */
type SlotState = 'starting' | 'idle' | 'busy' | 'draining' | 'stopping' | 'waiting' | 'dead';

interface Job {
  id: number;
  request: FragmentRequest;
  /** The slot its files hash to (see the top of this file); undefined for a fragment without files. */
  preferred?: number;
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
  /** Consecutive failures (failed starts, or deaths soon after a start): sets the backoff. */
  failures: number;
  /** When the current child became ready. */
  readyAt?: number;
  /** When a waiting slot starts its next child. */
  restartAt?: number;
  everReady: boolean;
  /** Why the current child is being ended, when the pool knows better than its exit status. */
  exitReason?: PuffinError;
  fragmentsRun: number;
  markReady: () => void;
  markFailed: (err: PuffinError) => void;
}

const CHILD_MODULE = fileURLToPath(new URL('./pool-child.ts', import.meta.url));
/**
 * `ready` (and so start()) fails once a slot's first child has failed to start this many
 * times in a row: a pool that cannot start at all is an error to report, not to wait on.
 * The slot itself keeps trying.
 */
const MAX_INITIAL_START_FAILURES = 3;
/** Consecutive failures from which a slot backs off, and the pool with no child up counts as down. */
const REPEATED_FAILURES = 2;
const CLOSE_TIMEOUT_MS = 5_000;
/** Files whose last slot the pool remembers (about 100 bytes each). */
const MAX_PLACED_FILES = 100_000;
/** Pools of this process, numbered: two pools over one cache directory get directories of their own. */
let nextPoolId = 0;

export class ProcessPoolInvoker implements Invoker {
  /** Resolves when every child has started; rejects when a slot gives up starting. */
  readonly ready: Promise<void>;
  private readonly slots: Slot[];
  private readonly queue: Job[] = [];
  private readonly size: number;
  private readonly startTimeoutMs: number;
  private readonly cancelGraceMs: number;
  private readonly restartBaseMs: number;
  private readonly restartMaxMs: number;
  private readonly healthyAfterMs: number;
  private nextJobId = 1;
  /** Fragments that ran on the slot their files hash to (diagnostics and tests). */
  private routed = 0;
  /** The slot that last read each file (of fragments' first inputs), least recently used first. */
  private readonly placed = new Map<string, number>();
  private closed = false;
  private started = false;
  /** This pool's directory (see ProcessPoolOptions.settings). */
  private readonly scratchRoot: string;
  private lastStartError: PuffinError | undefined;
  private readonly killAllOnExit = () => {
    for (const slot of this.slots) slot.child?.kill('SIGKILL');
  };

  constructor(private readonly options: ProcessPoolOptions) {
    this.size = Math.max(1, options.size ?? options.settings.workers);
    this.startTimeoutMs = options.startTimeoutMs ?? 30_000;
    this.cancelGraceMs = options.cancelGraceMs ?? 2_000;
    this.restartBaseMs = options.restartBaseMs ?? 200;
    this.restartMaxMs = options.restartMaxMs ?? 10_000;
    this.healthyAfterMs = options.healthyAfterMs ?? 30_000;
    this.scratchRoot = join(ownProcessDir(join(options.settings.cacheDir, 'procs')), String(nextPoolId++));
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
      return { index, state: 'starting' as SlotState, failures: 0, everReady: false, fragmentsRun: 0, markReady, markFailed };
    });
    this.ready = Promise.all(readiness).then(() => undefined);
    // Nobody has to await readiness; a failure also surfaces on invoke().
    this.ready.catch(() => {});
    process.once('exit', this.killAllOnExit);
    if (!options.lazy) this.startChildren();
  }

  /** Start every slot's first child, once: at construction, or (lazy) at the first invoke(). */
  private startChildren(): void {
    if (this.started) return;
    this.started = true;
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

  /** Fragments dispatched to the slot their files hash to, since the pool started. */
  routedToPreferred(): number {
    return this.routed;
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

  /**
   * 'ok' while a child runs or is starting normally; otherwise why fragments cannot run
   * (no child is up and slots keep failing). Meanwhile invoke() refuses work when every slot
   * is backing off, and waits for a slot that is starting.
   */
  health(): 'ok' | string {
    if (this.closed) return 'the worker process pool is closed';
    return this.isDown() ? this.noWorkersError().message : 'ok';
  }

  invoke(request: FragmentRequest, signal?: AbortSignal): Promise<FragmentResult> {
    return new Promise<FragmentResult>((resolve, reject) => {
      if (this.closed) return reject(new PuffinError('unavailable', 'the worker process pool is closed'));
      this.startChildren();
      // With every slot backing off, queued work would wait seconds for nothing; a 503 now is
      // better. A slot that is starting is waited for: its start may well succeed.
      if (this.isDown() && this.slots.every((s) => s.state === 'waiting')) return reject(this.noWorkersError());
      if (signal?.aborted) return reject(abortReason(request, signal.reason));
      const job: Job = { id: this.nextJobId++, request, resolve, reject, signal, preferred: preferredSlot(request.fragment, this.size, (uri) => this.placed.get(uri)) };
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
      clearTimeout(slot.timer);
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
    const exited = await Promise.race([Promise.all(exits).then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), CLOSE_TIMEOUT_MS)))]);
    clearTimeout(timer);
    // The children's caches and sandboxes die with the pool (a child still exiting keeps them
    // until start-up cleanup sees this process gone).
    if (exited) await rm(this.scratchRoot, { recursive: true, force: true }).catch(() => undefined);
  }

  private spawn(slot: Slot): void {
    const { settings } = this.options;
    const childSettings: Settings = {
      ...settings,
      // Separate caches: one process must not evict or half-write files another is reading
      // (nor, sharing a home, another server's children).
      cacheDir: join(this.scratchRoot, `pool-${slot.index}`),
      cacheBytes: Math.floor(settings.cacheBytes / this.size),
    };
    slot.restartAt = undefined;
    let child: ChildProcess;
    try {
      // The compiled child when this process has it (runtime/compiled.js), else through tsx,
      // resolved from here so children find it whatever their working directory.
      const compiled = compiledEntry('pool-child');
      child = fork(compiled ?? CHILD_MODULE, [], {
        execArgv: compiled ? [] : ['--import', import.meta.resolve('tsx')],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        serialization: 'json',
      });
    } catch (err) {
      // Out of processes or file descriptors: a failed start like any other, retried after a pause.
      this.lastStartError = new PuffinError('unavailable', `worker process could not be started: ${(err as Error).message}`);
      slot.state = 'starting';
      this.afterFailure(slot, true);
      return;
    }
    slot.child = child;
    slot.pid = child.pid;
    slot.state = 'starting';
    slot.timer = setTimeout(() => {
      slot.exitReason = new PuffinError('unavailable', `worker process ${child.pid} did not start within ${this.startTimeoutMs} ms`);
      child.kill('SIGKILL');
    }, this.startTimeoutMs);
    child.on('message', (message: PoolChildMessage) => this.onMessage(slot, child, message));
    child.once('exit', (code, signal) => this.onExit(slot, child, code, signal));
    child.on('error', (err) => {
      // Spawn failures and failed sends land here; the 'exit' event (if any) does the rest.
      slot.exitReason ??= new PuffinError('unavailable', `worker process error: ${err.message}`);
      // A process that never spawned has no 'exit' to wait for.
      if (child.pid === undefined) this.onExit(slot, child, null, null);
      else if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
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
        slot.readyAt = Date.now();
        slot.everReady = true;
        slot.markReady();
        break;
      case 'init-failed':
        slot.exitReason = PuffinError.fromJSON({ error: message.error });
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
    // A child killed by the pool itself (a runaway or cancelled fragment) says nothing about
    // the next one: it is replaced at once and counts as no failure.
    const killedByPool = slot.state === 'stopping' || slot.state === 'draining';
    // A child that started, took a fragment and died running it proved the slot can start:
    // the death is the fragment's (or a stray kill's) doing, and the coordinator's retry and
    // the next query need a worker now, not after a backoff. It is replaced at once and counts
    // as no failure; backoff is for children that fail to start or die without work.
    const diedRunning = slot.state === 'busy' && slot.job !== undefined;
    if (slot.job) {
      const { fragment, queryId } = slot.job.request;
      slot.fragmentsRun++;
      this.settle(
        slot.job,
        new PuffinError('fragment_failed', `worker process ${child.pid} exited (${how}) while running fragment ${fragment.id} of query ${queryId}`, {
          fragmentId: fragment.id,
        }),
      );
      slot.job = undefined;
    }
    if (this.closed) {
      slot.state = 'dead';
      return;
    }
    // Why this child went: what the pool saw first (its init error, a start timeout), else how it exited.
    const why = slot.exitReason ?? new PuffinError('unavailable', `worker process ${child.pid} exited (${how})${wasStarting ? ' before it was ready' : ''}`);
    slot.exitReason = undefined;
    if (!killedByPool && !diedRunning) this.lastStartError = why;
    if (killedByPool || diedRunning) {
      this.spawn(slot);
      return;
    }
    this.afterFailure(slot, wasStarting);
  }

  /** Count a failure of the slot's child and start the next one after the backoff it earns. */
  private afterFailure(slot: Slot, wasStarting: boolean): void {
    // A child that stayed up for the healthy period proved the slot sound: start counting over.
    if (!wasStarting && slot.readyAt !== undefined && Date.now() - slot.readyAt >= this.healthyAfterMs) slot.failures = 0;
    slot.failures++;
    slot.readyAt = undefined;
    // One failure (a crash, a stray kill) is replaced at once, so a retried fragment finds a
    // worker; only repeated failures back off.
    const delay = slot.failures < REPEATED_FAILURES ? 0 : Math.min(this.restartMaxMs, this.restartBaseMs * 2 ** (slot.failures - REPEATED_FAILURES));
    slot.restartAt = Date.now() + delay;
    if (wasStarting && !slot.everReady && slot.failures >= MAX_INITIAL_START_FAILURES) slot.markFailed(this.noWorkersError());
    if (delay === 0) {
      this.spawn(slot);
      this.refuseQueuedIfDown();
      return;
    }
    slot.state = 'waiting';
    slot.timer = setTimeout(() => {
      if (!this.closed && slot.state === 'waiting') this.spawn(slot);
    }, delay);
    // Not unref'd: an open pool keeps its process alive through a pause as its children do
    // otherwise (someone may be awaiting `ready`); close() ends it.
    this.refuseQueuedIfDown();
  }

  private refuseQueuedIfDown(): void {
    // A start just failed again and nothing runs: queued fragments would wait on starts that
    // keep failing, so their queries get a 503 now (each failure bounds how long they wait).
    if (this.isDown()) for (const job of this.queue.splice(0)) this.settle(job, this.noWorkersError());
  }

  /** No child can take fragments, and some slot has failed again and again (health: degraded). */
  private isDown(): boolean {
    return !this.slots.some(serving) && this.slots.some((s) => s.failures >= REPEATED_FAILURES);
  }

  /** Hand queued jobs to idle children: each to the slot its files hash to when that one is idle. */
  private pump(): void {
    while (this.queue.length > 0) {
      const idle = (s: Slot | undefined): s is Slot => s?.state === 'idle' && s.child !== undefined;
      let at = this.queue.findIndex((j) => j.preferred !== undefined && idle(this.slots[j.preferred]));
      let slot: Slot | undefined = at >= 0 ? this.slots[this.queue[at].preferred!] : undefined;
      if (!slot) {
        // No queued fragment prefers an idle slot: the oldest goes to the first idle one.
        slot = this.slots.find(idle);
        if (!slot) return;
        at = 0;
      }
      const job = this.queue.splice(at, 1)[0];
      if (job.preferred === slot.index) this.routed++;
      this.place(job.request, slot.index);
      job.slot = slot;
      slot.job = job;
      slot.state = 'busy';
      const timeoutMs = Math.min(this.options.settings.invokeTimeoutMs, job.request.deadline - Date.now());
      this.armTimer(job, timeoutMs, `it ran longer than ${timeoutMs} ms`);
      this.send(slot.child!, { type: 'run', id: job.id, request: job.request });
    }
  }

  /** Remember that `slot` reads the files of the fragment's first input now. */
  private place(request: FragmentRequest, slot: number): void {
    for (const f of request.fragment.inputs[0]?.files ?? []) {
      this.placed.delete(f.uri);
      this.placed.set(f.uri, slot);
    }
    for (const uri of this.placed.keys()) {
      if (this.placed.size <= MAX_PLACED_FILES) break;
      this.placed.delete(uri);
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
    const failures = this.slots.reduce((n, s) => n + s.failures, 0);
    const starting = this.slots.some((s) => s.state === 'starting');
    const next = Math.min(...this.slots.map((s) => (s.state === 'waiting' && s.restartAt !== undefined ? s.restartAt : Date.now())));
    const retryAfterMs = Math.max(0, next - Date.now());
    const cause = this.lastStartError ? ` (last: ${this.lastStartError.message})` : '';
    const when = starting ? 'one is starting now' : `next in ${retryAfterMs} ms`;
    return new PuffinError('unavailable', `no worker process is running: ${failures} consecutive failure(s) across ${this.size} slot(s)${cause}; the pool restarts them, ${when}`, {
      retryAfterMs,
    });
  }
}

/** FNV-1a of a string, 32 bits: the rendezvous hash's weight (no cryptography needed). */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // A final avalanche, so slots differing in the last character do not rank alike.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

/** The slot a file's URI is assigned to among `slots` (rendezvous hashing: the highest weight wins). */
export function rendezvousSlot(uri: string, slots: number): number {
  let best = 0;
  let bestWeight = -1;
  for (let s = 0; s < slots; s++) {
    const weight = fnv1a(`${s}\u0000${uri}`);
    if (weight > bestWeight) {
      best = s;
      bestWeight = weight;
    }
  }
  return best;
}

/**
 * The slot a fragment prefers: the one most bytes of its first input's files belong to (that
 * input is the table it splits; the others, read whole by every fragment, would pull every
 * fragment to one slot). A file belongs to the slot `placed` says last read it, else to the
 * one its URI hashes to. Undefined for a fragment without files, or a pool of one.
 */
export function preferredSlot(fragment: FragmentRequest['fragment'], slots: number, placed: (uri: string) => number | undefined = () => undefined): number | undefined {
  const files = fragment.inputs[0]?.files ?? [];
  if (slots < 2 || files.length === 0) return undefined;
  const weights = new Array<number>(slots).fill(0);
  for (const f of files) {
    const last = placed(f.uri);
    weights[last !== undefined && last < slots ? last : rendezvousSlot(f.uri, slots)] += Math.max(1, f.sizeBytes);
  }
  let best = 0;
  for (let s = 1; s < slots; s++) if (weights[s] > weights[best]) best = s;
  return best;
}

/** A slot whose child can take (or is running) fragments. */
function serving(slot: Slot): boolean {
  return slot.state === 'idle' || slot.state === 'busy' || slot.state === 'draining';
}

function abortReason(request: FragmentRequest, reason: unknown): PuffinError {
  if (reason instanceof PuffinError) return reason;
  return new PuffinError('timeout', `fragment ${request.fragment.id} of query ${request.queryId} was cancelled`, {
    fragmentId: request.fragment.id,
  });
}
