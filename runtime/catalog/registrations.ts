// Tables registered by location (Delta, Hudi): one small JSON document per table,
// <dir>/<name>.json, holding the table's root URI. Creation is create-only, so two
// registrations of one name never both succeed.

import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PuffinError } from '../errors.ts';

interface Registration {
  name: string;
  location: string;
}

export class RegistrationFiles {
  private constructor(private readonly dir: string, private readonly format: string) {}

  /** `format` names the table kind in messages ('Delta', 'Hudi'). */
  static async open(dir: string, format: string): Promise<RegistrationFiles> {
    await mkdir(dir, { recursive: true });
    return new RegistrationFiles(dir, format);
  }

  private path(key: string): string {
    return join(this.dir, `${key}.json`);
  }

  async list(): Promise<string[]> {
    return (await readdir(this.dir)).filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5));
  }

  /** The registered root URI, or undefined when `key` is not registered. */
  async location(key: string): Promise<string | undefined> {
    try {
      return (JSON.parse(await readFile(this.path(key), 'utf8')) as Registration).location;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new PuffinError('internal', `${this.format} registration ${this.path(key)} cannot be read: ${(err as Error).message}`);
    }
  }

  /** Records `key` at `rootUri`; a conflict when the name is registered already. */
  async create(key: string, rootUri: string): Promise<void> {
    try {
      await writeFile(this.path(key), `${JSON.stringify({ name: key, location: rootUri } satisfies Registration)}\n`, { encoding: 'utf8', flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new PuffinError('conflict', `table '${key}' already exists (a ${this.format} table); drop it first`);
      throw err;
    }
  }

  async drop(key: string): Promise<boolean> {
    if ((await this.location(key)) === undefined) return false;
    await rm(this.path(key), { force: true });
    return true;
  }
}
