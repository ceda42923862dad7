// The ObjectStore over an S3 bucket (or any S3-compatible endpoint) under an optional key
// prefix, through @aws-sdk/client-s3. S3's failures become PuffinErrors here: a missing
// key is not_found, a lost create-only race is conflict, an unreachable endpoint is
// unavailable.

import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { presignGetObject } from './s3-presign.ts';
import { PuffinError } from '../errors.ts';
import { checkKey, checkPrefix, checkRange, compareKeys } from './object-key.ts';
import type { ObjectInfo, ObjectStore, PutOptions } from './object-store.ts';

export interface S3ObjectStoreOptions {
  bucket: string;
  /** Key prefix under which this store's keys live; '' or 'a/b/'. */
  prefix?: string;
  /** A client to share; when given, endpoint/region/credentials are ignored. */
  client?: S3Client;
  endpoint?: string;
  region?: string;
  /** Defaults to true when `endpoint` is set (S3-compatible servers rarely do virtual hosts). */
  forcePathStyle?: boolean;
  credentials?: S3ClientConfig['credentials'];
  /** Keys per ListObjectsV2 request (1..1000); small values exercise pagination in tests. */
  listPageSize?: number;
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED']);
const NOT_FOUND_NAMES = new Set(['NoSuchKey', 'NotFound', 'NoSuchBucket']);

interface S3ErrorShape {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

/** Classify an error thrown by the S3 client; exported for the tests of this mapping. */
export function s3ErrorToPuffin(err: unknown, what: string): PuffinError {
  if (err instanceof PuffinError) return err;
  const e = (err ?? {}) as S3ErrorShape;
  const status = e.$metadata?.httpStatusCode;
  const name = e.name ?? '';
  const detail = e.message ? `: ${e.message}` : name ? `: ${name}` : '';
  if (name === 'NoSuchBucket') return new PuffinError('not_found', `${what}: bucket does not exist${detail}`);
  if (NOT_FOUND_NAMES.has(name) || status === 404) return new PuffinError('not_found', `${what}: not found`);
  // 412: If-None-Match failed; 409 ConditionalRequestConflict: a concurrent create won.
  if (status === 412 || name === 'PreconditionFailed' || name === 'ConditionalRequestConflict') {
    return new PuffinError('conflict', `${what}: already exists`);
  }
  if (name === 'CredentialsProviderError') return new PuffinError('unauthorized', `${what}: no AWS credentials${detail}`);
  if (status === 403 || name === 'AccessDenied') return new PuffinError('access_denied', `${what}: access denied${detail}`);
  if (status === 503 || name === 'SlowDown') return new PuffinError('unavailable', `${what}: S3 is throttling or unavailable${detail}`);
  if (NETWORK_CODES.has(e.code ?? '') || name === 'TimeoutError' || name === 'RequestTimeout' || (status !== undefined && status >= 500)) {
    return new PuffinError('unavailable', `${what}: S3 unreachable${detail}`);
  }
  return new PuffinError('internal', `${what}: S3 error${detail}`);
}

/** Sockets one S3 client keeps open at most. */
export const S3_MAX_SOCKETS = 256;
/**
 * The client's agent options (http and https alike): the SDK's default of 50 sockets would
 * queue a shuffle read's 64 GETs in flight (exec/shuffle-read.ts) and the file cache's ranged
 * fetches beside it.
 */
const S3_AGENT = { keepAlive: true, maxSockets: S3_MAX_SOCKETS };

/**
 * An S3 client with timeouts: without them the SDK waits forever on a silent endpoint.
 * requestTimeout is the socket's idle time, so large downloads are not cut short.
 */
export function createS3Client(options: Pick<S3ObjectStoreOptions, 'endpoint' | 'region' | 'forcePathStyle' | 'credentials'> = {}): S3Client {
  return new S3Client({
    region: options.region ?? 'us-east-1',
    endpoint: options.endpoint,
    // S3-compatible servers rarely serve virtual-hosted bucket names.
    forcePathStyle: options.forcePathStyle ?? options.endpoint !== undefined,
    credentials: options.credentials,
    requestHandler: { connectionTimeout: 10_000, requestTimeout: 60_000, httpAgent: S3_AGENT, httpsAgent: S3_AGENT },
  });
}

function normalizePrefix(prefix: string): string {
  const trimmed = prefix.replace(/^\/+/, '');
  return trimmed === '' || trimmed.endsWith('/') ? trimmed : `${trimmed}/`;
}

export class S3ObjectStore implements ObjectStore {
  readonly url: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly client: S3Client;
  private readonly listPageSize: number;
  private readonly ownsClient: boolean;

  constructor(options: S3ObjectStoreOptions) {
    if (!options || typeof options.bucket !== 'string' || options.bucket === '') {
      throw new PuffinError('bad_request', 'S3ObjectStore needs a bucket name');
    }
    const pageSize = options.listPageSize ?? 1000;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 1000) {
      throw new PuffinError('bad_request', `listPageSize must be an integer in 1..1000, got ${pageSize}`);
    }
    this.bucket = options.bucket;
    this.prefix = normalizePrefix(options.prefix ?? '');
    checkPrefix(this.prefix);
    this.url = `s3://${this.bucket}/${this.prefix}`;
    this.listPageSize = pageSize;
    this.ownsClient = options.client === undefined;
    this.client = options.client ?? createS3Client(options);
  }

  private objectKey(key: string): string {
    checkKey(key);
    return this.prefix + key;
  }

  private describe(key: string): string {
    return `object '${key}' in ${this.url}`;
  }

  async get(key: string): Promise<Uint8Array> {
    const Key = this.objectKey(key);
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key }));
      return out.Body ? await out.Body.transformToByteArray() : new Uint8Array(0);
    } catch (err) {
      throw s3ErrorToPuffin(err, this.describe(key));
    }
  }

  async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    checkRange(offset, length);
    const Key = this.objectKey(key);
    if (length === 0) {
      if (!(await this.head(key))) throw s3ErrorToPuffin({ name: 'NoSuchKey' }, this.describe(key));
      return new Uint8Array(0);
    }
    try {
      const Range = `bytes=${offset}-${offset + length - 1}`;
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key, Range }));
      return out.Body ? await out.Body.transformToByteArray() : new Uint8Array(0);
    } catch (err) {
      // S3 answers 416 for a range that starts at or past the end; the object exists, the
      // range just holds no bytes, the same answer a file gives.
      if ((err as S3ErrorShape)?.$metadata?.httpStatusCode === 416) return new Uint8Array(0);
      throw s3ErrorToPuffin(err, this.describe(key));
    }
  }

  async put(key: string, body: Uint8Array | string, options: PutOptions = {}): Promise<void> {
    const Key = this.objectKey(key);
    const data = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    if (!(data instanceof Uint8Array)) throw new PuffinError('bad_request', `body of '${key}' must be bytes or a string`);
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key,
          Body: data,
          ContentLength: data.byteLength,
          ContentType: options.contentType,
          IfNoneMatch: options.ifNoneMatch ? '*' : undefined,
        }),
      );
    } catch (err) {
      throw s3ErrorToPuffin(err, this.describe(key));
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    checkPrefix(prefix);
    const found: ObjectInfo[] = [];
    let ContinuationToken: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix + prefix, MaxKeys: this.listPageSize, ContinuationToken }),
        );
      } catch (err) {
        throw s3ErrorToPuffin(err, `listing '${prefix}' in ${this.url}`);
      }
      for (const item of page.Contents ?? []) {
        // Zero-byte 'folder/' markers made by consoles are not objects of ours.
        if (!item.Key || item.Key.endsWith('/')) continue;
        found.push({
          key: item.Key.slice(this.prefix.length),
          size: item.Size ?? 0,
          lastModified: item.LastModified?.getTime() ?? 0,
          ...(item.ETag ? { etag: item.ETag } : {}),
        });
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
    // S3 already answers in byte order; some S3-compatible servers (s3rver) answer in
    // directory-walk order, where 'a/' comes before 'a-b/'.
    return found.sort((a, b) => compareKeys(a.key, b.key));
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const Key = this.objectKey(key);
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key }));
      return {
        key,
        size: out.ContentLength ?? 0,
        lastModified: out.LastModified?.getTime() ?? 0,
        ...(out.ETag ? { etag: out.ETag } : {}),
      };
    } catch (err) {
      const mapped = s3ErrorToPuffin(err, this.describe(key));
      // A missing bucket is a configuration error, not an absent object.
      if (mapped.code === 'not_found' && (err as S3ErrorShape).name !== 'NoSuchBucket') return undefined;
      throw mapped;
    }
  }

  async delete(key: string): Promise<void> {
    const Key = this.objectKey(key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key }));
    } catch (err) {
      const mapped = s3ErrorToPuffin(err, this.describe(key));
      if (mapped.code === 'not_found' && (err as S3ErrorShape).name !== 'NoSuchBucket') return;
      throw mapped;
    }
  }

  /** A presigned GET URL of the object (runtime/storage/s3-presign.ts). */
  presignGet(key: string, expiresInSeconds: number): Promise<string> {
    return presignGetObject(this.client, { bucket: this.bucket, key: this.objectKey(key), expiresInSeconds });
  }

  localPath(): undefined {
    return undefined;
  }

  /** Close the sockets of a client this store created; a shared client is left to its owner. */
  destroy(): void {
    if (this.ownsClient) this.client.destroy();
  }
}
