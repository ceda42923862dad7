// The one PuffinDB stack: inputs, then one construct per concern wired together, then the
// outputs. Terraform names are the construct ids (aws_s3_bucket.lake, aws_lambda_function.worker)
// rather than CDKTF's hashed ids, so the synthesized module reads like a hand-written one
// and `terraform state` addresses stay stable across refactors of the construct tree.

import { AwsProvider } from '@cdktf/provider-aws/lib/provider/index.js';
import { Fn, Lazy, LocalBackend, TerraformDataSource, TerraformElement, TerraformLocal, TerraformOutput, TerraformResource, TerraformStack, Token } from 'cdktf';
import { Node, type Construct } from 'constructs';
import { PuffinError } from '../runtime/errors.ts';
import { Account } from './account.ts';
import { Api } from './api.ts';
import { ARTIFACTS_DIR } from './artifacts.ts';
import { Cdn, cdnExpressions } from './cdn.ts';
import { Encryption } from './encryption.ts';
import { tfString } from './expressions.ts';
import { PipelineSchedule } from './pipeline-schedule.ts';
import { Functions, functionArn, functionName } from './functions.ts';
import { Inputs } from './inputs.ts';
import { justificationsOf } from './justify.ts';
import { Monostore } from './monostore.ts';
import { Network } from './network.ts';
import { OUTPUTS, type OutputName } from './outputs.ts';
import { State } from './state.ts';
import { Storage } from './storage.ts';

export const STACK_NAME = 'puffindb';

export class PuffinStack extends TerraformStack {
  private readonly logicalIds = new Map<string, string>();

  constructor(scope: Construct, id: string = STACK_NAME) {
    super(scope, id);
    const inputs = new Inputs(this, 'inputs');
    new AwsProvider(this, 'aws', { region: inputs.string('aws_region'), defaultTags: [{ tags: inputs.map('tags') }] });
    // State next to the synthesized module; a buyer switches to a remote backend with a
    // backend override file (e.g. backend_override.tf.json), which Terraform merges in.
    new LocalBackend(this, { path: 'terraform.tfstate' });

    const account = new Account(this, 'account');
    const { keyArn } = new Encryption(this, 'encryption', { inputs, account });
    const network = new Network(this, 'network', { inputs, account, keyArn });
    const { buckets } = new Storage(this, 'storage', { inputs, keyArn, cdnDistributionArn: tfString(this, cdnExpressions.distributionArn) });
    const state = new State(this, 'state', { inputs, network, keyArn });

    // Terraform runs in cdktf.out/stacks/<stack>/, three levels below the checkout.
    const artifactsRoot = new TerraformLocal(
      this,
      'artifacts_root',
      `\${coalesce(${inputs.ref('lambda_artifacts_dir')}, format("%s/../../../${ARTIFACTS_DIR}", path.module))}`,
    ).asString;
    const grants = {
      buckets,
      authSecretArn: state.authSecretArn,
      adminKeySecretArn: state.adminKeySecretArn,
      // Without the CDN the grant names a secret the admin API reads anyway: no new access.
      cdnPrivateKeySecretArn: Token.asString(Fn.conditional(inputs.bool('enable_cdn'), inputs.string('cdn_private_key_secret_arn'), state.adminKeySecretArn)),
    };
    const environment = {
      lakeBucket: buckets.lake.name,
      resultsBucket: buckets.results.name,
      shuffleBucket: buckets.shuffle.name,
      redisUrl: state.redisUrl,
      redisAuthSecretArn: state.authSecretArn,
      adminKeySecretArn: state.adminKeySecretArn,
      cdnUrl: Token.asString(Fn.conditional(inputs.bool('enable_cdn'), `https://${inputs.string('cdn_domain_name')}`, '')),
      cdnKeyPairId: tfString(this, cdnExpressions.keyPairId),
      cdnPrivateKeySecretArn: Token.asString(Fn.conditional(inputs.bool('enable_cdn'), inputs.string('cdn_private_key_secret_arn'), '')),
    };
    const functions = new Functions(this, 'functions', { inputs, account, network, keyArn, artifactsRoot, grants, environment });
    const api = new Api(this, 'api', {
      inputs,
      account,
      keyArn,
      adminFunctionName: functions.names.admin,
      adminFunctionArn: functions.arns.admin,
    });
    new PipelineSchedule(this, 'pipelines', { inputs, coordinatorFunctionName: functions.names.coordinator, coordinatorFunctionArn: functions.arns.coordinator });
    new Cdn(this, 'cdn', { inputs, resultsBucketRegionalDomainName: buckets.results.regionalDomainName });
    const monostore = new Monostore(this, 'monostore', {
      inputs,
      account,
      network,
      keyArn,
      artifactsRoot,
      grants: { ...grants, account, keyArn, functionArn: (fn) => functionArn(inputs, account, fn) },
      environment: { ...environment, functionName: (fn) => functionName(inputs, fn) },
    });

    const values: Record<OutputName, unknown> = {
      api_url: api.url,
      warehouse_url: `s3://${buckets.lake.name}/`,
      lake_bucket: buckets.lake.name,
      results_bucket: buckets.results.name,
      shuffle_bucket: buckets.shuffle.name,
      redis_primary_endpoint: state.redisPrimaryEndpoint,
      redis_url: state.redisUrl,
      redis_auth_secret_arn: state.authSecretArn,
      admin_key_secret_arn: state.adminKeySecretArn,
      coordinator_function_name: functions.names.coordinator,
      worker_function_name: functions.names.worker,
      admin_function_name: functions.names.admin,
      vpc_id: network.vpcId,
      private_subnet_ids: network.privateSubnetIds,
      lambda_security_group_id: network.lambdaSecurityGroupId,
      kms_key_arn: keyArn,
      monostore_instance_id: monostore.instanceId,
      monostore_private_ip: monostore.privateIp,
    };
    for (const [name, spec] of Object.entries(OUTPUTS) as [OutputName, (typeof OUTPUTS)[OutputName]][]) {
      new TerraformOutput(this, name, { value: values[name], description: spec.description });
    }

    // Read by test/stacks/rules.test.ts: a scanner finding passes only with a reason here.
    new TerraformLocal(this, 'scanner_justifications', Lazy.anyValue({ produce: () => justificationsOf(this) }));
  }

  /** Terraform name = construct id, unique per resource type (checked, never silently merged). */
  protected override allocateLogicalId(element: TerraformElement | Node): string {
    const node = element instanceof Node ? element : element.node;
    const id = node.id;
    if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(id)) {
      throw new PuffinError('internal', `construct id '${id}' at ${node.path} is not a valid Terraform name`);
    }
    const kind =
      element instanceof TerraformDataSource
        ? `data.${element.terraformResourceType}`
        : element instanceof TerraformResource
          ? element.terraformResourceType
          : element.constructor.name;
    const key = `${kind}.${id}`;
    const owner = this.logicalIds.get(key);
    if (owner !== undefined && owner !== node.path) {
      throw new PuffinError('internal', `two ${kind} named '${id}': ${owner} and ${node.path}`);
    }
    this.logicalIds.set(key, node.path);
    return id;
  }
}
