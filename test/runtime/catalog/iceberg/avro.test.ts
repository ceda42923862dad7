import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AvroIntMap, AvroNumberList, readAvroContainer, writeAvroContainer } from '../../../../runtime/catalog/iceberg/avro.ts';

/** Zig-zag varint encoding, written out by hand (independent of avsc). */
function zz(n: number): number[] {
  let z = n >= 0 ? n * 2 : -n * 2 - 1;
  const out: number[] = [];
  while (z >= 0x80) {
    out.push((z % 0x80) | 0x80);
    z = Math.floor(z / 0x80);
  }
  out.push(z);
  return out;
}

describe('int-keyed maps kept in their Avro encoding', () => {
  test('blocks with positive and negative counts, long and bytes values', () => {
    // Two blocks: the first with a negative count (so a byte size follows), then the end.
    const item = (k: number, v: number): number[] => [...zz(k), ...zz(v)];
    const first = [...item(1, 100), ...item(7, -3)];
    const buf = Uint8Array.from([0xff, ...zz(-2), ...zz(first.length), ...first, ...zz(1), ...item(300, 2 ** 40), ...zz(0)]);
    const map = new AvroIntMap<number>(buf, 1, 'long');
    assert.equal(map.get(1), 100);
    assert.equal(map.get(7), -3);
    assert.equal(map.get(300), 2 ** 40);
    assert.equal(map.get(2), undefined);
    assert.deepEqual(map.entries(), [[1, 100], [7, -3], [300, 2 ** 40]]);

    const bytesItem = (k: number, b: number[]): number[] => [...zz(k), ...zz(b.length), ...b];
    const bbuf = Uint8Array.from([...zz(2), ...bytesItem(5, [1, 2, 3]), ...bytesItem(6, []), ...zz(0)]);
    const bytes = new AvroIntMap<Uint8Array>(bbuf, 0, 'bytes');
    assert.deepEqual(bytes.get(5), Uint8Array.of(1, 2, 3));
    assert.deepEqual(bytes.get(6), new Uint8Array(0));
    assert.equal(bytes.get(4), undefined);
  });

  test('number lists', () => {
    const buf = Uint8Array.from([...zz(2), ...zz(2), ...zz(-1), ...zz(1), ...zz(3), ...zz(0)]);
    assert.deepEqual(new AvroNumberList(buf, 0).values(), [2, -1, 3]);
  });

  test('a container written by avsc reads back with the maps kept encoded', () => {
    const schema = {
      type: 'record',
      name: 'r',
      fields: [
        { name: 'counts', type: ['null', { type: 'array', logicalType: 'map', items: { type: 'record', name: 'kv', fields: [{ name: 'key', type: 'int' }, { name: 'value', type: 'long' }] } }] },
        { name: 'ids', type: { type: 'array', items: 'int' } },
        { name: 'name', type: 'string' },
      ],
    };
    const rows = Array.from({ length: 50 }, (_, i) => ({ counts: i % 5 === 0 ? null : [{ key: i, value: BigInt(i) * 1000n }, { key: 1000, value: -1n }], ids: [i, i + 1], name: `n${i}` }));
    const bytes = writeAvroContainer(schema, rows, {}, { blockSize: 7 });
    const lazy = readAvroContainer(bytes, 'lazy.avro', { lazyArrays: true }).records as { counts: AvroIntMap<number> | null; ids: AvroNumberList; name: string }[];
    const plain = readAvroContainer(bytes, 'plain.avro').records as { counts: { key: number; value: bigint }[] | null; ids: number[]; name: string }[];
    for (let i = 0; i < rows.length; i++) {
      assert.equal(lazy[i].name, `n${i}`);
      assert.deepEqual(lazy[i].ids.values(), [i, i + 1]);
      assert.deepEqual(plain[i].ids, [i, i + 1]);
      if (i % 5 === 0) {
        assert.equal(lazy[i].counts, null);
      } else {
        assert.equal(lazy[i].counts?.get(i), i * 1000);
        assert.equal(lazy[i].counts?.get(1000), -1);
        assert.deepEqual(plain[i].counts?.map((kv) => kv.value), [BigInt(i) * 1000n, -1n]);
      }
    }
  });
});
