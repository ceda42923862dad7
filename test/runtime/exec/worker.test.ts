import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { PuffinError } from '../../../runtime/errors.ts';
import { Worker } from '../../../runtime/exec/worker.ts';
import type { FragmentRequest } from '../../../runtime/exec/invoker.ts';
import type { FileRef, Fragment } from '../../../runtime/planner/plan.ts';
import { makeSandbox, readPartial, slowFragment, tFragment, writeParquet, writeTable, type Sandbox } from './fixtures.ts';

describe('Worker', () => {
  let sandbox: Sandbox;
  let worker: Worker;
  let files: FileRef[];

  const request = (fragment: Fragment, extra: Partial<FragmentRequest> = {}): FragmentRequest => ({
    queryId: 'q1',
    fragment,
    deadline: Date.now() + 30_000,
    ...extra,
  });

  before(async () => {
    sandbox = await makeSandbox();
    files = await writeTable(sandbox, 2, 100);
    worker = await Worker.create(sandbox.settings);
  });

  after(async () => {
    worker?.close();
    await sandbox?.cleanup();
  });

  test('runs the fragment over its input files and returns the rows inline', async () => {
    const result = await worker.runFragment(request(tFragment('f1', files, 'SELECT g, x FROM t WHERE x % 50 = 0 ORDER BY x')));
    assert.equal(result.fragmentId, 'f1');
    assert.equal(result.partial.kind, 'inline');
    assert.equal(result.rows, 4);
    assert.equal(result.bytesScanned, files[0].sizeBytes + files[1].sizeBytes);
    assert.ok(result.bytes > 0);
    const back = await readPartial(sandbox, result.partial);
    assert.deepEqual(back.rows, [
      ['a', 0],
      ['c', 50],
      ['b', 100],
      ['a', 150],
    ]);
  });

  test('partials above the inline limit go to the shuffle prefix', async () => {
    const fragment = tFragment('f2', files, 'SELECT g, count(*) AS n FROM t GROUP BY g ORDER BY g');
    const inline = await worker.runFragment(request(fragment, { inlineLimitBytes: 1 << 20 }));
    assert.equal(inline.partial.kind, 'inline');
    const stored = await worker.runFragment(request(fragment, { inlineLimitBytes: 10 }));
    assert.equal(stored.partial.kind, 'stored');
    assert.ok(stored.partial.kind === 'stored' && stored.partial.uri.startsWith(`${sandbox.settings.shuffleUrl}q1/f2-`));
    assert.ok(stored.partial.kind === 'stored' && existsSync(fileURLToPath(stored.partial.uri)));
    assert.equal(stored.bytes, inline.bytes);
    const rows = [
      ['a', '67'],
      ['b', '67'],
      ['c', '66'],
    ];
    assert.deepEqual((await readPartial(sandbox, inline.partial)).rows, rows);
    assert.deepEqual((await readPartial(sandbox, stored.partial)).rows, rows);
  });

  test('leaves no local partial files behind', async () => {
    await worker.runFragment(request(tFragment('f3', files, 'SELECT 1 AS one')));
    assert.deepEqual((await readdir(join(sandbox.settings.cacheDir, 'sandbox', '0'))).filter((f) => f !== 'duckdb-tmp'), []);
  });

  test('casts every input to its declared columns, so partials share one schema', async () => {
    // One file stores x as BIGINT with an extra column, another lacks column g entirely.
    const wide = await writeParquet(sandbox, 'u/wide.parquet', `SELECT 'a' AS g, 7::BIGINT AS x, 'junk' AS extra`);
    const narrow = await writeParquet(sandbox, 'u/narrow.parquet', `SELECT 8::SMALLINT AS x`);
    const result = await worker.runFragment(request(tFragment('f4', [wide, narrow], 'SELECT * FROM t ORDER BY x')));
    const back = await readPartial(sandbox, result.partial);
    assert.deepEqual(back.columns, [
      { name: 'g', type: 'VARCHAR' },
      { name: 'x', type: 'INTEGER' },
    ]);
    assert.deepEqual(back.rows, [
      ['a', 7],
      [null, 8],
    ]);
  });

  test('an input without files is an empty view with the declared types', async () => {
    const result = await worker.runFragment(request(tFragment('f5', [], 'SELECT count(*) AS n, sum(x) AS s, min(g) AS g FROM t')));
    assert.equal(result.bytesScanned, 0);
    const back = await readPartial(sandbox, result.partial);
    assert.deepEqual(back.rows, [['0', null, null]]);
    assert.deepEqual(
      back.columns.map((c) => c.type),
      ['BIGINT', 'DECIMAL(38,0)', 'VARCHAR'],
    );
  });

  test('the sandbox refuses reading files outside the cache and warehouse', async () => {
    await assert.rejects(
      worker.runFragment(request(tFragment('f6', files, `SELECT * FROM read_csv('/etc/passwd')`))),
      (err: PuffinError) => err instanceof PuffinError && err.code === 'access_denied' && /etc\/passwd/.test(err.message),
    );
  });

  test('the sandbox refuses writing outside its directories', async () => {
    const target = join(tmpdir(), `puffindb-sandbox-${randomUUID()}`);
    await assert.rejects(worker.runFragment(request(tFragment('f7', files, `COPY (SELECT 1) TO '${target}'`))), {
      code: 'access_denied',
    });
    assert.equal(existsSync(target), false);
  });

  test('fragment SQL must be exactly one query', async () => {
    const target = join(tmpdir(), `puffindb-sandbox-${randomUUID()}`);
    // Would close the worker's COPY ( early if it were spliced in unchecked.
    const escape = `SELECT 1) TO '${target}' (FORMAT csv); --`;
    await assert.rejects(worker.runFragment(request(tFragment('f8', files, escape))), { code: 'syntax_error' });
    await assert.rejects(worker.runFragment(request(tFragment('f8', files, 'SELECT 1; SELECT 2'))), { code: 'bad_request' });
    const inCache = join(sandbox.settings.cacheDir, 'inside.csv');
    // The fragment's sandbox may not even see the cache directory; either refusal will do.
    await assert.rejects(worker.runFragment(request(tFragment('f8', files, `COPY (SELECT 1) TO '${inCache}'`))), (err: { code: string; message: string }) =>
      (err.code === 'bad_request' && /must be a query/.test(err.message)) || err.code === 'access_denied');
    assert.equal(existsSync(target), false);
    assert.equal(existsSync(inCache), false);
    // A trailing semicolon or line comment is still one query.
    for (const sql of ['SELECT count(*) AS n FROM t;', 'SELECT count(*) AS n FROM t -- all rows']) {
      const ok = await worker.runFragment(request(tFragment('f8', files, sql)));
      assert.deepEqual((await readPartial(sandbox, ok.partial)).rows, [['200']]);
    }
  });

  test('a fragment reads its own files only: not the cache directory, not earlier fragments\' files', async () => {
    // What a fragment could aim at: the cache's copies of every table, other partials.
    const planted = join(sandbox.settings.cacheDir, 'files', 'planted.csv');
    writeFileSync(planted, 'secret\nplanted-7f3a\n');
    for (const path of [planted, join(sandbox.settings.cacheDir, 'files', '*'), join(sandbox.settings.cacheDir, '**', '*.csv'), join(sandbox.settings.cacheDir, 'sandbox', '0', '*', 'in', '*')]) {
      await assert.rejects(worker.runFragment(request(tFragment('f14', files, `SELECT * FROM read_csv('${path}')`))), (err: { code: string; message: string }) => {
        assert.ok(!err.message.includes('planted-7f3a'), err.message);
        return ['access_denied', 'bad_request', 'binder_error'].includes(err.code);
      });
    }
    // Its own inputs still read.
    const ok = await worker.runFragment(request(tFragment('f15', files, 'SELECT count(*) AS n FROM t')));
    assert.deepEqual((await readPartial(sandbox, ok.partial)).rows, [['200']]);
  });

  test('HUGEINT results survive the Parquet partial exactly', async () => {
    // 2^53 + 1 is the first integer a DOUBLE cannot hold; Parquet would store HUGEINT as DOUBLE.
    const sql = `SELECT (9007199254740993::HUGEINT) AS big, [(2::HUGEINT ** 0)::HUGEINT] AS list, 1 AS big`;
    const result = await worker.runFragment(request(tFragment('f14', files, sql)));
    const back = await readPartial(sandbox, result.partial, 'SELECT CAST(big AS HUGEINT)::VARCHAR AS big, * EXCLUDE (big) FROM p');
    assert.equal(back.rows[0][0], '9007199254740993');
    assert.deepEqual(
      back.columns.map((c) => c.type),
      ['VARCHAR', 'DECIMAL(38,0)[]', 'INTEGER'],
    );
  });

  test('DuckDB errors become classified PuffinErrors', async () => {
    await assert.rejects(worker.runFragment(request(tFragment('f9', files, 'SELECT nope FROM t'))), { code: 'binder_error' });
    await assert.rejects(worker.runFragment(request(tFragment('f9', files, 'SELEC 1'))), { code: 'syntax_error' });
    const missing = { ...files[0], uri: `${sandbox.settings.warehouse}t/missing.parquet` };
    await assert.rejects(worker.runFragment(request(tFragment('f9', [missing], 'SELECT * FROM t'))), { code: 'not_found' });
  });

  test('a passed deadline interrupts DuckDB and rejects with timeout', async () => {
    const started = Date.now();
    await assert.rejects(worker.runFragment(request(slowFragment('f10', 100_000), { deadline: Date.now() + 200 })), {
      code: 'timeout',
    });
    // The full query would run for hours; finishing within a minute shows it was interrupted.
    assert.ok(Date.now() - started < 60_000, 'the timeout did not wait for the query');
    // The interrupted connection is gone; the engine still works.
    const next = await worker.runFragment(request(tFragment('f11', files, 'SELECT count(*) AS n FROM t')));
    assert.deepEqual((await readPartial(sandbox, next.partial)).rows, [['200']]);
    assert.deepEqual((await readdir(join(sandbox.settings.cacheDir, 'sandbox', '0'))).filter((f) => f !== 'duckdb-tmp'), []);
  });

  test('an aborted signal rejects with its PuffinError reason', async () => {
    const controller = new AbortController();
    const run = worker.runFragment(request(slowFragment('f12', 100_000)), controller.signal);
    setTimeout(() => controller.abort(new PuffinError('timeout', 'query q1 was cancelled')), 100);
    await assert.rejects(run, { code: 'timeout', message: 'query q1 was cancelled' });
  });

  test('fragments beyond PUFFINDB_WORKERS sandboxes wait for one; a deadline passing meanwhile rejects with timeout', async () => {
    const one = await Worker.create({ ...sandbox.settings, workers: 1, cacheDir: join(sandbox.settings.cacheDir, 'one-sandbox') });
    try {
      const controller = new AbortController();
      const slow = one.runFragment(request(slowFragment('f30', 100_000)), controller.signal);
      slow.catch(() => undefined);
      // Waits behind the slow one for the only sandbox, and its deadline passes while waiting.
      await assert.rejects(one.runFragment(request(tFragment('f31', files, 'SELECT count(*) AS n FROM t'), { deadline: Date.now() + 300 })), { code: 'timeout' });
      // Queued next; it gets the sandbox once the slow one is cancelled.
      const queued = one.runFragment(request(tFragment('f32', files, 'SELECT count(*) AS n FROM t')));
      controller.abort(new PuffinError('timeout', 'query q1 was cancelled'));
      await assert.rejects(slow, { code: 'timeout' });
      assert.deepEqual((await readPartial(sandbox, (await queued).partial)).rows, [['200']]);
      const boxes = (one as unknown as { sandboxes: unknown[] }).sandboxes;
      assert.equal(boxes.length, 1);
    } finally {
      one.close();
    }
  });

  test('ids that could escape a directory are refused', async () => {
    await assert.rejects(worker.runFragment(request(tFragment('f1', files, 'SELECT 1'), { queryId: '../etc' })), { code: 'bad_request' });
    await assert.rejects(worker.runFragment(request(tFragment('a/b', files, 'SELECT 1'))), { code: 'bad_request' });
  });

  test('an input declaring no columns is refused with a clear message', async () => {
    const fragment: Fragment = { id: 'f13', output: 'p', inputs: [{ view: 't', table: 't', columns: [], files }], sql: 'SELECT 1' };
    await assert.rejects(worker.runFragment(request(fragment)), { code: 'bad_request', message: /declares no columns/ });
  });
});
