// Chooses the state store from settings: Redis when REDIS_URL is set (deployed, or a local
// run sharing state between processes), else the in-memory store of this process.

import type { Settings } from '../settings.ts';
import { MemoryStateStore } from './memory-store.ts';
import type { StateStore } from './state-store.ts';

export async function openStateStore(settings: Settings): Promise<StateStore> {
  // ioredis loads only where Redis is the state store.
  if (settings.redisUrl) return (await import('./redis-store.ts')).RedisStateStore.fromSettings(settings);
  return new MemoryStateStore();
}
