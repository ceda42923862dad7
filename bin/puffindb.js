#!/usr/bin/env node
// The `puffindb` command. The runtime is TypeScript; the command runs it compiled ahead of
// time (runtime/compiled.js: built once per version of the sources, into
// node_modules/.cache/puffindb/), or through tsx when it cannot be compiled.
import { prepareCompiled } from '../runtime/compiled.js';

const compiled = await prepareCompiled();
if (compiled) {
  await import(compiled.paths.cli);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../runtime/cli/main.ts');
}
