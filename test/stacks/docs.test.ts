import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEPLOY_DOC_PATH, renderDeployDoc } from '../../stacks/docs.ts';
import { INPUTS } from '../../stacks/inputs.ts';
import { OUTPUTS } from '../../stacks/outputs.ts';

describe('docs/DEPLOY.md', () => {
  const generated = renderDeployDoc();

  test('the committed file is exactly what the stack definitions generate (run `npm run docs:deploy`)', () => {
    const committed = readFileSync(join(import.meta.dirname, '..', '..', DEPLOY_DOC_PATH), 'utf8');
    assert.equal(committed, generated);
  });

  test('lists every input and output', () => {
    for (const name of [...Object.keys(INPUTS), ...Object.keys(OUTPUTS)]) assert.ok(generated.includes(`| \`${name}\` |`), name);
  });
});
