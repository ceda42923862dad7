// The catalog every front end opens: the warehouse catalog (Parquet and Iceberg tables),
// with Iceberg metadata pointers in Redis when a deployment has it (shared by every
// process and Lambda, atomic CAS) and in local files otherwise (the embedded default).

import { join } from 'node:path';
import type { Engine } from '../engine/engine.ts';
import type { Settings } from '../settings.ts';
import type { RedisPointerStore } from './iceberg/redis-pointer-store.ts';
import { WarehouseCatalog } from './warehouse-catalog.ts';
import { ExternalCatalogs } from './external/external-catalog.ts';
import { FilePointerStore } from './iceberg/file-pointer-store.ts';
import { uriFileIO } from './iceberg/uri-file-io.ts';
import { uriTableIO } from './iceberg/writer-io.ts';
import { locationPolicyOf } from '../storage/locations.ts';

export async function openCatalog(settings: Settings, engine: Engine): Promise<WarehouseCatalog> {
  let pointers: RedisPointerStore | undefined;
  let views: RedisPointerStore | undefined;
  let catalogs: RedisPointerStore | undefined;
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
    // External catalogs' records (runtime/catalog/external/registry.ts), shared by every server on this Redis.
    catalogs = RedisPointerStore.connect(settings.redisUrl, { password, key: 'puffindb:catalogs' });
  }
  const storeOptions = { s3Endpoint: settings.s3Endpoint, region: settings.region };
  let opened: WarehouseCatalog | undefined;
  const external = new ExternalCatalogs(catalogs ?? new FilePointerStore(join(settings.home, 'catalog', 'external-catalogs')), {
    io: uriFileIO(storeOptions),
    // Deletes only the metadata files the commit path wrote (confined like every write).
    tableIO: uriTableIO({ ...storeOptions, locations: locationPolicyOf(settings) }),
    localTables: async () => (opened ? opened.listTables() : []),
  });
  opened = await WarehouseCatalog.open(join(settings.home, 'catalog'), engine, {
    ...(pointers ? { pointers } : {}),
    ...(views ? { views } : {}),
    storeOptions,
    external,
  });
  return opened;
}
