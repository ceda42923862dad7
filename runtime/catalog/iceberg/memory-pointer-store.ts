// An in-memory PointerStore, for one process: the Iceberg REST catalog's default namespace
// store, and tests of the writer and commits.

import type { PointerStore, TablePointer } from './pointer-store.ts';

export class MemoryPointerStore implements PointerStore {
  private readonly pointers = new Map<string, string>();

  async get(name: string): Promise<string | undefined> {
    return this.pointers.get(name.toLowerCase());
  }

  async list(): Promise<TablePointer[]> {
    return [...this.pointers].map(([name, metadataLocation]) => ({ name, metadataLocation })).sort((a, b) => a.name.localeCompare(b.name));
  }

  async compareAndSwap(name: string, expected: string | undefined, next: string): Promise<boolean> {
    const key = name.toLowerCase();
    if (this.pointers.get(key) !== expected) return false;
    this.pointers.set(key, next);
    return true;
  }

  async remove(name: string, expected: string): Promise<boolean> {
    const key = name.toLowerCase();
    if (this.pointers.get(key) !== expected) return false;
    this.pointers.delete(key);
    return true;
  }
}
