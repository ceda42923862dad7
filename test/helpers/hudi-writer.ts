// A tiny copy-on-write Hudi table writer for tests, following the layout Hudi writes (and the
// fixtures under ../shared/fixtures/hudi/ show): `.hoodie/hoodie.properties`, instant files
// on the timeline (table version 6: `.hoodie/<t>.commit` JSON beside `<t>.commit.requested`
// and `<t>.inflight`; version 8: `.hoodie/timeline/<t>_<done>.commit` as an Avro
// HoodieCommitMetadata container), base files `<fileId>_<writeToken>_<t>.parquet` written by
// DuckDB COPY in partition directories. Meta columns are not written
// (`hoodie.populate.meta.fields=false`). Independent of the reader: it shares no code with
// runtime/catalog/hudi/ (Avro through avsc's own file encoder).

import avro from 'avsc';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Engine } from '../../runtime/engine/engine.ts';
import { sqlString } from '../../runtime/sql/quote.ts';

export interface HudiTableSpec {
  version: 6 | 8;
  type?: 'COPY_ON_WRITE' | 'MERGE_ON_READ';
  partitionFields?: string[];
  hiveStyle?: boolean;
  /** Avro fields of the table's schema, e.g. {name: 'id', type: ['null', 'long']}. */
  fields: { name: string; type: unknown }[];
  properties?: Record<string, string>;
}

export function avroSchema(spec: HudiTableSpec): string {
  return JSON.stringify({ type: 'record', name: 't_record', namespace: 'hoodie.t', fields: spec.fields.map((f) => ({ ...f, default: null })) });
}

/** Escapes a value the way java.util.Properties#store does (':' and '=' get a backslash). */
function escapeProperty(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/([:=])/g, '\\$1');
}

export function writeHoodieProperties(root: string, spec: HudiTableSpec): void {
  mkdirSync(join(root, '.hoodie'), { recursive: true });
  const props: Record<string, string> = {
    'hoodie.table.name': 't',
    'hoodie.table.type': spec.type ?? 'COPY_ON_WRITE',
    'hoodie.table.version': String(spec.version),
    'hoodie.timeline.layout.version': spec.version >= 8 ? '2' : '1',
    ...(spec.version >= 8 ? { 'hoodie.timeline.path': 'timeline', 'hoodie.timeline.history.path': 'history' } : {}),
    'hoodie.table.recordkey.fields': spec.fields[0].name,
    'hoodie.populate.meta.fields': 'false',
    'hoodie.datasource.write.hive_style_partitioning': String(spec.hiveStyle ?? true),
    'hoodie.table.create.schema': avroSchema(spec),
    ...(spec.partitionFields?.length ? { 'hoodie.table.partition.fields': spec.partitionFields.join(','), 'hoodie.table.keygenerator.class': 'org.apache.hudi.keygen.SimpleKeyGenerator' } : { 'hoodie.table.keygenerator.class': 'org.apache.hudi.keygen.NonpartitionedKeyGenerator' }),
    ...(spec.properties ?? {}),
  };
  const text = ['#Properties saved by a test', ...Object.entries(props).map(([k, v]) => `${k}=${escapeProperty(v)}`)].join('\n');
  writeFileSync(join(root, '.hoodie', 'hoodie.properties'), `${text}\n`);
}

export interface WrittenFile {
  partitionPath: string;
  fileId: string;
  path: string;
  numWrites: number;
  fileSizeInBytes: number;
}

/** Writes `selectSql`'s rows as base file `<fileId>_<writeToken>_<instant>.parquet` in `partitionPath`. */
export async function writeBaseFile(engine: Engine, root: string, partitionPath: string, fileId: string, instant: string, selectSql: string, writeToken = '0-1-1'): Promise<WrittenFile> {
  const name = `${fileId}_${writeToken}_${instant}.parquet`;
  const path = partitionPath ? `${partitionPath}/${name}` : name;
  mkdirSync(join(root, partitionPath), { recursive: true });
  await engine.query(`COPY (${selectSql}) TO ${sqlString(join(root, path))} (FORMAT parquet)`);
  const rows = Number((await engine.query(`SELECT count(*) FROM (${selectSql})`)).rows[0][0]);
  return { partitionPath, fileId, path, numWrites: rows, fileSizeInBytes: statSync(join(root, path)).size };
}

const WRITE_STAT = {
  type: 'record', name: 'HoodieWriteStat', fields: [
    { name: 'fileId', type: ['null', 'string'], default: null },
    { name: 'path', type: ['null', 'string'], default: null },
    { name: 'partitionPath', type: ['null', 'string'], default: null },
    { name: 'numWrites', type: ['null', 'long'], default: null },
    { name: 'fileSizeInBytes', type: ['null', 'long'], default: null },
  ],
};
const COMMIT_METADATA = {
  type: 'record', name: 'HoodieCommitMetadata', namespace: 'org.apache.hudi.avro.model', fields: [
    { name: 'partitionToWriteStats', type: ['null', { type: 'map', values: { type: 'array', items: WRITE_STAT } }], default: null },
    { name: 'partitionToReplaceFileIds', type: ['null', { type: 'map', values: { type: 'array', items: 'string' } }], default: null },
    { name: 'compacted', type: ['null', 'boolean'], default: null },
    { name: 'extraMetadata', type: ['null', { type: 'map', values: 'string' }], default: null },
    { name: 'operationType', type: ['null', 'string'], default: null },
  ],
};

async function writeAvro(path: string, record: Record<string, unknown>): Promise<void> {
  const type = avro.Type.forSchema(COMMIT_METADATA as avro.Schema, { wrapUnions: false });
  await new Promise<void>((resolve, reject) => {
    const encoder = avro.createFileEncoder(path, type);
    encoder.on('error', reject);
    encoder.on('finish', () => resolve());
    encoder.end(record);
  });
}

export interface InstantSpec {
  action?: 'commit' | 'replacecommit';
  /** completed (default), inflight (left pending: a failed or running write) or requested. */
  state?: 'completed' | 'inflight' | 'requested';
  /** Version 8: the completion time (default: one millisecond after the instant). */
  completed?: string;
  files?: WrittenFile[];
  replaced?: { partitionPath: string; fileId: string }[];
  schema?: string;
}

/** Writes an instant's files on the timeline: requested, inflight and (when completed) the commit. */
export async function writeInstant(root: string, spec: HudiTableSpec, instant: string, s: InstantSpec = {}): Promise<void> {
  const action = s.action ?? 'commit';
  const state = s.state ?? 'completed';
  const dir = spec.version >= 8 ? join(root, '.hoodie', 'timeline') : join(root, '.hoodie');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${instant}.${action}.requested`), '');
  if (state === 'requested') return;
  writeFileSync(join(dir, action === 'commit' ? `${instant}.inflight` : `${instant}.${action}.inflight`), '');
  if (state === 'inflight') return;
  const byPartition: Record<string, Record<string, unknown>[]> = {};
  for (const f of s.files ?? []) {
    (byPartition[f.partitionPath] ??= []).push({ fileId: f.fileId, path: f.path, partitionPath: f.partitionPath, numWrites: f.numWrites, fileSizeInBytes: f.fileSizeInBytes });
  }
  const replace: Record<string, string[]> = {};
  for (const r of s.replaced ?? []) (replace[r.partitionPath] ??= []).push(r.fileId);
  const metadata = {
    partitionToWriteStats: byPartition,
    partitionToReplaceFileIds: action === 'replacecommit' ? replace : null,
    compacted: false,
    extraMetadata: { schema: s.schema ?? avroSchema(spec) },
    operationType: action === 'replacecommit' ? 'INSERT_OVERWRITE' : 'UPSERT',
  };
  if (spec.version >= 8) {
    await writeAvro(join(dir, `${instant}_${s.completed ?? String(BigInt(instant) + 1n)}.${action}`), metadata);
  } else {
    const json = { ...metadata } as Record<string, unknown>;
    if (action !== 'replacecommit') delete json.partitionToReplaceFileIds;
    writeFileSync(join(dir, `${instant}.${action}`), JSON.stringify(json, null, 2));
  }
}
