// The metering service against a local endpoint speaking the MeterUsage API (awsJson1_1):
// one record per hour per dimension, also across a restart and a crash between a send and
// the mark's swap (then the resend is identical, which MeterUsage deduplicates).

import { MarketplaceMeteringClient } from '@aws-sdk/client-marketplace-metering';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { GIGABYTE, type HourUsage } from '../../../runtime/metering/dimensions.ts';
import { HOUR_MS, HourlyMeter } from '../../../runtime/metering/hourly-meter.ts';
import type { UsageSource } from '../../../runtime/metering/usage-source.ts';
import { MemoryStateStore } from '../../../runtime/state/memory-store.ts';
import type { StateStore } from '../../../runtime/state/state-store.ts';

interface RecordedCall {
  target: string;
  body: { ProductCode: string; Timestamp: number; UsageDimension: string; UsageQuantity: number };
}

let server: Server;
let endpoint: string;
const calls: RecordedCall[] = [];

before(async () => {
  server = createServer((req, res) => {
    let data = '';
    req.on('data', (c: Buffer) => (data += c.toString()));
    req.on('end', () => {
      calls.push({ target: String(req.headers['x-amz-target']), body: JSON.parse(data) as RecordedCall['body'] });
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify({ MeteringRecordId: `record-${calls.length}` }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => new Promise<void>((resolve) => server.close(() => resolve())));

const client = (): MarketplaceMeteringClient =>
  new MarketplaceMeteringClient({ region: 'us-east-1', endpoint, credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' }, maxAttempts: 1 });

/** Usage by the hour: 1.5 GB and 3 queries in every hour. */
class SteadyUsage implements UsageSource {
  readonly asked: [number, number][] = [];
  async usage(fromMs: number, toMs: number): Promise<HourUsage> {
    this.asked.push([fromMs, toMs]);
    const hours = (toMs - fromMs) / HOUR_MS;
    return { scanned_gb: 1.5 * GIGABYTE * hours, queries: 3 * hours };
  }
}

const T0 = Date.UTC(2026, 0, 10, 9, 20); // deployment starts 09:20
const at = (h: number, m: number): number => Date.UTC(2026, 0, 10, h, m);

function perHourAndDimension(): Map<string, number> {
  const seen = new Map<string, number>();
  for (const c of calls) {
    const key = `${new Date(c.body.Timestamp * 1000).toISOString()} ${c.body.UsageDimension}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  return seen;
}

describe('HourlyMeter', () => {
  test('sends one record per closed hour and dimension, and a restart sends nothing twice', async () => {
    calls.length = 0;
    const state = new MemoryStateStore();
    const source = new SteadyUsage();
    let now = T0;
    const meter = () => new HourlyMeter({ state, client: client(), productCode: 'abc123prod', source, now: () => now, graceMs: 5 * 60 * 1000 });

    const first = meter();
    assert.deepEqual((await first.runOnce()).sent, [], 'the current hour is not closed');
    now = at(10, 2);
    assert.deepEqual((await first.runOnce()).sent, [], 'the 09:00 hour waits for the grace period');
    now = at(10, 6);
    assert.equal((await first.runOnce()).sent.length, 2);
    now = at(12, 10);
    assert.equal((await first.runOnce()).sent.length, 4, '10:00 and 11:00');

    // Restart: a new meter over the same state store, run twice at the same time and later.
    const restarted = meter();
    assert.deepEqual((await restarted.runOnce()).sent, []);
    assert.deepEqual((await restarted.runOnce()).sent, []);
    now = at(13, 30);
    assert.equal((await restarted.runOnce()).sent.length, 2, '12:00 only');

    const seen = perHourAndDimension();
    assert.deepEqual([...seen.keys()].sort(), [
      '2026-01-10T09:00:00.000Z queries',
      '2026-01-10T09:00:00.000Z scanned_gb',
      '2026-01-10T10:00:00.000Z queries',
      '2026-01-10T10:00:00.000Z scanned_gb',
      '2026-01-10T11:00:00.000Z queries',
      '2026-01-10T11:00:00.000Z scanned_gb',
      '2026-01-10T12:00:00.000Z queries',
      '2026-01-10T12:00:00.000Z scanned_gb',
    ]);
    assert.ok([...seen.values()].every((n) => n === 1), 'exactly one call per hour and dimension');
    assert.ok(calls.every((c) => c.target === 'AWSMPMeteringService.MeterUsage' && c.body.ProductCode === 'abc123prod'));
    // 1.5 GB an hour is billed in whole GB: 1, 2 (1 + carried 0.5 + ... ), 1, 2.
    const gb = calls.filter((c) => c.body.UsageDimension === 'scanned_gb').map((c) => c.body.UsageQuantity);
    assert.deepEqual(gb, [1, 2, 1, 2]);
    assert.deepEqual(calls.filter((c) => c.body.UsageDimension === 'queries').map((c) => c.body.UsageQuantity), [3, 3, 3, 3]);
  });

  test('two meters sharing a state store do not both send an hour', async () => {
    calls.length = 0;
    const state = new MemoryStateStore();
    const now = () => at(12, 10);
    const a = new HourlyMeter({ state, client: client(), productCode: 'abc123prod', source: new SteadyUsage(), now });
    const b = new HourlyMeter({ state, client: client(), productCode: 'abc123prod', source: new SteadyUsage(), now });
    await a.runOnce(); // initialises the mark at 11:00 (hour before now's)
    const mark = await state.getValue('puffindb:metering:mark:abc123prod');
    assert.ok(mark);
    await state.compareAndSwap('puffindb:metering:mark:abc123prod', mark, JSON.stringify({ hour: at(8, 0), carry: { scanned_gb: 0, queries: 0 } }));
    await Promise.all([a.runOnce(), b.runOnce()]);
    assert.ok([...perHourAndDimension().values()].every((n) => n === 1));
    assert.equal(calls.length, 6, '09:00, 10:00 and 11:00, two dimensions each');
  });

  test('a crash between the send and the swap resends the identical record', async () => {
    calls.length = 0;
    const inner = new MemoryStateStore();
    let failSwaps = 0;
    const state: StateStore = Object.assign(Object.create(inner) as StateStore, {
      compareAndSwap: async (key: string, expected: string | undefined, next: string) => {
        if (expected !== undefined && failSwaps-- > 0) throw new Error('process killed');
        return inner.compareAndSwap(key, expected, next);
      },
    });
    let now = at(9, 20);
    const make = () => new HourlyMeter({ state, client: client(), productCode: 'abc123prod', source: new SteadyUsage(), now: () => now });
    await make().runOnce();
    now = at(10, 30);
    failSwaps = 1;
    await assert.rejects(make().runOnce(), /process killed/);
    await inner.releaseLock({ key: 'puffindb:metering:lock:abc123prod', token: '', expiresAt: 0 }).catch(() => false);
    // The lock of the "killed" run is released by its finally; a restart resends 09:00.
    const report = await make().runOnce();
    assert.equal(report.sent.length, 2);
    const nine = calls.filter((c) => c.body.Timestamp * 1000 === at(9, 0));
    assert.equal(nine.length, 4);
    assert.deepEqual(nine.slice(0, 2).map((c) => c.body), nine.slice(2).map((c) => c.body), 'the resend is identical, so MeterUsage deduplicates it');
  });

  test('hours older than MeterUsage accepts are folded into the oldest sendable hour', async () => {
    calls.length = 0;
    const state = new MemoryStateStore();
    let now = at(1, 10);
    const source = new SteadyUsage();
    const meter = new HourlyMeter({ state, client: client(), productCode: 'abc123prod', source, now: () => now });
    await meter.runOnce(); // mark: 00:00 is the last sent hour
    now = at(12, 10); // stopped for eleven hours
    const report = await meter.runOnce();
    assert.equal(report.sent[0]?.hour, at(7, 0), 'oldest sendable hour');
    assert.deepEqual(source.asked[0], [at(1, 0), at(8, 0)], 'its usage covers the hours that can no longer be sent');
    assert.equal(calls.find((c) => c.body.UsageDimension === 'queries')?.body.UsageQuantity, 21);
  });

  test('a refused MeterUsage is a PuffinError and the hour is retried', async () => {
    calls.length = 0;
    const state = new MemoryStateStore();
    let now = at(9, 20);
    const failing = new MarketplaceMeteringClient({ region: 'us-east-1', endpoint: 'http://127.0.0.1:1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, maxAttempts: 1 });
    await new HourlyMeter({ state, client: failing, productCode: 'abc123prod', source: new SteadyUsage(), now: () => now }).runOnce();
    now = at(10, 30);
    await assert.rejects(new HourlyMeter({ state, client: failing, productCode: 'abc123prod', source: new SteadyUsage(), now: () => now }).runOnce(), { name: 'PuffinError', code: 'unavailable' });
    const report = await new HourlyMeter({ state, client: client(), productCode: 'abc123prod', source: new SteadyUsage(), now: () => now }).runOnce();
    assert.equal(report.sent.length, 2);
  });

  test('a product code that is not one is refused', () => {
    assert.throws(() => new HourlyMeter({ state: new MemoryStateStore(), client: client(), productCode: 'bad code!', source: new SteadyUsage() }), { code: 'bad_request' });
  });
});
