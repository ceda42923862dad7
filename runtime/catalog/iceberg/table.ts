// Opening an Iceberg table: from its directory (finding the current metadata file) or from a
// metadata file's location, through a FileIO, optionally re-rooting the paths its metadata
// records (tables copied from another tree, like the fixtures).

import { PuffinError } from '../../errors.ts';
import { localFileIO, parentUri, toUri, type FileIO, type Reroot } from './io.ts';
import { decodeTableMetadata, findCurrentMetadataFile, type TableMetadata } from './metadata.ts';

export interface IcebergTable {
  /** URI of the metadata file this view of the table was read from. */
  metadataLocation: string;
  /** URI of the table's directory as opened (the parent of `metadata/`). */
  tableUri: string;
  metadata: TableMetadata;
  io: FileIO;
  /** How recorded paths map to readable ones; undefined when they are used as written. */
  reroot?: Reroot;
}

export interface OpenTableOptions {
  /** Defaults to the local filesystem. */
  io?: FileIO;
  /**
   * `true`: paths under the table's recorded `location` resolve against the directory the
   * table was opened from. Or an explicit mapping. Off by default: real tables on S3 record
   * absolute paths.
   */
  reroot?: boolean | Reroot;
}

const METADATA_FILE = /\.metadata\.json(\.gz)?$/;

/** Open a table from its directory, or from one of its `*.metadata.json` files. */
export async function openIcebergTable(location: string, options: OpenTableOptions = {}): Promise<IcebergTable> {
  const io = options.io ?? localFileIO();
  const uri = toUri(location);
  let metadataLocation: string;
  let tableUri: string;
  if (METADATA_FILE.test(uri)) {
    metadataLocation = uri;
    const dir = parentUri(uri);
    tableUri = dir.endsWith('/metadata') ? parentUri(dir) : dir;
  } else {
    tableUri = uri.replace(/\/+$/, '');
    metadataLocation = await findCurrentMetadataFile(tableUri, io);
  }
  const bytes = await io.read(metadataLocation).catch((err: unknown) => {
    if (err instanceof PuffinError && err.code === 'not_found') throw new PuffinError('not_found', `table metadata ${metadataLocation} does not exist`);
    throw err;
  });
  const metadata = decodeTableMetadata(bytes, metadataLocation);
  const table: IcebergTable = { metadataLocation, tableUri, metadata, io };
  if (options.reroot === true) table.reroot = { from: metadata.location, to: tableUri };
  else if (options.reroot) table.reroot = options.reroot;
  return table;
}
