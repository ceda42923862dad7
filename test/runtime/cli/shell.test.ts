// `puffindb shell` with piped stdin (bin/puffindb.js as a user runs it): statements run in
// order, one may span lines and several may share one, dot commands answer from the
// catalog, a failing statement is reported and the rest still run (exit code 1).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, test } from 'node:test';

// No runtime module is imported here: the test process stays light, the shell runs as a user runs it.
const CLI = resolve(import.meta.dirname, '../../../bin/puffindb.js');
const dir = mkdtempSync(join(tmpdir(), 'puffin-shell-'));
// A fresh warehouse: its one table is puffindb.query_log (the shell runs as admin).
const env = { PUFFINDB_HOME: join(dir, 'home'), PUFFINDB_WAREHOUSE: `file://${join(dir, 'warehouse')}/`, PUFFINDB_WORKERS: '1' };
after(() => rmSync(dir, { recursive: true, force: true }));

function shell(stdin: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [CLI, 'shell'], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

describe('puffindb shell', () => {
  test('statements from stdin run in order, in the CLI\'s table format; dot commands; errors do not stop the rest', async () => {
    const { code, stdout, stderr } = await shell([
      'select 1 as one;',
      'select x * 2 as twice',
      '  from (values (1), (2)) v(x) /* ; */',
      "  order by 1; select 'a;b' as semi; -- ;",
      '.tables',
      '.schema puffindb.query_log',
      'DESCRIBE puffindb.query_log;',
      'select * from nope;',
      '.timer on',
      'SUMMARIZE SELECT range::INTEGER AS id FROM range(10);',
      '.timer off',
      '.explain select 1',
      '.bogus',
      'select 42 as last',
    ].join('\n'));
    assert.equal(code, 1, stderr);
    const at = (s: string) => {
      const i = stdout.indexOf(s);
      assert.ok(i >= 0, `output has ${JSON.stringify(s)}:\n${stdout}`);
      return i;
    };
    const order = [
      at('one\n───\n  1\n(1 row)'),
      at('twice\n─────\n    2\n    4\n(2 rows)'),
      at('a;b'),
      at('\npuffindb.query_log\n'),
      at('CREATE TABLE puffindb.query_log(id VARCHAR, '),
      at('│ null │ key  │ default │ extra'),
      at('approx_unique'),
      at('Run Time (s): real '),
      at('shape: local'),
      at('last\n────\n  42'),
    ];
    assert.deepEqual(order, [...order].sort((a, b) => a - b), 'in the order they were sent');
    assert.match(stdout, /id\s+│ INTEGER\s+│ 0\s+│ 9\s+│/, 'SUMMARIZE computed over the rows');
    assert.match(stderr, /error \(unknown_table\): unknown table 'nope'/);
    assert.match(stderr, /unknown command '\.bogus'/);
  });
});
