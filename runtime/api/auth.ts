// Bearer API keys. A key is a random secret shown once when it is made; the state store
// keeps only its sha256, so a leaked store leaks no usable key. Roles are ordered:
// reader < writer < admin. The first admin key comes from PUFFINDB_ADMIN_KEY, or from the
// Secrets Manager secret PUFFINDB_ADMIN_KEY_SECRET_ARN names (deployed), or is generated
// when no admin key exists yet.
//
// Seeding the store at start also writes a marker (runtime/state/seed-marker.ts). While the
// server runs, StateSeed watches it: a store that lost it (a Redis restarted empty) is
// reported by health, and the configured admin key is put back at once, so an operator can
// get in and re-create the other keys without restarting anything.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from 'hono';
import { ulid } from 'ulid';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PuffinError, toPuffinError } from '../errors.ts';
import type { Settings } from '../settings.ts';
import { readSecretString } from '../state/secrets.ts';
import { readSeedMarker, writeSeedMarker } from '../state/seed-marker.ts';
import { scramVerifier } from '../pgwire/scram.ts';
import type { ApiKeyRecord, ApiKeyRole, StateStore } from '../state/state-store.ts';

export const ROLES: readonly ApiKeyRole[] = ['reader', 'writer', 'admin'];
const RANK: Record<ApiKeyRole, number> = { reader: 1, writer: 2, admin: 3 };
/** The id PUFFINDB_ADMIN_KEY (or the generated first key) is stored under. */
export const BOOTSTRAP_KEY_ID = 'bootstrap-admin';
const MIN_SECRET_LENGTH = 16;

/** Who is calling: the key's id, name and role (never its secret or hash). */
export interface Principal {
  id: string;
  name: string;
  role: ApiKeyRole;
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

export function hasRole(principal: Principal, needed: ApiKeyRole): boolean {
  return RANK[principal.role] >= RANK[needed];
}

function newSecret(): string {
  return `pdb_${randomBytes(32).toString('base64url')}`;
}

/** Make a key; the secret is returned here and never again. */
export async function createApiKey(state: StateStore, name: string, role: ApiKeyRole): Promise<{ record: ApiKeyRecord; secret: string }> {
  const secret = newSecret();
  const record: ApiKeyRecord = { id: `key_${ulid().toLowerCase()}`, name, role, hash: hashSecret(secret), createdAt: Date.now(), scram: scramVerifier(secret) };
  await state.putApiKey(record);
  return { record, secret };
}

/**
 * The configured first admin key: PUFFINDB_ADMIN_KEY when set, else the SecretString of
 * PUFFINDB_ADMIN_KEY_SECRET_ARN (read here, once per call: call it once at start), else none.
 */
export async function resolveAdminKey(
  settings: Pick<Settings, 'adminKey' | 'adminKeySecretArn' | 'region'>,
  secrets?: SecretsManagerClient,
): Promise<string | undefined> {
  if (settings.adminKey !== undefined) return settings.adminKey;
  if (!settings.adminKeySecretArn) return undefined;
  return readSecretString(settings.adminKeySecretArn, settings.region, { client: secrets, what: 'the first admin API key' });
}

/**
 * Make sure an admin can get in. With `adminKey` (PUFFINDB_ADMIN_KEY) that key is the
 * bootstrap admin; without one, a key is generated only when no admin key exists, and
 * returned so the caller can show it once.
 */
export async function bootstrapAdminKey(state: StateStore, adminKey: string | undefined): Promise<{ generated?: string }> {
  const seeded = await seedAdminKey(state, adminKey);
  await writeSeedMarker(state, { seededAt: Date.now() });
  seededHere.add(state);
  return seeded;
}

/** Stores this process seeded: a StateSeed over one knows from the start that the marker was there. */
const seededHere = new WeakSet<StateStore>();

async function seedAdminKey(state: StateStore, adminKey: string | undefined): Promise<{ generated?: string }> {
  if (adminKey !== undefined) {
    if (adminKey.length < MIN_SECRET_LENGTH) throw new PuffinError('bad_request', `PUFFINDB_ADMIN_KEY must be at least ${MIN_SECRET_LENGTH} characters`);
    const hash = hashSecret(adminKey);
    const holder = await state.findApiKeyByHash(hash);
    if (holder?.role === 'admin') {
      // Seeded before keys had SCRAM verifiers: add one, so the wire protocol takes this key too.
      if (!holder.scram) await state.putApiKey({ ...holder, scram: scramVerifier(adminKey) });
      return {};
    }
    if (holder) throw new PuffinError('conflict', `PUFFINDB_ADMIN_KEY is already the key of '${holder.name}' (${holder.role}); choose another secret`);
    await state.putApiKey({ id: BOOTSTRAP_KEY_ID, name: 'PUFFINDB_ADMIN_KEY', role: 'admin', hash, createdAt: Date.now(), scram: scramVerifier(adminKey) });
    return {};
  }
  const keys = await state.listApiKeys();
  if (keys.some((k) => k.role === 'admin')) return {};
  const secret = newSecret();
  await state.putApiKey({ id: BOOTSTRAP_KEY_ID, name: 'generated at first start', role: 'admin', hash: hashSecret(secret), createdAt: Date.now(), scram: scramVerifier(secret) });
  return { generated: secret };
}

/**
 * The caller of a request, from `Authorization: Bearer <key>`; 401 without a valid key.
 * With `seed`, the configured admin key works again at once after the store lost its data.
 */
export async function authenticate(c: Context, state: StateStore, seed?: StateSeed): Promise<Principal> {
  const header = c.req.header('authorization');
  if (!header) throw new PuffinError('unauthorized', 'this route needs an API key: send the header Authorization: Bearer <key>');
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) throw new PuffinError('unauthorized', "the Authorization header must be 'Bearer <key>'");
  const hash = hashSecret(m[1]);
  const record = (await state.findApiKeyByHash(hash)) ?? (await seed?.recover(hash));
  if (!record) throw new PuffinError('unauthorized', 'the API key is not valid (unknown or deleted)');
  return { id: record.id, name: record.name, role: record.role };
}

/** How long health reports a loss of the state store's data after it was found. */
export const DEFAULT_LOSS_REPORT_MS = 5 * 60 * 1000;

export interface StateSeedOptions {
  /** Report a loss in health for this long after it was found. Default 5 minutes. */
  lossReportMs?: number;
  /** Told once per loss found (default: a JSON line on stderr). */
  onLoss?: (message: string) => void;
}

/**
 * Keeps the state store seeded while a server runs (see the top of this file). The marker
 * is checked by health (condition()) and when a key is not found (recover()); a store that
 * lost it gets the configured admin key and the marker back, with the time of the loss,
 * which every server's health reports for lossReportMs. Without a configured admin key
 * nothing can be put back: health stays degraded until a restart generates a key.
 */
export class StateSeed {
  private readonly adminHash: Buffer | undefined;
  private readonly lossReportMs: number;
  private readonly onLoss: (message: string) => void;
  /** This process saw the marker (or wrote it): its absence now means a loss, not a new store. */
  private knownSeeded: boolean;
  private reseeding: Promise<void> | undefined;
  /** A loss that could not be repaired (no configured admin key): when it was found. */
  private unrepairedSince: number | undefined;

  constructor(
    private readonly state: StateStore,
    private readonly adminKey: string | undefined,
    options: StateSeedOptions = {},
  ) {
    this.adminHash = adminKey === undefined ? undefined : Buffer.from(hashSecret(adminKey), 'hex');
    this.lossReportMs = options.lossReportMs ?? DEFAULT_LOSS_REPORT_MS;
    this.onLoss = options.onLoss ?? ((message) => console.error(JSON.stringify({ level: 'error', message: 'state store lost its data', detail: message })));
    this.knownSeeded = seededHere.has(state);
  }

  /**
   * undefined when the state store is fine, else why not (an 'unavailable' error): it is
   * unreachable or does not answer in time, or it was found to have lost its data (re-seeded
   * here, and reported for lossReportMs after).
   */
  async problem(): Promise<PuffinError | undefined> {
    try {
      await this.state.ping();
      let marker = await readSeedMarker(this.state);
      if (!marker) {
        if (!this.knownSeeded) {
          // A process that never saw the store seeded cannot tell new from emptied: it seeds.
          marker = await writeSeedMarker(this.state, { seededAt: Date.now() });
        } else {
          await this.reseed();
          marker = await readSeedMarker(this.state);
          if (!marker) return new PuffinError('unavailable', lostMessage(this.unrepairedSince ?? Date.now(), NO_ADMIN_KEY));
        }
      }
      this.knownSeeded = true;
      if (marker.lostAt !== undefined && Date.now() - marker.lostAt < this.lossReportMs) {
        return new PuffinError('unavailable', lostMessage(marker.lostAt, 'the configured admin key was put back'));
      }
      return undefined;
    } catch (err) {
      return toPuffinError(err);
    }
  }

  /**
   * The configured admin key's record when `hash` is that key's and the store lost its data
   * (no marker): both are put back. undefined otherwise, also when the key was deleted
   * while the store kept its data (the marker is there).
   */
  async recover(hash: string): Promise<ApiKeyRecord | undefined> {
    if (!this.adminHash || !/^[0-9a-f]{64}$/.test(hash)) return undefined;
    if (!timingSafeEqual(Buffer.from(hash, 'hex'), this.adminHash)) return undefined;
    if (await readSeedMarker(this.state)) return undefined;
    await this.reseed();
    return this.state.findApiKeyByHash(hash);
  }

  /** Put the configured admin key and the marker (with the loss's time) back; one at a time. */
  private reseed(): Promise<void> {
    this.reseeding ??= (async () => {
      try {
        if (await readSeedMarker(this.state)) return; // another server did it
        const lostAt = Date.now();
        if (this.adminKey === undefined) {
          if (this.unrepairedSince === undefined) this.onLoss(lostMessage(lostAt, NO_ADMIN_KEY));
          this.unrepairedSince ??= lostAt;
          return;
        }
        await seedAdminKey(this.state, this.adminKey);
        await writeSeedMarker(this.state, { seededAt: lostAt, lostAt });
        this.onLoss(lostMessage(lostAt, 'the configured admin key was put back'));
      } finally {
        this.reseeding = undefined;
      }
    })();
    return this.reseeding;
  }
}

const NO_ADMIN_KEY = 'no admin key is configured (PUFFINDB_ADMIN_KEY), so none could be put back: restart the server to generate one';

function lostMessage(lostAt: number, what: string): string {
  return (
    `the state store lost its data (Redis restarted empty, or failed over to a replica without it?); found at ${new Date(lostAt).toISOString()}: ` +
    `${what}; every other API key and all query records are gone: re-create the keys (POST /v1/keys) — docs/OPERATIONS.md`
  );
}

export function requireRole(principal: Principal, needed: ApiKeyRole, what: string): void {
  if (!hasRole(principal, needed)) {
    throw new PuffinError('forbidden', `${what} needs the ${needed} role; key '${principal.name}' is a ${principal.role}`);
  }
}
