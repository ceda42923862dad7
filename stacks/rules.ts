// What a security scanner checks on this stack, encoded over the synthesized Terraform JSON
// and named by the scanners' own ids (checkov CKV_*, an AWS Config rule where checkov has
// none), so a finding here reads the same as in a buyer's checkov or trivy report. Neither
// scanner is installed here, and both would want provider schemas; these rules need only
// the JSON. A finding passes only when the stack carries a written justification for that
// check on that resource (`locals.scanner_justifications`, from stacks/justify.ts).
//
// Resources behind `count`/`for_each` are judged as if they exist (a resource that may be
// created must be compliant), but a companion that satisfies a check (a versioning or
// logging resource, a flow log) counts only when it exists under the default inputs.

import type { Justifications } from './justify.ts';

export type Block = Record<string, unknown>;

export interface TerraformJson {
  resource?: Record<string, Record<string, Block>>;
  data?: Record<string, Record<string, Block>>;
  variable?: Record<string, { default?: unknown }>;
  locals?: Record<string, unknown>;
}

export interface Finding {
  check: string;
  address: string;
  message: string;
}

export interface Rule {
  /** Scanner ids this rule implements, e.g. ['CKV_AWS_53']. Findings carry one of them. */
  ids: readonly string[];
  title: string;
  evaluate(model: TerraformModel): Finding[];
}

interface Element {
  address: string;
  body: Block;
}

interface Statement {
  effect: string;
  actions: string[];
  resources: string[];
  principals: { type: string; identifiers: string[] }[];
  conditions: { test: string; variable: string; values: string[] }[];
}

const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : v === undefined || v === null ? [] : [v]);
const asBlock = (v: unknown): Block | undefined => {
  const first = Array.isArray(v) ? v[0] : v;
  return first !== null && typeof first === 'object' ? (first as Block) : undefined;
};
const strings = (v: unknown): string[] => asArray(v).filter((x): x is string => typeof x === 'string');

/** The synthesized JSON with the lookups the rules share. */
export class TerraformModel {
  constructor(readonly json: TerraformJson) {}

  resources(type: string): Element[] {
    return Object.entries(this.json.resource?.[type] ?? {}).map(([name, body]) => ({ address: `${type}.${name}`, body }));
  }

  dataSources(type: string): Element[] {
    return Object.entries(this.json.data?.[type] ?? {}).map(([name, body]) => ({ address: `data.${type}.${name}`, body }));
  }

  private variableDefault(name: string): unknown {
    return this.json.variable?.[name]?.default;
  }

  /** `${var.x}` becomes x's default; anything else is returned as written. */
  resolve(value: unknown): unknown {
    if (typeof value !== 'string') return value;
    const m = /^\$\{var\.([\w-]+)\}$/.exec(value);
    return m ? this.variableDefault(m[1]) : value;
  }

  truthy(value: unknown): boolean {
    const v = this.resolve(value);
    return v === true || v === 'true';
  }

  /**
   * Instances of a resource under the default inputs: 1 without count/for_each, the
   * evaluated count for the simple conditionals this stack writes, undefined otherwise.
   */
  instances(body: Block): number | undefined {
    if (body.count !== undefined) {
      const v = typeof body.count === 'number' ? body.count : this.evaluate(String(body.count));
      return typeof v === 'number' ? v : undefined;
    }
    if (body.for_each !== undefined) {
      const v = this.evaluate(String(body.for_each));
      return Array.isArray(v) ? v.length : undefined;
    }
    return 1;
  }

  /** Exists under the default inputs (unknown counts do not). */
  exists(body: Block): boolean {
    return (this.instances(body) ?? 0) > 0;
  }

  private evaluate(expression: string): unknown {
    const m = /^\$\{(.*)\}$/s.exec(expression.trim());
    if (!m) return undefined;
    return this.evalTerm(m[1].trim());
  }

  private evalTerm(term: string): unknown {
    const ternary = /^(.+?)\s\?\s(.+)\s:\s(.+)$/s.exec(term);
    if (ternary) {
      const cond = this.evalCondition(ternary[1]);
      if (cond === undefined) return undefined;
      return this.evalTerm(cond ? ternary[2].trim() : ternary[3].trim());
    }
    if (/^-?\d+$/.test(term)) return Number(term);
    const variable = /^var\.([\w-]+)$/.exec(term);
    if (variable) return this.variableDefault(variable[1]);
    const set = /^toset\((.*)\)$/.exec(term);
    if (set) return set[1].trim() === '[]' ? [] : this.evalTerm(set[1].trim());
    return undefined;
  }

  private evalCondition(condition: string): boolean | undefined {
    let result = true;
    for (const atom of condition.split('&&').map((a) => a.trim())) {
      const cmp = /^var\.([\w-]+)\s*(==|!=)\s*"(.*)"$/.exec(atom);
      const bare = /^(!?)var\.([\w-]+)$/.exec(atom);
      let value: boolean | undefined;
      if (cmp) value = (this.variableDefault(cmp[1]) === cmp[3]) === (cmp[2] === '==');
      else if (bare) value = (this.variableDefault(bare[2]) === true) !== (bare[1] === '!');
      if (value === undefined) return undefined;
      result &&= value;
    }
    return result;
  }

  /** Whether `value` (any JSON) references `address` (e.g. aws_s3_bucket.lake). */
  refers(value: unknown, address: string): boolean {
    const text = JSON.stringify(value ?? null);
    return text.includes(`${address}.`) || text.includes(`${address}[`);
  }

  /** Resources of `type` that exist by default and whose `field` references `target`. */
  companions(type: string, target: string, field: string): Element[] {
    return this.resources(type).filter((r) => this.exists(r.body) && this.refers(r.body[field], target));
  }

  /** The policy documents an attribute references (`${data.aws_iam_policy_document.x.json}`). */
  policyDocuments(value: unknown): Element[] {
    const names = [...JSON.stringify(value ?? null).matchAll(/data\.aws_iam_policy_document\.([\w-]+)/g)].map((m) => m[1]);
    return this.dataSources('aws_iam_policy_document').filter((d) => names.includes(d.address.split('.')[2]));
  }

  statements(doc: Block): Statement[] {
    return asArray(doc.statement).map((raw) => {
      const s = raw as Block;
      return {
        effect: typeof s.effect === 'string' ? s.effect : 'Allow',
        actions: strings(s.actions),
        resources: strings(s.resources),
        principals: asArray(s.principals).map((p) => ({ type: String((p as Block).type), identifiers: strings((p as Block).identifiers) })),
        conditions: asArray(s.condition).map((c) => ({
          test: String((c as Block).test),
          variable: String((c as Block).variable),
          values: strings((c as Block).values),
        })),
      };
    });
  }

  /** Identity policies: documents attached to roles, users, groups or managed policies. */
  identityPolicies(): { address: string; statements: Statement[] }[] {
    const holders = ['aws_iam_role_policy', 'aws_iam_policy', 'aws_iam_user_policy', 'aws_iam_group_policy'];
    const seen = new Set<string>();
    const out: { address: string; statements: Statement[] }[] = [];
    for (const holder of holders.flatMap((t) => this.resources(t))) {
      for (const doc of this.policyDocuments(holder.body.policy)) {
        if (seen.has(doc.address)) continue;
        seen.add(doc.address);
        out.push({ address: doc.address, statements: this.statements(doc.body) });
      }
    }
    return out;
  }
}

const finding = (check: string, address: string, message: string): Finding => ({ check, address, message });

/** One finding per element of `type` for which `ok` is false. */
function perResource(id: string, title: string, type: string, ok: (e: Element, m: TerraformModel) => boolean, message: string): Rule {
  return {
    ids: [id],
    title,
    evaluate: (m) => m.resources(type).filter((e) => !ok(e, m)).map((e) => finding(id, e.address, message)),
  };
}

// ---- S3 -------------------------------------------------------------------------------

const BUCKET = 'aws_s3_bucket';

function bucketRule(id: string, title: string, ok: (bucket: Element, m: TerraformModel) => boolean, message: string): Rule {
  return perResource(id, title, BUCKET, ok, message);
}

const encryption = (b: Element, m: TerraformModel) =>
  m.companions('aws_s3_bucket_server_side_encryption_configuration', b.address, 'bucket').flatMap((c) =>
    asArray(c.body.rule).map((r) => asBlock((r as Block).apply_server_side_encryption_by_default)),
  );

const publicAccessBlocks = (b: Element, m: TerraformModel) => m.companions('aws_s3_bucket_public_access_block', b.address, 'bucket');

const publicAccessFlag = (id: string, flag: string): Rule =>
  bucketRule(
    id,
    `S3 public access block sets ${flag}`,
    (b, m) => publicAccessBlocks(b, m).some((p) => m.truthy(p.body[flag])),
    `${flag} is not true`,
  );

function deniesInsecureTransport(b: Element, m: TerraformModel): boolean {
  return m.companions('aws_s3_bucket_policy', b.address, 'bucket').some((p) =>
    m.policyDocuments(p.body.policy).some((doc) =>
      m.statements(doc.body).some(
        (s) =>
          s.effect === 'Deny' &&
          (s.actions.includes('s3:*') || s.actions.includes('*')) &&
          s.resources.some((r) => m.refers(r, b.address) && !r.endsWith('/*')) &&
          s.resources.some((r) => m.refers(r, b.address) && r.endsWith('/*')) &&
          s.conditions.some((c) => c.test === 'Bool' && c.variable === 'aws:SecureTransport' && c.values.includes('false')),
      ),
    ),
  );
}

const S3_RULES: Rule[] = [
  bucketRule('CKV_AWS_19', 'S3 bucket encrypted at rest', (b, m) => encryption(b, m).some((e) => e !== undefined), 'no default server-side encryption'),
  bucketRule(
    'CKV_AWS_145',
    'S3 bucket encrypted with a KMS key',
    (b, m) => encryption(b, m).some((e) => e?.sse_algorithm === 'aws:kms' && typeof e.kms_master_key_id === 'string' && e.kms_master_key_id !== ''),
    'default encryption is not SSE-KMS with a customer key',
  ),
  bucketRule('CKV2_AWS_6', 'S3 bucket has a public access block', (b, m) => publicAccessBlocks(b, m).length > 0, 'no public access block'),
  publicAccessFlag('CKV_AWS_53', 'block_public_acls'),
  publicAccessFlag('CKV_AWS_54', 'block_public_policy'),
  publicAccessFlag('CKV_AWS_55', 'ignore_public_acls'),
  publicAccessFlag('CKV_AWS_56', 'restrict_public_buckets'),
  bucketRule(
    'S3_BUCKET_SSL_REQUESTS_ONLY',
    'S3 bucket policy denies requests without TLS (AWS Config rule; CIS AWS 2.1.1)',
    deniesInsecureTransport,
    'no policy denying s3:* on the bucket and its objects when aws:SecureTransport is false',
  ),
  bucketRule(
    'CKV_AWS_21',
    'S3 bucket versioning enabled',
    (b, m) => m.companions('aws_s3_bucket_versioning', b.address, 'bucket').some((v) => asBlock(v.body.versioning_configuration)?.status === 'Enabled'),
    'versioning is not enabled',
  ),
  bucketRule('CKV_AWS_18', 'S3 bucket access logging', (b, m) => m.companions('aws_s3_bucket_logging', b.address, 'bucket').length > 0, 'no access logging'),
  bucketRule(
    'CKV_AWS_144',
    'S3 bucket cross-region replication',
    (b, m) => m.companions('aws_s3_bucket_replication_configuration', b.address, 'bucket').length > 0,
    'no cross-region replication',
  ),
  bucketRule('CKV2_AWS_61', 'S3 bucket has a lifecycle configuration', (b, m) => m.companions('aws_s3_bucket_lifecycle_configuration', b.address, 'bucket').length > 0, 'no lifecycle configuration'),
  bucketRule(
    'CKV_AWS_300',
    'S3 lifecycle aborts incomplete multipart uploads',
    (b, m) =>
      m
        .companions('aws_s3_bucket_lifecycle_configuration', b.address, 'bucket')
        .some((l) => asArray(l.body.rule).some((r) => asBlock((r as Block).abort_incomplete_multipart_upload) !== undefined)),
    'no rule aborting incomplete multipart uploads',
  ),
  bucketRule('CKV2_AWS_62', 'S3 bucket event notifications', (b, m) => m.companions('aws_s3_bucket_notification', b.address, 'bucket').length > 0, 'no event notifications'),
  bucketRule(
    'CKV2_AWS_65',
    'S3 bucket ACLs disabled',
    (b, m) => m.companions('aws_s3_bucket_ownership_controls', b.address, 'bucket').some((o) => asBlock(o.body.rule)?.object_ownership === 'BucketOwnerEnforced'),
    'object ownership is not BucketOwnerEnforced',
  ),
];

// ---- ElastiCache ----------------------------------------------------------------------

const REDIS = 'aws_elasticache_replication_group';
const ELASTICACHE_RULES: Rule[] = [
  perResource('CKV_AWS_29', 'ElastiCache encrypted at rest', REDIS, (e, m) => m.truthy(e.body.at_rest_encryption_enabled), 'at_rest_encryption_enabled is not true'),
  perResource('CKV_AWS_30', 'ElastiCache encrypted in transit', REDIS, (e, m) => m.truthy(e.body.transit_encryption_enabled), 'transit_encryption_enabled is not true'),
  perResource(
    'CKV_AWS_31',
    'ElastiCache in-transit encryption with an AUTH token',
    REDIS,
    (e, m) => m.truthy(e.body.transit_encryption_enabled) && (typeof e.body.auth_token === 'string' || asArray(e.body.user_group_ids).length > 0),
    'no AUTH token (or RBAC user group) with TLS',
  ),
  perResource('CKV_AWS_191', 'ElastiCache encrypted with a KMS key', REDIS, (e) => typeof e.body.kms_key_id === 'string' && e.body.kms_key_id !== '', 'no kms_key_id'),
  perResource(
    'CKV_AWS_134',
    'ElastiCache automatic backups',
    REDIS,
    (e, m) => Number(m.resolve(e.body.snapshot_retention_limit) ?? 0) > 0,
    'snapshot_retention_limit is 0 by default',
  ),
];

// ---- Lambda ---------------------------------------------------------------------------

const LAMBDA = 'aws_lambda_function';
const DEPRECATED_RUNTIMES = /^(nodejs(1[0-8]|[4-9])\.x|nodejs|python2\.7|python3\.[6-8]|ruby2\.\d|java8|dotnetcore\d|dotnet[56]|go1\.x|provided)$/;
const SECRET_NAME = /(PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE_KEY|ACCESS_KEY|API_KEY)/i;
// References to attributes that hold a secret value, e.g. aws_secretsmanager_secret_version.x.secret_string.
const SECRET_VALUE_SOURCE = /\.(secret_string|random_password|password|auth_token)\b/;

function environmentSecrets(e: Element): string[] {
  const vars = (asBlock(e.body.environment)?.variables ?? {}) as Record<string, unknown>;
  return Object.entries(vars)
    .filter(([name, value]) => {
      const text = String(value);
      if (SECRET_VALUE_SOURCE.test(text)) return true;
      // A secret-sounding name is fine when its value only points at a secret (an ARN reference).
      // (or at a secret ARN input: `${var.enable_cdn ? var.cdn_private_key_secret_arn : ""}`).
      return SECRET_NAME.test(name) && !/^\$\{[^}]*\.arn\}$/.test(text) && !/^\$\{[^{}]*\bvar\.\w+_secret_arn\b[^{}]*\}$/.test(text) && !text.startsWith('arn:');
    })
    .map(([name]) => name);
}

const LAMBDA_RULES: Rule[] = [
  perResource(
    'CKV_AWS_117',
    'Lambda function runs in a VPC',
    LAMBDA,
    (e) => {
      const vpc = asBlock(e.body.vpc_config);
      return vpc !== undefined && vpc.subnet_ids !== undefined && asArray(vpc.security_group_ids).length > 0;
    },
    'no vpc_config with subnets and security groups',
  ),
  perResource(
    'CKV_AWS_115',
    'Lambda function has a concurrency limit',
    LAMBDA,
    (e, m) => Number(m.resolve(e.body.reserved_concurrent_executions) ?? -1) >= 0,
    'no reserved concurrency by default',
  ),
  perResource('CKV_AWS_116', 'Lambda function has a dead-letter queue', LAMBDA, (e) => asBlock(e.body.dead_letter_config) !== undefined, 'no dead_letter_config'),
  perResource('CKV_AWS_173', 'Lambda environment encrypted with a KMS key', LAMBDA, (e) => typeof e.body.kms_key_arn === 'string', 'no kms_key_arn'),
  perResource('CKV_AWS_272', 'Lambda function validates code signing', LAMBDA, (e) => typeof e.body.code_signing_config_arn === 'string', 'no code_signing_config_arn'),
  perResource('CKV_AWS_50', 'Lambda function has X-Ray tracing', LAMBDA, (e) => asBlock(e.body.tracing_config) !== undefined, 'no tracing_config'),
  perResource('CKV_AWS_363', 'Lambda runtime not deprecated', LAMBDA, (e) => !DEPRECATED_RUNTIMES.test(String(e.body.runtime)), 'deprecated runtime'),
  {
    ids: ['CKV_AWS_45'],
    title: 'No secrets in Lambda environment variables',
    evaluate: (m) =>
      m
        .resources(LAMBDA)
        .flatMap((e) => environmentSecrets(e).map((name) => finding('CKV_AWS_45', e.address, `environment variable ${name} carries a secret`))),
  },
  perResource(
    'PUFFINDB_LAMBDA_OWN_LOG_GROUP',
    'Lambda logs go to a log group this stack manages (so retention and encryption apply)',
    LAMBDA,
    (e, m) => m.resources('aws_cloudwatch_log_group').some((g) => m.refers(asBlock(e.body.logging_config)?.log_group, g.address)),
    'logging_config.log_group does not reference a managed log group',
  ),
  {
    ids: ['CKV_AWS_301', 'CKV_AWS_364'],
    title: 'Lambda permissions are not public and are limited by source ARN or account',
    evaluate: (m) =>
      m.resources('aws_lambda_permission').flatMap((e) => {
        const out: Finding[] = [];
        if (e.body.principal === '*') out.push(finding('CKV_AWS_301', e.address, 'principal is *'));
        if (String(e.body.principal).endsWith('.amazonaws.com') && e.body.source_arn === undefined && e.body.source_account === undefined) {
          out.push(finding('CKV_AWS_364', e.address, 'service principal without source_arn or source_account'));
        }
        return out;
      }),
  },
];

// ---- Logs and API ---------------------------------------------------------------------

const LOG_GROUP = 'aws_cloudwatch_log_group';
const LOG_AND_API_RULES: Rule[] = [
  perResource('CKV_AWS_158', 'Log group encrypted with a KMS key', LOG_GROUP, (e) => typeof e.body.kms_key_id === 'string', 'no kms_key_id'),
  perResource('CKV_AWS_66', 'Log group has a retention period', LOG_GROUP, (e) => e.body.retention_in_days !== undefined, 'logs never expire'),
  perResource(
    'CKV_AWS_338',
    'Log group keeps logs at least one year',
    LOG_GROUP,
    (e, m) => Number(m.resolve(e.body.retention_in_days) ?? 0) >= 365,
    'default retention is under 365 days',
  ),
  perResource(
    'CKV_AWS_76',
    'API Gateway stage has access logging',
    'aws_apigatewayv2_stage',
    (e) => {
      const logs = asBlock(e.body.access_log_settings);
      return typeof logs?.destination_arn === 'string' && typeof logs.format === 'string' && logs.format !== '';
    },
    'no access_log_settings',
  ),
  perResource(
    'PUFFINDB_API_THROTTLING',
    'API Gateway stage throttles requests',
    'aws_apigatewayv2_stage',
    (e) => {
      const s = asBlock(e.body.default_route_settings);
      return s?.throttling_rate_limit !== undefined && s.throttling_burst_limit !== undefined;
    },
    'no default_route_settings throttling',
  ),
  perResource(
    'CKV_AWS_309',
    'API Gateway v2 route specifies an authorization type',
    'aws_apigatewayv2_route',
    (e) => typeof e.body.authorization_type === 'string' && e.body.authorization_type !== 'NONE',
    'authorization_type is NONE',
  ),
];

// ---- IAM ------------------------------------------------------------------------------

const wildcardResource = (s: Statement) => s.resources.includes('*');
// Calls that support no resource-level permissions: `*` is the only resource IAM accepts.
const UNRESTRICTABLE = /^(ec2:Describe\w*|logs:DescribeLogGroups|sts:GetCallerIdentity)$/i;
const READ_ONLY = /^[\w-]+:(Describe|List|Get|Head)\w*$/i;

// The action classes of checkov's IAM checks, as concrete actions; a statement's action
// patterns (`iam:*`, `s3:Get*`) are matched against them.
const PERMISSIONS_MANAGEMENT = [
  'iam:AttachRolePolicy', 'iam:AttachUserPolicy', 'iam:CreatePolicy', 'iam:CreatePolicyVersion', 'iam:CreateRole',
  'iam:DeleteRolePolicy', 'iam:PassRole', 'iam:PutRolePolicy', 'iam:PutUserPolicy', 'iam:UpdateAssumeRolePolicy',
  's3:PutBucketPolicy', 'kms:PutKeyPolicy', 'kms:CreateGrant', 'lambda:AddPermission', 'secretsmanager:PutResourcePolicy',
];
const DATA_EXFILTRATION = [
  's3:GetObject', 'ssm:GetParameter', 'ssm:GetParameters', 'ssm:GetParametersByPath', 'secretsmanager:GetSecretValue',
  'kms:Decrypt', 'ec2:GetPasswordData', 'rds:CopyDBSnapshot',
];
const CREDENTIALS_EXPOSURE = [
  'iam:CreateAccessKey', 'iam:UpdateAccessKey', 'iam:CreateLoginProfile', 'iam:UpdateLoginProfile', 'sts:GetSessionToken',
  'sts:GetFederationToken', 'ecr:GetAuthorizationToken', 'redshift:GetClusterCredentials', 'lambda:GetFunction',
];
const PRIVILEGE_ESCALATION = [
  'iam:PassRole', 'iam:CreatePolicyVersion', 'iam:SetDefaultPolicyVersion', 'iam:AttachUserPolicy', 'iam:AttachRolePolicy',
  'iam:AttachGroupPolicy', 'iam:PutUserPolicy', 'iam:PutRolePolicy', 'iam:PutGroupPolicy', 'iam:UpdateAssumeRolePolicy',
  'iam:CreateAccessKey', 'iam:CreateLoginProfile', 'iam:UpdateLoginProfile', 'iam:AddUserToGroup',
];

/** Whether an IAM action pattern (`*` wildcards, case-insensitive) grants `action`. */
export function actionMatches(pattern: string, action: string): boolean {
  const re = new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 'i');
  return re.test(action);
}

function iamRule(id: string, title: string, bad: (s: Statement) => string | undefined): Rule {
  return {
    ids: [id],
    title,
    evaluate: (m) =>
      m.identityPolicies().flatMap((doc) =>
        doc.statements
          .filter((s) => s.effect === 'Allow')
          .map((s) => bad(s))
          .filter((why): why is string => why !== undefined)
          .map((why) => finding(id, doc.address, why)),
      ),
  };
}

const onWildcardResource = (pick: (action: string) => boolean) => (s: Statement) => {
  if (!wildcardResource(s)) return undefined;
  const hits = s.actions.filter(pick);
  return hits.length ? `${hits.join(', ')} on resource *` : undefined;
};
const grantsAnyOf = (actions: readonly string[]) => (pattern: string) => actions.some((a) => actionMatches(pattern, a));
const isWrite = (pattern: string) => pattern.includes('*') || !READ_ONLY.test(pattern);

const IAM_RULES: Rule[] = [
  iamRule('CKV_AWS_63', 'No IAM policy allows action *', (s) => (s.actions.includes('*') ? 'action *' : undefined)),
  iamRule('CKV_AWS_62', 'No IAM policy allows * on *', (s) => (s.actions.includes('*') && wildcardResource(s) ? 'action * on resource *' : undefined)),
  iamRule('CKV_AWS_355', 'No IAM policy allows * as the resource of restrictable actions', onWildcardResource((a) => a.includes('*') || !UNRESTRICTABLE.test(a))),
  iamRule('CKV_AWS_111', 'No IAM policy allows write access without constraints', onWildcardResource(isWrite)),
  iamRule('CKV_AWS_290', 'No IAM policy document allows write access without constraints', onWildcardResource(isWrite)),
  iamRule('CKV_AWS_289', 'No IAM policy allows permissions management without constraints', onWildcardResource(grantsAnyOf(PERMISSIONS_MANAGEMENT))),
  iamRule('CKV_AWS_288', 'No IAM policy allows data exfiltration', onWildcardResource(grantsAnyOf(DATA_EXFILTRATION))),
  iamRule('CKV_AWS_287', 'No IAM policy allows credentials exposure', onWildcardResource(grantsAnyOf(CREDENTIALS_EXPOSURE))),
  iamRule('CKV_AWS_286', 'No IAM policy allows privilege escalation', onWildcardResource(grantsAnyOf(PRIVILEGE_ESCALATION))),
];

// ---- KMS and Secrets Manager ----------------------------------------------------------

const KMS_AND_SECRET_RULES: Rule[] = [
  perResource('CKV_AWS_7', 'KMS key rotation enabled', 'aws_kms_key', (e, m) => m.truthy(e.body.enable_key_rotation), 'enable_key_rotation is not true'),
  perResource('CKV2_AWS_64', 'KMS key has a key policy', 'aws_kms_key', (e) => typeof e.body.policy === 'string', 'no key policy'),
  {
    ids: ['CKV_AWS_33'],
    title: 'KMS key policy has no wildcard principal',
    evaluate: (m) =>
      m.resources('aws_kms_key').flatMap((e) =>
        m
          .policyDocuments(e.body.policy)
          .flatMap((doc) => m.statements(doc.body))
          .filter((s) => s.effect === 'Allow' && s.principals.some((p) => p.identifiers.includes('*')))
          .map(() => finding('CKV_AWS_33', e.address, 'an Allow statement names principal *')),
      ),
  },
  perResource('CKV_AWS_149', 'Secret encrypted with a KMS key', 'aws_secretsmanager_secret', (e) => typeof e.body.kms_key_id === 'string', 'no kms_key_id'),
  perResource(
    'CKV2_AWS_57',
    'Secret has automatic rotation',
    'aws_secretsmanager_secret',
    (e, m) => m.companions('aws_secretsmanager_secret_rotation', e.address, 'secret_id').length > 0,
    'no rotation',
  ),
];

// ---- Network --------------------------------------------------------------------------

const WORLD = ['0.0.0.0/0', '::/0'];

/** Security group rules in one direction, whichever resource type expresses them. */
function sgRules(m: TerraformModel, direction: 'ingress' | 'egress'): Element[] {
  return [
    ...m.resources(`aws_vpc_security_group_${direction}_rule`),
    ...m.resources('aws_security_group_rule').filter((e) => e.body.type === direction),
  ];
}

const toWorld = (e: Element): boolean =>
  [...strings(e.body.cidr_ipv4), ...strings(e.body.cidr_ipv6), ...strings(e.body.cidr_blocks)].some((c) => WORLD.includes(c));

function worldIngressId(from: number, to: number): string {
  if (from <= 22 && to >= 22) return 'CKV_AWS_24';
  if (from <= 3389 && to >= 3389) return 'CKV_AWS_25';
  if (from <= 80 && to >= 80) return 'CKV_AWS_260';
  if (from === -1 || (from === 0 && to >= 65535)) return 'CKV_AWS_277';
  return 'PUFFINDB_NO_WORLD_INGRESS';
}

const NETWORK_RULES: Rule[] = [
  {
    ids: ['CKV2_AWS_12'],
    title: "The VPC's default security group allows no traffic",
    evaluate: (m) => [
      ...m
        .resources('aws_vpc')
        .filter((vpc) => m.companions('aws_default_security_group', vpc.address, 'vpc_id').length === 0)
        .map((vpc) => finding('CKV2_AWS_12', vpc.address, 'the default security group is not managed to have no rules')),
      ...m
        .resources('aws_default_security_group')
        .filter((sg) => asArray(sg.body.ingress).length > 0 || asArray(sg.body.egress).length > 0)
        .map((sg) => finding('CKV2_AWS_12', sg.address, 'the default security group has rules')),
    ],
  },
  perResource('CKV2_AWS_11', 'VPC flow logs enabled', 'aws_vpc', (e, m) => m.companions('aws_flow_log', e.address, 'vpc_id').length > 0, 'no flow log by default'),
  perResource('CKV_AWS_130', 'Subnets assign no public IPs', 'aws_subnet', (e, m) => !m.truthy(e.body.map_public_ip_on_launch), 'map_public_ip_on_launch is true'),
  {
    ids: ['CKV_AWS_23'],
    title: 'Every security group and rule has a description',
    evaluate: (m) =>
      ['aws_security_group', 'aws_vpc_security_group_ingress_rule', 'aws_vpc_security_group_egress_rule', 'aws_security_group_rule']
        .flatMap((t) => m.resources(t))
        .filter((e) => typeof e.body.description !== 'string' || e.body.description.trim() === '')
        .map((e) => finding('CKV_AWS_23', e.address, 'no description')),
  },
  {
    ids: ['CKV_AWS_24', 'CKV_AWS_25', 'CKV_AWS_260', 'CKV_AWS_277', 'PUFFINDB_NO_WORLD_INGRESS'],
    title: 'No security group admits the whole internet',
    evaluate: (m) =>
      sgRules(m, 'ingress')
        .filter(toWorld)
        .map((e) => finding(worldIngressId(Number(e.body.from_port ?? -1), Number(e.body.to_port ?? -1)), e.address, 'ingress from anywhere')),
  },
  {
    ids: ['CKV_AWS_382'],
    title: 'No security group allows all egress to the internet',
    evaluate: (m) =>
      sgRules(m, 'egress')
        .filter((e) => toWorld(e) && String(e.body.ip_protocol ?? e.body.protocol) === '-1')
        .map((e) => finding('CKV_AWS_382', e.address, 'all traffic to anywhere')),
  },
];

// ---- EC2 ------------------------------------------------------------------------------

const INSTANCE = 'aws_instance';
const EC2_RULES: Rule[] = [
  perResource('CKV_AWS_79', 'Instance requires IMDSv2', INSTANCE, (e) => asBlock(e.body.metadata_options)?.http_tokens === 'required', 'IMDSv1 is allowed'),
  perResource(
    'CKV_AWS_8',
    'Instance volumes encrypted',
    INSTANCE,
    (e, m) => m.truthy(asBlock(e.body.root_block_device)?.encrypted) && asArray(e.body.ebs_block_device).every((d) => m.truthy((d as Block).encrypted)),
    'a volume is not encrypted',
  ),
  perResource('CKV_AWS_126', 'Instance has detailed monitoring', INSTANCE, (e, m) => m.truthy(e.body.monitoring), 'monitoring is not true'),
  perResource('CKV_AWS_135', 'Instance is EBS-optimized', INSTANCE, (e, m) => m.truthy(e.body.ebs_optimized), 'ebs_optimized is not true'),
  perResource('CKV_AWS_88', 'Instance has no public IP', INSTANCE, (e, m) => !m.truthy(e.body.associate_public_ip_address) && e.body.associate_public_ip_address !== undefined, 'may get a public IP'),
  perResource('CKV2_AWS_41', 'Instance has an IAM role', INSTANCE, (e) => typeof e.body.iam_instance_profile === 'string', 'no instance profile'),
  perResource(
    'CKV_AWS_46',
    'No secrets in instance user data',
    INSTANCE,
    (e) => !SECRET_VALUE_SOURCE.test(String(e.body.user_data ?? '')) && !/(AKIA[0-9A-Z]{16}|password\s*=)/i.test(String(e.body.user_data ?? '')),
    'user data carries a secret',
  ),
];

// ---- CloudFront (enable_cdn) -----------------------------------------------------------

const DISTRIBUTION = 'aws_cloudfront_distribution';
const behaviors = (e: Element): Block[] => [asBlock(e.body.default_cache_behavior), ...asArray(e.body.ordered_cache_behavior).map(asBlock)].filter((b): b is Block => b !== undefined);
const CDN_RULES: Rule[] = [
  perResource('PUFFINDB_CDN_OPTIONAL', 'The CDN is off under the default inputs (enable_cdn)', DISTRIBUTION, (e, m) => m.instances(e.body) === 0, 'the distribution exists by default'),
  perResource('CKV_AWS_34', 'CloudFront viewers use HTTPS only', DISTRIBUTION, (e) => behaviors(e).every((b) => b.viewer_protocol_policy === 'https-only' || b.viewer_protocol_policy === 'redirect-to-https'), 'a cache behavior allows HTTP'),
  perResource(
    'CKV_AWS_174',
    'CloudFront requires TLS 1.2 or later',
    DISTRIBUTION,
    (e) => /^TLSv1\.2_20(19|21)$|^TLSv1\.3/.test(String(asBlock(e.body.viewer_certificate)?.minimum_protocol_version ?? '')) && !asBlock(e.body.viewer_certificate)?.cloudfront_default_certificate,
    'minimum_protocol_version is below TLSv1.2_2021 (or the default certificate, which cannot set one)',
  ),
  perResource('CKV_AWS_86', 'CloudFront access logging', DISTRIBUTION, (e) => typeof asBlock(e.body.logging_config)?.bucket === 'string', 'no logging_config'),
  perResource('CKV_AWS_68', 'CloudFront has a WAF web ACL', DISTRIBUTION, (e) => typeof e.body.web_acl_id === 'string', 'no web_acl_id'),
  perResource('CKV_AWS_310', 'CloudFront origin failover', DISTRIBUTION, (e) => asArray(e.body.origin_group).length > 0, 'no origin group'),
  perResource('CKV2_AWS_32', 'CloudFront sets a response headers policy', DISTRIBUTION, (e) => behaviors(e).every((b) => typeof b.response_headers_policy_id === 'string'), 'a cache behavior has no response headers policy'),
  perResource(
    'PUFFINDB_CDN_OAC',
    'S3 origins use origin access control, not the legacy origin access identity',
    DISTRIBUTION,
    (e, m) => asArray(e.body.origin).every((o) => m.refers((o as Block).origin_access_control_id, 'aws_cloudfront_origin_access_control') && !asBlock((o as Block).s3_origin_config)?.origin_access_identity),
    'an origin has no origin access control (or uses an origin access identity)',
  ),
  perResource('PUFFINDB_CDN_SIGNED_URLS', 'Every cache behavior requires signed URLs (a trusted key group)', DISTRIBUTION, (e) => behaviors(e).every((b) => asArray(b.trusted_key_groups).length > 0), 'a cache behavior serves unsigned requests'),
];

export const RULES: readonly Rule[] = [
  ...CDN_RULES,
  ...S3_RULES,
  ...ELASTICACHE_RULES,
  ...LAMBDA_RULES,
  ...LOG_AND_API_RULES,
  ...IAM_RULES,
  ...KMS_AND_SECRET_RULES,
  ...NETWORK_RULES,
  ...EC2_RULES,
];

export interface ScanResult {
  findings: Finding[];
  justified: (Finding & { reason: string })[];
  unjustified: Finding[];
  /** Justifications no finding needs: stale, so they would hide a future regression. */
  unused: { address: string; check: string }[];
}

export function scan(json: TerraformJson, rules: readonly Rule[] = RULES): ScanResult {
  const model = new TerraformModel(json);
  const justifications = (json.locals?.scanner_justifications ?? {}) as Justifications;
  const findings = rules.flatMap((r) => r.evaluate(model));
  const justified: ScanResult['justified'] = [];
  const unjustified: Finding[] = [];
  const used = new Set<string>();
  for (const f of findings) {
    const reason = justifications[f.address]?.[f.check];
    if (reason) {
      justified.push({ ...f, reason });
      used.add(`${f.address} ${f.check}`);
    } else {
      unjustified.push(f);
    }
  }
  const unused = Object.entries(justifications).flatMap(([address, checks]) =>
    Object.keys(checks)
      .filter((check) => !used.has(`${address} ${check}`))
      .map((check) => ({ address, check })),
  );
  return { findings, justified, unjustified, unused };
}
