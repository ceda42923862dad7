// The Iceberg parts of a fragment as they cross process and Lambda boundaries: each file's
// field-id read schema and delete files, and an input's table-level field mapping. Checked
// like the rest of a request (wire.ts), so a malformed message names the bad field.

import { PuffinError } from '../errors.ts';
import type { IcebergDeleteRead, IcebergFieldRead, IcebergFileRead } from '../catalog/types.ts';

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function bad(where: string, expected: string, value: unknown): PuffinError {
  return new PuffinError('bad_request', `${where} must be ${expected}, got ${JSON.stringify(value) ?? 'undefined'}`);
}

function obj(where: string, value: unknown): Record<string, unknown> {
  if (!isObject(value)) throw bad(where, 'an object', value);
  return value;
}

function str(where: string, o: Record<string, unknown>, name: string): string {
  const v = o[name];
  if (typeof v !== 'string' || v === '') throw bad(`${where}.${name}`, 'a non-empty string', v);
  return v;
}

function num(where: string, o: Record<string, unknown>, name: string): number {
  const v = o[name];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(`${where}.${name}`, 'a number', v);
  return v;
}

function arr(where: string, o: Record<string, unknown>, name: string): unknown[] {
  const v = o[name];
  if (!Array.isArray(v)) throw bad(`${where}.${name}`, 'an array', v);
  return v;
}

function decodeField(where: string, value: unknown): IcebergFieldRead {
  const o = obj(where, value);
  const defaultValue = o.defaultValue;
  if (defaultValue !== null && typeof defaultValue !== 'string') throw bad(`${where}.defaultValue`, 'a string or null', defaultValue);
  const out: IcebergFieldRead = { fieldId: num(where, o, 'fieldId'), name: str(where, o, 'name'), type: str(where, o, 'type'), defaultValue };
  if (o.initialDefault !== undefined) {
    if (typeof o.initialDefault !== 'string') throw bad(`${where}.initialDefault`, 'a string', o.initialDefault);
    out.initialDefault = o.initialDefault;
  }
  if (o.names !== undefined) out.names = arr(where, o, 'names').map((v, i) => {
    if (typeof v !== 'string') throw bad(`${where}.names[${i}]`, 'a column name', v);
    return v;
  });
  if (o.children !== undefined) out.children = arr(where, o, 'children').map((c, i) => decodeField(`${where}.children[${i}]`, c));
  return out;
}

function decodeDelete(where: string, value: unknown): IcebergDeleteRead {
  const o = obj(where, value);
  const content = o.content;
  if (content !== 'position' && content !== 'equality') throw bad(`${where}.content`, "'position' or 'equality'", content);
  const out: IcebergDeleteRead = {
    uri: str(where, o, 'uri'),
    path: str(where, o, 'path'),
    content,
    format: str(where, o, 'format'),
    sequenceNumber: num(where, o, 'sequenceNumber'),
    sizeBytes: num(where, o, 'sizeBytes'),
    rowCount: num(where, o, 'rowCount'),
  };
  if (o.equalityFieldIds !== undefined) out.equalityFieldIds = arr(where, o, 'equalityFieldIds').map((v, i) => {
    if (typeof v !== 'number' || !Number.isInteger(v)) throw bad(`${where}.equalityFieldIds[${i}]`, 'a field id', v);
    return v;
  });
  if (o.equalityColumns !== undefined) out.equalityColumns = arr(where, o, 'equalityColumns').map((v, i) => {
    if (typeof v !== 'string') throw bad(`${where}.equalityColumns[${i}]`, 'a column name', v);
    return v;
  });
  if (o.contentOffset !== undefined) out.contentOffset = num(where, o, 'contentOffset');
  if (o.contentSizeInBytes !== undefined) out.contentSizeInBytes = num(where, o, 'contentSizeInBytes');
  if (o.referencedDataFile !== undefined) out.referencedDataFile = str(where, o, 'referencedDataFile');
  if (o.inlineBlob !== undefined) out.inlineBlob = str(where, o, 'inlineBlob');
  if (o.equalityFields !== undefined) out.equalityFields = arr(where, o, 'equalityFields').map((f, i) => decodeField(`${where}.equalityFields[${i}]`, f));
  return out;
}

/** A FileRef's `iceberg` part. */
export function decodeIcebergFile(where: string, value: unknown): IcebergFileRead {
  const o = obj(where, value);
  const partition = obj(`${where}.partition`, o.partition);
  for (const [k, v] of Object.entries(partition)) if (v !== null && typeof v !== 'string') throw bad(`${where}.partition.${k}`, 'a string or null', v);
  return {
    path: str(where, o, 'path'),
    format: str(where, o, 'format'),
    sequenceNumber: num(where, o, 'sequenceNumber'),
    ...(o.firstRowId !== undefined ? { firstRowId: num(where, o, 'firstRowId') } : {}),
    partition: partition as Record<string, string | null>,
    readSchema: arr(where, o, 'readSchema').map((f, i) => decodeField(`${where}.readSchema[${i}]`, f)),
    deletes: arr(where, o, 'deletes').map((d, i) => decodeDelete(`${where}.deletes[${i}]`, d)),
  };
}

/** A FragmentInput's `iceberg` part. */
export function decodeIcebergInput(where: string, value: unknown): { fields: IcebergFieldRead[] } {
  const o = obj(where, value);
  return { fields: arr(where, o, 'fields').map((f, i) => decodeField(`${where}.fields[${i}]`, f)) };
}
