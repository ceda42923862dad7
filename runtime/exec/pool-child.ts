// Entry point of one ProcessPoolInvoker child: owns a Worker and runs the fragments its
// parent sends over IPC. It exits when the parent goes away, so no child outlives its pool.

import { PuffinError } from '../errors.ts';
import type { Settings } from '../settings.ts';
import { Worker } from './worker.ts';
import { decodeRequest, encodeError, type PoolChildMessage, type PoolParentMessage } from './wire.ts';

if (!process.send) {
  console.error('pool-child.ts is started by ProcessPoolInvoker over IPC, not run directly');
  process.exit(2);
}

let worker: Worker | undefined;
const running = new Map<number, AbortController>();
const ORPHAN_EXIT_GRACE_MS = 1_000;

function send(message: PoolChildMessage): void {
  // A closed channel means the parent is gone; the 'disconnect' handler ends this process.
  process.send?.(message, undefined, undefined, () => {});
}

async function init(settings: Settings): Promise<void> {
  try {
    worker = await Worker.create(settings);
    send({ type: 'ready', pid: process.pid });
  } catch (err) {
    send({ type: 'init-failed', error: encodeError(err).error });
  }
}

async function run(id: number, rawRequest: unknown): Promise<void> {
  const controller = new AbortController();
  running.set(id, controller);
  try {
    if (!worker) throw new PuffinError('internal', 'worker process received a fragment before it was initialized');
    const result = await worker.runFragment(decodeRequest(rawRequest), controller.signal);
    send({ type: 'result', id, result });
  } catch (err) {
    send({ type: 'error', id, error: encodeError(err).error });
  } finally {
    running.delete(id);
  }
}

process.on('message', (message: PoolParentMessage) => {
  switch (message.type) {
    case 'init':
      void init(message.settings as Settings);
      break;
    case 'run':
      void run(message.id, message.request);
      break;
    case 'cancel':
      running.get(message.id)?.abort(new PuffinError('timeout', 'fragment cancelled by the coordinator'));
      break;
  }
});

/** Parent gone: stop. DuckDB's teardown at exit waits for running queries, so interrupt them first. */
function exitOrphaned(): void {
  for (const controller of running.values()) controller.abort(new PuffinError('unavailable', 'worker pool parent exited'));
  const started = Date.now();
  setInterval(() => {
    if (running.size === 0) process.exit(0);
    // A query that ignores the interrupt must not keep an orphan alive.
    if (Date.now() - started > ORPHAN_EXIT_GRACE_MS) process.kill(process.pid, 'SIGKILL');
  }, 10);
}

process.on('disconnect', exitOrphaned);
