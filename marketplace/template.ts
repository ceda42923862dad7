// The listing's CloudFormation template (Marketplace's "AMI with CloudFormation" delivery):
// one instance from the product's image applies the synthesized Terraform, reports to a
// wait condition, then runs the control plane and metering. Parameters come from the
// same input table as the Terraform variables (parameters.ts); the instance role from
// instance-policy.ts; the paths and units from image-layout.ts.
//
// Deletion: a custom resource (Teardown) depends on the instance, so CloudFormation deletes
// it first; its Lambda runs `puffindb-destroy` on the still-running instance through SSM
// Run Command, waits for `terraform destroy` to finish, empties the state bucket, and only
// then lets CloudFormation delete the instance and the bucket. A shutdown hook on the
// instance would not do: instance termination gives a hook no guarantee of the 10-20
// minutes ElastiCache takes to delete.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { BOOTSTRAP_VARS, DEPLOYMENT_TAG, IMAGE, SCRIPTS, UNITS } from './image-layout.ts';
import { instancePolicyStatements } from './instance-policy.ts';
import { TEMPLATE_PARAMETERS, TERRAFORM_PARAMETERS, type CfnParameter } from './parameters.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
export const TEMPLATE_DESCRIPTION = 'PuffinDB: distributed DuckDB over your lake, deployed into your account by the PuffinDB image (Terraform inside).';
export const CONTROL_PLANE_PORT = 8080;
/** Long enough for ElastiCache (10-20 minutes) and the rest of the module. */
export const BOOT_TIMEOUT_SECONDS = 3600;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export interface CfnTemplate {
  AWSTemplateFormatVersion: '2010-09-09';
  Description: string;
  Metadata: Record<string, Json>;
  Parameters: Record<string, CfnParameter>;
  Rules: Record<string, Json>;
  Conditions: Record<string, Json>;
  Resources: Record<string, { Type: string; Properties?: Record<string, Json>; Condition?: string; DependsOn?: string[]; DeletionPolicy?: string; UpdateReplacePolicy?: string; CreationPolicy?: Json }>;
  Outputs: Record<string, { Description: string; Value: Json }>;
}

const ref = (name: string): Json => ({ Ref: name });
const getAtt = (name: string, attr: string): Json => ({ 'Fn::GetAtt': [name, attr] });
const sub = (s: string): Json => ({ 'Fn::Sub': s });
const ifCreateVpc = (yes: Json, no: Json): Json => ({ 'Fn::If': ['CreateVpc', yes, no] });
const tags = (name: string): Json => [
  { Key: 'Name', Value: sub(`\${NamePrefix}-${name}`) },
  { Key: DEPLOYMENT_TAG, Value: ref('AWS::StackName') },
];
const hclList = (commaList: string): Json => ({ 'Fn::Join': ['', ['["', { 'Fn::Join': ['","', { 'Fn::Split': [',', ref(commaList)] }] }, '"]']] });

/** The TF_VAR_ lines UserData writes: every Terraform parameter plus what the template decides itself. */
function terraformVariables(): [string, string][] {
  const fromParameters = Object.entries(TERRAFORM_PARAMETERS).map(([param, spec]): [string, string] => [spec.input, `\${${param}}`]);
  return [
    ['aws_region', '${AWS::Region}'],
    ...fromParameters,
    ['vpc_id', '${ResolvedVpcId}'],
    ['private_subnet_ids', '${ResolvedPrivateSubnets}'],
    ['private_route_table_ids', '${ResolvedRouteTables}'],
    ['lambda_architecture', 'x86_64'],
    ['monostore_architecture', 'x86_64'],
    ['monostore_enabled', 'false'],
    ['lambda_artifacts_dir', IMAGE.lambdaArtifactsDir],
    ['api_allowed_cidrs', '["${AdminCidr}"]'],
    ['monostore_allowed_cidrs', '["${AdminCidr}"]'],
    ['force_destroy_buckets', '${ForceDestroyBuckets}'],
    ['tags', `{"${DEPLOYMENT_TAG}"="\${AWS::StackName}"}`],
    ['control_plane_security_group_id', '${InstanceSecurityGroup}'],
    // The template's own secret is the first admin key, so the admin function, the control
    // plane and the buyer's console all hold the same one.
    ['admin_key_secret_arn', '${AdminKeySecret}'],
  ];
}

/** Values UserData's Fn::Sub resolves besides parameters and resources. */
const RESOLVED_VALUES: Record<string, Json> = {
  ResolvedVpcId: ifCreateVpc(ref('Vpc'), ref('VpcId')),
  ResolvedPrivateSubnets: ifCreateVpc(sub('["${PrivateSubnetA}","${PrivateSubnetB}"]'), hclList('PrivateSubnetIds')),
  ResolvedRouteTables: ifCreateVpc(sub('["${PrivateRouteTable}"]'), { 'Fn::If': ['HasRouteTables', hclList('PrivateRouteTableIds'), '[]'] }),
  ForceDestroyBuckets: { 'Fn::If': ['KeepData', 'false', 'true'] },
};

export function userDataScript(): string {
  const bootstrap: Record<(typeof BOOTSTRAP_VARS)[number], string> = {
    PUFFINDB_STACK_NAME: '${AWS::StackName}',
    AWS_REGION: '${AWS::Region}',
    PUFFINDB_STATE_BUCKET: '${StateBucket}',
    PUFFINDB_WAIT_HANDLE_URL: '${BootWaitHandle}',
    PUFFINDB_ADMIN_KEY_SECRET_ARN: '${AdminKeySecret}',
  };
  // Sourced by bash: every value single-quoted (none of them can hold a quote).
  const lines = [...Object.entries(bootstrap), ...terraformVariables().map(([k, v]) => [`TF_VAR_${k}`, v])].map(([k, v]) => `${k}='${v}'`);
  return [
    '#!/bin/bash',
    '# Hands the stack parameters to the first-boot service baked into the image.',
    'set -euo pipefail',
    `install -d -m 0700 ${IMAGE.configDir}`,
    `cat > ${IMAGE.bootstrapEnv} <<'ENV'`,
    ...lines,
    'ENV',
    `chmod 0600 ${IMAGE.bootstrapEnv}`,
    `systemctl start --no-block ${UNITS.firstBoot}`,
    '',
  ].join('\n');
}

export function teardownSource(): string {
  return readFileSync(join(HERE, 'teardown.py'), 'utf8');
}

export function buildTemplate(): CfnTemplate {
  const parameters: Record<string, CfnParameter> = {};
  for (const [name, spec] of Object.entries(TEMPLATE_PARAMETERS)) parameters[name] = spec;
  for (const [name, spec] of Object.entries(TERRAFORM_PARAMETERS)) {
    const { input: _input, ...cfn } = spec;
    parameters[name] = cfn;
  }
  const cidrs = { 'Fn::Cidr': [ref('VpcCidr'), 4, 8] };
  const az = (i: number): Json => ({ 'Fn::Select': [i, { 'Fn::GetAZs': '' }] });
  const subnet = (i: number, name: string): Json => ({
    Type: 'AWS::EC2::Subnet',
    Condition: 'CreateVpc',
    Properties: { VpcId: ref('Vpc'), CidrBlock: { 'Fn::Select': [i, cidrs] }, AvailabilityZone: az(i === 2 ? 0 : i), MapPublicIpOnLaunch: false, Tags: tags(name) },
  });

  return {
    AWSTemplateFormatVersion: '2010-09-09',
    Description: TEMPLATE_DESCRIPTION,
    Metadata: {
      'AWS::CloudFormation::Interface': {
        ParameterGroups: [
          { Label: { default: 'Image and instance' }, Parameters: ['ImageId', 'InstanceType', 'MonostoreRootVolumeGb', 'AdminCidr'] },
          { Label: { default: 'Network' }, Parameters: ['VpcId', 'PrivateSubnetIds', 'PrivateRouteTableIds', 'InstanceSubnetId', 'VpcCidr'] },
          { Label: { default: 'PuffinDB' }, Parameters: ['NamePrefix', 'WorkerMemoryMb', 'WorkerTimeoutSeconds', 'FragmentConcurrency', 'MaxFragments', 'RedisNodeType', 'RedisMultiAz', 'LogRetentionDays', 'RetainDataOnDelete'] },
        ],
      },
    },
    Parameters: parameters,
    Rules: {
      ExistingVpcNeedsSubnets: {
        RuleCondition: { 'Fn::Not': [{ 'Fn::Equals': [ref('VpcId'), ''] }] },
        Assertions: [
          { Assert: { 'Fn::Not': [{ 'Fn::Equals': [ref('PrivateSubnetIds'), ''] }] }, AssertDescription: 'With VpcId, PrivateSubnetIds must list at least two private subnets.' },
          { Assert: { 'Fn::Not': [{ 'Fn::Equals': [ref('InstanceSubnetId'), ''] }] }, AssertDescription: 'With VpcId, InstanceSubnetId must name a subnet that reaches the AWS APIs.' },
        ],
      },
    },
    Conditions: {
      CreateVpc: { 'Fn::Equals': [ref('VpcId'), ''] },
      HasRouteTables: { 'Fn::Not': [{ 'Fn::Equals': [ref('PrivateRouteTableIds'), ''] }] },
      KeepData: { 'Fn::Equals': [ref('RetainDataOnDelete'), 'true'] },
    },
    Resources: {
      // -- new VPC: a public subnet for the instance (Terraform calls AWS APIs), two private ones for PuffinDB
      Vpc: { Type: 'AWS::EC2::VPC', Condition: 'CreateVpc', Properties: { CidrBlock: ref('VpcCidr'), EnableDnsSupport: true, EnableDnsHostnames: true, Tags: tags('vpc') } },
      InternetGateway: { Type: 'AWS::EC2::InternetGateway', Condition: 'CreateVpc', Properties: { Tags: tags('igw') } },
      GatewayAttachment: { Type: 'AWS::EC2::VPCGatewayAttachment', Condition: 'CreateVpc', Properties: { VpcId: ref('Vpc'), InternetGatewayId: ref('InternetGateway') } },
      PrivateSubnetA: subnet(0, 'private-a') as never,
      PrivateSubnetB: subnet(1, 'private-b') as never,
      PublicSubnet: subnet(2, 'public') as never,
      PublicRouteTable: { Type: 'AWS::EC2::RouteTable', Condition: 'CreateVpc', Properties: { VpcId: ref('Vpc'), Tags: tags('public') } },
      PublicDefaultRoute: {
        Type: 'AWS::EC2::Route',
        Condition: 'CreateVpc',
        DependsOn: ['GatewayAttachment'],
        Properties: { RouteTableId: ref('PublicRouteTable'), DestinationCidrBlock: '0.0.0.0/0', GatewayId: ref('InternetGateway') },
      },
      PublicSubnetRoutes: { Type: 'AWS::EC2::SubnetRouteTableAssociation', Condition: 'CreateVpc', Properties: { SubnetId: ref('PublicSubnet'), RouteTableId: ref('PublicRouteTable') } },
      PrivateRouteTable: { Type: 'AWS::EC2::RouteTable', Condition: 'CreateVpc', Properties: { VpcId: ref('Vpc'), Tags: tags('private') } },
      PrivateSubnetARoutes: { Type: 'AWS::EC2::SubnetRouteTableAssociation', Condition: 'CreateVpc', Properties: { SubnetId: ref('PrivateSubnetA'), RouteTableId: ref('PrivateRouteTable') } },
      PrivateSubnetBRoutes: { Type: 'AWS::EC2::SubnetRouteTableAssociation', Condition: 'CreateVpc', Properties: { SubnetId: ref('PrivateSubnetB'), RouteTableId: ref('PrivateRouteTable') } },

      // -- Terraform's state
      StateBucket: {
        Type: 'AWS::S3::Bucket',
        // The teardown empties it after a successful destroy; with state left in it (a failed
        // destroy), deletion fails visibly instead of losing track of live resources.
        DeletionPolicy: 'Delete',
        UpdateReplacePolicy: 'Retain',
        Properties: {
          BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms' }, BucketKeyEnabled: true }] },
          PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
          OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
          VersioningConfiguration: { Status: 'Enabled' },
          LifecycleConfiguration: { Rules: [{ Id: 'expire-old-state-versions', Status: 'Enabled', NoncurrentVersionExpiration: { NoncurrentDays: 90 } }] },
          Tags: tags('terraform-state'),
        },
      },
      StateBucketPolicy: {
        Type: 'AWS::S3::BucketPolicy',
        Properties: {
          Bucket: ref('StateBucket'),
          PolicyDocument: {
            Version: '2012-10-17',
            Statement: [
              {
                Sid: 'DenyInsecureTransport',
                Effect: 'Deny',
                Principal: '*',
                Action: 's3:*',
                Resource: [getAtt('StateBucket', 'Arn'), sub('${StateBucket.Arn}/*')],
                Condition: { Bool: { 'aws:SecureTransport': 'false' } },
              },
            ],
          },
        },
      },

      // -- the first admin API key, generated here so only the buyer's account ever sees it
      AdminKeySecret: {
        Type: 'AWS::SecretsManager::Secret',
        Properties: {
          Description: sub('First admin API key of the PuffinDB deployment ${AWS::StackName} (bearer token of the admin API).'),
          GenerateSecretString: { PasswordLength: 48, ExcludePunctuation: true },
          Tags: tags('admin-key'),
        },
      },

      // -- the instance
      InstanceSecurityGroup: {
        Type: 'AWS::EC2::SecurityGroup',
        Properties: {
          GroupDescription: 'PuffinDB control plane: admin API from AdminCidr; HTTPS to AWS APIs; Redis inside the VPC',
          VpcId: RESOLVED_VALUES.ResolvedVpcId as Json,
          SecurityGroupIngress: [{ IpProtocol: 'tcp', FromPort: CONTROL_PLANE_PORT, ToPort: CONTROL_PLANE_PORT, CidrIp: ref('AdminCidr'), Description: 'puffindb serve from AdminCidr' }],
          SecurityGroupEgress: [
            { IpProtocol: 'tcp', FromPort: 443, ToPort: 443, CidrIp: '0.0.0.0/0', Description: 'AWS APIs (Terraform, SSM, metering, S3)' },
            // Redis admits only groups the module lists (this one among them); the VPC's CIDR is not known for a brought VPC.
            { IpProtocol: 'tcp', FromPort: 6379, ToPort: 6379, CidrIp: '0.0.0.0/0', Description: 'Redis (the state store)' },
          ],
          Tags: tags('control-plane'),
        },
      },
      InstanceRole: {
        Type: 'AWS::IAM::Role',
        Properties: {
          Description: 'PuffinDB Marketplace instance: applies and destroys the PuffinDB Terraform module, runs the control plane, meters usage',
          AssumeRolePolicyDocument: {
            Version: '2012-10-17',
            Statement: [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }],
          },
          // SSM Run Command carries the teardown; Session Manager replaces SSH.
          ManagedPolicyArns: [sub('arn:${AWS::Partition}:iam::aws:policy/AmazonSSMManagedInstanceCore')],
          Policies: [{ PolicyName: 'puffindb-deploy-and-run', PolicyDocument: { Version: '2012-10-17', Statement: instancePolicyStatements() as unknown as Json } }],
          Tags: tags('instance-role'),
        },
      },
      InstanceProfile: { Type: 'AWS::IAM::InstanceProfile', Properties: { Roles: [ref('InstanceRole')] } },
      InstanceLaunchTemplate: {
        Type: 'AWS::EC2::LaunchTemplate',
        Properties: { LaunchTemplateData: { MetadataOptions: { HttpTokens: 'required', HttpEndpoint: 'enabled', HttpPutResponseHopLimit: 1 } } },
      },
      Instance: {
        Type: 'AWS::EC2::Instance',
        DependsOn: ['StateBucketPolicy'],
        Properties: {
          ImageId: ref('ImageId'),
          InstanceType: ref('InstanceType'),
          IamInstanceProfile: ref('InstanceProfile'),
          Monitoring: true,
          // IMDSv2 only, through a launch template: the form every CloudFormation version accepts.
          LaunchTemplate: { LaunchTemplateId: ref('InstanceLaunchTemplate'), Version: getAtt('InstanceLaunchTemplate', 'LatestVersionNumber') },
          BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { VolumeSize: ref('MonostoreRootVolumeGb'), VolumeType: 'gp3', Encrypted: true, DeleteOnTermination: true } }],
          NetworkInterfaces: [
            {
              DeviceIndex: '0',
              SubnetId: ifCreateVpc(ref('PublicSubnet'), ref('InstanceSubnetId')),
              AssociatePublicIpAddress: ifCreateVpc(true, ref('AWS::NoValue')),
              GroupSet: [ref('InstanceSecurityGroup')],
            },
          ],
          UserData: { 'Fn::Base64': { 'Fn::Sub': [userDataScript(), RESOLVED_VALUES] } },
          Tags: tags('control-plane'),
        },
      },
      BootWaitHandle: { Type: 'AWS::CloudFormation::WaitConditionHandle' },
      BootWaitCondition: {
        Type: 'AWS::CloudFormation::WaitCondition',
        DependsOn: ['Instance'],
        Properties: { Handle: ref('BootWaitHandle'), Timeout: String(BOOT_TIMEOUT_SECONDS), Count: 1 },
      },

      // -- teardown on stack deletion
      TeardownRole: {
        Type: 'AWS::IAM::Role',
        Properties: {
          Description: 'PuffinDB teardown: runs puffindb-destroy on the instance and empties the state bucket',
          AssumeRolePolicyDocument: {
            Version: '2012-10-17',
            Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }],
          },
          Policies: [
            {
              PolicyName: 'puffindb-teardown',
              PolicyDocument: {
                Version: '2012-10-17',
                Statement: [
                  {
                    Sid: 'RunDestroyOnTheInstance',
                    Effect: 'Allow',
                    Action: 'ssm:SendCommand',
                    Resource: [sub('arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/${Instance}'), sub('arn:${AWS::Partition}:ssm:${AWS::Region}::document/AWS-RunShellScript')],
                  },
                  // GetCommandInvocation supports no resource-level permissions.
                  { Sid: 'FollowTheCommand', Effect: 'Allow', Action: 'ssm:GetCommandInvocation', Resource: '*' },
                  { Sid: 'EmptyStateBucket', Effect: 'Allow', Action: ['s3:ListBucket', 's3:ListBucketVersions'], Resource: getAtt('StateBucket', 'Arn') },
                  { Sid: 'DeleteStateObjects', Effect: 'Allow', Action: ['s3:DeleteObject', 's3:DeleteObjectVersion'], Resource: sub('${StateBucket.Arn}/*') },
                  { Sid: 'ContinueAfterTimeout', Effect: 'Allow', Action: 'lambda:InvokeFunction', Resource: sub('arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${NamePrefix}-teardown') },
                  {
                    Sid: 'WriteOwnLogs',
                    Effect: 'Allow',
                    Action: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents'],
                    Resource: [
                      sub('arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/${NamePrefix}-teardown'),
                      sub('arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/${NamePrefix}-teardown:*'),
                    ],
                  },
                ],
              },
            },
          ],
          Tags: tags('teardown-role'),
        },
      },
      TeardownFunction: {
        Type: 'AWS::Lambda::Function',
        Properties: {
          FunctionName: sub('${NamePrefix}-teardown'),
          Description: 'Runs terraform destroy on the PuffinDB instance when the stack is deleted',
          Runtime: 'python3.12',
          Handler: 'index.handler',
          Timeout: 900,
          MemorySize: 128,
          Role: getAtt('TeardownRole', 'Arn'),
          Code: { ZipFile: teardownSource() },
          Tags: tags('teardown'),
        },
      },
      Teardown: {
        Type: 'Custom::PuffinDBTeardown',
        // Deleted before the instance and the bucket it needs.
        DependsOn: ['Instance', 'StateBucket'],
        Properties: {
          ServiceToken: getAtt('TeardownFunction', 'Arn'),
          InstanceId: ref('Instance'),
          StateBucket: ref('StateBucket'),
          DestroyCommand: `${IMAGE.binDir}/${SCRIPTS.destroy}`,
        },
      },
    },
    Outputs: {
      AdminApiUrl: {
        Description: 'Admin API (API Gateway, HTTPS), as reported by the instance: {"puffindb": "<url>"}. Send the admin key as a bearer token.',
        Value: getAtt('BootWaitCondition', 'Data'),
      },
      AdminKeySecretArn: { Description: 'Secrets Manager secret holding the first admin API key (SecretString).', Value: ref('AdminKeySecret') },
      AdminKeyConsoleUrl: {
        Description: 'The admin key in the Secrets Manager console.',
        Value: sub('https://${AWS::Region}.console.aws.amazon.com/secretsmanager/secret?name=${AdminKeySecret}&region=${AWS::Region}'),
      },
      ControlPlaneUrl: { Description: `puffindb serve on the instance (HTTP, port ${CONTROL_PLANE_PORT}), reachable from AdminCidr inside the VPC or through its public address.`, Value: sub(`http://\${Instance.PrivateIp}:${CONTROL_PLANE_PORT}`) },
      InstanceId: { Description: 'The control-plane instance (connect with Session Manager; first-boot log in /var/log/puffindb-first-boot.log).', Value: ref('Instance') },
      TerraformStateBucket: { Description: "Bucket holding Terraform's state of this deployment.", Value: ref('StateBucket') },
    },
  };
}

export const marketplaceTemplate = buildTemplate;

export const templateJson = (t: CfnTemplate): string => `${JSON.stringify(t, null, 2)}\n`;
export const templateYaml = (t: CfnTemplate): string => stringify(t, { lineWidth: 0, aliasDuplicateObjects: false });
