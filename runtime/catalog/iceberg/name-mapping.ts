// Name mapping (spec: Column Projection, Appendix C "Name Mapping Serialization"): the table
// property `schema.name-mapping.default` maps column names to field ids for data files
// written without Parquet field ids (tables migrated from Hive or created by add_files).
// A read uses it only for a file whose footer carries no field ids at all, as Iceberg's
// Java reader does; files with ids are read by id.

import { PuffinError } from '../../errors.ts';

export const NAME_MAPPING_PROPERTY = 'schema.name-mapping.default';

export interface MappedField {
  /** Absent for names that exist in imported files but not in the Iceberg schema. */
  fieldId?: number;
  names: string[];
  fields?: MappedField[];
}

function parseFields(json: unknown, where: string): MappedField[] {
  if (!Array.isArray(json)) throw new PuffinError('bad_request', `${where} must be a JSON list of field mappings`);
  return json.map((raw, i) => {
    const at = `${where}[${i}]`;
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new PuffinError('bad_request', `${at} must be an object`);
    const o = raw as Record<string, unknown>;
    const names = o.names;
    if (!Array.isArray(names) || names.some((n) => typeof n !== 'string')) throw new PuffinError('bad_request', `${at}.names must be a list of strings`);
    const out: MappedField = { names: names as string[] };
    const id = o['field-id'];
    if (id !== undefined && id !== null) {
      if (typeof id !== 'number' || !Number.isInteger(id)) throw new PuffinError('bad_request', `${at}.field-id must be an integer, got ${JSON.stringify(id)}`);
      out.fieldId = id;
    }
    if (o.fields !== undefined && o.fields !== null) out.fields = parseFields(o.fields, `${at}.fields`);
    return out;
  });
}

/** Parse the property's JSON text. `file` names the metadata file in errors. */
export function parseNameMapping(text: string, file: string): MappedField[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new PuffinError('bad_request', `${file}: table property ${NAME_MAPPING_PROPERTY} is not JSON: ${(err as Error).message}`);
  }
  return parseFields(json, `${file}: ${NAME_MAPPING_PROPERTY}`);
}

/** The table's name mapping, or undefined when the property is not set. */
export function tableNameMapping(properties: Record<string, string>, file: string): MappedField[] | undefined {
  const text = properties[NAME_MAPPING_PROPERTY];
  return text === undefined ? undefined : parseNameMapping(text, file);
}

/** The names each field id (top-level or nested: ids are unique in a table) may carry in
 *  files without field ids. */
export function topLevelNames(mapping: readonly MappedField[], out = new Map<number, string[]>()): Map<number, string[]> {
  for (const m of mapping) {
    if (m.fieldId !== undefined) out.set(m.fieldId, [...(out.get(m.fieldId) ?? []), ...m.names]);
    if (m.fields) topLevelNames(m.fields, out);
  }
  return out;
}
