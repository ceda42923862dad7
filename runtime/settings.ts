// Every setting the runtime reads from its environment, declared once: the CLI, the Lambda
// entry points and the deployment stacks all take their names and defaults from here.

import { cpus } from 'node:os';
import { resolve } from 'node:path';

export interface SettingSpec {
  env: string;
  description: string;
  /** Default as the user would write it; computed defaults are described in words. */
  default: string;
}

export const SETTINGS = {
  home: { env: 'PUFFINDB_HOME', default: './.puffindb', description: 'Local warehouse directory: catalog, data written by `demo`, caches.' },
  warehouse: { env: 'PUFFINDB_WAREHOUSE', default: '$PUFFINDB_HOME/warehouse/', description: "Root URL of the lake: 'file:///dir/' or 's3://bucket/prefix/'." },
  shuffleUrl: { env: 'PUFFINDB_SHUFFLE_URL', default: '$PUFFINDB_WAREHOUSE/_puffindb/shuffle/', description: 'Where fragments write partials too large to return inline.' },
  cacheDir: { env: 'PUFFINDB_CACHE_DIR', default: '$PUFFINDB_HOME/cache', description: 'Worker-side file cache (on Lambda: under /tmp).' },
  cacheBytes: { env: 'PUFFINDB_CACHE_BYTES', default: '4294967296', description: 'Bound of the worker file cache in bytes; least recently used files are evicted.' },
  partitionCache: { env: 'PUFFINDB_PARTITION_CACHE', default: 'on', description: "Workers keep a fragment's filtered, projected rows of each file (deterministic filters only) as Parquet in their file cache, under the same bound, and serve repeat queries with the same or a narrower filter from them; 'off' turns it off." },
  threads: { env: 'PUFFINDB_THREADS', default: 'number of cores', description: 'DuckDB threads per process.' },
  memoryLimit: { env: 'PUFFINDB_MEMORY_LIMIT', default: "DuckDB's default (80% of RAM)", description: "DuckDB memory limit per process, e.g. '2GB'." },
  workers: { env: 'PUFFINDB_WORKERS', default: 'number of cores', description: 'Local worker processes (the local cluster).' },
  maxFragments: { env: 'PUFFINDB_MAX_FRAGMENTS', default: 'workers', description: 'Upper bound on fragments per table scan.' },
  concurrency: { env: 'PUFFINDB_CONCURRENCY', default: '64', description: 'Fragments invoked at once per query.' },
  queryTimeoutMs: { env: 'PUFFINDB_QUERY_TIMEOUT_MS', default: '300000', description: 'Deadline of a whole query.' },
  invokeTimeoutMs: { env: 'PUFFINDB_INVOKE_TIMEOUT_MS', default: '120000', description: 'Timeout of one fragment invocation.' },
  retries: { env: 'PUFFINDB_RETRIES', default: '2', description: 'Retries of a failed fragment before the query fails.' },
  inlineLimitBytes: { env: 'PUFFINDB_INLINE_LIMIT_BYTES', default: '4194304', description: 'Partials up to this size return inline; larger ones go to the shuffle prefix.' },
  broadcastLimitBytes: { env: 'PUFFINDB_BROADCAST_LIMIT_BYTES', default: '67108864', description: 'Tables up to this size may be read whole by every fragment of a join.' },
  coSplit: { env: 'PUFFINDB_CO_SPLIT', default: 'on', description: "A join of two tables whose files hold disjoint ranges of an integer join key (data written in key order) splits both along those ranges, so each fragment joins only the rows that can match, instead of reading one whole in every fragment or hash-partitioning both; a query grouped by such a key aggregates each fragment's groups to the end. 'off': never." },
  partitionedAggregateGroups: { env: 'PUFFINDB_PARTITIONED_AGGREGATE_GROUPS', default: '50000', description: 'A grouped aggregate whose partial groups (its groups, estimated from integer group keys\' statistics, times the tasks that produce partials) reach this many aggregates them in a stage of PUFFINDB_SHUFFLE_PARTITIONS tasks instead of on the coordinator; 0: every grouped aggregate does.' },
  subqueryStageBytes: { env: 'PUFFINDB_SUBQUERY_STAGE_BYTES', default: '67108864', description: 'A query with subqueries (CTEs, derived tables, uncorrelated IN / scalar / EXISTS subqueries) that would pull up about this many bytes or more to one node (its tables\' bytes times the share of their columns it uses) runs each of them first as a distributed query of its own, and plans the rest over their results; 0: always.' },
  shuffleCombineAbove: { env: 'PUFFINDB_SHUFFLE_COMBINE_ABOVE', default: '128', description: 'A shuffle whose producers stored at least this many objects is read through the combining exchange (a round of about as many combiner tasks), so each consumer GETs about sqrt(producers) objects instead of one per producer; 0: never.' },
  stageTaskBytes: { env: 'PUFFINDB_STAGE_TASK_BYTES', default: '8388608', description: 'A stage that reads a shuffle runs its partitions in tasks of about this many bytes of the producers\' pieces (contiguous partitions grouped once the producers are done), never more tasks than partitions; 0: one task per partition.' },
  shufflePartitions: { env: 'PUFFINDB_SHUFFLE_PARTITIONS', default: 'maxFragments', description: 'Partitions (tasks) of a partitioned hash join of two tables over the broadcast limit.' },
  workerFunction: { env: 'PUFFINDB_WORKER_FUNCTION', default: '', description: 'Name or ARN of the worker Lambda; when set, fragments run on Lambda.' },
  lambdaEndpoint: { env: 'PUFFINDB_LAMBDA_ENDPOINT', default: '', description: 'Override of the Lambda API endpoint (tests, local emulators).' },
  s3Endpoint: { env: 'PUFFINDB_S3_ENDPOINT', default: '', description: 'Override of the S3 endpoint (tests, S3-compatible stores).' },
  region: { env: 'AWS_REGION', default: 'us-east-1', description: 'AWS region of S3 and Lambda.' },
  port: { env: 'PUFFINDB_PORT', default: '8080', description: 'Port of `puffindb serve`.' },
  // Settings of a deployment: the state store, results, the coordinator Lambda, API access.
  redisUrl: { env: 'REDIS_URL', default: '', description: 'Redis URL of the state store, without credentials (rediss:// in AWS: ElastiCache has TLS on); unset: in-memory state.' },
  redisAuthSecretArn: { env: 'PUFFINDB_REDIS_AUTH_SECRET_ARN', default: '', description: "ARN of the Secrets Manager secret holding Redis's AUTH token (SecretString is the token); read once at cold start." },
  resultsUrl: { env: 'PUFFINDB_RESULTS_URL', default: '$PUFFINDB_WAREHOUSE/_puffindb/results/', description: 'Where large query results are written and linked from.' },
  coordinatorFunction: { env: 'PUFFINDB_COORDINATOR_FUNCTION', default: '', description: 'Name of the coordinator Lambda; when set, the admin API runs queries on it instead of in-process.' },
  asyncRelayAbove: { env: 'PUFFINDB_ASYNC_RELAY_ABOVE', default: '64', description: 'An asynchronous fan-out of at least this many fragments sends their first attempts through relays (about sqrt(n) worker invocations that each dispatch about sqrt(n) fragments), so the coordinator makes about sqrt(n) Invoke calls instead of n; 0: never.' },
  asyncThreshold: { env: 'PUFFINDB_ASYNC_THRESHOLD', default: '64', description: 'Queries with at least this many fragments invoke workers asynchronously (Lambda Event invocations, completions gathered from the state store) when a worker Lambda is configured; 0 turns asynchronous fan-out off.' },
  apiAllowedCidrs: { env: 'PUFFINDB_API_ALLOWED_CIDRS', default: '', description: "Comma-separated client CIDRs the admin API serves (checked against the caller's source IP); empty serves all." },
  // The admin API and the query lifecycle.
  adminKey: { env: 'PUFFINDB_ADMIN_KEY', default: '', description: 'The first admin API key (a secret: never logged, never shown by GET /v1/config); unset: `puffindb serve` generates one and prints it once.' },
  adminKeySecretArn: { env: 'PUFFINDB_ADMIN_KEY_SECRET_ARN', default: '', description: 'ARN of the Secrets Manager secret whose SecretString is the first admin API key; read once at start when PUFFINDB_ADMIN_KEY is unset (a key given directly wins).' },
  resultInlineLimitBytes: { env: 'PUFFINDB_RESULT_INLINE_LIMIT_BYTES', default: '8388608', description: 'Query results whose response body is over this size are written as Parquet under the results prefix and answered with their location.' },
  cdnUrl: { env: 'PUFFINDB_CDN_URL', default: '', description: "https://<domain> of a CloudFront distribution in front of the results bucket (the stack's enable_cdn): stored results are downloaded through it by CloudFront signed URLs instead of S3 presigned ones; unset: S3 presigned URLs." },
  cdnKeyPairId: { env: 'PUFFINDB_CDN_KEY_PAIR_ID', default: '', description: "Id of the CloudFront public key (in the distribution's trusted key group) whose private key signs result URLs." },
  cdnPrivateKeySecretArn: { env: 'PUFFINDB_CDN_PRIVATE_KEY_SECRET_ARN', default: '', description: 'ARN of the Secrets Manager secret whose SecretString is the PEM private key of PUFFINDB_CDN_KEY_PAIR_ID; read on the first signed download.' },
  resultTtlMs: { env: 'PUFFINDB_RESULT_TTL_MS', default: '3600000', description: "How long a finished query's result, and a cached result, stay retrievable." },
  apiRatePerSecond: { env: 'PUFFINDB_API_RATE_PER_SECOND', default: '50', description: 'Requests per second each API key may make on average (token bucket); 0 turns rate limiting off.' },
  apiRateBurst: { env: 'PUFFINDB_API_RATE_BURST', default: '100', description: 'Requests an API key may make at once before the per-second rate applies.' },
  apiLoginFailureBurst: { env: 'PUFFINDB_API_LOGIN_FAILURE_BURST', default: '20', description: 'Failed logins (requests with a wrong key) a client address may make at once; past them the address is answered 429, valid keys included, until it regains one. 0 turns the throttle off.' },
  apiLoginFailuresPerMinute: { env: 'PUFFINDB_API_LOGIN_FAILURES_PER_MINUTE', default: '60', description: 'Failed logins per minute a client address regains after its burst (IPv6 addresses are counted by /64).' },
  allowedLocations: { env: 'PUFFINDB_ALLOWED_LOCATIONS', default: '', description: "Comma-separated roots outside the warehouse ('file:///dir/', 's3://bucket/prefix/') where tables may have their location, metadata may be registered from and files may be written (Iceberg REST catalog, SQL writes); the warehouse is always allowed, anything else is refused." },
  exportLocations: { env: 'PUFFINDB_EXPORT_LOCATIONS', default: '', description: "Comma-separated roots ('file:///dir/', '/dir', 's3://bucket/prefix/') where `COPY ... TO` may write, besides the warehouse's exports/ prefix (where a relative location such as 'x' or 'exports/x' goes); anything else is refused." },
  curlAllow: { env: 'PUFFINDB_CURL_ALLOW', default: '', description: "Comma-separated URL prefixes ('https://api.example.com/v1/', 'http://127.0.0.1:8080/') the curl() table function may fetch (and redirect within); nothing is allowed by default. Link-local and instance-metadata addresses are never fetched, loopback only under a prefix that names a loopback host." },
  remoteTimeoutMs: { env: 'PUFFINDB_REMOTE_TIMEOUT_MS', default: '30000', description: 'Longest wait for a remote PuffinDB instance (SELECT ... THROUGH, remote.table) to answer one request, within the query deadline; past it the query fails with a timeout naming the remote.' },
  pgPort: { env: 'PUFFINDB_PG_PORT', default: '', description: 'Port of the PostgreSQL wire protocol of `puffindb serve` (psql, JDBC, psycopg, node-postgres; API keys as passwords); unset: not served. `--pg-port` overrides it.' },
  pgTlsCert: { env: 'PUFFINDB_PG_TLS_CERT', default: '', description: 'PEM certificate file of the wire protocol: with PUFFINDB_PG_TLS_KEY, SSLRequest is answered with TLS (and a cleartext password is then accepted, for keys without a SCRAM verifier); unset: TLS is refused and SCRAM-SHA-256 is required.' },
  pgTlsKey: { env: 'PUFFINDB_PG_TLS_KEY', default: '', description: 'PEM private key file of PUFFINDB_PG_TLS_CERT.' },
  logFlushIntervalMs: { env: 'PUFFINDB_LOG_FLUSH_INTERVAL_MS', default: '60000', description: 'How often the query log is flushed from the state store to Parquet under _puffindb/logs/ on the warehouse.' },
} as const satisfies Record<string, SettingSpec>;

export interface Settings {
  home: string;
  warehouse: string;
  shuffleUrl: string;
  cacheDir: string;
  cacheBytes: number;
  /** Workers cache filtered partitions (PUFFINDB_PARTITION_CACHE); default true. */
  partitionCache: boolean;
  threads: number;
  memoryLimit?: string;
  workers: number;
  maxFragments: number;
  concurrency: number;
  queryTimeoutMs: number;
  invokeTimeoutMs: number;
  retries: number;
  inlineLimitBytes: number;
  broadcastLimitBytes: number;
  shufflePartitions: number;
  shuffleCombineAbove: number;
  stageTaskBytes: number;
  coSplit: boolean;
  partitionedAggregateGroups: number;
  subqueryStageBytes: number;
  workerFunction?: string;
  lambdaEndpoint?: string;
  s3Endpoint?: string;
  region: string;
  port: number;
  redisUrl?: string;
  redisAuthSecretArn?: string;
  resultsUrl: string;
  coordinatorFunction?: string;
  /** Fragments at or above which a query fans out asynchronously; 0: never. */
  asyncThreshold: number;
  asyncRelayAbove: number;
  /** Client CIDRs the admin API serves; empty: all. */
  apiAllowedCidrs: string[];
  adminKey?: string;
  adminKeySecretArn?: string;
  /** Result downloads through CloudFront (PUFFINDB_CDN_URL, _KEY_PAIR_ID, _PRIVATE_KEY_SECRET_ARN); all three or none. */
  cdnUrl?: string;
  cdnKeyPairId?: string;
  cdnPrivateKeySecretArn?: string;
  resultInlineLimitBytes: number;
  resultTtlMs: number;
  apiRatePerSecond: number;
  apiRateBurst: number;
  apiLoginFailureBurst: number;
  apiLoginFailuresPerMinute: number;
  /** Roots besides the warehouse where table locations and written files may lie. */
  allowedLocations: string[];
  /** Roots besides the warehouse's exports/ prefix where COPY ... TO may write. */
  exportLocations: string[];
  /** URL prefixes curl() may fetch (PUFFINDB_CURL_ALLOW); empty: curl() is refused. */
  curlAllow: string[];
  /** Largest body curl() reads (default 256 MiB) and longest it waits (default 30 s); not settable from the environment. */
  curlMaxBytes?: number;
  curlTimeoutMs?: number;
  logFlushIntervalMs: number;
  /** Longest wait for one request to a remote instance (PUFFINDB_REMOTE_TIMEOUT_MS). */
  remoteTimeoutMs?: number;
  /** Port of the PostgreSQL wire protocol; absent: not served. */
  pgPort?: number;
  pgTlsCert?: string;
  pgTlsKey?: string;
}

function int(env: NodeJS.ProcessEnv, spec: SettingSpec, fallback: number): number {
  const raw = env[spec.env];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${spec.env} must be a non-negative number, got '${raw}'`);
  return Math.floor(n);
}

function onOff(env: NodeJS.ProcessEnv, spec: SettingSpec, fallback: boolean): boolean {
  const raw = env[spec.env]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return fallback;
  if (['on', 'true', '1', 'yes'].includes(raw)) return true;
  if (['off', 'false', '0', 'no'].includes(raw)) return false;
  throw new Error(`${spec.env} must be 'on' or 'off', got '${env[spec.env]}'`);
}

function str(env: NodeJS.ProcessEnv, spec: SettingSpec): string | undefined {
  const raw = env[spec.env];
  return raw === undefined || raw === '' ? undefined : raw;
}

/** Turn a directory path or URL into a root URL that ends in '/'. */
export function toRootUrl(pathOrUrl: string): string {
  // Local paths become file: URIs literally (no percent-encoding): a location names its object byte for byte.
  const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(pathOrUrl) ? pathOrUrl : `file://${resolve(pathOrUrl)}`;
  return url.endsWith('/') ? url : `${url}/`;
}

export function loadSettings(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Settings> = {}): Settings {
  const S = SETTINGS;
  const cores = Math.max(1, cpus().length);
  const home = resolve(str(env, S.home) ?? S.home.default);
  const warehouse = toRootUrl(str(env, S.warehouse) ?? resolve(home, 'warehouse'));
  const workers = int(env, S.workers, cores);
  const settings: Settings = {
    home,
    warehouse,
    shuffleUrl: toRootUrl(str(env, S.shuffleUrl) ?? `${warehouse}_puffindb/shuffle/`),
    cacheDir: resolve(str(env, S.cacheDir) ?? resolve(home, 'cache')),
    cacheBytes: int(env, S.cacheBytes, 4 * 1024 ** 3),
    partitionCache: onOff(env, S.partitionCache, true),
    threads: int(env, S.threads, cores),
    memoryLimit: str(env, S.memoryLimit),
    workers,
    maxFragments: int(env, S.maxFragments, workers),
    concurrency: int(env, S.concurrency, 64),
    queryTimeoutMs: int(env, S.queryTimeoutMs, 300_000),
    invokeTimeoutMs: int(env, S.invokeTimeoutMs, 120_000),
    retries: int(env, S.retries, 2),
    inlineLimitBytes: int(env, S.inlineLimitBytes, 4 * 1024 * 1024),
    broadcastLimitBytes: int(env, S.broadcastLimitBytes, 64 * 1024 * 1024),
    shufflePartitions: int(env, S.shufflePartitions, int(env, S.maxFragments, workers)),
    shuffleCombineAbove: int(env, S.shuffleCombineAbove, 128),
    stageTaskBytes: int(env, S.stageTaskBytes, 8 * 1024 * 1024),
    coSplit: onOff(env, S.coSplit, true),
    partitionedAggregateGroups: int(env, S.partitionedAggregateGroups, 50_000),
    subqueryStageBytes: int(env, S.subqueryStageBytes, 64 * 1024 * 1024),
    workerFunction: str(env, S.workerFunction),
    lambdaEndpoint: str(env, S.lambdaEndpoint),
    s3Endpoint: str(env, S.s3Endpoint),
    region: str(env, S.region) ?? S.region.default,
    port: int(env, S.port, 8080),
    redisUrl: str(env, S.redisUrl),
    redisAuthSecretArn: str(env, S.redisAuthSecretArn),
    resultsUrl: toRootUrl(str(env, S.resultsUrl) ?? `${warehouse}_puffindb/results/`),
    coordinatorFunction: str(env, S.coordinatorFunction),
    asyncThreshold: int(env, S.asyncThreshold, 64),
    asyncRelayAbove: int(env, S.asyncRelayAbove, 64),
    apiAllowedCidrs: (str(env, S.apiAllowedCidrs) ?? '').split(',').map((c) => c.trim()).filter(Boolean),
    adminKey: str(env, S.adminKey),
    adminKeySecretArn: str(env, S.adminKeySecretArn),
    cdnUrl: str(env, S.cdnUrl),
    cdnKeyPairId: str(env, S.cdnKeyPairId),
    cdnPrivateKeySecretArn: str(env, S.cdnPrivateKeySecretArn),
    resultInlineLimitBytes: int(env, S.resultInlineLimitBytes, 8 * 1024 * 1024),
    resultTtlMs: int(env, S.resultTtlMs, 3_600_000),
    apiRatePerSecond: int(env, S.apiRatePerSecond, 50),
    apiRateBurst: int(env, S.apiRateBurst, 100),
    apiLoginFailureBurst: int(env, S.apiLoginFailureBurst, 20),
    apiLoginFailuresPerMinute: int(env, S.apiLoginFailuresPerMinute, 60),
    allowedLocations: (str(env, S.allowedLocations) ?? '').split(',').map((c) => c.trim()).filter(Boolean),
    exportLocations: (str(env, S.exportLocations) ?? '').split(',').map((c) => c.trim()).filter(Boolean),
    curlAllow: (str(env, S.curlAllow) ?? '').split(',').map((c) => c.trim()).filter(Boolean),
    logFlushIntervalMs: int(env, S.logFlushIntervalMs, 60_000),
    remoteTimeoutMs: int(env, S.remoteTimeoutMs, 30_000),
    pgPort: str(env, S.pgPort) === undefined ? undefined : int(env, S.pgPort, 0),
    pgTlsCert: str(env, S.pgTlsCert),
    pgTlsKey: str(env, S.pgTlsKey),
  };
  return { ...settings, ...overrides };
}
