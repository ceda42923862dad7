// Shared by the stack tests: the PuffinDB stack synthesized in memory with cdktf's Testing
// helpers (offline; no provider download), parsed once per test file.

import { Testing } from 'cdktf';
import { PuffinStack, STACK_NAME } from '../../stacks/puffindb-stack.ts';
import type { Block, TerraformJson } from '../../stacks/rules.ts';

let cached: TerraformJson | undefined;

export function synthesizedStack(): TerraformJson {
  cached ??= JSON.parse(Testing.synth(new PuffinStack(Testing.app(), STACK_NAME))) as TerraformJson;
  return cached;
}

/** A fresh deep copy, for tests that mutate the JSON. */
export function synthesizedCopy(): TerraformJson {
  return structuredClone(synthesizedStack());
}

export function resource(json: TerraformJson, type: string, name: string): Block {
  const body = json.resource?.[type]?.[name];
  if (!body) throw new Error(`no ${type}.${name} in the synthesized stack`);
  return body;
}

export function dataSource(json: TerraformJson, type: string, name: string): Block {
  const body = json.data?.[type]?.[name];
  if (!body) throw new Error(`no data.${type}.${name} in the synthesized stack`);
  return body;
}
