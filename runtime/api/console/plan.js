// The explain view: the plan's stage tree drawn as nested boxes (CSS draws the connectors;
// no library). The answer (the reduce step on the coordinator) is at the top; under it the
// stages it reads, each with its tasks, what it reads whole and how its output is
// partitioned; the leaf stages (the fragments that scan the tables) are at the bottom.

import { h, formatBytes, formatCount, formatMs } from './dom.js';

/** @typedef {{ stage: string, tasks: number, rowsOut: number, bytesIn: number, bytesOut: number, shuffleGets: number, shufflePuts: number, ms: number }} StageStats */
/** @typedef {{ stages?: StageStats[], singleNodeBytes?: number }} Figures */

/** @param {any} p a Partitioning */
function partitioning(p) {
  if (!p || p.kind !== 'hash') return 'single';
  return `hash(${p.keys.map((/** @type {any} */ k) => `${String(k.expr).replace(/^"(.*)"$/, '$1')}::${k.type}`).join(', ')}) into ${p.count}`;
}

/** @param {Figures | undefined} figures @param {string} id */
function actual(figures, id) {
  const f = figures?.stages?.find((s) => s.stage === id);
  if (!f) return null;
  const shuffle = f.shuffleGets || f.shufflePuts ? `, ${f.shuffleGets} GETs, ${f.shufflePuts} PUTs` : '';
  // A later stage whose partitions were grouped into fewer tasks by their bytes.
  const grouped = f.partitions !== undefined ? `${f.tasks} task(s) for ${f.partitions} partitions, ` : '';
  return h('div', { class: 'actual' }, `actual: ${grouped}${formatCount(f.rowsOut)} rows out, ${formatBytes(f.bytesIn)} in, ${formatBytes(f.bytesOut)} out${shuffle}, ${formatMs(f.ms)}`);
}

/** @param {string} sql */
function sqlBlock(sql) {
  return h('details', { class: 'sql' }, h('summary', null, 'SQL'), h('pre', null, sql));
}

const MAX_TASK_CHIPS = 16;

/** @param {any} plan */
function leafGroups(plan) {
  /** @type {Map<string, any[]>} */
  const groups = new Map();
  for (const f of plan.fragments ?? []) {
    const list = groups.get(f.output) ?? [];
    list.push(f);
    groups.set(f.output, list);
  }
  return groups;
}

/**
 * One node of the tree: a box and, under it, the boxes it reads.
 * @param {HTMLElement} box @param {HTMLElement[]} children
 */
function node(box, children) {
  return h('li', null, box, children.length ? h('ul', null, children) : null);
}

/** @param {any} plan @param {Figures | undefined} figures */
function tree(plan, figures) {
  const leaves = leafGroups(plan);
  const stages = new Map((plan.stages ?? []).map((/** @type {any} */ s) => [s.id, s]));
  const seen = new Set();

  /** @param {string} output @returns {HTMLElement} */
  const leaf = (output) => {
    const tasks = leaves.get(output) ?? [];
    const out = partitioning(tasks[0]?.shuffleWrite?.partitioning);
    const chips = tasks.slice(0, MAX_TASK_CHIPS).map((t) => {
      const inputs = t.inputs.map((/** @type {any} */ i) => `${i.table} · ${i.files.length} file${i.files.length === 1 ? '' : 's'} · ${formatBytes(i.files.reduce((/** @type {number} */ s, /** @type {any} */ x) => s + x.sizeBytes, 0))}`).join(' + ');
      return h('span', { class: 'task', title: inputs }, h('b', null, t.id), ' ', inputs);
    });
    const more = tasks.length > MAX_TASK_CHIPS ? h('span', { class: 'task more' }, `… and ${tasks.length - MAX_TASK_CHIPS} more`) : null;
    const box = h('div', { class: 'plan-stage leaf', dataset: { stage: output } },
      h('div', { class: 'stage-head' }, h('span', { class: 'stage-name' }, `stage ${output}`), h('span', { class: 'badge' }, `${tasks.length} task${tasks.length === 1 ? '' : 's'}`)),
      h('div', { class: 'stage-kind' }, 'scan: fragments on workers'),
      h('div', { class: 'stage-out' }, `output: ${out}`),
      actual(figures, output),
      h('div', { class: 'tasks' }, chips, more),
      [...new Set(tasks.map((t) => t.sql))].map(sqlBlock));
    return node(box, []);
  };

  /** @param {string} id @returns {HTMLElement | null} */
  const stage = (id) => {
    const s = stages.get(id);
    if (!s) return leaves.has(id) ? leaf(id) : null;
    if (seen.has(id)) return node(h('div', { class: 'plan-stage ref' }, `stage ${id} (above)`), []);
    seen.add(id);
    const box = h('div', { class: 'plan-stage', dataset: { stage: id } },
      h('div', { class: 'stage-head' }, h('span', { class: 'stage-name' }, `stage ${id}`), h('span', { class: 'badge' }, `${s.tasks} task${s.tasks === 1 ? '' : 's'}`)),
      h('div', { class: 'stage-out' }, `output: ${partitioning(s.output?.partitioning)}`),
      h('div', { class: 'stage-why' }, s.reason),
      s.reads.length ? h('div', { class: 'stage-reads' }, s.reads.map((/** @type {any} */ r) => h('div', null, `reads ${r.view}: partition p of stage ${r.stage}`))) : null,
      s.tables.length ? h('div', { class: 'stage-reads' }, `reads whole: ${s.tables.map((/** @type {any} */ t) => `${t.table} (${t.files.length} files)`).join(', ')}`) : null,
      actual(figures, id),
      sqlBlock(s.sql));
    return node(box, s.reads.map((/** @type {any} */ r) => stage(r.stage)).filter(Boolean));
  };

  if (plan.stored) {
    const root = h('div', { class: 'plan-stage root', dataset: { stage: 'stored' } }, h('div', { class: 'stage-head' }, h('span', { class: 'stage-name' }, 'stored result')), h('div', { class: 'stage-why' }, `the tasks of stage ${plan.stored} store their rows as the files of a table`));
    return h('ul', { class: 'tree' }, node(root, [stage(plan.stored)].filter(Boolean)));
  }
  const reduce = h('div', { class: 'plan-stage root', dataset: { stage: 'reduce' } },
    h('div', { class: 'stage-head' }, h('span', { class: 'stage-name' }, 'reduce'), h('span', { class: 'badge coordinator' }, '1 task on the coordinator')),
    h('div', { class: 'stage-out' }, `the answer: ${(plan.output ?? []).length} column${(plan.output ?? []).length === 1 ? '' : 's'}`),
    plan.reduce?.views?.length ? h('div', { class: 'stage-reads' }, `reads ${plan.reduce.views.map((/** @type {any} */ v) => v.name).join(', ')}`) : null,
    plan.reduce?.sql ? sqlBlock(plan.reduce.sql) : null);
  return h('ul', { class: 'tree' }, node(reduce, (plan.reduce?.views ?? []).map((/** @type {any} */ v) => stage(v.name)).filter(Boolean)));
}

/** @param {any} plan */
function scans(plan) {
  if (!plan.scans?.length) return null;
  return h('table', { class: 'scans' },
    h('thead', null, h('tr', null, ['table', 'read', 'files kept', 'pruned', 'rows', 'bytes', 'pruned with', 'columns'].map((c) => h('th', null, c)))),
    h('tbody', null, plan.scans.map((/** @type {any} */ s) => h('tr', null,
      h('td', null, s.table), h('td', null, s.role), h('td', { class: 'num' }, `${s.filesKept} of ${s.filesTotal}`), h('td', { class: 'num' }, s.filesTotal - s.filesKept),
      h('td', { class: 'num' }, formatCount(s.rowsKept)), h('td', { class: 'num' }, formatBytes(s.bytesKept)), h('td', null, s.pruneFilter ?? '—'), h('td', null, s.columns ? s.columns.join(', ') : 'all')))));
}

/** @param {any} plan */
function joinLine(plan) {
  const j = plan.join;
  if (!j) return null;
  if (j.partitioned) {
    const p = j.partitioned;
    return h('p', { class: 'plan-join' }, `partitioned join: ${p.tables.join(' × ')} on ${p.keys.join(' = ')} (${p.type}), ${p.partitions} partitions${j.broadcast.length ? `; ${j.broadcast.join(', ')} read whole` : ''}`);
  }
  if (j.coSplit) {
    const c = j.coSplit;
    return h('p', { class: 'plan-join' }, `co-split join: ${j.split} and ${c.table} split together along their files' ranges of ${c.keys.join(' = ')} (${c.ranges} disjoint key ranges)${c.subqueries ? `, ${c.subqueries} subquer${c.subqueries === 1 ? 'y' : 'ies'} over them evaluated by every fragment over its own files` : ''}${j.broadcast.length ? `; ${j.broadcast.join(', ')} read whole by every fragment` : ''}`);
  }
  return h('p', { class: 'plan-join' }, `broadcast join: ${j.split} split; ${j.broadcast.join(', ')} read whole by every fragment`);
}

/**
 * The whole explain view of a plan (and of its materialized subqueries, each with its own tree).
 * @param {any} plan
 * @param {Figures} [figures]
 * @returns {HTMLElement}
 */
export function planView(plan, figures) {
  const steps = (plan.materialized?.steps ?? []).map((/** @type {any} */ step) => h('section', { class: 'plan-step' },
    h('h3', null, `step ${step.name}: ${step.what}, materialized as ${step.kind === 'table' ? 'a table' : 'a constant'}`),
    step.result ? h('div', { class: 'actual' }, `actual: ${formatCount(step.result.rows)} rows${step.kind === 'table' ? `, ${formatBytes(step.result.bytes)} in ${step.result.files} file(s)` : ''}`) : null,
    sqlBlock(step.sql),
    step.plan ? planView(step.plan, step.result ? { stages: step.result.stages } : undefined) : null));
  const staged = plan.shape === 'staged' && plan.materialized;
  return h('div', { class: 'plan' },
    h('div', { class: 'plan-head' }, h('span', { class: 'shape' }, plan.shape), h('span', { class: 'reason' }, plan.reason)),
    steps,
    staged ? h('p', { class: 'plan-then' }, 'then, planned once the steps ran: ', h('code', null, plan.materialized.sql)) : h('div', { class: 'tree-wrap' }, tree(plan, figures)),
    staged ? null : joinLine(plan),
    figures?.singleNodeBytes !== undefined ? h('p', null, `single-node bytes: ${formatBytes(figures.singleNodeBytes)} (the most read by any one-task step)`) : null,
    staged ? null : scans(plan));
}
