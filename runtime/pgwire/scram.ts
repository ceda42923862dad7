// SCRAM-SHA-256 (RFC 5802/7677) with an API key as the password. The state store keeps
// only sha256(key), from which SCRAM's keys cannot be derived, so a key gets a SCRAM
// verifier (StoredKey, ServerKey) when it is created; the key itself is still never
// stored. Clients may give any user name, so the server cannot pick a key's own salt
// before the proof arrives: every verifier uses the deployment-wide salt and iteration
// count below, and a proof is checked against each key's StoredKey (one HMAC per key; no
// PBKDF2 at login). A shared salt only matters for guessable passwords; generated keys
// are 256-bit random, and even a chosen PUFFINDB_ADMIN_KEY is harder to brute-force from
// its verifier (4096 PBKDF2 rounds) than from the plain sha256 stored next to it.

import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ScramVerifier } from '../state/state-store.ts';

export const SCRAM_SALT = Buffer.from('puffindb-pgwire-scram-sha-256-v1').toString('base64');
export const SCRAM_ITERATIONS = 4096;

const hmac = (key: Buffer, data: string): Buffer => createHmac('sha256', key).update(data, 'utf8').digest();
const sha256 = (b: Buffer): Buffer => createHash('sha256').update(b).digest();

/** The verifier of a secret (made when a key is created). */
export function scramVerifier(secret: string): ScramVerifier {
  const salted = pbkdf2Sync(secret.normalize('NFKC'), Buffer.from(SCRAM_SALT, 'base64'), SCRAM_ITERATIONS, 32, 'sha256');
  return {
    salt: SCRAM_SALT,
    iterations: SCRAM_ITERATIONS,
    storedKey: sha256(hmac(salted, 'Client Key')).toString('base64'),
    serverKey: hmac(salted, 'Server Key').toString('base64'),
  };
}

/** Parse `a=1,b=2` SCRAM attributes. */
function attributes(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) out.set(part[0], part.slice(2));
  }
  return out;
}

export class ScramError extends Error {}

/** One SCRAM exchange on the server side. */
export class ScramServer {
  private clientFirstBare = '';
  private serverFirst = '';
  private gs2Header = '';
  private nonce = '';

  /** client-first-message -> server-first-message. */
  start(clientFirst: string): string {
    if (clientFirst.length > 2048) throw new ScramError('client-first-message is too long');
    const m = /^([ny]|p=[^,]*),([^,]*),(.*)$/.exec(clientFirst);
    if (!m) throw new ScramError('malformed SCRAM client-first-message');
    if (m[1].startsWith('p=')) throw new ScramError('channel binding is not supported; connect with channel_binding=disable or prefer');
    this.gs2Header = `${m[1]},${m[2]},`;
    this.clientFirstBare = m[3];
    const clientNonce = attributes(this.clientFirstBare).get('r');
    if (!clientNonce || !/^[\x21-\x2b\x2d-\x7e]+$/.test(clientNonce)) throw new ScramError('SCRAM client nonce is missing or invalid');
    this.nonce = clientNonce + randomBytes(18).toString('base64');
    this.serverFirst = `r=${this.nonce},s=${SCRAM_SALT},i=${SCRAM_ITERATIONS}`;
    return this.serverFirst;
  }

  /**
   * client-final-message: the verifier among `candidates` whose key made the proof, and the
   * server-final-message to answer with; undefined when none did.
   */
  finish<T extends { scram?: ScramVerifier }>(clientFinal: string, candidates: readonly T[]): { record: T; serverFinal: string } | undefined {
    if (clientFinal.length > 2048) throw new ScramError('client-final-message is too long');
    const proofAt = clientFinal.lastIndexOf(',p=');
    if (proofAt < 0) throw new ScramError('SCRAM client-final-message has no proof');
    const withoutProof = clientFinal.slice(0, proofAt);
    const attrs = attributes(withoutProof);
    if (attrs.get('c') !== Buffer.from(this.gs2Header).toString('base64')) throw new ScramError('SCRAM channel binding does not match');
    if (attrs.get('r') !== this.nonce) throw new ScramError('SCRAM nonce does not match');
    const proof = Buffer.from(clientFinal.slice(proofAt + 3), 'base64');
    if (proof.length !== 32) throw new ScramError('SCRAM proof has the wrong length');
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    let found: { record: T; serverFinal: string } | undefined;
    for (const record of candidates) {
      const v = record.scram;
      if (!v || v.salt !== SCRAM_SALT || v.iterations !== SCRAM_ITERATIONS) continue;
      const storedKey = Buffer.from(v.storedKey, 'base64');
      if (storedKey.length !== 32) continue;
      const signature = hmac(storedKey, authMessage);
      const clientKey = Buffer.alloc(32);
      for (let i = 0; i < 32; i++) clientKey[i] = proof[i] ^ signature[i];
      // Every candidate is checked (no early exit), so timing says nothing about which key matched.
      if (timingSafeEqual(sha256(clientKey), storedKey) && !found) {
        found = { record, serverFinal: `v=${hmac(Buffer.from(v.serverKey, 'base64'), authMessage).toString('base64')}` };
      }
    }
    return found;
  }
}
