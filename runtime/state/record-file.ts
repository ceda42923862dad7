// A registry of named records kept in one JSON file under PUFFINDB_HOME: what an admin
// registers with the CLI and a local `puffindb serve` without Redis reads (each process has
// a MemoryStateStore of its own then, so the state store cannot carry it). Query generators
// (generator-file.ts) and remote instances (remote-file.ts) are kept this way. The file is
// read on every call and replaced whole (a temp file renamed over it, mode 0600), so a
// record the CLI adds is seen by the running server at its next use.

import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { PuffinError } from '../errors.ts';

export interface RecordFileOptions<T> {
  /** The array's key in the file, e.g. 'generators'. */
  key: string;
  /** Checks a record before it is written (throws a PuffinError). */
  check(record: T): void;
  /** Checks a name before it is looked up (throws a PuffinError). */
  checkName(name: string): void;
}

export class RecordFile<T extends { name: string }> {
  /** Writes of this process, one after another (another process's write between a read and a rename is lost: admins register rarely). */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(readonly path: string, private readonly options: RecordFileOptions<T>) {}

  private get fileName(): string {
    return this.path.split(/[\\/]/).pop() ?? this.path;
  }

  private async read(): Promise<T[]> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new PuffinError('internal', `the registry ${this.fileName} is not JSON; fix or remove it`);
    }
    const list = (parsed as Record<string, unknown> | null)?.[this.options.key];
    if (!Array.isArray(list)) throw new PuffinError('internal', `the registry ${this.fileName} has no ${this.options.key} array; fix or remove it`);
    return list as T[];
  }

  private async write(records: T[]): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    const temp = `${this.path}.${process.pid}.${Date.now()}.tmp`;
    await writeFile(temp, `${JSON.stringify({ [this.options.key]: records }, null, 2)}\n`, { mode: 0o600 });
    await rename(temp, this.path);
  }

  private change<V>(fn: (records: T[]) => { records?: T[]; value: V }): Promise<V> {
    const next = this.queue.then(async () => {
      const { records, value } = fn(await this.read());
      if (records) await this.write(records);
      return value;
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Create or replace by name. */
  put(record: T): Promise<void> {
    this.options.check(record);
    const copy = JSON.parse(JSON.stringify(record)) as T;
    return this.change((records) => ({ records: [...records.filter((r) => r.name !== record.name), copy], value: undefined }));
  }

  /** Sorted by name. */
  async list(): Promise<T[]> {
    return (await this.read()).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  delete(name: string): Promise<boolean> {
    this.options.checkName(name);
    return this.change((records) => {
      const kept = records.filter((r) => r.name !== name);
      return kept.length === records.length ? { value: false } : { records: kept, value: true };
    });
  }
}
