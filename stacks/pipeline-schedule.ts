// The EventBridge rule that runs the pipelines in AWS: every pipeline_schedule (default
// rate(1 minute), the shortest EventBridge has) it invokes the coordinator Lambda with
// {"action":"run-due-refreshes"} (runtime/functions/coordinator.ts), which refreshes the
// materialized views that are due under their leases in Redis. The Lambda's resource policy
// lets only this rule invoke it (source_arn), and only when a schedule is set (count).

import { CloudwatchEventRule } from '@cdktf/provider-aws/lib/cloudwatch-event-rule/index.js';
import { CloudwatchEventTarget } from '@cdktf/provider-aws/lib/cloudwatch-event-target/index.js';
import { LambdaPermission } from '@cdktf/provider-aws/lib/lambda-permission/index.js';
import { Construct } from 'constructs';
import { tfNumber, tfString } from './expressions.ts';
import type { Inputs } from './inputs.ts';

/** The event the rule sends (runtime/functions/coordinator.ts RUN_DUE_REFRESHES). */
export const PIPELINE_EVENT = { action: 'run-due-refreshes' } as const;

export class PipelineSchedule extends Construct {
  constructor(scope: Construct, id: string, props: { inputs: Inputs; coordinatorFunctionName: string; coordinatorFunctionArn: string }) {
    super(scope, id);
    const { inputs } = props;
    const count = () => tfNumber(this, `${inputs.ref('pipeline_schedule')} == "" ? 0 : 1`);
    const rule = new CloudwatchEventRule(this, 'pipelines', {
      count: count(),
      name: `${inputs.string('name_prefix')}-pipelines`,
      description: 'PuffinDB: refresh the materialized views whose schedule is due',
      scheduleExpression: inputs.string('pipeline_schedule'),
    });
    const ruleArn = tfString(this, `${rule.terraformResourceType}.pipelines[0].arn`);
    new CloudwatchEventTarget(this, 'pipelines_target', {
      count: count(),
      rule: tfString(this, `${rule.terraformResourceType}.pipelines[0].name`),
      arn: props.coordinatorFunctionArn,
      input: JSON.stringify(PIPELINE_EVENT),
      // A missed tick is caught up by the next one (due times, not ticks, are what run).
      retryPolicy: { maximumRetryAttempts: 0, maximumEventAgeInSeconds: 60 },
    });
    new LambdaPermission(this, 'coordinator_invoke_from_pipelines', {
      count: count(),
      statementId: 'PipelinesSchedule',
      action: 'lambda:InvokeFunction',
      functionName: props.coordinatorFunctionName,
      // EventBridge's principal is global (not regional like CloudWatch Logs').
      principal: 'events.amazonaws.com',
      sourceArn: ruleArn,
    });
  }
}
