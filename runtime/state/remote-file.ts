// The registry of remote PuffinDB instances (`puffindb remote add NAME URL --key-env VAR`,
// /v1/remotes): what `SELECT ... THROUGH 'url'` and `NAME.table` in a query resolve against
// (runtime/exec/remote-fetch.ts). A record holds the instance's base URL and the name of
// the server's environment variable that holds the API key to call it with; the key itself
// is never stored, and is read from the environment each time the remote is called.
//
// Where it is kept: with REDIS_URL set, one JSON value of the state store (key `remotes`,
// replaced by compare-and-swap), shared by every process on that Redis; without, the JSON
// file remotes.json under PUFFINDB_HOME (runtime/state/record-file.ts), which the CLI and a
// local `puffindb serve` share, exactly as query generators are kept.

import { join } from 'node:path';
import { PuffinError } from '../errors.ts';
import type { Settings } from '../settings.ts';
import { openStateStore } from './open.ts';
import { RecordFile } from './record-file.ts';
import type { StateStore } from './state-store.ts';

export interface RemoteRecord {
  /** How queries name it: `name.table`. A letter, then letters, digits or '_' (lower case). */
  name: string;
  /** The instance's base URL (http or https), e.g. https://east.example.com/ (its API is under v1/). */
  url: string;
  /** Environment variable of the server holding the API key sent to the remote (never the key). */
  keyEnv: string;
  createdAt: number;
}

export interface RemoteRegistry {
  putRemote(record: RemoteRecord): Promise<void>;
  /** Sorted by name. */
  listRemotes(): Promise<RemoteRecord[]>;
  deleteRemote(name: string): Promise<boolean>;
}

/** A remote's name: an SQL identifier that needs no quoting, as in `east.orders`. */
export const REMOTE_NAME = /^[a-z][a-z0-9_]{0,62}$/;
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

export const REMOTES_FILE = 'remotes.json';
/** The state store value holding the registry when it is Redis. */
export const REMOTES_KEY = 'remotes';

export function checkRemoteName(name: unknown): string {
  if (typeof name !== 'string' || !REMOTE_NAME.test(name)) {
    throw new PuffinError('bad_request', `remote name ${JSON.stringify(name)?.slice(0, 80)} is not a remote name (a lower-case letter, then up to 62 lower-case letters, digits or '_': queries name its tables name.table)`);
  }
  return name;
}

export function checkRemote(record: RemoteRecord): void {
  if (typeof record !== 'object' || record === null) throw new PuffinError('bad_request', 'remote record must be an object');
  checkRemoteName(record.name);
  if (typeof record.url !== 'string' || record.url.length === 0 || record.url.length > 2048) throw new PuffinError('bad_request', 'remote url must be a string of at most 2048 characters');
  if (typeof record.keyEnv !== 'string' || !ENV_NAME.test(record.keyEnv)) throw new PuffinError('bad_request', `remote keyEnv must be an environment variable name, got ${JSON.stringify(record.keyEnv)?.slice(0, 80)}`);
  if (typeof record.createdAt !== 'number' || !Number.isFinite(record.createdAt)) throw new PuffinError('bad_request', 'remote createdAt must be a time in ms');
}

export class FileRemoteRegistry implements RemoteRegistry {
  private readonly file: RecordFile<RemoteRecord>;

  constructor(readonly path: string) {
    this.file = new RecordFile(path, { key: 'remotes', check: checkRemote, checkName: checkRemoteName });
  }

  putRemote(record: RemoteRecord): Promise<void> {
    return this.file.put(record);
  }

  listRemotes(): Promise<RemoteRecord[]> {
    return this.file.list();
  }

  deleteRemote(name: string): Promise<boolean> {
    return this.file.delete(name);
  }
}

/** The registry as one state store value, changed by compare-and-swap (retried on a race). */
export class StateRemoteRegistry implements RemoteRegistry {
  constructor(private readonly state: () => Promise<StateStore>) {}

  private async read(): Promise<{ raw: string | undefined; records: RemoteRecord[] }> {
    const raw = await (await this.state()).getValue(REMOTES_KEY);
    if (raw === undefined) return { raw, records: [] };
    const parsed = JSON.parse(raw) as { remotes?: RemoteRecord[] };
    return { raw, records: Array.isArray(parsed.remotes) ? parsed.remotes : [] };
  }

  private async change(fn: (records: RemoteRecord[]) => RemoteRecord[] | undefined): Promise<boolean> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const { raw, records } = await this.read();
      const next = fn(records);
      if (!next) return false;
      if (await (await this.state()).compareAndSwap(REMOTES_KEY, raw, JSON.stringify({ remotes: next }))) return true;
    }
    throw new PuffinError('conflict', 'the remote registry changed under 20 writes in a row; try again');
  }

  async putRemote(record: RemoteRecord): Promise<void> {
    checkRemote(record);
    const copy = JSON.parse(JSON.stringify(record)) as RemoteRecord;
    await this.change((records) => [...records.filter((r) => r.name !== record.name), copy]);
  }

  async listRemotes(): Promise<RemoteRecord[]> {
    return (await this.read()).records.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  deleteRemote(name: string): Promise<boolean> {
    checkRemoteName(name);
    return this.change((records) => (records.some((r) => r.name === name) ? records.filter((r) => r.name !== name) : undefined));
  }
}

/**
 * The state store's value when it is Redis (shared by every process), else the JSON file
 * under PUFFINDB_HOME. Without a state store at hand (a one-shot CLI query with REDIS_URL
 * set), one is opened on first use; `close()` closes what was opened here.
 */
export function openRemoteRegistry(settings: Settings, state?: StateStore): RemoteRegistry & { close(): Promise<void> } {
  if (!settings.redisUrl) return Object.assign(new FileRemoteRegistry(join(settings.home, REMOTES_FILE)), { close: async () => undefined });
  let opened: Promise<StateStore> | undefined;
  const store = () => (state ? Promise.resolve(state) : (opened ??= openStateStore(settings)));
  return Object.assign(new StateRemoteRegistry(store), { close: async () => void (opened ? await (await opened).close() : undefined) });
}
