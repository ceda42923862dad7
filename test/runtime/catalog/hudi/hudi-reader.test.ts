// The pieces of the Hudi reader (runtime/catalog/hudi/) on their own: hoodie.properties
// parsing, instant file names of both timeline layouts, commit metadata in JSON (table
// version 6) and Avro (version 8) from the fixtures, Avro schemas as DuckDB types, partition
// directory values, and the choice of the latest file slice of each file group: pending and
// failed instants, archived ones, retried tasks' leftovers, replaced groups, cleaned slices;
// the directory-tree listing it reads tables with, on local files and on an object store.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { localFileIO, objectStoreFileIO, toUri } from '../../../../runtime/catalog/iceberg/io.ts';
import { HudiRegistry } from '../../../../runtime/catalog/hudi/registry.ts';
import type { ObjectStore } from '../../../../runtime/storage/object-store.ts';
import { tempDir } from '../iceberg/fixtures.ts';
import { checkConfig, hudiConfig, parseProperties, type HudiConfig } from '../../../../runtime/catalog/hudi/properties.ts';
import { hudiColumns, partitionLiteral, partitionPathValues } from '../../../../runtime/catalog/hudi/schema.ts';
import { instantAt, latestFileSlices, parseBaseFileName } from '../../../../runtime/catalog/hudi/table.ts';
import { listTimeline, parseCommitMetadata, parseInstantFileName, type CommitMetadata, type Instant, type Timeline } from '../../../../runtime/catalog/hudi/timeline.ts';
import { PuffinError } from '../../../../runtime/errors.ts';

const FIXTURES = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../../../shared/fixtures/hudi');
const fixtureConfig = (name: string): HudiConfig => hudiConfig(parseProperties(readFileSync(join(FIXTURES, name, '.hoodie', 'hoodie.properties'), 'utf8')), name);

describe('hoodie.properties', () => {
  test('Java properties: comments, escapes, continuations, separators', () => {
    const p = parseProperties('#comment\n! also\n a=1\nb:2\nc 3\nd=x\\:y\\=z\\\\w\ne=one \\\n   two\nf=\\u0041\\t\n\nempty=\n');
    assert.deepEqual([...p], [['a', '1'], ['b', '2'], ['c', '3'], ['d', 'x:y=z\\w'], ['e', 'one two'], ['f', 'A\t'], ['empty', '']]);
  });

  test('the fixtures: versions, layouts, partition fields, hive style', () => {
    const v6 = fixtureConfig('v6_complexkeygen_hivestyle');
    assert.equal(v6.tableVersion, 6);
    assert.equal(v6.tableType, 'COPY_ON_WRITE');
    assert.equal(v6.timelineLayout, 1);
    assert.deepEqual(v6.partitionFields, [{ name: 'byteField', valuePreserving: true }, { name: 'shortField', valuePreserving: true }]);
    assert.equal(v6.hiveStyle, true);
    assert.deepEqual(v6.recordKeyFields, ['id', 'name']);
    assert.match(v6.createSchema ?? '', /^\{"type":"record"/); // the `\:` escapes are gone
    const v8 = fixtureConfig('v8_nonpartitioned');
    assert.equal(v8.tableVersion, 8);
    assert.equal(v8.timelineLayout, 2);
    assert.equal(v8.timelinePath, 'timeline');
    assert.deepEqual(v8.partitionFields, []);
    assert.deepEqual(fixtureConfig('v6_nonpartitioned').partitionFields, []);
  });

  test('key generators: custom field types, non-partitioned, transforming ones', () => {
    const cfg = (props: string) => hudiConfig(parseProperties(`hoodie.table.version=8\n${props}`), 't');
    assert.deepEqual(cfg('hoodie.table.partition.fields=a:SIMPLE,b:TIMESTAMP\nhoodie.table.keygenerator.type=CUSTOM').partitionFields, [{ name: 'a', valuePreserving: true }, { name: 'b', valuePreserving: false }]);
    assert.deepEqual(cfg('hoodie.table.partition.fields=a\nhoodie.table.keygenerator.class=org.apache.hudi.keygen.TimestampBasedKeyGenerator').partitionFields, [{ name: 'a', valuePreserving: false }]);
    assert.deepEqual(cfg('hoodie.table.partition.fields=a\nhoodie.table.keygenerator.class=org.apache.hudi.keygen.NonpartitionedKeyGenerator').partitionFields, []);
    assert.deepEqual(cfg('hoodie.table.partition.fields=a').partitionFields, [{ name: 'a', valuePreserving: true }]);
  });

  test('refused: merge-on-read, other table versions, ORC base files', () => {
    const check = (props: string) => checkConfig(hudiConfig(parseProperties(props), 'table t'), 'table t');
    assert.throws(() => check('hoodie.table.version=6\nhoodie.table.type=MERGE_ON_READ'), (e: unknown) => e instanceof PuffinError && e.code === 'unsupported' && /MERGE_ON_READ.*COPY_ON_WRITE tables only/.test(e.message));
    assert.throws(() => check('hoodie.table.version=5'), (e: unknown) => e instanceof PuffinError && e.code === 'unsupported' && /table version 5 is not supported .*6 and 8/.test(e.message));
    assert.throws(() => check('hoodie.table.version=8\nhoodie.table.base.file.format=ORC'), /format ORC cannot be read/);
    assert.throws(() => check('hoodie.table.type=COPY_ON_WRITE'), /no valid hoodie.table.version/);
    check('hoodie.table.version=6');
    check('hoodie.table.version=8');
  });
});

describe('the timeline', () => {
  test('instant file names of both layouts', () => {
    assert.deepEqual(parseInstantFileName('20240418173551906.commit'), { requested: '20240418173551906', action: 'commit', state: 'completed', fileName: '20240418173551906.commit' });
    assert.equal(parseInstantFileName('20240418173551906.inflight')?.state, 'inflight');
    assert.equal(parseInstantFileName('20240418173551906.inflight')?.action, 'commit');
    assert.equal(parseInstantFileName('20240418173551906.commit.requested')?.state, 'requested');
    assert.equal(parseInstantFileName('20240418173551906.replacecommit.inflight')?.action, 'replacecommit');
    assert.deepEqual(parseInstantFileName('20250713010536861_20250713010537206.commit'), { requested: '20250713010536861', completed: '20250713010537206', action: 'commit', state: 'completed', fileName: '20250713010536861_20250713010537206.commit' });
    assert.equal(parseInstantFileName('20240418173551.clean')?.requested, '20240418173551'); // second precision
    for (const other of ['hoodie.properties', '20250713010536861_20250713010537206.commit.inflight', '2024041817355.commit', 'archived', '20240418173551906.commit.crc']) {
      assert.equal(parseInstantFileName(other), undefined, other);
    }
  });

  test('the fixtures: two completed commits each, metadata in JSON (v6) and Avro (v8)', async () => {
    const io = localFileIO();
    const v6 = await listTimeline(io, toUri(join(FIXTURES, 'v6_nonpartitioned')), fixtureConfig('v6_nonpartitioned'));
    assert.deepEqual(v6.commits.map((c) => c.requested), ['20240418173550988', '20240418173551906']);
    assert.equal(v6.start, '20240418173550988');
    const v8 = await listTimeline(io, toUri(join(FIXTURES, 'v8_nonpartitioned')), fixtureConfig('v8_nonpartitioned'));
    assert.deepEqual(v8.commits.map((c) => [c.requested, c.completed]), [['20250713010535797', '20250713010536200'], ['20250713010536861', '20250713010537206']]);
    const avro = parseCommitMetadata(readFileSync(join(FIXTURES, 'v8_nonpartitioned', '.hoodie', 'timeline', '20250713010536861_20250713010537206.commit')), 'v8');
    assert.deepEqual(avro.writeStats, [{ partitionPath: '', fileId: '2746610d-ad02-4adb-a038-5cbb99cbd455-0', path: '2746610d-ad02-4adb-a038-5cbb99cbd455-0_0-75-100_20250713010536861.parquet', numWrites: 4, fileSizeInBytes: 441515 }]);
    assert.match(avro.schema ?? '', /"name":"v8_nonpartitioned_record"/);
    const json = parseCommitMetadata(readFileSync(join(FIXTURES, 'v6_complexkeygen_hivestyle', '.hoodie', '20240418173235694.commit')), 'v6');
    assert.deepEqual(json.writeStats.map((s) => [s.partitionPath, s.numWrites]), [['byteField=10/shortField=300', 2], ['byteField=30/shortField=100', 1]]);
    assert.equal(json.operationType, 'UPSERT');
  });

  test('replace commits name the groups they replace; empty metadata has no files', () => {
    const m = parseCommitMetadata(new TextEncoder().encode(JSON.stringify({ partitionToWriteStats: { p: [{ fileId: 'g2', path: 'p/g2_0-1-1_20240101000000002.parquet', numWrites: 3 }] }, partitionToReplaceFileIds: { p: ['g1'] } })), 'r');
    assert.deepEqual(m.replaced, [{ partitionPath: 'p', fileId: 'g1' }]);
    assert.deepEqual(parseCommitMetadata(new Uint8Array(0), 'empty'), { writeStats: [], replaced: [] });
    assert.throws(() => parseCommitMetadata(new TextEncoder().encode('{nope'), 'bad'), /neither JSON nor Avro/);
  });
});

describe('schemas and partition values', () => {
  const config = (over: Partial<HudiConfig> = {}): HudiConfig => ({ ...fixtureConfig('v6_complexkeygen_hivestyle'), ...over });

  test('the fixture schema: meta columns first, Spark types as DuckDB types', () => {
    const cols = hudiColumns(config().createSchema as string, config(), 't');
    assert.deepEqual(cols.slice(0, 8).map((c) => `${c.name} ${c.type}`), [
      '_hoodie_commit_time VARCHAR', '_hoodie_commit_seqno VARCHAR', '_hoodie_record_key VARCHAR', '_hoodie_partition_path VARCHAR', '_hoodie_file_name VARCHAR',
      'id INTEGER', 'name VARCHAR', 'isActive BOOLEAN',
    ]);
    const byName = new Map(cols.map((c) => [c.name, c]));
    assert.equal(byName.get('decimalField')?.type, 'DECIMAL(10,5)');
    assert.equal(byName.get('dateField')?.type, 'DATE');
    assert.equal(byName.get('timestampField')?.type, 'TIMESTAMPTZ');
    assert.equal(byName.get('binaryField')?.type, 'BLOB');
    assert.equal(byName.get('arrayField')?.type, 'STRUCT("arr_struct_f1" VARCHAR, "arr_struct_f2" INTEGER)[]');
    assert.equal(byName.get('mapField')?.type, 'MAP(VARCHAR, STRUCT("map_field_value_struct_f1" DOUBLE, "map_field_value_struct_f2" BOOLEAN))');
    assert.equal(byName.get('byteField')?.partitionIndex, 0);
    assert.equal(byName.get('shortField')?.partitionIndex, 1);
    assert.ok(cols.every((c) => c.field.fieldId < 0 && c.field.names?.[0] === c.name)); // read by name only
  });

  test('named types, nullable unions, meta columns not doubled or not written', () => {
    const schema = JSON.stringify({
      type: 'record', name: 'r', namespace: 'n', fields: [
        { name: '_hoodie_commit_time', type: 'string' }, { name: '_hoodie_commit_seqno', type: 'string' }, { name: '_hoodie_record_key', type: 'string' },
        { name: '_hoodie_partition_path', type: 'string' }, { name: '_hoodie_file_name', type: 'string' },
        { name: 'a', type: { type: 'fixed', name: 'money', size: 8, logicalType: 'decimal', precision: 12, scale: 2 } },
        { name: 'b', type: ['null', 'money'] },
        { name: 'c', type: [{ type: 'long', logicalType: 'local-timestamp-micros' }, 'null'] },
        { name: 'e', type: { type: 'enum', name: 'color', symbols: ['R', 'G'] } },
      ],
    });
    assert.deepEqual(hudiColumns(schema, config({ partitionFields: [] }), 't').map((c) => `${c.name} ${c.type}`), [
      '_hoodie_commit_time VARCHAR', '_hoodie_commit_seqno VARCHAR', '_hoodie_record_key VARCHAR', '_hoodie_partition_path VARCHAR', '_hoodie_file_name VARCHAR',
      'a DECIMAL(12,2)', 'b DECIMAL(12,2)', 'c TIMESTAMP', 'e VARCHAR',
    ]);
    const plain = JSON.stringify({ type: 'record', name: 'r', fields: [{ name: 'x', type: 'int' }] });
    assert.deepEqual(hudiColumns(plain, config({ populateMetaFields: false, partitionFields: [] }), 't').map((c) => c.name), ['x']);
    assert.throws(() => hudiColumns(JSON.stringify({ type: 'record', name: 'r', fields: [{ name: 'x', type: ['int', 'string'] }] }), config(), 't'), (e: unknown) => e instanceof PuffinError && e.code === 'unsupported');
    assert.throws(() => hudiColumns(JSON.stringify({ type: 'record', name: 'r', fields: [{ name: 'x', type: 'int' }, { name: 'X', type: 'int' }] }), config(), 't'), /differ only by case/);
  });

  test('directory values: hive style, plain, url-encoded, the NULL partition, shapes that do not match', () => {
    assert.deepEqual(partitionPathValues('byteField=10/shortField=300', config()), ['10', '300']);
    assert.equal(partitionPathValues('shortField=300/byteField=10', config()), undefined);
    assert.equal(partitionPathValues('byteField=10', config()), undefined);
    assert.deepEqual(partitionPathValues('10/300', config({ hiveStyle: false })), ['10', '300']);
    assert.deepEqual(partitionPathValues('byteField=a%2Fb/shortField=__HIVE_DEFAULT_PARTITION__', config({ urlEncoded: true })), ['a/b', null]);
    const typed = config({ partitionFields: ['byteField', 'name', 'dateField', 'doubleField'].map((name) => ({ name, valuePreserving: true })) });
    const cols = hudiColumns(typed.createSchema as string, typed, 't');
    const col = (n: string) => cols.find((c) => c.name === n)!;
    assert.equal(partitionLiteral(col('byteField'), '10', true), '10');
    assert.equal(partitionLiteral(col('byteField'), '10', false), undefined); // a transforming key generator
    assert.equal(partitionLiteral(col('byteField'), '9999999999', true), undefined); // not an int
    assert.equal(partitionLiteral(col('byteField'), null, true), null);
    assert.equal(partitionLiteral(col('name'), 'x y', true), 'x y');
    assert.equal(partitionLiteral(col('dateField'), '2024-01-31', true), '2024-01-31');
    assert.equal(partitionLiteral(col('dateField'), '19448', true), undefined); // days since the epoch, as the datasource writes them
    assert.equal(partitionLiteral(col('doubleField'), '1.5', true), undefined);
  });

  test('instant times of moments (UTC)', () => {
    assert.equal(instantAt(Date.UTC(2024, 3, 18, 17, 35, 51, 7)), '20240418173551007');
    assert.throws(() => instantAt(Date.UTC(10000, 0, 1)), /years 1 to 9999/);
  });
});

describe('the latest file slice of each file group', () => {
  const config: HudiConfig = { ...fixtureConfig('v6_complexkeygen_hivestyle'), partitionFields: [{ name: 'p', valuePreserving: true }] };
  const instant = (t: string, action = 'commit', state: Instant['state'] = 'completed'): Instant => ({ requested: t, action, state, fileName: `${t}.${action}` });
  const T = (n: number) => `2024010100000000${n}`;
  const file = (p: string, id: string, t: string, token = '0-1-1') => ({ path: `${p}/${id}_${token}_${t}.parquet`, size: 100 });
  const stat = (p: string, id: string, t: string, rows: number, token = '0-1-1') => ({ partitionPath: p, fileId: id, path: `${p}/${id}_${token}_${t}.parquet`, numWrites: rows });
  const meta = (writeStats: CommitMetadata['writeStats'], replaced: CommitMetadata['replaced'] = []): CommitMetadata => ({ writeStats, replaced });
  const timeline = (instants: Instant[]): Timeline => ({ dirUri: 'file:///t/.hoodie', instants, commits: instants.filter((i) => i.state === 'completed'), start: instants[0]?.requested, key: '' });

  test('base file names', () => {
    assert.deepEqual(parseBaseFileName('a079bdb3-731c-4894-b855-abfcd6921007-0_0-203-274_20240418173551906.parquet'), { fileId: 'a079bdb3-731c-4894-b855-abfcd6921007-0', writeToken: '0-203-274', instant: '20240418173551906' });
    assert.equal(parseBaseFileName('.hoodie_partition_metadata'), undefined);
    assert.equal(parseBaseFileName('part-0001.parquet'), undefined);
    assert.equal(parseBaseFileName('.g1_20240101000000001.log.1_0-1-1'), undefined);
  });

  test('newest completed slice per group; pending, failed and later instants ignored; archived ones kept', () => {
    const tl = timeline([instant(T(2)), instant(T(3)), instant(T(4), 'commit', 'inflight'), instant(T(5))]);
    const commits = [
      { instant: instant(T(2)), metadata: meta([stat('p=a', 'g1', T(2), 5)]) },
      { instant: instant(T(3)), metadata: meta([stat('p=a', 'g1', T(3), 6), stat('p=b', 'g2', T(3), 7)]) },
    ];
    const files = [
      file('p=a', 'g0', T(1)), // older than the active timeline: archived, committed
      file('p=a', 'g1', T(2)), file('p=a', 'g1', T(3)),
      file('p=b', 'g2', T(3)),
      file('p=b', 'g2', T(4)), // its instant is still in flight
      file('p=b', 'g3', T(5)), // after the snapshot's instant
      file('p=b', 'g4', '20231231000000000'), // archived too
      { path: 'g9_0-1-1_20240101000000002.parquet', size: 1 }, // not in a partition directory
    ];
    const slices = latestFileSlices(config, tl, T(3), commits, files, 't');
    assert.deepEqual(slices.map((s) => [s.path, s.rowCount]), [
      ['p=a/g0_0-1-1_20240101000000001.parquet', undefined],
      ['p=a/g1_0-1-1_20240101000000003.parquet', 6],
      ['p=b/g2_0-1-1_20240101000000003.parquet', 7],
      ['p=b/g4_0-1-1_20231231000000000.parquet', undefined],
    ]);
    // As of the older instant: its own slice of g1, and g2 did not exist yet.
    assert.deepEqual(latestFileSlices(config, tl, T(2), commits.slice(0, 1), files, 't').map((s) => s.path), ['p=a/g0_0-1-1_20240101000000001.parquet', 'p=a/g1_0-1-1_20240101000000002.parquet', 'p=b/g4_0-1-1_20231231000000000.parquet']);
  });

  test('a retried task\'s leftover is not the committed file; replaced groups go; a cleaned slice is an error', () => {
    const tl = timeline([instant(T(2)), instant(T(3), 'replacecommit')]);
    const commits = [
      { instant: instant(T(2)), metadata: meta([stat('p=a', 'g1', T(2), 5, '1-2-3')]) },
      { instant: instant(T(3), 'replacecommit'), metadata: meta([stat('p=a', 'g2', T(3), 5)], [{ partitionPath: 'p=a', fileId: 'g1' }]) },
    ];
    const files = [file('p=a', 'g1', T(2), '0-2-2'), file('p=a', 'g1', T(2), '1-2-3'), file('p=a', 'g2', T(3))];
    assert.deepEqual(latestFileSlices(config, tl, T(2), commits.slice(0, 1), files, 't').map((s) => s.path), ['p=a/g1_1-2-3_20240101000000002.parquet']);
    assert.deepEqual(latestFileSlices(config, tl, T(3), commits, files, 't').map((s) => s.path), ['p=a/g2_0-1-1_20240101000000003.parquet']);
    assert.throws(() => latestFileSlices(config, tl, T(2), commits.slice(0, 1), [file('p=a', 'g2', T(3))], 't'), (e: unknown) => e instanceof PuffinError && e.code === 'not_found' && /g1_1-2-3_20240101000000002.parquet written by instant 20240101000000002 is missing/.test(e.message));
  });
});

describe('listing a table\'s directories', () => {
  const hive = join(FIXTURES, 'v6_complexkeygen_hivestyle');
  const expected = [
    'byteField=10/shortField=300/a22e8257-e249-45e9-ba46-115bc85adcba-0_0-161-223_20240418173235694.parquet',
    'byteField=10/shortField=300/a22e8257-e249-45e9-ba46-115bc85adcba-0_1-140-199_20240418173213674.parquet',
    'byteField=20/shortField=100/bb7c3a45-387f-490d-aab2-981c3f1a8ada-0_0-140-198_20240418173213674.parquet',
    'byteField=30/shortField=100/4668e35e-bff8-4be9-9ff2-e7fb17ecb1a7-0_1-161-224_20240418173235694.parquet',
  ];

  test('local files: every file below, hidden ones (.hoodie/, .DS_Store, partition metadata) left out', async () => {
    const entries = await localFileIO().listTree!(toUri(hive));
    assert.deepEqual(entries.map((e) => e.path), expected);
    assert.equal(entries[0].size, statSync(join(hive, expected[0])).size);
    assert.deepEqual(await localFileIO().listTree!(toUri(join(hive, 'nothing-here'))), []);
  });

  test('an object store: the same listing, and the same snapshot of the table', async () => {
    const objects = new Map<string, Uint8Array>();
    const walk = (d: string): void => {
      for (const name of readdirSync(d)) {
        const path = join(d, name);
        if (statSync(path).isDirectory()) walk(path);
        else objects.set(`lake/t/${relative(hive, path)}`, new Uint8Array(readFileSync(path)));
      }
    };
    walk(hive);
    const store: ObjectStore = {
      url: 'mem://bucket/',
      async get(key) {
        const v = objects.get(key);
        if (!v) throw new PuffinError('not_found', `${key} not found`);
        return v;
      },
      async getRange(key, offset, length) {
        return (await this.get(key)).subarray(offset, offset + length);
      },
      async put() {},
      async list(prefix) {
        return [...objects.keys()].filter((k) => k.startsWith(prefix)).sort().map((key) => ({ key, size: objects.get(key)!.length, lastModified: 0 }));
      },
      async head(key) {
        return objects.has(key) ? { key, size: objects.get(key)!.length, lastModified: 0 } : undefined;
      },
      async delete() {},
    };
    const io = objectStoreFileIO(store);
    assert.deepEqual((await io.listTree!('mem://bucket/lake/t')).map((e) => e.path), expected);
    const dir = tempDir('hudi-registry');
    try {
      const registry = await HudiRegistry.open(dir.path, io);
      const snap = await registry.register('t', 'mem://bucket/lake/t');
      assert.equal(snap.snapshotId.split(':')[0], '20240418173235694');
      assert.deepEqual(snap.files.map((f) => f.uri), [expected[0], expected[2], expected[3]].map((p) => `mem://bucket/lake/t/${p}`));
    } finally {
      dir.remove();
    }
  });
});
