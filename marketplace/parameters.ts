// The buyer's choices on the launch page: CloudFormation parameters generated from the
// same input table the Terraform variables come from (stacks/inputs.ts). A parameter that
// maps to an input takes its description, default and constraints from it (ranges, allowed
// values, patterns); the instance passes it to Terraform as TF_VAR_<input>. Parameters with
// no input (the image, the instance, the admin CIDR) are the template's own.

import { PuffinError } from '../runtime/errors.ts';
import { INPUTS, type InputName, type InputSpec } from '../stacks/inputs.ts';

export interface CfnParameter {
  Type: string;
  Description: string;
  Default?: string | number;
  AllowedValues?: string[];
  AllowedPattern?: string;
  MinLength?: number;
  MaxLength?: number;
  MinValue?: number;
  MaxValue?: number;
  ConstraintDescription?: string;
  NoEcho?: boolean;
}

/** Constraints read back out of an input's Terraform validations. */
export function constraintsOf(name: InputName): Partial<CfnParameter> {
  const spec = INPUTS[name] as InputSpec;
  const out: Partial<CfnParameter> = {};
  for (const v of spec.validation) {
    const range = new RegExp(`^var\\.${name} >= (-?\\d+) && var\\.${name} <= (-?\\d+)$`).exec(v.condition);
    const set = new RegExp(`^contains\\((\\[.*\\]), var\\.${name}\\)$`).exec(v.condition);
    const pattern = /can\(regex\("(.+?)", var\.\w+\)\)/.exec(v.condition);
    const lengths = /length\(var\.\w+\) >= (\d+) && length\(var\.\w+\) <= (\d+)/.exec(v.condition);
    if (range) Object.assign(out, { MinValue: Number(range[1]), MaxValue: Number(range[2]) });
    if (set?.[1]) out.AllowedValues = (JSON.parse(set[1]) as (string | number)[]).map(String);
    if (pattern?.[1]) out.AllowedPattern = JSON.parse(`"${pattern[1]}"`) as string;
    if (lengths) Object.assign(out, { MinLength: Number(lengths[1]), MaxLength: Number(lengths[2]) });
    if (range || set || pattern || lengths) out.ConstraintDescription = v.message;
  }
  return out;
}

function fromInput(name: InputName, extra: Partial<CfnParameter> = {}): CfnParameter & { input: InputName } {
  const spec = INPUTS[name] as InputSpec;
  const type = spec.type === 'number' ? 'Number' : 'String';
  const def = spec.default;
  if (typeof def === 'object') throw new PuffinError('internal', `input ${name} (${spec.type}) has no single-value parameter form`);
  return { input: name, Type: type, Description: spec.description, Default: typeof def === 'boolean' ? String(def) : def, ...constraintsOf(name), ...extra };
}

const BOOL = { AllowedValues: ['true', 'false'] };

/** x86_64 instance types: the image carries x86_64 binaries. */
export const INSTANCE_TYPES = ['m6i.large', 'm6i.xlarge', 'm6i.2xlarge', 'm6i.4xlarge', 'r6i.large', 'r6i.xlarge', 'r6i.2xlarge', 'c6i.xlarge', 'c6i.2xlarge'];
const REDIS_NODE_TYPES = ['cache.t4g.small', 'cache.t4g.medium', 'cache.m7g.large', 'cache.m7g.xlarge', 'cache.r7g.large', 'cache.r7g.xlarge'];
const CIDR_PATTERN = '^(\\d{1,3}\\.){3}\\d{1,3}/(\\d|[12]\\d|3[0-2])$';

/** Parameters passed to Terraform, by parameter name. */
export const TERRAFORM_PARAMETERS = {
  NamePrefix: fromInput('name_prefix'),
  VpcCidr: fromInput('vpc_cidr', {
    Description: 'CIDR of the new VPC (ignored with VpcId). The template splits it into two private subnets and one public subnet for the instance.',
    AllowedPattern: '^(\\d{1,3}\\.){3}\\d{1,3}/(1[6-9]|2[0-2])$',
    ConstraintDescription: 'VpcCidr must be a CIDR block from /16 to /22, such as 10.42.0.0/16.',
  }),
  WorkerMemoryMb: fromInput('worker_memory_mb'),
  WorkerTimeoutSeconds: fromInput('worker_timeout_seconds'),
  FragmentConcurrency: fromInput('fragment_concurrency'),
  MaxFragments: fromInput('max_fragments'),
  RedisNodeType: fromInput('redis_node_type', { AllowedValues: REDIS_NODE_TYPES, ConstraintDescription: 'RedisNodeType must be one of the listed node types.' }),
  RedisMultiAz: fromInput('redis_multi_az', BOOL),
  LogRetentionDays: fromInput('log_retention_days'),
  MonostoreRootVolumeGb: fromInput('monostore_root_volume_gb', {
    Description: "Size of the instance's encrypted root volume in GB (file cache and spill space of the control plane).",
  }),
} as const;

export type TerraformParameterName = keyof typeof TERRAFORM_PARAMETERS;

/** The template's own parameters. */
export const TEMPLATE_PARAMETERS: Record<string, CfnParameter> = {
  ImageId: {
    Type: 'AWS::EC2::Image::Id',
    Description: "The PuffinDB image. AWS Marketplace sets this to the listing's AMI in each region.",
  },
  InstanceType: {
    Type: 'String',
    Description: 'Instance type of the control plane (runs Terraform at launch, then `puffindb serve` and metering).',
    Default: 'm6i.large',
    AllowedValues: INSTANCE_TYPES,
    ConstraintDescription: 'InstanceType must be one of the listed x86_64 types.',
  },
  AdminCidr: {
    Type: 'String',
    Description: 'Client CIDR allowed to call the admin API (API Gateway, and the instance on port 8080). Use your office or VPN range.',
    AllowedPattern: CIDR_PATTERN,
    ConstraintDescription: 'AdminCidr must be an IPv4 CIDR block such as 203.0.113.0/24.',
  },
  VpcId: {
    Type: 'String',
    Description: 'Bring your own VPC: its id. Empty creates a new VPC (two private subnets for PuffinDB, one public subnet for the instance).',
    Default: '',
    AllowedPattern: '^(vpc-[0-9a-f]{8,17})?$',
    ConstraintDescription: 'VpcId must be empty or a VPC id such as vpc-0123456789abcdef0.',
  },
  PrivateSubnetIds: {
    Type: 'String',
    Description: 'With VpcId: comma-separated private subnets (at least two, in different availability zones) for the Lambdas and Redis.',
    Default: '',
    AllowedPattern: '^(subnet-[0-9a-f]{8,17}(,subnet-[0-9a-f]{8,17})+)?$',
    ConstraintDescription: 'PrivateSubnetIds must be empty or at least two subnet ids separated by commas.',
  },
  PrivateRouteTableIds: {
    Type: 'String',
    Description: 'With VpcId: comma-separated route tables of those subnets, for the S3 gateway endpoint.',
    Default: '',
    AllowedPattern: '^(rtb-[0-9a-f]{8,17}(,rtb-[0-9a-f]{8,17})*)?$',
    ConstraintDescription: 'PrivateRouteTableIds must be empty or route table ids separated by commas.',
  },
  InstanceSubnetId: {
    Type: 'String',
    Description: 'With VpcId: the subnet of the instance. It must reach the AWS APIs (public subnet or NAT): Terraform calls them at launch.',
    Default: '',
    AllowedPattern: '^(subnet-[0-9a-f]{8,17})?$',
    ConstraintDescription: 'InstanceSubnetId must be empty or a subnet id.',
  },
  RetainDataOnDelete: {
    Type: 'String',
    Description: 'Keep the lake, results and shuffle buckets and their KMS key when the stack is deleted (everything else is destroyed). false deletes the data too.',
    Default: 'true',
    AllowedValues: ['true', 'false'],
  },
};
