// The instance role's permissions: what `terraform apply` and `destroy` of the synthesized
// module call, plus what the control plane and metering use at run time. Scoped by the
// name prefix wherever the service names resources after it, and by the deployment tag
// (every resource carries it through the module's default tags) wherever the service
// evaluates aws:RequestTag / aws:ResourceTag. Statements whose resource is `*` say why in
// UNSCOPED; the rules test fails on a `*` resource not listed there.

import { DEPLOYMENT_TAG } from './image-layout.ts';

type Sub = { 'Fn::Sub': string };
export interface PolicyStatement {
  Sid: string;
  Effect: 'Allow';
  Action: string[];
  Resource: (string | Sub)[] | string;
  Condition?: Record<string, Record<string, unknown>>;
}

const sub = (s: string): Sub => ({ 'Fn::Sub': s });
const arn = (service: string, resource: string, region = true): Sub =>
  sub(`arn:\${AWS::Partition}:${service}:${region ? '${AWS::Region}' : ''}:${service === 's3' ? '' : '${AWS::AccountId}'}:${resource}`);
const s3 = (resource: string): Sub => sub(`arn:\${AWS::Partition}:s3:::${resource}`);
const requestTag = { StringEquals: { [`aws:RequestTag/${DEPLOYMENT_TAG}`]: '${AWS::StackName}' } };
const resourceTag = { StringEquals: { [`aws:ResourceTag/${DEPLOYMENT_TAG}`]: '${AWS::StackName}' } };

/** Sids whose resource is `*`, and why IAM allows nothing narrower. */
export const UNSCOPED: Record<string, string> = {
  DescribeNetworkAndCompute: 'EC2 and ElastiCache Describe/List calls support no resource-level permissions.',
  CreateDeploymentKey: 'kms:CreateKey has no resource (the key does not exist yet); scoped by the deployment tag in the request instead.',
  ListKeyAliases: 'kms:ListAliases supports no resource-level permissions.',
  GenerateRedisToken: 'secretsmanager:GetRandomPassword (the module generates the Redis AUTH token) supports no resource-level permissions.',
  ApiAccessLogDelivery: 'API Gateway access logs are set up through CloudWatch Logs delivery APIs, which support no resource-level permissions.',
  MeterUsage: 'aws-marketplace:MeterUsage supports no resource-level permissions.',
};

/** Statements with Fn::Sub strings over NamePrefix, AWS::* and the given resources. */
export function instancePolicyStatements(): PolicyStatement[] {
  const prefix = '${NamePrefix}';
  const tagCond = (c: { StringEquals: Record<string, string> }) => ({ StringEquals: { ...c.StringEquals } });
  return [
    // -- Terraform state in the stack's bucket
    { Sid: 'TerraformStateList', Effect: 'Allow', Action: ['s3:ListBucket'], Resource: [sub('${StateBucket.Arn}')] },
    { Sid: 'TerraformStateObjects', Effect: 'Allow', Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'], Resource: [sub('${StateBucket.Arn}/*')] },
    // -- reads Terraform makes while planning
    {
      Sid: 'DescribeNetworkAndCompute',
      Effect: 'Allow',
      Action: ['ec2:Describe*', 'elasticache:Describe*', 'elasticache:ListTagsForResource', 'logs:DescribeLogGroups', 'lambda:GetAccountSettings'],
      Resource: '*',
    },
    // -- network: security groups, rules and VPC endpoints carry the deployment tag
    {
      Sid: 'CreateTaggedNetworkResources',
      Effect: 'Allow',
      Action: ['ec2:CreateSecurityGroup', 'ec2:CreateVpcEndpoint', 'ec2:AuthorizeSecurityGroupIngress', 'ec2:AuthorizeSecurityGroupEgress', 'ec2:CreateTags'],
      Resource: [arn('ec2', 'security-group/*'), arn('ec2', 'vpc-endpoint/*'), arn('ec2', 'security-group-rule/*')],
      Condition: tagCond(requestTag),
    },
    {
      // The VPC, subnets and route tables may be the buyer's own (untagged): only referenced, never changed.
      Sid: 'ReferenceVpcInCreates',
      Effect: 'Allow',
      Action: ['ec2:CreateSecurityGroup', 'ec2:CreateVpcEndpoint'],
      Resource: [arn('ec2', 'vpc/*'), arn('ec2', 'subnet/*'), arn('ec2', 'route-table/*'), arn('ec2', 'security-group/*')],
    },
    {
      Sid: 'ChangeTaggedNetworkResources',
      Effect: 'Allow',
      Action: [
        'ec2:DeleteSecurityGroup',
        'ec2:AuthorizeSecurityGroupIngress',
        'ec2:AuthorizeSecurityGroupEgress',
        'ec2:RevokeSecurityGroupIngress',
        'ec2:RevokeSecurityGroupEgress',
        'ec2:ModifySecurityGroupRules',
        'ec2:UpdateSecurityGroupRuleDescriptionsIngress',
        'ec2:UpdateSecurityGroupRuleDescriptionsEgress',
        'ec2:ModifyVpcEndpoint',
        'ec2:DeleteVpcEndpoints',
        'ec2:CreateTags',
        'ec2:DeleteTags',
      ],
      Resource: [arn('ec2', 'security-group/*'), arn('ec2', 'security-group-rule/*'), arn('ec2', 'vpc-endpoint/*')],
      Condition: tagCond(resourceTag),
    },
    {
      Sid: 'ModifyEndpointRouteTables',
      Effect: 'Allow',
      Action: ['ec2:ModifyVpcEndpoint'],
      Resource: [arn('ec2', 'route-table/*'), arn('ec2', 'subnet/*'), arn('ec2', 'security-group/*')],
    },
    // -- encryption key: tag in the request at creation, tag on the key afterwards
    { Sid: 'CreateDeploymentKey', Effect: 'Allow', Action: ['kms:CreateKey', 'kms:TagResource'], Resource: '*', Condition: tagCond(requestTag) },
    {
      Sid: 'ManageDeploymentKey',
      Effect: 'Allow',
      Action: [
        'kms:DescribeKey',
        'kms:GetKeyPolicy',
        'kms:PutKeyPolicy',
        'kms:GetKeyRotationStatus',
        'kms:EnableKeyRotation',
        'kms:ListResourceTags',
        'kms:TagResource',
        'kms:UntagResource',
        'kms:ScheduleKeyDeletion',
        'kms:CreateAlias',
        'kms:DeleteAlias',
        'kms:Encrypt',
        'kms:Decrypt',
        'kms:GenerateDataKey',
        'kms:CreateGrant',
      ],
      Resource: [arn('kms', 'key/*')],
      Condition: tagCond(resourceTag),
    },
    { Sid: 'NameDeploymentKey', Effect: 'Allow', Action: ['kms:CreateAlias', 'kms:DeleteAlias'], Resource: [arn('kms', `alias/${prefix}`)] },
    { Sid: 'ListKeyAliases', Effect: 'Allow', Action: ['kms:ListAliases'], Resource: '*' },
    // -- buckets: S3 evaluates no resource tags on bucket calls, so the name prefix scopes them
    {
      Sid: 'ManageDeploymentBuckets',
      Effect: 'Allow',
      Action: ['s3:CreateBucket', 's3:DeleteBucket', 's3:ListBucket', 's3:ListBucketVersions', 's3:Get*', 's3:Put*', 's3:DeleteBucketPolicy'],
      Resource: [s3(`${prefix}-lake-*`), s3(`${prefix}-results-*`), s3(`${prefix}-shuffle-*`)],
    },
    {
      // The control plane reads and writes the lake; destroy empties buckets when data is not kept.
      Sid: 'UseDeploymentObjects',
      Effect: 'Allow',
      Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:DeleteObjectVersion', 's3:AbortMultipartUpload'],
      Resource: [s3(`${prefix}-lake-*/*`), s3(`${prefix}-results-*/*`), s3(`${prefix}-shuffle-*/*`)],
    },
    // -- Redis
    {
      Sid: 'ManageRedis',
      Effect: 'Allow',
      Action: [
        'elasticache:CreateReplicationGroup',
        'elasticache:ModifyReplicationGroup',
        'elasticache:DeleteReplicationGroup',
        'elasticache:CreateCacheSubnetGroup',
        'elasticache:ModifyCacheSubnetGroup',
        'elasticache:DeleteCacheSubnetGroup',
        'elasticache:AddTagsToResource',
        'elasticache:RemoveTagsFromResource',
      ],
      Resource: [
        arn('elasticache', `replicationgroup:${prefix}-*`),
        arn('elasticache', `cluster:${prefix}-*`),
        arn('elasticache', `subnetgroup:${prefix}-*`),
        arn('elasticache', 'parametergroup:default.*'),
        arn('elasticache', 'user:default'),
      ],
    },
    {
      Sid: 'ElastiCacheServiceLinkedRole',
      Effect: 'Allow',
      Action: ['iam:CreateServiceLinkedRole'],
      Resource: [sub('arn:${AWS::Partition}:iam::${AWS::AccountId}:role/aws-service-role/elasticache.amazonaws.com/*')],
      Condition: { StringEquals: { 'iam:AWSServiceName': 'elasticache.amazonaws.com' } },
    },
    // -- secrets: the Redis AUTH token (named after the prefix) and the admin key
    { Sid: 'CreateRedisSecret', Effect: 'Allow', Action: ['secretsmanager:CreateSecret', 'secretsmanager:TagResource'], Resource: [arn('secretsmanager', `secret:${prefix}/*`)], Condition: tagCond(requestTag) },
    {
      Sid: 'ManageRedisSecret',
      Effect: 'Allow',
      Action: [
        'secretsmanager:DescribeSecret',
        'secretsmanager:GetResourcePolicy',
        'secretsmanager:GetSecretValue',
        'secretsmanager:PutSecretValue',
        'secretsmanager:UpdateSecret',
        'secretsmanager:DeleteSecret',
        'secretsmanager:TagResource',
        'secretsmanager:UntagResource',
      ],
      Resource: [arn('secretsmanager', `secret:${prefix}/*`)],
      Condition: tagCond(resourceTag),
    },
    { Sid: 'GenerateRedisToken', Effect: 'Allow', Action: ['secretsmanager:GetRandomPassword'], Resource: '*' },
    { Sid: 'ReadAdminKey', Effect: 'Allow', Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'], Resource: [{ 'Fn::Sub': '${AdminKeySecret}' }] },
    // -- functions and their roles
    {
      Sid: 'ManageFunctions',
      Effect: 'Allow',
      Action: [
        'lambda:CreateFunction',
        'lambda:DeleteFunction',
        'lambda:GetFunction',
        'lambda:GetFunctionConfiguration',
        'lambda:GetFunctionCodeSigningConfig',
        'lambda:UpdateFunctionCode',
        'lambda:UpdateFunctionConfiguration',
        'lambda:PutFunctionConcurrency',
        'lambda:DeleteFunctionConcurrency',
        'lambda:AddPermission',
        'lambda:RemovePermission',
        'lambda:GetPolicy',
        'lambda:ListVersionsByFunction',
        'lambda:TagResource',
        'lambda:UntagResource',
        'lambda:ListTags',
        'lambda:InvokeFunction',
      ],
      Resource: [arn('lambda', `function:${prefix}-*`)],
    },
    {
      Sid: 'ManageFunctionRoles',
      Effect: 'Allow',
      Action: [
        'iam:CreateRole',
        'iam:DeleteRole',
        'iam:GetRole',
        'iam:TagRole',
        'iam:UntagRole',
        'iam:UpdateAssumeRolePolicy',
        'iam:PutRolePolicy',
        'iam:GetRolePolicy',
        'iam:DeleteRolePolicy',
        'iam:ListRolePolicies',
        'iam:ListAttachedRolePolicies',
        'iam:ListInstanceProfilesForRole',
      ],
      Resource: [sub(`arn:\${AWS::Partition}:iam::\${AWS::AccountId}:role/${prefix}-*`)],
    },
    {
      Sid: 'PassFunctionRolesToLambda',
      Effect: 'Allow',
      Action: ['iam:PassRole'],
      Resource: [sub(`arn:\${AWS::Partition}:iam::\${AWS::AccountId}:role/${prefix}-*`)],
      Condition: { StringEquals: { 'iam:PassedToService': 'lambda.amazonaws.com' } },
    },
    // -- log groups of the functions and the API
    {
      Sid: 'ManageLogGroups',
      Effect: 'Allow',
      Action: ['logs:CreateLogGroup', 'logs:DeleteLogGroup', 'logs:PutRetentionPolicy', 'logs:AssociateKmsKey', 'logs:TagResource', 'logs:UntagResource', 'logs:ListTagsForResource', 'logs:ListTagsLogGroup', 'logs:TagLogGroup'],
      Resource: [arn('logs', `log-group:/aws/lambda/${prefix}-*`), arn('logs', `log-group:/aws/apigateway/${prefix}-*`)],
    },
    {
      Sid: 'ApiAccessLogDelivery',
      Effect: 'Allow',
      Action: ['logs:CreateLogDelivery', 'logs:GetLogDelivery', 'logs:UpdateLogDelivery', 'logs:DeleteLogDelivery', 'logs:ListLogDeliveries', 'logs:PutResourcePolicy', 'logs:DescribeResourcePolicies'],
      Resource: '*',
    },
    // -- the HTTP API
    { Sid: 'CreateApi', Effect: 'Allow', Action: ['apigateway:POST'], Resource: [sub('arn:${AWS::Partition}:apigateway:${AWS::Region}::/apis')], Condition: tagCond(requestTag) },
    {
      Sid: 'ManageApi',
      Effect: 'Allow',
      Action: ['apigateway:GET', 'apigateway:POST', 'apigateway:PATCH', 'apigateway:PUT', 'apigateway:DELETE', 'apigateway:TagResource', 'apigateway:UntagResource'],
      Resource: [sub('arn:${AWS::Partition}:apigateway:${AWS::Region}::/apis/*'), sub('arn:${AWS::Partition}:apigateway:${AWS::Region}::/tags/*')],
      Condition: tagCond(resourceTag),
    },
    // -- run time
    { Sid: 'MeterUsage', Effect: 'Allow', Action: ['aws-marketplace:MeterUsage'], Resource: '*' },
  ];
}
