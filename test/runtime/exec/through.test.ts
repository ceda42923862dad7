// Remote instances' building blocks (runtime/exec/remote-tables.ts, remote-arrow.ts):
// - what a remote table reference is fetched with (rewrite): the columns and the filters that
//   apply to it alone, an aggregate over it alone pushed whole, and nothing that would change
//   the answer (a filter on the NULL side of an outer join, a volatile or subquery filter, an
//   unqualified column in a join). The remote is a loopback server answering
//   GET /v1/tables/{name}; nothing is fetched.
// - a remote's Arrow answer read back is what DuckDB answered: the Arrow stream the API writes
//   (runtime/results/arrow.ts) of a result of every type with an Arrow form comes back with the
//   same DuckDB types and JSON values.

import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Engine } from '../../../runtime/engine/engine.ts';
import { readArrowResult } from '../../../runtime/exec/remote-arrow.ts';
import { RemoteTables } from '../../../runtime/exec/remote-tables.ts';
import { toArrowIpc } from '../../../runtime/results/arrow.ts';
import { loadSettings } from '../../../runtime/settings.ts';
import type { RemoteRecord } from '../../../runtime/state/remote-file.ts';

let server: Server;
let engine: Engine;
let tables: RemoteTables;
let home: string;
let asked = 0;

before(async () => {
  server = createServer((req, res) => {
    asked++;
    assert.equal(req.headers.authorization, 'Bearer push-key');
    if (req.url !== '/v1/tables/r') return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"code":"unknown_table","message":"unknown table"}}');
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ name: 'r', columns: [{ name: 'k', type: 'INTEGER' }, { name: 'x', type: 'INTEGER' }, { name: 'y', type: 'VARCHAR' }, { name: 'z', type: 'DOUBLE' }] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  process.env.PUFFINDB_TEST_PUSH_KEY = 'push-key';
  const remote: RemoteRecord = { name: 'east', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, keyEnv: 'PUFFINDB_TEST_PUSH_KEY', createdAt: 0 };
  home = mkdtempSync(join(tmpdir(), 'puffin-push-'));
  engine = await Engine.create({ threads: 1 });
  tables = new RemoteTables(loadSettings({ PUFFINDB_HOME: home }), engine, { listRemotes: async () => [remote], putRemote: async () => undefined, deleteRemote: async () => false });
});

after(async () => {
  engine?.close();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  rmSync(home, { recursive: true, force: true });
});

async function pushed(sql: string): Promise<{ local: string; remote: string[] }> {
  const done = await tables.rewrite(sql, Date.now() + 10_000);
  assert.ok(done, `${sql} reads a remote table`);
  return { local: done.sql, remote: done.inputs.map((i) => i.sql) };
}

describe('remote table references', () => {
  test('a statement without remote names is left alone, without asking the remote', async () => {
    const before = asked;
    assert.equal(await tables.rewrite('SELECT * FROM l JOIN m ON l.k = m.k', Date.now() + 10_000), undefined);
    assert.equal(await tables.rewrite('SELECT "east" FROM l', Date.now() + 10_000), undefined);
    assert.equal(asked, before);
  });

  test('the only table of its FROM: its columns and all its conjuncts', async () => {
    const { local, remote } = await pushed("SELECT x FROM east.r WHERE y = 'a' AND z > 1.5");
    assert.deepEqual(remote, ["SELECT x, y, z FROM r AS r WHERE ((y = 'a') AND (z > 1.5))"]);
    assert.match(local, /FROM __pdb_mr[0-9a-f]+_1 AS r WHERE/);
  });

  test('in a join: conjuncts qualified by its alias only, and the columns others do not own', async () => {
    const { remote } = await pushed('SELECT l.k, o.y FROM l JOIN east.r AS o ON l.k = o.k AND o.z < 3 WHERE o.x = 1 AND l.x = 2 AND y = 3');
    assert.deepEqual(remote, ['SELECT k, x, y, z FROM r AS o WHERE ((o.x = 1) AND (o.z < 3))']);
  });

  test('nothing is pushed into the NULL side of an outer join but its own ON conditions', async () => {
    assert.deepEqual((await pushed('SELECT l.k, o.x FROM l LEFT JOIN east.r o ON l.k = o.k AND o.x > 1 WHERE o.y IS NULL')).remote, ['SELECT k, x, y FROM r AS o WHERE (o.x > 1)']);
    assert.deepEqual((await pushed('SELECT l.k, o.x FROM east.r o FULL JOIN l ON l.k = o.k WHERE o.x > 1')).remote, ['SELECT k, x FROM r AS o']);
  });

  test('volatile, subquery and parameter filters stay local', async () => {
    const { remote } = await pushed('SELECT r.x FROM east.r WHERE r.z > random() AND r.k IN (SELECT k FROM l) AND r.x > 2');
    assert.deepEqual(remote, ['SELECT k, x, z FROM r AS r WHERE (r.x > 2)']);
  });

  test('a star, a three-part name, and a reference that needs no column', async () => {
    assert.deepEqual((await pushed('SELECT * FROM east.r JOIN l ON l.k = r.k')).remote, ['SELECT k, x, y, z FROM r AS r']);
    const three = await pushed('SELECT east.r.x FROM east.r JOIN l ON l.k = east.r.k');
    assert.deepEqual(three.remote, ['SELECT k, x FROM r AS r']);
    assert.match(three.local, /SELECT r\.x FROM __pdb_mr[0-9a-f]+_1 AS r INNER JOIN l ON \(\(l\.k = r\.k\)\)/);
    assert.deepEqual((await pushed('SELECT l.k FROM l CROSS JOIN east.r')).remote, ['SELECT true AS __pdb_row FROM r AS r']);
  });

  test('an aggregate over the remote table alone is pushed whole, its ORDER BY and LIMIT kept', async () => {
    const { local, remote } = await pushed('SELECT y, count(*) AS n, sum(z) AS total FROM east.r WHERE x > 0 GROUP BY y HAVING count(*) > 1 ORDER BY n DESC LIMIT 5');
    assert.deepEqual(remote, ['SELECT y, count_star() AS n, sum(z) AS total FROM r AS r WHERE (x > 0) GROUP BY y HAVING (count_star() > 1) ORDER BY n DESC LIMIT 5']);
    assert.match(local, /^SELECT \* FROM __pdb_mr[0-9a-f]+_1 ORDER BY n DESC LIMIT 5$/);
  });

  test('an aggregate that reads something else is not pushed whole', async () => {
    // A correlated reference to the outer query, and a subquery: the remote could not answer them.
    const correlated = await pushed('SELECT l.k, (SELECT max(r.x) FROM east.r WHERE r.k = l.k) AS m FROM l');
    assert.deepEqual(correlated.remote, ['SELECT k, x FROM r AS r']);
    // (k is fetched too: the subquery's unqualified k could be r's, as far as names tell.)
    const sub = await pushed('SELECT count(*) FROM east.r WHERE r.x IN (SELECT k FROM l)');
    assert.deepEqual(sub.remote, ['SELECT k, x FROM r AS r']);
  });

  test("an unknown remote table is the remote's own answer, naming it", async () => {
    await assert.rejects(tables.rewrite('SELECT * FROM east.nope', Date.now() + 10_000), (err: Error & { code?: string }) => err.code === 'unknown_table' && /remote 'east'/.test(err.message));
  });
});

describe('Arrow answers', () => {
  test('Arrow written by the API reads back as the same DuckDB types and values', async () => {
    const result = await engine.query(`SELECT * FROM (VALUES
      (1::BIGINT, 2::INTEGER, -3::SMALLINT, 4::TINYINT, 5::UBIGINT, 6::UINTEGER, 1.50::DECIMAL(15,2), -0.05::DECIMAL(15,2), 12345678901234567.891::DECIMAL(38,3),
       2.5::DOUBLE, 1.5::FLOAT, 'x''y', DATE '2020-01-02', DATE '1969-12-31', TIMESTAMP '2020-01-02 03:04:05.5', TIMESTAMP '1969-12-31 23:59:59.999999',
       TIMESTAMPTZ '2020-01-02 03:04:05+00', TIME '01:02:03.25', true, 'nan'::DOUBLE, 9223372036854775807::BIGINT),
      (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, (-9223372036854775807 - 1)::BIGINT)
    ) AS v(a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t, u)`);
    const back = readArrowResult(toArrowIpc(result));
    assert.deepEqual(back.columns, result.columns);
    assert.deepEqual(back.rows, result.rows);
  });

  test('a stream that is not Arrow is refused', () => {
    assert.throws(() => readArrowResult(new TextEncoder().encode('{"rows": []}')));
  });
});
