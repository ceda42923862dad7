// docs/DEPLOY.md, generated from the definitions the stack itself uses: the inputs and
// outputs tables, the environment the functions receive, and the scanner findings the
// design accepts with their reasons. `npm run docs:deploy` rewrites the file, and
// test/stacks/docs.test.ts fails when the committed file differs from this output.

import { Testing } from 'cdktf';
import { writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SETTINGS } from '../runtime/settings.ts';
import { ARTIFACTS_DIR, FUNCTION_ENTRIES, SERVER_ENTRY } from './artifacts.ts';
import { DEPLOYMENT_SETTINGS, NOT_SET_ON_LAMBDA, NOT_SET_ON_MONOSTORE, ONLY_ON_LAMBDAS } from './environment.ts';
import { INPUTS, type InputGroup, type InputSpec } from './inputs.ts';
import type { Justifications } from './justify.ts';
import { OUTPUTS } from './outputs.ts';
import { PuffinStack, STACK_NAME } from './puffindb-stack.ts';

export const DEPLOY_DOC_PATH = 'docs/DEPLOY.md';

const GROUP_TITLES: Record<InputGroup, string> = {
  general: 'General',
  network: 'Network',
  storage: 'Storage',
  state: 'State (Redis)',
  functions: 'Functions',
  api: 'API',
  cdn: 'CDN (results at the edge)',
  monostore: 'Monostore',
};

const cell = (text: string): string => text.replaceAll('|', '\\|').replaceAll('\n', ' ');

function renderDefault(spec: InputSpec): string {
  return `\`${JSON.stringify(spec.default)}\``;
}

function inputsSection(): string[] {
  const lines: string[] = ['## Inputs', '', 'Set them with `-var name=value` or a `terraform.tfvars` file next to the synthesized module.', ''];
  for (const group of Object.keys(GROUP_TITLES) as InputGroup[]) {
    const rows = (Object.entries(INPUTS) as [string, InputSpec][]).filter(([, spec]) => spec.group === group);
    if (rows.length === 0) continue;
    lines.push(`### ${GROUP_TITLES[group]}`, '', '| Name | Type | Default | Description |', '| --- | --- | --- | --- |');
    for (const [name, spec] of rows) {
      lines.push(`| \`${name}\` | \`${spec.type}\` | ${renderDefault(spec)} | ${cell(spec.description)} |`);
    }
    lines.push('');
  }
  return lines;
}

function outputsSection(): string[] {
  return [
    '## Outputs',
    '',
    '| Name | Description |',
    '| --- | --- |',
    ...Object.entries(OUTPUTS).map(([name, spec]) => `| \`${name}\` | ${cell(spec.description)} |`),
    '',
  ];
}

function environmentSection(): string[] {
  const deployment = Object.values(DEPLOYMENT_SETTINGS).map((s) => `| \`${s.env}\` | ${cell(s.description)} |`);
  const notSet = (map: Partial<Record<keyof typeof SETTINGS, string>>): string[] =>
    Object.entries(map).map(([key, why]) => `| \`${SETTINGS[key as keyof typeof SETTINGS].env}\` | ${cell(why ?? '')} |`);
  return [
    '## Function environment',
    '',
    'Every function receives every setting of `runtime/settings.ts` that applies in AWS, derived from the inputs above',
    "(DuckDB threads and memory limit from the function's memory, the file cache from its /tmp size, timeouts from the",
    'Lambda timeouts), plus these settings only a deployment has:',
    '',
    '| Variable | Meaning |',
    '| --- | --- |',
    ...deployment,
    '',
    'Not set on the Lambdas:',
    '',
    '| Variable | Why |',
    '| --- | --- |',
    ...notSet(NOT_SET_ON_LAMBDA),
    '',
    'Set on some Lambdas only:',
    '',
    '| Variable | Set on | Why not on the others |',
    '| --- | --- | --- |',
    ...Object.entries(ONLY_ON_LAMBDAS).map(([key, only]) => `| \`${SETTINGS[key as keyof typeof SETTINGS].env}\` | ${only?.on.join(', ') ?? ''} | ${cell(only?.why ?? '')} |`),
    '',
    'Not set on the Monostore:',
    '',
    '| Variable | Why |',
    '| --- | --- |',
    ...notSet(NOT_SET_ON_MONOSTORE),
    '',
  ];
}

/** The synthesized stack's justifications, so the document shows exactly what the rules test accepts. */
export function synthesizedJustifications(): Justifications {
  const stack = new PuffinStack(Testing.app(), STACK_NAME);
  const json = JSON.parse(Testing.synth(stack)) as { locals?: { scanner_justifications?: Justifications } };
  return json.locals?.scanner_justifications ?? {};
}

function findingsSection(): string[] {
  const rows: string[] = [];
  for (const [address, checks] of Object.entries(synthesizedJustifications()).sort(([a], [b]) => a.localeCompare(b))) {
    for (const [check, reason] of Object.entries(checks).sort(([a], [b]) => a.localeCompare(b))) {
      rows.push(`| ${check} | \`${address}\` | ${cell(reason)} |`);
    }
  }
  return [
    '## Scanner findings accepted by design',
    '',
    'Everything else checkov/trivy check for these resource types passes (see `test/stacks/rules.test.ts`). These',
    'findings are deliberate; each carries its reason in the synthesized module (`locals.scanner_justifications`).',
    '',
    '| Check | Resource | Reason |',
    '| --- | --- | --- |',
    ...rows,
    '',
  ];
}

export function renderDeployDoc(): string {
  const lambdas = FUNCTION_ENTRIES.map((f) => `\`${f.name}\``).join(', ');
  return [
    '# Deploying PuffinDB to AWS',
    '',
    '<!-- Generated by `npm run docs:deploy` from stacks/ (inputs.ts, outputs.ts, environment.ts and the',
    '     justifications in the constructs). Edit those and regenerate; a test fails when this file drifts. -->',
    '',
    'PuffinDB deploys into your own AWS account as a Terraform module synthesized by CDKTF. Synthesis is offline and',
    'needs no credentials; `terraform apply` needs credentials for the target account.',
    '',
    '```sh',
    'npm run bundle                 # dist/lambda/x86_64/*.zip (add `-- --arch arm64` for Graviton)',
    'npm run synth                  # cdktf.out/stacks/puffindb/cdk.tf.json',
    `cd cdktf.out/stacks/${STACK_NAME}`,
    'terraform init',
    'terraform apply -var aws_region=eu-west-1',
    '```',
    '',
    `The Lambda zips (${lambdas}; \`${SERVER_ENTRY.name}\` for the Monostore) are read from \`${ARTIFACTS_DIR}/<architecture>/\``,
    'of the checkout (or `lambda_artifacts_dir`), and each function\'s `source_code_hash` is the zip\'s SHA-256, so only a',
    'changed bundle redeploys. State is kept in a local `terraform.tfstate`; to use a remote backend, put a',
    '`backend_override.tf.json` (or `.tf`) beside `cdk.tf.json`.',
    '',
    '## What it creates',
    '',
    '- **Network**: a VPC with private subnets in `az_count` availability zones (or your `vpc_id` and `private_subnet_ids`),',
    '  no internet gateway and no NAT. The AWS APIs the functions call are reached through VPC endpoints: S3 (gateway',
    '  endpoint: lake, results, shuffle), Lambda (interface endpoint: the coordinator invokes workers, the admin function',
    '  invokes the coordinator) and Secrets Manager (interface endpoint: the Redis auth token). Security groups allow only',
    "  those flows and Redis's port; the VPC's default security group is left without rules.",
    '- **Storage**: lake (versioned), results and shuffle (expiring) buckets, SSE-KMS with the deployment key and bucket',
    '  keys, all public access blocked, ACLs disabled, TLS-only bucket policies.',
    '- **State**: ElastiCache for Redis with TLS, at-rest encryption and an AUTH token generated into Secrets Manager.',
    '- **Functions**: coordinator, worker and admin Lambdas in the private subnets, one least-privilege role each, JSON',
    '  logs in encrypted log groups with `log_retention_days` retention.',
    '- **API**: an API Gateway HTTP API in front of the admin function with JSON access logs and throttling. Requests are',
    '  authenticated by the admin function with PuffinDB API keys (bearer tokens); `api_allowed_cidrs` narrows callers.',
    '  HTTP APIs wait at most 30 s for a response: long queries go through `/v1/queries` (submit, then poll).',
    '- **Monostore** (off by default): one Amazon Linux 2023 instance running `puffindb serve` as a long-lived',
    '  coordinator, IMDSv2 only, encrypted root volume, no public address.',
    '- One customer-managed KMS key (rotation on) for all of the above. Readers of the lake outside this deployment need',
    '  `kms:Decrypt` on it (output `kms_key_arn`).',
    '',
    ...inputsSection(),
    ...outputsSection(),
    ...environmentSection(),
    ...findingsSection(),
  ].join('\n');
}

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const target = resolve(dirname(fileURLToPath(import.meta.url)), '..', DEPLOY_DOC_PATH);
  writeFileSync(target, renderDeployDoc());
  console.log(`wrote ${DEPLOY_DOC_PATH}`);
}
