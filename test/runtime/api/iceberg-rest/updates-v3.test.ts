// The REST catalog's commit updates on format v3 tables: a format version is raised, never
// lowered; a snapshot added to a v3 table carries its row lineage (first-row-id, added-rows)
// and moves the table's next-row-id, as Java's TableMetadata does.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyUpdates, CommitFailed } from '../../../../runtime/api/iceberg-rest/updates.ts';
import { newTableMetadata } from '../../../../runtime/catalog/iceberg/commit.ts';
import { PuffinError } from '../../../../runtime/errors.ts';

const table = (properties?: Record<string, string>) =>
  newTableMetadata({ schema: { schemaId: 0, fields: [{ id: 1, name: 'a', required: false, type: 'int' }], identifierFieldIds: [] } as never, lastColumnId: 1, spec: { specId: 0, fields: [] }, location: 'file:///t', ...(properties ? { properties } : {}) });

const snapshot = (id: number, seq: number, lineage?: { first: number; added: number }) => ({
  action: 'add-snapshot',
  snapshot: { 'snapshot-id': id, 'sequence-number': seq, 'timestamp-ms': 1700000000000 + id, 'manifest-list': `file:///t/metadata/snap-${id}.avro`, summary: { operation: 'append' }, ...(lineage ? { 'first-row-id': lineage.first, 'added-rows': lineage.added } : {}) },
});

test('upgrade-format-version: v2 to v3 starts row lineage; the same version is a no-op; lowering and unknown versions are refused', () => {
  const v2 = table();
  assert.equal(v2.formatVersion, 2);
  const v3 = applyUpdates(v2, [{ action: 'upgrade-format-version', 'format-version': 3 }]);
  assert.equal(v3.formatVersion, 3);
  assert.equal(v3.nextRowId, 0n);
  assert.equal(applyUpdates(v3, [{ action: 'upgrade-format-version', 'format-version': 3 }]).formatVersion, 3, 'a v3 table asked for v3 stays v3');
  assert.throws(() => applyUpdates(v3, [{ action: 'upgrade-format-version', 'format-version': 2 }]), (e: unknown) => e instanceof PuffinError && /never lowered/.test(e.message));
  assert.throws(() => applyUpdates(v2, [{ action: 'upgrade-format-version', 'format-version': 4 }]), (e: unknown) => e instanceof PuffinError && e.code === 'unsupported');
});

test('add-snapshot on a v3 table: lineage required, next-row-id moves past the ids it assigned, a snapshot behind it is a commit failure', () => {
  const v3 = table({ 'format-version': '3' });
  assert.equal(v3.formatVersion, 3);
  const one = applyUpdates(v3, [snapshot(1, 1, { first: 0, added: 10 })]);
  assert.equal(one.nextRowId, 10n);
  assert.equal(one.snapshots[0].firstRowId, 0n);
  const two = applyUpdates(one, [snapshot(2, 2, { first: 10, added: 5 })]);
  assert.equal(two.nextRowId, 15n);
  assert.throws(() => applyUpdates(two, [snapshot(3, 3, { first: 12, added: 1 })]), (e: unknown) => e instanceof CommitFailed && /behind the table's next-row-id 15/.test(e.message));
  assert.throws(() => applyUpdates(two, [snapshot(3, 3)]), (e: unknown) => e instanceof PuffinError && e.code === 'bad_request' && /needs first-row-id and added-rows/.test(e.message));
  // A v2 table takes snapshots without lineage, as before.
  assert.equal(applyUpdates(table(), [snapshot(1, 1)]).nextRowId, undefined);
});
