// The catalog every front end opens: the warehouse catalog (Parquet and Iceberg tables),
// with Iceberg metadata pointers in Redis when a deployment has it (shared by every
// process and Lambda, atomic CAS) and in local files otherwise (the embedded default).

import { join } from 'node:path';
import type { Engine } from '../engine/engine.ts';
import type { Settings } from '../settings.ts';
import type { RedisPointerStore } from './iceberg/redis-pointer-store.ts';
import { WarehouseCatalog } from './warehouse-catalog.ts';

export async function openCatalog(settings: Settings, engine: Engine): Promise<WarehouseCatalog> {
  let pointers: RedisPointerStore | undefined;
  let views: RedisPointerStore | undefined;
  if (settings.redisUrl) {
    // ioredis and the Secrets Manager client load only where Redis holds the pointers.
    const { readSecretString } = await import('../state/secrets.ts');
    const { RedisPointerStore } = await import('./iceberg/redis-pointer-store.ts');
    const password = settings.redisAuthSecretArn
      ? await readSecretString(settings.redisAuthSecretArn, settings.region, { what: 'the Redis AUTH token' })
      : undefined;
    pointers = RedisPointerStore.connect(settings.redisUrl, { password });
    // Views beside the tables' pointers, in a hash of their own.
    views = RedisPointerStore.connect(settings.redisUrl, { password, key: 'puffindb:views' });
  }
  return WarehouseCatalog.open(join(settings.home, 'catalog'), engine, {
    ...(pointers ? { pointers } : {}),
    ...(views ? { views } : {}),
    storeOptions: { s3Endpoint: settings.s3Endpoint, region: settings.region },
  });
}
