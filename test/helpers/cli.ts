// `puffindb` run in the test's own process (runtime/cli/main.ts), over a home and warehouse
// of the test's: the settings are set before the file's (or suite's) tests and restored
// after them. One worker process, as a small machine would have.

import { after, before } from 'node:test';
import { main } from '../../runtime/cli/main.ts';

const KEYS = ['PUFFINDB_HOME', 'PUFFINDB_WAREHOUSE', 'PUFFINDB_WORKERS'] as const;

/** Call at module or suite level; answers a runner of CLI commands giving their output. */
export function cliInProcess(home: string, warehouse: string): (...argv: string[]) => Promise<string> {
  const saved = KEYS.map((k) => process.env[k]);
  before(() => {
    process.env.PUFFINDB_HOME = home;
    process.env.PUFFINDB_WAREHOUSE = warehouse;
    process.env.PUFFINDB_WORKERS = '1';
  });
  after(() => {
    KEYS.forEach((k, i) => {
      if (saved[i] === undefined) delete process.env[k];
      else process.env[k] = saved[i];
    });
  });
  return async (...argv) => {
    const lines: string[] = [];
    await main(argv, (s) => lines.push(s));
    return lines.join('\n');
  };
}
