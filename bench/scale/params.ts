// The published AWS figures and the stated assumptions the scale model uses. Every number
// here is quoted in the scale scenario's results so a reader can disagree with it. Figures
// the engine decides (GET concurrency, shuffle key spread, chunk sizes) are the runtime's
// own defaults, named where they live.

import { DEFAULT_RELAY_ABOVE } from '../../runtime/exec/async-fanout.ts';
import { DEFAULT_COMBINE_ABOVE } from '../../runtime/exec/shuffle-combine.ts';
import { DEFAULT_SHUFFLE_GET_CONCURRENCY } from '../../runtime/exec/shuffle-read.ts';
import { DEFAULT_STAGE_TASK_BYTES } from '../../runtime/exec/shuffle-index.ts';
import { CHUNK_BYTES } from '../../runtime/storage/file-cache.ts';

export const AWS = {
  /** Lambda, x86_64, us-east-1 on-demand: $ per GB-second of billed duration (first price tier; aws.amazon.com/lambda/pricing). */
  lambdaPricePerGbSecond: 0.0000166667,
  /** Lambda: $ per request ($0.20 per million; aws.amazon.com/lambda/pricing). */
  lambdaPricePerRequest: 0.2 / 1e6,
  /** Largest Lambda memory size, and the vCPUs it brings (up to 6 vCPUs at 10,240 MB; Lambda developer guide, "Configuring function memory"). */
  lambdaMaxMemoryMb: 10_240,
  lambdaVcpusAtMax: 6,
  /**
   * Network bandwidth of one Lambda execution environment: 625 Mbit/s, the figure issue 10
   * prescribes (no higher published figure is cited here). AWS publishes no bandwidth for
   * Lambda; this is used for every byte a worker or the coordinator moves (table reads,
   * shuffle GETs and PUTs, the reduce step's partials).
   */
  lambdaBytesPerSecond: 625e6 / 8,
  /** New execution environments per function: 1,000 every 10 s (Lambda developer guide, "Lambda scaling behavior", since Nov 2023). */
  lambdaNewEnvironmentsPerStep: 1_000,
  lambdaScalingStepMs: 10_000,
  /** Synchronous Invoke request and response payload limit (Lambda quotas). */
  lambdaSyncPayloadBytes: 6 * 1024 * 1024,
  /**
   * S3 request rates per partitioned prefix: 5,500 GET/HEAD and 3,500 PUT/COPY/POST/DELETE
   * per second (S3 user guide, "Best practices design patterns: optimizing Amazon S3
   * performance"). S3 reaches them per prefix only after it has scaled to a sustained rate.
   */
  s3GetsPerSecondPerPrefix: 5_500,
  s3PutsPerSecondPerPrefix: 3_500,
  /**
   * S3 first-byte latency: "roughly 100-200 milliseconds" for small objects and the first
   * byte of larger ones (S3 user guide, performance guidelines, "Retry requests for
   * latency-sensitive applications"). The model takes the low end.
   */
  s3FirstByteMs: 100,
  /** S3 Standard: GET $0.0004 and PUT $0.005 per 1,000 requests (aws.amazon.com/s3/pricing). */
  s3PricePerGet: 0.0004 / 1000,
  s3PricePerPut: 0.005 / 1000,
  /** Athena: $5 per TB scanned. */
  athenaPricePerTb: 5,
} as const;

/** What the engine does, from its sources (runtime/). */
export const RUNTIME = {
  /** Shuffle pieces one reader GETs at once (runtime/exec/shuffle-read.ts DEFAULT_SHUFFLE_GET_CONCURRENCY). */
  shuffleGetConcurrency: DEFAULT_SHUFFLE_GET_CONCURRENCY,
  /** A shuffle of this many stored producer objects or more goes through the combining exchange (runtime/exec/shuffle-combine.ts, PUFFINDB_SHUFFLE_COMBINE_ABOVE default). */
  shuffleCombineAbove: DEFAULT_COMBINE_ABOVE,
  /** A later stage's partitions run in tasks of about this many bytes of what it reads (runtime/exec/shuffle-index.ts DEFAULT_STAGE_TASK_BYTES, PUFFINDB_STAGE_TASK_BYTES default). */
  stageTaskBytes: DEFAULT_STAGE_TASK_BYTES,
  /** Shuffle objects spread over 16^2 key prefixes (runtime/exec/shuffle-index.ts, DEFAULT_PREFIX_DIGITS). */
  shufflePrefixes: 256,
  /** Table files are fetched in ranged GETs of runtime/storage/file-cache.ts CHUNK_BYTES (16 MiB). */
  tableGetBytes: CHUNK_BYTES,
  /** Partials up to 4 MiB return inline (PUFFINDB_INLINE_LIMIT_BYTES default). */
  inlineLimitBytes: 4 * 1024 * 1024,
  /** Asynchronous fan-out from 64 tasks (PUFFINDB_ASYNC_THRESHOLD default). */
  asyncThreshold: 64,
  /** Relays (an invocation tree) from 64 tasks (runtime/exec/async-fanout.ts DEFAULT_RELAY_ABOVE, PUFFINDB_ASYNC_RELAY_ABOVE default). */
  relayAbove: DEFAULT_RELAY_ABOVE,
  /** The planner's fragments per table scan and shuffle partitions default to the worker count (PUFFINDB_MAX_FRAGMENTS = workers). */
  tasksPerStage: 'workers',
} as const;

export const ASSUMPTIONS = {
  /** Worker and coordinator memory: the largest size, for the most vCPUs. */
  workerMemoryMb: 10_240,
  /** One Lambda vCPU does a stage's work per byte as fast as one core of the machine the stages were measured on, and a task uses all 6. */
  lambdaVcpuEqualsLocalCore: true,
  /** Table data: one S3 prefix per table (the warehouse's layout, <table>/<file>), so a table's GETs share one prefix's rate. */
  tablePrefixesPerTable: 1,
  /** Round trip of one Invoke to a warm environment (API + network), once per stage (invokes overlap). */
  invokeLatencyMs: 20,
  /** Lambda's own environment start on a cold invoke (download, unzip, runtime boot), before our init (measured by `coldstart`). */
  lambdaPlatformColdMs: 500,
  /** The coordinator is a Lambda of the same size; its reduce step runs on this many vCPUs. */
  coordinatorVcpus: 6,
  /** Planning an execution costs at scale what it cost at the calibration scale (file listing is not modelled to grow). */
  planMsFlat: true,
} as const;

/** The figures the issue asks for: TPC-H SF 1000 on 1,000 and 3,000 workers. */
export const TARGET_SCALE = 1_000;
export const WORKER_COUNTS = [1_000, 3_000] as const;
/** Measured: TPC-H at these scale factors on the local cluster (2 workers, 8 fragments). */
export const MEASURED_SCALES = [0.1, 1] as const;
export const LOCAL_WORKERS = 2;
export const LOCAL_FRAGMENTS = 8;
