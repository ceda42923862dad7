// The architecture diagram: the committed marketplace/architecture.svg is what the generator
// draws from the stack now, every concern of the stack is drawn, and the flows a buyer needs
// to understand are read from the module rather than assumed.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { architectureDiagram, architectureModel, BOOTSTRAP_CONCERN, moduleConcerns } from '../../marketplace/architecture.ts';
import { escapeXml } from '../../marketplace/svg.ts';
import { marketplaceTemplate } from '../../marketplace/template.ts';
import { synthesizeToTemp } from './helpers.ts';

const synth = synthesizeToTemp();
after(() => synth.remove());
const template = marketplaceTemplate();
const svg = architectureDiagram(synth.module, template);
const model = architectureModel(synth.module, template);

describe('the architecture diagram', () => {
  test('the committed marketplace/architecture.svg equals what the generator draws now (regenerate with `npm run package` and copy dist/marketplace/<version>/architecture.svg)', () => {
    const committed = readFileSync(join(import.meta.dirname, '../../marketplace/architecture.svg'), 'utf8');
    assert.equal(committed, svg);
  });

  test('every concern of the synthesized stack, and the bootstrap stack, is drawn', () => {
    const concerns = moduleConcerns(synth.module);
    for (const c of ['network', 'storage', 'state', 'functions', 'api', 'monostore']) assert.ok(concerns.includes(c), `the stack has no ${c} concern any more`);
    for (const c of [...concerns, BOOTSTRAP_CONCERN]) assert.ok(svg.includes(`<g id="concern-${c}">`), `concern ${c} is not drawn`);
  });

  test('every Lambda function, bucket and Redis group of the module and the template instance is a node', () => {
    const r = synth.module.resource;
    const ids = [
      ...Object.keys(r.aws_lambda_function ?? {}).map((n) => `tf:aws_lambda_function.${n}`),
      ...Object.keys(r.aws_s3_bucket ?? {}).map((n) => `tf:aws_s3_bucket.${n}`),
      ...Object.keys(r.aws_elasticache_replication_group ?? {}).map((n) => `tf:aws_elasticache_replication_group.${n}`),
      'cfn:Instance', 'cfn:StateBucket', 'cfn:BootWaitCondition',
    ];
    assert.ok(ids.length >= 9);
    for (const id of ids) assert.ok(svg.includes(`id="${escapeXml(id)}"`), `${id} is not drawn`);
  });

  test('the flows: API -> admin -> coordinator -> worker, Lambdas -> Redis, Lambdas -> S3 through the gateway endpoint, and the bootstrap steps', () => {
    const has = (from: string, to: string): boolean => model.flows.some((f) => f.from === from && f.to === to);
    const fn = (n: string): string => `tf:aws_lambda_function.${n}`;
    assert.ok(has('tf:aws_apigatewayv2_api.admin_api', fn('admin')));
    assert.ok(has(fn('admin'), fn('coordinator')));
    assert.ok(has(fn('coordinator'), fn('worker')));
    assert.ok(!has(fn('worker'), fn('coordinator')), 'the worker may not invoke the coordinator');
    for (const n of ['admin', 'coordinator', 'worker']) {
      assert.ok(has(fn(n), 'tf:aws_elasticache_replication_group.redis'), `${n} -> Redis`);
      assert.ok(has(fn(n), 'tf:aws_vpc_endpoint.s3_gateway'), `${n} -> S3 gateway endpoint`);
    }
    for (const b of ['lake', 'results', 'shuffle']) assert.ok(has('tf:aws_vpc_endpoint.s3_gateway', `tf:aws_s3_bucket.${b}`));
    assert.ok(has('cfn:Instance', 'cfn:BootWaitCondition'));
    assert.ok(has('cfn:Instance', 'cfn:StateBucket'));
    assert.ok(has('cfn:Instance', 'tf:aws_elasticache_replication_group.redis'));
    assert.ok(has('cfn:TeardownFunction', 'cfn:Instance'));
    assert.equal((svg.match(/<line /g) ?? []).length, model.flows.length + 1, 'one arrow per flow, plus terraform apply');
  });

  test('a new concern in the stack appears without a change to the generator', () => {
    const module = structuredClone(synth.module);
    module.resource.aws_sqs_queue = { jobs: { '//': { metadata: { path: 'puffindb/queues/jobs' } } } };
    assert.match(architectureDiagram(module, template), /<g id="concern-queues">/);
  });

  test('a module without construct metadata is refused with a clear error', () => {
    const module = structuredClone(synth.module);
    module.resource.aws_sqs_queue = { jobs: {} };
    assert.throws(() => architectureDiagram(module, template), /aws_sqs_queue\.jobs has no construct path/);
  });

  test('the SVG is well formed: balanced tags, escaped text', () => {
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    const opens = (svg.match(/<g[ >]/g) ?? []).length;
    assert.equal(opens, (svg.match(/<\/g>/g) ?? []).length);
    assert.doesNotMatch(svg.replace(/<[^>]*>/g, ''), /[<>]/);
    assert.match(svg, /buyer&apos;s|buyer's/);
  });
});
