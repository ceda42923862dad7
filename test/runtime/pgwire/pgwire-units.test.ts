// Units of the wire protocol: framing bounds, parameter substitution (values never become
// SQL), and the catalog mirror's answers to metadata queries JDBC, DBeaver and Metabase
// send on connect (psql's are covered by test/integration/pgwire.test.ts with real psql).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Catalog, TableSnapshot } from '../../../runtime/catalog/types.ts';
import { MessageReader, ProtocolError } from '../../../runtime/pgwire/codec.ts';
import { CatalogMirror, isCatalogQuery, rewriteCatalogSql, sessionStatement } from '../../../runtime/pgwire/catalog.ts';
import { parameterCount, substitute } from '../../../runtime/pgwire/params.ts';
import { ScramServer, scramVerifier } from '../../../runtime/pgwire/scram.ts';
import { lex } from '../../../runtime/sql/lexer.ts';
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';

describe('framing', () => {
  test('a length over the limit is refused before its body is buffered', () => {
    const r = new MessageReader(1024);
    r.startup = false;
    const head = Buffer.alloc(5);
    head.write('Q');
    head.writeUInt32BE(1 << 30, 1);
    r.push(head);
    assert.throws(() => r.next(), ProtocolError);
  });
  test('messages split across chunks are reassembled; a short length is refused', () => {
    const r = new MessageReader(1024);
    r.startup = false;
    const m = Buffer.concat([Buffer.from('Q'), Buffer.from([0, 0, 0, 9]), Buffer.from('abcd\0')]);
    r.push(m.subarray(0, 3));
    assert.equal(r.next(), undefined);
    r.push(m.subarray(3));
    assert.equal(r.next()?.body.toString(), 'abcd\0');
    r.push(Buffer.from([0x51, 0, 0, 0, 2]));
    assert.throws(() => r.next(), ProtocolError);
  });
});

describe('parameters', () => {
  const text = (s: string) => ({ value: Buffer.from(s), format: 0 as const });
  test('values are quoted literals; $n inside strings, identifiers and comments is left alone', () => {
    const sql = `SELECT $1 AS a, '$1' AS b, "$1" AS c /* $1 */, $2::int AS d`;
    assert.equal(parameterCount(sql), 2);
    assert.equal(substitute(sql, [text("x'); DROP TABLE t; --"), text('5')], [0, 23]), `SELECT 'x''); DROP TABLE t; --' AS a, '$1' AS b, "$1" AS c /* $1 */, CAST('5' AS INTEGER)::int AS d`);
    assert.equal(substitute('SELECT $1', [{ value: null, format: 0 }], [0]), 'SELECT NULL');
    assert.throws(() => substitute('SELECT $2', [text('1')], [0]));
    assert.throws(() => substitute('SELECT $1', [text('a\u0000b')], [0]));
  });
  test('binary int8 and bytea parameters', () => {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(-5n);
    assert.equal(substitute('SELECT $1', [{ value: b, format: 1 }], [20]), "SELECT CAST('-5' AS BIGINT)");
    assert.equal(substitute('SELECT $1', [{ value: Buffer.from('\\x00ff'), format: 0 }], [17]), "SELECT from_hex('00ff')");
  });
});

describe('SCRAM-SHA-256', () => {
  test('a client proof made with the key authenticates; another key does not', () => {
    const secret = 'pdb_example-secret-0123456789';
    const records = [{ id: 'other', scram: scramVerifier('another-key-0123456789') }, { id: 'mine', scram: scramVerifier(secret) }];
    const server = new ScramServer();
    const clientNonce = 'rOprNGfwEbeRWgbNEkqO';
    const clientFirstBare = `n=*,r=${clientNonce}`;
    const serverFirst = server.start(`n,,${clientFirstBare}`);
    const attrs = Object.fromEntries(serverFirst.split(',').map((p) => [p[0], p.slice(2)]));
    const salted = pbkdf2Sync(secret, Buffer.from(attrs.s, 'base64'), Number(attrs.i), 32, 'sha256');
    const clientKey = createHmac('sha256', salted).update('Client Key').digest();
    const storedKey = createHash('sha256').update(clientKey).digest();
    const withoutProof = `c=${Buffer.from('n,,').toString('base64')},r=${attrs.r}`;
    const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
    const signature = createHmac('sha256', storedKey).update(authMessage).digest();
    const proof = Buffer.from(clientKey.map((b, i) => b ^ signature[i])).toString('base64');
    const found = server.finish(`${withoutProof},p=${proof}`, records);
    assert.equal(found?.record.id, 'mine');
    const serverKey = createHmac('sha256', salted).update('Server Key').digest();
    assert.equal(found?.serverFinal, `v=${createHmac('sha256', serverKey).update(authMessage).digest('base64')}`);
    const again = new ScramServer();
    again.start(`n,,${clientFirstBare}`);
    assert.throws(() => again.finish(`${withoutProof},p=${proof}`, records), /nonce/, 'a replayed proof fails under a new server nonce');
    const wrong = Buffer.from(proof, 'base64');
    wrong[0] ^= 1;
    assert.equal(server.finish(`${withoutProof},p=${wrong.toString('base64')}`, records), undefined, 'a wrong proof matches no key');
  });
});

describe('session statements and the catalog mirror', () => {
  test('SET, BEGIN, SHOW of PostgreSQL parameters are answered; SHOW TABLES is not', () => {
    assert.equal(sessionStatement(lex("SET extra_float_digits = 3").tokens)?.tag, 'SET');
    assert.equal(sessionStatement(lex('BEGIN').tokens)?.transaction, 'begin');
    assert.deepEqual(sessionStatement(lex('SHOW TRANSACTION ISOLATION LEVEL').tokens)?.result?.rows, [['read committed']]);
    assert.equal(sessionStatement(lex('SHOW TABLES').tokens), undefined);
    assert.equal(sessionStatement(lex('PRAGMA version').tokens), undefined);
  });

  const nation: TableSnapshot = { name: 'nation', kind: 'parquet', columns: [{ name: 'n_nationkey', type: 'INTEGER' }, { name: 'n_name', type: 'VARCHAR' }, { name: 'n_price', type: 'DECIMAL(15,2)' }], files: [], snapshotId: '1' };
  const log: TableSnapshot = { name: 'puffindb.query_log', kind: 'parquet', columns: [{ name: 'sql', type: 'VARCHAR' }], files: [], snapshotId: '1', adminOnly: true };
  const catalog: Catalog = { listTables: async () => ['nation', 'puffindb.query_log'], getTable: async (n) => (n === 'nation' ? nation : n === 'puffindb.query_log' ? log : undefined) };

  test('a query naming a PuffinDB table is not a metadata query', async () => {
    const m = new CatalogMirror(catalog);
    const names = await m.tableNames();
    assert.equal(isCatalogQuery(lex('SELECT * FROM pg_class').tokens, names), true);
    assert.equal(isCatalogQuery(lex('SELECT version(), * FROM nation').tokens, names), false);
    assert.equal(isCatalogQuery(lex("SELECT * FROM information_schema.columns WHERE table_name = 'nation'").tokens, names), true);
    assert.equal(isCatalogQuery(lex('SELECT 1').tokens, names), false);
    assert.equal(isCatalogQuery(lex('SELECT "pg_class".* FROM nation AS pg_class').tokens, names), false);
    m.close();
  });

  test('a long metadata query is interrupted at its bound, and the mirror keeps answering', async () => {
    const m = new CatalogMirror(catalog, 500);
    try {
      const started = Date.now();
      await assert.rejects(m.query('SELECT count(*) FROM pg_class, generate_series(1, 100000000000) AS g(x) WHERE x % 7 = 8'), (err: { code?: string }) => err.code === 'timeout');
      assert.ok(Date.now() - started < 10_000);
      assert.deepEqual((await m.query('SELECT 1 AS one')).rows, [[1]]);
    } finally {
      m.close();
    }
  });

  test('connect-time metadata queries of JDBC / DBeaver / Metabase', async () => {
    const m = new CatalogMirror(catalog);
    const ask = async (sql: string) => m.query(rewriteCatalogSql(sql));
    try {
      assert.deepEqual((await ask('SELECT current_schema()')).rows, [['main']]);
      assert.deepEqual((await ask('SELECT current_database()')).columns.map((c) => c.name), ['current_database']);
      assert.deepEqual((await ask("SELECT current_setting('server_version_num')")).rows, [['150000']]);
      assert.match(String((await ask('SELECT version()')).rows[0][0]), /^PostgreSQL 15\.0/);
      const types = await ask(`SELECT typinput='pg_catalog.array_in'::regproc as is_array, typtype, typname, pg_type.oid FROM pg_catalog.pg_type LEFT JOIN (select ns.oid as nspoid, ns.nspname, r.r from pg_namespace as ns join ( select s.r, (current_schemas(false))[s.r] as nspname from generate_series(1, array_upper(current_schemas(false), 1)) as s(r) ) as r using ( nspname ) ) as sp ON sp.nspoid = typnamespace WHERE typname = 'int4' ORDER BY sp.r, pg_type.oid DESC LIMIT 1`);
      assert.equal(String(types.rows[0][3]), '23');
      const schemas = await ask(`SELECT nspname AS TABLE_SCHEM FROM pg_catalog.pg_namespace WHERE nspname <> 'pg_toast' AND (nspname !~ '^pg_temp_' OR nspname = (pg_catalog.current_schemas(true))[1]) ORDER BY TABLE_SCHEM`);
      assert.deepEqual(schemas.rows, [['main']]);
      const tables = await ask(`SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog','information_schema') ORDER BY 1,2`);
      assert.deepEqual(tables.rows, [['main', 'nation']], 'no emulation tables, no admin-only table');
      const cols = await ask(`select a.attname, a.atttypid, pg_catalog.format_type(a.atttypid, a.atttypmod) from pg_catalog.pg_namespace n join pg_catalog.pg_class c on c.relnamespace = n.oid join pg_catalog.pg_attribute a on a.attrelid = c.oid where c.relkind in ('r','v','m','f','p') and a.attnum > 0 and not a.attisdropped and c.relname = 'nation' order by a.attnum`);
      assert.deepEqual(cols.rows.map((r) => r.map(String)), [['n_nationkey', '23', 'integer'], ['n_name', '1043', 'character varying'], ['n_price', '1700', 'numeric(15,2)']]);
      assert.deepEqual((await ask('SELECT datname FROM pg_catalog.pg_database WHERE datallowconn ORDER BY 1')).rows, [['puffindb']]);
    } finally {
      m.close();
    }
  });
});
