// Presigned GET URLs for S3 objects (Signature Version 4, query-string authentication), so a
// client can download a large result from S3 itself instead of through the server. Written
// here over node:crypto because @aws-sdk/s3-request-presigner is not a dependency; the
// signing follows the SigV4 specification for a GET with only the host header signed and an
// unsigned payload, and uses the client's own credentials, region and endpoint.

import { createHash, createHmac } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import { PuffinError } from '../errors.ts';

/** S3 caps presigned URLs at seven days. */
export const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;

/** RFC 3986 encoding as SigV4 wants it: unreserved characters kept, everything else %XX. */
function encode(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

const hmac = (key: Uint8Array | string, data: string) => createHmac('sha256', key).update(data).digest();

export interface PresignOptions {
  bucket: string;
  key: string;
  expiresInSeconds: number;
  /** Signing time (tests). Default now. */
  now?: Date;
}

export async function presignGetObject(client: S3Client, options: PresignOptions): Promise<string> {
  const expires = Math.floor(options.expiresInSeconds);
  if (!(expires >= 1 && expires <= MAX_PRESIGN_SECONDS)) throw new PuffinError('internal', `a presigned URL lasts 1 s to 7 days, not ${options.expiresInSeconds} s`);
  const credentials = await client.config.credentials();
  const region = await client.config.region();
  const configured = client.config.endpoint ? await client.config.endpoint() : undefined;
  const pathStyle = client.config.forcePathStyle === true || configured !== undefined || options.bucket.includes('.');
  let origin: string;
  let path: string;
  const keyPath = options.key.split('/').map(encode).join('/');
  if (configured) {
    const port = configured.port ? `:${configured.port}` : '';
    origin = `${configured.protocol}//${configured.hostname}${port}`;
    path = `${configured.path.replace(/\/+$/, '')}/${encode(options.bucket)}/${keyPath}`;
  } else if (pathStyle) {
    origin = `https://s3.${region}.amazonaws.com`;
    path = `/${encode(options.bucket)}/${keyPath}`;
  } else {
    // us-east-1 answers on the legacy global name too (the form of AWS's own signing examples).
    origin = region === 'us-east-1' ? `https://${options.bucket}.s3.amazonaws.com` : `https://${options.bucket}.s3.${region}.amazonaws.com`;
    path = `/${keyPath}`;
  }
  const host = new URL(origin).host;
  const now = options.now ?? new Date();
  const amzDate = now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const scope = `${day}/${region}/s3/aws4_request`;
  const query: Record<string, string> = {
    'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
    'X-Amz-Credential': `${credentials.accessKeyId}/${scope}`,
    'X-Amz-Date': amzDate,
    'X-Amz-Expires': String(expires),
    'X-Amz-SignedHeaders': 'host',
    ...(credentials.sessionToken ? { 'X-Amz-Security-Token': credentials.sessionToken } : {}),
  };
  const canonicalQuery = Object.keys(query).sort().map((k) => `${encode(k)}=${encode(query[k])}`).join('&');
  const canonicalRequest = ['GET', path, canonicalQuery, `host:${host}`, '', 'host', 'UNSIGNED-PAYLOAD'].join('\n');
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonicalRequest).digest('hex')].join('\n');
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${credentials.secretAccessKey}`, day), region), 's3'), 'aws4_request');
  const signature = createHmac('sha256', signingKey).update(stringToSign).digest('hex');
  return `${origin}${path}?${canonicalQuery}&X-Amz-Signature=${signature}`;
}
