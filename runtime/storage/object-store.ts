// The object store every part of PuffinDB reads and writes through: the warehouse (table
// data and metadata), the shuffle prefix (large fragment partials) and the results prefix.
// Keys are '/'-separated paths relative to the store's root; `url` names the root
// ('file:///abs/dir/' or 's3://bucket/prefix/'), so `${store.url}${key}` is a file's URI.

export interface ObjectInfo {
  key: string;
  size: number;
  /** Milliseconds since the epoch. */
  lastModified: number;
  etag?: string;
}

export interface PutOptions {
  /** Refuse to overwrite an existing object (S3 `If-None-Match: *`); throws `conflict`. */
  ifNoneMatch?: boolean;
  contentType?: string;
}

export interface ObjectStore {
  /** Root URI, ending in '/'. */
  readonly url: string;
  /** Whole object; throws PuffinError 'not_found' when absent. */
  get(key: string): Promise<Uint8Array>;
  /** Bytes [offset, offset + length) of an object. */
  getRange(key: string, offset: number, length: number): Promise<Uint8Array>;
  put(key: string, body: Uint8Array | string, options?: PutOptions): Promise<void>;
  /** Every object whose key starts with `prefix`, in key order. */
  list(prefix: string): Promise<ObjectInfo[]>;
  /** Metadata of one object, or undefined when absent. */
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Delete one object; deleting an absent object is not an error. */
  delete(key: string): Promise<void>;
  /**
   * For stores backed by the local filesystem: the absolute path of a key, so DuckDB can
   * read it in place. Remote stores return undefined and callers fetch through the cache.
   */
  localPath?(key: string): string | undefined;
  /**
   * For stores a client can download from directly (S3): a URL that GETs the object without
   * other credentials until it expires.
   */
  presignGet?(key: string, expiresInSeconds: number): Promise<string>;
}
