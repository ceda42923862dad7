// How long a table name may be. Every catalog keeps a table under a file or directory named
// after it (<catalog>/iceberg/<name>/, iceberg-registrations/<name>.json, delta-registrations/
// <name>.json, hudi-registrations/<name>.json, tables/<name>.json) and writes those through temporary files named
// <name>.json.<pid>.<random>.tmp, and a file name holds at most 255 bytes on the file systems
// this runs on (NAME_MAX). 200 bytes leaves room for those suffixes; a longer name names no
// table and is refused (or looked up as missing) before any file system call.

/** The longest table name, namespaces and dots included, in UTF-8 bytes. */
export const MAX_TABLE_NAME_BYTES = 200;

/** Why `name` is too long to be a table name, or undefined when it is not. */
export function tableNameTooLong(name: string, what = 'table name'): string | undefined {
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes <= MAX_TABLE_NAME_BYTES) return undefined;
  return `${what} '${name.slice(0, 40)}...' is ${bytes} bytes long; names are at most ${MAX_TABLE_NAME_BYTES} bytes`;
}
