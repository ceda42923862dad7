// From URLs to stores: a root URL ('file:///dir/', 's3://bucket/prefix/') opens an
// ObjectStore, an absolute object URI resolves to a store and a key. S3 clients are shared
// per endpoint and region so that every store over them reuses one connection pool.

import type { S3Client } from '@aws-sdk/client-s3';
import { parse as parsePath } from 'node:path';
import { PuffinError } from '../errors.ts';
import { LocalObjectStore } from './local-store.ts';
import { fileUriToPath, type LocationPolicy } from './locations.ts';
import { checkKey, checkPrefix } from './object-key.ts';
import type { ObjectInfo, ObjectStore, PutOptions } from './object-store.ts';
import type { S3ObjectStore } from './s3-store.ts';

export interface StoreOptions {
  /** S3-compatible endpoint instead of AWS (PUFFINDB_S3_ENDPOINT). */
  s3Endpoint?: string;
  region?: string;
  /** Where files may be written through a TableIO (the warehouse and the admin's allowed locations); absent: anywhere. */
  locations?: LocationPolicy;
}

type ParsedUrl = { scheme: 'file'; path: string } | { scheme: 's3'; bucket: string; path: string };

const S3_URL = /^s3:\/\/([^/]*)(?:\/(.*))?$/s;
const BUCKET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;

function parseUrl(url: string): ParsedUrl {
  if (typeof url !== 'string') throw new PuffinError('bad_request', `expected a URL string, got ${typeof url}`);
  if (/^file:/i.test(url)) {
    try {
      return { scheme: 'file', path: fileUriToPath(url) };
    } catch (err) {
      throw new PuffinError('bad_request', `'${url}' is not a local file URL: ${(err as Error).message}`);
    }
  }
  const s3 = S3_URL.exec(url);
  if (s3) {
    const bucket = s3[1];
    if (!BUCKET_NAME.test(bucket)) throw new PuffinError('bad_request', `'${url}' does not name a valid S3 bucket`);
    return { scheme: 's3', bucket, path: s3[2] ?? '' };
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1];
  throw new PuffinError(
    'bad_request',
    scheme ? `unsupported storage scheme '${scheme}:' in '${url}'; use file:// or s3://` : `'${url}' is not a storage URL; use file:// or s3://`,
  );
}

const s3Clients = new Map<string, Promise<S3Client>>();

// The AWS SDK takes about 0.3 s to load: it is loaded when the first S3 store is used, so a
// process that only reads local files (a worker of the local cluster, the CLI) never loads it.
let s3Module: Promise<typeof import('./s3-store.ts')> | undefined;
const loadS3 = () => (s3Module ??= import('./s3-store.ts'));

function sharedS3Client(options: StoreOptions): Promise<S3Client> {
  const region = options.region ?? 'us-east-1';
  const id = `${options.s3Endpoint ?? ''}|${region}`;
  let client = s3Clients.get(id);
  if (!client) {
    client = loadS3().then((m) => m.createS3Client({ region, endpoint: options.s3Endpoint }));
    s3Clients.set(id, client);
  }
  return client;
}

/** An S3ObjectStore made on first use (see loadS3); its URL is known at once. */
class LazyS3Store implements ObjectStore {
  readonly url: string;
  private store: Promise<S3ObjectStore> | undefined;

  constructor(private readonly bucket: string, private readonly prefix: string, private readonly options: StoreOptions) {
    this.url = `s3://${bucket}/${prefix.replace(/^\/+/, '')}`;
  }

  private real(): Promise<S3ObjectStore> {
    this.store ??= Promise.all([loadS3(), sharedS3Client(this.options)]).then(([m, client]) => new m.S3ObjectStore({ bucket: this.bucket, prefix: this.prefix, client }));
    return this.store;
  }

  async get(key: string): Promise<Uint8Array> {
    return (await this.real()).get(key);
  }
  async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    return (await this.real()).getRange(key, offset, length);
  }
  async put(key: string, body: Uint8Array | string, options?: PutOptions): Promise<void> {
    return (await this.real()).put(key, body, options);
  }
  async list(prefix: string): Promise<ObjectInfo[]> {
    return (await this.real()).list(prefix);
  }
  async head(key: string): Promise<ObjectInfo | undefined> {
    return (await this.real()).head(key);
  }
  async delete(key: string): Promise<void> {
    return (await this.real()).delete(key);
  }
  async presignGet(key: string, expiresInSeconds: number): Promise<string> {
    return (await this.real()).presignGet(key, expiresInSeconds);
  }
}

/** Open the store whose root is `rootUrl` ('file:///dir/' or 's3://bucket/prefix/'). */
export function openStore(rootUrl: string, options: StoreOptions = {}): ObjectStore {
  const parsed = parseUrl(rootUrl);
  if (parsed.scheme === 'file') return new LocalObjectStore(parsed.path);
  const prefix = parsed.path === '' || parsed.path.endsWith('/') ? parsed.path : `${parsed.path}/`;
  checkPrefix(prefix);
  return new LazyS3Store(parsed.bucket, prefix, options);
}

const resolvedStores = new Map<string, ObjectStore>();

/**
 * The store and key of an absolute object URI. Stores are cached: one per filesystem root
 * for file:// URIs, one per bucket (and endpoint, region) for s3:// URIs.
 */
export function resolveUri(uri: string, options: StoreOptions = {}): { store: ObjectStore; key: string } {
  const parsed = parseUrl(uri);
  let id: string;
  let root: string;
  let key: string;
  if (parsed.scheme === 'file') {
    root = parsePath(parsed.path).root;
    key = parsed.path.slice(root.length);
    id = `file|${root}`;
  } else {
    root = `s3://${parsed.bucket}/`;
    key = parsed.path;
    id = `s3|${parsed.bucket}|${options.s3Endpoint ?? ''}|${options.region ?? 'us-east-1'}`;
  }
  if (key === '' || key.endsWith('/')) throw new PuffinError('bad_request', `'${uri}' names a directory, not an object`);
  checkKey(key);
  let store = resolvedStores.get(id);
  if (!store) {
    store = parsed.scheme === 'file' ? new LocalObjectStore(root) : openStore(root, options);
    resolvedStores.set(id, store);
  }
  return { store, key };
}

/**
 * The URI of `key` under `rootUrl`: the root and the key as they are (a key is a name byte
 * for byte, also in a file:// URI; see locations.ts).
 */
export function joinUrl(rootUrl: string, key: string): string {
  if (typeof key !== 'string') throw new PuffinError('bad_request', `expected a key string, got ${typeof key}`);
  if (key !== '') checkKey(key.endsWith('/') ? key.slice(0, -1) : key);
  const parsed = parseUrl(rootUrl);
  const root = rootUrl.endsWith('/') ? rootUrl : `${rootUrl}/`;
  if (parsed.scheme === 's3') return root + key;
  const dir = parsed.path.endsWith('/') ? parsed.path : `${parsed.path}/`;
  return `file://${dir}${key}`;
}
