// The Node library's entry: `import { open, connect } from 'puffindb'` from plain Node ESM.
// The runtime is TypeScript run through tsx (as bin/puffindb.js runs the CLI); tsImport
// loads it in a namespace of its own, so the importing application's modules are not
// routed through tsx. Types: ./puffindb.d.ts.
import { tsImport } from 'tsx/esm/api';

const runtime = await tsImport('../runtime/client/index.ts', import.meta.url);

export const open = runtime.open;
export const connect = runtime.connect;
export const PuffinError = runtime.PuffinError;
export const translate = runtime.translate;
export const compilePrql = runtime.compilePrql;
export const parse = runtime.parse;
export const format = runtime.format;
