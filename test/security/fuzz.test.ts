// Issue 11, finding 8: a fuzz run of 10,000 bounded requests over every route of a real serve
// (loopback), which must see no 5xx but 503. The routes come from the server itself:
// GET /v1/openapi.json and the Iceberg catalog's GET /iceberg/v1/config endpoint list. Each
// request takes a random method (mostly the route's own), path parameters (ids, NUL, ../,
// overlong, unicode, bad percent-encoding), query string, headers (Accept, Content-Type,
// Authorization garbage or a real reader/writer/admin key) and body (invalid JSON, deep
// nesting, wrong types, huge numbers, NUL bytes in SQL, random SQL fragments). Everything is
// drawn from one seeded PRNG (FUZZ_SEED to change it) and each failure is printed with its
// request, so a failure reproduces. Requests go out 16 at a time over node:http (raw paths:
// fetch would resolve ../), each with a timeout; a hang is a failure too.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { after, before, test } from 'node:test';
import { serveKey, startServe, type RealServer } from '../helpers/serve.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 11);
const REQUESTS = Number(process.env.FUZZ_REQUESTS ?? 10_000);
const CONCURRENCY = 16;
const REQUEST_TIMEOUT_MS = 40_000;

let server: RealServer;
const keys: Record<'reader' | 'writer' | 'admin', string> = { reader: '', writer: '', admin: '' };
let realQueryId = '';

before(async () => {
  // No demo data: one small table is enough, and listing routes stay cheap.
  server = await startServe({
    env: {
      // Limits high enough that fuzzing reaches the routes, but their code still runs.
      PUFFINDB_API_RATE_PER_SECOND: '1000000',
      PUFFINDB_API_RATE_BURST: '1000000',
      PUFFINDB_API_LOGIN_FAILURE_BURST: '1000000',
      // A deadline passed is a 504 by design; cheap queries on loaded cores stay far below this one.
      PUFFINDB_QUERY_TIMEOUT_MS: '30000',
    },
  });
  keys.admin = server.adminKey;
  keys.reader = await serveKey(server, 'reader');
  keys.writer = await serveKey(server, 'writer');
  const res = await server.call('POST', '/v1/queries', { key: keys.reader, body: { sql: 'SELECT 1 AS one' } });
  realQueryId = ((await res.json()) as { queryId: string }).queryId;
  const t = await server.query("CREATE TABLE fuzz_t AS SELECT range AS a, 'n' || range AS s FROM range(25)");
  assert.equal(t.status, 200, await t.text());
});
after(() => server?.close());

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface FuzzRequest {
  n: number;
  /** The route it was made from (its template), for timings. */
  route: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

interface Answer {
  status: number;
  text: string;
  contentType: string;
}

const EXPENSIVE = /^(GET \/v1\/tables|(GET|HEAD|DELETE) \/iceberg\/v1\/namespaces(\/\{namespace\}(\/tables)?)?$|POST \/v1\/(query|queries|explain)$)/;
const METHODS = ['GET', 'POST', 'DELETE', 'PUT', 'PATCH', 'HEAD', 'OPTIONS'];
const ULID_CHARS = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

const SQL = [
  'SELECT 1',
  'SELECT count(*) AS n FROM fuzz_t',
  'SELECT s FROM fuzz_t ORDER BY a LIMIT 3',
  'SELECT a % 3 AS g, count(*) FROM fuzz_t GROUP BY 1',
  'SELECT * FROM fuzz_t',
  'SELECT * FROM no_such_table',
  'SELECT nope FROM fuzz_t',
  'SELECT * FROM nation',
  `SELECT * FROM ${'t'.repeat(300)}`,
  'SELEC 1',
  'SELECT 1; SELECT 2',
  'SELECT 1\u0000; SELECT 2',
  "SELECT '\u0000'",
  'SELECT * FROM puffindb.query_log LIMIT 1',
  "SELECT * FROM read_csv('/etc/passwd')",
  "SELECT * FROM read_parquet('../../**')",
  'SELECT * FROM duckdb_secrets()',
  "SELECT current_setting('allowed_directories')",
  'INSERT INTO fuzz_t VALUES (2, \'y\')',
  'DELETE FROM fuzz_t WHERE a > 100',
  '/* /* */ INSERT INTO fuzz_t SELECT * FROM fuzz_t LIMIT 1 -- */ SELECT 1',
  "COPY fuzz_t TO '/tmp/x.csv'",
  "ATTACH '/tmp/x.db'",
  'PRAGMA version',
  'SET threads = 1',
  'SELECT 9223372036854775807 + 1',
  'SELECT 1/0',
  "SELECT 'a' || repeat('b', 10)",
  'EXPLAIN SELECT 1',
  'SELECT * FROM range(5)',
  "SELECT json_execute_serialized_sql(json_serialize_sql('SELECT 1'))",
  'WITH x AS (SELECT 1 AS a) SELECT * FROM x',
];

const SQL_TOKENS = ['SELECT', 'FROM', 'WHERE', 'nation', 'region', 'fuzz_t', '*', '(', ')', ',', "'", '"', '--', '/*', '*/', ';', '1', 'NULL', 'AND', 'OR',
  'GROUP BY', 'ORDER BY', 'LIMIT', 'UNION ALL', 'JOIN', 'ON', 'read_csv', "'/etc/passwd'", 'COPY', 'INSERT INTO', 'VALUES', 'AT (VERSION => 1)', '\u0000', '\u00e9', '\u{1f600}', '$1', '?', ':x', '::INT', 'CAST(', 'AS', 'x', 'n_name'];

const ICEBERG_BODIES: unknown[] = [
  { namespace: ['fuzz'] }, { namespace: 'fuzz' }, { namespace: [] }, { namespace: [5, null] }, { namespace: ['a'.repeat(300)] },
  { name: 'fz', schema: { type: 'struct', fields: [{ id: 1, name: 'a', type: 'int', required: false }] } },
  { name: 'fz2', schema: { type: 'struct', fields: [{ id: 'one', name: 5, type: { type: 'list' } }] } },
  { name: 'fz3', schema: 5, 'partition-spec': 'x' },
  { name: '../x', schema: { type: 'struct', fields: [] } },
  { name: 'v'.repeat(300), schema: { type: 'struct', fields: [{ id: 1, name: 'a', type: 'int', required: false }] } },
  { name: 'fz4', 'metadata-location': 'nope://x' },
  { requirements: [{ type: 'assert-create' }], updates: [{ action: 'add-schema', schema: 7 }] },
  { requirements: 'x', updates: [{ action: 'nope' }] },
  { updates: [{ action: 'set-properties', updates: { a: 1 } }] },
  { updates: [{ action: 'remove-properties', removals: 'x' }] },
  { source: { namespace: ['default'], name: 'nope' }, destination: { namespace: ['default'], name: 'nope2' } },
  { source: 'x', destination: 5 },
  { removals: ['a'], updates: { a: 'b' } },
  { removals: 5, updates: [] },
];

function makeGenerator(seed: number, routes: { method: string; path: string }[]) {
  const rand = prng(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  const chance = (p: number) => rand() < p;

  const ulid = () => Array.from({ length: 26 }, () => ULID_CHARS[int(32)]).join('');
  const paramValue = (name: string): string =>
    pick([
      () => realQueryId,
      () => realQueryId.toLowerCase(),
      ulid,
      () => 'nation',
      () => 'fuzz_t',
      () => 'default',
      () => 'fuzz',
      () => `key_${ulid().toLowerCase()}`,
      () => 'bootstrap-admin-not',
      () => '%00',
      () => 'a%00b',
      () => '..',
      () => '../..',
      () => '..%2F..%2Fetc%2Fpasswd',
      () => '%2e%2e',
      () => 'x'.repeat(pick([27, 300, 3000])),
      () => '%E2%98%83',
      () => '%F0%9F%98%80',
      () => '%FF',
      () => '%',
      () => '%ZZ',
      () => '%25',
      () => '%2525',
      () => '%0D%0A',
      () => 'a%1Fb',
      () => 'default%1Fnope',
      () => '%20',
      () => '.',
      () => `${name}`,
      () => String(int(1e9)),
      () => '-1',
    ])();

  const queryString = (): string => {
    if (!chance(0.25)) return '';
    const parts = Array.from({ length: 1 + int(3) }, () => `${pick(['limit', 'status', 'cursor', 'parent', 'x', '', '%00', 'limit'])}=${pick(['1', '0', '-5', '1e9', '100000', 'running', 'succeeded', 'nope', '%00', '', 'default', 'a%1Fb', 'x'.repeat(200), '%FF'])}`);
    return `?${parts.join('&')}`;
  };

  const authorization = (): { header?: string; role?: string } => {
    const r = rand();
    if (r < 0.25) return { header: `Bearer ${keys.reader}`, role: 'reader' };
    if (r < 0.4) return { header: `Bearer ${keys.writer}`, role: 'writer' };
    if (r < 0.6) return { header: `Bearer ${keys.admin}`, role: 'admin' };
    return {
      header: pick([
        undefined,
        'Bearer',
        'Bearer ',
        `Bearer pdb_${'z'.repeat(43)}`,
        `Basic ${Buffer.from('a:b').toString('base64')}`,
        `bearer   ${keys.reader}   `,
        `Bearer ${keys.reader} extra`,
        `Bearer ${'k'.repeat(4000)}`,
        'Bearer \u00ff\u00fe',
        'Bearer %00',
        `Bearer ${keys.reader.slice(0, -1)}`,
        'Token x',
      ]),
    };
  };

  const deep = (n: number) => (chance(0.5) ? '['.repeat(n) + ']'.repeat(n) : '{"a":'.repeat(n) + '1' + '}'.repeat(n));
  const randomSql = () => Array.from({ length: 1 + int(8) }, () => pick(SQL_TOKENS)).join(pick([' ', '', '\n']));
  const weirdNumber = () => pick<unknown>([0, -1, 1.5, 1e308, -1e308, 2 ** 53 + 1, 'x', '3', null, [], {}, true, 100_000, 100_001, 3_600_000, 3_600_001]);

  const queryBody = (): string => {
    const r = rand();
    if (r < 0.5) {
      const body: Record<string, unknown> = { sql: chance(0.7) ? pick(SQL) : randomSql() };
      if (chance(0.2)) body.fragments = chance(0.5) ? 1 + int(4) : weirdNumber();
      if (chance(0.2)) body.timeoutMs = chance(0.5) ? 10_000 + int(20_000) : weirdNumber();
      if (chance(0.05)) body[pick(['frgments', '__proto__', 'constructor', '\u0000'])] = 1;
      return JSON.stringify(body);
    }
    if (r < 0.65) return JSON.stringify({ sql: pick<unknown>([5, null, [], {}, ['SELECT 1'], true, '', '   ', 'x'.repeat(2000)]) });
    return rawBody();
  };

  const rawBody = (): string =>
    pick([
      () => '',
      () => '{',
      () => '{"sql":',
      () => '{"sql":"SELECT 1"',
      () => 'null',
      () => '[]',
      () => '"SELECT 1"',
      () => '1e999999',
      () => '{"sql":"SELECT 1"}{"sql":"SELECT 2"}',
      () => '{"sql":"\\ud800"}',
      () => '{"sql":"\\u0000"}',
      () => "{'sql': 'SELECT 1'}",
      () => deep(pick([65, 70, 200, 5000, 20000])),
      () => `{"sql":${deep(pick([10, 64, 65, 1000]))}}`,
      () => '{"sql":"SELECT 1","fragments":1' + '0'.repeat(400) + '}',
      () => `{"x":${'1,'.repeat(1000)}1}`,
      () => '\u0000\u0001\u0002',
      () => '\ufeff{"sql":"SELECT 1"}',
    ])();

  // Routes that list the catalog or run SQL cost far more than a refusal: drawn a third as often.
  const pickRoute = () => {
    const route = pick(routes);
    return EXPENSIVE.test(`${route.method.toUpperCase()} ${route.path}`) && chance(0.67) ? pick(routes) : route;
  };

  return function next(n: number): FuzzRequest {
    const misc = chance(0.05);
    const route = pickRoute();
    const method = misc || chance(0.3) ? pick(METHODS) : route.method.toUpperCase();
    let path = misc
      ? pick(['/', '//', '/v1', '/v1/', '/v1/../v1/tables', '/v1/./query', '/v1/queries/', '/v1/queries//result', '/v2/query', '/iceberg', '/iceberg/', '/iceberg/v1/../../v1/keys', '/iceberg/v1/namespaces/', '/%00', '/v1/%2e%2e/keys', `/v1/${'a/'.repeat(500)}`, '/v1/tables/%', '/iceberg/v1/namespaces/%'])
      : route.path.replace(/\{(\w+)\}/g, (_, name: string) => paramValue(name));
    path += queryString();
    const headers: Record<string, string> = {};
    const auth = authorization();
    if (auth.header !== undefined) headers.authorization = auth.header;
    if (chance(0.3)) headers.accept = pick(['application/json', 'text/csv', 'application/vnd.apache.arrow.stream', '*/*', 'text/html', 'application/json;q=0, text/csv;q=0', 'x'.repeat(500), '', 'text/*', 'application/*;q=0.5']);
    let body: Buffer | undefined;
    if (method !== 'GET' && method !== 'HEAD' && chance(0.9)) {
      const text = route.path.startsWith('/iceberg') && chance(0.6) ? JSON.stringify(pick(ICEBERG_BODIES)) : route.path === '/v1/keys' && chance(0.5) ? JSON.stringify({ name: pick<unknown>(['fz', '', 5, 'x'.repeat(300)]), role: pick<unknown>(['reader', 'root', 5, null]) }) : queryBody();
      body = chance(0.02) ? Buffer.concat([Buffer.from(text), Buffer.from([0xff, 0xfe, 0xc3])]) : Buffer.from(text);
      headers['content-type'] = pick(['application/json', 'application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16']);
      if (chance(0.1)) delete headers['content-type'];
    }
    return { n, route: misc ? '(other path)' : route.path, method, path, headers, body };
  };
}

/**
 * 5xx this fuzz found whose cause lies outside the API edge, reported to their owners
 * (issue 11). While open they are shown as a TODO subtest with their requests instead of
 * failing the run; remove an entry when its fix lands (the TODO then says it passed).
 */
const KNOWN_ELSEWHERE: { owner: string; what: string; matches: (r: FuzzRequest) => boolean }[] = [
  // None open. Fixed: Iceberg REST names over the limit and body fields of the wrong type
  // (400 BadRequestException), and SQL naming a table over the limit (a 4xx, no file system call).
];

const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });

function send(r: FuzzRequest): Promise<Answer | { clientError: string }> {
  return new Promise((resolve) => {
    let req;
    try {
      req = request({ host: '127.0.0.1', port: server.port, method: r.method, path: r.path, headers: { ...r.headers, ...(r.body ? { 'content-length': String(r.body.length) } : {}) }, agent, timeout: REQUEST_TIMEOUT_MS }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (size < 4096) chunks.push(chunk);
          size += chunk.length;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8').slice(0, 4096), contentType: String(res.headers['content-type'] ?? '') }));
        res.on('error', (err) => resolve({ clientError: `response: ${err.message}` }));
      });
    } catch (err) {
      resolve({ clientError: (err as Error).message }); // Node refused to send it (e.g. an invalid header character)
      return;
    }
    req.on('timeout', () => req.destroy(new Error(`no answer in ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', (err) => resolve({ clientError: `request: ${err.message}` }));
    req.end(r.body);
  });
}

/** CPU seconds a process (the server, without its worker children) has used, from /proc; 0 elsewhere. */
async function cpuSeconds(pid: number): Promise<number> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks (100 a second on Linux)
  } catch {
    return 0;
  }
}

async function workersCpuSeconds(): Promise<number> {
  let total = 0;
  for (const pid of await server.workerPids()) total += await cpuSeconds(pid);
  return total;
}

function describeRequest(r: FuzzRequest): string {
  const body = r.body ? r.body.toString('utf8') : '';
  const shown = body.length > 300 ? `${body.slice(0, 300)}... (${body.length} bytes)` : body;
  const headers = Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, v.length > 80 ? `${v.slice(0, 80)}...` : v]));
  return `#${r.n} ${r.method} ${r.path.length > 200 ? `${r.path.slice(0, 200)}...` : r.path} headers=${JSON.stringify(headers)} body=${JSON.stringify(shown)}`;
}

test(`fuzz: ${REQUESTS} requests over every route answer no 5xx but 503 (seed ${SEED})`, { timeout: 240_000 }, async (t) => {
  const doc = (await (await server.call('GET', '/v1/openapi.json', { key: keys.reader })).json()) as { paths: Record<string, Record<string, unknown>> };
  const routes = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((method) => ({ method, path })));
  const config = (await (await server.call('GET', '/iceberg/v1/config', { key: keys.reader })).json()) as { endpoints: string[] };
  for (const endpoint of config.endpoints) {
    const [method, path] = endpoint.split(' ');
    routes.push({ method: method.toLowerCase(), path: `/iceberg${path.replace('/{prefix}', '')}` });
  }
  assert.ok(routes.length >= 25, `routes found: ${routes.length}`);

  const next = makeGenerator(SEED, routes);
  const serverCpuBefore = await cpuSeconds(server.pid());
  const workerCpuBefore = await workersCpuSeconds();
  const clientCpuBefore = process.cpuUsage();
  const started = Date.now();
  const statuses = new Map<number, number>();
  const failures: string[] = [];
  const knownElsewhere: string[] = [];
  const clientErrors = new Map<string, number>();
  const timeByRoute = new Map<string, { n: number; ms: number }>();
  let issued = 0;
  const worker = async () => {
    while (issued < REQUESTS) {
      const r = next(issued++);
      const sentAt = Date.now();
      const answer = await send(r);
      const kind = `${r.method} ${r.route}`;
      const spent = timeByRoute.get(kind) ?? { n: 0, ms: 0 };
      timeByRoute.set(kind, { n: spent.n + 1, ms: spent.ms + Date.now() - sentAt });
      if ('clientError' in answer) {
        if (/no answer in|socket hang up|ECONNRESET|ECONNREFUSED/.test(answer.clientError)) failures.push(`${describeRequest(r)} -> ${answer.clientError}`);
        const kind = answer.clientError.replace(/".*"/, '"..."').slice(0, 80);
        clientErrors.set(kind, (clientErrors.get(kind) ?? 0) + 1);
        continue;
      }
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      if (answer.status >= 500 && answer.status !== 503) {
        const line = `${describeRequest(r)} -> ${answer.status} ${answer.text.slice(0, 300)}`;
        const known = KNOWN_ELSEWHERE.find((k) => k.matches(r));
        if (known) knownElsewhere.push(`${known.owner}: ${known.what}\n    ${line}`);
        else failures.push(line);
      }
      else if (answer.status >= 400 && r.method !== 'HEAD' && answer.contentType.includes('json')) {
        // A refusal names its problem: {error: {code, message}} (the Iceberg form has message and type).
        let error: { code?: unknown; message?: unknown } | undefined;
        try {
          error = (JSON.parse(answer.text) as { error?: typeof error }).error;
        } catch {
          error = undefined;
        }
        if (typeof error?.message !== 'string' || error.message === '') failures.push(`${describeRequest(r)} -> ${answer.status} without an error message: ${answer.text.slice(0, 200)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const seconds = (Date.now() - started) / 1000;
  const serverCpu = (await cpuSeconds(server.pid())) - serverCpuBefore;
  const workerCpu = (await workersCpuSeconds()) - workerCpuBefore;
  const clientCpu = process.cpuUsage(clientCpuBefore);
  t.diagnostic(`CPU: server ${serverCpu.toFixed(1)} s, its worker processes ${workerCpu.toFixed(1)} s (those alive at both ends), this client ${((clientCpu.user + clientCpu.system) / 1e6).toFixed(1)} s (the rest of the wall time is waiting for shared cores)`);
  t.diagnostic(`${REQUESTS} requests in ${seconds.toFixed(1)} s; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`);
  const slowest = [...timeByRoute].sort((a, b) => b[1].ms - a[1].ms).slice(0, 6).map(([k, v]) => `${k}: ${v.n} in ${(v.ms / 1000).toFixed(1)} s`);
  t.diagnostic(`most time (summed over concurrent requests): ${slowest.join('; ')}`);
  if (clientErrors.size) t.diagnostic(`not sent or cut by the client: ${JSON.stringify(Object.fromEntries(clientErrors))}`);

  // The server is still up and answering.
  const health = await server.call('GET', '/v1/health');
  assert.equal(health.status, 200, await health.text());
  const ok = await server.query('SELECT 1 AS one', keys.reader);
  assert.equal(ok.status, 200, await ok.text());

  if (knownElsewhere.length) {
    await t.test(`${knownElsewhere.length} 5xx of known causes outside the API edge (KNOWN_ELSEWHERE)`, { todo: 'reported in issue 11; fixed by their owners' }, () => {
      assert.fail(knownElsewhere.slice(0, 10).join('\n'));
    });
  }
  assert.deepEqual(failures.slice(0, 40), [], `${failures.length} bad answers (FUZZ_SEED=${SEED}); the first ones are listed`);
  const answered = [...statuses.values()].reduce((a, b) => a + b, 0);
  assert.ok(answered >= REQUESTS * 0.95, `${answered} of ${REQUESTS} requests were answered`);
  assert.ok((statuses.get(200) ?? 0) + (statuses.get(202) ?? 0) + (statuses.get(201) ?? 0) > REQUESTS * 0.05, 'a share of the requests got through to the routes');
});
