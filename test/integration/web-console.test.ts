// The web console (runtime/api/console/) in a real headless browser (Debian's chromium,
// driven by puppeteer-core) against a real `puffindb serve` over the demo data: sign in,
// run a query and see its rows, page, download CSV / Parquet / Arrow, watch a long query in
// the running view and cancel it (the server stops working on it), draw the explain
// diagram of a partitioned join, browse tables (schema, Iceberg snapshots, files), read
// the query log, sign out. The browser may reach the server only: any other request fails
// the test, as does a script error or a Content-Security-Policy violation.
//
// Chromium is required, not optional: .ci/run installs it (apt-get install chromium).
// PUFFINDB_CONSOLE_SCREENSHOTS=docs writes docs/console-result.png and docs/console-explain.png.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { serveKey, startServe, type RealServer } from '../helpers/serve.ts';

// The browser globals the page functions below use (the project's type check has no DOM library).
declare const document: { querySelector(selector: string): { textContent: string | null } | null };
declare const sessionStorage: { getItem(key: string): string | null };

const CHROMIUM = process.env.PUFFINDB_CHROMIUM ?? '/usr/bin/chromium';
const SCREENSHOTS = process.env.PUFFINDB_CONSOLE_SCREENSHOTS;
const WAIT = { timeout: 10_000 };

let server: RealServer;
let browser: Browser;
let page: Page;
let downloads: string;
const problems: string[] = [];

before(async () => {
  if (!existsSync(CHROMIUM)) {
    assert.fail(`the web console test needs a headless browser: ${CHROMIUM} is missing. Install Debian's chromium (apt-get install -y chromium; .ci/run does) or set PUFFINDB_CHROMIUM to a Chromium binary.`);
  }
  // A small broadcast limit makes lineitem x orders a partitioned join (stages to draw); co-split
  // joins off, since the demo data is written in order-key order.
  [server, browser] = await Promise.all([
    startServe({ demoScale: 0.01, env: { PUFFINDB_BROADCAST_LIMIT_BYTES: '100000', PUFFINDB_SHUFFLE_PARTITIONS: '2', PUFFINDB_CO_SPLIT: 'off' } }),
    puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check', '--disable-extensions', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    }),
  ]);
  let made: Response;
  [made, page] = await Promise.all([server.query('CREATE TABLE nation_ice AS SELECT * FROM nation'), browser.newPage()]);
  assert.equal(made.status, 200, await made.text());
  await page.setViewport({ width: 1280, height: 760 });
  downloads = mkdtempSync(join(tmpdir(), 'puffindb-console-downloads-'));
  const session = await browser.target().createCDPSession();
  await session.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: downloads, eventsEnabled: true });
  // Nothing but the server: no CDN, no fonts, nothing fetched from elsewhere.
  await page.setRequestInterception(true);
  page.on('request', (request) => {
    const url = request.url();
    if (url.startsWith(`${server.url}/`) || url.startsWith('blob:') || url.startsWith('data:')) void request.continue();
    else {
      problems.push(`request outside the server: ${url}`);
      void request.abort();
    }
  });
  page.on('pageerror', (err) => problems.push(`page error: ${String(err)}`));
  page.on('console', (msg) => {
    // Refusals the test provokes (a bad statement, a wrong key, a reader at an admin route) are reported as failed resources.
    if (msg.type() === 'error' && !/status of 40[013] /.test(msg.text())) problems.push(`console error: ${msg.text()}`);
  });
});

after(async () => {
  await browser?.close();
  await server?.close();
  if (downloads) rmSync(downloads, { recursive: true, force: true });
});

/** Text of every element matching a selector. */
function texts(selector: string): Promise<string[]> {
  return page.$$eval(selector, (els) => els.map((e) => (e.textContent ?? '').trim()));
}

async function setSql(sql: string): Promise<void> {
  await page.$eval('#sql', (el, value) => {
    (el as unknown as { value: string }).value = value;
  }, sql);
  await page.focus('#sql');
}

/** Waits for a text to appear in an element. */
async function waitForText(selector: string, text: string | RegExp): Promise<void> {
  await page.waitForFunction((sel, source, flags) => {
    const el = document.querySelector(sel);
    return !!el && new RegExp(source, flags).test(el.textContent ?? '');
  }, WAIT, selector, typeof text === 'string' ? text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') : text.source, typeof text === 'string' ? '' : text.flags);
}

async function downloaded(name: string): Promise<Buffer> {
  const path = join(downloads, name);
  const deadline = Date.now() + 10_000;
  while (!existsSync(path) || readdirSync(downloads).some((f) => f.endsWith('.crdownload'))) {
    if (Date.now() > deadline) throw new Error(`no download ${name}; have ${readdirSync(downloads).join(', ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return readFileSync(path);
}

/** CPU seconds the server and its direct children (workers, SQL runners) used so far. */
async function serverCpuSeconds(): Promise<number> {
  const pids = [server.pid(), ...(await server.workerPids())];
  let ticks = 0;
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime
    } catch {
      // exited meanwhile
    }
  }
  return ticks / 100;
}

test('the web console, in a headless browser, against a real server', async () => {
  // The pages: public, strict headers, no data.
  const response = await page.goto(`${server.url}/`, { waitUntil: 'load' });
  assert.equal(new URL(page.url()).pathname, '/console/');
  const headers = response!.headers();
  assert.match(headers['content-security-policy'], /default-src 'self'/);
  assert.match(headers['content-security-policy'], /frame-ancestors 'none'/);
  assert.doesNotMatch(headers['content-security-policy'], /unsafe-inline|unsafe-eval/);
  assert.equal(headers['x-content-type-options'], 'nosniff');
  await page.waitForSelector('#sign-in:not([hidden])', WAIT);

  // A wrong key is refused and not kept.
  await page.type('#key-input', 'not-a-real-key-0123456789');
  await page.click('#sign-in-button');
  await waitForText('#sign-in-error', 'refused');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('puffindb.console.key')), null);

  // Sign in with the admin key.
  await page.$eval('#key-input', (el) => {
    (el as unknown as { value: string }).value = '';
  });
  await page.type('#key-input', server.adminKey);
  await page.click('#sign-in-button');
  await page.waitForSelector('#tabs:not([hidden])', WAIT);
  await waitForText('#who', 'admin');

  // Run (Ctrl+Enter), see the rows; values are text, never markup.
  await setSql(`SELECT n_nationkey, n_name, '<img src=x id=injected>' AS "<b>html</b>", 12345678901234567890::HUGEINT AS big, 1.50::DECIMAL(4,2) AS d, NULL AS nothing FROM nation ORDER BY 1`);
  await page.keyboard.down('Control');
  await page.keyboard.press('Enter');
  await page.keyboard.up('Control');
  await page.waitForSelector('#output table.grid tbody tr', WAIT);
  assert.equal((await page.$$('#output table.grid tbody tr')).length, 25);
  const first = await texts('#output table.grid tbody tr:first-child td');
  assert.deepEqual(first, ['1', '0', 'ALGERIA', '<img src=x id=injected>', '12345678901234567890', '1.50', 'NULL']);
  assert.equal(await page.$('#injected'), null, 'a value is shown as text, not parsed as HTML');
  assert.ok((await texts('#output th .col-name')).includes('<b>html</b>'));
  await waitForText('#status', '25 rows');

  // An error is shown with DuckDB's message and where it is.
  await setSql('SELECT 1,\n  2 FRM nation');
  await page.click('#run');
  await waitForText('#output .error-box', 'syntax_error');
  assert.match(await page.$eval('#output .error-box', (e) => e.textContent ?? ''), /near "nation"\s*near line 2, column 9/);

  // Paging through the result route (100 rows a page).
  await setSql('SELECT o_orderkey FROM orders ORDER BY o_orderkey LIMIT 250');
  await page.click('#run');
  await waitForText('.page-info', 'rows 1–100 of 250');
  const keys = ((await (await server.query('SELECT o_orderkey FROM orders ORDER BY o_orderkey LIMIT 250')).json()) as { rows: { o_orderkey: number }[] }).rows.map((r) => String(r.o_orderkey));
  assert.equal((await texts('#output tbody tr:first-child td'))[1], keys[0]);
  await page.click('.pager button.next');
  await waitForText('.page-info', 'rows 101–200 of 250');
  assert.deepEqual(await texts('#output tbody tr:first-child td'), ['101', keys[100]]);
  await page.click('.pager button.last');
  await waitForText('.page-info', 'rows 201–250 of 250 · page 3 of 3');
  assert.equal((await page.$$('#output tbody tr')).length, 50);
  assert.equal(await page.$eval('.pager button.next', (b) => (b as unknown as { disabled: boolean }).disabled), true);
  await page.click('.pager button.prev');
  await waitForText('.page-info', 'rows 101–200 of 250');

  // Downloads in the result route's formats.
  const queryId = await page.evaluate(() => JSON.parse(sessionStorage.getItem('puffindb.console.history') ?? '[]')[0].queryId as string);
  await page.click('.download-csv');
  const csv = (await downloaded(`puffindb-${queryId}.csv`)).toString('utf8').trim().split(/\r?\n/);
  assert.equal(csv[0], 'o_orderkey');
  assert.equal(csv.length, 251);
  await page.click('.download-parquet');
  assert.equal((await downloaded(`puffindb-${queryId}.parquet`)).subarray(0, 4).toString('latin1'), 'PAR1');
  await page.click('.download-arrow');
  assert.ok((await downloaded(`puffindb-${queryId}.arrows`)).length > 100);

  // A long query: live in the running view, then cancelled, and the server stops on it.
  await setSql('SELECT count(*) AS n FROM range(10000000000) t(i) WHERE i % 7 = 3');
  await page.click('#run');
  await waitForText('#status', /^running/);
  assert.equal(await page.$eval('#cancel', (b) => (b as unknown as { disabled: boolean }).disabled), false);
  // Live: the status route is polled, so the line moves on while the query runs.
  const seen = await page.$eval('#status', (e) => e.textContent ?? '');
  await page.waitForFunction((before) => {
    const now = document.querySelector('#status')?.textContent ?? '';
    return now !== before && /^running · .* scanned/.test(now);
  }, WAIT, seen);
  const longId = await page.evaluate(() => JSON.parse(sessionStorage.getItem('puffindb.console.history') ?? '[]')[0].queryId as string);
  await page.click('#tabs button[data-tab="running"]');
  await page.waitForSelector(`#running tr[data-query="${longId}"] progress`, WAIT);
  assert.match((await texts(`#running tr[data-query="${longId}"] td`))[1], /running/);
  await page.click('#tabs button[data-tab="query"]');
  await page.click('#cancel');
  await waitForText('#output', 'cancelled');
  const status = (await (await server.call('GET', `/v1/queries/${longId}`, { key: server.adminKey })).json()) as { status: string };
  assert.equal(status.status, 'cancelled');
  // The server goes quiet: a running count over 10^10 rows keeps at least one core busy for
  // minutes, so some half-second window within the deadline must use under a third of a core.
  // Windows are sampled until one is quiet (the runner notices the cancel, a GC or a poll ends),
  // so other test files sharing the machine delay the pass but do not fail it.
  const windows: number[] = [];
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; ) {
    const cpuBefore = await serverCpuSeconds();
    await new Promise((r) => setTimeout(r, 500));
    windows.push((await serverCpuSeconds()) - cpuBefore);
    if (windows.at(-1)! < 0.16) break;
  }
  assert.ok(windows.at(-1)! < 0.16, `after the cancel the server never went quiet: CPU-s per 0.5 s window ${windows.map((w) => w.toFixed(2)).join(', ')}; the query still runs`);
  await page.click('#tabs button[data-tab="running"]');
  await waitForText('#running', 'No query is running');
  await page.click('#tabs button[data-tab="query"]');

  if (SCREENSHOTS) {
    await page.click('#clear-history');
    await setSql('SELECT l_returnflag, l_linestatus, count(*) AS n, sum(l_extendedprice) AS revenue FROM lineitem GROUP BY 1, 2 ORDER BY 1, 2');
    await page.click('#run');
    await waitForText('#status', 'succeeded');
    await setSql('SELECT o_orderkey, c_name, n_name AS nation, o_orderdate, o_orderpriority, o_totalprice\nFROM orders\nJOIN customer ON o_custkey = c_custkey\nJOIN nation ON c_nationkey = n_nationkey\nWHERE o_orderdate >= DATE \'1996-01-01\'\nORDER BY o_totalprice DESC\nLIMIT 500');
    await page.click('#run');
    await waitForText('.page-info', 'rows 1–100 of 500');
    await page.screenshot({ path: resolve(SCREENSHOTS, 'console-result.png') });
  }

  // Explain: the stage tree of a partitioned join, drawn.
  await setSql('SELECT o_orderpriority, count(*) AS n FROM orders JOIN lineitem ON o_orderkey = l_orderkey GROUP BY 1 ORDER BY 1');
  await page.type('#fragments', '4');
  await page.click('#explain');
  await page.waitForSelector('.plan .tree .plan-stage[data-stage="reduce"]', WAIT);
  const stages = await page.$$eval('.plan-stage[data-stage]', (els) => els.map((e) => (e as unknown as { dataset: Record<string, string> }).dataset.stage));
  assert.deepEqual(stages, ['reduce', '__partials', 'lineitem', 'orders']);
  assert.match((await texts('.plan-stage[data-stage="__partials"] .badge'))[0], /2 tasks/);
  assert.match((await texts('.plan-stage[data-stage="lineitem"] .stage-out'))[0], /hash\(l_orderkey::BIGINT\) into 2/);
  assert.equal((await page.$$('.plan-stage[data-stage="lineitem"] .task')).length, 4);
  assert.match((await texts('.plan-stage[data-stage="lineitem"] .badge'))[0], /4 tasks/);
  // The tree is laid out as a diagram: the stages under the reduce step, side by side.
  const box = async (stage: string) => (await page.$(`.plan-stage[data-stage="${stage}"]`))!.boundingBox();
  const [reduce, partials, lineitem, orders] = await Promise.all(['reduce', '__partials', 'lineitem', 'orders'].map(box));
  assert.ok(reduce!.y + reduce!.height < partials!.y && partials!.y + partials!.height < lineitem!.y, 'stages drawn below what reads them');
  assert.ok(Math.abs(lineitem!.y - orders!.y) < 2 && lineitem!.x + lineitem!.width <= orders!.x, 'sibling stages side by side');
  await waitForText('.scans', 'lineitem');
  if (SCREENSHOTS) {
    await page.setViewport({ width: 1280, height: 980 });
    await page.screenshot({ path: resolve(SCREENSHOTS, 'console-explain.png') });
    await page.setViewport({ width: 1280, height: 760 });
  }
  // explain --analyze: the query runs and each stage shows what it did.
  await page.click('#analyze');
  await page.click('#explain');
  await page.waitForSelector('.plan-stage[data-stage="__partials"] .actual', WAIT);
  // Its two partitions are one task (a few KB of shuffle, under PUFFINDB_STAGE_TASK_BYTES): five priorities out.
  assert.match((await texts('.plan-stage[data-stage="__partials"] .actual'))[0], /^actual: 1 task\(s\) for 2 partitions, 5 rows out/);
  await page.click('#analyze');

  // Tables: the list, a table's schema and files, an Iceberg table's snapshots.
  await page.click('#tabs button[data-tab="tables"]');
  await page.waitForSelector('.table-item[data-table="lineitem"]', WAIT);
  await page.click('.table-item[data-table="lineitem"]');
  await page.waitForSelector('#table-detail table.files', WAIT);
  assert.equal(await page.$eval('#table-detail .table-title', (e) => e.textContent), 'lineitem');
  assert.equal((await page.$$('#table-detail table.schema tbody tr')).length, 16);
  assert.equal((await page.$$('#table-detail table.files tbody tr')).length, 8);
  assert.match((await texts('#table-detail table.files tbody tr:first-child td'))[1], /lineitem-000\.parquet$/);
  await page.click('.table-item[data-table="nation_ice"]');
  await page.waitForSelector('#table-detail table.snapshots tbody tr.current', WAIT);
  assert.equal((await page.$$('#table-detail table.snapshots tbody tr')).length, 1);
  assert.match((await texts('#table-detail table.snapshots tbody tr td'))[2], /append/);

  // The query log (admin): the cancelled query is there.
  await page.click('#tabs button[data-tab="log"]');
  await page.waitForSelector('#log table.log tbody tr', WAIT);
  await waitForText('#log', 'cancelled');
  await page.click('#load-flushed');
  await page.waitForFunction(() => !/Querying/.test(document.querySelector('#log-flushed')?.textContent ?? ''), WAIT);
  assert.doesNotMatch(await page.$eval('#log-flushed', (e) => e.textContent ?? ''), /error|forbidden/i);

  // Sign out: the key and the history are gone, the data with them.
  await page.click('#sign-out');
  await page.waitForSelector('#sign-in:not([hidden])', WAIT);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('puffindb.console.key')), null);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('puffindb.console.history')), null);
  assert.equal((await page.$$('#output *')).length, 0);

  // A reader key: no query log.
  const reader = await serveKey(server, 'reader');
  await page.type('#key-input', reader);
  await page.click('#sign-in-button');
  await waitForText('#who', 'reader');
  await page.click('#tabs button[data-tab="log"]');
  await waitForText('#log', 'admin keys only');

  assert.deepEqual(problems, []);
});

test("GET /v1/tables/{name}/files (the console's table page) needs a key, and puffindb.query_log's files an admin; only the console's own files are served", async () => {
  assert.equal((await server.call('GET', '/v1/tables/lineitem/files')).status, 401);
  const reader = await serveKey(server, 'reader', 'files reader');
  const files = await server.call('GET', '/v1/tables/lineitem/files', { key: reader });
  assert.equal(files.status, 200);
  const body = (await files.json()) as { name: string; files: { uri: string; rowCount: number; sizeBytes: number }[] };
  assert.equal(body.files.length, 8);
  assert.equal(body.files.reduce((n, f) => n + f.rowCount, 0), 60301);
  assert.equal((await server.call('GET', '/v1/tables/puffindb.query_log/files', { key: reader })).status, 403);
  assert.equal((await server.call('GET', '/v1/tables/puffindb.query_log/files', { key: server.adminKey })).status, 200);
  assert.equal((await server.call('GET', '/v1/tables/no_such_table/files', { key: reader })).status, 404);
  for (const path of ['/console/nope.js', '/console/..%2F..%2Fpackage.json', '/console/%2e%2e%2fconsole.ts']) {
    const res = await server.call('GET', path);
    assert.equal(res.status, 404, path);
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'self'/);
  }
  const script = await server.call('GET', '/console/app.js');
  assert.equal(script.status, 200);
  assert.match(script.headers.get('content-type') ?? '', /^text\/javascript/);
  assert.equal(script.headers.get('x-content-type-options'), 'nosniff');
  assert.doesNotMatch(await script.text(), /innerHTML/);
});
