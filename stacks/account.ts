// Where the stack is being applied: account, partition and region, read at plan time so
// nothing names an account or builds an ARN for the wrong partition (aws-cn, aws-us-gov).

import { DataAwsCallerIdentity } from '@cdktf/provider-aws/lib/data-aws-caller-identity/index.js';
import { DataAwsPartition } from '@cdktf/provider-aws/lib/data-aws-partition/index.js';
import { DataAwsRegion } from '@cdktf/provider-aws/lib/data-aws-region/index.js';
import { Construct } from 'constructs';

export class Account extends Construct {
  readonly accountId: string;
  readonly partition: string;
  readonly region: string;
  /** amazonaws.com, or amazonaws.com.cn in China: the suffix of service principals. */
  readonly dnsSuffix: string;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    const caller = new DataAwsCallerIdentity(this, 'current');
    const partition = new DataAwsPartition(this, 'current_partition');
    const region = new DataAwsRegion(this, 'current_region');
    this.accountId = caller.accountId;
    this.partition = partition.partition;
    this.dnsSuffix = partition.dnsSuffix;
    this.region = region.region;
  }

  /** ARN of a resource in this account and region, e.g. arn('lambda', 'function:x'). */
  arn(service: string, resource: string): string {
    return `arn:${this.partition}:${service}:${this.region}:${this.accountId}:${resource}`;
  }

  /** Regional service principal or endpoint name, e.g. 'logs.us-east-1.amazonaws.com'. */
  servicePrincipal(service: string): string {
    return `${service}.${this.region}.${this.dnsSuffix}`;
  }
}
