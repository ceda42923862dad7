// Where the built-in catalog keeps each Iceberg table's current metadata location. A commit
// is one compare-and-swap of that pointer: readers see the old metadata or the new one,
// never a half-made commit. A local-file implementation serves the embedded default
// (atomic on one filesystem); a Redis one serves deployments (atomic CAS in Redis).

export interface TablePointer {
  /** Table name, possibly namespaced with dots ('db.trips'); stored lower-case. */
  name: string;
  /** URI of the table's current metadata.json. */
  metadataLocation: string;
}

export interface PointerStore {
  /** The table's current metadata location, or undefined when no such table. */
  get(name: string): Promise<string | undefined>;
  /** All tables, sorted by name. */
  list(): Promise<TablePointer[]>;
  /**
   * Set the table's metadata location to `next` only if it is currently `expected`
   * (undefined: the table must not exist yet, i.e. create). True when swapped.
   */
  compareAndSwap(name: string, expected: string | undefined, next: string): Promise<boolean>;
  /** Drop the table's pointer if it is currently `expected`. True when removed. */
  remove(name: string, expected: string): Promise<boolean>;
  /** Release connections (a Redis store's); stores holding none leave it out. */
  close?(): Promise<void>;
}
