// Where hourly usage comes from. The metering service asks for one closed hour at a time,
// after the query log has had time to be flushed, so a source sees the hour complete.

import type { HourUsage } from './dimensions.ts';

export interface UsageSource {
  /** Raw usage of queries submitted in [fromMs, toMs). */
  usage(fromMs: number, toMs: number): Promise<HourUsage>;
}
