import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { costOf, simulate, type FleetConfig, type QueryProfile } from '../../bench/scale/model.ts';
import { AWS } from '../../bench/scale/params.ts';
import { PuffinError } from '../../runtime/errors.ts';

const profile: QueryProfile = {
  id: 'q', shape: 'scan-aggregate', scanBytes: 100e9, cpuMsPerByte: 1000 / 200e6,
  partialBytesFixed: 2_000, partialBytesPerScanByte: 0, planMs: 50, reduceMsFixed: 20, reduceMsPerPartialByte: 0,
};
const fleet = (over: Partial<FleetConfig> = {}): FleetConfig => ({
  workers: 100, vcpusPerWorker: 6, cold: false, fetchBytesPerSecondPerWorker: 360e6, getsPerSecond: 5500, getBytes: 8 * 2 ** 20, firstByteMs: 30,
  dispatchMs: 0.25, landMs: 0.25, invokeLatencyMs: 20, fragmentFixedMs: 5, newEnvironmentsPerStep: 1000, scalingStepMs: 10_000, coldStartMs: 800,
  syncPayloadBytes: 6 * 2 ** 20, shuffleBytesPerSecond: 90e6, reduceSpeedup: 3, ...over,
});
const prices = { workerMemoryMb: 10_240, pricePerGbSecond: AWS.lambdaPricePerGbSecond, pricePerRequest: AWS.lambdaPricePerRequest, pricePerGet: AWS.s3PricePerGet };

describe('fleet model invariants', () => {
  test('deterministic, and never faster than planning plus the work spread over every vCPU', () => {
    const a = simulate(profile, fleet());
    assert.deepEqual(simulate(profile, fleet()), a);
    const ideal = profile.planMs + (profile.scanBytes * profile.cpuMsPerByte) / (100 * 6);
    assert.ok(a.latencyMs >= ideal, `${a.latencyMs} >= ${ideal}`);
    assert.ok(a.latencyMs >= a.landedMs && a.landedMs >= a.planMs);
  });

  test('cold is never faster than warm, and past 1,000 workers waits for the scaling steps', () => {
    for (const workers of [10, 1000, 5000]) {
      assert.ok(simulate(profile, fleet({ workers, cold: true })).latencyMs >= simulate(profile, fleet({ workers })).latencyMs);
    }
    const cold = simulate(profile, fleet({ workers: 5000, cold: true }));
    assert.ok(cold.lastReadyMs >= profile.planMs + 4 * 10_000, 'the 5,000th environment starts no sooner than the fifth step');
  });

  test('the fleet-wide GET rate bounds the scan: all GETs take at least gets / rate', () => {
    const r = simulate({ ...profile, cpuMsPerByte: 0 }, fleet({ workers: 10_000, fetchBytesPerSecondPerWorker: Infinity }));
    assert.ok(r.latencyMs >= (r.gets / 5500) * 1000, `${r.latencyMs} ms for ${r.gets} GETs`);
  });

  test('more workers cut a compute-bound warm query, until fixed costs dominate', () => {
    const local = fleet({ fetchBytesPerSecondPerWorker: Infinity, getsPerSecond: Infinity, firstByteMs: 0, dispatchMs: 0, landMs: 0 });
    const t = [1, 2, 4, 8, 16].map((workers) => simulate(profile, { ...local, workers }).latencyMs);
    for (let i = 1; i < t.length; i++) assert.ok(t[i] < t[i - 1], `latency falls with workers: ${t.join(', ')}`);
  });

  test('workers sharing a machine gain nothing once its cores are busy', () => {
    const local = fleet({ fetchBytesPerSecondPerWorker: Infinity, getsPerSecond: Infinity, firstByteMs: 0, dispatchMs: 0, landMs: 0, fragmentFixedMs: 0, invokeLatencyMs: 0, sharedCores: 2, vcpusPerWorker: 1 });
    const two = simulate(profile, { ...local, workers: 2 }).latencyMs;
    const eight = simulate(profile, { ...local, workers: 8 }).latencyMs;
    assert.ok(Math.abs(two - eight) / two < 0.01, `${two} vs ${eight}`);
  });

  test('partials over the sync payload limit go through S3 and cost GETs and time', () => {
    const big = { ...profile, partialBytesFixed: 0, partialBytesPerScanByte: 0.5 };
    const r = simulate(big, fleet({ workers: 100 }));
    assert.equal(r.storedPartials, 100);
    assert.equal(simulate(profile, fleet()).storedPartials, 0);
  });

  test('cost adds GB-seconds, requests and GETs; more busy time costs more', () => {
    const r = simulate(profile, fleet());
    const c = costOf(r, 100, prices);
    assert.ok(Math.abs(c.total - (c.workers + c.coordinator + c.requests + c.gets)) < 1e-12);
    assert.ok(Math.abs(c.requests - 101 * AWS.lambdaPricePerRequest) < 1e-15);
    assert.ok(costOf(simulate(profile, fleet({ cold: true })), 100, prices).total > c.total);
  });

  test('bad fleets are refused with a PuffinError', () => {
    assert.throws(() => simulate(profile, fleet({ workers: 0 })), PuffinError);
    assert.throws(() => simulate(profile, fleet({ workers: 1.5 })), PuffinError);
  });
});
