// The optional Monostore: one EC2 instance running the same runtime as a long-lived
// coordinator (`puffindb serve`), for workloads that want a warm DuckDB and no Lambda cold
// starts on the coordinator. Off by default (monostore_enabled); every resource here has
// count 0 until it is turned on. The image is the current Amazon Linux 2023 for the chosen
// architecture, resolved from AWS's public SSM parameter at plan time. The instance has no
// public address, requires IMDSv2, encrypts its root volume with the deployment key, and
// installs Node.js and the server bundle through the S3 gateway endpoint (Amazon Linux
// repositories are served from S3), so it needs no internet path either.

import { DataAwsIamPolicyDocument } from '@cdktf/provider-aws/lib/data-aws-iam-policy-document/index.js';
import { DataAwsSsmParameter } from '@cdktf/provider-aws/lib/data-aws-ssm-parameter/index.js';
import { IamInstanceProfile } from '@cdktf/provider-aws/lib/iam-instance-profile/index.js';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role/index.js';
import { IamRolePolicy } from '@cdktf/provider-aws/lib/iam-role-policy/index.js';
import { IamRolePolicyAttachment } from '@cdktf/provider-aws/lib/iam-role-policy-attachment/index.js';
import { Instance } from '@cdktf/provider-aws/lib/instance/index.js';
import { S3Object } from '@cdktf/provider-aws/lib/s3-object/index.js';
import { SecurityGroup } from '@cdktf/provider-aws/lib/security-group/index.js';
import { VpcSecurityGroupIngressRule } from '@cdktf/provider-aws/lib/vpc-security-group-ingress-rule/index.js';
import { Fn, TerraformLocal, type TerraformDataSource, type TerraformResource } from 'cdktf';
import { Construct } from 'constructs';
import { SETTINGS } from '../runtime/settings.ts';
import type { Account } from './account.ts';
import { SERVER_ENTRY } from './artifacts.ts';
import { MONOSTORE_HOME, monostoreEnvironment, type EnvironmentContext } from './environment.ts';
import { addressOf, tfNumber, tfString } from './expressions.ts';
import type { Inputs } from './inputs.ts';
import type { Network } from './network.ts';
import { grantStatements, LAKE_KEYS, type GrantContext } from './permissions.ts';

export const MONOSTORE_PORT = Number(SETTINGS.port.default);
export const SERVER_ARTIFACT_KEY = `${LAKE_KEYS.internal.replace('*', '')}artifacts/${SERVER_ENTRY.name}.zip`;

export interface MonostoreProps {
  inputs: Inputs;
  account: Account;
  network: Network;
  keyArn: string;
  /** Directory holding <arch>/<bundle>.zip (the stack's artifacts root). */
  artifactsRoot: string;
  grants: GrantContext;
  environment: Omit<EnvironmentContext, 'inputs'>;
}

export interface UserDataOptions {
  region: string;
  lakeBucket: string;
  artifactKey: string;
  /** Changes whenever the bundle does, so a new bundle replaces the instance. */
  artifactHash: string;
  environment: Record<string, string>;
}

/**
 * Boot script of the instance. Terraform renders it (values may be `${...}` expressions),
 * so the shell parts avoid the `${` form; the environment file is a quoted heredoc.
 */
export function monostoreUserData(o: UserDataOptions): string {
  const envLines = Object.entries(o.environment).map(([k, v]) => `${k}=${v}`);
  return [
    '#!/bin/bash',
    '# PuffinDB Monostore: Node.js 20 from the Amazon Linux repositories, the server bundle',
    '# from the lake bucket, `puffindb serve` under systemd.',
    `# bundle: ${o.artifactHash}`,
    'set -euo pipefail',
    'dnf install -y nodejs20',
    'NODE_BIN=$(command -v node-20 || command -v node)',
    `id puffindb >/dev/null 2>&1 || useradd --system --home-dir ${MONOSTORE_HOME} --shell /sbin/nologin puffindb`,
    `install -d -o puffindb -g puffindb -m 0750 ${MONOSTORE_HOME}`,
    'rm -rf /opt/puffindb && install -d -m 0755 /opt/puffindb',
    `aws s3 cp --region ${o.region} s3://${o.lakeBucket}/${o.artifactKey} /tmp/puffindb-server.zip`,
    'python3 -m zipfile -e /tmp/puffindb-server.zip /opt/puffindb',
    'rm -f /tmp/puffindb-server.zip',
    "cat > /etc/puffindb.env <<'ENV'",
    ...envLines,
    'ENV',
    'chmod 0644 /etc/puffindb.env',
    'cat > /etc/systemd/system/puffindb.service <<UNIT',
    '[Unit]',
    'Description=PuffinDB Monostore (puffindb serve)',
    'After=network-online.target',
    'Wants=network-online.target',
    '[Service]',
    'User=puffindb',
    'EnvironmentFile=/etc/puffindb.env',
    `WorkingDirectory=${MONOSTORE_HOME}`,
    // `serve` binds 127.0.0.1 unless told otherwise; the security group decides who reaches it.
    `ExecStart=$NODE_BIN /opt/puffindb/${SERVER_ENTRY.name}.mjs serve --host 0.0.0.0 --port ${MONOSTORE_PORT}`,
    'Restart=always',
    'RestartSec=5',
    '[Install]',
    'WantedBy=multi-user.target',
    'UNIT',
    'systemctl daemon-reload',
    'systemctl enable --now puffindb.service',
    '',
  ].join('\n');
}

export class Monostore extends Construct {
  readonly instanceId: string;
  readonly privateIp: string;

  constructor(scope: Construct, id: string, props: MonostoreProps) {
    super(scope, id);
    const { inputs, account, network, keyArn } = props;
    const enabled = inputs.ref('monostore_enabled');
    const count = tfNumber(this, `${enabled} ? 1 : 0`);
    const prefix = inputs.string('name_prefix');
    const first = (element: TerraformResource | TerraformDataSource, attribute: string): string =>
      tfString(this, `${addressOf(element)}[0].${attribute}`);

    const ami = new DataAwsSsmParameter(this, 'monostore_ami', {
      count,
      name: `/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-\${${inputs.ref('monostore_architecture')}}`,
    });

    const trust = new DataAwsIamPolicyDocument(this, 'monostore_trust', {
      statement: [{ effect: 'Allow', actions: ['sts:AssumeRole'], principals: [{ type: 'Service', identifiers: ['ec2.amazonaws.com'] }] }],
    });
    const role = new IamRole(this, 'monostore_role', {
      count,
      name: `${prefix}-monostore`,
      description: 'Instance role of the PuffinDB Monostore',
      assumeRolePolicy: trust.json,
    });
    const permissions = new DataAwsIamPolicyDocument(this, 'monostore_policy_document', {
      count,
      statement: grantStatements('monostore', props.grants),
    });
    new IamRolePolicy(this, 'monostore_role_policy', {
      count,
      name: `${prefix}-monostore-permissions`,
      role: first(role, 'id'),
      policy: first(permissions, 'json'),
    });
    // The buyer's policies for external catalogs, as on the Lambda roles.
    new IamRolePolicyAttachment(this, 'monostore_catalog_policies', {
      count: tfNumber(this, `${enabled} ? length(${inputs.ref('catalog_policy_arns')}) : 0`),
      role: first(role, 'name'),
      policyArn: `\${${inputs.ref('catalog_policy_arns')}[count.index]}`,
    });
    const profile = new IamInstanceProfile(this, 'monostore_profile', {
      count,
      name: `${prefix}-monostore`,
      role: first(role, 'name'),
    });

    const sg = new SecurityGroup(this, 'monostore', {
      count,
      namePrefix: `${prefix}-monostore-`,
      description: `PuffinDB Monostore: inbound on ${MONOSTORE_PORT} from monostore_allowed_cidrs; outbound to Redis, the VPC endpoints and S3`,
      vpcId: network.vpcId,
      tags: { Name: `${prefix}-monostore` },
      lifecycle: { createBeforeDestroy: true },
    });
    const sgId = first(sg, 'id');
    network.allowClient('monostore', sgId, enabled);
    const ingress = new VpcSecurityGroupIngressRule(this, 'monostore_from_allowed_cidrs', {
      securityGroupId: sgId,
      description: `puffindb serve (HTTP ${MONOSTORE_PORT}) from monostore_allowed_cidrs`,
      ipProtocol: 'tcp',
      fromPort: MONOSTORE_PORT,
      toPort: MONOSTORE_PORT,
      cidrIpv4: '${each.value}',
    });
    ingress.addOverride('for_each', `\${${enabled} ? toset(${inputs.ref('monostore_allowed_cidrs')}) : toset([])}`);

    const artifacts = new TerraformLocal(this, 'monostore_artifacts', `${props.artifactsRoot}/\${${inputs.ref('monostore_architecture')}}`).asString;
    const bundlePath = `${artifacts}/${SERVER_ENTRY.name}.zip`;
    const artifact = new S3Object(this, 'monostore_server_bundle', {
      count,
      bucket: props.grants.buckets.lake.name,
      key: SERVER_ARTIFACT_KEY,
      source: bundlePath,
      sourceHash: Fn.filemd5(bundlePath),
    });

    const instance = new Instance(this, 'monostore_instance', {
      count,
      ami: first(ami, 'insecure_value'),
      instanceType: inputs.string('monostore_instance_type'),
      subnetId: Fn.element(network.privateSubnetIds, 0),
      vpcSecurityGroupIds: [sgId],
      iamInstanceProfile: first(profile, 'name'),
      associatePublicIpAddress: false,
      monitoring: true,
      ebsOptimized: true,
      metadataOptions: { httpEndpoint: 'enabled', httpTokens: 'required', httpPutResponseHopLimit: 1, instanceMetadataTags: 'disabled' },
      rootBlockDevice: {
        encrypted: true,
        kmsKeyId: keyArn,
        volumeType: 'gp3',
        volumeSize: inputs.number('monostore_root_volume_gb'),
        deleteOnTermination: true,
      },
      userData: monostoreUserData({
        region: account.region,
        lakeBucket: props.grants.buckets.lake.name,
        artifactKey: SERVER_ARTIFACT_KEY,
        artifactHash: first(artifact, 'source_hash'),
        environment: monostoreEnvironment({ ...props.environment, inputs }, account.region),
      }),
      userDataReplaceOnChange: true,
      tags: { Name: `${prefix}-monostore` },
    });
    this.instanceId = tfString(this, `one(${addressOf(instance)}[*].id)`);
    this.privateIp = tfString(this, `one(${addressOf(instance)}[*].private_ip)`);
  }
}
