// `npm run bundle [-- --arch x86_64|arm64]`: build every Lambda (and the Monostore server)
// bundle that has a source file, write dist/lambda/<arch>/*.zip plus a manifest, and print
// each package's size against Lambda's 250 MB unzipped limit.

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PuffinError } from '../runtime/errors.ts';
import { ARCHITECTURES, ARTIFACTS_DIR, FUNCTION_ENTRIES, LAMBDA_UNZIPPED_LIMIT_BYTES, SERVER_ENTRY, type Architecture } from './artifacts.ts';
import { bundleAll, REPO_ROOT } from './bundle.ts';

function parseArch(value: string | undefined): Architecture {
  const arch = value ?? 'x86_64';
  if (!(ARCHITECTURES as readonly string[]).includes(arch)) {
    throw new PuffinError('bad_request', `--arch must be one of ${ARCHITECTURES.join(', ')}, got '${arch}'`);
  }
  return arch as Architecture;
}

const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { arch: { type: 'string' } } });
  const arch = parseArch(values.arch);
  const outDir = join(REPO_ROOT, ARTIFACTS_DIR, arch);
  const started = performance.now();
  const { built, skipped, failed } = await bundleAll([...FUNCTION_ENTRIES, SERVER_ENTRY], { arch, outDir });
  for (const b of built) {
    const over = b.unzippedBytes > LAMBDA_UNZIPPED_LIMIT_BYTES ? '  OVER the 250 MB Lambda limit' : '';
    console.log(`${b.name.padEnd(12)} ${mb(b.unzippedBytes).padStart(9)} unzipped  ${mb(b.zipBytes).padStart(9)} zipped  ${b.includesNativeBinding ? 'with' : 'without'} DuckDB binding${over}`);
  }
  for (const s of skipped) console.log(`${s.name.padEnd(12)} skipped: ${s.entry} ${s.reason}`);
  for (const f of failed) console.error(`FAILED: ${f.message}`);
  await mkdir(outDir, { recursive: true });
  await writeFile(
    join(outDir, 'manifest.json'),
    `${JSON.stringify({ arch, bundles: built.map(({ zipPath, ...rest }) => ({ ...rest, zip: zipPath.slice(outDir.length + 1) })), skipped, failed: failed.map((f) => f.message) }, null, 2)}\n`,
  );
  console.log(`wrote ${built.length} bundle(s) to ${ARTIFACTS_DIR}/${arch}/ in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  if (failed.length > 0 || built.some((b) => b.unzippedBytes > LAMBDA_UNZIPPED_LIMIT_BYTES)) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(err instanceof PuffinError ? `bundle: ${err.message}` : err);
  process.exitCode = 1;
});
