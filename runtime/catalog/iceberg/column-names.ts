// Iceberg column names are case-sensitive (`user_id` and `uSeR_Id` are two columns, which
// Spark with spark.sql.caseSensitive and PyIceberg write); DuckDB's identifiers are not, so
// a relation cannot hold both ("Column with name uSeR_Id already exists!").
//
// Such tables are read, not refused: the first column of a case-insensitive group (in schema
// order) keeps its name, and each later one is exposed as `<name>_<field id>` (made unique
// against every other name), so every column stays readable and the names are stable while
// the schema is. Data files are read by field id, so the exposed name is only the name of the
// column in SQL. PuffinDB's own CREATE TABLE refuses such names (writer-schema.ts), as a
// DuckDB table would. Top-level columns only: struct fields whose names differ only by case
// are not handled.

import type { IcebergSchema } from './types.ts';

/** The names under which the fields are exposed to DuckDB, in field order. */
export function exposedNames(fields: readonly { id: number; name: string }[]): string[] {
  const claimed = new Set<string>();
  const out: (string | undefined)[] = fields.map((f) => {
    const key = f.name.toLowerCase();
    if (claimed.has(key)) return undefined;
    claimed.add(key);
    return f.name;
  });
  return fields.map((f, i) => {
    const kept = out[i];
    if (kept !== undefined) return kept;
    let name = `${f.name}_${f.id}`;
    for (let n = 2; claimed.has(name.toLowerCase()); n++) name = `${f.name}_${f.id}_${n}`;
    claimed.add(name.toLowerCase());
    return name;
  });
}

/** Whether some top-level names differ only by case. */
export function hasCaseCollisions(schema: IcebergSchema): boolean {
  return new Set(schema.fields.map((f) => f.name.toLowerCase())).size !== schema.fields.length;
}

/** The schema with its top-level columns renamed as `exposedNames` does; the same object when no name collides. */
export function exposedSchema(schema: IcebergSchema): IcebergSchema {
  if (!hasCaseCollisions(schema)) return schema;
  const names = exposedNames(schema.fields);
  return { ...schema, fields: schema.fields.map((f, i) => (names[i] === f.name ? f : { ...f, name: names[i] })) };
}
