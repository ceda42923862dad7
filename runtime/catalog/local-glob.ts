// Turns what a user types to name local data (a file, a directory, or a glob such as
// 'dir/*.parquet' or 'dir/**/*.parquet') into a sorted list of absolute file paths. Globs are
// expanded here rather than by DuckDB so the catalog records exactly the files it read, and
// so that the same rules hold for every front end.
//
// Walks skip entries whose names start with '.' or '_' (the Hive/Spark convention for
// metadata such as _SUCCESS, .crc and _temporary) and do not follow symlinked directories,
// so a link cycle cannot make a walk endless.

import { readdir, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { PuffinError } from '../errors.ts';
import { fileUriToPath } from '../storage/locations.ts';

const GLOB_CHARS = /[*?[{]/;

export function hasGlob(pattern: string): boolean {
  return GLOB_CHARS.test(pattern);
}

/** Accepts a plain path or a file:// URL; any other scheme is not local. */
export function localPathOf(pattern: string): string {
  if (/^file:\/\//i.test(pattern)) return fileUriToPath(pattern);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(pattern)) {
    throw new PuffinError('unsupported', `'${pattern}' is not a local path; only local files and file:// URLs can be added here`);
  }
  return pattern;
}

/**
 * Absolute paths of the files `pattern` names, sorted. A directory stands for every file
 * under it (recursively) whose name ends with `extension` (or one of several endings). A path
 * that exists is taken literally even if it contains glob characters. Returns [] when a glob
 * matches nothing; a plain path that does not exist is a bad_request.
 */
export async function expandLocalPattern(pattern: string, extension: string | readonly string[] = '.parquet'): Promise<string[]> {
  const path = resolve(localPathOf(pattern));
  const literal = await statOrUndefined(path);
  if (literal?.isFile()) return [path];
  if (literal?.isDirectory()) {
    const endings = typeof extension === 'string' ? [extension] : extension;
    const files = await walk(path, Number.POSITIVE_INFINITY);
    return files.filter((rel) => endings.some((e) => rel.endsWith(e))).map((rel) => join(path, rel)).sort();
  }
  if (!hasGlob(path)) throw new PuffinError('bad_request', `no such file or directory: '${pattern}'`);

  const segments = path.split(sep);
  const firstGlob = segments.findIndex((s) => hasGlob(s));
  const base = segments.slice(0, firstGlob).join(sep) || sep;
  const rest = segments.slice(firstGlob);
  const matcher = globToRegExp(rest.join('/'));
  const depth = rest.includes('**') ? Number.POSITIVE_INFINITY : rest.length;
  const baseStat = await statOrUndefined(base);
  if (!baseStat?.isDirectory()) return [];
  const files = await walk(base, depth);
  return files.filter((rel) => matcher.test(rel)).map((rel) => join(base, rel)).sort();
}

async function statOrUndefined(path: string) {
  try {
    return await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw new PuffinError('bad_request', `cannot read '${path}': ${(err as Error).message}`);
  }
}

/** Files under `dir` as '/'-separated paths relative to it, at most `depth` levels down. */
async function walk(dir: string, depth: number, prefix = ''): Promise<string[]> {
  if (depth <= 0) return [];
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    throw new PuffinError('bad_request', `cannot list '${dir}': ${(err as Error).message}`);
  }
  const out: string[] = [];
  for (const entry of entries) {
    if (entry.name.startsWith('.') || entry.name.startsWith('_')) continue;
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    const full = join(dir, entry.name);
    if (entry.isDirectory()) {
      out.push(...(await walk(full, depth - 1, rel)));
    } else if (entry.isFile()) {
      out.push(rel);
    } else if (entry.isSymbolicLink()) {
      const target = await statOrUndefined(full);
      if (target?.isFile()) out.push(rel);
    }
  }
  return out;
}

/**
 * A regular expression for a '/'-separated glob: '*' and '?' stay within one path segment,
 * a '**' segment spans any number of segments (including none), '[abc]' / '[!abc]' are
 * character classes and '{a,b}' alternatives.
 */
export function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${globSource(glob)}$`);
}

function globSource(glob: string): string {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i];
    if (ch === '*') {
      const segmentStart = i === 0 || glob[i - 1] === '/';
      if (glob[i + 1] === '*' && segmentStart && (i + 2 === glob.length || glob[i + 2] === '/')) {
        const last = i + 2 === glob.length;
        out += last ? '.*' : '(?:[^/]+/)*';
        i += last ? 1 : 2;
      } else {
        out += '[^/]*';
      }
    } else if (ch === '?') {
      out += '[^/]';
    } else if (ch === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close < 0) {
        out += '\\[';
        continue;
      }
      let body = glob.slice(i + 1, close);
      const negate = body.startsWith('!') || body.startsWith('^');
      if (negate) body = body.slice(1);
      out += `[${negate ? '^/' : ''}${body.replace(/\\/g, '\\\\').replace(/\]/g, '\\]')}]`;
      i = close;
    } else if (ch === '{') {
      const close = glob.indexOf('}', i);
      if (close < 0) {
        out += '\\{';
        continue;
      }
      const alternatives = glob.slice(i + 1, close).split(',');
      out += `(?:${alternatives.map(globSource).join('|')})`;
      i = close;
    } else {
      out += ch.replace(/[.+^${}()|\\\]]/g, '\\$&');
    }
  }
  return out;
}
