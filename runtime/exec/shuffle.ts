// The shuffle layer of multi-stage plans (ARCHITECTURE.md, "Shuffle through the object
// store"): producers write one object per task with contiguous Parquet pieces per partition
// and return an offset index; consumers read their partition of every producer with ranged
// GETs into a typed DuckDB view; a query's shuffle objects are deleted by prefix.
//
//   shuffle-partition.ts  partition ids as SQL: hash (keys cast to a common type), range (sampled bounds)
//   shuffle-write.ts      the producer: COPY ... PARTITION_BY, concatenate, upload or inline
//   shuffle-read.ts       the consumer (ranged GETs, bounded concurrency, typed view) and cleanup
//   shuffle-index.ts      the index, key layout, column encoding and task sizing (plain data)

export * from './shuffle-index.ts';
export * from './shuffle-partition.ts';
export * from './shuffle-write.ts';
export * from './shuffle-read.ts';
