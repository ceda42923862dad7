// Authentication of a wire-protocol connection with an API key as the password (any user
// and database name). Over plain TCP: SCRAM-SHA-256 (the key never crosses the network),
// against the verifiers stored with the keys (runtime/pgwire/scram.ts); a key made before
// verifiers existed cannot be checked that way. Over TLS (PUFFINDB_PG_TLS_CERT/KEY): a
// cleartext password, checked by its sha256 like a bearer key, so every key works.
// Failures count against the client address in the same login throttle as HTTP.

import type { Principal } from '../api/auth.ts';
import { hashSecret, type StateSeed } from '../api/auth.ts';
import type { LoginThrottle } from '../api/login-throttle.ts';
import { PuffinError } from '../errors.ts';
import type { StateStore } from '../state/state-store.ts';
import { BodyReader, msg, ProtocolError } from './codec.ts';
import { ScramError, ScramServer } from './scram.ts';

const SASL = 10;
const SASL_CONTINUE = 11;
const SASL_FINAL = 12;
const CLEARTEXT = 3;

export interface AuthStep {
  reply?: Buffer;
  principal?: Principal;
}

const NO_VERIFIER_HINT =
  'the key is unknown, or was made before keys had SCRAM verifiers: make a new key (POST /v1/keys), or connect over TLS (sslmode=require, with PUFFINDB_PG_TLS_CERT configured), where any key works';

export class PgAuthenticator {
  constructor(
    private readonly state: StateStore,
    private readonly logins: LoginThrottle,
    private readonly seed?: StateSeed,
  ) {}

  /** The first authentication request: SASL (SCRAM-SHA-256) in the clear, cleartext password over TLS. */
  begin(tls: boolean): Buffer {
    if (tls) return msg('R').int32(CLEARTEXT).done();
    return msg('R').int32(SASL).cstring('SCRAM-SHA-256').raw(Buffer.from([0])).done();
  }

  /** The password-message exchange of one connection. */
  exchange(tls: boolean, address: string | undefined): { step(body: Buffer): Promise<AuthStep> } {
    if (tls) {
      return {
        step: (body) =>
          this.logins.guard(address, true, async () => {
            const password = new BodyReader(body).cstring();
            const hash = hashSecret(password);
            const record = (await this.state.findApiKeyByHash(hash)) ?? (await this.seed?.recover(hash));
            if (!record) throw new PuffinError('unauthorized', 'the API key is not valid (unknown or deleted)');
            return { principal: { id: record.id, name: record.name, role: record.role } };
          }),
      };
    }
    const scram = new ScramServer();
    let stage: 'initial' | 'final' | 'done' = 'initial';
    return {
      step: async (body) => {
        const r = new BodyReader(body);
        try {
          if (stage === 'initial') {
            this.logins.check(address);
            const mechanism = r.cstring();
            if (mechanism !== 'SCRAM-SHA-256') throw new PuffinError('unauthorized', `SASL mechanism ${JSON.stringify(mechanism.slice(0, 32))} is not offered; use SCRAM-SHA-256`);
            const len = r.int32();
            if (len < 0 || len > r.remaining) throw new ProtocolError('SASL initial response length is wrong');
            const serverFirst = scram.start(r.bytes(len).toString('utf8'));
            stage = 'final';
            return { reply: msg('R').int32(SASL_CONTINUE).raw(Buffer.from(serverFirst)).done() };
          }
          if (stage === 'final') {
            stage = 'done';
            const clientFinal = r.rest().toString('utf8');
            return await this.logins.guard(address, true, async () => {
              const found = scram.finish(clientFinal, await this.state.listApiKeys());
              if (!found) throw new PuffinError('unauthorized', NO_VERIFIER_HINT);
              const { record } = found;
              return { reply: msg('R').int32(SASL_FINAL).raw(Buffer.from(found.serverFinal)).done(), principal: { id: record.id, name: record.name, role: record.role } };
            });
          }
          throw new ProtocolError('authentication already finished');
        } catch (err) {
          if (err instanceof ScramError) {
            this.logins.fail(address);
            throw new PuffinError('unauthorized', err.message);
          }
          throw err;
        }
      },
    };
  }
}
