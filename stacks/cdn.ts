// Results at the edge (enable_cdn, off by default): a CloudFront distribution whose one
// origin is the results bucket, reached through origin access control (SigV4-signed origin
// requests; not the legacy origin access identity) and allowed by the bucket policy only for
// this distribution (aws:SourceArn, see storage.ts) and by the key policy for CloudFront
// (encryption.ts: the objects are SSE-KMS). Viewers may fetch only with a URL signed by the
// private key of the public key in the distribution's trusted key group (the admin API signs
// them; runtime/storage/cloudfront-signer.ts), over HTTPS only with TLS 1.2 or later on the
// buyer's domain and ACM certificate, and every request is logged to access_log_bucket under
// cdn/. The key pair is the buyer's: Terraform here has no tls provider to make one, and a
// private key made by Terraform would sit in its state; the public key is an input and the
// private key stays in a Secrets Manager secret the buyer owns, passed by ARN.

import { CloudfrontDistribution } from '@cdktf/provider-aws/lib/cloudfront-distribution/index.js';
import { CloudfrontKeyGroup } from '@cdktf/provider-aws/lib/cloudfront-key-group/index.js';
import { CloudfrontOriginAccessControl } from '@cdktf/provider-aws/lib/cloudfront-origin-access-control/index.js';
import { CloudfrontPublicKey } from '@cdktf/provider-aws/lib/cloudfront-public-key/index.js';
import { Construct } from 'constructs';
import { tfNumber, tfString } from './expressions.ts';
import type { Inputs } from './inputs.ts';
import { justify } from './justify.ts';

/** Terraform names, for expressions over the counted resources from other constructs. */
export const CDN_DISTRIBUTION = 'cdn';
export const CDN_PUBLIC_KEY = 'cdn_public_key';

/** AWS managed policies (fixed ids in every account). */
const CACHING_OPTIMIZED = '658327ea-f89d-4fab-a63d-7e88639e58f6';
const SECURITY_HEADERS = '67f7725c-6f97-4210-82d7-5512b31e9d03';

/** `var.enable_cdn ? a : b` over the counted resources. */
export const cdnExpressions = {
  /** The distribution's ARN, '' without the CDN. */
  distributionArn: `join("", aws_cloudfront_distribution.${CDN_DISTRIBUTION}[*].arn)`,
  /** The public key's id (PUFFINDB_CDN_KEY_PAIR_ID), '' without the CDN. */
  keyPairId: `join("", aws_cloudfront_public_key.${CDN_PUBLIC_KEY}[*].id)`,
};

export class Cdn extends Construct {
  constructor(scope: Construct, id: string, props: { inputs: Inputs; resultsBucketRegionalDomainName: string }) {
    super(scope, id);
    const { inputs } = props;
    const count = () => tfNumber(this, `${inputs.ref('enable_cdn')} ? 1 : 0`);
    const prefix = inputs.string('name_prefix');

    const oac = new CloudfrontOriginAccessControl(this, 'cdn_origin_access', {
      count: count(),
      name: `${prefix}-results`,
      description: 'PuffinDB results bucket: CloudFront signs every origin request (SigV4)',
      originAccessControlOriginType: 's3',
      signingBehavior: 'always',
      signingProtocol: 'sigv4',
    });
    const key = new CloudfrontPublicKey(this, CDN_PUBLIC_KEY, {
      count: count(),
      name: `${prefix}-results`,
      comment: 'Verifies the signed URLs of PuffinDB result downloads',
      encodedKey: inputs.string('cdn_public_key_pem'),
    });
    const group = new CloudfrontKeyGroup(this, 'cdn_key_group', {
      count: count(),
      name: `${prefix}-results`,
      comment: 'Signers of PuffinDB result downloads',
      items: [tfString(this, `${key.terraformResourceType}.${CDN_PUBLIC_KEY}[0].id`)],
    });
    const origin = 'results';
    const distribution = new CloudfrontDistribution(this, CDN_DISTRIBUTION, {
      count: count(),
      enabled: true,
      comment: `PuffinDB (${prefix}): stored query results, by signed URL only`,
      aliases: [inputs.string('cdn_domain_name')],
      priceClass: inputs.string('cdn_price_class'),
      httpVersion: 'http2and3',
      isIpv6Enabled: true,
      origin: [
        {
          originId: origin,
          domainName: props.resultsBucketRegionalDomainName,
          originAccessControlId: tfString(this, `${oac.terraformResourceType}.cdn_origin_access[0].id`),
        },
      ],
      defaultCacheBehavior: {
        targetOriginId: origin,
        allowedMethods: ['GET', 'HEAD'],
        cachedMethods: ['GET', 'HEAD'],
        viewerProtocolPolicy: 'https-only',
        trustedKeyGroups: [tfString(this, `${group.terraformResourceType}.cdn_key_group[0].id`)],
        cachePolicyId: CACHING_OPTIMIZED,
        responseHeadersPolicyId: SECURITY_HEADERS,
        compress: true,
      },
      viewerCertificate: {
        acmCertificateArn: inputs.string('cdn_acm_certificate_arn'),
        sslSupportMethod: 'sni-only',
        minimumProtocolVersion: 'TLSv1.2_2021',
      },
      loggingConfig: {
        bucket: `${inputs.string('access_log_bucket')}.s3.amazonaws.com`,
        prefix: 'cdn/',
        includeCookies: false,
      },
      restrictions: { geoRestriction: { restrictionType: 'none' } },
      lifecycle: {
        precondition: [
          {
            condition: tfBoolExpression(this, `${inputs.ref('cdn_domain_name')} != "" && ${inputs.ref('cdn_acm_certificate_arn')} != "" && ${inputs.ref('cdn_public_key_pem')} != "" && ${inputs.ref('cdn_private_key_secret_arn')} != "" && ${inputs.ref('access_log_bucket')} != ""`),
            errorMessage: 'enable_cdn needs cdn_domain_name, cdn_acm_certificate_arn, cdn_public_key_pem, cdn_private_key_secret_arn and access_log_bucket (the CloudFront access logs go there).',
          },
        ],
      },
    });
    justify(
      distribution,
      'CKV_AWS_68',
      'Every viewer request must carry a URL signed by the admin API for one stored result and expiring within minutes; a WAF web ACL (the buyer\'s, with its own cost) adds nothing a forged or expired signature does not already fail, and can be attached to the distribution by the buyer.',
    );
    justify(
      distribution,
      'CKV_AWS_310',
      'One origin by design: results live in one bucket in the deployment\'s region, and a failover origin would have to hold a copy of every result.',
    );
  }
}

function tfBoolExpression(scope: Construct, expression: string): boolean {
  return tfString(scope, expression) as unknown as boolean;
}
