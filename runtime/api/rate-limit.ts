// A token bucket per API key: `burst` requests at once, refilled at `perSecond`. Buckets
// live in this process (one server, or one warm Lambda container), which bounds a key's
// rate per process rather than across a fleet.

import { PuffinError } from '../errors.ts';

interface Bucket {
  tokens: number;
  updatedAt: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Take one token for `key`; throws 'rate_limited' (with the wait in seconds) when there is none. */
  take(key: string): void {
    if (this.perSecond <= 0) return;
    const capacity = Math.max(1, this.burst);
    const now = this.now();
    const bucket = this.buckets.get(key) ?? { tokens: capacity, updatedAt: now };
    bucket.tokens = Math.min(capacity, bucket.tokens + ((now - bucket.updatedAt) / 1000) * this.perSecond);
    bucket.updatedAt = now;
    this.buckets.set(key, bucket);
    if (bucket.tokens < 1) {
      const retryAfterSeconds = Math.ceil((1 - bucket.tokens) / this.perSecond);
      throw new PuffinError('rate_limited', `API key ${key} is over its rate of ${this.perSecond} requests per second (bursts of ${capacity}); retry in ${retryAfterSeconds} s`, { retryAfterSeconds });
    }
    bucket.tokens -= 1;
  }
}
