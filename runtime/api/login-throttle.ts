// Failed logins, throttled per client address. Each address has a bucket of `burst` failures
// refilled at `perMinute`; a request that presents a key and fails authentication takes one.
// While an address's bucket is empty, every request from it that needs a key is answered
// 429 with Retry-After BEFORE its key is looked at, valid keys included:
//
// - If a valid key got through a throttled address, the 200 against the 429 would tell an
//   attacker which guess was right, so the throttle would not slow guessing at all. So key
//   checks from one address are bounded: at most burst + perMinute per minute.
// - An attacker cannot lock out a real key: the throttle is per address, not per key, and
//   its wait is one refill interval (60/perMinute s, one second by default). The key's users
//   elsewhere are unaffected; a user behind the attacker's own address (same NAT) is
//   delayed while the attack goes on, and served as soon as it stops.
// - Successful logins take nothing, so a busy client with a good key is never throttled.
//
// Addresses are grouped as an attacker would get them: an IPv4 address each, IPv6 by /64
// (one host usually owns a whole /64). Memory is bounded: at most `maxAddresses` buckets,
// least recently failing evicted first. An attacker with more addresses than that can reset the
// bucket of its oldest ones, which costs it as many addresses as the bound.
//
// Like the per-key rate limit (rate-limit.ts), buckets live in this process: one server, or
// one warm Lambda container (where the address is API Gateway's source IP), so a fleet
// allows each address that many failures per process.

import { isIP } from 'node:net';
import { PuffinError } from '../errors.ts';

export interface LoginThrottleOptions {
  /** Failures an address may make at once; 0 turns the throttle off. */
  burst: number;
  /** Failures per minute an address regains. */
  perMinute: number;
  /** Most addresses remembered at once. */
  maxAddresses?: number;
  now?: () => number;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

const DEFAULT_MAX_ADDRESSES = 10_000;

/** The throttle's key for a client address: IPv4 as is (also when IPv4-mapped), IPv6 by its /64. */
export function addressGroup(address: string | undefined): string {
  if (!address) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1];
  if (isIP(address) !== 6) return address;
  const [head, tail = ''] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

export class LoginThrottle {
  private readonly buckets = new Map<string, Bucket>();
  private readonly burst: number;
  private readonly perMs: number;
  private readonly maxAddresses: number;
  private readonly now: () => number;

  constructor(options: LoginThrottleOptions) {
    this.burst = Math.max(0, options.burst);
    this.perMs = Math.max(0, options.perMinute) / 60_000;
    this.maxAddresses = Math.max(1, options.maxAddresses ?? DEFAULT_MAX_ADDRESSES);
    this.now = options.now ?? Date.now;
  }

  get enabled(): boolean {
    return this.burst > 0;
  }

  /** Addresses remembered now (for tests of the bound). */
  get size(): number {
    return this.buckets.size;
  }

  private tokens(bucket: Bucket, now: number): number {
    return Math.min(this.burst, bucket.tokens + (now - bucket.updatedAt) * this.perMs);
  }

  /** Throws 'rate_limited' (with Retry-After) when `address` has no failures left. */
  check(address: string | undefined): void {
    if (!this.enabled) return;
    const group = addressGroup(address);
    const bucket = this.buckets.get(group);
    if (!bucket) return;
    const tokens = this.tokens(bucket, this.now());
    if (tokens >= this.burst) this.buckets.delete(group); // refilled: the same as never having failed
    if (tokens >= 1) return;
    const retryAfterSeconds = this.perMs > 0 ? Math.max(1, Math.ceil((1 - tokens) / this.perMs / 1000)) : 3600;
    throw new PuffinError(
      'rate_limited',
      `too many failed logins from ${group}; retry in ${retryAfterSeconds} s (every request needing a key from this address waits, a valid key too)`,
      { retryAfterSeconds },
    );
  }

  /** Count a failed login from `address`. */
  fail(address: string | undefined): void {
    if (!this.enabled) return;
    const group = addressGroup(address);
    const now = this.now();
    const bucket = this.buckets.get(group);
    const tokens = bucket ? this.tokens(bucket, now) : this.burst;
    this.buckets.delete(group); // re-inserted last: the map's order is least recently failing first
    this.buckets.set(group, { tokens: Math.max(0, tokens - 1), updatedAt: now });
    this.evict();
  }

  /** Past the bound, forget the least recently failing addresses (the map's first entries). */
  private evict(): void {
    for (const group of this.buckets.keys()) {
      if (this.buckets.size <= this.maxAddresses) return;
      this.buckets.delete(group);
    }
  }

  /**
   * Run an authentication for a request from `address`: refused at once while the address is
   * throttled, and counted as a failure when it fails with 'unauthorized' after presenting a
   * key (`presented`: the request carried an Authorization header).
   */
  async guard<T>(address: string | undefined, presented: boolean, authenticate: () => Promise<T>): Promise<T> {
    this.check(address);
    try {
      return await authenticate();
    } catch (err) {
      if (presented && err instanceof PuffinError && err.code === 'unauthorized') this.fail(address);
      throw err;
    }
  }
}
