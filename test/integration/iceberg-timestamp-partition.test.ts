// SQL on an Iceberg table identity-partitioned on TIMESTAMP, TIMESTAMPTZ and TIME, through a
// real server (the distributed write path): CREATE ... PARTITIONED BY, INSERT, a filtered
// SELECT, DELETE of one partition. Its manifests used to fail to encode ('Do not know how to
// serialize a BigInt'); the manifest's Avro types are checked in test/runtime/catalog/iceberg/writer.test.ts.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServe, type RealServer } from '../helpers/serve.ts';

let server: RealServer;
before(async () => {
  server = await startServe();
});
after(() => server?.close());

async function rows(sql: string): Promise<unknown[]> {
  const res = await server.query(sql);
  const text = await res.text();
  assert.equal(res.status, 200, `${sql}: ${text}`);
  return (JSON.parse(text) as { rows: unknown[] }).rows;
}

test('CREATE TABLE ... PARTITIONED BY (ts, tz, tm), INSERT, SELECT by partition, DELETE one partition', async () => {
  await rows('CREATE TABLE tp (ts TIMESTAMP, tz TIMESTAMPTZ, tm TIME, v INTEGER) PARTITIONED BY (ts, tz, tm)');
  await rows(`INSERT INTO tp VALUES (TIMESTAMP '2024-01-01 10:00:00', TIMESTAMPTZ '2024-01-01 10:00:00+00', TIME '10:00:00', 1),
    (TIMESTAMP '2024-01-01 11:00:00', TIMESTAMPTZ '2024-01-01 11:00:00+00', TIME '11:00:00', 2), (TIMESTAMP '2024-01-01 11:00:00', TIMESTAMPTZ '2024-01-01 11:00:00+00', TIME '11:00:00', 3),
    (NULL, NULL, NULL, 4)`);
  assert.deepEqual(await rows('SELECT count(*)::INTEGER AS n, sum(v)::INTEGER AS s FROM tp'), [{ n: 4, s: 10 }]);
  assert.deepEqual(await rows(`SELECT v FROM tp WHERE ts = TIMESTAMP '2024-01-01 11:00:00' ORDER BY v`), [{ v: 2 }, { v: 3 }]);
  assert.deepEqual(await rows(`SELECT v FROM tp WHERE tm = TIME '10:00:00'`), [{ v: 1 }]);
  await rows(`DELETE FROM tp WHERE ts = TIMESTAMP '2024-01-01 11:00:00'`);
  assert.deepEqual(await rows('SELECT v FROM tp ORDER BY v'), [{ v: 1 }, { v: 4 }]);
});
