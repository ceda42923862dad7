// The usage dimensions the Marketplace listing prices, declared once: the metering service
// sends one MeterUsage record per dimension per hour, and marketplace/listing.yaml's
// pricing dimensions are checked against this table, so the two cannot disagree.

export interface MeteringDimension {
  /** The dimension's API name, as registered with the listing (MeterUsage UsageDimension). */
  key: string;
  /** What a buyer sees on the listing and the bill. */
  description: string;
  /** The unit of one UsageQuantity. */
  unit: string;
  /** Raw usage (bytes, queries) per billed unit; remainders carry into the next hour. */
  rawPerUnit: number;
}

export const GIGABYTE = 1024 ** 3;

export const METERING_DIMENSIONS = [
  { key: 'scanned_gb', description: 'Data scanned by queries, per GB (read from the query log).', unit: 'GB', rawPerUnit: GIGABYTE },
  { key: 'queries', description: 'Queries run, per query (read from the query log).', unit: 'Queries', rawPerUnit: 1 },
] as const satisfies readonly MeteringDimension[];

export type DimensionKey = (typeof METERING_DIMENSIONS)[number]['key'];

/** Raw usage of one hour, per dimension (bytes scanned, queries run). */
export type HourUsage = Record<DimensionKey, number>;
