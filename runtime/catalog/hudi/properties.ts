// A Hudi table's configuration: `.hoodie/hoodie.properties`, a Java properties file
// (`key=value` lines, `#`/`!` comments, backslash escapes such as the `\:` Hudi writes into
// the Avro schema, line continuations), and what this reader takes from it.

import { PuffinError } from '../../errors.ts';

/** Parses Java `.properties` text (java.util.Properties#load, for what Hudi writes). */
export function parseProperties(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const lines = text.split(/\r\n|\r|\n/);
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i].replace(/^[ \t\f]+/, '');
    if (line === '' || line.startsWith('#') || line.startsWith('!')) continue;
    // A line ending in an odd number of backslashes continues on the next one.
    while (/(^|[^\\])(\\\\)*\\$/.test(line) && i + 1 < lines.length) {
      line = line.slice(0, -1) + lines[++i].replace(/^[ \t\f]+/, '');
    }
    let k = 0;
    while (k < line.length && !'=: \t\f'.includes(line[k])) k += line[k] === '\\' ? 2 : 1;
    const key = unescape(line.slice(0, k));
    let rest = line.slice(k).replace(/^[ \t\f]*/, '');
    if (rest.startsWith('=') || rest.startsWith(':')) rest = rest.slice(1).replace(/^[ \t\f]*/, '');
    out.set(key, unescape(rest));
  }
  return out;
}

function unescape(s: string): string {
  return s.replace(/\\(u[0-9a-fA-F]{4}|.)/g, (_m, c: string) => {
    if (c.length === 5) return String.fromCharCode(parseInt(c.slice(1), 16));
    return c === 't' ? '\t' : c === 'n' ? '\n' : c === 'r' ? '\r' : c === 'f' ? '\f' : c;
  });
}

/** A partition field of `hoodie.table.partition.fields` (`name` or, custom key generators, `name:TYPE`). */
export interface PartitionField {
  name: string;
  /** Whether the directory names hold the column's value as it is (not a transform of it). */
  valuePreserving: boolean;
}

export interface HudiConfig {
  tableName: string;
  tableVersion: number;
  tableType: 'COPY_ON_WRITE' | 'MERGE_ON_READ';
  /** 1: instants in `.hoodie/`; 2: in `.hoodie/<timelinePath>/` with completion times. */
  timelineLayout: number;
  timelinePath: string;
  /** Empty for a non-partitioned table. */
  partitionFields: PartitionField[];
  hiveStyle: boolean;
  urlEncoded: boolean;
  recordKeyFields: string[];
  /** The files do not hold the partition columns (only the directory names do). */
  dropPartitionColumns: boolean;
  /** The `_hoodie_*` meta columns are written into the files. */
  populateMetaFields: boolean;
  baseFileFormat: string;
  /** `hoodie.table.create.schema` (Avro JSON), if recorded. */
  createSchema?: string;
  keyGenerator?: string;
}

/** The table versions this reader reads. */
export const SUPPORTED_TABLE_VERSIONS = [6, 8];

const PLAIN_KEY_GENERATORS = new Set([
  'org.apache.hudi.keygen.SimpleKeyGenerator',
  'org.apache.hudi.keygen.ComplexKeyGenerator',
  'org.apache.hudi.keygen.SimpleAvroKeyGenerator',
  'org.apache.hudi.keygen.ComplexAvroKeyGenerator',
  'SIMPLE', 'COMPLEX', 'SIMPLE_AVRO', 'COMPLEX_AVRO',
]);
const CUSTOM_KEY_GENERATORS = new Set([
  'org.apache.hudi.keygen.CustomKeyGenerator',
  'org.apache.hudi.keygen.CustomAvroKeyGenerator',
  'CUSTOM', 'CUSTOM_AVRO',
]);
const NON_PARTITIONED_KEY_GENERATORS = new Set([
  'org.apache.hudi.keygen.NonpartitionedKeyGenerator',
  'org.apache.hudi.keygen.NonpartitionedAvroKeyGenerator',
  'NON_PARTITION', 'NON_PARTITION_AVRO',
]);

function bool(v: string | undefined, fallback: boolean): boolean {
  if (v === undefined || v.trim() === '') return fallback;
  return v.trim().toLowerCase() === 'true';
}

function list(v: string | undefined): string[] {
  return (v ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
}

/** The configuration this reader uses, from the parsed properties; `where` names the table in errors. */
export function hudiConfig(props: Map<string, string>, where: string): HudiConfig {
  const versionText = props.get('hoodie.table.version');
  const tableVersion = versionText === undefined ? NaN : Number(versionText.trim());
  if (!Number.isInteger(tableVersion)) throw new PuffinError('bad_request', `${where}: hoodie.properties has no valid hoodie.table.version (${JSON.stringify(versionText ?? null)})`);
  const typeText = (props.get('hoodie.table.type') ?? 'COPY_ON_WRITE').trim().toUpperCase();
  if (typeText !== 'COPY_ON_WRITE' && typeText !== 'MERGE_ON_READ') throw new PuffinError('bad_request', `${where}: unknown hoodie.table.type '${typeText}'`);
  const layoutText = props.get('hoodie.timeline.layout.version');
  const timelineLayout = layoutText === undefined ? (tableVersion >= 8 ? 2 : 1) : Number(layoutText.trim());
  if (!Number.isInteger(timelineLayout) || timelineLayout < 0) throw new PuffinError('bad_request', `${where}: bad hoodie.timeline.layout.version '${layoutText}'`);
  const keyGenerator = (props.get('hoodie.table.keygenerator.class') ?? props.get('hoodie.table.keygenerator.type'))?.trim() || undefined;
  const keyGenerators = [props.get('hoodie.table.keygenerator.class'), props.get('hoodie.table.keygenerator.type')].map((k) => k?.trim()).filter((k): k is string => !!k);
  const nonPartitioned = keyGenerators.some((k) => NON_PARTITIONED_KEY_GENERATORS.has(k));
  // No key generator recorded: Hudi's default (simple or complex) writes values as they are.
  const plain = keyGenerators.length === 0 || keyGenerators.every((k) => PLAIN_KEY_GENERATORS.has(k));
  const custom = keyGenerators.some((k) => CUSTOM_KEY_GENERATORS.has(k));
  const partitionFields = nonPartitioned
    ? []
    : list(props.get('hoodie.table.partition.fields')).map((f) => {
      const [name, type] = f.split(':', 2).map((s) => s.trim());
      // CustomKeyGenerator: `field:SIMPLE` keeps the value, `field:TIMESTAMP` formats it.
      const valuePreserving = type === undefined ? plain : (plain || custom) && type.toUpperCase() === 'SIMPLE';
      return { name, valuePreserving };
    });
  const timelinePath = (props.get('hoodie.timeline.path') ?? 'timeline').trim() || 'timeline';
  if (timelinePath.includes('..') || timelinePath.startsWith('/')) throw new PuffinError('bad_request', `${where}: bad hoodie.timeline.path '${timelinePath}'`);
  return {
    tableName: props.get('hoodie.table.name') ?? '',
    tableVersion,
    tableType: typeText,
    timelineLayout,
    timelinePath,
    partitionFields,
    hiveStyle: bool(props.get('hoodie.datasource.write.hive_style_partitioning'), false),
    urlEncoded: bool(props.get('hoodie.datasource.write.partitionpath.urlencode'), false),
    recordKeyFields: list(props.get('hoodie.table.recordkey.fields')),
    dropPartitionColumns: bool(props.get('hoodie.datasource.write.drop.partition.columns'), false),
    populateMetaFields: bool(props.get('hoodie.populate.meta.fields'), true),
    baseFileFormat: (props.get('hoodie.table.base.file.format') ?? 'PARQUET').trim().toUpperCase(),
    ...(props.get('hoodie.table.create.schema') ? { createSchema: props.get('hoodie.table.create.schema') } : {}),
    ...(keyGenerator ? { keyGenerator } : {}),
  };
}

/**
 * Refuses what this reader cannot read correctly, naming it: a table version other than 6
 * and 8, merge-on-read tables (their log files would have to be merged into the base files),
 * base files in a format other than Parquet, an unknown timeline layout.
 */
export function checkConfig(c: HudiConfig, where: string): void {
  if (!SUPPORTED_TABLE_VERSIONS.includes(c.tableVersion)) {
    throw new PuffinError('unsupported', `${where}: Hudi table version ${c.tableVersion} is not supported (this reader reads table versions ${SUPPORTED_TABLE_VERSIONS.join(' and ')}: Hudi 0.14/0.15 and 1.x)`);
  }
  if (c.tableType === 'MERGE_ON_READ') {
    throw new PuffinError('unsupported', `${where} is a MERGE_ON_READ table (hoodie.table.type): this reader reads COPY_ON_WRITE tables only; merging log files into base files is not implemented`);
  }
  if (c.baseFileFormat !== 'PARQUET') throw new PuffinError('unsupported', `${where}: base files in format ${c.baseFileFormat} cannot be read (only PARQUET)`);
  if (c.timelineLayout !== 1 && c.timelineLayout !== 2) throw new PuffinError('unsupported', `${where}: timeline layout version ${c.timelineLayout} is not supported (1 and 2 are)`);
}
