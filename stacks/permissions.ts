// Least-privilege grants, one named grant per thing a role needs, so each role's policy is
// a short list that reads like the architecture: the worker reads the lake and writes
// shuffle partials; the coordinator invokes workers, writes table metadata, results and
// shuffle; the admin function invokes the coordinator, reads results for links and reads
// the first admin key. No
// statement has a `*` action, and `*` resources appear only for EC2 Describe calls, which
// IAM cannot scope.

import type { DataAwsIamPolicyDocumentStatement } from '@cdktf/provider-aws/lib/data-aws-iam-policy-document/index.js';
import type { Account } from './account.ts';
import type { FunctionName } from './artifacts.ts';
import type { Bucket, BucketRole } from './storage.ts';

/**
 * Object key patterns inside the lake bucket, as Iceberg lays a table out under its
 * location: `<namespace>/<table>/data/...` and `<namespace>/<table>/metadata/...`.
 * PuffinDB's own files (query logs) live under `_puffindb/`.
 */
export const LAKE_KEYS = {
  data: '*/data/*',
  metadata: '*/metadata/*',
  internal: '_puffindb/*',
  /** puffindb.materialized_views' status files (runtime/exec/pipeline-log.ts), written by whoever lists the table. */
  viewStatus: '_puffindb/materialized-views/*',
} as const;

export type Grant =
  | 'lakeRead'
  | 'lakeWriteData'
  | 'lakeWriteMetadata'
  | 'lakeWriteInternal'
  | 'shuffleReadWrite'
  | 'resultsReadWrite'
  | 'resultsRead'
  | 'invokeWorker'
  | 'invokeCoordinator'
  | 'redisAuthToken'
  | 'adminKey'
  | 'cdnPrivateKey'
  | 'viewStatusFiles';

export type Principal = FunctionName | 'monostore';

// Plans, fans out, reduces, commits (manifests and metadata.json), logs queries.
const COORDINATOR_GRANTS: readonly Grant[] = [
  'lakeRead',
  'lakeWriteData',
  'lakeWriteMetadata',
  'lakeWriteInternal',
  'shuffleReadWrite',
  'resultsReadWrite',
  'invokeWorker',
  'redisAuthToken',
  'viewStatusFiles',
];

export const GRANTS: Record<Principal, readonly Grant[]> = {
  // Fragments read table files, write data files of INSERT/CTAS, and put partials too
  // large to return inline into the shuffle bucket; completions go through Redis.
  // A relay (the coordinator's invocation tree for wide fan-outs) invokes the worker function.
  worker: ['lakeRead', 'lakeWriteData', 'shuffleReadWrite', 'redisAuthToken', 'invokeWorker'],
  coordinator: COORDINATOR_GRANTS,
  // Serves the API and the Iceberg REST catalog (which commits metadata), runs queries
  // through the coordinator, and signs links to results.
  // Reads the first admin key at cold start to bootstrap it.
  // With enable_cdn, signs result download URLs with the CDN private key (stacks/cdn.ts).
  // Lists tables (GET /v1/tables), puffindb.materialized_views among them: its status file.
  admin: ['lakeRead', 'lakeWriteMetadata', 'resultsRead', 'invokeCoordinator', 'redisAuthToken', 'adminKey', 'cdnPrivateKey', 'viewStatusFiles'],
  // A long-lived coordinator that also serves the API: the coordinator's grants, plus the
  // first admin key the admin function reads (it runs queries itself, so invokes no coordinator).
  monostore: [...COORDINATOR_GRANTS, 'adminKey', 'cdnPrivateKey'],
};

export interface GrantContext {
  account: Account;
  buckets: Record<BucketRole, Bucket>;
  keyArn: string;
  authSecretArn: string;
  adminKeySecretArn: string;
  /** With enable_cdn, the buyer's CDN private key secret; otherwise the first admin key's secret (a grant the holder has anyway). */
  cdnPrivateKeySecretArn: string;
  functionArn: (fn: FunctionName) => string;
}

const READ = ['s3:GetObject'];
const WRITE = ['s3:PutObject', 's3:AbortMultipartUpload'];
const READ_WRITE_DELETE = ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'];

function statementsFor(grant: Grant, ctx: GrantContext): DataAwsIamPolicyDocumentStatement[] {
  const { lake, results, shuffle } = ctx.buckets;
  const allow = (sid: string, actions: string[], resources: string[]): DataAwsIamPolicyDocumentStatement => ({
    sid,
    effect: 'Allow',
    actions,
    resources,
  });
  switch (grant) {
    case 'lakeRead':
      return [allow('ReadLake', READ, [`${lake.arn}/*`]), allow('ListLake', ['s3:ListBucket'], [lake.arn])];
    case 'lakeWriteData':
      return [allow('WriteLakeDataFiles', WRITE, [`${lake.arn}/${LAKE_KEYS.data}`])];
    case 'lakeWriteMetadata':
      return [allow('WriteLakeMetadataFiles', WRITE, [`${lake.arn}/${LAKE_KEYS.metadata}`])];
    case 'lakeWriteInternal':
      return [allow('WritePuffinDbFiles', WRITE, [`${lake.arn}/${LAKE_KEYS.internal}`])];
    case 'shuffleReadWrite':
      return [allow('UseShuffle', READ_WRITE_DELETE, [`${shuffle.arn}/*`]), allow('ListShuffle', ['s3:ListBucket'], [shuffle.arn])];
    case 'resultsReadWrite':
      return [allow('UseResults', READ_WRITE_DELETE, [`${results.arn}/*`]), allow('ListResults', ['s3:ListBucket'], [results.arn])];
    case 'resultsRead':
      return [allow('ReadResults', READ, [`${results.arn}/*`])];
    case 'invokeWorker':
    case 'invokeCoordinator': {
      const arn = ctx.functionArn(grant === 'invokeWorker' ? 'worker' : 'coordinator');
      // `:*` covers qualified ARNs (versions, aliases) of the same function.
      return [allow(grant === 'invokeWorker' ? 'InvokeWorker' : 'InvokeCoordinator', ['lambda:InvokeFunction'], [arn, `${arn}:*`])];
    }
    case 'redisAuthToken':
      return [allow('ReadRedisAuthToken', ['secretsmanager:GetSecretValue'], [ctx.authSecretArn])];
    case 'adminKey':
      return [allow('ReadFirstAdminKey', ['secretsmanager:GetSecretValue'], [ctx.adminKeySecretArn])];
    case 'viewStatusFiles':
      return [allow('WriteViewStatusFiles', ['s3:PutObject', 's3:DeleteObject'], [`${lake.arn}/${LAKE_KEYS.viewStatus}`])];
    case 'cdnPrivateKey':
      return [allow('ReadCdnSigningKey', ['secretsmanager:GetSecretValue'], [ctx.cdnPrivateKeySecretArn])];
  }
}

/** Statements for a principal: its grants plus use of the deployment key through S3 and Secrets Manager. */
export function grantStatements(principal: Principal, ctx: GrantContext): DataAwsIamPolicyDocumentStatement[] {
  const statements = GRANTS[principal].flatMap((g) => statementsFor(g, ctx));
  statements.push({
    sid: 'UseDeploymentKeyThroughS3AndSecretsManager',
    effect: 'Allow',
    actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
    resources: [ctx.keyArn],
    condition: [
      {
        test: 'StringEquals',
        variable: 'kms:ViaService',
        values: [ctx.account.servicePrincipal('s3'), ctx.account.servicePrincipal('secretsmanager')],
      },
    ],
  });
  return statements;
}

/** What every Lambda in a VPC needs besides its grants: its own log group and its ENIs. */
export function lambdaRuntimeStatements(account: Account, logGroupArn: string): DataAwsIamPolicyDocumentStatement[] {
  return [
    {
      sid: 'WriteOwnLogs',
      effect: 'Allow',
      actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      resources: [`${logGroupArn}:*`],
    },
    {
      // Lambda creates the function's network interfaces with the execution role.
      sid: 'ManageVpcNetworkInterfaces',
      effect: 'Allow',
      actions: ['ec2:CreateNetworkInterface', 'ec2:DeleteNetworkInterface', 'ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses'],
      resources: [account.arn('ec2', 'network-interface/*'), account.arn('ec2', 'subnet/*'), account.arn('ec2', 'security-group/*')],
    },
    {
      // Describe calls support no resource-level permissions: IAM accepts only `*` here.
      sid: 'DescribeVpcNetworkInterfaces',
      effect: 'Allow',
      actions: ['ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets'],
      resources: ['*'],
    },
  ];
}
