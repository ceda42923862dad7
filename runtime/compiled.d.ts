// Types of runtime/compiled.js (plain JavaScript: bin/puffindb.js loads it before tsx).

export declare const ENTRIES: Record<'cli' | 'pool-child' | 'sql-runner-child', string>;
export type CompiledEntry = keyof typeof ENTRIES;
export declare function prepareCompiled(): Promise<{ dir: string; paths: Record<CompiledEntry, string> } | undefined>;
export declare function compiledEntry(name: CompiledEntry): string | undefined;
