// Every buyer input, declared once: the stack turns each into a Terraform variable and
// docs/DEPLOY.md lists them from this same table, so the two cannot drift. Defaults are
// the safe choice (encryption on, nothing public, no reserved concurrency that a new
// account's limit would refuse); names are snake_case as in terraform-aws-modules.

import { TerraformVariable, Token, type IResolvable } from 'cdktf';
import { Construct } from 'constructs';
import { PuffinError } from '../runtime/errors.ts';
import type { FunctionName } from './artifacts.ts';

export type InputType = 'string' | 'number' | 'bool' | 'list(string)' | 'map(string)';

export type InputGroup = 'general' | 'network' | 'storage' | 'state' | 'functions' | 'api' | 'cdn' | 'monostore';

type DefaultOf<T extends InputType> = T extends 'string'
  ? string
  : T extends 'number'
    ? number
    : T extends 'bool'
      ? boolean
      : T extends 'list(string)'
        ? readonly string[]
        : Readonly<Record<string, string>>;

export interface Validation {
  /** A Terraform expression over `var.<name>` that must be true. */
  condition: string;
  message: string;
}

export interface InputSpec<T extends InputType = InputType> {
  type: T;
  default: DefaultOf<T>;
  description: string;
  group: InputGroup;
  validation: readonly Validation[];
}

const input =
  <T extends InputType>(type: T) =>
  (group: InputGroup, value: DefaultOf<T>, description: string, ...validation: Validation[]): InputSpec<T> => ({
    type,
    default: value,
    description,
    group,
    validation,
  });
const string = input('string');
const number = input('number');
const bool = input('bool');
const list = input('list(string)');
const map = input('map(string)');

const between = (name: string, min: number, max: number, unit = ''): Validation => ({
  condition: `var.${name} >= ${min} && var.${name} <= ${max}`,
  message: `${name} must be between ${min} and ${max}${unit}.`,
});

const oneOf = (name: string, values: readonly string[]): Validation => ({
  condition: `contains(${JSON.stringify(values)}, var.${name})`,
  message: `${name} must be one of ${values.join(', ')}.`,
});

// CloudWatch Logs accepts only these retention periods.
const LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

interface LambdaDefaults {
  memoryMb: number;
  ephemeralMb: number;
  timeoutSeconds: number;
}

type LambdaInputName<F extends string> =
  | `${F}_memory_mb`
  | `${F}_ephemeral_storage_mb`
  | `${F}_timeout_seconds`
  | `${F}_reserved_concurrency`;

function lambdaInputs<F extends FunctionName>(fn: F, role: string, d: LambdaDefaults): Record<LambdaInputName<F>, InputSpec<'number'>> {
  return {
    [`${fn}_memory_mb`]: number(
      'functions',
      d.memoryMb,
      `Memory of the ${role} Lambda in MB; Lambda gives one vCPU per 1,769 MB, and DuckDB's threads and memory limit follow it.`,
      between(`${fn}_memory_mb`, 128, 10240, ' MB'),
    ),
    [`${fn}_ephemeral_storage_mb`]: number(
      'functions',
      d.ephemeralMb,
      `/tmp size of the ${role} Lambda in MB: file cache and DuckDB spill space.`,
      between(`${fn}_ephemeral_storage_mb`, 512, 10240, ' MB'),
    ),
    [`${fn}_timeout_seconds`]: number(
      'functions',
      d.timeoutSeconds,
      `Timeout of the ${role} Lambda in seconds.`,
      between(`${fn}_timeout_seconds`, 1, 900, ' seconds'),
    ),
    [`${fn}_reserved_concurrency`]: number(
      'functions',
      -1,
      `Reserved concurrency of the ${role} Lambda; -1 reserves none (a new account's whole limit may be 10, and reserving from it fails).`,
      { condition: `var.${fn}_reserved_concurrency >= -1`, message: `${fn}_reserved_concurrency must be -1 (none) or a count.` },
    ),
  } as Record<LambdaInputName<F>, InputSpec<'number'>>;
}

export const INPUTS = {
  // general
  aws_region: string('general', 'us-east-1', 'AWS region to deploy into.'),
  name_prefix: string(
    'general',
    'puffindb',
    'Prefix of every resource name; also names the Lambda functions and the Redis replication group.',
    {
      // Also valid inside bucket, IAM, Lambda and ElastiCache names: no leading, trailing or double hyphen.
      condition: 'can(regex("^[a-z][a-z0-9]*(-[a-z0-9]+)*$", var.name_prefix)) && length(var.name_prefix) >= 2 && length(var.name_prefix) <= 20',
      message: 'name_prefix must be 2-20 characters of lowercase letters, digits and single hyphens, starting with a letter and not ending with a hyphen.',
    },
  ),
  tags: map('general', {}, 'Tags added to every resource (the provider\'s default_tags).'),

  // network
  vpc_id: string('network', '', 'Bring your own VPC: its id. Empty creates a new VPC with private subnets only (no internet gateway, no NAT).'),
  private_subnet_ids: list(
    'network',
    [],
    'With vpc_id: private subnets for the Lambdas, Redis and Monostore, in at least two availability zones and at most one per zone (interface endpoints take one subnet per zone).',
    {
      condition: 'length(var.private_subnet_ids) == 0 || length(var.private_subnet_ids) >= 2',
      message: 'private_subnet_ids must list at least two subnets (in different availability zones).',
    },
  ),
  private_route_table_ids: list('network', [], 'With vpc_id and create_vpc_endpoints: route tables of those subnets, for the S3 gateway endpoint.'),
  vpc_cidr: string('network', '10.42.0.0/16', 'CIDR of the new VPC (ignored with vpc_id); each private subnet gets a /20 of it when it is a /16.', {
    condition: 'can(cidrhost(var.vpc_cidr, 0))',
    message: 'vpc_cidr must be a CIDR block such as 10.42.0.0/16.',
  }),
  az_count: number('network', 2, 'Availability zones (one private subnet each) of the new VPC.', between('az_count', 2, 6)),
  create_vpc_endpoints: bool(
    'network',
    true,
    'Create the S3 gateway endpoint and the Lambda and Secrets Manager interface endpoints the functions need without NAT. Turn off when the VPC already has them.',
  ),
  https_egress_cidrs: list(
    'network',
    [],
    'Extra CIDRs the functions may reach on port 443: your own VPC endpoints or NAT when create_vpc_endpoints is false.',
    { condition: 'alltrue([for c in var.https_egress_cidrs : can(cidrhost(c, 0))])', message: 'https_egress_cidrs must hold CIDR blocks.' },
  ),
  enable_vpc_flow_logs: bool('network', true, 'Send flow logs of the new VPC to an encrypted CloudWatch log group.'),

  // storage
  force_destroy_buckets: bool('storage', false, 'Let `terraform destroy` delete non-empty buckets. Leave false outside test deployments.'),
  lake_noncurrent_version_expiration_days: number(
    'storage',
    90,
    'Days a replaced or deleted lake object version is kept before it expires (the lake bucket is versioned).',
    between('lake_noncurrent_version_expiration_days', 1, 3650, ' days'),
  ),
  results_expiration_days: number('storage', 7, 'Days large query results are kept in the results bucket.', between('results_expiration_days', 1, 3650, ' days')),
  shuffle_expiration_days: number(
    'storage',
    1,
    'Days partial results are kept in the shuffle bucket; a finished query no longer needs them.',
    between('shuffle_expiration_days', 1, 365, ' days'),
  ),
  access_log_bucket: string('storage', '', 'Bucket receiving S3 server access logs of the three buckets (and, with enable_cdn, the CloudFront access logs under cdn/). Empty disables access logging.'),

  // pipelines
  pipeline_schedule: string(
    'functions',
    'rate(1 minute)',
    'EventBridge schedule expression on which the coordinator Lambda runs the due refreshes of materialized views (ALTER MATERIALIZED VIEW ... SET REFRESH EVERY); empty: no schedule.',
    { condition: 'var.pipeline_schedule == "" || can(regex("^(rate|cron)[(].+[)]$", var.pipeline_schedule))', message: 'pipeline_schedule must be empty or an EventBridge rate(...) or cron(...) expression.' },
  ),

  // cdn
  enable_cdn: bool('cdn', false, 'Put a CloudFront distribution in front of the results bucket (origin access control, signed URLs only, HTTPS with TLS 1.2 or later, access logs): large results are then downloaded through it. Needs cdn_domain_name, cdn_acm_certificate_arn, cdn_public_key_pem, cdn_private_key_secret_arn and access_log_bucket.'),
  cdn_domain_name: string('cdn', '', 'With enable_cdn: the domain name (alias) clients download results from, e.g. results.example.com; its DNS record is yours to point at the distribution.'),
  cdn_acm_certificate_arn: string('cdn', '', 'With enable_cdn: ARN of an ACM certificate in us-east-1 covering cdn_domain_name (what lets the distribution require TLS 1.2 or later).', {
    condition: 'var.cdn_acm_certificate_arn == "" || can(regex("^arn:[^:]+:acm:us-east-1:", var.cdn_acm_certificate_arn))',
    message: 'cdn_acm_certificate_arn must be an ACM certificate ARN in us-east-1 (CloudFront reads certificates only there).',
  }),
  cdn_public_key_pem: string('cdn', '', 'With enable_cdn: the PEM public key (RSA 2048) CloudFront checks result URL signatures with; make the pair with `openssl genrsa -out cdn.pem 2048 && openssl rsa -in cdn.pem -pubout`.'),
  cdn_private_key_secret_arn: string('cdn', '', 'With enable_cdn: ARN of the Secrets Manager secret whose SecretString is the PEM private key of cdn_public_key_pem; only the admin API (and the Monostore) may read it.', {
    condition: 'var.cdn_private_key_secret_arn == "" || can(regex("^arn:[^:]+:secretsmanager:", var.cdn_private_key_secret_arn))',
    message: 'cdn_private_key_secret_arn must be a Secrets Manager secret ARN.',
  }),
  cdn_price_class: string('cdn', 'PriceClass_100', 'CloudFront price class of the distribution.', oneOf('cdn_price_class', ['PriceClass_100', 'PriceClass_200', 'PriceClass_All'])),

  // state
  redis_node_type: string('state', 'cache.t4g.small', 'ElastiCache node type of the Redis replication group.'),
  redis_multi_az: bool('state', true, 'Run a replica in a second availability zone with automatic failover (two nodes instead of one).'),
  redis_engine_version: string('state', '7.1', 'Redis engine version.'),
  redis_snapshot_retention_days: number(
    'state',
    7,
    'Days of automatic Redis snapshots. Redis holds table metadata pointers and API keys, so keep backups on.',
    between('redis_snapshot_retention_days', 0, 35, ' days'),
  ),

  // functions
  lambda_architecture: string('functions', 'x86_64', 'Instruction set of the Lambdas; the bundle must be built for it (`npm run bundle -- --arch arm64`).', oneOf('lambda_architecture', ['x86_64', 'arm64'])),
  lambda_artifacts_dir: string(
    'functions',
    '',
    'Directory holding `<arch>/<function>.zip` from `npm run bundle`. Empty means dist/lambda of the checkout this module was synthesized in.',
  ),
  log_retention_days: number('functions', 365, 'Retention of every log group (functions, API access, flow logs), in days.', {
    condition: `contains(${JSON.stringify(LOG_RETENTION_DAYS)}, var.log_retention_days)`,
    message: `log_retention_days must be one of ${LOG_RETENTION_DAYS.join(', ')}.`,
  }),
  ...lambdaInputs('coordinator', 'coordinator', { memoryMb: 2048, ephemeralMb: 2048, timeoutSeconds: 900 }),
  ...lambdaInputs('worker', 'worker', { memoryMb: 3008, ephemeralMb: 4096, timeoutSeconds: 300 }),
  ...lambdaInputs('admin', 'admin API', { memoryMb: 1024, ephemeralMb: 512, timeoutSeconds: 30 }),
  fragment_concurrency: number('functions', 64, 'Worker invocations in flight per query.', between('fragment_concurrency', 1, 10000)),
  max_fragments: number('functions', 256, 'Upper bound on fragments (worker invocations) per table scan.', between('max_fragments', 1, 100000)),
  fragment_retries: number('functions', 2, 'Retries of a failed fragment before the query fails.', between('fragment_retries', 0, 10)),
  inline_limit_bytes: number(
    'functions',
    4194304,
    'Partials up to this size return inline from a worker; larger ones go through the shuffle bucket (Lambda caps a response at 6 MB).',
    between('inline_limit_bytes', 0, 4194304, ' bytes'),
  ),
  broadcast_limit_bytes: number('functions', 67108864, 'Tables up to this size may be read whole by every fragment of a join.', {
    condition: 'var.broadcast_limit_bytes >= 0',
    message: 'broadcast_limit_bytes must not be negative.',
  }),
  shuffle_partitions: number('functions', 64, 'Partitions (tasks) of a partitioned hash join of two tables over broadcast_limit_bytes (each task joins one partition of both), and of a partitioned aggregation.', between('shuffle_partitions', 1, 10000)),
  shuffle_combine_above: number('functions', 128, 'A shuffle whose producer tasks stored at least this many objects is read through the combining exchange: a round of about as many combiner tasks, after which each consumer task reads about sqrt(producers) objects instead of one per producer; 0: never.', between('shuffle_combine_above', 0, 1000000)),
  stage_task_bytes: number('functions', 8388608, 'A stage that reads a shuffle runs its partitions in tasks of about this many bytes of the producers\' pieces (contiguous partitions grouped once the producers are done), never more tasks than partitions; 0: one task per partition.', between('stage_task_bytes', 0, 68719476736)),
  partitioned_aggregate_groups: number(
    'functions',
    50000,
    'A grouped aggregate whose partial groups (its groups, estimated from the integer group keys\' file statistics, times the tasks that produce partials) reach this many runs its final aggregate in shuffle_partitions tasks on workers instead of on the coordinator; 0: every grouped aggregate does.',
    between('partitioned_aggregate_groups', 0, 1000000000000),
  ),
  subquery_stage_bytes: number(
    'functions',
    67108864,
    'A query with subqueries (CTEs, derived tables, uncorrelated IN / scalar / EXISTS subqueries) that would pull up about this many bytes or more to one node (its tables\' bytes times the share of their columns it uses) runs each of them first as a distributed query of its own, its result stored under the shuffle prefix, and plans the rest over their results; 0: always.',
    between('subquery_stage_bytes', 0, 1000000000000000),
  ),
  async_threshold: number(
    'functions',
    64,
    'Queries with at least this many fragments invoke workers asynchronously (completions gathered through Redis) instead of waiting on each invocation; 0 turns asynchronous fan-out off.',
    between('async_threshold', 0, 100000),
  ),
  catalog_policy_arns: list(
    'functions',
    [],
    'IAM policies (ARNs) attached to the worker, coordinator and admin roles and the Monostore\'s, for external catalogs (puffindb catalog add): what their API calls need (Glue GetTable/UpdateTable, DynamoDB GetItem/PutItem/UpdateItem/Scan, S3 Tables or Glue Iceberg REST, RDS reached through the VPC) and read (and, for writes, write) access to their tables\' buckets. The stack grants nothing outside its own buckets by itself.',
  ),
  async_relay_above: number(
    'functions',
    64,
    'An asynchronous fan-out of at least this many fragments sends their first attempts through relays: about sqrt(n) worker invocations that each dispatch about sqrt(n) fragments (the worker role may invoke the worker function for this), so the coordinator makes about sqrt(n) Invoke calls instead of n; 0: never.',
    between('async_relay_above', 0, 1000000),
  ),
  log_flush_interval_seconds: number(
    'functions',
    60,
    'How often the query log is flushed from Redis to Parquet under _puffindb/logs/ in the lake bucket, in seconds.',
    between('log_flush_interval_seconds', 10, 86400, ' seconds'),
  ),

  // api
  api_throttling_rate_limit: number('api', 100, 'Steady-state requests per second the HTTP API accepts.', between('api_throttling_rate_limit', 1, 10000)),
  api_throttling_burst_limit: number('api', 200, 'Burst of requests the HTTP API accepts.', between('api_throttling_burst_limit', 1, 5000)),
  api_key_rate_per_second: number(
    'api',
    50,
    'Requests per second each API key may make on average (token bucket); 0 turns per-key rate limiting off. Each warm admin Lambda container keeps its own buckets, so a key\'s rate across the fleet can be a multiple of this; api_throttling_* bound the whole API.',
    between('api_key_rate_per_second', 0, 10000),
  ),
  api_key_rate_burst: number('api', 100, 'Requests an API key may make at once before api_key_rate_per_second applies.', between('api_key_rate_burst', 1, 100000)),
  api_login_failure_burst: number('api', 20, 'Failed logins (requests with a wrong key) one client address may make at once; past them the address is answered 429, valid keys included, until it regains one. 0 turns the throttle off (API Gateway throttling still applies).', between('api_login_failure_burst', 0, 100000)),
  api_login_failures_per_minute: number('api', 60, 'Failed logins per minute a client address regains after api_login_failure_burst.', between('api_login_failures_per_minute', 1, 100000)),
  result_inline_limit_bytes: number(
    'api',
    4194304,
    'Query results whose response body is over this size are written as Parquet to the results bucket and answered with their location. Lambda caps a response at 6 MB and binary bodies grow by a third in base64, hence the maximum.',
    between('result_inline_limit_bytes', 0, 4194304, ' bytes'),
  ),
  result_ttl_seconds: number(
    'api',
    3600,
    "How long a finished query's result, and a cached result, stay retrievable, in seconds; keep it under results_expiration_days, which deletes the files behind large results.",
    between('result_ttl_seconds', 60, 604800, ' seconds'),
  ),
  admin_key_secret_arn: string(
    'api',
    '',
    'Bring your own first admin API key: ARN of a Secrets Manager secret whose SecretString is the key (at least 16 characters), encrypted with the aws/secretsmanager key or this deployment\'s. Empty generates one (see the admin_key_secret_arn output).',
    {
      condition: 'var.admin_key_secret_arn == "" || can(regex("^arn:[^:]+:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$", var.admin_key_secret_arn))',
      message: 'admin_key_secret_arn must be empty or the ARN of a Secrets Manager secret.',
    },
  ),
  api_allowed_cidrs: list(
    'api',
    [],
    'Client CIDRs the admin API serves; empty serves any address that presents a valid API key. Enforced by the admin function on the caller\'s source IP.',
    { condition: 'alltrue([for c in var.api_allowed_cidrs : can(cidrhost(c, 0))])', message: 'api_allowed_cidrs must hold CIDR blocks.' },
  ),

  // monostore
  monostore_enabled: bool('monostore', false, 'Run one EC2 instance as a long-lived coordinator (the `puffindb serve` runtime) in a private subnet.'),
  monostore_architecture: string('monostore', 'x86_64', 'Architecture of the Monostore image; must match monostore_instance_type.', oneOf('monostore_architecture', ['x86_64', 'arm64'])),
  monostore_instance_type: string('monostore', 'm6i.large', 'Monostore EC2 instance type.'),
  monostore_root_volume_gb: number('monostore', 64, 'Size of the Monostore\'s encrypted root volume in GB (file cache and spill space).', between('monostore_root_volume_gb', 16, 16384, ' GB')),
  monostore_allowed_cidrs: list(
    'monostore',
    [],
    'CIDRs allowed to reach the Monostore\'s HTTP port inside the VPC. Empty allows none.',
    { condition: 'alltrue([for c in var.monostore_allowed_cidrs : can(cidrhost(c, 0))])', message: 'monostore_allowed_cidrs must hold CIDR blocks.' },
  ),
} as const;

export type InputName = keyof typeof INPUTS;
type InputsOfType<T extends InputType> = { [K in InputName]: (typeof INPUTS)[K]['type'] extends T ? K : never }[InputName];

/** The Terraform variables, with typed accessors so a construct cannot read a list as a string. */
export class Inputs extends Construct {
  private readonly variables = new Map<InputName, TerraformVariable>();

  constructor(scope: Construct, id: string) {
    super(scope, id);
    for (const [name, spec] of Object.entries(INPUTS) as [InputName, InputSpec][]) {
      const value = spec.default;
      this.variables.set(
        name,
        new TerraformVariable(this, name, {
          type: spec.type,
          default: Array.isArray(value) ? [...value] : typeof value === 'object' ? { ...value } : value,
          description: spec.description,
          nullable: false,
          // In Terraform's JSON syntax a plain string is a literal: the condition must be an interpolation.
          validation: spec.validation.map((v) => ({ condition: `\${${v.condition}}`, errorMessage: v.message })),
        }),
      );
    }
  }

  private variable(name: InputName): TerraformVariable {
    const v = this.variables.get(name);
    if (!v) throw new PuffinError('internal', `no input named ${name}`);
    return v;
  }

  string(name: InputsOfType<'string'>): string {
    return this.variable(name).stringValue;
  }

  number(name: InputsOfType<'number'>): number {
    return this.variable(name).numberValue;
  }

  bool(name: InputsOfType<'bool'>): IResolvable {
    return this.variable(name).booleanValue;
  }

  list(name: InputsOfType<'list(string)'>): string[] {
    return this.variable(name).listValue;
  }

  map(name: InputsOfType<'map(string)'>): Record<string, string> {
    return Token.asStringMap(this.variable(name).value);
  }

  /** `var.<name>`, for Terraform expressions written out (conditionals, counts, arithmetic). */
  ref(name: InputName): string {
    return `var.${name}`;
  }
}
