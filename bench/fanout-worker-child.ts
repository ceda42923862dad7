// The worker side of bench/fanout-modes.ts, in a process of its own, as Lambda's workers are
// on machines of their own: the local Lambda Invoke endpoint with the real worker handler
// ('select-1', a `SELECT 1` fragment) and a no-op handler ('no-op') that answers a fixed
// partial at once, publishes an asynchronous completion to Redis, or (a relay) starts each
// relayed request itself. So the coordinator's process holds the coordinator alone, and its
// CPU time is the coordinator's.
//
//   node --import tsx bench/fanout-worker-child.ts <redis url>
//
// Prints one line of JSON, {"url": <endpoint>}, once it listens; stops on SIGTERM or when its
// stdin closes (the parent died).

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AsyncFragmentRequest, CompletionTarget, FragmentResult } from '../runtime/exec/invoker.ts';
import { startLocalLambda, type LambdaHandler } from '../runtime/exec/local-lambda.ts';
import { completionOf } from '../runtime/exec/wire.ts';
import { createWorkerHandler } from '../runtime/functions/worker.ts';
import type { Plan } from '../runtime/planner/plan.ts';
import { loadSettings, toRootUrl } from '../runtime/settings.ts';
import { RedisStateStore } from '../runtime/state/redis-store.ts';

/** `SELECT 1` as one fragment (the same as bench/fanout-modes.ts selectOnePlan's). */
const fragment: Plan['fragments'][number] = { id: 'f0', output: 'partials', inputs: [], sql: 'SELECT 1 AS one' };

async function main(): Promise<void> {
  const redisUrl = process.argv[2];
  if (!redisUrl) throw new Error('usage: fanout-worker-child.ts <redis url>');
  const root = await mkdtemp(join(tmpdir(), 'puffindb-fanout-worker-'));
  const settings = loadSettings({}, { home: root, warehouse: toRootUrl(join(root, 'warehouse')), shuffleUrl: toRootUrl(join(root, 'shuffle')), cacheDir: join(root, 'cache'), threads: 1, redisUrl });
  // Its own connection, as a Lambda container would have.
  const workerStore = await RedisStateStore.connect({ url: redisUrl });
  const real = createWorkerHandler(() => settings, { stateStore: async () => workerStore });
  const sample = (await real({ queryId: 'sample', fragment, deadline: Date.now() + 60_000 })) as FragmentResult | null;
  if (!sample) throw new Error('the sample fragment failed');
  const noop: LambdaHandler = async (event) => {
    // A relay (exec/async-fanout.ts): its Invoke calls run on the relaying worker; here each
    // relayed fragment is started in this process, off the coordinator's.
    const relay = (event as { relay?: AsyncFragmentRequest[] }).relay;
    if (relay) {
      for (const request of relay) setImmediate(() => void noop(request));
      return null;
    }
    const e = event as { fragment: { id: string }; report?: CompletionTarget };
    const result: FragmentResult = { ...sample, fragmentId: e.fragment.id };
    if (!e.report) return result;
    await workerStore.publishCompletion(e.report.stream, completionOf(e.fragment.id, e.report.attempt, { result }));
    return null;
  };
  const lambda = await startLocalLambda({ 'select-1': real, 'no-op': noop });
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await lambda.close().catch(() => undefined);
    await workerStore.close().catch(() => undefined);
    await rm(root, { recursive: true, force: true });
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.stdin.on('end', () => void stop());
  process.stdin.on('close', () => void stop());
  process.stdin.resume();
  process.stdout.write(`${JSON.stringify({ url: lambda.url })}\n`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
