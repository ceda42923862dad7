// Entry point of one SqlRunnerPool process slot: a DuckDB sandboxed to the slot's directory
// that runs one job at a time for the coordinator. The parent SIGKILLs it when a job's
// deadline passes (the only way to stop a long scalar call), and it exits when the parent
// goes away, so no runner outlives its coordinator.

import { Engine, runQuery } from '../engine/engine.ts';
import { toPuffinError } from '../errors.ts';
import type { RunnerChildMessage, RunnerParentMessage } from './sql-runner.ts';

if (!process.send) {
  console.error('sql-runner-child.ts is started by SqlRunnerPool over IPC, not run directly');
  process.exit(2);
}

let engine: Engine | undefined;

function send(message: RunnerChildMessage): void {
  process.send?.(message, undefined, undefined, () => {});
}

function wireError(err: unknown): { code: string; message: string } {
  const e = toPuffinError(err);
  return { code: e.code, message: e.message };
}

async function run(id: number, setup: string[], sql: string): Promise<void> {
  try {
    if (!engine) throw new Error('SQL runner received a query before it was initialized');
    const conn = await engine.connect();
    try {
      for (const statement of setup) await runQuery(conn, statement);
      send({ type: 'result', id, result: await runQuery(conn, sql) });
    } finally {
      conn.closeSync();
    }
  } catch (err) {
    send({ type: 'error', id, error: wireError(err) });
  }
}

process.on('message', (message: RunnerParentMessage) => {
  switch (message.type) {
    case 'init':
      Engine.create({ threads: message.threads, memoryLimit: message.memoryLimit, allowedDirectories: [message.dir] }).then(
        (e) => {
          engine = e;
          send({ type: 'ready' });
        },
        (err: unknown) => send({ type: 'init-failed', error: wireError(err) }),
      );
      break;
    case 'run':
      void run(message.id, message.setup, message.sql);
      break;
  }
});

// Parent gone: nothing will read an answer. DuckDB's teardown waits for running queries, so
// do not wait for it.
process.on('disconnect', () => process.kill(process.pid, 'SIGKILL'));
