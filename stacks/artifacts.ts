// What gets bundled and where it lands: shared by the bundler (which builds the zips) and
// the stack (which points each Lambda at its zip), so adding a function is one line here.
// Kept free of esbuild so synthesis does not load the bundler.

export const ARCHITECTURES = ['x86_64', 'arm64'] as const;
export type Architecture = (typeof ARCHITECTURES)[number];

export interface BundleEntry {
  /** Basename of the zip and of the bundled module: `<name>.zip` holding `<name>.mjs`. */
  name: string;
  /** Source file, relative to the repository root. */
  entry: string;
  /**
   * For a command rather than a Lambda handler: the export the bundle calls with the
   * command-line arguments when it starts (the entry's own is-this-the-main-module check
   * cannot recognise the bundled file name).
   */
  main?: string;
}

/**
 * The Lambda functions, one line each: the bundler builds them and the stack creates a
 * function per line, with handler `<name>.handler` (the entry module exports `handler`).
 */
export const FUNCTION_ENTRIES = [
  { name: 'coordinator', entry: 'runtime/functions/coordinator.ts' },
  { name: 'worker', entry: 'runtime/functions/worker.ts' },
  { name: 'admin', entry: 'runtime/functions/admin.ts' },
] as const satisfies readonly BundleEntry[];

export type FunctionName = (typeof FUNCTION_ENTRIES)[number]['name'];

/** The Monostore instance runs the `puffindb` command (`serve`) from this bundle. */
export const SERVER_ENTRY = { name: 'server', entry: 'runtime/cli/main.ts', main: 'main' } as const satisfies BundleEntry;

export const HANDLER_EXPORT = 'handler';

/** Lambda's hard limit on a function's unzipped code. */
export const LAMBDA_UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024;

/** Where `npm run bundle` writes, relative to the repository root; the stack reads the same path. */
export const ARTIFACTS_DIR = 'dist/lambda';

