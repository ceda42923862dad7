// The runtime compiled ahead of time, for the processes that start often: the `puffindb`
// command and the worker and SQL runner processes a server forks. Run through tsx, each
// start transforms and loads ~250 TypeScript modules (about a CPU-second); compiled, it
// loads one JavaScript module per entry.
//
// The compiled modules are a cache, never the source of truth: they live under
// node_modules/.cache/puffindb/<hash>/, where <hash> covers every runtime source file (path,
// size, modification time) and the compiler's version. A changed source gives a new hash
// and a new build (esbuild, about half a second); what cannot be built or stored (a
// read-only install, PUFFINDB_COMPILED=0) runs through tsx, as before. Plain JavaScript, so
// that `bin/puffindb.js` can use it before tsx is loaded.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const RUNTIME = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(RUNTIME);
const CACHE = join(ROOT, 'node_modules', '.cache', 'puffindb');
/** Bumped when the way modules are compiled changes. */
const FORMAT = 2;
/** Builds kept besides the current one (other checkouts' or branches' sources). */
const KEEP = 4;

/** The entries compiled, by name: the command, and the two kinds of child process. */
export const ENTRIES = {
  cli: 'cli/main.ts',
  'pool-child': 'exec/pool-child.ts',
  'sql-runner-child': 'exec/sql-runner-child.ts',
};

let prepared;
let preparing;

function sourceFiles(dir, out = []) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) sourceFiles(path, out);
    else if (entry.name.endsWith('.ts') || entry.name.endsWith('.js') || entry.name.endsWith('.json')) out.push(path);
  }
  return out;
}

/** The hash of every runtime source file's path, size and modification time, and the compiler's version. */
function sourceHash(esbuildVersion) {
  const hash = createHash('sha256').update(`${FORMAT}\0${esbuildVersion}\0`);
  for (const path of sourceFiles(RUNTIME).sort()) {
    const st = statSync(path);
    hash.update(`${relative(RUNTIME, path)}\0${st.size}\0${st.mtimeMs}\0`);
  }
  return hash.digest('hex').slice(0, 20);
}

/**
 * Every module keeps its own `import.meta.url`, so paths it resolves relative to itself
 * (fixtures, child modules) are the same compiled or not.
 */
function ownUrlPlugin() {
  return {
    name: 'puffindb-own-url',
    setup(build) {
      // This module stays one module, shared with bin/puffindb.js: imported by its file URL.
      build.onResolve({ filter: /[/\\]compiled\.js$/ }, (args) => ({ path: pathToFileURL(join(args.resolveDir, args.path)).href, external: true }));
      build.onLoad({ filter: /\.ts$/ }, (args) => {
        const source = readFileSync(args.path, 'utf8');
        const url = JSON.stringify(pathToFileURL(args.path).href);
        return { contents: source.replaceAll('import.meta.url', url), loader: 'ts' };
      });
    },
  };
}

/** Remove all but the newest KEEP builds, never the current one. */
function prune(current) {
  let all;
  try {
    all = readdirSync(CACHE);
  } catch {
    return;
  }
  // Staging directories of builds that died midway.
  for (const d of all) {
    if (d.startsWith('.build-') && Date.now() - statSync(join(CACHE, d)).mtimeMs > 10 * 60_000) rmSync(join(CACHE, d), { recursive: true, force: true });
  }
  const dirs = all.filter((d) => d !== current && !d.startsWith('.'));
  const aged = dirs.map((d) => ({ d, t: statSync(join(CACHE, d)).mtimeMs })).sort((a, b) => b.t - a.t);
  for (const { d } of aged.slice(KEEP)) rmSync(join(CACHE, d), { recursive: true, force: true });
}

async function build() {
  if (process.env.PUFFINDB_COMPILED === '0') return undefined;
  const require = createRequire(import.meta.url);
  const esbuild = require('esbuild');
  const hash = sourceHash(esbuild.version);
  const dir = join(CACHE, hash);
  const paths = Object.fromEntries(Object.keys(ENTRIES).map((name) => [name, join(dir, `${name}.mjs`)]));
  if (Object.values(paths).every((p) => existsSync(p))) return { dir, paths };
  // Built beside its final place and renamed into it, so a process never sees half a build;
  // when two build at once, the first rename wins and the other's copy is removed.
  const staging = join(CACHE, `.build-${process.pid}-${Date.now()}`);
  mkdirSync(staging, { recursive: true });
  try {
    await esbuild.build({
      entryPoints: Object.fromEntries(Object.entries(ENTRIES).map(([name, entry]) => [name, join(RUNTIME, entry)])),
      outdir: staging,
      outExtension: { '.js': '.mjs' },
      bundle: true,
      platform: 'node',
      format: 'esm',
      // Modules imported dynamically (the server's, Redis's, Lambda's) are chunks of their own,
      // so their dependencies load only when they are used.
      splitting: true,
      chunkNames: 'chunks/[name]-[hash]',
      target: 'node20',
      // Dependencies load from node_modules as they would from the sources.
      packages: 'external',
      plugins: [ownUrlPlugin()],
      logLevel: 'silent',
    });
    try {
      renameSync(staging, dir);
    } catch {
      // Another process renamed its build into place first.
      rmSync(staging, { recursive: true, force: true });
    }
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    throw err;
  }
  prune(hash);
  return Object.values(paths).every((p) => existsSync(p)) ? { dir, paths } : undefined;
}

/**
 * Build the compiled entries if the current sources have none yet; resolves to their paths,
 * or undefined when the runtime runs through tsx instead (disabled, or the build failed).
 */
export function prepareCompiled() {
  preparing ??= build().then(
    (done) => {
      prepared = done;
      return done;
    },
    () => undefined,
  );
  return preparing;
}

/** The compiled module of an entry, when prepareCompiled() has made it in this process. */
export function compiledEntry(name) {
  return prepared?.paths[name];
}
