// A Redis that stops answering while its connection stays open (frozen, overloaded, a
// failover in progress) is noticed by the first command that times out. From then on every
// call through the guard fails at once with 'unavailable', instead of each one waiting out
// its own timeout (a query makes several calls on its way out: progress, result, status,
// log, table pointers), until a PING answers again. That PING is retried in the background,
// each one bounded by the client's command timeout, so calls go through again as soon as
// Redis answers. A PING that times out as well has the client reconnect: the connection may
// lead nowhere (a primary that vanished without closing it, as in a network partition, is
// otherwise noticed only when TCP gives up, many minutes later); a new connection reaches
// whatever now answers at the address (the promoted replica), or fails fast. Used by the
// state store and the Iceberg pointer store, one guard per client.

import { PuffinError } from '../errors.ts';

/** Pause between PINGs while Redis is not answering (each PING is bounded by the command timeout). */
const PROBE_PAUSE_MS = 250;

export class RedisStallGuard {
  private stall: { since: number; cause: string } | undefined;
  private closed = false;

  /** `where` names the server in messages; `ping` sends one PING on the guarded client; `reconnect` drops its connection for a new one. */
  constructor(
    private readonly where: string,
    private readonly ping: () => Promise<unknown>,
    private readonly reconnect?: () => void,
  ) {}

  /** Calls are failing fast because Redis stopped answering. */
  get stalled(): boolean {
    return this.stall !== undefined;
  }

  /** Throws 'unavailable' at once while Redis is known not to answer. */
  check(op: string): void {
    if (!this.stall) return;
    const seconds = ((Date.now() - this.stall.since) / 1000).toFixed(1);
    throw new PuffinError('unavailable', `Redis at ${this.where} is unavailable (${op} not sent: Redis has not answered for ${seconds} s; ${this.stall.cause})`);
  }

  /** Look at a failed call: a timeout means Redis took it and did not answer, so calls stop until a PING answers. */
  failed(op: string, err: unknown): void {
    if (!isTimeout(err) || this.stall || this.closed) return;
    this.stall = { since: Date.now(), cause: `${op}: ${err instanceof Error ? err.message : String(err)}` };
    void this.probe();
  }

  /** Run `work`, failing fast while stalled and noticing a timeout. */
  async run<T>(op: string, work: () => Promise<T>): Promise<T> {
    this.check(op);
    try {
      return await work();
    } catch (err) {
      this.failed(op, err);
      throw err;
    }
  }

  close(): void {
    this.closed = true;
    this.stall = undefined;
  }

  private async probe(): Promise<void> {
    while (this.stall && !this.closed) {
      try {
        await this.ping();
        this.stall = undefined;
        return;
      } catch (err) {
        if (isTimeout(err) && !this.closed) this.reconnect?.();
        await new Promise<void>((resolve) => setTimeout(resolve, PROBE_PAUSE_MS).unref());
      }
    }
  }
}

/** An error of a command bounded in time that ran out: ioredis's command timeout, or a RedisTimeoutError. */
export function isTimeout(err: unknown): boolean {
  return err instanceof RedisTimeoutError || (err instanceof Error && err.message === 'Command timed out');
}

export class RedisTimeoutError extends Error {}

/**
 * Error replies that say the server cannot take commands for now, not that a command was
 * wrong: 'unavailable' (503), not 'internal'. READONLY: a demoted primary after a failover;
 * LOADING: a restart reading its data; OOM: memory full (maxmemory); BUSY: a script running
 * too long; MASTERDOWN, TRYAGAIN, CLUSTERDOWN: replication or cluster state in flux.
 */
export const TRANSIENT_REPLY = /^(READONLY|LOADING|OOM|BUSY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN)\b/;

/** ioredis reconnectOnError: a READONLY reply means the connection leads to a demoted primary; reconnect, resend nothing. */
export function reconnectOnReadonly(err: Error): 1 | false {
  return /^READONLY\b/.test(err.message) ? 1 : false;
}
