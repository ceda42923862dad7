// The first-boot files on the image (marketplace/ami) against image-layout.ts and the
// template: every path, unit and variable they use is the one the layout declares, and what
// UserData writes is exactly what the scripts read.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { BOOTSTRAP_VARS, EXTENSION_VARIABLES, IMAGE, SCRIPTS, UNITS } from '../../marketplace/image-layout.ts';
import { BOOT_TIMEOUT_SECONDS, marketplaceTemplate, userDataScript } from '../../marketplace/template.ts';
import { marketplaceExtension } from '../../marketplace/terraform-extension.ts';
import { synthesizedStack } from '../stacks/synthesized.ts';

const AMI = join(import.meta.dirname, '../../marketplace/ami');
const read = (f: string): string => readFileSync(join(AMI, f), 'utf8');
const FILES = readdirSync(AMI);
const SCRIPT_FILES = Object.values(SCRIPTS);
const UNIT_FILES = Object.values(UNITS);
const module = synthesizedStack() as unknown as Parameters<typeof marketplaceExtension>[0];
const template = marketplaceTemplate();

/** `NAME=/abs/path` assignments of a script, substituted into its `$NAME`/`${NAME}` uses. */
function expand(script: string): string {
  let text = script;
  for (const m of script.matchAll(/^(\w+)=(\/[^\s;]+)$/gm)) text = text.replace(new RegExp(`\\$\\{?${m[1]}\\}?(?!\\w)`, 'g'), m[2] ?? '');
  return text;
}

/** Absolute paths under the image's own roots, with glob tails removed. */
function ownPaths(text: string): string[] {
  const found = [...text.matchAll(/(?<![\w.])(\/(?:opt|etc|var\/lib|var\/log)\/puffindb[\w./*-]*|\/usr\/bin\/node|\/usr\/local\/bin\/terraform)/g)].map((m) => (m[1] ?? '').replace(/\/\*[^/]*$/, '').replace(/\/$/, ''));
  return [...new Set(found)];
}

const layoutPaths = new Set<string>(Object.values(IMAGE));
const allowed = new Set<string>([...layoutPaths, ...SCRIPT_FILES.map((s) => `${IMAGE.binDir}/${s}`)]);

describe('the first-boot files use the layout of image-layout.ts', () => {
  test('every unit and script the layout names is a file of the image, and the image has no other', () => {
    const expected = [...UNIT_FILES, ...SCRIPT_FILES, 'install.sh', 'puffindb.pkr.hcl'].sort();
    assert.deepEqual([...FILES].sort(), expected);
  });

  test('every path the scripts, units and install step use is a path of the layout', () => {
    for (const f of [...SCRIPT_FILES, ...UNIT_FILES, 'install.sh']) {
      const paths = ownPaths(expand(read(f)));
      assert.ok(paths.length > 0, `${f} uses no image path`);
      // The Lambda zips are named by the bundle, not the layout: only their directory is.
      for (const p of paths) assert.ok(allowed.has(p) || new RegExp(`^${IMAGE.lambdaArtifactsDir}/\\w+\\.zip$`).test(p), `${f} uses ${p}, which image-layout.ts does not declare`);
    }
  });

  test('the layout paths the boot depends on are the ones the boot files use', () => {
    const firstBoot = expand(read(SCRIPTS.firstBoot));
    for (const p of [IMAGE.bootstrapEnv, IMAGE.terraformCliConfig, IMAGE.terraformBin, IMAGE.workDir, IMAGE.appliedMarker, IMAGE.runtimeEnv, IMAGE.meteringEnv, IMAGE.terraformDir]) {
      assert.ok(firstBoot.includes(p), `${SCRIPTS.firstBoot} does not use ${p}`);
    }
    const destroy = expand(read(SCRIPTS.destroy));
    for (const p of [IMAGE.bootstrapEnv, IMAGE.terraformCliConfig, IMAGE.terraformBin, IMAGE.workDir]) assert.ok(destroy.includes(p), `${SCRIPTS.destroy} does not use ${p}`);
    const install = read('install.sh');
    for (const p of [IMAGE.appDir, IMAGE.terraformDir, IMAGE.lambdaArtifactsDir, IMAGE.binDir, IMAGE.providerMirrorDir, IMAGE.terraformCliConfig, IMAGE.home, IMAGE.nodeBin]) {
      assert.ok(install.includes(p), `install.sh does not create ${p}`);
    }
    assert.ok(install.includes(`path    = "${IMAGE.providerMirrorDir}"`), 'the terraformrc written by install.sh points at the provider mirror');
  });

  test('units start what the layout says, read the environment files first boot writes, and order after first boot', () => {
    const unit = (u: string, key: string): string[] => [...read(u).matchAll(new RegExp(`^${key}=(.+)$`, 'gm'))].map((m) => m[1] ?? '');
    assert.deepEqual(unit(UNITS.firstBoot, 'ExecStart'), [`${IMAGE.binDir}/${SCRIPTS.firstBoot}`]);
    assert.deepEqual(unit(UNITS.firstBoot, 'ConditionPathExists'), [IMAGE.bootstrapEnv]);
    assert.deepEqual(unit(UNITS.firstBoot, 'StandardOutput'), [`append:${IMAGE.logFile}`]);
    assert.ok(Number(unit(UNITS.firstBoot, 'TimeoutStartSec')[0]) <= BOOT_TIMEOUT_SECONDS, 'first boot may not outlive the wait condition');
    assert.match(unit(UNITS.server, 'ExecStart')[0] ?? '', new RegExp(`^${IMAGE.nodeBin} ${IMAGE.serverEntry} serve `));
    assert.deepEqual(unit(UNITS.server, 'EnvironmentFile'), [IMAGE.runtimeEnv]);
    assert.deepEqual(unit(UNITS.server, 'WorkingDirectory'), [IMAGE.home]);
    assert.deepEqual(unit(UNITS.metering, 'ExecStart'), [`${IMAGE.nodeBin} ${IMAGE.meteringEntry}`]);
    assert.deepEqual(unit(UNITS.metering, 'EnvironmentFile'), [IMAGE.runtimeEnv, IMAGE.meteringEnv]);
    for (const u of [UNITS.server, UNITS.metering]) assert.deepEqual(unit(u, 'Requires'), [UNITS.firstBoot]);
    // Every unit any file names is one of ours.
    for (const f of FILES) for (const m of read(f).matchAll(/puffindb[\w-]*\.service/g)) assert.ok(UNIT_FILES.includes(m[0] as never), `${f} names ${m[0]}`);
    assert.match(read('install.sh'), new RegExp(`systemctl enable ${UNITS.firstBoot.replace('.', '\\.')}`));
    const started = [...read(SCRIPTS.firstBoot).matchAll(/systemctl start ([\w.-]+)/g)].map((m) => m[1]);
    assert.deepEqual(started, [UNITS.server, UNITS.metering]);
  });
});

describe('UserData, the wait condition and the parameters match what the boot reads', () => {
  const userData = userDataScript();
  const written = new Map([...userData.matchAll(/^([A-Za-z_0-9]+)='([^']*)'$/gm)].map((m) => [m[1] ?? '', m[2] ?? '']));

  test('UserData writes the bootstrap file the unit waits for and starts the first-boot unit', () => {
    assert.ok(userData.includes(`cat > ${IMAGE.bootstrapEnv} <<'ENV'`));
    assert.ok(userData.includes(`systemctl start --no-block ${UNITS.firstBoot}`));
  });

  test('the scripts read exactly the bootstrap variables, all of which UserData writes', () => {
    const locals = new Set(['TF', 'WORK', 'ADMIN_KEY', 'TOKEN', 'PRODUCT_CODE', 'LINENO', 'body', 'address']);
    const read_ = new Set<string>();
    for (const f of SCRIPT_FILES) for (const m of read(f).matchAll(/\$\{?([A-Za-z_][A-Za-z_0-9]*)/g)) if (!locals.has(m[1] ?? '') && !/^\d/.test(m[1] ?? '')) read_.add(m[1] ?? '');
    const bootstrapRead = [...read_].filter((v) => !v.startsWith('TF_VAR_')).sort();
    assert.deepEqual(bootstrapRead, [...BOOTSTRAP_VARS].sort(), 'scripts read a variable image-layout.ts does not declare, or one nobody reads');
    for (const v of read_) assert.ok(written.has(v), `the scripts read ${v}, which UserData does not write`);
    for (const v of BOOTSTRAP_VARS) assert.ok(written.has(v), `UserData does not write ${v}`);
    assert.deepEqual([...written.keys()].filter((k) => !k.startsWith('TF_VAR_')).sort(), [...BOOTSTRAP_VARS].sort());
  });

  test('every TF_VAR_ UserData writes is a variable of the module or of the Marketplace extension, and every parameter reaches one', () => {
    const variables = new Set([...Object.keys(module.variable), ...Object.keys(EXTENSION_VARIABLES)]);
    const tfVars = [...written.keys()].filter((k) => k.startsWith('TF_VAR_')).map((k) => k.slice('TF_VAR_'.length));
    assert.ok(tfVars.length > 15);
    for (const v of tfVars) assert.ok(variables.has(v), `UserData sets TF_VAR_${v}, which the module does not declare`);
    for (const name of Object.keys(EXTENSION_VARIABLES)) assert.ok(tfVars.includes(name), `the extension variable ${name} is not set`);
    const subs = [...written.values()].join('\n');
    for (const p of Object.keys(template.Parameters)) {
      if (p === 'ImageId' || p === 'InstanceType') continue; // used by the instance resource itself
      const used = subs.includes(`\${${p}}`) || JSON.stringify([template.Resources, template.Conditions]).includes(`"Ref":"${p}"`);
      assert.ok(used, `parameter ${p} reaches neither UserData, a resource nor a condition`);
    }
  });

  test('the wait handle, admin key and state bucket UserData passes are the resources the outputs and the wait condition use', () => {
    assert.equal(written.get('PUFFINDB_WAIT_HANDLE_URL'), '${BootWaitHandle}');
    assert.deepEqual(template.Resources.BootWaitCondition?.Properties?.Handle, { Ref: 'BootWaitHandle' });
    assert.equal(template.Resources.BootWaitHandle?.Type, 'AWS::CloudFormation::WaitConditionHandle');
    assert.equal(written.get('PUFFINDB_ADMIN_KEY_SECRET_ARN'), '${AdminKeySecret}');
    assert.deepEqual(template.Outputs.AdminKeySecretArn?.Value, { Ref: 'AdminKeySecret' });
    assert.equal(written.get('PUFFINDB_STATE_BUCKET'), '${StateBucket}');
    assert.deepEqual(template.Outputs.AdminApiUrl?.Value, { 'Fn::GetAtt': ['BootWaitCondition', 'Data'] });
    assert.equal(template.Resources.BootWaitCondition?.Properties?.Timeout, String(BOOT_TIMEOUT_SECONDS));
  });

  test('first boot signals the wait condition with the module output it reads, and the outputs it reads exist', () => {
    const firstBoot = read(SCRIPTS.firstBoot);
    assert.match(firstBoot, /"Status":"%s","Reason":"%s","UniqueId":"puffindb","Data":"%s"/);
    assert.match(firstBoot, /signal SUCCESS .*\$\(\$TF output -raw api_url\)/);
    assert.match(firstBoot, /trap 'signal FAILURE/);
    const outputs = new Set([...Object.keys(module.output), ...Object.keys((marketplaceExtension(module) as { output: Record<string, unknown> }).output)]);
    for (const m of firstBoot.matchAll(/output -raw (\w+)/g)) assert.ok(outputs.has(m[1] ?? ''), `first boot reads output ${m[1]}, which the module does not declare`);
  });

  test('the teardown runs the destroy script the image installs, and that script keeps resources the module has', () => {
    assert.equal(template.Resources.Teardown?.Properties?.DestroyCommand, `${IMAGE.binDir}/${SCRIPTS.destroy}`);
    const destroy = read(SCRIPTS.destroy);
    assert.ok(written.has('TF_VAR_force_destroy_buckets') && destroy.includes('$TF_VAR_force_destroy_buckets'));
    const pattern = /grep -E '(\^[^']+)'/.exec(destroy)?.[1];
    assert.ok(pattern, 'the destroy script selects the kept resources with grep -E');
    const kept = Object.entries((module as unknown as { resource: Record<string, Record<string, unknown>> }).resource)
      .flatMap(([type, byName]) => Object.keys(byName).map((name) => `${type}.${name}`))
      .filter((address) => new RegExp(pattern).test(address));
    for (const must of ['aws_s3_bucket.lake', 'aws_s3_bucket.results', 'aws_s3_bucket.shuffle', 'aws_kms_key.main', 'aws_kms_alias.main_alias']) assert.ok(kept.includes(must), `${must} is not kept by ${SCRIPTS.destroy}`);
  });
});
