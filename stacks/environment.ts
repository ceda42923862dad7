// The environment the runtime reads, wired from the deployment: every setting declared in
// runtime/settings.ts that means something in AWS, plus the settings only a deployment
// has (Redis, results bucket, coordinator function). Values are Terraform expressions, so
// they follow the buyer's inputs: DuckDB's threads and memory limit track each function's
// memory size, the file cache its /tmp size, and timeouts the Lambda timeouts.

import { SETTINGS, type SettingSpec } from '../runtime/settings.ts';
import type { FunctionName } from './artifacts.ts';
import type { Inputs } from './inputs.ts';

/** Runtime settings only a deployment sets (state store, results, coordinator, API access). */
export const DEPLOYMENT_SETTINGS = {
  redisUrl: SETTINGS.redisUrl,
  redisAuthSecretArn: SETTINGS.redisAuthSecretArn,
  resultsUrl: SETTINGS.resultsUrl,
  coordinatorFunction: SETTINGS.coordinatorFunction,
  apiAllowedCidrs: SETTINGS.apiAllowedCidrs,
} as const satisfies Record<string, SettingSpec>;

export type SettingKey = keyof typeof SETTINGS;

/** Settings the stack leaves unset on the Lambdas, and why; every other setting is set. */
export const NOT_SET_ON_LAMBDA: Partial<Record<SettingKey, string>> = {
  workers: 'sizes the local worker pool of `puffindb serve`; on Lambda every fragment runs in its own worker invocation',
  lambdaEndpoint: 'an override for tests and emulators; in AWS the SDK resolves the regional endpoint, which the Lambda interface endpoint serves privately',
  s3Endpoint: 'an override for tests and S3-compatible stores; in AWS the SDK resolves the regional endpoint, which the S3 gateway endpoint serves',
  region: 'AWS_REGION is reserved on Lambda: the service sets it, and refuses functions that set it',
  port: 'Lambdas listen on no port; API Gateway invokes the admin function',
  adminKey: 'the first admin key is a secret and never sits in a Lambda environment: the admin function reads it from Secrets Manager (PUFFINDB_ADMIN_KEY_SECRET_ARN)',
  allowedLocations: 'the warehouse is the lake bucket, and each function\'s role may write only the lake, results and shuffle buckets, so a location elsewhere could not be written anyway; a buyer who grants a role more sets PUFFINDB_ALLOWED_LOCATIONS with it',
  exportLocations: 'COPY ... TO writes under the lake bucket\'s exports/ prefix; each function\'s role may write only the lake, results and shuffle buckets, so a buyer who grants a role more sets PUFFINDB_EXPORT_LOCATIONS with it',
  curlAllow: 'curl() fetches nothing by default: which outside URLs queries may read is the buyer\'s decision; a buyer who allows some sets PUFFINDB_CURL_ALLOW with them',
  pgPort: 'the wire protocol is served by the Monostore/control-plane instance, not Lambda',
  pgTlsCert: 'the wire protocol is served by the Monostore/control-plane instance, not Lambda',
  pgTlsKey: 'the wire protocol is served by the Monostore/control-plane instance, not Lambda',
};

/** Settings only some Lambdas read: set on those, left off the others, and why. */
export const ONLY_ON_LAMBDAS: Partial<Record<SettingKey, { on: readonly FunctionName[]; why: string }>> = {
  adminKeySecretArn: {
    on: ['admin'],
    why: 'only the admin API bootstraps the first admin key; the coordinator and worker never read it, and their roles may not read the secret',
  },
};

/** Whether the stack sets `key` on function `fn` (see NOT_SET_ON_LAMBDA and ONLY_ON_LAMBDAS). */
export function setOnLambda(key: SettingKey, fn: FunctionName): boolean {
  const only = ONLY_ON_LAMBDAS[key];
  return NOT_SET_ON_LAMBDA[key] === undefined && (only === undefined || only.on.includes(fn));
}

/** Settings the stack leaves unset on the Monostore instance, and why. */
export const NOT_SET_ON_MONOSTORE: Partial<Record<SettingKey, string>> = {
  workers: 'the Monostore fans fragments out to the worker Lambda (PUFFINDB_WORKER_FUNCTION), not to local processes',
  threads: "a dedicated instance: the runtime's default (all cores) is right for any instance type",
  memoryLimit: "a dedicated instance: DuckDB's default (80% of RAM) is right for any instance type",
  lambdaEndpoint: 'an override for tests and emulators; the instance reaches Lambda through the interface endpoint',
  s3Endpoint: 'an override for tests and S3-compatible stores; the instance reaches S3 through the gateway endpoint',
  adminKey: 'the first admin key is a secret and never sits in the boot script or the environment file: `puffindb serve` reads it from Secrets Manager (PUFFINDB_ADMIN_KEY_SECRET_ARN)',
  allowedLocations: 'the warehouse is the lake bucket, and each function\'s role may write only the lake, results and shuffle buckets, so a location elsewhere could not be written anyway; a buyer who grants a role more sets PUFFINDB_ALLOWED_LOCATIONS with it',
  exportLocations: 'COPY ... TO writes under the lake bucket\'s exports/ prefix; each function\'s role may write only the lake, results and shuffle buckets, so a buyer who grants a role more sets PUFFINDB_EXPORT_LOCATIONS with it',
  curlAllow: 'curl() fetches nothing by default: which outside URLs queries may read is the buyer\'s decision; a buyer who allows some sets PUFFINDB_CURL_ALLOW with them',
  pgPort: 'the stack does not open the wire protocol yet: an operator who wants it sets PUFFINDB_PG_PORT in the environment file and allows the port in the instance security group (docs/ARCHITECTURE.md)',
  pgTlsCert: 'no certificate is provisioned by the stack; without one the wire protocol requires SCRAM-SHA-256',
  pgTlsKey: 'no certificate is provisioned by the stack; without one the wire protocol requires SCRAM-SHA-256',
};

export interface EnvironmentContext {
  inputs: Inputs;
  lakeBucket: string;
  resultsBucket: string;
  shuffleBucket: string;
  redisUrl: string;
  redisAuthSecretArn: string;
  adminKeySecretArn: string;
  /** Result downloads through the CDN: its https:// URL, public key id and private key secret ('' without enable_cdn). */
  cdnUrl: string;
  cdnKeyPairId: string;
  cdnPrivateKeySecretArn: string;
  functionName: (fn: FunctionName) => string;
}

/** Lambda gives one vCPU per 1,769 MB, up to 6. */
const VCPU_MB = 1769;

function shared(ctx: EnvironmentContext): Record<string, string> {
  const { inputs } = ctx;
  const S = SETTINGS;
  const D = DEPLOYMENT_SETTINGS;
  return {
    [S.warehouse.env]: `s3://${ctx.lakeBucket}/`,
    [S.shuffleUrl.env]: `s3://${ctx.shuffleBucket}/`,
    [D.resultsUrl.env]: `s3://${ctx.resultsBucket}/`,
    [S.maxFragments.env]: `\${${inputs.ref('max_fragments')}}`,
    [S.concurrency.env]: `\${${inputs.ref('fragment_concurrency')}}`,
    // The query's deadline ends a few seconds before the coordinator's own timeout, so
    // the coordinator can still report the timeout instead of being killed mid-query.
    [S.queryTimeoutMs.env]: `\${max(1, ${inputs.ref('coordinator_timeout_seconds')} - 5) * 1000}`,
    [S.invokeTimeoutMs.env]: `\${${inputs.ref('worker_timeout_seconds')} * 1000}`,
    [S.retries.env]: `\${${inputs.ref('fragment_retries')}}`,
    [S.inlineLimitBytes.env]: `\${${inputs.ref('inline_limit_bytes')}}`,
    [S.broadcastLimitBytes.env]: `\${${inputs.ref('broadcast_limit_bytes')}}`,
    [S.shufflePartitions.env]: `\${${inputs.ref('shuffle_partitions')}}`,
    [S.shuffleCombineAbove.env]: `\${${inputs.ref('shuffle_combine_above')}}`,
    [S.stageTaskBytes.env]: `\${${inputs.ref('stage_task_bytes')}}`,
    [S.partitionedAggregateGroups.env]: `\${${inputs.ref('partitioned_aggregate_groups')}}`,
    [S.subqueryStageBytes.env]: `\${${inputs.ref('subquery_stage_bytes')}}`,
    // Co-split joins follow the files' own key ranges, on Lambda as locally.
    [S.coSplit.env]: S.coSplit.default,
    [S.workerFunction.env]: ctx.functionName('worker'),
    [D.coordinatorFunction.env]: ctx.functionName('coordinator'),
    [D.redisUrl.env]: ctx.redisUrl,
    [D.redisAuthSecretArn.env]: ctx.redisAuthSecretArn,
    [S.asyncThreshold.env]: `\${${inputs.ref('async_threshold')}}`,
    [S.asyncRelayAbove.env]: `\${${inputs.ref('async_relay_above')}}`,
    [S.logFlushIntervalMs.env]: `\${${inputs.ref('log_flush_interval_seconds')} * 1000}`,
    // Workers keep filtered partitions in their file cache (/tmp on Lambda), as they do locally.
    [S.partitionCache.env]: S.partitionCache.default,
    // Remote instances (SELECT ... THROUGH, remote.table) are registered at run time; the runtime's wait for one applies.
    [S.remoteTimeoutMs.env]: S.remoteTimeoutMs.default,
    // The API's limits: read by whichever process serves the API or keeps results (the admin
    // function, the coordinator, the Monostore); every function gets the same values so a
    // query's result is kept the same way wherever it runs.
    [S.resultInlineLimitBytes.env]: `\${${inputs.ref('result_inline_limit_bytes')}}`,
    [S.resultTtlMs.env]: `\${${inputs.ref('result_ttl_seconds')} * 1000}`,
    [S.apiRatePerSecond.env]: `\${${inputs.ref('api_key_rate_per_second')}}`,
    [S.apiRateBurst.env]: `\${${inputs.ref('api_key_rate_burst')}}`,
    [S.apiLoginFailureBurst.env]: `\${${inputs.ref('api_login_failure_burst')}}`,
    [S.apiLoginFailuresPerMinute.env]: `\${${inputs.ref('api_login_failures_per_minute')}}`,
    // Whoever serves a stored result's download signs its CloudFront URL (with enable_cdn).
    [S.cdnUrl.env]: ctx.cdnUrl,
    [S.cdnKeyPairId.env]: ctx.cdnKeyPairId,
    [S.cdnPrivateKeySecretArn.env]: ctx.cdnPrivateKeySecretArn,
  };
}

/** The environment of one Lambda function. */
export function lambdaEnvironment(fn: FunctionName, ctx: EnvironmentContext): Record<string, string> {
  const { inputs } = ctx;
  const S = SETTINGS;
  const memory = inputs.ref(`${fn}_memory_mb`);
  const tmp = inputs.ref(`${fn}_ephemeral_storage_mb`);
  const environment: Record<string, string> = {
    ...shared(ctx),
    // /tmp is the only writable directory on Lambda.
    [S.home.env]: '/tmp/puffindb',
    [S.cacheDir.env]: '/tmp/puffindb/cache',
    // Half of /tmp for cached files; the rest is DuckDB's spill space.
    [S.cacheBytes.env]: `\${floor(${tmp} * 1048576 / 2)}`,
    [S.threads.env]: `\${min(6, max(1, ceil(${memory} / ${VCPU_MB})))}`,
    // A quarter of the function's memory stays with Node and the native heap.
    [S.memoryLimit.env]: `\${floor(${memory} * 3 / 4)}MB`,
    ...(fn === 'admin' ? { [DEPLOYMENT_SETTINGS.apiAllowedCidrs.env]: `\${join(",", ${inputs.ref('api_allowed_cidrs')})}` } : {}),
    [S.adminKeySecretArn.env]: ctx.adminKeySecretArn,
  };
  for (const key of Object.keys(ONLY_ON_LAMBDAS) as SettingKey[]) {
    if (!setOnLambda(key, fn)) delete environment[SETTINGS[key].env];
  }
  return environment;
}

export const MONOSTORE_HOME = '/var/lib/puffindb';

/** The environment of the Monostore's `puffindb serve`. */
export function monostoreEnvironment(ctx: EnvironmentContext, region: string): Record<string, string> {
  const { inputs } = ctx;
  const S = SETTINGS;
  return {
    ...shared(ctx),
    [S.home.env]: MONOSTORE_HOME,
    [S.cacheDir.env]: `${MONOSTORE_HOME}/cache`,
    // A quarter of the root volume: the rest holds the OS, the runtime and DuckDB's spill.
    [S.cacheBytes.env]: `\${floor(${inputs.ref('monostore_root_volume_gb')} * 1073741824 / 4)}`,
    [S.port.env]: S.port.default,
    [S.region.env]: region,
    [DEPLOYMENT_SETTINGS.apiAllowedCidrs.env]: `\${join(",", ${inputs.ref('monostore_allowed_cidrs')})}`,
    [S.adminKeySecretArn.env]: ctx.adminKeySecretArn,
  };
}
