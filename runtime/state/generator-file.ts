// Query generators (runtime/sql/generators.ts) kept in a JSON file under PUFFINDB_HOME: the
// registry `puffindb generator add` and a local `puffindb serve` share when there is no Redis
// (each process has a MemoryStateStore of its own then, so the state store cannot carry
// them). With REDIS_URL set both use the state store instead (openGeneratorRegistry). The
// file is read on every call and replaced whole (a temp file renamed over it), so a
// generator the CLI adds is seen by the running server at its next query.

import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { PuffinError } from '../errors.ts';
import type { Settings } from '../settings.ts';
import { checkGenerator, checkGeneratorName } from './checks.ts';
import type { GeneratorRecord, StateStore } from './state-store.ts';

/** What the API and the CLI need of a generator registry: the StateStore's three methods. */
export type GeneratorRegistry = Pick<StateStore, 'putGenerator' | 'listGenerators' | 'deleteGenerator'>;

export const GENERATORS_FILE = 'generators.json';

export class FileGeneratorRegistry implements GeneratorRegistry {
  /** Writes of this process, one after another (another process's write between a read and a rename is lost: admins add generators rarely). */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(readonly path: string) {}

  private async read(): Promise<GeneratorRecord[]> {
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
      throw new PuffinError('internal', `the generator registry ${GENERATORS_FILE} is not JSON; fix or remove it`);
    }
    const list = (parsed as { generators?: unknown })?.generators;
    if (!Array.isArray(list)) throw new PuffinError('internal', `the generator registry ${GENERATORS_FILE} has no generators array; fix or remove it`);
    return list as GeneratorRecord[];
  }

  private async write(records: GeneratorRecord[]): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    const temp = `${this.path}.${process.pid}.${Date.now()}.tmp`;
    await writeFile(temp, `${JSON.stringify({ generators: records }, null, 2)}\n`, { mode: 0o600 });
    await rename(temp, this.path);
  }

  private change<T>(fn: (records: GeneratorRecord[]) => { records?: GeneratorRecord[]; value: T }): Promise<T> {
    const next = this.queue.then(async () => {
      const { records, value } = fn(await this.read());
      if (records) await this.write(records);
      return value;
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  putGenerator(record: GeneratorRecord): Promise<void> {
    checkGenerator(record);
    const copy = JSON.parse(JSON.stringify(record)) as GeneratorRecord;
    return this.change((records) => ({ records: [...records.filter((r) => r.name !== record.name), copy], value: undefined }));
  }

  async listGenerators(): Promise<GeneratorRecord[]> {
    return (await this.read()).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  deleteGenerator(name: string): Promise<boolean> {
    checkGeneratorName(name);
    return this.change((records) => {
      const kept = records.filter((r) => r.name !== name);
      return kept.length === records.length ? { value: false } : { records: kept, value: true };
    });
  }
}

/** The state store when it is Redis (shared by every process), else the JSON file under PUFFINDB_HOME. */
export function openGeneratorRegistry(settings: Settings, state: StateStore): GeneratorRegistry {
  return settings.redisUrl ? state : new FileGeneratorRegistry(join(settings.home, GENERATORS_FILE));
}
