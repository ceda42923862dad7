// Request bodies as JSON, with the nesting bounded before anything parses them. V8's
// JSON.parse copes with deep input, but everything after it that walks the value
// (validation, JSON.stringify in messages, the Iceberg update code) recurses, and 100,000
// levels of `[` overflow the stack: a 5xx from a 200 KB body. A linear scan refuses such a
// body first, with a message naming the limit. Every route that reads JSON goes through here
// (the /v1 routes, and the /iceberg mount at its edge).

import { PuffinError } from '../errors.ts';

/** Deepest nesting of arrays and objects a request body may have (Iceberg metadata needs about 10). */
export const MAX_JSON_DEPTH = 64;

/**
 * The depth of the deepest array/object nesting in `text`, counting brackets outside
 * strings, stopping as soon as it passes `limit` (the text need not be valid JSON).
 */
export function jsonDepth(text: string, limit = Number.POSITIVE_INFINITY): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (c === 0x5d || c === 0x7d) {
      if (depth > 0) depth--;
    }
  }
  return deepest;
}

/** Throws 'bad_request' when `text` nests arrays/objects deeper than MAX_JSON_DEPTH. */
export function checkJsonDepth(text: string, what = 'the request body'): void {
  if (jsonDepth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
    throw new PuffinError('bad_request', `${what} nests arrays or objects more than ${MAX_JSON_DEPTH} levels deep, the limit`);
  }
}

/** Parse a request body's text as JSON: 'bad_request' when it is too deep or not JSON. */
export function parseJsonBody(text: string, what = 'the request body'): unknown {
  checkJsonDepth(text, what);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new PuffinError('bad_request', `${what} is not valid JSON: ${(err as Error).message.slice(0, 200)}`);
  }
}
