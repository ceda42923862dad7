#!/usr/bin/env node
// The `puffindb` command. The runtime is TypeScript run through tsx, so the same sources
// serve the CLI, the worker processes and the Lambda bundles.
import { register } from 'tsx/esm/api';

register();
await import('../runtime/cli/main.ts');
