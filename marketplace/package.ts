// `npm run package` (node --import tsx marketplace/package.ts): writes
// dist/marketplace/<version>/ with the template (JSON, YAML), the architecture diagram, the
// listing and usage instructions, the Terraform module and the Marketplace extension, the
// metering bundle, the AMI recipe and the first-boot files, and prints what a seller uploads
// where. Offline: it synthesizes and bundles locally; the Lambda zips come from
// `npm run bundle`, and their absence is reported in the instructions (NOT READY), not hidden.

import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { architectureDiagram, type DiagramModule } from './architecture.ts';
import { PINNED, SCRIPTS, UNITS } from './image-layout.ts';
import { LISTING_PATH, loadListing } from './listing.ts';
import { marketplaceTemplate, templateJson, templateYaml } from './template.ts';
import { backendOverride, marketplaceExtension, pinnedProvider } from './terraform-extension.ts';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
const LAMBDA_ZIPS = ['coordinator', 'worker', 'admin', 'server'] as const;
const BOOT_FILES = [SCRIPTS.firstBoot, SCRIPTS.destroy, UNITS.firstBoot, UNITS.server, UNITS.metering];
const AMI_FILES = ['puffindb.pkr.hcl', 'install.sh'];

export interface PackageOptions {
  /** Where <version>/ is written (default dist/marketplace). */
  outRoot?: string;
  /** A synthesized cdk.tf.json to use instead of running `npm run synth` (its construct metadata is needed). */
  modulePath?: string;
  /** Bundle runtime/metering with esbuild into image/app/metering.mjs (default true). */
  bundleMetering?: boolean;
  /** Where the Lambda zips of `npm run bundle` are (default dist/lambda/x86_64). */
  lambdaDir?: string;
}

export interface PackageResult {
  out: string;
  /** What a seller uploads where, as printed. */
  instructions: string[];
  /** Image parts not built yet (Lambda zips, metering bundle): the AMI cannot be built until they are. */
  missing: string[];
}

export async function packageMarketplace(options: PackageOptions = {}): Promise<PackageResult> {
  const listing = loadListing();
  const version = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
  const out = join(options.outRoot ?? join(REPO, 'dist/marketplace'), version);
  rmSync(out, { recursive: true, force: true });
  for (const d of ['image/terraform', 'image/app', 'image/boot', 'image/lambda', 'ami']) mkdirSync(join(out, d), { recursive: true });

  let modulePath = options.modulePath;
  if (!modulePath) {
    execFileSync(process.execPath, ['--import', 'tsx', join(REPO, 'stacks/main.ts')], { cwd: REPO, stdio: 'ignore' });
    modulePath = join(REPO, 'cdktf.out/stacks/puffindb/cdk.tf.json');
  }
  const module = JSON.parse(readFileSync(modulePath, 'utf8')) as DiagramModule;
  cpSync(modulePath, join(out, 'image/terraform/cdk.tf.json'));
  writeFileSync(join(out, 'image/terraform/marketplace.tf.json'), `${JSON.stringify(marketplaceExtension(module), null, 2)}\n`);
  writeFileSync(join(out, 'image/terraform/backend_override.tf.json'), `${JSON.stringify(backendOverride(), null, 2)}\n`);

  const template = marketplaceTemplate();
  writeFileSync(join(out, 'puffindb.template.json'), templateJson(template));
  writeFileSync(join(out, 'puffindb.template.yaml'), templateYaml(template));
  writeFileSync(join(out, 'architecture.svg'), architectureDiagram(module, template));
  cpSync(LISTING_PATH, join(out, 'listing.yaml'));
  writeFileSync(join(out, 'usage-instructions.txt'), `${listing.usage_instructions}\n`);

  const missing: string[] = [];
  if (options.bundleMetering ?? true) {
    await build({ entryPoints: [join(REPO, 'runtime/metering/run.ts')], bundle: true, platform: 'node', target: 'node20', format: 'esm', outfile: join(out, 'image/app/metering.mjs'), logLevel: 'silent',
      banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" } });
  } else missing.push('image/app/metering.mjs (the metering bundle)');
  for (const f of BOOT_FILES) cpSync(join(REPO, 'marketplace/ami', f), join(out, 'image/boot', f));
  for (const f of AMI_FILES) cpSync(join(REPO, 'marketplace/ami', f), join(out, 'ami', f));
  const lambdaDir = options.lambdaDir ?? join(REPO, 'dist/lambda/x86_64');
  for (const z of LAMBDA_ZIPS) {
    if (existsSync(join(lambdaDir, `${z}.zip`))) cpSync(join(lambdaDir, `${z}.zip`), join(out, `image/lambda/${z}.zip`));
    else missing.push(`image/lambda/${z}.zip (run \`npm run bundle\`)`);
  }
  const provider = pinnedProvider(module);
  writeFileSync(join(out, 'ami/variables.auto.pkrvars.hcl'), `version = "${version}"\nterraform_version = "${PINNED.terraform}"\naws_provider_version = "${provider.version}"\n`);

  const instructions = uploadInstructions(version, out, missing);
  for (const line of instructions) console.log(line);
  return { out, instructions, missing };
}

function uploadInstructions(version: string, out: string, missing: string[]): string[] {
  const shown = relative(process.cwd(), out) || '.';
  const lines = [
    `PuffinDB Marketplace bundle ${version}: ${shown}`,
    `  1. Build the AMI (release job with internet): cd ${shown} && packer build -var region=us-east-1 ami/puffindb.pkr.hcl`,
    `     (ami/install.sh installs image/terraform, image/app, image/lambda and image/boot: ${BOOT_FILES.join(', ')}; versions in ami/variables.auto.pkrvars.hcl)`,
  ];
  if (missing.length > 0) lines.push(`     NOT READY: the image is missing ${missing.join('; ')}. Build them, then package again.`);
  lines.push(
    '  2. AWS Marketplace Management Portal > Products > Server > your product > Request changes > Add new version:',
    '     the AMI id, delivery option "AMI with CloudFormation", template puffindb.template.yaml (or puffindb.template.json; AMI parameter: ImageId),',
    '     architecture diagram architecture.svg, and usage instructions usage-instructions.txt.',
    '  3. Request changes > Update product information: title, descriptions, highlights, keywords, categories and support from listing.yaml;',
    '     Update pricing: the pricing_dimensions of listing.yaml (the dimensions the instance meters).',
  );
  return lines;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    // Missing image parts are reported in the instructions; the listing material is still complete.
    await packageMarketplace();
  } catch (err) {
    console.error((err as Error).message);
    process.exitCode = 1;
  }
}
