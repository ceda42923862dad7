// Calls to the PuffinDB HTTP API with the signed-in key (sessionStorage: it lasts as long as
// the tab and is never written anywhere else). Every call sends `Authorization: Bearer`.

const KEY = 'puffindb.console.key';

/** @returns {string | null} */
export function getKey() {
  return sessionStorage.getItem(KEY);
}

/** @param {string} key */
export function setKey(key) {
  sessionStorage.setItem(KEY, key);
}

export function clearKey() {
  sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  /** @param {number} status @param {string} code @param {string} message @param {any} [details] */
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** Called when the server refuses the key (401): the console signs out. */
let onUnauthorized = () => {};
/** @param {() => void} f */
export function whenUnauthorized(f) {
  onUnauthorized = f;
}

/**
 * JSON, keeping numbers JSON cannot hold exactly (big integers, decimals like 1.50) as the
 * text the server sent, so the grid shows every digit.
 * @param {string} text
 */
export function parseJson(text) {
  return JSON.parse(text, function (_key, value, context) {
    if (typeof value !== 'number' || !context || typeof context.source !== 'string') return value;
    const source = context.source;
    return String(value) === source ? value : source;
  });
}

/**
 * @param {string} method
 * @param {string} path  an API path on this origin
 * @param {{ body?: unknown, raw?: boolean, signal?: AbortSignal }} [options]
 */
export async function api(method, path, options = {}) {
  const key = getKey();
  if (!key) throw new ApiError(401, 'unauthorized', 'not signed in');
  /** @type {Record<string, string>} */
  const headers = { authorization: `Bearer ${key}` };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    cache: 'no-store',
    credentials: 'omit',
    signal: options.signal,
  });
  if (!res.ok) {
    let code = `http_${res.status}`;
    let message = res.statusText || `HTTP ${res.status}`;
    let details;
    try {
      const body = JSON.parse(await res.text());
      code = String(body?.error?.code ?? code);
      message = String(body?.error?.message ?? message);
      details = body?.error?.details;
    } catch {
      // not JSON: keep the status text
    }
    if (res.status === 401) onUnauthorized();
    throw new ApiError(res.status, code, message, details);
  }
  if (options.raw) return res;
  return parseJson(await res.text());
}

/** @param {string} id a query id (ULID) */
export function queryPath(id) {
  if (!/^[0-9A-Za-z]{26}$/.test(id)) throw new Error(`not a query id: ${id}`);
  return `/v1/queries/${id}`;
}
