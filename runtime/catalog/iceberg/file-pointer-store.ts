// The embedded default PointerStore: Iceberg metadata pointers in the local filesystem, under
// <PUFFINDB_HOME>/catalog/iceberg/. Each table is a directory of immutable, numbered pointer
// versions (v00000000000000000001.json, ...); the highest number is current. A swap writes
// the next version to a temporary file and hard-links it to its final name: link() fails
// when the name exists, so of all the writers that read version N, exactly one creates N+1
// (lock-free: no lock file, so no stale lock to recover after a crash). Readers only ever
// open whole files. A drop is a tombstone version, so a re-created table keeps counting up.
// Versions are never deleted: a deleted name could be linked again by a writer that read an
// old version, and that stale writer would then "win". To find the current version without
// listing a growing directory, a hint file names a recent version and readers probe forward
// from it (as Iceberg's own Hadoop catalog does with version-hint.text).

import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { PuffinError } from '../../errors.ts';
import { tableNameTooLong } from '../names.ts';
import type { PointerStore, TablePointer } from './pointer-store.ts';

const TABLE_NAME = /^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$/;
const HINT_FILE = 'version-hint';

interface PointerDocument {
  name: string;
  /** null: a tombstone (the table was dropped). */
  metadataLocation: string | null;
  version: number;
  writtenAt: string;
}

interface Current {
  version: number;
  metadataLocation: string | undefined;
}

/** A table name as stored: lower-case, dot-separated identifiers. */
export function pointerName(name: string): string {
  const lower = typeof name === 'string' ? name.toLowerCase() : '';
  if (!TABLE_NAME.test(lower)) {
    throw new PuffinError('bad_request', `invalid table name '${String(name).slice(0, 80)}': use letters, digits and underscores (namespaces separated by dots), not starting with a digit`);
  }
  // The name is a directory's (and other catalogs' files'): a longer one would fail in the file system.
  const tooLong = tableNameTooLong(lower);
  if (tooLong) throw new PuffinError('bad_request', `invalid ${tooLong}`);
  return lower;
}

function versionFile(version: number): string {
  return `v${String(version).padStart(20, '0')}.json`;
}

export class FilePointerStore implements PointerStore {
  readonly dir: string;

  /** `dir` is where pointers live, e.g. <PUFFINDB_HOME>/catalog/iceberg; created on first write. */
  constructor(dir: string) {
    this.dir = resolve(dir);
  }

  async get(name: string): Promise<string | undefined> {
    return (await this.current(pointerName(name))).metadataLocation;
  }

  async list(): Promise<TablePointer[]> {
    let names: string[];
    try {
      names = (await readdir(this.dir, { withFileTypes: true })).filter((d) => d.isDirectory() && TABLE_NAME.test(d.name)).map((d) => d.name);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: TablePointer[] = [];
    for (const name of names.sort()) {
      const { metadataLocation } = await this.current(name);
      if (metadataLocation !== undefined) out.push({ name, metadataLocation });
    }
    return out;
  }

  async compareAndSwap(name: string, expected: string | undefined, next: string): Promise<boolean> {
    if (typeof next !== 'string' || next === '') throw new PuffinError('bad_request', 'a metadata location must be a non-empty string');
    return this.swap(pointerName(name), expected, next);
  }

  async remove(name: string, expected: string): Promise<boolean> {
    return this.swap(pointerName(name), expected, null);
  }

  private tableDir(name: string): string {
    return join(this.dir, name);
  }

  private async swap(name: string, expected: string | undefined, next: string | null): Promise<boolean> {
    const current = await this.current(name);
    if (current.metadataLocation !== expected) return false;
    if (next === null && current.metadataLocation === undefined) return false;
    const dir = this.tableDir(name);
    await mkdir(dir, { recursive: true });
    const version = current.version + 1;
    const doc: PointerDocument = { name, metadataLocation: next, version, writtenAt: new Date().toISOString() };
    const temp = join(dir, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
    await writeFile(temp, `${JSON.stringify(doc)}\n`, 'utf8');
    try {
      await link(temp, join(dir, versionFile(version)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false; // another writer won version N+1
      throw new PuffinError('unavailable', `could not write the pointer of table '${name}' in ${dir}: ${(err as Error).message}`);
    } finally {
      await rm(temp, { force: true });
    }
    await this.writeHint(dir, version);
    return true;
  }

  /** The hint only saves probing: a stale or lost one costs time, never correctness. */
  private async writeHint(dir: string, version: number): Promise<void> {
    const temp = join(dir, `.hint-${process.pid}-${randomBytes(6).toString('hex')}`);
    try {
      await writeFile(temp, String(version), 'utf8');
      await rename(temp, join(dir, HINT_FILE));
    } catch {
      await rm(temp, { force: true }).catch(() => {});
    }
  }

  private async exists(path: string): Promise<boolean> {
    try {
      await stat(path);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  private async current(name: string): Promise<Current> {
    const dir = this.tableDir(name);
    let version = 0;
    try {
      const hint = Number(await readFile(join(dir, HINT_FILE), 'utf8'));
      if (Number.isSafeInteger(hint) && hint > 0 && (await this.exists(join(dir, versionFile(hint))))) version = hint;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    while (await this.exists(join(dir, versionFile(version + 1)))) version++;
    if (version === 0) return { version: 0, metadataLocation: undefined };
    const path = join(dir, versionFile(version));
    const text = await readFile(path, 'utf8');
    let doc: PointerDocument;
    try {
      doc = JSON.parse(text) as PointerDocument;
    } catch (err) {
      throw new PuffinError('internal', `pointer file ${path} is not valid JSON: ${(err as Error).message}`);
    }
    if (doc.metadataLocation !== null && typeof doc.metadataLocation !== 'string') {
      throw new PuffinError('internal', `pointer file ${path} has no metadataLocation`);
    }
    return { version, metadataLocation: doc.metadataLocation ?? undefined };
  }
}
