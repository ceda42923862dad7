// `puffindb shell` with piped stdin (bin/puffindb.js as a user runs it): statements run in
// order, one may span lines and several may share one, dot commands answer from the
// catalog, a failing statement is reported and the rest still run (exit code 1).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { completeStatements } from '../../../runtime/cli/shell.ts';
import { openWarehouse } from '../../../runtime/cli/warehouse.ts';
import { Engine } from '../../../runtime/engine/engine.ts';
import { loadSettings } from '../../../runtime/settings.ts';
import { sqlString } from '../../../runtime/sql/quote.ts';

const CLI = resolve(import.meta.dirname, '../../../bin/puffindb.js');
const dir = mkdtempSync(join(tmpdir(), 'puffin-shell-'));
const env = { PUFFINDB_HOME: join(dir, 'home'), PUFFINDB_WAREHOUSE: `file://${join(dir, 'warehouse')}/`, PUFFINDB_WORKERS: '1' };

before(async () => {
  const engine = await Engine.create({ threads: 1 });
  const file = join(dir, 'pets.parquet');
  await engine.exec(`COPY (SELECT range::INTEGER AS id, 'pet' || range AS name, range * 1.5 AS weight FROM range(10)) TO ${sqlString(file)} (FORMAT parquet)`);
  engine.close();
  const w = await openWarehouse(loadSettings(env));
  await w.catalog.addTable('pets', file);
  await w.close();
});
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
      'select name',
      '  from pets',
      "  where id < 2 order by id; select 'a;b' as semi;",
      '.tables',
      '.schema pets',
      'DESCRIBE pets;',
      'select * from nope;',
      '.timer on',
      'SUMMARIZE pets;',
      '.timer off',
      '.explain select count(*) from pets',
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
      at('name\n────\npet0\npet1\n(2 rows)'),
      at('a;b'),
      at('\npets\n'),
      at('CREATE TABLE pets(id INTEGER, name VARCHAR, weight DECIMAL'),
      at('│ null │ key  │ default │ extra'),
      at('approx_unique'),
      at('Run Time (s): real '),
      at('shape: '),
      at('last\n────\n  42'),
    ];
    assert.deepEqual(order, [...order].sort((a, b) => a - b), 'in the order they were sent');
    assert.match(stdout, /id\s+│ INTEGER\s+│ 0\s+│ 9\s+│/, 'SUMMARIZE computed over the data');
    assert.match(stderr, /error \(unknown_table\): unknown table 'nope'/);
    assert.match(stderr, /unknown command '\.bogus'/);
  });

  test('a statement ends at a semicolon outside quotes and comments', () => {
    assert.deepEqual(completeStatements('select 1'), { statements: [], rest: 'select 1' });
    assert.deepEqual(completeStatements("select ';'"), { statements: [], rest: "select ';'" });
    assert.deepEqual(completeStatements("select 'it''s"), { statements: [], rest: "select 'it''s" });
    assert.deepEqual(completeStatements('select 1; select 2;'), { statements: ['select 1', 'select 2'], rest: '' });
    assert.deepEqual(completeStatements('select 1 /* ; */;\nselect'), { statements: ['select 1'], rest: '\nselect' });
  });
});
