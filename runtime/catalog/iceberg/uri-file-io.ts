// A FileIO for whatever URIs a table's metadata names: file:// through the local filesystem,
// s3:// through the object store for that bucket. The catalog uses it so one registry can
// hold local tables (the embedded default, the fixtures) and tables on S3 side by side.

import { resolveUri, type StoreOptions } from '../../storage/open.ts';
import { localFileIO, objectStoreFileIO, toUri, type FileIO } from './io.ts';

export function uriFileIO(storeOptions: StoreOptions = {}): FileIO {
  const local = localFileIO();
  const pick = (uri: string): FileIO => {
    const full = toUri(uri);
    return /^file:/i.test(full) ? local : objectStoreFileIO(resolveUri(full, storeOptions).store);
  };
  return {
    read: (uri) => pick(uri).read(toUri(uri)),
    exists: (uri) => pick(uri).exists(toUri(uri)),
    // resolveUri needs an object key, not a directory: any name inside the directory finds its store.
    list: (dirUri) => pick(`${toUri(dirUri).replace(/\/+$/, '')}/_`).list(toUri(dirUri)),
    listTree: (dirUri) => {
      const io = pick(`${toUri(dirUri).replace(/\/+$/, '')}/_`);
      return io.listTree ? io.listTree(toUri(dirUri)) : Promise.resolve([]);
    },
  };
}
