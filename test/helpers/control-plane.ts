// A control plane over the planner fixture's tables for tests: real DuckDB, real in-process
// workers behind an invoker that counts invocations and can be slowed down, the real
// in-memory state store (or one passed in, e.g. Redis), and a warehouse in a temp dir.

import { join } from 'node:path';
import { InProcessInvoker } from '../../runtime/exec/in-process-invoker.ts';
import type { FragmentRequest, FragmentResult, Invoker } from '../../runtime/exec/invoker.ts';
import { openControlPlane, type ControlPlane } from '../../runtime/exec/control-plane.ts';
import { PuffinError } from '../../runtime/errors.ts';
import { loadSettings, type Settings } from '../../runtime/settings.ts';
import { MemoryStateStore } from '../../runtime/state/memory-store.ts';
import type { StateStore } from '../../runtime/state/state-store.ts';
import { plannerFixture, type PlannerFixture } from '../runtime/planner/fixture.ts';

/** Counts fragment invocations; with `delayMs`, each waits first (abandoned when aborted). */
export class CountingInvoker implements Invoker {
  invocations = 0;
  delayMs = 0;

  constructor(private readonly inner: Invoker) {}

  async invoke(request: FragmentRequest, signal?: AbortSignal): Promise<FragmentResult> {
    this.invocations++;
    if (this.delayMs > 0) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, this.delayMs);
        signal?.addEventListener('abort', () => {
          clearTimeout(timer);
          reject(signal.reason instanceof PuffinError ? signal.reason : new PuffinError('timeout', 'aborted'));
        }, { once: true });
      });
    }
    return this.inner.invoke(request, signal);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** The same invoker for a second control plane, which must not close it when it closes. */
export function borrowed(invoker: Invoker): Invoker {
  return { invoke: (request, signal) => invoker.invoke(request, signal), close: async () => undefined };
}

export interface ControlFixture {
  fx: PlannerFixture;
  settings: Settings;
  state: StateStore;
  plane: ControlPlane;
  invoker: CountingInvoker;
  close(): Promise<void>;
}

/** `env` overrides settings by their environment variable names. */
export async function controlFixture(env: Record<string, string> = {}, state: StateStore = new MemoryStateStore()): Promise<ControlFixture> {
  const fx = await plannerFixture();
  const settings = loadSettings({
    PUFFINDB_HOME: join(fx.dir, 'home'),
    PUFFINDB_WAREHOUSE: join(fx.dir, 'warehouse'),
    PUFFINDB_WORKERS: '2',
    PUFFINDB_THREADS: '1',
    PUFFINDB_MAX_FRAGMENTS: '3',
    ...env,
  });
  const invoker = new CountingInvoker(await InProcessInvoker.create(settings));
  const plane = await openControlPlane({ settings, catalog: fx.catalog, state, invoker, onError: () => undefined });
  return {
    fx,
    settings,
    state,
    plane,
    invoker,
    async close() {
      await plane.close();
      await state.close();
      fx.close();
    },
  };
}

/** Poll `check` every 20 ms until it returns a value, or fail after `timeoutMs`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
