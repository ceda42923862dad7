import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { S3Bucket } from '@cdktf/provider-aws/lib/s3-bucket/index.js';
import { S3BucketPublicAccessBlock } from '@cdktf/provider-aws/lib/s3-bucket-public-access-block/index.js';
import { S3BucketServerSideEncryptionConfigurationA } from '@cdktf/provider-aws/lib/s3-bucket-server-side-encryption-configuration/index.js';
import { S3BucketVersioningA } from '@cdktf/provider-aws/lib/s3-bucket-versioning/index.js';
import { Testing } from 'cdktf';
import { Construct } from 'constructs';
import { PuffinError } from '../../runtime/errors.ts';
import { FUNCTION_ENTRIES } from '../../stacks/artifacts.ts';
import { INPUTS, Inputs } from '../../stacks/inputs.ts';
import { OUTPUTS } from '../../stacks/outputs.ts';
import { PuffinStack, STACK_NAME } from '../../stacks/puffindb-stack.ts';
import type { Block } from '../../stacks/rules.ts';
import { Storage } from '../../stacks/storage.ts';
import { dataSource, resource, synthesizedStack } from './synthesized.ts';

const run = promisify(execFile);
const REPO = join(import.meta.dirname, '..', '..');

const statementsOf = (doc: Block) => doc.statement as { sid?: string; actions: string[]; resources: string[]; effect?: string }[];

describe('Storage construct (Testing.synthScope)', () => {
  const json = Testing.synthScope((scope) => {
    const inputs = new Inputs(scope, 'inputs');
    new Storage(scope, 'storage', { inputs, keyArn: 'arn:aws:kms:us-east-1:111122223333:key/test' });
  });

  test('every bucket blocks public access, encrypts with the key, and only the lake is versioned', () => {
    assert.ok(Testing.toHaveResource(json, S3Bucket.tfResourceType));
    assert.ok(
      Testing.toHaveResourceWithProperties(json, S3BucketPublicAccessBlock.tfResourceType, {
        block_public_acls: true,
        block_public_policy: true,
        ignore_public_acls: true,
        restrict_public_buckets: true,
      }),
    );
    assert.ok(
      Testing.toHaveResourceWithProperties(json, S3BucketServerSideEncryptionConfigurationA.tfResourceType, {
        rule: [{ apply_server_side_encryption_by_default: { sse_algorithm: 'aws:kms', kms_master_key_id: 'arn:aws:kms:us-east-1:111122223333:key/test' }, bucket_key_enabled: true }],
      }),
    );
    const parsed = JSON.parse(json) as { resource: Record<string, Record<string, Block>> };
    assert.equal(Object.keys(parsed.resource.aws_s3_bucket).length, 3);
    assert.equal(Object.keys(parsed.resource.aws_s3_bucket_public_access_block).length, 3);
    assert.equal(Object.keys(parsed.resource[S3BucketVersioningA.tfResourceType]).length, 1, 'only the lake is versioned');
  });
});

describe('PuffinDB stack (Testing.synth)', () => {
  const json = synthesizedStack();
  const text = JSON.stringify(json);

  test('every buyer input is a typed Terraform variable with a default and a description', () => {
    const variables = json.variable as Record<string, { type: string; default: unknown; description: string; nullable?: boolean }>;
    assert.deepEqual(Object.keys(variables).sort(), Object.keys(INPUTS).sort());
    for (const [name, v] of Object.entries(variables)) {
      assert.match(name, /^[a-z][a-z0-9_]*$/, `${name} is snake_case`);
      assert.ok(v.type && v.description && v.default !== undefined, `${name} has type, default and description`);
    }
    const validation = (variables.lambda_architecture as unknown as { validation: { condition: string }[] }).validation;
    assert.match(validation[0].condition, /contains\(\["x86_64","arm64"\], var\.lambda_architecture\)/);
  });

  test('every output has a value and a description', () => {
    const outputs = (json as { output: Record<string, { value: unknown; description: string }> }).output;
    assert.deepEqual(Object.keys(outputs).sort(), Object.keys(OUTPUTS).sort());
    for (const [name, o] of Object.entries(outputs)) assert.ok(o.value !== undefined && o.description, name);
    assert.equal(outputs.api_url.value, '${aws_apigatewayv2_api.admin_api.api_endpoint}');
    assert.match(String(outputs.redis_url.value), /rediss:\/\//);
  });

  test('no availability zone, account id or region is hard-coded', () => {
    assert.doesNotMatch(text, /\b[a-z]{2}-(north|south|east|west|central|northeast|southeast)-\d[a-z]\b/);
    assert.doesNotMatch(text, /\b\d{12}\b/);
    const subnet = resource(json, 'aws_subnet', 'private');
    assert.equal(subnet.availability_zone, '${data.aws_availability_zones.available.names[count.index]}');
    assert.equal(subnet.count, '${var.vpc_id == "" ? var.az_count : 0}');
    assert.equal(subnet.map_public_ip_on_launch, false);
  });

  test('the VPC is created only without vpc_id, and everything uses the chosen subnets', () => {
    assert.equal(resource(json, 'aws_vpc', 'this').count, '${var.vpc_id == "" ? 1 : 0}');
    const locals = json.locals as Record<string, string>;
    assert.equal(locals.private_subnet_ids, '${var.vpc_id == "" ? aws_subnet.private[*].id : var.private_subnet_ids}');
    assert.equal(locals.vpc_id, '${coalesce(var.vpc_id, one(aws_vpc.this[*].id))}');
    for (const { name } of FUNCTION_ENTRIES) {
      assert.equal((resource(json, 'aws_lambda_function', name).vpc_config as Block).subnet_ids, '${local.private_subnet_ids}');
    }
    assert.equal(resource(json, 'aws_elasticache_subnet_group', 'redis_subnets').subnet_ids, '${local.private_subnet_ids}');
    assert.deepEqual(Object.keys(json.resource?.aws_internet_gateway ?? {}), [], 'no internet gateway');
    assert.deepEqual(Object.keys(json.resource?.aws_nat_gateway ?? {}), [], 'no NAT gateway');
  });

  test('VPC endpoints: S3 gateway, Lambda and Secrets Manager interfaces, nothing else', () => {
    const endpoints = json.resource?.aws_vpc_endpoint ?? {};
    assert.deepEqual(Object.keys(endpoints).sort(), ['lambda_interface', 's3_gateway', 'secretsmanager_interface']);
    assert.equal(endpoints.s3_gateway.vpc_endpoint_type, 'Gateway');
    assert.equal(endpoints.s3_gateway.route_table_ids, '${local.private_route_table_ids}');
    for (const name of ['lambda_interface', 'secretsmanager_interface']) {
      assert.equal(endpoints[name].vpc_endpoint_type, 'Interface');
      assert.equal(endpoints[name].private_dns_enabled, true);
    }
    assert.equal(dataSource(json, 'aws_vpc_endpoint_service', 'lambda_service').service, 'lambda');
  });

  test('the Lambda security group has no ingress and reaches only Redis, the endpoints and S3', () => {
    const egress = Object.values(json.resource?.aws_vpc_security_group_egress_rule ?? {}).filter((r) => r.security_group_id === '${aws_security_group.lambda.id}');
    const targets = egress.map((r) => `${r.from_port}:${r.referenced_security_group_id ?? r.prefix_list_id ?? r.cidr_ipv4}`).sort();
    assert.deepEqual(targets, [
      '443:${aws_security_group.endpoints.id}',
      '443:${data.aws_prefix_list.s3_prefix_list.id}',
      '443:${each.value}',
      '6379:${aws_security_group.redis.id}',
    ]);
    const ingress = Object.values(json.resource?.aws_vpc_security_group_ingress_rule ?? {});
    assert.ok(!ingress.some((r) => r.security_group_id === '${aws_security_group.lambda.id}'), 'nothing may connect to the Lambdas');
    const redisIn = ingress.filter((r) => r.security_group_id === '${aws_security_group.redis.id}');
    assert.ok(redisIn.every((r) => r.from_port === 6379 && r.to_port === 6379 && r.referenced_security_group_id));
    const defaultSg = resource(json, 'aws_default_security_group', 'default');
    assert.equal(defaultSg.ingress, undefined);
    assert.equal(defaultSg.egress, undefined);
  });

  test('Redis: TLS, at-rest encryption with the key, AUTH token from the Secrets Manager secret', () => {
    const redis = resource(json, 'aws_elasticache_replication_group', 'redis');
    assert.equal(redis.transit_encryption_enabled, true);
    assert.equal(redis.at_rest_encryption_enabled, 'true');
    assert.equal(redis.kms_key_id, '${aws_kms_key.main.arn}');
    assert.equal(redis.auth_token, '${aws_secretsmanager_secret_version.redis_auth_token_version.secret_string}');
    assert.equal(redis.node_type, '${var.redis_node_type}');
    assert.equal(redis.multi_az_enabled, '${var.redis_multi_az}');
    assert.equal(redis.num_cache_clusters, '${var.redis_multi_az ? 2 : 1}');
    const version = resource(json, 'aws_secretsmanager_secret_version', 'redis_auth_token_version');
    assert.equal(version.secret_string, '${data.aws_secretsmanager_random_password.redis_auth_token.random_password}');
    assert.deepEqual((version.lifecycle as Block).ignore_changes, ['secret_string'], 'generated once, not on every plan');
    assert.equal(resource(json, 'aws_secretsmanager_secret', 'redis_auth_token_secret').kms_key_id, '${aws_kms_key.main.arn}');
  });

  test('Lambdas: sizing from inputs, the zip and its hash, in the VPC, JSON logs to their own group', () => {
    for (const { name } of FUNCTION_ENTRIES) {
      const fn = resource(json, 'aws_lambda_function', name);
      assert.equal(fn.handler, `${name}.handler`);
      assert.equal(fn.runtime, 'nodejs20.x');
      assert.deepEqual(fn.architectures, ['${var.lambda_architecture}']);
      assert.equal(fn.memory_size, `\${var.${name}_memory_mb}`);
      assert.deepEqual(fn.ephemeral_storage, { size: `\${var.${name}_ephemeral_storage_mb}` });
      assert.equal(fn.timeout, `\${var.${name}_timeout_seconds}`);
      assert.equal(fn.reserved_concurrent_executions, `\${var.${name}_reserved_concurrency}`);
      assert.equal(fn.filename, `\${local.lambda_artifacts}/${name}.zip`);
      assert.equal(fn.source_code_hash, `\${filebase64sha256("\${local.lambda_artifacts}/${name}.zip")}`);
      assert.equal(fn.role, `\${aws_iam_role.${name}_role.arn}`);
      assert.deepEqual((fn.vpc_config as Block).security_group_ids, ['${aws_security_group.lambda.id}']);
      assert.equal((fn.logging_config as Block).log_group, `\${aws_cloudwatch_log_group.${name}_logs.name}`);
      const logs = resource(json, 'aws_cloudwatch_log_group', `${name}_logs`);
      assert.equal(logs.retention_in_days, '${var.log_retention_days}');
      assert.equal(logs.kms_key_id, '${aws_kms_key.main.arn}');
    }
    assert.equal((json.locals as Record<string, string>).lambda_artifacts, '${local.artifacts_root}/${var.lambda_architecture}');
  });

  test('one role per function, each with only what its function does', () => {
    const actions = (fn: string) => statementsOf(dataSource(json, 'aws_iam_policy_document', `${fn}_policy_document`));
    const invokes = (fn: string) => actions(fn).filter((s) => s.actions.includes('lambda:InvokeFunction')).flatMap((s) => s.resources);
    // A worker relays wide fan-outs' first attempts (exec/async-fanout.ts): it may invoke the worker function only.
    assert.ok(invokes('worker').every((r) => r.includes('-worker')) && invokes('worker').length === 2);
    assert.ok(invokes('coordinator').every((r) => r.includes('-worker')) && invokes('coordinator').length === 2);
    assert.ok(invokes('admin').every((r) => r.includes('-coordinator')) && invokes('admin').length === 2);
    const lakeWrites = (fn: string) =>
      actions(fn).filter((s) => s.actions.includes('s3:PutObject') && s.resources.some((r) => r.includes('aws_s3_bucket.lake'))).flatMap((s) => s.resources);
    assert.deepEqual(lakeWrites('worker'), ['${aws_s3_bucket.lake.arn}/*/data/*']);
    // Metadata (the Iceberg REST catalog's commits) and puffindb.materialized_views' status files only.
    assert.deepEqual(lakeWrites('admin'), ['${aws_s3_bucket.lake.arn}/*/metadata/*', '${aws_s3_bucket.lake.arn}/_puffindb/materialized-views/*']);
    assert.ok(!actions('worker').some((s) => s.resources.some((r) => r.includes('aws_s3_bucket.results'))), 'workers never touch results');
    for (const { name } of FUNCTION_ENTRIES) {
      for (const s of actions(name)) {
        assert.ok(!s.actions.includes('*') && !s.actions.some((a) => a.endsWith(':*')), `${name}/${s.sid}: no wildcard actions`);
        if (s.resources.includes('*')) assert.ok(s.actions.every((a) => a.startsWith('ec2:Describe')), `${name}/${s.sid}: only Describe on *`);
      }
    }
  });

  test("external catalogs: the buyer's catalog_policy_arns are attached to every function's role and the Monostore's, none by default", () => {
    for (const { name } of FUNCTION_ENTRIES) {
      const attachment = resource(json, 'aws_iam_role_policy_attachment', `${name}_catalog_policies`);
      assert.equal(attachment.count, '${length(var.catalog_policy_arns)}');
      assert.equal(attachment.policy_arn, '${var.catalog_policy_arns[count.index]}');
      assert.equal(attachment.role, `\${aws_iam_role.${name}_role.name}`);
    }
    const mono = resource(json, 'aws_iam_role_policy_attachment', 'monostore_catalog_policies');
    assert.match(String(mono.count), /var\.monostore_enabled \? length\(var\.catalog_policy_arns\) : 0/);
    assert.deepEqual((json.variable as Record<string, Block>).catalog_policy_arns.default, []);
  });

  test('API: HTTP API proxying to the admin function with access logs and throttling', () => {
    const stage = resource(json, 'aws_apigatewayv2_stage', 'admin_stage');
    assert.equal((stage.access_log_settings as Block).destination_arn, '${aws_cloudwatch_log_group.api_access_logs.arn}');
    assert.deepEqual(stage.default_route_settings, {
      detailed_metrics_enabled: true,
      throttling_burst_limit: '${var.api_throttling_burst_limit}',
      throttling_rate_limit: '${var.api_throttling_rate_limit}',
    });
    assert.equal(resource(json, 'aws_apigatewayv2_integration', 'admin_integration').integration_uri, '${aws_lambda_function.admin.arn}');
    const permission = resource(json, 'aws_lambda_permission', 'admin_invoke_from_api');
    assert.equal(permission.source_arn, '${aws_apigatewayv2_api.admin_api.execution_arn}/*');
    assert.equal(resource(json, 'aws_apigatewayv2_api', 'admin_api').protocol_type, 'HTTP');
  });

  test('Monostore: off by default, SSM-resolved Amazon Linux 2023, IMDSv2, encrypted root, private subnet', () => {
    const instance = resource(json, 'aws_instance', 'monostore_instance');
    assert.equal(instance.count, '${var.monostore_enabled ? 1 : 0}');
    assert.equal((json.variable as Record<string, { default: unknown }>).monostore_enabled.default, false);
    assert.equal(
      dataSource(json, 'aws_ssm_parameter', 'monostore_ami').name,
      '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-${var.monostore_architecture}',
    );
    assert.equal(instance.ami, '${data.aws_ssm_parameter.monostore_ami[0].insecure_value}');
    assert.equal((instance.metadata_options as Block).http_tokens, 'required');
    assert.equal((instance.root_block_device as Block).encrypted, true);
    assert.equal(instance.associate_public_ip_address, false);
    assert.equal(instance.subnet_id, '${element(local.private_subnet_ids, 0)}');
    for (const [type, items] of Object.entries(json.resource ?? {})) {
      for (const [name, body] of Object.entries(items)) {
        if (name.startsWith('monostore')) assert.ok(body.count !== undefined || body.for_each !== undefined, `${type}.${name} is optional`);
      }
    }
  });

  test('Terraform names are the construct ids, and a clash is refused instead of merged', () => {
    assert.ok(json.resource?.aws_s3_bucket?.lake && json.resource?.aws_lambda_function?.worker);
    const stack = new PuffinStack(Testing.app(), 'clash');
    new S3Bucket(new Construct(stack, 'elsewhere'), 'lake', {});
    assert.throws(() => Testing.synth(stack), (e: unknown) => e instanceof PuffinError && /two aws_s3_bucket named 'lake'/.test(e.message));
  });
});

describe('npm run synth (stacks/main.ts)', () => {
  test('writes cdktf.out/stacks/puffindb/cdk.tf.json offline in seconds, and fullSynth agrees', async () => {
    const out = await mkdtemp(join(tmpdir(), 'puffindb-synth-'));
    try {
      const started = performance.now();
      await run(process.execPath, ['--import', 'tsx', join(REPO, 'stacks', 'main.ts')], {
        cwd: REPO,
        timeout: 60_000,
        // No credentials and no route out: synthesis must need neither.
        env: { ...process.env, CDKTF_OUTDIR: out, AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', HTTPS_PROXY: 'http://127.0.0.1:9', HTTP_PROXY: 'http://127.0.0.1:9' },
      });
      const seconds = (performance.now() - started) / 1000;
      const file = join(out, 'stacks', STACK_NAME, 'cdk.tf.json');
      assert.ok(existsSync(file));
      assert.ok(seconds < 20, `synthesis took ${seconds.toFixed(1)} s`);
      console.log(`npm run synth: ${seconds.toFixed(1)} s`);
      const written = JSON.parse(readFileSync(file, 'utf8')) as { resource: unknown };
      const full = Testing.fullSynth(new PuffinStack(Testing.app(), STACK_NAME));
      try {
        const viaFullSynth = JSON.parse(readFileSync(join(full, 'stacks', STACK_NAME, 'cdk.tf.json'), 'utf8')) as { resource: unknown };
        assert.deepEqual(written.resource, viaFullSynth.resource);
      } finally {
        await rm(full, { recursive: true, force: true });
      }
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});
