// The coordinator, worker and admin Lambdas: one per line of FUNCTION_ENTRIES, each with
// its own role (grants from permissions.ts, nothing shared), its own encrypted log group,
// the buyer's sizing inputs, the private subnets, and the environment the runtime reads.
// Code comes from `npm run bundle`; Terraform hashes the zip, so only a changed bundle
// redeploys.

import { DataAwsIamPolicyDocument } from '@cdktf/provider-aws/lib/data-aws-iam-policy-document/index.js';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role/index.js';
import { IamRolePolicy } from '@cdktf/provider-aws/lib/iam-role-policy/index.js';
import { IamRolePolicyAttachment } from '@cdktf/provider-aws/lib/iam-role-policy-attachment/index.js';
import { LambdaFunction } from '@cdktf/provider-aws/lib/lambda-function/index.js';
import { LambdaFunctionEventInvokeConfig } from '@cdktf/provider-aws/lib/lambda-function-event-invoke-config/index.js';
import { Fn, TerraformLocal } from 'cdktf';
import { Construct } from 'constructs';
import type { Account } from './account.ts';
import { FUNCTION_ENTRIES, HANDLER_EXPORT, type FunctionName } from './artifacts.ts';
import { lambdaEnvironment, type EnvironmentContext } from './environment.ts';
import type { Inputs } from './inputs.ts';
import { justify } from './justify.ts';
import { tfNumber } from './expressions.ts';
import { encryptedLogGroup } from './log-group.ts';
import type { Network } from './network.ts';
import { grantStatements, lambdaRuntimeStatements, type GrantContext } from './permissions.ts';

export const LAMBDA_RUNTIME = 'nodejs20.x';

export interface FunctionsProps {
  inputs: Inputs;
  account: Account;
  network: Network;
  keyArn: string;
  /** Directory holding <arch>/<function>.zip (the stack's artifacts root). */
  artifactsRoot: string;
  grants: Omit<GrantContext, 'functionArn' | 'account' | 'keyArn'>;
  environment: Omit<EnvironmentContext, 'functionName' | 'inputs'>;
}

/** Function names follow from the prefix alone, so roles can name each other's functions without a dependency cycle. */
export function functionName(inputs: Inputs, fn: FunctionName): string {
  return `${inputs.string('name_prefix')}-${fn}`;
}

/** ARN of a function, built from its name (see functionName). */
export function functionArn(inputs: Inputs, account: Account, fn: FunctionName): string {
  return account.arn('lambda', `function:${functionName(inputs, fn)}`);
}

export class Functions extends Construct {
  readonly names: Record<FunctionName, string>;
  readonly arns: Record<FunctionName, string>;
  readonly invokeArns: Record<FunctionName, string>;

  constructor(scope: Construct, id: string, props: FunctionsProps) {
    super(scope, id);
    const { inputs, account, network, keyArn } = props;
    const grantContext: GrantContext = { ...props.grants, account, keyArn, functionArn: (fn) => functionArn(inputs, account, fn) };
    const environmentContext: EnvironmentContext = { ...props.environment, inputs, functionName: (fn) => functionName(inputs, fn) };

    const artifacts = new TerraformLocal(this, 'lambda_artifacts', `${props.artifactsRoot}/\${${inputs.ref('lambda_architecture')}}`).asString;

    const trust = new DataAwsIamPolicyDocument(this, 'lambda_trust', {
      statement: [
        { effect: 'Allow', actions: ['sts:AssumeRole'], principals: [{ type: 'Service', identifiers: ['lambda.amazonaws.com'] }] },
      ],
    });

    const names = {} as Record<FunctionName, string>;
    const arns = {} as Record<FunctionName, string>;
    const invokeArns = {} as Record<FunctionName, string>;
    for (const { name: fn } of FUNCTION_ENTRIES) {
      const name = functionName(inputs, fn);
      const logGroup = encryptedLogGroup(this, `${fn}_logs`, { inputs, keyArn, name: `/aws/lambda/${name}` });
      const role = new IamRole(this, `${fn}_role`, {
        name: `${name}-lambda`,
        description: `Execution role of the PuffinDB ${fn} Lambda`,
        assumeRolePolicy: trust.json,
      });
      const permissions = new DataAwsIamPolicyDocument(this, `${fn}_policy_document`, {
        statement: [...grantStatements(fn, grantContext), ...lambdaRuntimeStatements(account, logGroup.arn)],
      });
      const rolePolicy = new IamRolePolicy(this, `${fn}_role_policy`, {
        name: `${name}-permissions`,
        role: role.id,
        policy: permissions.json,
      });
      // The buyer's policies for external catalogs (their APIs and their tables' buckets).
      new IamRolePolicyAttachment(this, `${fn}_catalog_policies`, {
        count: tfNumber(this, `length(${inputs.ref('catalog_policy_arns')})`),
        role: role.name,
        policyArn: `\${${inputs.ref('catalog_policy_arns')}[count.index]}`,
      });
      const zip = `${artifacts}/${fn}.zip`;
      const lambda = new LambdaFunction(this, fn, {
        functionName: name,
        description: `PuffinDB ${fn}`,
        role: role.arn,
        runtime: LAMBDA_RUNTIME,
        handler: `${fn}.${HANDLER_EXPORT}`,
        filename: zip,
        sourceCodeHash: Fn.filebase64sha256(zip),
        architectures: [inputs.string('lambda_architecture')],
        memorySize: inputs.number(`${fn}_memory_mb`),
        ephemeralStorage: { size: inputs.number(`${fn}_ephemeral_storage_mb`) },
        timeout: inputs.number(`${fn}_timeout_seconds`),
        reservedConcurrentExecutions: inputs.number(`${fn}_reserved_concurrency`),
        vpcConfig: { subnetIds: network.privateSubnetIds, securityGroupIds: [network.lambdaSecurityGroupId] },
        loggingConfig: { logFormat: 'JSON', logGroup: logGroup.name, applicationLogLevel: 'INFO', systemLogLevel: 'WARN' },
        environment: { variables: lambdaEnvironment(fn, environmentContext) },
        // Lambda checks at creation that the role may create network interfaces, and
        // would otherwise create its own log group without retention or encryption.
        dependsOn: [rolePolicy, logGroup],
      });
      justify(
        lambda,
        'CKV_AWS_115',
        `Reserved concurrency is an input (${fn}_reserved_concurrency) defaulting to none, because a new account's whole concurrency limit can be 10 and reserving from it makes the apply fail.`,
      );
      justify(
        lambda,
        'CKV_AWS_116',
        'The coordinator tracks every fragment (its response, or its completion in Redis) and retries failures itself (PUFFINDB_RETRIES); a dead-letter queue would only collect fragments of queries that already failed or finished.',
      );
      justify(
        lambda,
        'CKV_AWS_173',
        'The environment holds names, URLs and limits only; the secrets (the Redis AUTH token, the first admin API key) stay in Secrets Manager and are passed by ARN. Lambda encrypts the environment at rest with its service key.',
      );
      justify(
        lambda,
        'CKV_AWS_272',
        'Code signing needs an AWS Signer profile the buyer owns; the bundle is built from source and pinned by its SHA-256 (source_code_hash).',
      );
      justify(
        lambda,
        'CKV_AWS_50',
        'X-Ray is not wired: there is no X-Ray endpoint in the private VPC and the runtime logs per-query timings as structured JSON instead.',
      );
      // Event invocations (a worker fragment in asynchronous fan-out, a coordinator run of an
      // asynchronous query) are retried by PuffinDB, which knows each attempt; a retry by
      // Lambda would only repeat an attempt already superseded.
      new LambdaFunctionEventInvokeConfig(this, `${fn}_event_invoke`, {
        functionName: lambda.functionName,
        maximumRetryAttempts: 0,
        maximumEventAgeInSeconds: 300,
      });
      names[fn] = lambda.functionName;
      arns[fn] = lambda.arn;
      invokeArns[fn] = lambda.invokeArn;
    }
    this.names = names;
    this.arns = arns;
    this.invokeArns = invokeArns;
  }
}
