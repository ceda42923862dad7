// The CDKTF app: `npm run synth` (node --import tsx stacks/main.ts) writes
// cdktf.out/stacks/puffindb/cdk.tf.json offline, without the cdktf CLI, credentials or
// provider downloads. `cdktf synth` runs the same file through cdktf.json.

import { App } from 'cdktf';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PuffinStack, STACK_NAME } from './puffindb-stack.ts';

const started = performance.now();
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const app = new App({ outdir: process.env.CDKTF_OUTDIR ?? resolve(repoRoot, 'cdktf.out') });
new PuffinStack(app, STACK_NAME);
app.synth();
console.log(`synthesized ${app.outdir}/stacks/${STACK_NAME}/cdk.tf.json in ${((performance.now() - started) / 1000).toFixed(1)} s`);
