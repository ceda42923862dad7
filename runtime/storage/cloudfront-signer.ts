// CloudFront signed URLs with a canned policy (what a result download through the CDN is):
// the policy {"Statement":[{"Resource":URL,"Condition":{"DateLessThan":{"AWS:EpochTime":E}}}]}
// is signed with RSA-SHA1 by the private key of a public key in the distribution's trusted key
// group, and the URL gets Expires, Signature (base64 with + = / as - _ ~) and Key-Pair-Id (the
// public key's id). node:crypto does it: a dependency for one signature is not worth it.

import { createPrivateKey, createSign, type KeyObject } from 'node:crypto';
import { PuffinError } from '../errors.ts';
import type { Settings } from '../settings.ts';
import { readSecretString } from '../state/secrets.ts';

export interface CloudFrontSigner {
  /** e.g. https://results.example.com (no trailing slash). */
  readonly baseUrl: string;
  /** A URL of `key` under the distribution that CloudFront serves until `expiresAtSeconds`. */
  signedUrl(key: string, expiresAtSeconds: number): string;
}

/** CloudFront's URL-safe base64. */
function cloudFrontBase64(bytes: Buffer): string {
  return bytes.toString('base64').replace(/\+/g, '-').replace(/=/g, '_').replace(/\//g, '~');
}

/** The canned policy of `url`, exactly as CloudFront rebuilds it to check the signature. */
export function cannedPolicy(url: string, expiresAtSeconds: number): string {
  return JSON.stringify({ Statement: [{ Resource: url, Condition: { DateLessThan: { 'AWS:EpochTime': expiresAtSeconds } } }] });
}

/** `url` signed with a canned policy. */
export function signCloudFrontUrl(url: string, options: { keyPairId: string; privateKey: string | KeyObject; expiresAtSeconds: number }): string {
  if (!Number.isInteger(options.expiresAtSeconds) || options.expiresAtSeconds <= 0) throw new PuffinError('internal', `CloudFront URL expiry must be whole epoch seconds, got ${options.expiresAtSeconds}`);
  const signature = createSign('RSA-SHA1').update(cannedPolicy(url, options.expiresAtSeconds)).sign(options.privateKey);
  const query = `Expires=${options.expiresAtSeconds}&Signature=${cloudFrontBase64(signature)}&Key-Pair-Id=${encodeURIComponent(options.keyPairId)}`;
  return `${url}${url.includes('?') ? '&' : '?'}${query}`;
}

/** A signer for distribution `baseUrl` with the PEM private key of public key `keyPairId`. */
export function cloudFrontSigner(baseUrl: string, keyPairId: string, privateKeyPem: string): CloudFrontSigner {
  if (!/^https:\/\/[^/?#]+$/.test(baseUrl.replace(/\/+$/, ''))) throw new PuffinError('internal', `the CDN URL must be https://<domain>, got '${baseUrl}'`);
  if (!keyPairId) throw new PuffinError('internal', 'the CDN key pair id (the CloudFront public key id) is empty');
  let key: KeyObject;
  try {
    key = createPrivateKey(privateKeyPem);
  } catch (err) {
    throw new PuffinError('internal', `the CDN private key is not a PEM private key: ${(err as Error).message}`);
  }
  const base = baseUrl.replace(/\/+$/, '');
  return {
    baseUrl: base,
    signedUrl: (objectKey, expiresAtSeconds) => signCloudFrontUrl(`${base}/${objectKey.split('/').map(encodeURIComponent).join('/')}`, { keyPairId, privateKey: key, expiresAtSeconds }),
  };
}

/**
 * The signer of result downloads when the deployment has a CDN (PUFFINDB_CDN_URL; then its key
 * pair id and private key secret are required); its private key is read from Secrets Manager
 * once, on the first signed download (again after a failed read). Undefined without a CDN.
 */
export function resultSignerOf(
  settings: Pick<Settings, 'cdnUrl' | 'cdnKeyPairId' | 'cdnPrivateKeySecretArn' | 'region'>,
  readSecret: (arn: string, region: string) => Promise<string> = (arn, region) => readSecretString(arn, region, { what: 'the CDN private key (PEM)' }),
): (() => Promise<CloudFrontSigner>) | undefined {
  const { cdnUrl, cdnKeyPairId, cdnPrivateKeySecretArn } = settings;
  if (!cdnUrl) return undefined;
  if (!cdnKeyPairId || !cdnPrivateKeySecretArn) throw new PuffinError('bad_request', 'PUFFINDB_CDN_URL needs PUFFINDB_CDN_KEY_PAIR_ID and PUFFINDB_CDN_PRIVATE_KEY_SECRET_ARN');
  let signer: Promise<CloudFrontSigner> | undefined;
  return () =>
    (signer ??= readSecret(cdnPrivateKeySecretArn, settings.region)
      .then((pem) => cloudFrontSigner(cdnUrl, cdnKeyPairId, pem))
      .catch((err: unknown) => {
        signer = undefined;
        throw err;
      }));
}
