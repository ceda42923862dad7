// A discrete-event model of one query on a fleet of workers: the coordinator plans, then
// dispatches fragments one after another (its measured per-fragment cost), environments
// become ready (warm: at once; cold: Lambda adds at most N environments per step, each
// paying a cold start), workers fetch and scan (overlapped; fetch bounded per worker by its
// connections and fleet-wide by the GET rate of the prefix, served in arrival order),
// partials travel back inline or through S3 when over the sync payload limit, the
// coordinator lands them one at a time, then reduces. Pure: same input, same answer.

import { PuffinError } from '../../runtime/errors.ts';

export interface QueryProfile {
  id: string;
  shape: string;
  /** Bytes of Parquet the query reads, in all. */
  scanBytes: number;
  /** Fragment work: ms of one core per byte scanned. */
  cpuMsPerByte: number;
  /** Partial size of a fragment: a fixed part (aggregates) plus a part proportional to its input (pulled-up rows). */
  partialBytesFixed: number;
  partialBytesPerScanByte: number;
  planMs: number;
  /** Reduce: fixed ms, plus ms per byte of partials, at the calibration machine's core count. */
  reduceMsFixed: number;
  reduceMsPerPartialByte: number;
}

export interface FleetConfig {
  workers: number;
  /** Threads (vCPUs) each worker scans with. */
  vcpusPerWorker: number;
  /** When set, all workers share this many cores (a local machine): work stretches when oversubscribed. */
  sharedCores?: number;
  cold: boolean;
  /** Per-worker fetch bandwidth (bytes/s); Infinity for local files. */
  fetchBytesPerSecondPerWorker: number;
  /** Fleet-wide GET rate (GETs/s); Infinity for local files. */
  getsPerSecond: number;
  getBytes: number;
  firstByteMs: number;
  /** Coordinator's serial cost to dispatch one fragment, and to land one partial. */
  dispatchMs: number;
  landMs: number;
  /** Round trip of an invoke (half each way). */
  invokeLatencyMs: number;
  /** Fixed cost of a fragment on the worker (views, COPY of the partial, ...). */
  fragmentFixedMs: number;
  newEnvironmentsPerStep: number;
  scalingStepMs: number;
  coldStartMs: number;
  syncPayloadBytes: number;
  /** Bandwidth for a partial stored to and fetched from S3 (each way). */
  shuffleBytesPerSecond: number;
  /** The coordinator reduces this many times faster than the calibration machine. */
  reduceSpeedup: number;
}

export interface SimResult {
  latencyMs: number;
  planMs: number;
  /** When the last fragment's environment was ready. */
  lastReadyMs: number;
  /** When the last partial was landed at the coordinator. */
  landedMs: number;
  reduceMs: number;
  /** Sum over workers of invoke-to-response time (ms), cold starts included. */
  workerBusyMs: number;
  gets: number;
  storedPartials: number;
  partialBytes: number;
}

type Event = { t: number; seq: number; kind: 'dispatch' | 'start' | 'finish' | 'arrive'; k: number };

/** A binary min-heap on (t, seq): ties resolve in insertion order, so runs are deterministic. */
class EventQueue {
  private heap: Event[] = [];
  private seq = 0;
  get size(): number { return this.heap.length; }
  push(e: Omit<Event, 'seq'>): void {
    const h = this.heap;
    h.push({ ...e, seq: this.seq++ });
    for (let i = h.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (!before(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }
  pop(): Event {
    const h = this.heap;
    const top = h[0];
    const last = h.pop()!;
    if (h.length) {
      h[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l], h[m])) m = l;
        if (r < h.length && before(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}
const before = (a: Event, b: Event): boolean => a.t < b.t || (a.t === b.t && a.seq < b.seq);

function check(cond: boolean, what: string): void {
  if (!cond) throw new PuffinError('bad_request', `fleet model: ${what}`);
}

export function simulate(q: QueryProfile, c: FleetConfig): SimResult {
  check(Number.isInteger(c.workers) && c.workers >= 1, `workers must be a positive integer, got ${c.workers}`);
  check(c.vcpusPerWorker > 0 && q.scanBytes >= 0 && q.cpuMsPerByte >= 0, 'vCPUs must be positive, bytes and work non-negative');
  const n = c.workers;
  const bytesPerFragment = q.scanBytes / n;
  const partial = q.partialBytesFixed + q.partialBytesPerScanByte * bytesPerFragment;
  const stored = partial > c.syncPayloadBytes;
  const share = c.sharedCores ? Math.max(1, (n * c.vcpusPerWorker) / c.sharedCores) : 1;
  const computeMs = (bytesPerFragment * q.cpuMsPerByte * share) / c.vcpusPerWorker;
  const getsPerFragment = bytesPerFragment > 0 ? Math.ceil(bytesPerFragment / c.getBytes) : 0;
  const fetchMs = Number.isFinite(c.fetchBytesPerSecondPerWorker) ? (bytesPerFragment / c.fetchBytesPerSecondPerWorker) * 1000 : 0;
  const shuffleMs = stored ? c.firstByteMs + (partial / c.shuffleBytesPerSecond) * 1000 : 0;

  const events = new EventQueue();
  const startAt = new Float64Array(n);
  let getServerFree = 0;
  let coordinatorFree = q.planMs;
  let lastReady = 0;
  let landed = q.planMs;
  let busy = 0;
  // The coordinator dispatches serially; each dispatch is an event so arrivals interleave.
  events.push({ t: q.planMs, kind: 'dispatch', k: 0 });
  while (events.size) {
    const e = events.pop();
    switch (e.kind) {
      case 'dispatch': {
        // Dispatching and landing share the coordinator's one thread.
        const at = Math.max(e.t, coordinatorFree);
        const sent = at + c.dispatchMs;
        coordinatorFree = sent;
        let ready = sent + c.invokeLatencyMs / 2;
        if (c.cold) {
          const step = Math.floor(e.k / c.newEnvironmentsPerStep);
          ready = Math.max(ready, q.planMs + step * c.scalingStepMs) + c.coldStartMs;
        }
        lastReady = Math.max(lastReady, ready);
        events.push({ t: ready, kind: 'start', k: e.k });
        if (e.k + 1 < n) events.push({ t: sent, kind: 'dispatch', k: e.k + 1 });
        break;
      }
      case 'start': {
        startAt[e.k] = e.t;
        // GETs of the whole fleet go through one server at the prefix's rate, first come first served.
        let fetched = e.t + fetchMs + (getsPerFragment ? c.firstByteMs : 0);
        if (Number.isFinite(c.getsPerSecond) && getsPerFragment) {
          const begin = Math.max(e.t, getServerFree);
          getServerFree = begin + (getsPerFragment / c.getsPerSecond) * 1000;
          fetched = Math.max(fetched, getServerFree + c.firstByteMs);
        }
        const scanned = e.t + (getsPerFragment ? c.firstByteMs : 0) + computeMs;
        events.push({ t: Math.max(fetched, scanned) + c.fragmentFixedMs + shuffleMs, kind: 'finish', k: e.k });
        break;
      }
      case 'finish': {
        const cold = c.cold ? c.coldStartMs : 0;
        busy += e.t - startAt[e.k] + cold;
        events.push({ t: e.t + c.invokeLatencyMs / 2 + shuffleMs, kind: 'arrive', k: e.k });
        break;
      }
      case 'arrive': {
        const at = Math.max(e.t, coordinatorFree) + c.landMs;
        coordinatorFree = at;
        landed = Math.max(landed, at);
        break;
      }
    }
  }
  const partialBytes = partial * n;
  const reduceMs = (q.reduceMsFixed + q.reduceMsPerPartialByte * partialBytes) / c.reduceSpeedup;
  return {
    latencyMs: landed + reduceMs,
    planMs: q.planMs,
    lastReadyMs: lastReady,
    landedMs: landed,
    reduceMs,
    workerBusyMs: busy,
    gets: getsPerFragment * n + (stored ? 2 * n : 0),
    storedPartials: stored ? n : 0,
    partialBytes,
  };
}

export interface CostInputs {
  workerMemoryMb: number;
  pricePerGbSecond: number;
  pricePerRequest: number;
  pricePerGet: number;
}

export interface Cost { workers: number; coordinator: number; requests: number; gets: number; total: number }

/** Dollars for one query: workers' and coordinator's GB-seconds, invokes, S3 GETs. */
export function costOf(r: SimResult, workers: number, p: CostInputs): Cost {
  const gb = p.workerMemoryMb / 1024;
  const w = (r.workerBusyMs / 1000) * gb * p.pricePerGbSecond;
  const coord = (r.latencyMs / 1000) * gb * p.pricePerGbSecond;
  const requests = (workers + 1) * p.pricePerRequest;
  const gets = r.gets * p.pricePerGet;
  return { workers: w, coordinator: coord, requests, gets, total: w + coord + requests + gets };
}
