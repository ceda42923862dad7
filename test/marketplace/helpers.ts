// Shared by the Marketplace tests: the stack synthesized the way `npm run synth` does it (with
// the construct metadata the diagram reads; cdktf's Testing.synth drops it), into a temp dir.

import { App } from 'cdktf';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PuffinStack, STACK_NAME } from '../../stacks/puffindb-stack.ts';
import type { DiagramModule } from '../../marketplace/architecture.ts';

export interface SynthesizedOnDisk {
  dir: string;
  modulePath: string;
  module: DiagramModule;
  remove(): void;
}

export function synthesizeToTemp(): SynthesizedOnDisk {
  const dir = mkdtempSync(join(tmpdir(), 'puffindb-marketplace-'));
  const app = new App({ outdir: join(dir, 'cdktf.out') });
  new PuffinStack(app, STACK_NAME);
  app.synth();
  const modulePath = join(dir, 'cdktf.out/stacks', STACK_NAME, 'cdk.tf.json');
  return { dir, modulePath, module: JSON.parse(readFileSync(modulePath, 'utf8')) as DiagramModule, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
