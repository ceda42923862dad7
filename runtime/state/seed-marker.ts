// The seed marker: a small value the state store is given when it is seeded (the configured
// admin key put in at start, by bootstrapAdminKey). Like the API keys it has no expiry, so a
// store that held it and no longer does lost its data since: a Redis restarted without
// persistence, a replica promoted before it had the data, a FLUSHALL, another Redis behind
// the same address. Absence alone cannot tell a new store from an emptied one; a process
// that saw the marker (or wrote it) can. After a loss the marker is written again with the
// time of the loss, so every process can report it for a while (runtime/api/auth.ts StateSeed).

import type { StateStore } from './state-store.ts';

/** Under the store's small values ('v:' in Redis). */
export const SEED_MARKER_KEY = 'seed-marker';

export interface SeedMarker {
  /** When the store was (last) seeded, ms since the epoch. */
  seededAt: number;
  /** When the store was found to have lost its data and was seeded again. */
  lostAt?: number;
}

export async function readSeedMarker(state: StateStore): Promise<SeedMarker | undefined> {
  const raw = await state.getValue(SEED_MARKER_KEY);
  if (raw === undefined) return undefined;
  try {
    const parsed = JSON.parse(raw) as Partial<SeedMarker>;
    return { seededAt: Number(parsed.seededAt) || 0, ...(typeof parsed.lostAt === 'number' ? { lostAt: parsed.lostAt } : {}) };
  } catch {
    return { seededAt: 0 }; // present is what matters
  }
}

/** Write the marker unless one is there (another process may have seeded first); returns the one in place. */
export async function writeSeedMarker(state: StateStore, marker: SeedMarker): Promise<SeedMarker> {
  if (await state.compareAndSwap(SEED_MARKER_KEY, undefined, JSON.stringify(marker))) return marker;
  return (await readSeedMarker(state)) ?? marker;
}
