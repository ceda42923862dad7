import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { synthesizedStack } from './synthesized.ts';

// The AWS provider cannot be downloaded here, so `terraform validate` cannot check the
// module. Terraform itself can still check every part that needs no provider: the
// variables (types, defaults, validation rules) and every expression in the module that
// refers only to inputs and functions, evaluated with the default inputs by applying a
// configuration made of those variables and one output per expression.

const run = promisify(execFile);
const TERRAFORM = ['/usr/local/bin/terraform', '/usr/bin/terraform'].find((p) => existsSync(p));
const ENV = { ...process.env, CHECKPOINT_DISABLE: '1', TF_IN_AUTOMATION: '1', TF_INPUT: '0' };

/** Every string in the module that interpolates, and refers to nothing but inputs. */
function inputOnlyExpressions(value: unknown, out = new Set<string>()): Set<string> {
  if (typeof value === 'string') {
    const refersElsewhere = /\b(aws_\w+|data|local|module|count|each|self)\.|\$\{aws_/.test(value);
    if (value.includes('${') && !refersElsewhere) out.add(value);
  } else if (Array.isArray(value)) {
    for (const v of value) inputOnlyExpressions(v, out);
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) if (k !== 'variable' && k !== '//') inputOnlyExpressions(v, out);
  }
  return out;
}

async function terraform(dir: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  if (!TERRAFORM) throw new Error('no terraform binary');
  return run(TERRAFORM, args, { cwd: dir, env: ENV, timeout: 60_000 });
}

describe('the synthesized module under Terraform (no provider needed)', { skip: TERRAFORM ? false : 'terraform is not installed' }, () => {
  let dir: string;
  const json = synthesizedStack();
  const expressions = [...inputOnlyExpressions(json)].sort();
  let values: Record<string, unknown> = {};

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'puffindb-tf-'));
    const output = Object.fromEntries(expressions.map((e, i) => [`e${i}`, { value: e }]));
    await writeFile(join(dir, 'main.tf.json'), JSON.stringify({ variable: json.variable, output }, null, 1));
    await terraform(dir, ['init', '-no-color', '-backend=false']);
    await terraform(dir, ['apply', '-no-color', '-auto-approve', '-lock=false']);
    const { stdout } = await terraform(dir, ['output', '-json', '-no-color']);
    const raw = JSON.parse(stdout) as Record<string, { value: unknown }>;
    values = Object.fromEntries(expressions.map((e, i) => [e, raw[`e${i}`]?.value]));
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('terraform validate accepts the variables, their types and validation rules', async () => {
    const { stdout } = await terraform(dir, ['validate', '-no-color']);
    assert.match(stdout, /The configuration is valid/);
  });

  test('every input-only expression evaluates with the default inputs, to the intended value', () => {
    console.log(`${expressions.length} expressions evaluated by terraform`);
    assert.ok(expressions.length > 30);
    const expect: Record<string, unknown> = {
      '${min(6, max(1, ceil(var.worker_memory_mb / 1769)))}': '2',
      '${floor(var.worker_memory_mb * 3 / 4)}MB': '2256MB',
      '${floor(var.worker_ephemeral_storage_mb * 1048576 / 2)}': '2147483648',
      '${max(1, var.coordinator_timeout_seconds - 5) * 1000}': '895000',
      '${var.worker_timeout_seconds * 1000}': '300000',
      '${var.vpc_id == "" ? var.az_count : 0}': '2',
      '${var.redis_multi_az ? 2 : 1}': '2',
      '${var.monostore_enabled ? 1 : 0}': '0',
      '${var.access_log_bucket == "" ? 0 : 1}': '0',
      '${var.enable_cdn ? 1 : 0}': '0',
      '${var.pipeline_schedule == "" ? 0 : 1}': '1',
      '${min(var.admin_timeout_seconds, 30) * 1000}': '30000',
      '${join(",", var.api_allowed_cidrs)}': '',
      '${var.name_prefix}-worker': 'puffindb-worker',
      '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-${var.monostore_architecture}': '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64',
      '${coalesce(var.lambda_artifacts_dir, format("%s/../../../dist/lambda", path.module))}': './../../../dist/lambda',
    };
    for (const [expression, value] of Object.entries(expect)) {
      assert.ok(expression in values, `the module contains ${expression}`);
      assert.equal(String(values[expression]), value, expression);
    }
    for (const e of expressions) assert.notEqual(values[e], undefined, `${e} evaluated`);
  });

  test('the validation rules refuse bad inputs with their own messages', async () => {
    const refused = async (variable: string, message: RegExp) => {
      await assert.rejects(terraform(dir, ['plan', '-no-color', '-lock=false', '-var', variable]), (e: { stderr?: string }) => message.test(String(e.stderr)));
    };
    await refused('lambda_architecture=mips', /lambda_architecture must be one of x86_64, arm64/);
    await refused('private_subnet_ids=["subnet-1"]', /at least two subnets/);
    await refused('log_retention_days=42', /log_retention_days must be one of/);
    await refused('name_prefix=Bad_Prefix', /name_prefix must be 2-20 characters/);
    await refused('name_prefix=ends-', /name_prefix must be 2-20 characters/);
    await refused('worker_memory_mb=20000', /worker_memory_mb must be between 128 and 10240 MB/);
    await refused('api_allowed_cidrs=["not-a-cidr"]', /api_allowed_cidrs must hold CIDR blocks/);
    // The pipelines' schedule and the CDN's inputs, in one plan (Terraform reports every failed validation).
    await assert.rejects(
      terraform(dir, ['plan', '-no-color', '-lock=false', '-var', 'pipeline_schedule=every minute', '-var', 'cdn_acm_certificate_arn=arn:aws:acm:eu-west-1:111122223333:certificate/x', '-var', 'cdn_private_key_secret_arn=key.pem']),
      (e: { stderr?: string }) => [/pipeline_schedule must be empty or an EventBridge/, /ACM certificate ARN in us-east-1/, /must be a Secrets Manager secret ARN/].every((m) => m.test(String(e.stderr))),
    );
  });
});
