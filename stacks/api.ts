// The admin API's front door: an API Gateway HTTP API proxying every route to the admin
// Lambda, with JSON access logs and stage-wide throttling. Authentication is PuffinDB's own:
// every route except /v1/health requires a bearer API key that the admin function checks
// against the hashed keys in Redis, and api_allowed_cidrs narrows callers by source IP.
// An HTTP API has no resource policy to filter IPs, and IAM or a Lambda authorizer would
// put a second credential in front of the same keys, so the route's gateway-level
// authorization is NONE (justified below as CKV_AWS_309).
//
// An HTTP API waits at most 30 s for an integration: synchronous /v1/query answers what
// finishes within that, and longer queries go through /v1/queries (submit, then poll).

import { Apigatewayv2Api } from '@cdktf/provider-aws/lib/apigatewayv2-api/index.js';
import { Apigatewayv2Integration } from '@cdktf/provider-aws/lib/apigatewayv2-integration/index.js';
import { Apigatewayv2Route } from '@cdktf/provider-aws/lib/apigatewayv2-route/index.js';
import { Apigatewayv2Stage } from '@cdktf/provider-aws/lib/apigatewayv2-stage/index.js';
import { LambdaPermission } from '@cdktf/provider-aws/lib/lambda-permission/index.js';
import { Construct } from 'constructs';
import type { Account } from './account.ts';
import { tfNumber } from './expressions.ts';
import type { Inputs } from './inputs.ts';
import { justify } from './justify.ts';
import { encryptedLogGroup } from './log-group.ts';

export const API_GATEWAY_MAX_INTEGRATION_SECONDS = 30;

/** One JSON object per request; $context variables of HTTP APIs. */
const ACCESS_LOG_FORMAT = JSON.stringify({
  requestId: '$context.requestId',
  time: '$context.requestTime',
  ip: '$context.identity.sourceIp',
  userAgent: '$context.identity.userAgent',
  method: '$context.httpMethod',
  path: '$context.path',
  status: '$context.status',
  protocol: '$context.protocol',
  responseLength: '$context.responseLength',
  latencyMs: '$context.responseLatency',
  integrationLatencyMs: '$context.integrationLatency',
  integrationError: '$context.integrationErrorMessage',
});

export interface ApiProps {
  inputs: Inputs;
  account: Account;
  keyArn: string;
  adminFunctionName: string;
  adminFunctionArn: string;
}

export class Api extends Construct {
  readonly url: string;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    const { inputs, account, keyArn } = props;
    const prefix = inputs.string('name_prefix');
    const accessLogs = encryptedLogGroup(this, 'api_access_logs', { inputs, keyArn, name: `/aws/apigateway/${prefix}-api` });

    const api = new Apigatewayv2Api(this, 'admin_api', {
      name: `${prefix}-api`,
      description: 'PuffinDB admin API (SQL, queries, tables, keys, Iceberg REST catalog)',
      protocolType: 'HTTP',
    });
    const integration = new Apigatewayv2Integration(this, 'admin_integration', {
      apiId: api.id,
      integrationType: 'AWS_PROXY',
      integrationUri: props.adminFunctionArn,
      integrationMethod: 'POST',
      payloadFormatVersion: '2.0',
      timeoutMilliseconds: tfNumber(this, `min(${inputs.ref('admin_timeout_seconds')}, ${API_GATEWAY_MAX_INTEGRATION_SECONDS}) * 1000`),
    });
    const route = new Apigatewayv2Route(this, 'admin_default_route', {
      apiId: api.id,
      routeKey: '$default',
      target: `integrations/${integration.id}`,
      authorizationType: 'NONE',
    });
    justify(
      route,
      'CKV_AWS_309',
      'The admin function authenticates every request itself with bearer API keys (hashed in Redis) and enforces api_allowed_cidrs; a gateway authorizer would duplicate that check with a second credential.',
    );
    new Apigatewayv2Stage(this, 'admin_stage', {
      apiId: api.id,
      name: '$default',
      autoDeploy: true,
      accessLogSettings: { destinationArn: accessLogs.arn, format: ACCESS_LOG_FORMAT },
      defaultRouteSettings: {
        throttlingRateLimit: inputs.number('api_throttling_rate_limit'),
        throttlingBurstLimit: inputs.number('api_throttling_burst_limit'),
        detailedMetricsEnabled: true,
      },
    });
    new LambdaPermission(this, 'admin_invoke_from_api', {
      statementId: 'AllowInvokeFromHttpApi',
      action: 'lambda:InvokeFunction',
      functionName: props.adminFunctionName,
      principal: 'apigateway.amazonaws.com',
      // Only this API, any stage and route, may invoke the admin function.
      sourceArn: `${api.executionArn}/*`,
      sourceAccount: account.accountId,
    });
    this.url = api.apiEndpoint;
  }
}
