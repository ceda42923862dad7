// `npm run package` in a temp dir: the bundle holds the templates, diagram, listing, usage
// instructions, AMI recipe and first-boot files, the printed instructions name each, and
// image parts not built yet (Lambda zips, metering bundle) are reported, not silently left out.
// No bundling here: the synthesized module comes from a temp synth and the metering bundle is off.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { architectureDiagram } from '../../marketplace/architecture.ts';
import { PINNED, SCRIPTS, UNITS } from '../../marketplace/image-layout.ts';
import { loadListing } from '../../marketplace/listing.ts';
import { packageMarketplace } from '../../marketplace/package.ts';
import { marketplaceTemplate, templateJson } from '../../marketplace/template.ts';
import { synthesizeToTemp } from './helpers.ts';

const synth = synthesizeToTemp();
const work = mkdtempSync(join(tmpdir(), 'puffindb-package-'));
after(() => {
  synth.remove();
  rmSync(work, { recursive: true, force: true });
});
const version = (JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string }).version;

describe('packageMarketplace', () => {
  test('writes every part of the bundle and names each in the printed instructions', async () => {
    const emptyLambdaDir = join(work, 'no-lambda');
    mkdirSync(emptyLambdaDir);
    const { out, instructions, missing } = await packageMarketplace({ outRoot: join(work, 'out'), modulePath: synth.modulePath, bundleMetering: false, lambdaDir: emptyLambdaDir });
    assert.equal(out, join(work, 'out', version));
    const files = [
      'puffindb.template.json', 'puffindb.template.yaml', 'architecture.svg', 'listing.yaml', 'usage-instructions.txt',
      'ami/puffindb.pkr.hcl', 'ami/install.sh', 'ami/variables.auto.pkrvars.hcl',
      'image/terraform/cdk.tf.json', 'image/terraform/marketplace.tf.json', 'image/terraform/backend_override.tf.json',
      ...[...Object.values(SCRIPTS), ...Object.values(UNITS)].map((f) => `image/boot/${f}`),
    ];
    for (const f of files) assert.ok(existsSync(join(out, f)), `${f} is missing from the bundle`);
    const text = instructions.join('\n');
    for (const f of ['puffindb.template.yaml', 'architecture.svg', 'listing.yaml', 'usage-instructions.txt', 'ami/puffindb.pkr.hcl', 'ami/install.sh', ...Object.values(SCRIPTS), ...Object.values(UNITS)]) {
      assert.ok(text.includes(f), `the instructions do not name ${f}`);
    }
    assert.equal(readFileSync(join(out, 'puffindb.template.json'), 'utf8'), templateJson(marketplaceTemplate()));
    assert.equal(readFileSync(join(out, 'architecture.svg'), 'utf8'), architectureDiagram(synth.module, marketplaceTemplate()));
    assert.equal(readFileSync(join(out, 'usage-instructions.txt'), 'utf8'), `${loadListing().usage_instructions}\n`);
    const pkrvars = readFileSync(join(out, 'ami/variables.auto.pkrvars.hcl'), 'utf8');
    assert.ok(pkrvars.includes(`version = "${version}"\n`) && pkrvars.includes(`terraform_version = "${PINNED.terraform}"\n`), pkrvars);
    assert.match(pkrvars, /aws_provider_version = "\d+\.\d+\.\d+"/);
    // Nothing built: the instructions say the image is not ready and name every missing part.
    assert.equal(missing.length, 5);
    assert.match(text, /NOT READY/);
    for (const z of ['coordinator', 'worker', 'admin', 'server']) assert.ok(text.includes(`image/lambda/${z}.zip (run \`npm run bundle\`)`), `${z}.zip not reported`);
    assert.ok(text.includes('image/app/metering.mjs'));
  });

  test('with the Lambda zips present, they go into the image and only the skipped metering bundle is reported', async () => {
    const lambdaDir = join(work, 'lambda');
    mkdirSync(lambdaDir);
    for (const z of ['coordinator', 'worker', 'admin', 'server']) writeFileSync(join(lambdaDir, `${z}.zip`), `zip of ${z}`);
    const { out, missing, instructions } = await packageMarketplace({ outRoot: join(work, 'out2'), modulePath: synth.modulePath, bundleMetering: false, lambdaDir });
    for (const z of ['coordinator', 'worker', 'admin', 'server']) assert.equal(readFileSync(join(out, `image/lambda/${z}.zip`), 'utf8'), `zip of ${z}`);
    assert.deepEqual(missing, ['image/app/metering.mjs (the metering bundle)']);
    assert.doesNotMatch(instructions.join('\n'), /lambda\/\w+\.zip \(run/);
  });

  test('a module path that does not exist is an error naming it', async () => {
    await assert.rejects(packageMarketplace({ outRoot: join(work, 'out3'), modulePath: join(work, 'nope.json'), bundleMetering: false }), /nope\.json/);
  });
});
