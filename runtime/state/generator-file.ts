// Query generators (runtime/sql/generators.ts) kept in a JSON file under PUFFINDB_HOME
// (runtime/state/record-file.ts): the registry `puffindb generator add` and a local
// `puffindb serve` share when there is no Redis. With REDIS_URL set both use the state
// store instead (openGeneratorRegistry).

import { join } from 'node:path';
import type { Settings } from '../settings.ts';
import { checkGenerator, checkGeneratorName } from './checks.ts';
import { RecordFile } from './record-file.ts';
import type { GeneratorRecord, StateStore } from './state-store.ts';

/** What the API and the CLI need of a generator registry: the StateStore's three methods. */
export type GeneratorRegistry = Pick<StateStore, 'putGenerator' | 'listGenerators' | 'deleteGenerator'>;

export const GENERATORS_FILE = 'generators.json';

export class FileGeneratorRegistry implements GeneratorRegistry {
  private readonly file: RecordFile<GeneratorRecord>;

  constructor(readonly path: string) {
    this.file = new RecordFile(path, { key: 'generators', check: checkGenerator, checkName: checkGeneratorName });
  }

  putGenerator(record: GeneratorRecord): Promise<void> {
    return this.file.put(record);
  }

  listGenerators(): Promise<GeneratorRecord[]> {
    return this.file.list();
  }

  deleteGenerator(name: string): Promise<boolean> {
    return this.file.delete(name);
  }
}

/** The state store when it is Redis (shared by every process), else the JSON file under PUFFINDB_HOME. */
export function openGeneratorRegistry(settings: Settings, state: StateStore): GeneratorRegistry {
  return settings.redisUrl ? state : new FileGeneratorRegistry(join(settings.home, GENERATORS_FILE));
}
