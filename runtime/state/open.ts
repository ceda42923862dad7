// Chooses the state store from settings: Redis when REDIS_URL is set (deployed, or a local
// run sharing state between processes), else the in-memory store of this process.

import type { Settings } from '../settings.ts';
import { MemoryStateStore } from './memory-store.ts';
import { RedisStateStore } from './redis-store.ts';
import type { StateStore } from './state-store.ts';

export async function openStateStore(settings: Settings): Promise<StateStore> {
  if (settings.redisUrl) return RedisStateStore.fromSettings(settings);
  return new MemoryStateStore();
}
