// Lambda deployment packages: esbuild bundles each entry point into one ES module and
// packs it, with DuckDB's native binding for the target architecture beside it, into a
// reproducible zip under dist/lambda/<architecture>/. The stack points each function at
// its zip and hashes it with Terraform's filebase64sha256, so a code change redeploys.
//
// Format: ESM (.mjs). Lambda's Node runtime loads .mjs handlers natively, top-level await
// runs during the init phase, and a createRequire banner gives the bundled CommonJS
// dependencies (@duckdb/node-api, ioredis, the AWS SDK) a real `require` for the one
// module that must stay outside the bundle: @duckdb/node-bindings, which picks the native
// `duckdb.node` for the running platform at load time.
//
// The query front ends' WebAssembly compilers stay outside the bundle too, and travel as
// packages beside it (FRONT_END_PACKAGES): prqlc is loaded with require() and reads its
// .wasm beside its own module, and @polyglot-sql/sdk does the same from its ESM entry, so
// neither works once esbuild inlines the JavaScript away from the .wasm.

import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PuffinError } from '../runtime/errors.ts';
import { ARTIFACTS_DIR, type Architecture, type BundleEntry } from './artifacts.ts';
import { writeZip, type ZipEntry } from './zip.ts';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const BINDINGS_LOADER = '@duckdb/node-bindings';

/** What the query front ends (runtime/sql/frontends.ts) load at run time: a package, and the files of it they need. */
const FRONT_END_MODULE = 'runtime/sql/frontends.ts';
const FRONT_END_PACKAGES: { name: string; keep: (rel: string) => boolean }[] = [
  // PRQL's compiler: package.json points require() at dist/node/.
  { name: 'prqlc', keep: (rel) => rel === 'package.json' || (rel.startsWith('dist/node/') && /\.(js|wasm|json)$/.test(rel)) },
  // The dialect translator: its Node ESM entry, the chunks it imports, and its .wasm.
  { name: '@polyglot-sql/sdk', keep: (rel) => rel === 'package.json' || rel === 'LICENSE' || /^dist\/[^/]+\.(js|wasm)$/.test(rel) },
];

/** The npm package holding DuckDB's native library for a Lambda architecture (glibc, as Lambda's Amazon Linux is). */
export function nativeBindingPackage(arch: Architecture): string {
  return arch === 'arm64' ? '@duckdb/node-bindings-linux-arm64' : '@duckdb/node-bindings-linux-x64';
}

export interface BundleOptions {
  arch: Architecture;
  repoRoot?: string;
  /** Directory the zip is written to; default `<repoRoot>/dist/lambda/<arch>`. */
  outDir?: string;
}

export interface BundleResult {
  name: string;
  arch: Architecture;
  zipPath: string;
  zipBytes: number;
  /** Sum of the file sizes inside the zip: what counts against Lambda's 250 MB. */
  unzippedBytes: number;
  /** Base64 SHA-256 of the zip: equal to Terraform's filebase64sha256 of the same file. */
  sourceCodeHash: string;
  /** SHA-256 (hex) over every archived path and its contents, independent of compression. */
  contentSha256: string;
  /** Paths inside the zip, sorted. */
  files: string[];
  /** Whether the bundle loads DuckDB, and so carries the native binding. */
  includesNativeBinding: boolean;
  /** Whether the bundle holds the query front ends, and so carries their compilers (PRQL, dialects). */
  includesFrontEnds: boolean;
}

/** Bundle one entry point and write `<outDir>/<name>.zip`. */
export async function bundleEntry(entry: BundleEntry, options: BundleOptions): Promise<BundleResult> {
  const repoRoot = options.repoRoot ?? REPO_ROOT;
  const outDir = options.outDir ?? join(repoRoot, ARTIFACTS_DIR, options.arch);
  const entryPath = join(repoRoot, entry.entry);
  if (!existsSync(entryPath)) {
    throw new PuffinError('not_found', `bundle entry '${entry.name}': ${entry.entry} does not exist`);
  }
  const result = await build({
    ...(entry.main
      ? {
          stdin: {
            contents: `import { ${entry.main} as main } from ${JSON.stringify(`./${entry.entry}`)};\nawait main(process.argv.slice(2));\n`,
            resolveDir: repoRoot,
            sourcefile: `${entry.name}-main.ts`,
            loader: 'ts' as const,
          },
        }
      : { entryPoints: [entryPath] }),
    absWorkingDir: repoRoot,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    write: false,
    outfile: join(outDir, `${entry.name}.mjs`),
    metafile: true,
    // Keeps readable names in stack traces; whitespace and syntax minification alone
    // would save little next to the native library.
    minify: false,
    legalComments: 'eof',
    logLevel: 'silent',
    external: [BINDINGS_LOADER, `${BINDINGS_LOADER}-*`, ...FRONT_END_PACKAGES.map((p) => p.name)],
    banner: {
      js: [
        "import { createRequire as __puffindbCreateRequire } from 'node:module';",
        "import { fileURLToPath as __puffindbFileURLToPath } from 'node:url';",
        "import { dirname as __puffindbDirname } from 'node:path';",
        'const require = __puffindbCreateRequire(import.meta.url);',
        'const __filename = __puffindbFileURLToPath(import.meta.url);',
        'const __dirname = __puffindbDirname(__filename);',
      ].join('\n'),
    },
  }).catch((err: unknown) => {
    throw buildFailure(entry, err);
  });
  const output = result.outputFiles.find((f) => f.path.endsWith('.mjs'));
  if (!output) throw new PuffinError('internal', `esbuild produced no module for '${entry.name}'`);

  const importsBindings = Object.values(result.metafile.outputs).some((out) =>
    out.imports.some((imp) => imp.external && imp.path.startsWith(BINDINGS_LOADER)),
  );
  const files: ZipEntry[] = [{ path: `${entry.name}.mjs`, data: output.contents }];
  if (importsBindings) files.push(...(await nativeBindingFiles(repoRoot, options.arch)));
  const includesFrontEnds = Object.keys(result.metafile.inputs).some((input) => input.split('\\').join('/').endsWith(FRONT_END_MODULE));
  if (includesFrontEnds) files.push(...(await packageFiles(repoRoot, FRONT_END_PACKAGES)));
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));

  const zip = writeZip(files);
  await mkdir(outDir, { recursive: true });
  const zipPath = join(outDir, `${entry.name}.zip`);
  await writeFile(zipPath, zip);

  const content = createHash('sha256');
  for (const f of files) content.update(f.path).update('\0').update(f.data).update('\0');
  return {
    name: entry.name,
    arch: options.arch,
    zipPath,
    zipBytes: zip.length,
    unzippedBytes: files.reduce((n, f) => n + f.data.length, 0),
    sourceCodeHash: createHash('sha256').update(zip).digest('base64'),
    contentSha256: content.digest('hex'),
    files: files.map((f) => f.path),
    includesNativeBinding: importsBindings,
    includesFrontEnds,
  };
}

/** An esbuild failure as a PuffinError naming the entry and the first error's location. */
function buildFailure(entry: BundleEntry, err: unknown): PuffinError {
  const first = (err as { errors?: { text: string; location?: { file: string; line: number } | null }[] }).errors?.[0];
  const where = first?.location ? `${first.location.file}:${first.location.line}: ` : '';
  const detail = first ? `${where}${first.text}` : err instanceof Error ? err.message : String(err);
  return new PuffinError('bad_request', `bundle '${entry.name}' (${entry.entry}) does not build: ${detail}`);
}

export interface SkippedEntry {
  name: string;
  entry: string;
  reason: string;
}

/** Bundle every entry whose source exists; missing ones are reported, and one that fails to build does not stop the rest. */
export async function bundleAll(
  entries: readonly BundleEntry[],
  options: BundleOptions,
): Promise<{ built: BundleResult[]; skipped: SkippedEntry[]; failed: PuffinError[] }> {
  const repoRoot = options.repoRoot ?? REPO_ROOT;
  const built: BundleResult[] = [];
  const skipped: SkippedEntry[] = [];
  const failed: PuffinError[] = [];
  for (const entry of entries) {
    if (!existsSync(join(repoRoot, entry.entry))) {
      skipped.push({ name: entry.name, entry: entry.entry, reason: 'source does not exist yet' });
      continue;
    }
    try {
      built.push(await bundleEntry(entry, { ...options, repoRoot }));
    } catch (err) {
      // A missing native binding fails every entry the same way: stop at the first.
      if (err instanceof PuffinError && err.code === 'unavailable') throw err;
      failed.push(err instanceof PuffinError ? err : new PuffinError('internal', String(err)));
    }
  }
  return { built, skipped, failed };
}

/** Package directories copied beside the bundle, with the files each needs at run time. */
async function nativeBindingFiles(repoRoot: string, arch: Architecture): Promise<ZipEntry[]> {
  const bindingPkg = nativeBindingPackage(arch);
  const bindingDir = join(repoRoot, 'node_modules', bindingPkg);
  if (!existsSync(join(bindingDir, 'duckdb.node'))) {
    const version = await installedVersion(repoRoot, BINDINGS_LOADER);
    throw new PuffinError(
      'unavailable',
      `DuckDB's native binding for Lambda architecture ${arch} (${bindingPkg}) is not installed, so an ${arch} bundle cannot be built. ` +
        `Install it beside the others with \`npm install --no-save --os=linux --cpu=${arch === 'arm64' ? 'arm64' : 'x64'} ${bindingPkg}@${version}\`, ` +
        `or deploy with lambda_architecture = "x86_64".`,
    );
  }
  const base = (rel: string) => rel.split('/').pop() ?? rel;
  return packageFiles(repoRoot, [
    // The loader that picks the binding by platform; kept as a package so its
    // require('@duckdb/node-bindings-linux-*/duckdb.node') resolves inside the zip.
    { name: BINDINGS_LOADER, keep: (rel) => ['package.json', 'LICENSE'].includes(base(rel)) || rel.endsWith('.js') },
    // Its one dependency: tells glibc from musl; the loader falls back to glibc without it.
    { name: 'detect-libc', keep: (rel) => ['package.json', 'LICENSE'].includes(base(rel)) || rel.endsWith('.js') },
    // duckdb.node links libduckdb.so through RUNPATH $ORIGIN, so both sit in one directory.
    { name: bindingPkg, keep: (rel) => ['package.json', 'LICENSE'].includes(base(rel)) || rel.endsWith('.node') || rel.endsWith('.so') },
  ]);
}

/** Installed packages' files as zip entries under node_modules/, those `keep` (given the path inside the package) selects. */
async function packageFiles(repoRoot: string, packages: { name: string; keep: (rel: string) => boolean }[]): Promise<ZipEntry[]> {
  const out: ZipEntry[] = [];
  for (const pkg of packages) {
    const dir = join(repoRoot, 'node_modules', pkg.name);
    if (!existsSync(join(dir, 'package.json'))) throw new PuffinError('unavailable', `the bundle needs the package ${pkg.name}, which is not installed: run npm ci`);
    for (const file of await listFiles(dir)) {
      const rel = relative(dir, file).split('\\').join('/');
      if (!pkg.keep(rel)) continue;
      out.push({ path: `node_modules/${pkg.name}/${rel}`, data: await readFile(file) });
    }
  }
  return out;
}

async function listFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const dirent of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, dirent.name);
    if (dirent.isDirectory()) found.push(...(await listFiles(path)));
    else if (dirent.isFile() || (dirent.isSymbolicLink() && (await stat(path)).isFile())) found.push(path);
  }
  return found;
}

async function installedVersion(repoRoot: string, pkg: string): Promise<string> {
  try {
    const json = JSON.parse(await readFile(join(repoRoot, 'node_modules', pkg, 'package.json'), 'utf8')) as { version?: string };
    return json.version ?? 'latest';
  } catch {
    return 'latest';
  }
}
