// `npm run package` (node --import tsx marketplace/package.ts): writes
// dist/marketplace/<version>/ with the template (JSON, YAML), the Terraform module and the
// Marketplace extension, the metering bundle, the AMI recipe and the first-boot files, and
// prints what a seller uploads where. Offline: it synthesizes and bundles locally.

import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PINNED } from './image-layout.ts';
import { marketplaceTemplate, templateJson, templateYaml } from './template.ts';
import { backendOverride, marketplaceExtension, pinnedProvider, type SynthesizedModule } from './terraform-extension.ts';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');

export async function packageMarketplace(outRoot = join(REPO, 'dist/marketplace')): Promise<string> {
  const version = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
  const out = join(outRoot, version);
  rmSync(out, { recursive: true, force: true });
  for (const d of ['image/terraform', 'image/app', 'image/boot', 'image/lambda', 'ami']) mkdirSync(join(out, d), { recursive: true });

  execFileSync(process.execPath, ['--import', 'tsx', join(REPO, 'stacks/main.ts')], { cwd: REPO, stdio: 'ignore' });
  const modulePath = join(REPO, 'cdktf.out/stacks/puffindb/cdk.tf.json');
  const module = JSON.parse(readFileSync(modulePath, 'utf8')) as SynthesizedModule;
  cpSync(modulePath, join(out, 'image/terraform/cdk.tf.json'));
  writeFileSync(join(out, 'image/terraform/marketplace.tf.json'), `${JSON.stringify(marketplaceExtension(module), null, 2)}\n`);
  writeFileSync(join(out, 'image/terraform/backend_override.tf.json'), `${JSON.stringify(backendOverride(), null, 2)}\n`);

  const template = marketplaceTemplate();
  writeFileSync(join(out, 'puffindb.template.json'), templateJson(template));
  writeFileSync(join(out, 'puffindb.template.yaml'), templateYaml(template));

  await build({ entryPoints: [join(REPO, 'runtime/metering/run.ts')], bundle: true, platform: 'node', target: 'node20', format: 'esm', outfile: join(out, 'image/app/metering.mjs'), logLevel: 'silent',
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" } });
  for (const f of ['puffindb-first-boot', 'puffindb-destroy', 'puffindb-first-boot.service', 'puffindb.service', 'puffindb-metering.service']) cpSync(join(REPO, 'marketplace/ami', f), join(out, 'image/boot', f));
  for (const f of ['puffindb.pkr.hcl', 'install.sh']) cpSync(join(REPO, 'marketplace/ami', f), join(out, 'ami', f));
  const lambdaDir = join(REPO, 'dist/lambda/x86_64');
  const zips = ['coordinator', 'worker', 'admin', 'server'].filter((n) => existsSync(join(lambdaDir, `${n}.zip`)));
  for (const z of zips) cpSync(join(lambdaDir, `${z}.zip`), join(out, `image/lambda/${z}.zip`));
  const provider = pinnedProvider(module);
  writeFileSync(join(out, 'ami/variables.auto.pkrvars.hcl'), `version = "${version}"\nterraform_version = "${PINNED.terraform}"\naws_provider_version = "${provider.version}"\n`);
  if (existsSync(join(REPO, 'marketplace/listing.yaml'))) cpSync(join(REPO, 'marketplace/listing.yaml'), join(out, 'listing.yaml'));

  const rel = (p: string): string => relative(REPO, join(out, p));
  console.log(`PuffinDB Marketplace bundle ${version}: ${relative(REPO, out)}`);
  console.log(`  1. Build the AMI (release job with internet): cd ${relative(REPO, out)} && packer build -var region=us-east-1 ami/puffindb.pkr.hcl`);
  if (zips.length < 4) console.log(`     first run \`npm run bundle\`: missing ${['coordinator', 'worker', 'admin', 'server'].filter((n) => !zips.includes(n)).join(', ')}.zip in dist/lambda/x86_64`);
  console.log('  2. AWS Marketplace Management Portal > Products > Server > your product > Request changes > Add new version:');
  console.log(`     the AMI id, delivery option "AMI with CloudFormation", template ${rel('puffindb.template.yaml')} (AMI parameter: ImageId),`);
  console.log('     and the architecture diagram for that template.');
  console.log(`  3. Product information and pricing dimensions from ${rel('listing.yaml')} (Update product information; Update pricing).`);
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await packageMarketplace();
