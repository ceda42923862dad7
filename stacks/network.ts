// The network the functions, Redis and Monostore live in: a new VPC with private subnets
// only (no internet gateway, no NAT), or the buyer's VPC and subnets. Nothing here routes
// to the internet; the AWS APIs the runtime calls are reached through VPC endpoints:
//   - S3 (gateway endpoint, free): lake, results and shuffle objects, and the Monostore's
//     software (Amazon Linux repositories are served from S3);
//   - Lambda (interface endpoint): the coordinator invokes workers, the admin function
//     invokes the coordinator;
//   - Secrets Manager (interface endpoint): every function reads the Redis auth token.
// CloudWatch Logs needs none (Lambda ships function logs itself), nor does KMS (S3 and
// Secrets Manager call it on the caller's behalf), nor STS (Lambda hands out credentials).
// Security groups allow only those flows, and the VPC's default group is emptied.

import { DataAwsAvailabilityZones } from '@cdktf/provider-aws/lib/data-aws-availability-zones/index.js';
import { DataAwsIamPolicyDocument } from '@cdktf/provider-aws/lib/data-aws-iam-policy-document/index.js';
import { DataAwsPrefixList } from '@cdktf/provider-aws/lib/data-aws-prefix-list/index.js';
import { DataAwsVpcEndpointService } from '@cdktf/provider-aws/lib/data-aws-vpc-endpoint-service/index.js';
import { DefaultSecurityGroup } from '@cdktf/provider-aws/lib/default-security-group/index.js';
import { FlowLog } from '@cdktf/provider-aws/lib/flow-log/index.js';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role/index.js';
import { IamRolePolicy } from '@cdktf/provider-aws/lib/iam-role-policy/index.js';
import { RouteTable } from '@cdktf/provider-aws/lib/route-table/index.js';
import { RouteTableAssociation } from '@cdktf/provider-aws/lib/route-table-association/index.js';
import { SecurityGroup } from '@cdktf/provider-aws/lib/security-group/index.js';
import { Subnet } from '@cdktf/provider-aws/lib/subnet/index.js';
import { Vpc } from '@cdktf/provider-aws/lib/vpc/index.js';
import { VpcEndpoint } from '@cdktf/provider-aws/lib/vpc-endpoint/index.js';
import { VpcSecurityGroupEgressRule } from '@cdktf/provider-aws/lib/vpc-security-group-egress-rule/index.js';
import { VpcSecurityGroupIngressRule } from '@cdktf/provider-aws/lib/vpc-security-group-ingress-rule/index.js';
import { TerraformLocal } from 'cdktf';
import { Construct } from 'constructs';
import type { Account } from './account.ts';
import { addressOf, tfNumber, tfString } from './expressions.ts';
import type { Inputs } from './inputs.ts';
import { encryptedLogGroup } from './log-group.ts';

export const REDIS_PORT = 6379;
export const HTTPS_PORT = 443;

export interface NetworkProps {
  inputs: Inputs;
  account: Account;
  keyArn: string;
}

export class Network extends Construct {
  readonly vpcId: string;
  readonly privateSubnetIds: string[];
  readonly lambdaSecurityGroupId: string;
  readonly redisSecurityGroupId: string;
  readonly endpointSecurityGroupId: string;
  /** AWS-managed prefix list of S3 in this region: the gateway endpoint's destinations. */
  readonly s3PrefixListId: string;
  private readonly inputs: Inputs;

  constructor(scope: Construct, id: string, props: NetworkProps) {
    super(scope, id);
    const { inputs } = props;
    this.inputs = inputs;
    const prefix = inputs.string('name_prefix');
    const createVpc = `${inputs.ref('vpc_id')} == ""`;

    const zones = new DataAwsAvailabilityZones(this, 'available', {
      state: 'available',
      // Local and Wavelength zones are opt-in and lack ElastiCache and Lambda.
      filter: [{ name: 'opt-in-status', values: ['opt-in-not-required'] }],
    });

    const vpc = new Vpc(this, 'this', {
      count: tfNumber(this, `${createVpc} ? 1 : 0`),
      cidrBlock: inputs.string('vpc_cidr'),
      // Interface endpoints with private DNS need both.
      enableDnsSupport: true,
      enableDnsHostnames: true,
      tags: { Name: prefix },
    });
    const vpcAt0 = `${addressOf(vpc)}[0].id`;

    const subnets = new Subnet(this, 'private', {
      count: tfNumber(this, `${createVpc} ? ${inputs.ref('az_count')} : 0`),
      vpcId: tfString(this, vpcAt0),
      cidrBlock: tfString(this, `cidrsubnet(${inputs.ref('vpc_cidr')}, 4, count.index)`),
      availabilityZone: tfString(this, `${addressOf(zones)}.names[count.index]`),
      mapPublicIpOnLaunch: false,
      tags: { Name: `${prefix}-private-\${${addressOf(zones)}.names[count.index]}` },
    });

    // No routes beyond the VPC's own: the S3 gateway endpoint adds the only other one.
    const routeTable = new RouteTable(this, 'private_routes', {
      count: tfNumber(this, `${createVpc} ? 1 : 0`),
      vpcId: tfString(this, vpcAt0),
      tags: { Name: `${prefix}-private` },
    });
    new RouteTableAssociation(this, 'private_routes_association', {
      count: tfNumber(this, `${createVpc} ? ${inputs.ref('az_count')} : 0`),
      subnetId: tfString(this, `${addressOf(subnets)}[count.index].id`),
      routeTableId: tfString(this, `${addressOf(routeTable)}[0].id`),
    });

    // Managing the default security group with no rules removes AWS's allow-all defaults,
    // so nothing placed in the VPC without a group gets open access (CKV2_AWS_12).
    new DefaultSecurityGroup(this, 'default', {
      count: tfNumber(this, `${createVpc} ? 1 : 0`),
      vpcId: tfString(this, vpcAt0),
      tags: { Name: `${prefix}-default-no-rules` },
    });

    this.flowLogs(props, `${createVpc} && ${inputs.ref('enable_vpc_flow_logs')}`, vpcAt0);

    this.vpcId = new TerraformLocal(this, 'vpc_id', `\${coalesce(${inputs.ref('vpc_id')}, one(${addressOf(vpc)}[*].id))}`).asString;
    this.privateSubnetIds = new TerraformLocal(
      this,
      'private_subnet_ids',
      `\${${createVpc} ? ${addressOf(subnets)}[*].id : ${inputs.ref('private_subnet_ids')}}`,
    ).asList;
    const routeTableIds = new TerraformLocal(
      this,
      'private_route_table_ids',
      `\${${createVpc} ? ${addressOf(routeTable)}[*].id : ${inputs.ref('private_route_table_ids')}}`,
    ).asList;

    const securityGroup = (sgId: string, description: string): SecurityGroup =>
      new SecurityGroup(this, sgId, {
        namePrefix: `${prefix}-${sgId.replaceAll('_', '-')}-`,
        description,
        vpcId: this.vpcId,
        tags: { Name: `${prefix}-${sgId.replaceAll('_', '-')}` },
        lifecycle: { createBeforeDestroy: true },
      });
    const lambdaSg = securityGroup('lambda', 'PuffinDB Lambdas: no inbound; outbound only to Redis, the VPC endpoints and S3');
    const redisSg = securityGroup('redis', 'PuffinDB Redis: inbound from PuffinDB compute on the Redis port only');
    const endpointSg = securityGroup('endpoints', 'PuffinDB VPC interface endpoints: HTTPS from PuffinDB compute only');
    this.lambdaSecurityGroupId = lambdaSg.id;
    this.redisSecurityGroupId = redisSg.id;
    this.endpointSecurityGroupId = endpointSg.id;

    const s3Service = new DataAwsVpcEndpointService(this, 's3_service', { service: 's3', serviceType: 'Gateway' });
    const s3PrefixList = new DataAwsPrefixList(this, 's3_prefix_list', { name: s3Service.serviceName });
    this.s3PrefixListId = s3PrefixList.id;

    const endpointCount = tfNumber(this, `${inputs.ref('create_vpc_endpoints')} ? 1 : 0`);
    new VpcEndpoint(this, 's3_gateway', {
      count: endpointCount,
      vpcId: this.vpcId,
      serviceName: s3Service.serviceName,
      vpcEndpointType: 'Gateway',
      routeTableIds,
      tags: { Name: `${prefix}-s3` },
    });
    for (const service of ['lambda', 'secretsmanager']) {
      const endpointService = new DataAwsVpcEndpointService(this, `${service}_service`, { service, serviceType: 'Interface' });
      new VpcEndpoint(this, `${service}_interface`, {
        count: endpointCount,
        vpcId: this.vpcId,
        serviceName: endpointService.serviceName,
        vpcEndpointType: 'Interface',
        privateDnsEnabled: true,
        subnetIds: this.privateSubnetIds,
        securityGroupIds: [endpointSg.id],
        tags: { Name: `${prefix}-${service}` },
      });
    }

    this.allowClient('lambda', lambdaSg.id);
    const httpsEgress = new VpcSecurityGroupEgressRule(this, 'lambda_to_https_cidrs', {
      securityGroupId: lambdaSg.id,
      description: 'HTTPS to the buyer-provided endpoints or NAT (https_egress_cidrs)',
      ipProtocol: 'tcp',
      fromPort: HTTPS_PORT,
      toPort: HTTPS_PORT,
      cidrIpv4: '${each.value}',
    });
    httpsEgress.addOverride('for_each', `\${toset(${inputs.ref('https_egress_cidrs')})}`);
  }

  /**
   * Let compute in `sourceSgId` reach Redis, the interface endpoints and S3, and let Redis
   * and the endpoints accept it. `when`, a Terraform condition, guards every rule (for
   * optional compute such as the Monostore).
   */
  allowClient(name: string, sourceSgId: string, when?: string): void {
    const createEndpoints = this.inputs.ref('create_vpc_endpoints');
    const guarded = when === undefined ? {} : { count: tfNumber(this, `${when} ? 1 : 0`) };
    const endpointCount = tfNumber(this, when === undefined ? `${createEndpoints} ? 1 : 0` : `${when} && ${createEndpoints} ? 1 : 0`);
    new VpcSecurityGroupEgressRule(this, `${name}_to_redis`, {
      ...guarded,
      securityGroupId: sourceSgId,
      description: `${name} to Redis`,
      ipProtocol: 'tcp',
      fromPort: REDIS_PORT,
      toPort: REDIS_PORT,
      referencedSecurityGroupId: this.redisSecurityGroupId,
    });
    new VpcSecurityGroupIngressRule(this, `redis_from_${name}`, {
      ...guarded,
      securityGroupId: this.redisSecurityGroupId,
      description: `Redis from ${name}`,
      ipProtocol: 'tcp',
      fromPort: REDIS_PORT,
      toPort: REDIS_PORT,
      referencedSecurityGroupId: sourceSgId,
    });
    new VpcSecurityGroupEgressRule(this, `${name}_to_endpoints`, {
      count: endpointCount,
      securityGroupId: sourceSgId,
      description: `${name} to the Lambda and Secrets Manager interface endpoints`,
      ipProtocol: 'tcp',
      fromPort: HTTPS_PORT,
      toPort: HTTPS_PORT,
      referencedSecurityGroupId: this.endpointSecurityGroupId,
    });
    new VpcSecurityGroupIngressRule(this, `endpoints_from_${name}`, {
      count: endpointCount,
      securityGroupId: this.endpointSecurityGroupId,
      description: `Interface endpoints from ${name}`,
      ipProtocol: 'tcp',
      fromPort: HTTPS_PORT,
      toPort: HTTPS_PORT,
      referencedSecurityGroupId: sourceSgId,
    });
    new VpcSecurityGroupEgressRule(this, `${name}_to_s3`, {
      ...guarded,
      securityGroupId: sourceSgId,
      description: `${name} to S3 through the gateway endpoint`,
      ipProtocol: 'tcp',
      fromPort: HTTPS_PORT,
      toPort: HTTPS_PORT,
      prefixListId: this.s3PrefixListId,
    });
  }

  private flowLogs(props: NetworkProps, enabled: string, vpcAt0: string): void {
    const { inputs, account, keyArn } = props;
    const count = tfNumber(this, `${enabled} ? 1 : 0`);
    const prefix = inputs.string('name_prefix');
    const group = encryptedLogGroup(this, 'vpc_flow_logs', { inputs, keyArn, name: `/aws/vpc/${prefix}-flow-logs`, count });
    const groupArn = tfString(this, `${addressOf(group)}[0].arn`);
    const trust = new DataAwsIamPolicyDocument(this, 'vpc_flow_logs_trust', {
      statement: [
        {
          effect: 'Allow',
          actions: ['sts:AssumeRole'],
          principals: [{ type: 'Service', identifiers: ['vpc-flow-logs.amazonaws.com'] }],
          condition: [{ test: 'StringEquals', variable: 'aws:SourceAccount', values: [account.accountId] }],
        },
      ],
    });
    const role = new IamRole(this, 'vpc_flow_logs_role', {
      count,
      namePrefix: `${prefix}-flow-logs-`,
      assumeRolePolicy: trust.json,
    });
    const policy = new DataAwsIamPolicyDocument(this, 'vpc_flow_logs_policy', {
      count,
      statement: [
        {
          sid: 'WriteFlowLogs',
          effect: 'Allow',
          actions: ['logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams'],
          resources: [groupArn, `${groupArn}:*`],
        },
        {
          sid: 'FindFlowLogGroup',
          effect: 'Allow',
          actions: ['logs:DescribeLogGroups'],
          resources: [account.arn('logs', 'log-group:*')],
        },
      ],
    });
    new IamRolePolicy(this, 'vpc_flow_logs_role_policy', {
      count,
      role: tfString(this, `${addressOf(role)}[0].id`),
      policy: tfString(this, `${addressOf(policy)}[0].json`),
    });
    new FlowLog(this, 'vpc', {
      count,
      vpcId: tfString(this, vpcAt0),
      trafficType: 'ALL',
      logDestinationType: 'cloud-watch-logs',
      logDestination: groupArn,
      iamRoleArn: tfString(this, `${addressOf(role)}[0].arn`),
      tags: { Name: `${prefix}-flow-logs` },
    });
  }
}
