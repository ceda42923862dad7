// The metering service the Marketplace instance runs beside `puffindb serve`
// (puffindb-metering.service): every few minutes it sends the closed hours not yet sent.
// Credentials come from the instance role (MeterUsage must be signed by the buyer's EC2
// instance; a Lambda role may not), the region from AWS_REGION.

import { MarketplaceMeteringClient } from '@aws-sdk/client-marketplace-metering';
import { resolveAdminKey } from '../api/auth.ts';
import { PuffinError } from '../errors.ts';
import { loadSettings } from '../settings.ts';
import { openStateStore } from '../state/open.ts';
import { HourlyMeter } from './hourly-meter.ts';
import { QueryLogUsage } from './query-log-usage.ts';

/** Environment of the metering service (set by the first-boot script). */
export const METERING_ENV = {
  productCode: 'PUFFINDB_MARKETPLACE_PRODUCT_CODE',
  intervalMs: 'PUFFINDB_METERING_INTERVAL_MS',
  endpoint: 'PUFFINDB_METERING_ENDPOINT',
} as const;

function log(event: string, fields: Record<string, unknown>): void {
  console.log(JSON.stringify({ time: new Date().toISOString(), service: 'puffindb-metering', event, ...fields }));
}

export async function main(_argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const productCode = env[METERING_ENV.productCode];
  if (!productCode) throw new PuffinError('bad_request', `${METERING_ENV.productCode} is not set: the listing's product code is needed to meter usage`);
  const settings = loadSettings(env);
  // The key comes from PUFFINDB_ADMIN_KEY or, as deployed, the secret PUFFINDB_ADMIN_KEY_SECRET_ARN names.
  const adminKey = await resolveAdminKey(settings);
  if (!adminKey) throw new PuffinError('bad_request', 'neither PUFFINDB_ADMIN_KEY nor PUFFINDB_ADMIN_KEY_SECRET_ARN is set: the metering service reads the query log through the admin API');
  const intervalMs = Number(env[METERING_ENV.intervalMs] ?? 300_000);
  if (!Number.isFinite(intervalMs) || intervalMs < 1000) throw new PuffinError('bad_request', `${METERING_ENV.intervalMs} must be at least 1000`);

  const state = await openStateStore(settings);
  const endpoint = env[METERING_ENV.endpoint];
  const client = new MarketplaceMeteringClient({ region: settings.region, ...(endpoint ? { endpoint } : {}) });
  const meter = new HourlyMeter({
    state,
    client,
    productCode,
    source: new QueryLogUsage({ apiUrl: `http://127.0.0.1:${settings.port}`, apiKey: adminKey }),
  });

  let stopping = false;
  let wake: (() => void) | undefined;
  const stop = (): void => {
    stopping = true;
    wake?.();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  log('started', { productCode, intervalMs });
  while (!stopping) {
    try {
      const report = await meter.runOnce();
      if (report.sent.length > 0 || report.stoppedBy) log('run', { sent: report.sent, stoppedBy: report.stoppedBy ?? null });
    } catch (err) {
      // The next run retries the same hour; records are idempotent.
      log('error', { code: err instanceof PuffinError ? err.code : 'internal', message: (err as Error).message });
    }
    await new Promise<void>((resolve) => {
      wake = resolve;
      setTimeout(resolve, intervalMs).unref();
    });
  }
  await state.close();
  log('stopped', {});
}
