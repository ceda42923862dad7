// The published AWS figures and the stated assumptions the fleet model uses. Every number
// here is quoted in the scale scenario's results so a reader can disagree with it.

export const AWS = {
  /** Lambda, x86_64, us-east-1 on-demand: $ per GB-second of billed duration (first price tier). */
  lambdaPricePerGbSecond: 0.0000166667,
  /** Lambda: $ per request ($0.20 per million). */
  lambdaPricePerRequest: 0.2 / 1e6,
  /** Largest Lambda memory size, and the vCPUs it brings (~1 vCPU per 1,769 MB). */
  lambdaMaxMemoryMb: 10_240,
  lambdaVcpusAtMax: 6,
  /** New execution environments per function: at most 1,000 every 10 s. */
  lambdaNewEnvironmentsPerStep: 1_000,
  lambdaScalingStepMs: 10_000,
  /** Synchronous Invoke request and response payload limit. */
  lambdaSyncPayloadBytes: 6 * 1024 * 1024,
  /** S3: throughput of one connection, and GET requests per second per prefix. */
  s3BytesPerSecondPerConnection: 90e6,
  s3GetsPerSecondPerPrefix: 5_500,
  /** S3 Standard GET: $0.0004 per 1,000 requests. */
  s3PricePerGet: 0.0004 / 1000,
  /** Athena: $5 per TB scanned. */
  athenaPricePerTb: 5,
} as const;

export const ASSUMPTIONS = {
  /** Worker memory: the largest size, for the most vCPUs. */
  workerMemoryMb: 10_240,
  /** One Lambda vCPU scans Parquet as fast as one core of the machine the harness ran on. */
  lambdaVcpuEqualsLocalCore: true,
  /** S3 connections a worker keeps busy at once (DuckDB/our cache fetch files in parallel). */
  s3ConnectionsPerWorker: 4,
  /** Bytes per GET (ranged reads of a file). */
  s3GetBytes: 8 * 1024 * 1024,
  /** Prefixes the data set's files spread over (one per table: conservative). */
  s3Prefixes: 1,
  /** First-byte latency of an S3 GET. */
  s3FirstByteMs: 30,
  /** Round trip of one Invoke to a warm environment (API + network), overlapped across workers. */
  invokeLatencyMs: 20,
  /** Lambda's own environment start on a cold invoke (download, unzip, runtime boot), before our init. */
  lambdaPlatformColdMs: 500,
  /** The coordinator is a Lambda of the same size; it reduces at this many vCPUs. */
  coordinatorVcpus: 6,
  /** Billed: worker duration from invoke to response, including init on a cold start. */
  billInit: true,
  /** Files per worker-fragment at scale: one fragment per worker, files split evenly. */
  fragmentsPerWorker: 1,
} as const;

export const DATASETS = [
  { label: '100 GB', scaleFactor: 100 },
  { label: '1 TB', scaleFactor: 1_000 },
  { label: '10 TB', scaleFactor: 10_000 },
] as const;

export const WORKER_COUNTS = [100, 300, 1_000, 3_000, 10_000] as const;
