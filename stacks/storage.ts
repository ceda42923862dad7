// The lake, results and shuffle buckets. Three buckets rather than three prefixes of one,
// because what differs between them is bucket-wide in S3: versioning (the lake keeps
// replaced versions so a bad write can be undone; shuffle partials are rewritten per query
// and versions would only pile up), and lifecycle expiry applies to everything in the
// results and shuffle buckets without risking a rule that reaches into the lake. Separate
// buckets also let IAM grant workers the shuffle bucket without any lake write beyond
// data files. Every bucket: SSE-KMS with the deployment key and bucket keys, all four
// public-access blocks, ACLs disabled, and a policy refusing any request not sent over TLS.

import { DataAwsIamPolicyDocument } from '@cdktf/provider-aws/lib/data-aws-iam-policy-document/index.js';
import { S3Bucket } from '@cdktf/provider-aws/lib/s3-bucket/index.js';
import { S3BucketLifecycleConfiguration, type S3BucketLifecycleConfigurationRule } from '@cdktf/provider-aws/lib/s3-bucket-lifecycle-configuration/index.js';
import { S3BucketLoggingA } from '@cdktf/provider-aws/lib/s3-bucket-logging/index.js';
import { S3BucketOwnershipControls } from '@cdktf/provider-aws/lib/s3-bucket-ownership-controls/index.js';
import { S3BucketPolicy } from '@cdktf/provider-aws/lib/s3-bucket-policy/index.js';
import { S3BucketPublicAccessBlock } from '@cdktf/provider-aws/lib/s3-bucket-public-access-block/index.js';
import { S3BucketServerSideEncryptionConfigurationA } from '@cdktf/provider-aws/lib/s3-bucket-server-side-encryption-configuration/index.js';
import { S3BucketVersioningA } from '@cdktf/provider-aws/lib/s3-bucket-versioning/index.js';
import { Construct } from 'constructs';
import { addressOf, tfNumber, tfString } from './expressions.ts';
import type { Inputs } from './inputs.ts';
import { justify } from './justify.ts';

export type BucketRole = 'lake' | 'results' | 'shuffle';

export interface Bucket {
  name: string;
  arn: string;
  /** <bucket>.s3.<region>.amazonaws.com: a CloudFront origin's domain. */
  regionalDomainName: string;
}

// A filter with no arguments applies a rule to every object in the bucket.
const ALL_OBJECTS = {};

export class Storage extends Construct {
  readonly buckets: Record<BucketRole, Bucket>;

  constructor(scope: Construct, id: string, props: { inputs: Inputs; keyArn: string; cdnDistributionArn?: string }) {
    super(scope, id);
    const { inputs } = props;
    const abortUploads = (days: number) => [{ daysAfterInitiation: days }];
    const expiring = (ruleId: string, days: number): S3BucketLifecycleConfigurationRule => ({
      id: ruleId,
      status: 'Enabled',
      filter: [ALL_OBJECTS],
      expiration: [{ days }],
      abortIncompleteMultipartUpload: abortUploads(1),
    });
    this.buckets = {
      lake: this.bucket('lake', props, {
        versioned: true,
        lifecycle: [
          {
            id: 'expire-replaced-versions',
            status: 'Enabled',
            filter: [ALL_OBJECTS],
            noncurrentVersionExpiration: [{ noncurrentDays: inputs.number('lake_noncurrent_version_expiration_days') }],
            abortIncompleteMultipartUpload: abortUploads(7),
          },
        ],
      }),
      results: this.bucket('results', props, { versioned: false, lifecycle: [expiring('expire-results', inputs.number('results_expiration_days'))], cdnReadable: props.cdnDistributionArn !== undefined }),
      shuffle: this.bucket('shuffle', props, { versioned: false, lifecycle: [expiring('expire-partials', inputs.number('shuffle_expiration_days'))] }),
    };
  }

  private bucket(
    role: BucketRole,
    props: { inputs: Inputs; keyArn: string; cdnDistributionArn?: string },
    options: { versioned: boolean; lifecycle: S3BucketLifecycleConfigurationRule[]; cdnReadable?: boolean },
  ): Bucket {
    const { inputs, keyArn } = props;
    // bucket_prefix: S3 names are global, so Terraform appends a unique suffix.
    const bucket = new S3Bucket(this, role, {
      bucketPrefix: `${inputs.string('name_prefix')}-${role}-`,
      forceDestroy: inputs.bool('force_destroy_buckets'),
    });
    const publicAccess = new S3BucketPublicAccessBlock(this, `${role}_public_access`, {
      bucket: bucket.id,
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    });
    new S3BucketOwnershipControls(this, `${role}_ownership`, {
      bucket: bucket.id,
      rule: { objectOwnership: 'BucketOwnerEnforced' },
    });
    new S3BucketServerSideEncryptionConfigurationA(this, `${role}_encryption`, {
      bucket: bucket.id,
      rule: [
        {
          applyServerSideEncryptionByDefault: { sseAlgorithm: 'aws:kms', kmsMasterKeyId: keyArn },
          bucketKeyEnabled: true,
        },
      ],
    });
    const tlsOnly = new DataAwsIamPolicyDocument(this, `${role}_tls_only`, {
      statement: [
        {
          sid: 'DenyInsecureTransport',
          effect: 'Deny',
          principals: [{ type: '*', identifiers: ['*'] }],
          actions: ['s3:*'],
          resources: [bucket.arn, `${bucket.arn}/*`],
          condition: [{ test: 'Bool', variable: 'aws:SecureTransport', values: ['false'] }],
        },
      ],
    });
    // With enable_cdn, the results bucket's objects are readable by this stack's distribution
    // alone (origin access control signs its requests; stacks/cdn.ts).
    const cdnRead = options.cdnReadable && props.cdnDistributionArn
      ? new DataAwsIamPolicyDocument(this, `${role}_cdn_read`, {
          sourcePolicyDocuments: [tlsOnly.json],
          statement: [
            {
              sid: 'CloudFrontReadsResults',
              effect: 'Allow',
              principals: [{ type: 'Service', identifiers: ['cloudfront.amazonaws.com'] }],
              actions: ['s3:GetObject'],
              resources: [`${bucket.arn}/*`],
              condition: [{ test: 'StringEquals', variable: 'AWS:SourceArn', values: [props.cdnDistributionArn] }],
            },
          ],
        })
      : undefined;
    new S3BucketPolicy(this, `${role}_policy`, {
      bucket: bucket.id,
      policy: cdnRead ? tfString(this, `${inputs.ref('enable_cdn')} ? ${addressOf(cdnRead)}.json : ${addressOf(tlsOnly)}.json`) : tlsOnly.json,
      // S3 rejects policy writes racing the public-access block on a new bucket.
      dependsOn: [publicAccess],
    });
    if (options.versioned) {
      new S3BucketVersioningA(this, `${role}_versioning`, {
        bucket: bucket.id,
        versioningConfiguration: { status: 'Enabled' },
      });
    } else {
      justify(
        bucket,
        'CKV_AWS_21',
        `The ${role} bucket holds transient objects that expire within days and are rewritten per query; versions would only keep deleted data longer.`,
      );
    }
    new S3BucketLifecycleConfiguration(this, `${role}_lifecycle`, { bucket: bucket.id, rule: options.lifecycle });
    new S3BucketLoggingA(this, `${role}_access_logs`, {
      count: tfNumber(this, `${inputs.ref('access_log_bucket')} == "" ? 0 : 1`),
      bucket: bucket.id,
      targetBucket: inputs.string('access_log_bucket'),
      targetPrefix: `${role}/`,
    });
    justify(
      bucket,
      'CKV_AWS_18',
      'Server access logging is the buyer\'s choice (access_log_bucket): a log bucket is account infrastructure, and logging every shuffle partial would cost more than the queries. CloudTrail data events are the alternative.',
    );
    justify(
      bucket,
      'CKV_AWS_144',
      'Cross-region replication is a disaster-recovery decision for the buyer; results and shuffle data are transient, and replicating the lake doubles its cost.',
    );
    justify(
      bucket,
      'CKV2_AWS_62',
      'Nothing consumes S3 event notifications: the catalog learns of new files from commits, not from events.',
    );
    return { name: bucket.bucket, arn: bucket.arn, regionalDomainName: bucket.bucketRegionalDomainName };
  }
}
