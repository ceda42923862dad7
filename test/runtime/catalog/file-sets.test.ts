// The pieces of CSV/TSV/JSON/NDJSON file-set tables (runtime/catalog/file-sets.ts): formats
// from name endings, the reader-option allow-list (names and values; nothing that names a
// file, a table or SQL gets through, and values become literals), the reader call a worker
// runs, hive partition directories and their types, and the wire check of a fragment's
// file-set description (a tampered option is refused there too).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatOfPath, hiveParts, partitionType, readerCallSql, validateReaderOptions, type FileSetRead } from '../../../runtime/catalog/file-sets.ts';
import { PuffinError } from '../../../runtime/errors.ts';
import { decodeFragment } from '../../../runtime/exec/wire.ts';

const refused = (fn: () => unknown, pattern: RegExp) => assert.throws(fn, (e: unknown) => e instanceof PuffinError && e.code === 'bad_request' && e.httpStatus === 400 && pattern.test(e.message));

describe('file-set formats and reader options', () => {
  test('formats from name endings', () => {
    assert.equal(formatOfPath('data/*.csv'), 'csv');
    assert.equal(formatOfPath('x.CSV.gz'), 'csv');
    assert.equal(formatOfPath('a.tsv'), 'tsv');
    assert.equal(formatOfPath('a.jsonl'), 'ndjson');
    assert.equal(formatOfPath('a.ndjson.zst'), 'ndjson');
    assert.equal(formatOfPath('a.json'), 'json');
    assert.equal(formatOfPath('a.parquet'), 'parquet');
    assert.equal(formatOfPath('data/'), undefined);
  });

  test('allowed options pass, typed', () => {
    assert.deepEqual(validateReaderOptions('csv', { delim: ';', header: false, skip: 2, nullstr: ['NA', ''], new_line: '\r\n', types: { id: 'VARCHAR' }, hive_partitioning: false }), { delim: ';', header: false, skip: 2, nullstr: ['NA', ''], new_line: '\\r\\n', types: { id: 'VARCHAR' }, hive_partitioning: false });
    assert.deepEqual(validateReaderOptions('ndjson', { timestampformat: '%d/%m/%Y %H:%M', ignore_errors: true }), { timestampformat: '%d/%m/%Y %H:%M', ignore_errors: true });
    assert.deepEqual(validateReaderOptions('json', undefined), {});
  });

  test('attacks: options that would name files, tables or SQL are refused by name, bad values by kind', () => {
    for (const name of ['rejects_table', 'rejects_scan', 'store_rejects', 'filename', 'files_to_sniff', 'columns', 'union_by_name', 'hive_types', 'auto_detect', '__proto__', 'constructor', "delim = ';'); COPY (SELECT 1) TO '/tmp/x' (FORMAT csv); --"]) {
      refused(() => validateReaderOptions('csv', JSON.parse(`{${JSON.stringify(name)}: "x"}`)), /unknown csv reader option/);
    }
    refused(() => validateReaderOptions('json', { delim: ';' }), /unknown json reader option 'delim'; the options allowed are/);
    refused(() => validateReaderOptions('csv', { delim: "'); SELECT * FROM read_text('/etc/passwd'); --" }), /option 'delim' must be one to four characters/);
    refused(() => validateReaderOptions('csv', { header: 'yes' }), /'header' must be true or false/);
    refused(() => validateReaderOptions('csv', { skip: -1 }), /'skip' must be a non-negative integer/);
    refused(() => validateReaderOptions('csv', { compression: 'lz4; DROP' }), /'compression' must be/);
    refused(() => validateReaderOptions('csv', { types: { id: 'INTEGER); COPY' } }), /'types' must be an object/);
    refused(() => validateReaderOptions('csv', { dateformat: 'x'.repeat(200) }), /'dateformat' must be a strftime format/);
    refused(() => validateReaderOptions('csv', { quote: 'a\u0000' }), /'quote'/);
    refused(() => validateReaderOptions('csv', ['delim']), /must be a JSON object/);
    refused(() => validateReaderOptions('tsv', { delim: ',' }), /TSV table's delimiter is a tab/);
    // What a registration or a fragment carries: only the options reads use.
    refused(() => validateReaderOptions('csv', { sample_size: 10 }, true), /unknown csv reader option 'sample_size'/);
    refused(() => validateReaderOptions('csv', { hive_partitioning: true }, true), /unknown csv reader option 'hive_partitioning'/);
  });

  test('the reader call: recorded columns, no detection, no hive partitioning, options as literals', () => {
    const read: FileSetRead = { format: 'csv', options: { delim: "'", quote: '"', header: true, nullstr: ['NA'] }, fileColumns: [{ name: "it's", type: 'BIGINT' }], partitionColumns: [] };
    assert.equal(readerCallSql(read, ['/in/0.csv', "/in/o'1.csv"]), `read_csv(['/in/0.csv', '/in/o''1.csv'], auto_detect = false, columns = {'it''s': 'BIGINT'}, hive_partitioning = false, delim = '''', quote = '"', header = true, nullstr = ['NA'])`);
    assert.equal(readerCallSql({ format: 'ndjson', options: {}, fileColumns: [{ name: 'a', type: 'VARCHAR[]' }], partitionColumns: [] }, ['/in/0.ndjson']), `read_json(['/in/0.ndjson'], columns = {'a': 'VARCHAR[]'}, hive_partitioning = false, format = 'newline_delimited')`);
    refused(() => readerCallSql({ ...read, options: { rejects_table: 'x' } as never }, ['/in/0.csv']), /unknown csv reader option 'rejects_table'/);
  });

  test('hive partition directories: values decoded as DuckDB does, NULL spellings, types', () => {
    assert.deepEqual(hiveParts('/d/region=eu/day=2024-01-01/a.csv'), [{ key: 'region', value: 'eu' }, { key: 'day', value: '2024-01-01' }]);
    assert.deepEqual(hiveParts('/d/k=a%2Fb/n=__HIVE_DEFAULT_PARTITION__/m=NULL/a.csv'), [{ key: 'k', value: 'a/b' }, { key: 'n', value: null }, { key: 'm', value: null }]);
    assert.deepEqual(hiveParts('/d/x=1.csv'), []); // a file name is not a directory
    assert.equal(partitionType(['1', '-20', null], true), 'BIGINT');
    assert.equal(partitionType(['99999999999999999999'], true), 'VARCHAR');
    assert.equal(partitionType(['2024-01-01', '2024-02-29'], true), 'DATE');
    assert.equal(partitionType(['2023-02-29'], true), 'VARCHAR');
    assert.equal(partitionType(['1', 'x'], true), 'VARCHAR');
    assert.equal(partitionType(['1'], false), 'VARCHAR');
    assert.equal(partitionType([null], true), 'VARCHAR');
  });

  test('a fragment crossing a process boundary: its file-set description is checked again', () => {
    const fragment = (fileSet: unknown) => ({
      id: 'f0', output: 'p', sql: 'SELECT 1',
      inputs: [{ view: 'v', table: 't', columns: [{ name: 'a', type: 'BIGINT' }], files: [{ uri: 'file:///d/a.csv', sizeBytes: 1, rowCount: 0, partitionValues: ['eu'] }], fileSet }],
    });
    const good = { format: 'csv', options: { delim: ';' }, fileColumns: [{ name: 'a', type: 'BIGINT' }], partitionColumns: [{ name: 'region', type: 'VARCHAR' }] };
    assert.deepEqual(decodeFragment('f', fragment(good)).inputs[0].fileSet, good);
    assert.deepEqual(decodeFragment('f', fragment(good)).inputs[0].files[0].partitionValues, ['eu']);
    refused(() => decodeFragment('f', fragment({ ...good, options: { store_rejects: true } })), /unknown csv reader option 'store_rejects'/);
    refused(() => decodeFragment('f', fragment({ ...good, format: 'parquet' })), /format must be one of csv, tsv, json, ndjson/);
    refused(() => decodeFragment('f', fragment({ ...good, partitionColumns: [{ name: 'region', type: "VARCHAR) AS x FROM read_text('/etc/passwd') --" }] })), /must be BIGINT, DATE or VARCHAR/);
  });
});
