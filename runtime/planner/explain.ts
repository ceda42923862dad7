// The plan as text, for `puffindb explain` and the console: the stage tree from the answer
// down to the table scans, each stage with its tasks, what it reads, how its output is
// partitioned and why it exists; then the scans with their pruning. With measured stage
// statistics (explain --analyze) each stage also shows its actual rows, bytes and time.

import type { Fragment, Plan, StageStats } from './plan.ts';

export interface AnalyzedFigures {
  stages: StageStats[];
  /** The reduce step: bytes it read, its time. */
  reduce?: { bytesIn: number; ms: number; rows: number };
  singleNodeBytes?: number;
  /** Duplicate attempts started for straggling tasks, and how many finished first. */
  duplicates?: number;
  duplicateWins?: number;
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

function actual(figures: AnalyzedFigures | undefined, stage: string): string {
  const f = figures?.stages.find((s) => s.stage === stage);
  if (!f) return '';
  const shuffle = f.shuffleGets || f.shufflePuts ? `, ${f.shuffleGets} GETs, ${f.shufflePuts} PUTs` : '';
  const cache = f.cacheHits || f.cacheMisses ? `, partition cache ${f.cacheHits ?? 0} hit(s) ${f.cacheMisses ?? 0} miss(es) ${bytes(f.cacheBytesSaved ?? 0)} saved` : '';
  // A later stage whose partitions were grouped into fewer tasks (by the bytes its producers wrote).
  const grouped = f.partitions !== undefined ? `${f.tasks} task(s) for ${f.partitions} partitions, ` : '';
  return ` [actual: ${grouped}${f.rowsOut} rows out, ${bytes(f.bytesIn)} in, ${bytes(f.bytesOut)} out${shuffle}${cache}, ${f.ms} ms]`;
}

/** Leaf stages: the fragments grouped by output, in first-seen order. */
function leafGroups(plan: Plan): Map<string, Fragment[]> {
  const groups = new Map<string, Fragment[]>();
  for (const f of plan.fragments) {
    const list = groups.get(f.output) ?? [];
    list.push(f);
    groups.set(f.output, list);
  }
  return groups;
}

export function formatPlan(plan: Plan, figures?: AnalyzedFigures): string {
  const lines = [`shape: ${plan.shape}`, `reason: ${plan.reason}`];
  // Materialized subqueries first, in the order they run, each with its own plan once made.
  for (const step of plan.materialized?.steps ?? []) {
    const result = step.result ? ` [actual: ${step.result.rows} rows${step.kind === 'table' ? `, ${bytes(step.result.bytes)} in ${step.result.files} file(s)` : ''}]` : '';
    lines.push(`step ${step.name}: ${step.what}, materialized as ${step.kind === 'table' ? 'a table' : 'a constant'}${result}`);
    lines.push(`  sql: ${step.sql}`);
    if (step.plan) lines.push(...formatPlan(step.plan, figures && step.result ? { stages: step.result.stages } : undefined).split('\n').map((l) => `    ${l}`));
  }
  if (plan.shape === 'staged' && plan.materialized) {
    lines.push(`then, planned once the steps ran (with their results' real sizes): ${plan.materialized.sql}`);
    return lines.join('\n');
  }
  const leaves = leafGroups(plan);
  const stages = new Map((plan.stages ?? []).map((s) => [s.id, s]));

  const describeLeaf = (output: string, depth: number): void => {
    const tasks = leaves.get(output)!;
    const pad = '  '.repeat(depth);
    const partitioning = tasks[0].shuffleWrite?.partitioning;
    const out = partitioning ? `hash(${partitioning.keys.map((k) => `${k.expr}::${k.type}`).join(', ')}) into ${partitioning.count}` : 'single';
    lines.push(`${pad}stage ${output}: ${tasks.length} task(s) on workers, output ${out}${actual(figures, output)}`);
    for (const sql of new Set(tasks.map((t) => t.sql))) lines.push(`${pad}  sql: ${sql}`);
    for (const t of tasks) {
      lines.push(`${pad}  ${t.id}: ${t.inputs.map((i) => `${i.table}[${i.files.length} files, ${i.files.reduce((s, x) => s + x.sizeBytes, 0)} bytes]`).join(' + ')}`);
    }
  };
  const describeStage = (id: string, depth: number): void => {
    const pad = '  '.repeat(depth);
    const stage = stages.get(id);
    if (!stage) {
      if (leaves.has(id)) describeLeaf(id, depth);
      return;
    }
    const p = stage.output.partitioning;
    const out = p.kind === 'hash' ? `hash(${p.keys.map((k) => `${k.expr}::${k.type}`).join(', ')}) into ${p.count}` : 'single';
    lines.push(`${pad}stage ${stage.id}: ${stage.tasks} task(s) on workers, output ${out}${actual(figures, stage.id)}`);
    lines.push(`${pad}  why: ${stage.reason}`);
    lines.push(`${pad}  sql: ${stage.sql}`);
    if (stage.tables.length) lines.push(`${pad}  reads whole: ${stage.tables.map((t) => `${t.table}[${t.files.length} files]`).join(', ')}`);
    for (const read of stage.reads) {
      lines.push(`${pad}  reads ${read.view}: partition p of stage ${read.stage}`);
      describeStage(read.stage, depth + 2);
    }
  };

  if (plan.stored) {
    // A materialized subquery: its last output's tasks store the result, nothing is reduced.
    lines.push(`result: stored by the tasks of stage ${plan.stored}, as the files of a table the rest of the query reads`);
    describeStage(plan.stored, 1);
  } else {
    const reduceFigures = figures?.reduce ? ` [actual: ${figures.reduce.rows} rows, ${bytes(figures.reduce.bytesIn)} in, ${figures.reduce.ms} ms]` : '';
    lines.push(`stage reduce: 1 task on the coordinator, the answer${reduceFigures}`);
    lines.push(`  sql: ${plan.reduce.sql}`);
    for (const view of plan.reduce.views) describeStage(view.name, 2);
  }
  if (figures?.singleNodeBytes !== undefined) lines.push(`single-node bytes: ${bytes(figures.singleNodeBytes)} (the most read by any one-task step)`);
  if (figures?.duplicates) lines.push(`stragglers: ${figures.duplicates} duplicate attempt(s) started, ${figures.duplicateWins ?? 0} finished first`);
  if (plan.join?.partitioned) {
    const j = plan.join.partitioned;
    lines.push(`partitioned join: ${j.tables.join(' x ')} on ${j.keys.join(' = ')} (${j.type}), ${j.partitions} partitions${plan.join.broadcast.length ? `; ${plan.join.broadcast.join(', ')} read whole` : ''}`);
  } else if (plan.join?.coSplit) {
    const j = plan.join.coSplit;
    lines.push(`co-split join: ${plan.join.split} and ${j.table} split together along their files' ranges of ${j.keys.join(' = ')} (${j.ranges} disjoint key ranges)${j.subqueries ? `, ${j.subqueries} subquer${j.subqueries === 1 ? 'y' : 'ies'} over them evaluated by every fragment over its own files` : ''}${plan.join.broadcast.length ? `; ${plan.join.broadcast.join(', ')} read whole by every fragment` : ''}`);
  } else if (plan.join) {
    lines.push(`broadcast join: ${plan.join.split} split; ${plan.join.broadcast.join(', ')} read whole by every fragment`);
  }
  for (const s of plan.scans) {
    lines.push(`scan ${s.table} (${s.role}): ${s.filesKept} of ${s.filesTotal} files kept, ${s.filesTotal - s.filesKept} pruned; ${s.rowsKept} rows, ${s.bytesKept} bytes`);
    if (s.pruneFilter) lines.push(`  pruned with: ${s.pruneFilter}`);
    if (s.manifests) lines.push(`  manifests: ${s.manifests.read} of ${s.manifests.total} read, ${s.manifests.total - s.manifests.read} skipped by their partition summaries`);
    if (s.columns) lines.push(`  columns: ${s.columns.join(', ')}`);
  }
  return lines.join('\n');
}
