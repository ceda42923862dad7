import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SETTINGS } from '../../runtime/settings.ts';
import { FUNCTION_ENTRIES } from '../../stacks/artifacts.ts';
import { DEPLOYMENT_SETTINGS, NOT_SET_ON_LAMBDA, NOT_SET_ON_MONOSTORE, ONLY_ON_LAMBDAS, type SettingKey } from '../../stacks/environment.ts';
import type { Block } from '../../stacks/rules.ts';
import { resource, synthesizedStack } from './synthesized.ts';

const json = synthesizedStack();
const lambdaEnv = (fn: string) => ((resource(json, 'aws_lambda_function', fn).environment as Block).variables ?? {}) as Record<string, string>;
const monostoreEnv = (): Record<string, string> => {
  const userData = String(resource(json, 'aws_instance', 'monostore_instance').user_data);
  const file = /cat > \/etc\/puffindb\.env <<'ENV'\n([\s\S]*?)\nENV\n/.exec(userData);
  assert.ok(file, 'user data writes /etc/puffindb.env');
  return Object.fromEntries(file[1].split('\n').map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
};
// Deployment-only settings have their own test below.
const settingKeys = (Object.keys(SETTINGS) as SettingKey[]).filter((k) => !(k in DEPLOYMENT_SETTINGS));

describe('environment wiring', () => {
  test('every runtime setting is set on every Lambda, except the stated ones', () => {
    console.log(`not set on Lambda: ${Object.entries(NOT_SET_ON_LAMBDA).map(([k, why]) => `${SETTINGS[k as SettingKey].env} (${why})`).join('; ')}`);
    for (const { name } of FUNCTION_ENTRIES) {
      const env = lambdaEnv(name);
      for (const key of settingKeys) {
        const variable = SETTINGS[key].env;
        const only = ONLY_ON_LAMBDAS[key];
        if (NOT_SET_ON_LAMBDA[key]) assert.equal(env[variable], undefined, `${name} must not set ${variable}: ${NOT_SET_ON_LAMBDA[key]}`);
        else if (only && !only.on.includes(name)) assert.equal(env[variable], undefined, `${name} must not set ${variable}: ${only.why}`);
        else assert.ok(typeof env[variable] === 'string' && env[variable] !== '', `${name} sets ${variable}`);
      }
    }
  });

  test('the deployment-only settings (Redis, results, coordinator) are set on every Lambda', () => {
    for (const { name } of FUNCTION_ENTRIES) {
      const env = lambdaEnv(name);
      for (const setting of Object.values(DEPLOYMENT_SETTINGS)) {
        if (setting === DEPLOYMENT_SETTINGS.apiAllowedCidrs) continue;
        assert.ok(env[setting.env], `${name} sets ${setting.env}`);
      }
    }
    assert.equal(lambdaEnv('admin')[DEPLOYMENT_SETTINGS.apiAllowedCidrs.env], '${join(",", var.api_allowed_cidrs)}');
    assert.equal(lambdaEnv('worker')[DEPLOYMENT_SETTINGS.apiAllowedCidrs.env], undefined, 'only the API enforces client CIDRs');
    const worker = lambdaEnv('worker');
    assert.match(worker.REDIS_URL, /^\$\{format\("rediss:\/\/%s:%d", aws_elasticache_replication_group\.redis\.primary_endpoint_address, 6379\)\}$/);
    assert.equal(worker.PUFFINDB_REDIS_AUTH_SECRET_ARN, '${aws_secretsmanager_secret.redis_auth_token_secret.arn}');
  });

  test('every reason for leaving a setting off names a real setting and a Lambda that exists', () => {
    const names = FUNCTION_ENTRIES.map((f) => f.name);
    for (const [key, { on, why }] of Object.entries(ONLY_ON_LAMBDAS)) {
      assert.ok(key in SETTINGS && !(key in NOT_SET_ON_LAMBDA), `${key} is a setting not left off every Lambda`);
      assert.ok(on.length > 0 && on.every((fn) => names.includes(fn)), `${key} is set on existing Lambdas`);
      assert.ok(why.length >= 20, `${key} says why`);
    }
  });

  test('the first admin key reaches the API only by reference, readable by exactly the roles that read it', () => {
    const arn = '${var.admin_key_secret_arn != "" ? var.admin_key_secret_arn : aws_secretsmanager_secret.admin_key_secret[0].arn}';
    assert.equal(lambdaEnv('admin').PUFFINDB_ADMIN_KEY_SECRET_ARN, arn);
    assert.equal(monostoreEnv().PUFFINDB_ADMIN_KEY_SECRET_ARN, arn);
    for (const fn of ['admin', 'coordinator', 'worker']) assert.equal(lambdaEnv(fn).PUFFINDB_ADMIN_KEY, undefined, `${fn} holds no admin key`);
    assert.equal(monostoreEnv().PUFFINDB_ADMIN_KEY, undefined);
    const readers = Object.entries(json.data?.aws_iam_policy_document ?? {})
      .filter(([, doc]) => (doc.statement as Block[]).some((st) => ((st.resources ?? []) as string[]).includes(arn)))
      .map(([name, doc]) => {
        const st = (doc.statement as Block[]).filter((x) => ((x.resources ?? []) as string[]).includes(arn));
        assert.deepEqual(st.map((x) => [x.actions, x.resources]), [[['secretsmanager:GetSecretValue'], [arn]]], `${name} may only read the admin key`);
        return name;
      })
      .sort();
    assert.deepEqual(readers, ['admin_policy_document', 'monostore_policy_document']);
    const secret = resource(json, 'aws_secretsmanager_secret', 'admin_key_secret');
    assert.equal(secret.count, '${var.admin_key_secret_arn != "" ? 0 : 1}', 'generated only when the buyer brings none');
    assert.match(String(secret.kms_key_id), /aws_kms_key\./);
    const version = resource(json, 'aws_secretsmanager_secret_version', 'admin_key_version');
    assert.equal(version.secret_string, '${data.aws_secretsmanager_random_password.admin_key[0].random_password}');
    assert.deepEqual((version.lifecycle as Block).ignore_changes, ['secret_string']);
    assert.equal((json as { output?: Record<string, Block> }).output?.admin_key_secret_arn?.value, arn);
  });

  test('the tuning settings follow the buyer\'s inputs, in the runtime\'s units', () => {
    const coordinator = lambdaEnv('coordinator');
    assert.equal(coordinator.PUFFINDB_ASYNC_THRESHOLD, '${var.async_threshold}');
    assert.equal(coordinator.PUFFINDB_RESULT_TTL_MS, '${var.result_ttl_seconds * 1000}');
    assert.equal(coordinator.PUFFINDB_LOG_FLUSH_INTERVAL_MS, '${var.log_flush_interval_seconds * 1000}');
    assert.equal(lambdaEnv('admin').PUFFINDB_API_RATE_PER_SECOND, '${var.api_key_rate_per_second}');
    assert.equal(monostoreEnv().PUFFINDB_RESULT_INLINE_LIMIT_BYTES, '${var.result_inline_limit_bytes}');
  });

  test('values follow each function\'s sizing and the buckets', () => {
    const worker = lambdaEnv('worker');
    assert.equal(worker.PUFFINDB_THREADS, '${min(6, max(1, ceil(var.worker_memory_mb / 1769)))}');
    assert.equal(lambdaEnv('admin').PUFFINDB_MEMORY_LIMIT, '${floor(var.admin_memory_mb * 3 / 4)}MB');
    assert.equal(worker.PUFFINDB_CACHE_BYTES, '${floor(var.worker_ephemeral_storage_mb * 1048576 / 2)}');
    assert.ok(worker.PUFFINDB_CACHE_DIR.startsWith('/tmp/') && worker.PUFFINDB_HOME.startsWith('/tmp/'), 'only /tmp is writable on Lambda');
    assert.equal(worker.PUFFINDB_WAREHOUSE, 's3://${aws_s3_bucket.lake.bucket}/');
    assert.equal(worker.PUFFINDB_SHUFFLE_URL, 's3://${aws_s3_bucket.shuffle.bucket}/');
    assert.equal(worker.PUFFINDB_INVOKE_TIMEOUT_MS, '${var.worker_timeout_seconds * 1000}');
    assert.equal(worker.PUFFINDB_WORKER_FUNCTION, '${var.name_prefix}-worker');
  });

  test('no Lambda sets a variable Lambda reserves', () => {
    const reserved = /^(AWS_REGION|AWS_DEFAULT_REGION|AWS_EXECUTION_ENV|AWS_LAMBDA_\w+|AWS_ACCESS_KEY\w*|AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN|_HANDLER|_X_AMZN_TRACE_ID|LAMBDA_TASK_ROOT|LAMBDA_RUNTIME_DIR|TZ)$/;
    for (const { name } of FUNCTION_ENTRIES) {
      for (const key of Object.keys(lambdaEnv(name))) assert.doesNotMatch(key, reserved, `${name} sets reserved ${key}`);
    }
  });

  test('the Monostore gets every runtime setting except the stated ones', () => {
    const env = monostoreEnv();
    for (const key of settingKeys) {
      const variable = SETTINGS[key].env;
      if (NOT_SET_ON_MONOSTORE[key]) assert.equal(env[variable], undefined, `Monostore must not set ${variable}`);
      else assert.ok(env[variable], `Monostore sets ${variable}`);
    }
    for (const setting of Object.values(DEPLOYMENT_SETTINGS)) assert.ok(setting.env in env, `Monostore sets ${setting.env}`);
    assert.ok(!String(resource(json, 'aws_instance', 'monostore_instance').user_data).match(/\$\{(?!aws_|var\.|data\.|format|join|floor|max)/), 'user data interpolates only Terraform references');
  });
});

describe('asynchronous invocations', () => {
  test('Lambda never retries an Event invocation itself: PuffinDB retries by attempt', () => {
    for (const { name } of FUNCTION_ENTRIES) {
      const config = resource(json, 'aws_lambda_function_event_invoke_config', `${name}_event_invoke`);
      assert.equal(config.maximum_retry_attempts, 0, name);
    }
  });
});
