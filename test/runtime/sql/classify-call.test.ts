// CALL statements (runtime/exec/maintenance.ts): DuckDB parses CALL with `=>` named
// arguments; the classifier gives them kind 'call', a write except puffindb.snapshots, which
// only reads. A comment cannot turn a write CALL into the read one.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Engine } from '../../../runtime/engine/engine.ts';
import { classifyStatement } from '../../../runtime/sql/classify.ts';
import { parseCall } from '../../../runtime/exec/maintenance.ts';

let engine: Engine;
before(async () => {
  engine = await Engine.create({ threads: 1 });
});
after(() => engine.close());

test('CALL puffindb.* is classified: writes but snapshots', async () => {
  const cases: [string, 'read' | 'write'][] = [
    ["CALL puffindb.expire_snapshots('t', older_than => TIMESTAMP '2024-01-01 00:00:00', retain_last => 5)", 'write'],
    ["CALL puffindb.rewrite_data_files('t')", 'write'],
    ["call PUFFINDB.remove_orphan_files('t', older_than := TIMESTAMP '2024-01-01')", 'write'],
    ["CALL puffindb.rewrite_manifests('t');", 'write'],
    ["CALL puffindb.snapshots('t')", 'read'],
    ["CALL /* puffindb.snapshots */ puffindb.expire_snapshots('t')", 'write'],
    ["CALL other.snapshots('t')", 'write'],
    ["CALL snapshots('t')", 'write'],
  ];
  for (const [sql, access] of cases) {
    const c = await classifyStatement(engine, sql);
    assert.equal(c.kind, 'call', sql);
    assert.equal(c.access, access, sql);
  }
});

test('arguments: positional, then named; literals only', () => {
  const c = parseCall("CALL puffindb.expire_snapshots('Events', older_than => TIMESTAMP '2024-01-02 03:04:05', retain_last => 5)");
  assert.equal(c.procedure, 'expire_snapshots');
  assert.equal(c.table, 'events');
  assert.deepEqual(c.args.get('older_than'), { timestampMs: Date.UTC(2024, 0, 2, 3, 4, 5) });
  assert.equal(c.args.get('retain_last'), 5);
  assert.deepEqual(parseCall("CALL puffindb.expire_snapshots(table => 't', older_than => TIMESTAMPTZ '2024-01-02 03:04:05+02')").args.get('older_than'), { timestampMs: Date.UTC(2024, 0, 2, 1, 4, 5) });
  assert.deepEqual(parseCall("CALL puffindb.remove_orphan_files('t', TIMESTAMP '2024-01-02')").args.get('older_than'), { timestampMs: Date.UTC(2024, 0, 2) });
  assert.deepEqual(parseCall("CALL puffindb.remove_orphan_files('t', '2024-01-02 03:04:05Z')").args.get('older_than'), '2024-01-02 03:04:05Z');
  assert.throws(() => parseCall("CALL puffindb.expire_snapshots('t', retain_last => (SELECT 1))"), /expected a literal/);
  assert.throws(() => parseCall("CALL puffindb.expire_snapshots(retain_last => 1, 't')"), /positional arguments come first/);
  assert.throws(() => parseCall('CALL puffindb.rewrite_manifests()'), /needs the table's name/);
  assert.throws(() => parseCall("CALL pragma_version('t')"), /PuffinDB's procedures only/);
});
