// The PuffinDB web console. Talks to the public HTTP API only, with the signed-in key:
// POST /v1/queries (run), GET /v1/queries/{id} (status and progress), DELETE (cancel),
// GET /v1/queries/{id}/result (pages as JSON; CSV, Parquet, Arrow downloads), POST
// /v1/explain, GET /v1/queries?status=running, GET /v1/tables[/{name}[/files]], the Iceberg
// REST catalog's table (snapshots), GET /v1/logs and puffindb.query_log (admin keys).

import { api, ApiError, clearKey, getKey, queryPath, setKey, whenUnauthorized } from './api.js';
import { byId, formatBytes, formatCount, formatMs, formatTime, h, show } from './dom.js';
import { grid } from './grid.js';
import { planView } from './plan.js';

const POLL_MS = 200;
const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);
const HISTORY_KEY = 'puffindb.console.history';
const MAX_HISTORY = 100;

const state = {
  /** @type {boolean} */ admin: false,
  /** The query being run from the editor. @type {{ id: string, sql: string } | null} */ current: null,
  /** @type {boolean} */ busy: false,
  /** The result shown in the grid. @type {{ id: string, rowCount: number, offset: number, limit: number, ms?: number, shape?: string, cacheHit?: boolean } | null} */ result: null,
  pageSize: 100,
  tab: 'query',
  /** @type {number | undefined} */ runningTimer: undefined,
};

const editor = /** @type {HTMLTextAreaElement} */ (byId('sql'));
const output = byId('output');
const statusLine = byId('status');
const progress = /** @type {HTMLProgressElement} */ (byId('progress'));

// ---------------------------------------------------------------- sign in, sign out

function signedOutView() {
  byId('sign-in').hidden = false;
  byId('tabs').hidden = true;
  byId('sign-out').hidden = true;
  byId('who').textContent = '';
  for (const v of document.querySelectorAll('.view')) /** @type {HTMLElement} */ (v).hidden = true;
  /** @type {HTMLInputElement} */ (byId('key-input')).focus();
}

function signOut(reason = '') {
  clearKey();
  sessionStorage.removeItem(HISTORY_KEY);
  state.admin = false;
  state.current = null;
  state.result = null;
  stopRunningPoll();
  for (const id of ['output', 'running', 'table-list', 'table-detail', 'log', 'history']) show(byId(id));
  statusLine.textContent = '';
  progress.hidden = true;
  byId('sign-in-error').textContent = reason;
  signedOutView();
}

whenUnauthorized(() => signOut('The server refused the key (401): sign in again.'));

/** Checks the key with a reader route, and whether it is an admin's (GET /v1/config is admin only). */
async function signedIn() {
  await api('GET', '/v1/tables');
  try {
    await api('GET', '/v1/config');
    state.admin = true;
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 403) throw err;
    state.admin = false;
  }
  byId('sign-in').hidden = true;
  byId('tabs').hidden = false;
  byId('sign-out').hidden = false;
  byId('who').textContent = state.admin ? 'signed in · admin key' : 'signed in · reader or writer key';
  renderHistory();
  selectTab(state.tab);
  editor.focus();
}

byId('sign-in-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = /** @type {HTMLInputElement} */ (byId('key-input'));
  const key = input.value.trim();
  if (!key) return;
  setKey(key);
  byId('sign-in-error').textContent = '';
  try {
    await signedIn();
    input.value = '';
  } catch (err) {
    clearKey();
    const e = /** @type {ApiError} */ (err);
    byId('sign-in-error').textContent = e.status === 401 ? 'That key was refused.' : `Cannot sign in: ${e.message}`;
  }
});

byId('sign-out').addEventListener('click', () => signOut());

// ---------------------------------------------------------------- tabs

/** @param {string} tab */
function selectTab(tab) {
  state.tab = tab;
  for (const b of byId('tabs').querySelectorAll('button')) b.classList.toggle('active', b.dataset.tab === tab);
  for (const name of ['query', 'running', 'tables', 'log']) byId(`view-${name}`).hidden = name !== tab;
  stopRunningPoll();
  if (tab === 'running') startRunningPoll();
  if (tab === 'tables') loadTables();
  if (tab === 'log') loadLog();
}

for (const b of byId('tabs').querySelectorAll('button')) b.addEventListener('click', () => selectTab(/** @type {string} */ (b.dataset.tab)));

// ---------------------------------------------------------------- history

/** @typedef {{ sql: string, at: number, status: string, queryId?: string, ms?: number, rows?: number, kind: 'run' | 'explain' }} HistoryEntry */

/** @returns {HistoryEntry[]} */
function history() {
  try {
    return JSON.parse(sessionStorage.getItem(HISTORY_KEY) ?? '[]');
  } catch {
    return [];
  }
}

/** @param {HistoryEntry} entry @returns {number} its index */
function remember(entry) {
  const list = history();
  list.unshift(entry);
  sessionStorage.setItem(HISTORY_KEY, JSON.stringify(list.slice(0, MAX_HISTORY)));
  renderHistory();
  return entry.at;
}

/** @param {number} at @param {Partial<HistoryEntry>} patch */
function updateHistory(at, patch) {
  const list = history().map((e) => (e.at === at ? { ...e, ...patch } : e));
  sessionStorage.setItem(HISTORY_KEY, JSON.stringify(list));
  renderHistory();
}

function renderHistory() {
  show(byId('history'), history().map((e) => h('li', { class: `hist ${e.status}`, title: e.sql },
    h('button', { type: 'button', class: 'hist-sql', onclick: () => { editor.value = e.sql; editor.focus(); } }, e.sql.length > 160 ? `${e.sql.slice(0, 160)}…` : e.sql),
    h('div', { class: 'hist-meta' }, `${e.kind === 'explain' ? 'explain · ' : ''}${e.status}${e.rows !== undefined ? ` · ${formatCount(e.rows)} rows` : ''}${e.ms !== undefined ? ` · ${formatMs(e.ms)}` : ''} · ${new Date(e.at).toLocaleTimeString()}`))));
}

byId('clear-history').addEventListener('click', () => {
  sessionStorage.removeItem(HISTORY_KEY);
  renderHistory();
});

// ---------------------------------------------------------------- running a query

/** The request body: the SQL and, when set, the fragments bound. @param {string} sql */
function requestBody(sql) {
  const fragments = Number(/** @type {HTMLInputElement} */ (byId('fragments')).value);
  return Number.isInteger(fragments) && fragments >= 1 ? { sql, fragments } : { sql };
}

/** @param {boolean} busy */
function setBusy(busy) {
  state.busy = busy;
  /** @type {HTMLButtonElement} */ (byId('run')).disabled = busy;
  /** @type {HTMLButtonElement} */ (byId('explain')).disabled = busy;
  /** @type {HTMLButtonElement} */ (byId('cancel')).disabled = !busy || !state.current;
}

/** @param {unknown} err */
function errorBox(err) {
  const e = /** @type {ApiError} */ (err);
  const position = typeof e.details?.position === 'number' ? e.details.position : undefined;
  let where = null;
  if (position !== undefined && e.code === 'syntax_error') {
    const before = editor.value.trim().slice(0, position).split('\n');
    where = h('div', { class: 'error-where' }, `near line ${before.length}, column ${before[before.length - 1].length + 1}`);
  }
  return h('div', { class: 'error-box', role: 'alert' }, h('b', null, e.code ?? 'error'), ' ', e.message ?? String(err), where);
}

/** @param {{ fragmentsDone: number, fragmentsTotal: number, bytesScanned: number }} p */
function progressText(p) {
  const fragments = p.fragmentsTotal ? `${formatCount(p.fragmentsDone)} of ${formatCount(p.fragmentsTotal)} fragments` : 'no fragments yet';
  return `${fragments}, ${formatBytes(p.bytesScanned)} scanned${p.fragmentsTotal && p.fragmentsDone >= p.fragmentsTotal ? ', finishing' : ''}`;
}

/** @param {any} record */
function showProgress(record) {
  const elapsed = Date.now() - (record.startedAt ?? record.submittedAt);
  statusLine.textContent = `${record.status} · ${progressText(record.progress)} · ${formatMs(Math.max(0, elapsed))}`;
  progress.hidden = false;
  if (record.progress.fragmentsTotal > 0) {
    progress.max = record.progress.fragmentsTotal;
    progress.value = record.progress.fragmentsDone;
  } else {
    progress.removeAttribute('value');
  }
}

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls the status route until the query ends. @param {string} id */
async function waitFor(id) {
  // Short queries are answered at once: poll soon, then every POLL_MS.
  for (let delay = 20; ; delay = Math.min(POLL_MS, delay * 2)) {
    let record;
    try {
      record = await api('GET', queryPath(id));
    } catch (err) {
      // Over the key's request rate: the query goes on; ask again a little later.
      if (!(err instanceof ApiError) || err.status !== 429) throw err;
      await sleep(1000);
      continue;
    }
    if (TERMINAL.has(record.status)) return record;
    showProgress(record);
    await sleep(delay);
  }
}

async function run() {
  const sql = editor.value.trim();
  if (!sql || state.busy) return;
  state.result = null;
  show(output);
  statusLine.textContent = 'submitting…';
  const at = remember({ sql, at: Date.now(), status: 'running', kind: 'run' });
  setBusy(true);
  try {
    const submitted = await api('POST', '/v1/queries', { body: requestBody(sql) });
    state.current = { id: submitted.queryId, sql };
    setBusy(true);
    updateHistory(at, { queryId: submitted.queryId });
    const record = await waitFor(submitted.queryId);
    const ms = (record.finishedAt ?? Date.now()) - record.submittedAt;
    progress.hidden = true;
    if (record.status === 'succeeded') {
      state.result = { id: record.queryId, rowCount: 0, offset: 0, limit: state.pageSize, ms, shape: record.shape, cacheHit: record.cacheHit };
      await showPage(0);
      updateHistory(at, { status: 'succeeded', ms, rows: state.result?.rowCount });
    } else {
      statusLine.textContent = `${record.status} after ${formatMs(ms)}`;
      show(output, h('div', { class: `error-box ${record.status}`, role: 'alert' }, h('b', null, record.status), ' ', record.error?.message ?? ''));
      updateHistory(at, { status: record.status, ms });
    }
  } catch (err) {
    progress.hidden = true;
    statusLine.textContent = 'failed';
    show(output, errorBox(err));
    updateHistory(at, { status: 'failed' });
  } finally {
    state.current = null;
    setBusy(false);
  }
}

async function cancel() {
  const current = state.current;
  if (!current) return;
  /** @type {HTMLButtonElement} */ (byId('cancel')).disabled = true;
  statusLine.textContent = 'cancelling…';
  try {
    await api('DELETE', queryPath(current.id));
  } catch (err) {
    // 409: it finished first; the poll shows how.
    if (!(err instanceof ApiError) || err.status !== 409) show(output, errorBox(err));
  }
}

/** One page of the result, as JSON from the result route. @param {number} offset */
async function showPage(offset) {
  const r = state.result;
  if (!r) return;
  const page = await api('GET', `${queryPath(r.id)}/result?format=json&offset=${offset}&limit=${state.pageSize}`);
  r.rowCount = page.rowCount;
  r.offset = page.offset;
  r.limit = state.pageSize;
  const last = Math.min(r.offset + page.rows.length, r.rowCount);
  statusLine.textContent = `succeeded · ${formatCount(r.rowCount)} row${r.rowCount === 1 ? '' : 's'}${r.ms !== undefined ? ` · ${formatMs(r.ms)}` : ''}${r.shape ? ` · ${r.shape}` : ''}${r.cacheHit ? ' · from the result cache' : ''}`;
  const pages = Math.max(1, Math.ceil(r.rowCount / state.pageSize));
  const pageNo = Math.floor(r.offset / state.pageSize) + 1;
  const button = (/** @type {string} */ label, /** @type {string} */ cls, /** @type {number} */ to, /** @type {boolean} */ disabled) =>
    h('button', { type: 'button', class: `small ${cls}`, disabled, onclick: () => showPage(to).catch((err) => show(output, errorBox(err))) }, label);
  const sizes = h('select', { id: 'page-size', 'aria-label': 'rows per page', onchange: (/** @type {Event} */ e) => { state.pageSize = Number(/** @type {HTMLSelectElement} */ (e.target).value); showPage(0).catch((err) => show(output, errorBox(err))); } },
    [50, 100, 500, 1000].map((n) => h('option', { value: n, selected: n === state.pageSize }, `${n} / page`)));
  const bar = h('div', { class: 'result-bar' },
    h('div', { class: 'pager' },
      button('« First', 'first', 0, r.offset === 0),
      button('‹ Prev', 'prev', Math.max(0, r.offset - state.pageSize), r.offset === 0),
      h('span', { class: 'page-info' }, r.rowCount ? `rows ${formatCount(r.offset + 1)}–${formatCount(last)} of ${formatCount(r.rowCount)} · page ${pageNo} of ${pages}` : 'no rows'),
      button('Next ›', 'next', r.offset + state.pageSize, !page.next),
      button('Last »', 'last', (pages - 1) * state.pageSize, !page.next),
      sizes),
    h('div', { class: 'downloads' }, 'Download ', ['csv', 'parquet', 'arrow'].map((f) => h('button', { type: 'button', class: `small download-${f}`, onclick: () => download(r.id, f) }, f === 'csv' ? 'CSV' : f === 'parquet' ? 'Parquet' : 'Arrow'))));
  show(output, bar, grid(page.columns, page.rows, r.offset));
}

const EXTENSIONS = /** @type {Record<string, string>} */ ({ csv: 'csv', parquet: 'parquet', arrow: 'arrows' });

/** Fetches the whole result in a format (with the key) and saves it. @param {string} id @param {string} format */
async function download(id, format) {
  try {
    const res = /** @type {Response} */ (await api('GET', `${queryPath(id)}/result?format=${format}`, { raw: true }));
    const url = URL.createObjectURL(await res.blob());
    const a = h('a', { href: url, download: `puffindb-${id}.${EXTENSIONS[format]}`, hidden: true });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (err) {
    show(output, errorBox(err));
  }
}

async function explain() {
  const sql = editor.value.trim();
  if (!sql || state.busy) return;
  const analyze = /** @type {HTMLInputElement} */ (byId('analyze')).checked;
  state.result = null;
  show(output);
  statusLine.textContent = analyze ? 'running to analyze…' : 'planning…';
  const at = remember({ sql, at: Date.now(), status: 'running', kind: 'explain' });
  const started = Date.now();
  setBusy(true);
  try {
    const answer = await api('POST', '/v1/explain', { body: analyze ? { ...requestBody(sql), analyze: true } : requestBody(sql) });
    const plan = analyze ? answer.plan : answer;
    const figures = analyze ? { stages: answer.stats?.stages, singleNodeBytes: answer.stats?.singleNodeBytes } : undefined;
    statusLine.textContent = `plan: ${plan.shape}${analyze ? ` · ran in ${formatMs(answer.stats?.totalMs ?? Date.now() - started)}` : ''}`;
    show(output, planView(plan, figures));
    updateHistory(at, { status: 'succeeded', ms: Date.now() - started });
  } catch (err) {
    statusLine.textContent = 'failed';
    show(output, errorBox(err));
    updateHistory(at, { status: 'failed' });
  } finally {
    setBusy(false);
  }
}

byId('run').addEventListener('click', () => void run());
byId('explain').addEventListener('click', () => void explain());
byId('cancel').addEventListener('click', () => void cancel());
editor.addEventListener('keydown', (event) => {
  if ((event.ctrlKey || event.metaKey) && event.key === 'Enter') {
    event.preventDefault();
    void run();
  } else if (event.key === 'Tab' && !event.shiftKey) {
    event.preventDefault();
    editor.setRangeText('  ', editor.selectionStart, editor.selectionEnd, 'end');
  }
});

// ---------------------------------------------------------------- running queries

function stopRunningPoll() {
  if (state.runningTimer !== undefined) clearTimeout(state.runningTimer);
  state.runningTimer = undefined;
}

function startRunningPoll() {
  const tick = async () => {
    try {
      await renderRunning();
    } catch (err) {
      show(byId('running'), errorBox(err));
    }
    if (state.tab === 'running' && getKey()) state.runningTimer = window.setTimeout(tick, 1000);
  };
  void tick();
}

async function renderRunning() {
  const [running, queued] = await Promise.all([api('GET', '/v1/queries?status=running&limit=100'), api('GET', '/v1/queries?status=queued&limit=100')]);
  const queries = [...running.queries, ...queued.queries];
  if (state.tab !== 'running') return;
  if (!queries.length) {
    show(byId('running'), h('p', { class: 'empty' }, 'No query is running.'));
    return;
  }
  show(byId('running'), h('div', { class: 'grid-wrap' }, h('table', { class: 'grid running' },
    h('thead', null, h('tr', null, ['query', 'status', 'user', 'elapsed', 'progress', 'SQL', ''].map((c) => h('th', null, c)))),
    h('tbody', null, queries.map((q) => {
      const bar = h('progress', { max: Math.max(1, q.progress.fragmentsTotal) });
      if (q.progress.fragmentsTotal > 0) /** @type {HTMLProgressElement} */ (bar).value = q.progress.fragmentsDone;
      else bar.removeAttribute('value');
      return h('tr', { dataset: { query: q.queryId } },
        h('td', { class: 'mono' }, q.queryId),
        h('td', null, q.status),
        h('td', null, q.user ?? ''),
        h('td', { class: 'num' }, formatMs(Date.now() - (q.startedAt ?? q.submittedAt))),
        h('td', { class: 'progress-cell' }, bar, h('span', null, progressText(q.progress))),
        h('td', { class: 'sql-cell', title: q.sql }, q.sql.length > 200 ? `${q.sql.slice(0, 200)}…` : q.sql),
        h('td', null, h('button', { type: 'button', class: 'small danger', onclick: async () => {
          try {
            await api('DELETE', queryPath(q.queryId));
          } catch (err) {
            if (!(err instanceof ApiError) || err.status !== 409) alertBox(err);
          }
          void renderRunning();
        } }, 'Cancel')));
    })))));
}

/** @param {unknown} err */
function alertBox(err) {
  byId('running').prepend(errorBox(err));
}

// ---------------------------------------------------------------- tables

async function loadTables() {
  const list = byId('table-list');
  try {
    const { tables } = await api('GET', '/v1/tables');
    show(list, tables.map((/** @type {any} */ t) => h('li', null, h('button', { type: 'button', class: 'table-item', dataset: { table: t.name }, onclick: () => void tableDetail(t.name) },
      h('span', { class: 'table-name' }, t.name), h('span', { class: 'table-meta' }, `${t.kind} · ${formatCount(t.rowCount)} rows · ${formatBytes(t.sizeBytes)}`)))));
    if (!tables.length) show(list, h('li', { class: 'empty' }, 'No tables yet.'));
  } catch (err) {
    show(list, h('li', null, errorBox(err)));
  }
}

byId('refresh-tables').addEventListener('click', () => void loadTables());

/** @param {string} name */
async function tableDetail(name) {
  const detail = byId('table-detail');
  for (const b of byId('table-list').querySelectorAll('button')) b.classList.toggle('active', /** @type {HTMLElement} */ (b).dataset.table === name);
  show(detail, h('p', { class: 'empty' }, `Loading ${name}…`));
  const path = `/v1/tables/${encodeURIComponent(name)}`;
  try {
    const [t, files] = await Promise.all([api('GET', path), api('GET', `${path}/files`).catch((err) => err)]);
    const snapshots = t.kind === 'iceberg' ? await icebergSnapshots(name).catch((err) => err) : null;
    const quoted = /^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
    show(detail,
      h('div', { class: 'section-head' }, h('h2', { class: 'table-title' }, t.name), h('span', { class: 'badge' }, t.kind),
        h('button', { type: 'button', class: 'small', onclick: () => { editor.value = `SELECT * FROM ${quoted} LIMIT 100`; selectTab('query'); editor.focus(); } }, 'Query it'),
        h('button', { type: 'button', class: 'small', onclick: () => { editor.value = `SUMMARIZE ${quoted}`; selectTab('query'); editor.focus(); } }, 'Summarize')),
      h('dl', { class: 'facts' },
        h('dt', null, 'rows'), h('dd', null, formatCount(t.rowCount)),
        h('dt', null, 'size'), h('dd', null, formatBytes(t.sizeBytes)),
        h('dt', null, 'files'), h('dd', null, formatCount(t.fileCount)),
        h('dt', null, 'snapshot'), h('dd', { class: 'mono' }, t.snapshotId)),
      h('h3', null, `Schema (${t.columns.length} columns)`),
      h('table', { class: 'grid schema' }, h('thead', null, h('tr', null, h('th', null, '#'), h('th', null, 'column'), h('th', null, 'type'))),
        h('tbody', null, t.columns.map((/** @type {any} */ c, /** @type {number} */ i) => h('tr', null, h('td', { class: 'rownum' }, i + 1), h('td', null, c.name), h('td', { class: 'mono' }, c.type))))),
      h('h3', null, 'Snapshots'),
      snapshotsView(t, snapshots),
      h('h3', null, 'Files'),
      files instanceof Error ? errorBox(files) : filesView(files.files));
  } catch (err) {
    show(detail, errorBox(err));
  }
}

/** The Iceberg REST catalog's view of a table (GET, reader): its snapshots. @param {string} name */
async function icebergSnapshots(name) {
  const dot = name.lastIndexOf('.');
  const ns = dot < 0 ? 'default' : name.slice(0, dot).split('.').join('\u001f');
  const table = dot < 0 ? name : name.slice(dot + 1);
  const loaded = await api('GET', `/iceberg/v1/namespaces/${encodeURIComponent(ns)}/tables/${encodeURIComponent(table)}`);
  return { current: loaded.metadata?.['current-snapshot-id'], snapshots: loaded.metadata?.snapshots ?? [] };
}

/** @param {any} t @param {any} snapshots */
function snapshotsView(t, snapshots) {
  if (snapshots === null) {
    return h('p', { class: 'note' }, t.kind === 'delta' || t.kind === 'hudi'
      ? `Current snapshot ${t.snapshotId}. The console lists the snapshot history of Iceberg tables only.`
      : `Current snapshot ${t.snapshotId}: a ${t.kind} table's files are its one version (the id changes when they change).`);
  }
  if (snapshots instanceof Error) return h('div', null, h('p', { class: 'note' }, `Current snapshot ${t.snapshotId}. The snapshot history is read from the Iceberg REST catalog (/iceberg), which answered:`), errorBox(snapshots));
  const list = [...snapshots.snapshots].reverse();
  return h('table', { class: 'grid snapshots' },
    h('thead', null, h('tr', null, ['snapshot', 'committed', 'operation', 'added rows', 'total rows', 'total files'].map((c) => h('th', null, c)))),
    h('tbody', null, list.map((/** @type {any} */ s) => h('tr', { class: String(s['snapshot-id']) === String(snapshots.current) ? 'current' : null },
      h('td', { class: 'mono' }, String(s['snapshot-id']), String(s['snapshot-id']) === String(snapshots.current) ? h('span', { class: 'badge' }, 'current') : null),
      h('td', null, formatTime(Number(s['timestamp-ms']))),
      h('td', null, s.summary?.operation ?? ''),
      h('td', { class: 'num' }, s.summary?.['added-records'] ?? ''),
      h('td', { class: 'num' }, s.summary?.['total-records'] ?? ''),
      h('td', { class: 'num' }, s.summary?.['total-data-files'] ?? '')))));
}

const MAX_FILES_SHOWN = 500;

/** @param {{ uri: string, sizeBytes: number, rowCount: number, partitionValues?: (string | null)[] }[]} files */
function filesView(files) {
  if (!files.length) return h('p', { class: 'empty' }, 'No files.');
  const partitioned = files.some((f) => f.partitionValues);
  return h('div', null,
    h('table', { class: 'grid files' },
      h('thead', null, h('tr', null, ['#', 'file', 'rows', 'size', partitioned ? 'partition' : null].filter(Boolean).map((c) => h('th', null, c)))),
      h('tbody', null, files.slice(0, MAX_FILES_SHOWN).map((f, i) => h('tr', null,
        h('td', { class: 'rownum' }, i + 1), h('td', { class: 'mono' }, f.uri), h('td', { class: 'num' }, formatCount(f.rowCount)), h('td', { class: 'num' }, formatBytes(f.sizeBytes)),
        partitioned ? h('td', null, (f.partitionValues ?? []).map((v) => v ?? 'NULL').join(', ')) : null)))),
    files.length > MAX_FILES_SHOWN ? h('p', { class: 'note' }, `… and ${formatCount(files.length - MAX_FILES_SHOWN)} more files.`) : null);
}

// ---------------------------------------------------------------- query log

const LOG_SQL = 'SELECT id, "user", status, submitted_at, duration_ms, bytes_scanned, fragments, cache_hit, error, sql FROM puffindb.query_log ORDER BY submitted_at DESC LIMIT 200';
const MAX_LOG_ENTRIES = 500;

async function loadLog() {
  const box = byId('log');
  if (!state.admin) {
    show(box, h('p', { class: 'note' }, 'The query log is for admin keys only: it holds every user\'s SQL. Sign in with an admin key to see it.'));
    return;
  }
  show(box, h('p', { class: 'empty' }, 'Loading…'));
  try {
    // The stream (GET /v1/logs, oldest first, paged by cursor): its latest entries.
    /** @type {any[]} */
    let entries = [];
    let cursor = null;
    for (let pages = 0; pages < 50; pages++) {
      const page = await api('GET', `/v1/logs?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      entries = entries.concat(page.entries).slice(-MAX_LOG_ENTRIES);
      if (!page.entries.length || page.cursor === cursor || !page.cursor) break;
      cursor = page.cursor;
      if (page.entries.length < 1000) break;
    }
    entries.reverse();
    const recent = h('div', { class: 'grid-wrap' }, h('table', { class: 'grid log' },
      h('thead', null, h('tr', null, ['submitted', 'status', 'user', 'duration', 'scanned', 'fragments', 'cache', 'SQL', 'error'].map((c) => h('th', null, c)))),
      h('tbody', null, entries.map((e) => h('tr', { class: e.status },
        h('td', null, formatTime(e.submittedAt)), h('td', null, e.status), h('td', null, e.user), h('td', { class: 'num' }, formatMs(e.durationMs)),
        h('td', { class: 'num' }, formatBytes(e.bytesScanned)), h('td', { class: 'num' }, e.fragments), h('td', null, e.cacheHit ? 'hit' : ''),
        h('td', { class: 'sql-cell', title: e.sql }, e.sql.length > 200 ? `${e.sql.slice(0, 200)}…` : e.sql), h('td', { class: 'error-cell' }, e.error ?? ''))))));
    const older = h('div', { id: 'log-flushed' }, h('button', { type: 'button', class: 'small', id: 'load-flushed', onclick: () => void loadFlushed(older) }, 'Show entries flushed to the lake (puffindb.query_log)'));
    show(box,
      h('p', { class: 'note' }, `Latest ${formatCount(entries.length)} ${entries.length === 1 ? 'entry' : 'entries'} not yet flushed to the lake (GET /v1/logs), most recent first.`),
      entries.length ? recent : h('p', { class: 'empty' }, 'None.'),
      older);
  } catch (err) {
    show(box, errorBox(err));
  }
}

/** @param {HTMLElement} box */
async function loadFlushed(box) {
  show(box, h('p', { class: 'empty' }, 'Querying puffindb.query_log…'));
  try {
    const answer = await api('POST', '/v1/query', { body: { sql: LOG_SQL } });
    if (!answer.rows) {
      show(box, h('p', { class: 'note' }, `${formatCount(answer.rowCount)} rows: run it from the editor to page through them.`), h('code', null, LOG_SQL));
      return;
    }
    show(box, h('h3', null, 'Flushed entries (SELECT ... FROM puffindb.query_log)'), answer.rows.length ? grid(answer.columns, answer.rows) : h('p', { class: 'empty' }, 'None flushed yet.'));
  } catch (err) {
    show(box, errorBox(err));
  }
}

byId('refresh-log').addEventListener('click', () => void loadLog());

// ---------------------------------------------------------------- start

if (getKey()) {
  signedIn().catch((err) => signOut(err instanceof ApiError && err.status === 401 ? 'The saved key was refused: sign in again.' : `Cannot reach the server: ${err.message}`));
} else {
  signedOutView();
}
