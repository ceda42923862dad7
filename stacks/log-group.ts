// Every log group the stack creates is encrypted with the deployment key and keeps logs
// for the buyer's retention period (CKV_AWS_158, CKV_AWS_338, CKV_AWS_66).

import { CloudwatchLogGroup } from '@cdktf/provider-aws/lib/cloudwatch-log-group/index.js';
import type { Construct } from 'constructs';
import type { Inputs } from './inputs.ts';

export interface LogGroupProps {
  inputs: Inputs;
  keyArn: string;
  name: string;
  /** A count expression token when the log group belongs to an optional resource. */
  count?: number;
}

export function encryptedLogGroup(scope: Construct, id: string, props: LogGroupProps): CloudwatchLogGroup {
  return new CloudwatchLogGroup(scope, id, {
    name: props.name,
    retentionInDays: props.inputs.number('log_retention_days'),
    kmsKeyId: props.keyArn,
    ...(props.count === undefined ? {} : { count: props.count }),
  });
}
