// Results at the edge: the CloudFront URL signer against a vector made with openssl (RSA-SHA1
// over the canned policy, CloudFront's base64), the stack's optional distribution and its
// wiring (origin access control, signed URLs, TLS 1.2, logging, the results bucket and key
// policies, the functions' environment and grant), and the rules that guard them.

import assert from 'node:assert/strict';
import { CDN_TEST_PRIVATE_KEY } from '../helpers/cdn-key.ts';
import { createPublicKey, createVerify } from 'node:crypto';
import { describe, test } from 'node:test';
import { cannedPolicy, cloudFrontSigner, signCloudFrontUrl } from '../../runtime/storage/cloudfront-signer.ts';
import { scan, type Block, type TerraformJson } from '../../stacks/rules.ts';
import { dataSource, resource, synthesizedCopy, synthesizedStack } from './synthesized.ts';

// The signature: openssl dgst -sha1 -sign key.pem policy.json | base64 -w0 | tr '+=/' '-_~'
const PRIVATE_KEY = CDN_TEST_PRIVATE_KEY;
const URL_ = 'https://d111111abcdef8.cloudfront.net/results/01J/result.parquet';
const EXPIRES = 1767225600;
const OPENSSL_SIGNATURE = 'eitBcAu6W6oAJuT4FYYXv2e3X9pBre-UM0mDhdG8-GXHIZJeD1n1TaR3rrZLEn83i9o3J3zfhCVoV6qp~915y-aev3~BK5iHSuvWOjN3~M2DCD4d43TxoG2Okpz4N1Pi1CYRQtlq5fCEecNTdKqXwAiQ4r5~rXZSr9r5NB5C1JYkAZEAJlxCYWc7f6-s4fkDqBxknz-2g9DdySQIwqLYTu9UtK6t4os6FE8e~qEUH29zbsX~eesi16l-EihvkTHSehPEr8iHbG~oRdLmk8qUJfs7c0vNxLfGB867VrtX6aPMmfQWtIRXX11wogJM6HYWRPKdeXFkCKhMszTIM9TgFw__';

describe('CloudFront signed URLs', () => {
  test('the canned policy and signature match openssl, and the public key verifies them', () => {
    assert.equal(cannedPolicy(URL_, EXPIRES), `{"Statement":[{"Resource":"${URL_}","Condition":{"DateLessThan":{"AWS:EpochTime":${EXPIRES}}}}]}`);
    const signed = signCloudFrontUrl(URL_, { keyPairId: 'K2JCJMDEHXQW5F', privateKey: PRIVATE_KEY, expiresAtSeconds: EXPIRES });
    assert.equal(signed, `${URL_}?Expires=${EXPIRES}&Signature=${OPENSSL_SIGNATURE}&Key-Pair-Id=K2JCJMDEHXQW5F`);
    const raw = Buffer.from(OPENSSL_SIGNATURE.replace(/-/g, '+').replace(/_/g, '=').replace(/~/g, '/'), 'base64');
    assert.ok(createVerify('RSA-SHA1').update(cannedPolicy(URL_, EXPIRES)).verify(createPublicKey(PRIVATE_KEY), raw));
  });

  test('a signer builds URLs of object keys under its https base, and refuses bad configuration', () => {
    const signer = cloudFrontSigner('https://results.example.com/', 'KID', PRIVATE_KEY);
    const url = new URL(signer.signedUrl('q/01J ABC/result.parquet', EXPIRES));
    assert.equal(url.origin + url.pathname, 'https://results.example.com/q/01J%20ABC/result.parquet');
    assert.deepEqual([url.searchParams.get('Expires'), url.searchParams.get('Key-Pair-Id')], [String(EXPIRES), 'KID']);
    assert.throws(() => cloudFrontSigner('http://results.example.com', 'KID', PRIVATE_KEY), /https/);
    assert.throws(() => cloudFrontSigner('https://results.example.com', 'KID', 'not a key'), /PEM/);
  });
});

describe('the CDN in the stack (enable_cdn)', () => {
  const json = synthesizedStack();
  const variables = json.variable as Record<string, { default: unknown }>;

  test('off by default; every CDN resource is counted on enable_cdn', () => {
    assert.equal(variables.enable_cdn.default, false);
    for (const [type, name] of [['aws_cloudfront_distribution', 'cdn'], ['aws_cloudfront_origin_access_control', 'cdn_origin_access'], ['aws_cloudfront_public_key', 'cdn_public_key'], ['aws_cloudfront_key_group', 'cdn_key_group']]) {
      assert.equal(resource(json, type, name).count, '${var.enable_cdn ? 1 : 0}', `${type}.${name}`);
    }
    assert.equal(json.resource?.aws_cloudfront_origin_access_identity, undefined, 'no legacy origin access identity');
  });

  test('with enable_cdn: OAC to the results bucket, signed URLs, HTTPS and TLS 1.2, logs, preconditions', () => {
    const d = resource(json, 'aws_cloudfront_distribution', 'cdn');
    const origin = (d.origin as Block[])[0];
    assert.equal(origin.domain_name, '${aws_s3_bucket.results.bucket_regional_domain_name}');
    assert.equal(origin.origin_access_control_id, '${aws_cloudfront_origin_access_control.cdn_origin_access[0].id}');
    const oac = resource(json, 'aws_cloudfront_origin_access_control', 'cdn_origin_access');
    assert.deepEqual([oac.origin_access_control_origin_type, oac.signing_behavior, oac.signing_protocol], ['s3', 'always', 'sigv4']);
    const behavior = d.default_cache_behavior as Block;
    assert.equal(behavior.viewer_protocol_policy, 'https-only');
    assert.deepEqual(behavior.trusted_key_groups, ['${aws_cloudfront_key_group.cdn_key_group[0].id}']);
    assert.deepEqual(behavior.allowed_methods, ['GET', 'HEAD']);
    assert.equal(resource(json, 'aws_cloudfront_public_key', 'cdn_public_key').encoded_key, '${var.cdn_public_key_pem}');
    assert.deepEqual((resource(json, 'aws_cloudfront_key_group', 'cdn_key_group').items as string[]), ['${aws_cloudfront_public_key.cdn_public_key[0].id}']);
    const cert = d.viewer_certificate as Block;
    assert.deepEqual([cert.minimum_protocol_version, cert.ssl_support_method, cert.acm_certificate_arn], ['TLSv1.2_2021', 'sni-only', '${var.cdn_acm_certificate_arn}']);
    assert.deepEqual(d.logging_config, { bucket: '${var.access_log_bucket}.s3.amazonaws.com', prefix: 'cdn/', include_cookies: false });
    const pre = ((d.lifecycle as Block).precondition as Block[])[0];
    for (const v of ['cdn_domain_name', 'cdn_acm_certificate_arn', 'cdn_public_key_pem', 'cdn_private_key_secret_arn', 'access_log_bucket']) assert.match(String(pre.condition), new RegExp(`var\\.${v} != ""`));
  });

  test('the results bucket lets only this distribution read, and the key lets CloudFront decrypt', () => {
    assert.equal(resource(json, 'aws_s3_bucket_policy', 'results_policy').policy, '${var.enable_cdn ? data.aws_iam_policy_document.results_cdn_read.json : data.aws_iam_policy_document.results_tls_only.json}');
    const read = dataSource(json, 'aws_iam_policy_document', 'results_cdn_read');
    assert.deepEqual(read.source_policy_documents, ['${data.aws_iam_policy_document.results_tls_only.json}']);
    const [s] = read.statement as Block[];
    assert.deepEqual([s.actions, s.resources], [['s3:GetObject'], ['${aws_s3_bucket.results.arn}/*']]);
    assert.deepEqual(s.principals, [{ type: 'Service', identifiers: ['cloudfront.amazonaws.com'] }]);
    assert.deepEqual(s.condition, [{ test: 'StringEquals', variable: 'AWS:SourceArn', values: ['${join("", aws_cloudfront_distribution.cdn[*].arn)}'] }]);
    assert.equal(resource(json, 'aws_kms_key', 'main').policy, '${var.enable_cdn ? data.aws_iam_policy_document.kms_key_policy_cdn.json : data.aws_iam_policy_document.kms_key_policy.json}');
    const kms = (dataSource(json, 'aws_iam_policy_document', 'kms_key_policy_cdn').statement as Block[])[0];
    assert.deepEqual(kms.actions, ['kms:Decrypt']);
    assert.match(JSON.stringify(kms.condition), /distribution\/\*/);
    // Other buckets keep their TLS-only policy as it was.
    assert.equal(resource(json, 'aws_s3_bucket_policy', 'lake_policy').policy, '${data.aws_iam_policy_document.lake_tls_only.json}');
  });

  test('the functions sign with the CDN: its URL, key id and private key secret, readable by the admin API only', () => {
    const env = ((resource(json, 'aws_lambda_function', 'admin').environment as Block).variables) as Record<string, string>;
    assert.equal(env.PUFFINDB_CDN_URL, '${var.enable_cdn ? "https://${var.cdn_domain_name}" : ""}');
    assert.equal(env.PUFFINDB_CDN_KEY_PAIR_ID, '${join("", aws_cloudfront_public_key.cdn_public_key[*].id)}');
    assert.equal(env.PUFFINDB_CDN_PRIVATE_KEY_SECRET_ARN, '${var.enable_cdn ? var.cdn_private_key_secret_arn : ""}');
    const grant = (doc: string) => (dataSource(json, 'aws_iam_policy_document', doc).statement as Block[]).find((s) => s.sid === 'ReadCdnSigningKey');
    assert.match(String((grant('admin_policy_document')?.resources as string[])[0]), /^\$\{var\.enable_cdn \? var\.cdn_private_key_secret_arn : /);
    assert.equal(grant('coordinator_policy_document'), undefined);
    assert.equal(grant('worker_policy_document'), undefined);
  });

  test('the pipelines schedule invokes the coordinator, allowed for that rule only', () => {
    assert.equal(variables.pipeline_schedule.default, 'rate(1 minute)');
    const rule = resource(json, 'aws_cloudwatch_event_rule', 'pipelines');
    assert.equal(rule.schedule_expression, '${var.pipeline_schedule}');
    const target = resource(json, 'aws_cloudwatch_event_target', 'pipelines_target');
    assert.equal(target.arn, '${aws_lambda_function.coordinator.arn}');
    assert.deepEqual(JSON.parse(String(target.input)), { action: 'run-due-refreshes' });
    const permission = resource(json, 'aws_lambda_permission', 'coordinator_invoke_from_pipelines');
    assert.deepEqual([permission.principal, permission.source_arn, permission.function_name], ['events.amazonaws.com', '${aws_cloudwatch_event_rule.pipelines[0].arn}', '${aws_lambda_function.coordinator.function_name}']);
  });

  const cases: [string, string, (j: TerraformJson) => void][] = [
    ['PUFFINDB_CDN_OPTIONAL', 'CDN on by default', (j) => void (j.variable!.enable_cdn.default = true)],
    ['CKV_AWS_34', 'HTTP allowed', (j) => void ((resource(j, 'aws_cloudfront_distribution', 'cdn').default_cache_behavior as Block).viewer_protocol_policy = 'allow-all')],
    ['CKV_AWS_174', 'TLS 1.0 allowed', (j) => void ((resource(j, 'aws_cloudfront_distribution', 'cdn').viewer_certificate as Block).minimum_protocol_version = 'TLSv1')],
    ['CKV_AWS_86', 'no access logs', (j) => void delete resource(j, 'aws_cloudfront_distribution', 'cdn').logging_config],
    ['PUFFINDB_CDN_OAC', 'legacy origin access identity', (j) => {
      const o = (resource(j, 'aws_cloudfront_distribution', 'cdn').origin as Block[])[0];
      delete o.origin_access_control_id;
      o.s3_origin_config = { origin_access_identity: 'origin-access-identity/cloudfront/E1' };
    }],
    ['PUFFINDB_CDN_SIGNED_URLS', 'unsigned downloads', (j) => void delete (resource(j, 'aws_cloudfront_distribution', 'cdn').default_cache_behavior as Block).trusted_key_groups],
    ['CKV2_AWS_32', 'no security headers', (j) => void delete (resource(j, 'aws_cloudfront_distribution', 'cdn').default_cache_behavior as Block).response_headers_policy_id],
  ];
  for (const [check, what, mutate] of cases) {
    test(`${check} fires on aws_cloudfront_distribution.cdn: ${what}`, () => {
      const j = synthesizedCopy();
      mutate(j);
      assert.ok(scan(j).unjustified.some((f) => f.check === check && f.address === 'aws_cloudfront_distribution.cdn'), JSON.stringify(scan(j).unjustified));
    });
  }
});
