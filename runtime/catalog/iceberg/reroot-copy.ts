// Adopting a table whose metadata records paths relative to another tree (`--reroot`, the
// fixtures) so that every engine can read it: its metadata tree is copied with absolute
// paths, the way Iceberg's RewriteTablePath action does. The copy's metadata file, manifest
// lists and manifests go under a new table location (in the warehouse); each records the
// re-rooted, absolute URI of every file it names. Data and delete files stay where they
// are and are not rewritten. So the REST catalog can serve the table as it is stored, and
// a client that follows its manifest lists and manifests finds absolute paths all the way
// down; new files written to the table go under the new location.
//
// Position delete files name the data files they apply to inside their own rows, by the
// path the table recorded; rewriting the manifests' data paths would make those rows match
// nothing. A table with position deletes is therefore refused here ('unsupported'), and the
// caller keeps reading it re-rooted in place.

import { randomUUID } from 'node:crypto';
import { PuffinError } from '../../errors.ts';
import { readAvroContainer, writeAvroContainer, type AvroSchemaJson } from './avro.ts';
import { resolveLocation } from './io.ts';
import type { Snapshot, TableMetadata } from './metadata.ts';
import type { IcebergTable } from './table.ts';
import type { TableIO } from './writer-io.ts';
import { metadataToJsonObject, stringifyWithBigInts } from './writer-metadata.ts';

interface AvroField { name: string; type: AvroSchemaJson; 'field-id'?: number }

function recordFields(schema: AvroSchemaJson): AvroField[] | undefined {
  if (Array.isArray(schema)) {
    for (const branch of schema) {
      const f = recordFields(branch);
      if (f) return f;
    }
    return undefined;
  }
  const s = schema as { type?: unknown; fields?: AvroField[] } | null;
  return s && s.type === 'record' && Array.isArray(s.fields) ? s.fields : undefined;
}

function fieldName(fields: AvroField[] | undefined, id: number, fallback: string): string {
  return fields?.find((f) => f['field-id'] === id)?.name ?? fallback;
}

const baseName = (uri: string): string => uri.slice(uri.lastIndexOf('/') + 1);

/** Decoded records hold `bytes` as Uint8Array views; avsc encodes Buffers: copy them into ones. */
function encodable(value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.isBuffer(value) ? value : Buffer.from(value);
  if (Array.isArray(value)) return value.map(encodable);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, encodable(v)]));
  return value;
}

/**
 * Write an absolute-path copy of `table`'s metadata tree (every snapshot) under
 * `location`/metadata/ and return the copy's metadata file URI. `table` must carry its
 * reroot mapping (opened with `reroot`).
 */
export async function writeAbsoluteCopy(table: IcebergTable, io: TableIO, location: string): Promise<string> {
  const target = location.replace(/\/+$/, '');
  const metadataDir = `${target}/metadata`;
  const map = (path: string): string => resolveLocation(path, table.reroot);
  const copies = new Map<string, string>(); // original manifest path -> its copy
  const copyName = (original: string): string => `${metadataDir}/${randomUUID().slice(0, 8)}-${baseName(original)}`;

  async function copyManifest(path: string): Promise<string> {
    const done = copies.get(path);
    if (done) return done;
    const source = map(path);
    const avro = readAvroContainer(await table.io.read(source), source);
    const entryFields = recordFields(avro.schema);
    const dataFileKey = fieldName(entryFields, 2, 'data_file');
    const dataFields = recordFields(entryFields?.find((f) => f.name === dataFileKey)?.type);
    const pathKey = fieldName(dataFields, 100, 'file_path');
    const contentKey = fieldName(dataFields, 134, 'content');
    const records = avro.records.map((raw, i) => {
      const entry = raw as Record<string, unknown>;
      const file = entry[dataFileKey] as Record<string, unknown> | undefined;
      if (!file || typeof file[pathKey] !== 'string') throw new PuffinError('bad_request', `${source}: entry ${i} has no data_file.file_path`);
      if (Number(file[contentKey] ?? 0) === 1) {
        throw new PuffinError('unsupported', `${source} lists position delete files, whose rows name data files by their recorded paths; such a table is read re-rooted in place, not copied with absolute paths`);
      }
      return encodable({ ...entry, [dataFileKey]: { ...file, [pathKey]: map(file[pathKey] as string) } });
    });
    const uri = copyName(path);
    await io.write(uri, writeAvroContainer(avro.schema, records, avro.metadata));
    copies.set(path, uri);
    return uri;
  }

  async function copyManifestList(path: string): Promise<string> {
    const source = map(path);
    const avro = readAvroContainer(await table.io.read(source), source);
    const fields = recordFields(avro.schema);
    const pathKey = fieldName(fields, 500, 'manifest_path');
    const records: unknown[] = [];
    for (const [i, raw] of avro.records.entries()) {
      const r = raw as Record<string, unknown>;
      if (typeof r[pathKey] !== 'string') throw new PuffinError('bad_request', `${source}: entry ${i} has no manifest_path`);
      records.push(encodable({ ...r, [pathKey]: await copyManifest(r[pathKey] as string) }));
    }
    const uri = copyName(path);
    await io.write(uri, writeAvroContainer(avro.schema, records, avro.metadata));
    return uri;
  }

  const snapshots: Snapshot[] = [];
  for (const s of table.metadata.snapshots) {
    const copy: Snapshot = { ...s };
    if (s.manifestList !== undefined) {
      try {
        copy.manifestList = await copyManifestList(s.manifestList);
      } catch (err) {
        // An older snapshot whose manifest list the source tree no longer holds (expired
        // elsewhere, or left out of a copy) is unreadable either way: it is recorded with its
        // re-rooted absolute path rather than making the whole table impossible to adopt.
        // The current snapshot's files must all be there.
        if (!(err instanceof PuffinError && err.code === 'not_found') || s.snapshotId === table.metadata.currentSnapshotId) throw err;
        copy.manifestList = map(s.manifestList);
      }
    }
    if (s.manifests) copy.manifests = await Promise.all(s.manifests.map(copyManifest));
    snapshots.push(copy);
  }
  const metadata: TableMetadata = {
    ...table.metadata,
    location: target,
    snapshots,
    // Earlier metadata files of the source tree: recorded absolutely (they stay where they are).
    metadataLog: table.metadata.metadataLog.flatMap((e) => {
      try {
        return [{ ...e, metadataFile: map(e.metadataFile) }];
      } catch {
        return []; // relative and outside the recorded location: not placeable, so not listed
      }
    }),
  };
  const uri = `${metadataDir}/00000-${randomUUID()}.metadata.json`;
  await io.write(uri, new TextEncoder().encode(stringifyWithBigInts(metadataToJsonObject(metadata))));
  return uri;
}
