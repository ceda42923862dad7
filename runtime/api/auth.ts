// Bearer API keys. A key is a random secret shown once when it is made; the state store
// keeps only its sha256, so a leaked store leaks no usable key. Roles are ordered:
// reader < writer < admin. The first admin key comes from PUFFINDB_ADMIN_KEY, or from the
// Secrets Manager secret PUFFINDB_ADMIN_KEY_SECRET_ARN names (deployed), or is generated
// when no admin key exists yet.

import { createHash, randomBytes } from 'node:crypto';
import type { Context } from 'hono';
import { ulid } from 'ulid';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PuffinError } from '../errors.ts';
import type { Settings } from '../settings.ts';
import { readSecretString } from '../state/secrets.ts';
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
  const record: ApiKeyRecord = { id: `key_${ulid().toLowerCase()}`, name, role, hash: hashSecret(secret), createdAt: Date.now() };
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
  if (adminKey !== undefined) {
    if (adminKey.length < MIN_SECRET_LENGTH) throw new PuffinError('bad_request', `PUFFINDB_ADMIN_KEY must be at least ${MIN_SECRET_LENGTH} characters`);
    const hash = hashSecret(adminKey);
    const holder = await state.findApiKeyByHash(hash);
    if (holder?.role === 'admin') return {};
    if (holder) throw new PuffinError('conflict', `PUFFINDB_ADMIN_KEY is already the key of '${holder.name}' (${holder.role}); choose another secret`);
    await state.putApiKey({ id: BOOTSTRAP_KEY_ID, name: 'PUFFINDB_ADMIN_KEY', role: 'admin', hash, createdAt: Date.now() });
    return {};
  }
  const keys = await state.listApiKeys();
  if (keys.some((k) => k.role === 'admin')) return {};
  const secret = newSecret();
  await state.putApiKey({ id: BOOTSTRAP_KEY_ID, name: 'generated at first start', role: 'admin', hash: hashSecret(secret), createdAt: Date.now() });
  return { generated: secret };
}

/** The caller of a request, from `Authorization: Bearer <key>`; 401 without a valid key. */
export async function authenticate(c: Context, state: StateStore): Promise<Principal> {
  const header = c.req.header('authorization');
  if (!header) throw new PuffinError('unauthorized', 'this route needs an API key: send the header Authorization: Bearer <key>');
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) throw new PuffinError('unauthorized', "the Authorization header must be 'Bearer <key>'");
  const record = await state.findApiKeyByHash(hashSecret(m[1]));
  if (!record) throw new PuffinError('unauthorized', 'the API key is not valid (unknown or deleted)');
  return { id: record.id, name: record.name, role: record.role };
}

export function requireRole(principal: Principal, needed: ApiKeyRole, what: string): void {
  if (!hasRole(principal, needed)) {
    throw new PuffinError('forbidden', `${what} needs the ${needed} role; key '${principal.name}' is a ${principal.role}`);
  }
}
