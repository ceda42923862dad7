// The first form of table: a name bound to a set of local files, Parquet (with each file's
// footer statistics captured when the table is added) or CSV, TSV, JSON and NDJSON (sniffed
// once when added, their columns and reader options kept: file-sets.ts). One JSON document per table at
// <catalog dir>/tables/<name>.json (the catalog dir is <PUFFINDB_HOME>/catalog), replaced
// atomically (write a temporary file, then rename) so no reader ever sees half of one.
//
// A document is re-read whenever its file changed (inode, mtime or size), not cached for the
// life of the process: a CLI `table add` must be seen by a server already running on the
// same home directory.

import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Engine } from '../engine/engine.ts';
import { PuffinError } from '../errors.ts';
import { pathToFileUri } from '../storage/locations.ts';
import { tableNameTooLong } from './names.ts';
import { EXTENSIONS, FILE_FORMATS, formatOfPath, sniffFileSet, validateReaderOptions, type FileFormat, type FileSetRead, type TextFormat } from './file-sets.ts';
import { expandLocalPattern, localPathOf } from './local-glob.ts';
import { readParquetFilesInfo, type ParquetFileInfo } from './parquet-stats.ts';
import type { Catalog, ColumnStats, Column, DataFile, TableSnapshot, TableSummary } from './types.ts';
import { tableSummary } from './summary.ts';

const TABLE_NAME = /^[a-z_][a-z0-9_]*$/i;
/** Names are stored lower-case; a document named otherwise was not written here. */
const STORED_NAME = /^[a-z_][a-z0-9_]*$/;
const DOCUMENT_VERSION = 1;

interface StoredFile extends DataFile {
  /** Modification time when the table was added; part of the snapshot id. */
  mtimeMs: number;
}

interface TableDocument {
  version: number;
  name: string;
  /** The files' format. */
  kind: FileFormat;
  /** Text formats: how the files are read (columns and options sniffed when added). */
  read?: FileSetRead;
  /** The path, directory or glob the files came from, made absolute. */
  pattern: string;
  addedAt: string;
  snapshotId: string;
  columns: Column[];
  files: StoredFile[];
}

export class ParquetCatalog implements Catalog {
  private constructor(
    /** Where the table documents live: <catalog dir>/tables. */
    readonly tablesDir: string,
    private readonly engine: Engine,
  ) {}

  private readonly parsed = new Map<string, { version: string; doc: TableDocument }>();

  /** Opens (creating if needed) the catalog kept in `dir`, e.g. <PUFFINDB_HOME>/catalog. */
  static async open(dir: string, engine: Engine): Promise<ParquetCatalog> {
    const tablesDir = join(resolve(dir), 'tables');
    await mkdir(tablesDir, { recursive: true });
    return new ParquetCatalog(tablesDir, engine);
  }

  async listTables(): Promise<string[]> {
    const names = await readdir(this.tablesDir);
    return names
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.slice(0, -'.json'.length))
      .filter((n) => STORED_NAME.test(n))
      .sort();
  }

  async getTable(name: string): Promise<TableSnapshot | undefined> {
    // A name that cannot be valid names no table, and must never reach the file system.
    if (!TABLE_NAME.test(name) || tableNameTooLong(name)) return undefined;
    const doc = await this.readDocument(name.toLowerCase());
    return doc && toSnapshot(doc);
  }

  async summaries(): Promise<TableSummary[]> {
    const out: TableSummary[] = [];
    for (const name of await this.listTables()) {
      const doc = await this.readDocument(name);
      if (!doc) continue; // dropped between listing and reading
      out.push(tableSummary(doc));
    }
    return out;
  }

  /**
   * Binds `name` to the files `pattern` names (a file, a directory of *.parquet, or a glob),
   * replacing any table of that name. Parquet files must all have the same columns, by name
   * and DuckDB type, as the first file in path order. With `format` (or a pattern ending in
   * .csv, .tsv, .json, .ndjson/.jsonl), the files are text: sniffed once here with
   * `readerOptions` (checked against the format's allow-list) and read with that schema.
   */
  async addTable(name: string, pattern: string, options: AddTableOptions = {}): Promise<TableSnapshot> {
    const tableName = validTableName(name);
    await refuseLance(pattern);
    const format = options.format ?? formatOfPath(pattern) ?? (await formatOfFiles(pattern));
    if (format !== 'parquet') return this.addTextTable(tableName, pattern, format, options.readerOptions);
    if (options.readerOptions !== undefined) throw new PuffinError('bad_request', `--options applies to ${FILE_FORMATS.filter((f) => f !== 'parquet').join(', ')} tables; Parquet files need none`);
    const paths = await expandLocalPattern(pattern);
    if (paths.length === 0) throw new PuffinError('bad_request', `no Parquet files match '${pattern}'`);
    const stats = await Promise.all(
      paths.map((p) =>
        stat(p).catch((err: Error) => {
          throw new PuffinError('bad_request', `cannot read '${p}': ${err.message}`);
        }),
      ),
    );
    const infos = await readParquetFilesInfo(this.engine, paths);
    const columns = checkSameColumns(paths, infos);
    const files: StoredFile[] = infos.map((info, i) => ({ ...info.file, mtimeMs: stats[i].mtimeMs }));
    const doc: TableDocument = {
      version: DOCUMENT_VERSION,
      name: tableName,
      kind: 'parquet',
      pattern: absolutePattern(pattern),
      addedAt: new Date().toISOString(),
      snapshotId: snapshotIdOf(files),
      columns,
      files,
    };
    await this.writeDocument(doc);
    return toSnapshot(doc);
  }

  private async addTextTable(tableName: string, pattern: string, format: TextFormat, rawOptions: unknown): Promise<TableSnapshot> {
    const readerOptions = validateReaderOptions(format, rawOptions);
    const paths = await expandLocalPattern(pattern, EXTENSIONS[format]);
    if (paths.length === 0) throw new PuffinError('bad_request', `no ${format.toUpperCase()} files match '${pattern}'`);
    const stats = await Promise.all(
      paths.map((p) =>
        stat(p).catch((err: Error) => {
          throw new PuffinError('bad_request', `cannot read '${p}': ${err.message}`);
        }),
      ),
    );
    const sniffed = await sniffFileSet(this.engine, format, readerOptions, paths);
    const { read } = sniffed;
    const files: StoredFile[] = paths.map((p, i) => {
      const values = sniffed.partitionValues[i];
      const fileStats: Record<string, ColumnStats> = {};
      // A partition value is every row's value: min = max (the row count is not known, so no null count).
      read.partitionColumns.forEach((c, j) => {
        if (values[j] !== null) fileStats[c.name] = { min: values[j], max: values[j] };
      });
      return {
        uri: pathToFileUri(p), sizeBytes: stats[i].size, rowCount: 0, stats: fileStats, mtimeMs: stats[i].mtimeMs,
        ...(read.partitionColumns.length ? { partitionValues: values } : {}),
      };
    });
    const doc: TableDocument = {
      version: DOCUMENT_VERSION,
      name: tableName,
      kind: format,
      read,
      pattern: absolutePattern(pattern),
      addedAt: new Date().toISOString(),
      snapshotId: snapshotIdOf(files, read),
      columns: [...read.fileColumns, ...read.partitionColumns],
      files,
    };
    await this.writeDocument(doc);
    return toSnapshot(doc);
  }

  /** Forgets a table; its data files are left alone. */
  async dropTable(name: string): Promise<void> {
    const tableName = validTableName(name);
    try {
      await rm(this.documentPath(tableName));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new PuffinError('unknown_table', `no table named '${name}'`);
      throw err;
    }
  }

  private documentPath(tableName: string): string {
    return join(this.tablesDir, `${tableName}.json`);
  }

  private async readDocument(tableName: string): Promise<TableDocument | undefined> {
    const path = this.documentPath(tableName);
    let text: string;
    let version: string;
    try {
      const info = await stat(path);
      version = `${info.ino}:${info.mtimeMs}:${info.size}`;
      const cached = this.parsed.get(tableName);
      if (cached?.version === version) return cached.doc;
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      this.parsed.delete(tableName);
      return undefined;
    }
    let doc: TableDocument;
    try {
      doc = JSON.parse(text) as TableDocument;
    } catch (err) {
      throw new PuffinError('internal', `catalog document '${path}' is not valid JSON: ${(err as Error).message}`);
    }
    if (doc.version !== DOCUMENT_VERSION || !FILE_FORMATS.includes(doc.kind) || !Array.isArray(doc.files) || !Array.isArray(doc.columns) || (doc.kind !== 'parquet' && (typeof doc.read !== 'object' || doc.read === null))) {
      throw new PuffinError('internal', `catalog document '${path}' is not a version ${DOCUMENT_VERSION} file-set table`);
    }
    this.parsed.set(tableName, { version, doc });
    return doc;
  }

  private async writeDocument(doc: TableDocument): Promise<void> {
    const path = this.documentPath(doc.name);
    const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await writeFile(temp, `${JSON.stringify(doc, null, 1)}\n`, 'utf8');
      await rename(temp, path);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
  }
}

function validTableName(name: string): string {
  if (typeof name !== 'string' || !TABLE_NAME.test(name)) {
    throw new PuffinError(
      'bad_request',
      `invalid table name '${String(name).slice(0, 80)}': use letters, digits and underscores, not starting with a digit`,
    );
  }
  const tooLong = tableNameTooLong(name);
  if (tooLong) throw new PuffinError('bad_request', `invalid ${tooLong}`);
  return name.toLowerCase();
}

/** Lance datasets are not read (docs/ARCHITECTURE.md, "Lance"): a 400 naming the conversion. */
async function refuseLance(pattern: string): Promise<void> {
  const remote = /^[a-z][a-z0-9+.-]*:\/\//i.test(pattern) && !/^file:/i.test(pattern);
  const path = (remote ? pattern : localPathOf(pattern)).replace(/\/+$/, '');
  const lance = /\.lance$/i.test(path) || (!remote && (await stat(join(path, '_versions')).then((s) => s.isDirectory(), () => false)));
  if (lance) {
    throw new PuffinError('unsupported', `'${pattern}' is a Lance dataset, which PuffinDB does not read (docs/ARCHITECTURE.md, "Lance"): convert it to Parquet, e.g. pyarrow.parquet.write_table(lance.dataset(path).to_table(), 'vectors.parquet'), and add that; fixed-size vector columns keep their FLOAT[n] type`);
  }
}

function absolutePattern(pattern: string): string {
  return resolve(localPathOf(pattern));
}

function checkSameColumns(paths: string[], infos: ParquetFileInfo[]): Column[] {
  const reference = infos[0].columns;
  const referenceTypes = new Map(reference.map((c) => [c.name, c.type]));
  for (let i = 1; i < infos.length; i++) {
    const file = paths[i];
    const types = new Map(infos[i].columns.map((c) => [c.name, c.type]));
    for (const [column, type] of referenceTypes) {
      const other = types.get(column);
      if (other === undefined) {
        throw incompatible(`'${file}' has no column '${column}', which '${paths[0]}' has`, file, column);
      }
      if (other !== type) {
        throw incompatible(`column '${column}' is ${other} in '${file}' but ${type} in '${paths[0]}'`, file, column);
      }
    }
    for (const column of types.keys()) {
      if (!referenceTypes.has(column)) {
        throw incompatible(`'${file}' has a column '${column}' that '${paths[0]}' does not`, file, column);
      }
    }
  }
  return reference;
}

function incompatible(message: string, file: string, column: string): PuffinError {
  return new PuffinError('bad_request', `files do not share one schema: ${message}`, { file, column });
}

/** Changes whenever a file is added, removed, rewritten or touched, or (text formats) the way they are read. */
function snapshotIdOf(files: StoredFile[], read?: FileSetRead): string {
  const identity = files.map((f) => [f.uri, f.sizeBytes, f.mtimeMs] as const).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const hash = createHash('sha256').update(JSON.stringify(identity));
  if (read) hash.update(JSON.stringify(read));
  return hash.digest('hex').slice(0, 16);
}

function toSnapshot(doc: TableDocument): TableSnapshot {
  return {
    name: doc.name,
    kind: doc.kind,
    columns: doc.columns.map((c) => ({ ...c })),
    files: doc.files.map(({ mtimeMs: _mtime, ...file }) => file),
    snapshotId: doc.snapshotId,
    ...(doc.read ? { fileSet: doc.read } : {}),
  };
}

export interface AddTableOptions {
  /** The files' format; default: from the pattern's or the files' name endings, else Parquet. */
  format?: FileFormat;
  /** Text formats: reader options (the parsed `--options` JSON), checked against an allow-list. */
  readerOptions?: unknown;
}

/** The one format every file a pattern names (a directory: holds) ends in, else Parquet. */
async function formatOfFiles(pattern: string): Promise<FileFormat> {
  let paths: string[];
  try {
    paths = await expandLocalPattern(pattern, Object.values(EXTENSIONS).flat());
  } catch {
    return 'parquet'; // the Parquet path reports the problem
  }
  const formats = new Set(paths.map((p) => formatOfPath(p)));
  const [only] = formats;
  return formats.size === 1 && only !== undefined ? only : 'parquet';
}
