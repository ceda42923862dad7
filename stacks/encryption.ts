// One customer-managed KMS key for the deployment's data at rest: the three buckets
// (SSE-KMS with bucket keys), the log groups, the Redis auth-token secret and Redis's
// at-rest encryption. A customer key rather than S3-managed AES256 because it gives the
// buyer one place to audit (CloudTrail) and revoke access to every copy of the data, and
// scanners ask for it (CKV_AWS_145, CKV_AWS_158, CKV_AWS_149, CKV_AWS_191). Bucket keys
// keep the KMS request rate, and so its cost and quota, independent of how many objects
// thousands of workers read.

import { DataAwsIamPolicyDocument } from '@cdktf/provider-aws/lib/data-aws-iam-policy-document/index.js';
import { KmsAlias } from '@cdktf/provider-aws/lib/kms-alias/index.js';
import { KmsKey } from '@cdktf/provider-aws/lib/kms-key/index.js';
import { Construct } from 'constructs';
import type { Account } from './account.ts';
import { addressOf, tfString } from './expressions.ts';
import type { Inputs } from './inputs.ts';

export class Encryption extends Construct {
  readonly keyArn: string;

  constructor(scope: Construct, id: string, props: { inputs: Inputs; account: Account }) {
    super(scope, id);
    const { inputs, account } = props;
    const policy = new DataAwsIamPolicyDocument(this, 'kms_key_policy', {
      statement: [
        {
          // The account's IAM policies decide who else may use the key, as with AWS's
          // default key policy; without this the key could become unmanageable.
          sid: 'AccountAdministersKey',
          effect: 'Allow',
          principals: [{ type: 'AWS', identifiers: [`arn:${account.partition}:iam::${account.accountId}:root`] }],
          actions: ['kms:*'],
          resources: ['*'],
        },
        {
          // CloudWatch Logs encrypts log groups with the key only for this account's groups.
          sid: 'CloudWatchLogsUsesKey',
          effect: 'Allow',
          principals: [{ type: 'Service', identifiers: [account.servicePrincipal('logs')] }],
          actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
          resources: ['*'],
          condition: [
            {
              test: 'ArnLike',
              variable: 'kms:EncryptionContext:aws:logs:arn',
              values: [account.arn('logs', 'log-group:*')],
            },
          ],
        },
      ],
    });
    // With enable_cdn: CloudFront (origin access control) decrypts the SSE-KMS results it
    // serves, for this account's distributions only (the bucket policy names the one).
    const cdnDecrypt = new DataAwsIamPolicyDocument(this, 'kms_key_policy_cdn', {
      sourcePolicyDocuments: [policy.json],
      statement: [
        {
          sid: 'CloudFrontDecryptsResults',
          effect: 'Allow',
          principals: [{ type: 'Service', identifiers: ['cloudfront.amazonaws.com'] }],
          actions: ['kms:Decrypt'],
          resources: ['*'],
          condition: [{ test: 'ArnLike', variable: 'AWS:SourceArn', values: [`arn:${account.partition}:cloudfront::${account.accountId}:distribution/*`] }],
        },
      ],
    });
    const key = new KmsKey(this, 'main', {
      description: `PuffinDB (${inputs.string('name_prefix')}): data at rest in buckets, logs, Redis and its auth token`,
      enableKeyRotation: true,
      deletionWindowInDays: 30,
      policy: tfString(this, `${inputs.ref('enable_cdn')} ? ${addressOf(cdnDecrypt)}.json : ${addressOf(policy)}.json`),
    });
    new KmsAlias(this, 'main_alias', { name: `alias/${inputs.string('name_prefix')}`, targetKeyId: key.keyId });
    this.keyArn = key.arn;
  }
}
