// The benchmark harness: runs a scenario's contenders interleaved (so machine drift hits
// them alike), after warm-up, for several repetitions, and summarises each series as
// median / min / max. Scenarios return plain data; main.ts writes it and charts it.

import { performance } from 'node:perf_hooks';
import { PuffinError } from '../runtime/errors.ts';

export interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
}

/** Median (mean of the middle two for an even count), min and max of a non-empty series. */
export function summarize(values: readonly number[]): Summary {
  if (values.length === 0) throw new PuffinError('bad_request', 'cannot summarise an empty series of timings');
  if (values.some((v) => !Number.isFinite(v))) throw new PuffinError('bad_request', `timings must be finite numbers, got ${values.join(', ')}`);
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { median, min: s[0], max: s[s.length - 1], n: s.length };
}

/** Geometric mean of positive ratios. */
export function geometricMean(values: readonly number[]): number {
  if (values.length === 0) throw new PuffinError('bad_request', 'geometric mean of nothing');
  if (values.some((v) => !(v > 0))) throw new PuffinError('bad_request', `geometric mean needs positive values, got ${values.join(', ')}`);
  return Math.exp(values.reduce((s, v) => s + Math.log(v), 0) / values.length);
}

export interface Contender<T = unknown> {
  name: string;
  /** One timed run; what it returns is kept from the last repetition (e.g. query stats). */
  run: () => Promise<T>;
}

export interface MeasureOptions {
  warmup: number;
  reps: number;
}

export interface Measured<T = unknown> {
  timings: Record<string, Summary>;
  raw: Record<string, number[]>;
  last: Record<string, T>;
}

/**
 * Run every contender `warmup` times untimed, then `reps` rounds in which each runs once,
 * in an order rotated each round so no contender always goes first (caches, GC, turbo).
 */
export async function measureInterleaved<T>(contenders: readonly Contender<T>[], options: MeasureOptions): Promise<Measured<T>> {
  if (contenders.length === 0) throw new PuffinError('bad_request', 'no contenders to measure');
  if (!(options.reps >= 1) || !(options.warmup >= 0)) throw new PuffinError('bad_request', `reps must be >= 1 and warmup >= 0, got ${options.reps} / ${options.warmup}`);
  const raw: Record<string, number[]> = {};
  const last: Record<string, T> = {};
  for (const c of contenders) raw[c.name] = [];
  for (let w = 0; w < options.warmup; w++) for (const c of contenders) last[c.name] = await c.run();
  for (let r = 0; r < options.reps; r++) {
    for (let k = 0; k < contenders.length; k++) {
      const c = contenders[(k + r) % contenders.length];
      const t = performance.now();
      last[c.name] = await c.run();
      raw[c.name].push(performance.now() - t);
    }
  }
  const timings: Record<string, Summary> = {};
  for (const c of contenders) timings[c.name] = summarize(raw[c.name]);
  return { timings, raw, last };
}

/** One bar group of a scenario's chart: a label and a value per series. */
export interface ChartSpec {
  title: string;
  unit: string;
  /** Series names, in legend order. */
  series: string[];
  groups: { label: string; values: (number | null)[] }[];
  /** Draw the value axis on a log scale (for values spanning decades). */
  log?: boolean;
}

export interface ScenarioResult {
  scenario: string;
  /** 'skipped: <reason>' when the scenario could not run here; never a made-up figure. */
  status: 'ok' | `skipped: ${string}`;
  description: string;
  /** Key figures, one line each, quoted in the README. */
  headline: string[];
  /** What limits these figures (machine, scale, what is not modelled). */
  limits: string[];
  params: Record<string, unknown>;
  data: unknown;
  chart?: ChartSpec;
  /** Parts of the scenario that did not run, each with why. */
  skipped?: { part: string; reason: string }[];
}

export interface RunContext {
  quick: boolean;
  /** bench/.data: generated, git-ignored. */
  dataDir: string;
  /** bench/results. */
  resultsDir: string;
  log: (line: string) => void;
}

export interface Scenario {
  name: string;
  run(ctx: RunContext): Promise<ScenarioResult>;
}

export function skipped(scenario: string, description: string, reason: string, params: Record<string, unknown> = {}): ScenarioResult {
  return { scenario, status: `skipped: ${reason}`, description, headline: [`skipped: ${reason}`], limits: [], params, data: null };
}
