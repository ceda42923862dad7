import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RULES, scan, type Block, type TerraformJson } from '../../stacks/rules.ts';
import { synthesizedCopy, synthesizedStack } from './synthesized.ts';

type Mutation = (json: TerraformJson) => void;
const res = (json: TerraformJson, type: string, name: string): Block => {
  const body = json.resource?.[type]?.[name];
  assert.ok(body, `${type}.${name} exists`);
  return body;
};
const doc = (json: TerraformJson, name: string): Block => {
  const body = json.data?.aws_iam_policy_document?.[name];
  assert.ok(body, `policy document ${name} exists`);
  return body;
};

describe('security scanner rules over the synthesized stack', () => {
  test('zero unjustified findings, and no justification that nothing needs', () => {
    const result = scan(synthesizedStack());
    const ids = new Set(RULES.flatMap((r) => r.ids));
    console.log(`${RULES.length} rules covering ${ids.size} check ids; ${result.findings.length} findings, all justified:`);
    for (const f of result.justified) console.log(`  ${f.check} ${f.address}: ${f.reason}`);
    assert.deepEqual(result.unjustified, []);
    assert.deepEqual(result.unused, []);
  });

  // Each case breaks one property the stack guarantees and expects the scanner id to fire:
  // proof that the rules can fail, and a record of what each id checks.
  const cases: [string, string, string, Mutation][] = [
    ['CKV_AWS_19', 'aws_s3_bucket.lake', 'bucket without default encryption', (j) => delete j.resource!.aws_s3_bucket_server_side_encryption_configuration!.lake_encryption],
    ['CKV_AWS_145', 'aws_s3_bucket.results', 'bucket encrypted with AES256 instead of KMS', (j) => {
      (res(j, 'aws_s3_bucket_server_side_encryption_configuration', 'results_encryption').rule as Block[])[0].apply_server_side_encryption_by_default = { sse_algorithm: 'AES256' };
    }],
    ['CKV2_AWS_6', 'aws_s3_bucket.shuffle', 'bucket without a public access block', (j) => delete j.resource!.aws_s3_bucket_public_access_block!.shuffle_public_access],
    ['CKV_AWS_53', 'aws_s3_bucket.lake', 'public ACLs not blocked', (j) => void (res(j, 'aws_s3_bucket_public_access_block', 'lake_public_access').block_public_acls = false)],
    ['CKV_AWS_54', 'aws_s3_bucket.lake', 'public policies not blocked', (j) => void (res(j, 'aws_s3_bucket_public_access_block', 'lake_public_access').block_public_policy = false)],
    ['CKV_AWS_55', 'aws_s3_bucket.lake', 'public ACLs not ignored', (j) => void (res(j, 'aws_s3_bucket_public_access_block', 'lake_public_access').ignore_public_acls = false)],
    ['CKV_AWS_56', 'aws_s3_bucket.lake', 'public buckets not restricted', (j) => void (res(j, 'aws_s3_bucket_public_access_block', 'lake_public_access').restrict_public_buckets = false)],
    ['S3_BUCKET_SSL_REQUESTS_ONLY', 'aws_s3_bucket.lake', 'TLS-only statement removed', (j) => void (doc(j, 'lake_tls_only').statement = [])],
    ['CKV_AWS_21', 'aws_s3_bucket.lake', 'lake versioning suspended', (j) => void (res(j, 'aws_s3_bucket_versioning', 'lake_versioning').versioning_configuration = { status: 'Suspended' })],
    ['CKV_AWS_300', 'aws_s3_bucket.results', 'no multipart abort rule', (j) => {
      for (const r of res(j, 'aws_s3_bucket_lifecycle_configuration', 'results_lifecycle').rule as Block[]) delete r.abort_incomplete_multipart_upload;
    }],
    ['CKV2_AWS_65', 'aws_s3_bucket.lake', 'ACLs enabled', (j) => void (res(j, 'aws_s3_bucket_ownership_controls', 'lake_ownership').rule = { object_ownership: 'ObjectWriter' })],
    ['CKV_AWS_29', 'aws_elasticache_replication_group.redis', 'Redis unencrypted at rest', (j) => void (res(j, 'aws_elasticache_replication_group', 'redis').at_rest_encryption_enabled = 'false')],
    ['CKV_AWS_30', 'aws_elasticache_replication_group.redis', 'Redis without TLS', (j) => void (res(j, 'aws_elasticache_replication_group', 'redis').transit_encryption_enabled = false)],
    ['CKV_AWS_31', 'aws_elasticache_replication_group.redis', 'Redis without AUTH', (j) => void delete res(j, 'aws_elasticache_replication_group', 'redis').auth_token],
    ['CKV_AWS_191', 'aws_elasticache_replication_group.redis', 'Redis with the AWS-managed key', (j) => void delete res(j, 'aws_elasticache_replication_group', 'redis').kms_key_id],
    ['CKV_AWS_134', 'aws_elasticache_replication_group.redis', 'Redis backups off by default', (j) => void (j.variable!.redis_snapshot_retention_days.default = 0)],
    ['CKV_AWS_117', 'aws_lambda_function.worker', 'worker outside the VPC', (j) => void delete res(j, 'aws_lambda_function', 'worker').vpc_config],
    ['CKV_AWS_45', 'aws_lambda_function.coordinator', 'Redis token copied into the environment', (j) => {
      ((res(j, 'aws_lambda_function', 'coordinator').environment as Block).variables as Block).REDIS_PASSWORD = '${aws_secretsmanager_secret_version.redis_auth_token_version.secret_string}';
    }],
    ['CKV_AWS_45', 'aws_lambda_function.admin', 'literal token in the environment', (j) => {
      ((res(j, 'aws_lambda_function', 'admin').environment as Block).variables as Block).API_TOKEN = 'hunter2hunter2';
    }],
    ['CKV_AWS_363', 'aws_lambda_function.admin', 'deprecated runtime', (j) => void (res(j, 'aws_lambda_function', 'admin').runtime = 'nodejs16.x')],
    ['CKV_AWS_158', 'aws_cloudwatch_log_group.worker_logs', 'log group without the key', (j) => void delete res(j, 'aws_cloudwatch_log_group', 'worker_logs').kms_key_id],
    ['CKV_AWS_338', 'aws_cloudwatch_log_group.api_access_logs', 'retention default under a year', (j) => void (j.variable!.log_retention_days.default = 30)],
    ['CKV_AWS_66', 'aws_cloudwatch_log_group.vpc_flow_logs', 'logs kept forever', (j) => void delete res(j, 'aws_cloudwatch_log_group', 'vpc_flow_logs').retention_in_days],
    ['CKV_AWS_76', 'aws_apigatewayv2_stage.admin_stage', 'API without access logs', (j) => void delete res(j, 'aws_apigatewayv2_stage', 'admin_stage').access_log_settings],
    ['PUFFINDB_API_THROTTLING', 'aws_apigatewayv2_stage.admin_stage', 'API without throttling', (j) => void delete res(j, 'aws_apigatewayv2_stage', 'admin_stage').default_route_settings],
    ['CKV_AWS_364', 'aws_lambda_permission.admin_invoke_from_api', 'any API may invoke the admin function', (j) => {
      const p = res(j, 'aws_lambda_permission', 'admin_invoke_from_api');
      delete p.source_arn;
      delete p.source_account;
    }],
    ['CKV_AWS_62', 'data.aws_iam_policy_document.worker_policy_document', '* on * granted', (j) => void (doc(j, 'worker_policy_document').statement as Block[]).push({ effect: 'Allow', actions: ['*'], resources: ['*'] })],
    ['CKV_AWS_355', 'data.aws_iam_policy_document.admin_policy_document', 's3:GetObject on *', (j) => void (doc(j, 'admin_policy_document').statement as Block[]).push({ effect: 'Allow', actions: ['s3:GetObject'], resources: ['*'] })],
    ['CKV_AWS_288', 'data.aws_iam_policy_document.admin_policy_document', 'secrets readable everywhere', (j) => void (doc(j, 'admin_policy_document').statement as Block[]).push({ effect: 'Allow', actions: ['secretsmanager:Get*'], resources: ['*'] })],
    ['CKV_AWS_111', 'data.aws_iam_policy_document.coordinator_policy_document', 'unconstrained writes', (j) => void (doc(j, 'coordinator_policy_document').statement as Block[]).push({ effect: 'Allow', actions: ['s3:PutObject'], resources: ['*'] })],
    ['CKV_AWS_286', 'data.aws_iam_policy_document.coordinator_policy_document', 'iam:PassRole on *', (j) => void (doc(j, 'coordinator_policy_document').statement as Block[]).push({ effect: 'Allow', actions: ['iam:PassRole'], resources: ['*'] })],
    ['CKV_AWS_289', 'data.aws_iam_policy_document.coordinator_policy_document', 'iam:* on *', (j) => void (doc(j, 'coordinator_policy_document').statement as Block[]).push({ effect: 'Allow', actions: ['iam:*'], resources: ['*'] })],
    ['CKV_AWS_33', 'aws_kms_key.main', 'key usable by anyone', (j) => void (doc(j, 'kms_key_policy').statement as Block[]).push({ effect: 'Allow', actions: ['kms:Decrypt'], resources: ['*'], principals: [{ type: 'AWS', identifiers: ['*'] }] })],
    ['CKV_AWS_7', 'aws_kms_key.main', 'no key rotation', (j) => void (res(j, 'aws_kms_key', 'main').enable_key_rotation = false)],
    ['CKV_AWS_149', 'aws_secretsmanager_secret.redis_auth_token_secret', 'secret under the AWS-managed key', (j) => void delete res(j, 'aws_secretsmanager_secret', 'redis_auth_token_secret').kms_key_id],
    ['CKV2_AWS_12', 'aws_default_security_group.default', 'default security group allows traffic', (j) => void (res(j, 'aws_default_security_group', 'default').ingress = [{ protocol: '-1', self: true, from_port: 0, to_port: 0 }])],
    ['CKV2_AWS_12', 'aws_vpc.this', 'default security group left unmanaged', (j) => void delete j.resource!.aws_default_security_group],
    ['CKV2_AWS_11', 'aws_vpc.this', 'flow logs off by default', (j) => void (j.variable!.enable_vpc_flow_logs.default = false)],
    ['CKV_AWS_130', 'aws_subnet.private', 'public IPs on launch', (j) => void (res(j, 'aws_subnet', 'private').map_public_ip_on_launch = true)],
    ['CKV_AWS_23', 'aws_vpc_security_group_egress_rule.lambda_to_redis', 'rule without description', (j) => void delete res(j, 'aws_vpc_security_group_egress_rule', 'lambda_to_redis').description],
    ['CKV_AWS_24', 'aws_vpc_security_group_ingress_rule.redis_from_lambda', 'SSH from anywhere', (j) => {
      Object.assign(res(j, 'aws_vpc_security_group_ingress_rule', 'redis_from_lambda'), { cidr_ipv4: '0.0.0.0/0', from_port: 22, to_port: 22 });
    }],
    ['CKV_AWS_382', 'aws_vpc_security_group_egress_rule.lambda_to_s3', 'all traffic to anywhere', (j) => {
      Object.assign(res(j, 'aws_vpc_security_group_egress_rule', 'lambda_to_s3'), { cidr_ipv4: '0.0.0.0/0', ip_protocol: '-1', prefix_list_id: undefined });
    }],
    ['CKV_AWS_79', 'aws_instance.monostore_instance', 'IMDSv1 allowed', (j) => void ((res(j, 'aws_instance', 'monostore_instance').metadata_options as Block).http_tokens = 'optional')],
    ['CKV_AWS_8', 'aws_instance.monostore_instance', 'unencrypted root volume', (j) => void ((res(j, 'aws_instance', 'monostore_instance').root_block_device as Block).encrypted = false)],
    ['CKV_AWS_88', 'aws_instance.monostore_instance', 'public IP', (j) => void (res(j, 'aws_instance', 'monostore_instance').associate_public_ip_address = true)],
    ['CKV_AWS_46', 'aws_instance.monostore_instance', 'secret in user data', (j) => {
      const i = res(j, 'aws_instance', 'monostore_instance');
      i.user_data = `${String(i.user_data)}\nREDIS_AUTH=\${aws_secretsmanager_secret_version.redis_auth_token_version.secret_string}\n`;
    }],
  ];

  for (const [check, address, what, mutate] of cases) {
    test(`${check} fires on ${address}: ${what}`, () => {
      const json = synthesizedCopy();
      mutate(json);
      const { unjustified } = scan(json);
      assert.ok(
        unjustified.some((f) => f.check === check && f.address === address),
        `expected ${check} on ${address}; unjustified findings: ${JSON.stringify(unjustified)}`,
      );
    });
  }

  test('a justification only covers its own resource and check', () => {
    const json = synthesizedCopy();
    // The results bucket is justified for CKV_AWS_21; the lake is not, so dropping its versioning fails.
    delete json.resource!.aws_s3_bucket_versioning!.lake_versioning;
    const { unjustified } = scan(json);
    assert.deepEqual(unjustified.map((f) => `${f.check} ${f.address}`), ['CKV_AWS_21 aws_s3_bucket.lake']);
  });

  test('a justification whose finding went away is reported as unused', () => {
    const json = synthesizedCopy();
    (json.locals!.scanner_justifications as Record<string, Record<string, string>>)['aws_kms_key.main'] = { CKV_AWS_7: 'stale reason that no longer applies' };
    assert.deepEqual(scan(json).unused, [{ address: 'aws_kms_key.main', check: 'CKV_AWS_7' }]);
  });
});
