// Request schemas written once: the same small objects validate request bodies and query
// strings (with a message naming the field at fault) and become the JSON Schema of the
// OpenAPI document, so the published contract and the enforced one cannot drift apart.
// The objects are a subset of JSON Schema; `Infer` gives the TypeScript type they accept.

import { PuffinError } from '../errors.ts';

export interface StringSchema {
  type: 'string';
  description?: string;
  minLength?: number;
  maxLength?: number;
  enum?: readonly string[];
}

export interface IntegerSchema {
  type: 'integer';
  description?: string;
  minimum: number;
  maximum: number;
}

export interface BooleanSchema {
  type: 'boolean';
  description?: string;
}

export interface ObjectSchema {
  type: 'object';
  description?: string;
  properties: Readonly<Record<string, Schema>>;
  required: readonly string[];
}

export interface ArraySchema {
  type: 'array';
  description?: string;
  items: Schema;
}

/** Documentation only: a JSON value of any shape (rows, details). */
export interface AnySchema {
  type?: undefined;
  description?: string;
}

export type Schema = StringSchema | IntegerSchema | BooleanSchema | ObjectSchema | ArraySchema | AnySchema;

type Simplify<T> = { [K in keyof T]: T[K] };

/** The value type a schema accepts. */
export type Infer<S> = S extends { type: 'string'; enum: readonly (infer E)[] }
  ? E
  : S extends { type: 'string' }
    ? string
    : S extends { type: 'integer' }
      ? number
      : S extends { type: 'boolean' }
        ? boolean
        : S extends { type: 'array'; items: infer I }
          ? Infer<I>[]
          : S extends { type: 'object'; properties: infer P; required: readonly (infer R)[] }
            ? Simplify<{ [K in keyof P & R]: Infer<P[K]> } & { [K in Exclude<keyof P, R>]?: Infer<P[K]> }>
            : unknown;

/** A value for a message: JSON, cut short (the value may be a 1 MB string or a deep array). */
function shown(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = Array.isArray(value) ? 'an array' : typeof value;
  }
  return text.length > 100 ? `${text.slice(0, 100)}...` : text;
}

function bad(message: string): PuffinError {
  return new PuffinError('bad_request', message);
}

function check(schema: Schema, value: unknown, name: string, fromText: boolean): unknown {
  switch (schema.type) {
    case 'string': {
      if (typeof value !== 'string') throw bad(`'${name}' must be a string, got ${shown(value)}`);
      if (schema.minLength !== undefined && value.trim().length < schema.minLength) throw bad(`'${name}' is empty`);
      if (schema.maxLength !== undefined && value.length > schema.maxLength) throw bad(`'${name}' is longer than ${schema.maxLength} characters`);
      if (schema.enum && !schema.enum.includes(value)) throw bad(`'${name}' must be one of ${schema.enum.join(', ')}, got ${shown(value)}`);
      return value;
    }
    case 'integer': {
      const n = fromText && typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < schema.minimum || n > schema.maximum) {
        throw bad(`'${name}' must be an integer from ${schema.minimum} to ${schema.maximum}, got ${shown(value)}`);
      }
      return n;
    }
    case 'boolean': {
      const b = fromText && (value === 'true' || value === 'false') ? value === 'true' : value;
      if (typeof b !== 'boolean') throw bad(`'${name}' must be true or false, got ${shown(value)}`);
      return b;
    }
    case 'array': {
      if (!Array.isArray(value)) throw bad(`'${name}' must be an array`);
      return value.map((item, i) => check(schema.items, item, `${name}[${i}]`, fromText));
    }
    case 'object':
      return checkObject(schema, value, name, fromText);
    default:
      return value;
  }
}

function checkObject(schema: ObjectSchema, value: unknown, name: string, fromText: boolean): Record<string, unknown> {
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw bad(`${name} must be a JSON object`);
  const input = value as Record<string, unknown>;
  const known = Object.keys(schema.properties);
  const unknown = Object.keys(input).filter((k) => !Object.prototype.hasOwnProperty.call(schema.properties, k));
  if (unknown.length) {
    const listed = unknown.slice(0, 5).map((k) => (k.length > 40 || /[^\w.-]/.test(k) ? shown(k) : k)).join(', ') + (unknown.length > 5 ? `, ... (${unknown.length} in all)` : '');
    throw bad(`unknown field(s): ${listed}; expected ${known.join(', ') || 'none'}`);
  }
  const out: Record<string, unknown> = {};
  for (const [field, fieldSchema] of Object.entries(schema.properties)) {
    const v = input[field];
    if (v === undefined || v === null) {
      if (schema.required.includes(field)) {
        const kind = fieldSchema.type === 'integer' ? 'an integer' : fieldSchema.type === 'object' ? 'an object' : `a ${fieldSchema.type ?? 'value'}`;
        throw bad(`'${field}' is required and must be ${kind}`);
      }
      continue;
    }
    out[field] = check(fieldSchema, v, field, fromText);
  }
  return out;
}

/** Validate a parsed JSON body. */
export function validateBody<S extends ObjectSchema>(schema: S, body: unknown): Infer<S> {
  return checkObject(schema, body, 'the request body', false) as Infer<S>;
}

/** Validate query-string parameters (text values, converted to the schema's types). */
export function validateQuery<S extends ObjectSchema>(schema: S, params: Record<string, string>): Infer<S> {
  return checkObject(schema, params, 'the query string', true) as Infer<S>;
}

/** The JSON Schema (OpenAPI 3.1) of a schema object. */
export function toJsonSchema(schema: Schema): Record<string, unknown> {
  if (schema.type === 'object') {
    return {
      type: 'object',
      ...(schema.description ? { description: schema.description } : {}),
      properties: Object.fromEntries(Object.entries(schema.properties).map(([k, v]) => [k, toJsonSchema(v)])),
      ...(schema.required.length ? { required: [...schema.required] } : {}),
      additionalProperties: false,
    };
  }
  if (schema.type === 'array') return { ...schema, items: toJsonSchema(schema.items) };
  return { ...schema };
}
