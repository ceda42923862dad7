// Hourly MeterUsage, exactly once per hour and dimension, across restarts and across two
// instances of the service. The state store keeps a mark: the last hour whose records were
// all sent, with the sub-unit remainders carried into the next hour. A run takes a lock,
// then for each closed hour after the mark sends one record per dimension and advances the
// mark with compareAndSwap. A crash between a send and the swap resends that hour with the
// same Timestamp, dimension and quantity: MeterUsage is idempotent for identical requests
// (it returns the same metering record), so the buyer is still billed once.
//
// MeterUsage accepts records up to six hours old. An hour that could not be sent in time
// (the instance was stopped) has its usage added to the oldest hour that can still be sent,
// so usage is delayed, never dropped.

import { createHash } from 'node:crypto';
import { MeterUsageCommand, type MarketplaceMeteringClient } from '@aws-sdk/client-marketplace-metering';
import { PuffinError } from '../errors.ts';
import type { StateStore } from '../state/state-store.ts';
import { METERING_DIMENSIONS, type DimensionKey, type HourUsage } from './dimensions.ts';
import type { UsageSource } from './usage-source.ts';

export const HOUR_MS = 60 * 60 * 1000;
/** MeterUsage refuses timestamps more than six hours old; keep a margin for slow runs. */
const OLDEST_SENDABLE_MS = 5 * HOUR_MS;

export interface MeteringMark {
  /** Start (ms since the epoch) of the last hour whose records were all sent. */
  hour: number;
  /** Raw usage below one billed unit, carried into the next hour. */
  carry: HourUsage;
}

export interface SentRecord {
  hour: number;
  dimension: DimensionKey;
  quantity: number;
}

export interface MeterRunReport {
  sent: SentRecord[];
  /** Why nothing (more) was sent, when that was not simply "no closed hour yet". */
  stoppedBy?: 'locked' | 'lost_race';
}

export interface HourlyMeterOptions {
  state: StateStore;
  client: Pick<MarketplaceMeteringClient, 'send'>;
  productCode: string;
  source: UsageSource;
  /** How long after an hour ends before it is metered: the query log's flush delay. Default 5 min. */
  graceMs?: number;
  now?: () => number;
  /** Distinguishes deployments sharing one state store; default the product code. */
  markKey?: string;
}

/** Errors meaning a record for this hour and dimension was emitted before. */
const ALREADY_SENT = new Set(['DuplicateRequestException', 'IdempotencyConflictException']);

/** A UUID-shaped idempotency token, the same for every attempt at one hour and dimension. */
export function clientToken(productCode: string, record: Pick<SentRecord, 'hour' | 'dimension'>): string {
  const h = createHash('sha256').update(`${productCode}|${record.hour}|${record.dimension}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

const hourStart = (ms: number): number => Math.floor(ms / HOUR_MS) * HOUR_MS;
const zeroUsage = (): HourUsage => ({ scanned_gb: 0, queries: 0 });

function parseMark(key: string, raw: string): MeteringMark {
  try {
    const mark = JSON.parse(raw) as MeteringMark;
    if (Number.isInteger(mark.hour) && mark.hour % HOUR_MS === 0 && typeof mark.carry === 'object') return mark;
  } catch {
    // fall through to the error below
  }
  throw new PuffinError('internal', `the metering mark at ${key} is not a valid mark: ${raw.slice(0, 200)}`);
}

export class HourlyMeter {
  private readonly graceMs: number;
  private readonly now: () => number;
  private readonly markKey: string;
  private readonly lockKey: string;

  constructor(private readonly options: HourlyMeterOptions) {
    if (!/^[A-Za-z0-9]+$/.test(options.productCode)) {
      throw new PuffinError('bad_request', `product code '${options.productCode}' is not a Marketplace product code (letters and digits)`);
    }
    this.graceMs = options.graceMs ?? 5 * 60 * 1000;
    this.now = options.now ?? Date.now;
    this.markKey = `puffindb:metering:mark:${options.markKey ?? options.productCode}`;
    this.lockKey = `puffindb:metering:lock:${options.markKey ?? options.productCode}`;
  }

  /** Send every closed hour not yet sent. */
  async runOnce(): Promise<MeterRunReport> {
    const { state } = this.options;
    const lease = await state.acquireLock(this.lockKey, 10 * 60 * 1000);
    if (!lease) return { sent: [], stoppedBy: 'locked' };
    try {
      return await this.sendClosedHours();
    } finally {
      await state.releaseLock(lease);
    }
  }

  private async sendClosedHours(): Promise<MeterRunReport> {
    const { state } = this.options;
    const now = this.now();
    let raw = await state.getValue(this.markKey);
    if (raw === undefined) {
      // First run: metering starts with the hour the deployment started in.
      raw = JSON.stringify({ hour: hourStart(now) - HOUR_MS, carry: zeroUsage() } satisfies MeteringMark);
      if (!(await state.compareAndSwap(this.markKey, undefined, raw))) return { sent: [], stoppedBy: 'lost_race' };
    }
    let mark = parseMark(this.markKey, raw);
    const sent: SentRecord[] = [];
    for (;;) {
      const from = mark.hour + HOUR_MS;
      if (from + HOUR_MS + this.graceMs > now) return { sent };
      // Hours too old to send are folded into the oldest sendable one.
      const hour = Math.max(from, hourStart(now - OLDEST_SENDABLE_MS));
      const usage = await this.options.source.usage(from, hour + HOUR_MS);
      const carry = zeroUsage();
      const records: SentRecord[] = [];
      for (const dim of METERING_DIMENSIONS) {
        const total = (mark.carry[dim.key] ?? 0) + usage[dim.key];
        const quantity = Math.floor(total / dim.rawPerUnit);
        carry[dim.key] = total - quantity * dim.rawPerUnit;
        records.push({ hour, dimension: dim.key, quantity });
      }
      for (const r of records) await this.send(r);
      const next = JSON.stringify({ hour, carry } satisfies MeteringMark);
      if (!(await state.compareAndSwap(this.markKey, raw, next))) return { sent: [...sent, ...records], stoppedBy: 'lost_race' };
      sent.push(...records);
      raw = next;
      mark = { hour, carry };
    }
  }

  private async send(record: SentRecord): Promise<void> {
    try {
      await this.options.client.send(
        new MeterUsageCommand({
          ProductCode: this.options.productCode,
          Timestamp: new Date(record.hour),
          UsageDimension: record.dimension,
          UsageQuantity: record.quantity,
          DryRun: false,
          ClientToken: clientToken(this.options.productCode, record),
        }),
      );
    } catch (err) {
      const name = (err as { name?: string }).name ?? 'Error';
      if (ALREADY_SENT.has(name)) return;
      throw new PuffinError('unavailable', `MeterUsage for ${record.dimension} at ${new Date(record.hour).toISOString()} failed: ${name}: ${(err as Error).message}`, {
        dimension: record.dimension,
        hour: record.hour,
      });
    }
  }
}
