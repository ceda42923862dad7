// Subcommands of `puffindb table`: `add` binds a name to files (Parquet, CSV, TSV, JSON,
// NDJSON), `register` adopts an existing Iceberg, Delta or Hudi table, `scan` shows what scan
// planning keeps for a predicate (the "table scanning API" on the command line), `orphans`
// lists files under a table's location that nothing references. main.ts dispatches here; the
// other table subcommands (list, drop) live there.

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { pointerName } from '../catalog/iceberg/file-pointer-store.ts';
import { findOrphanFiles, type OrphanReport } from '../catalog/iceberg/orphans.ts';
import type { IcebergScan } from '../catalog/iceberg/scan.ts';
import { uriTableIO } from '../catalog/iceberg/writer-io.ts';
import { parseFileFormat } from '../catalog/file-sets.ts';
import { scanPredicateFromSql } from '../catalog/scan-filter.ts';
import { Engine } from '../engine/engine.ts';
import { PuffinError } from '../errors.ts';
import { storeOptionsOf } from '../exec/worker.ts';
import type { Settings } from '../settings.ts';
import { openWarehouse } from './warehouse.ts';

export const TABLE_COMMANDS_HELP = `  puffindb table add NAME 'path/*.parquet' [--format parquet|csv|tsv|json|ndjson] [--options JSON]
                                             register files (a path, directory or glob) as a table; the format
                                             comes from the name endings when not given; text formats are
                                             sniffed once, with reader options such as '{"delim": ";"}'
  puffindb table register NAME PATH [--reroot] [--format iceberg|delta|hudi]
                                             adopt an Iceberg table (its directory or a *.metadata.json),
                                             a Delta Lake table (its directory, found by its _delta_log/) or
                                             a copy-on-write Hudi table (its directory, found by its .hoodie/);
                                             Delta and Hudi tables are read only; --reroot (Iceberg) resolves
                                             paths recorded under another location against the directory
                                             it is registered from
  puffindb table scan NAME [--where "PREDICATE"] [--snapshot ID] [--json]
                                             the data and delete files scan planning keeps, with counts
  puffindb table orphans NAME [--json]       files under an Iceberg table's location no snapshot references
                                             (left by failed writes; listed only, never deleted)`;

/** The subcommands this module runs. */
export function isTableCommand(sub: string | undefined): boolean {
  return sub === 'add' || sub === 'register' || sub === 'scan' || sub === 'orphans';
}

function parse(args: string[], options: ParseArgsConfig['options']): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true });
    return { values: values as Record<string, string | boolean | undefined>, positionals };
  } catch (err) {
    throw new PuffinError('bad_request', `${(err as Error).message}\n\n${TABLE_COMMANDS_HELP}`);
  }
}

export async function runTableCommand(sub: string, args: string[], settings: Settings, out: (s: string) => void): Promise<void> {
  if (sub === 'add') {
    const { values, positionals } = parse(args, { format: { type: 'string' }, options: { type: 'string' } });
    if (positionals.length !== 2) throw new PuffinError('bad_request', `usage: puffindb table add NAME 'path/or/glob/*.parquet' [--format parquet|csv|tsv|json|ndjson] [--options JSON]`);
    const format = values.format === undefined ? undefined : parseFileFormat(values.format);
    let readerOptions: unknown;
    if (values.options !== undefined) {
      try {
        readerOptions = JSON.parse(String(values.options));
      } catch (err) {
        throw new PuffinError('bad_request', `--options must be a JSON object: ${(err as Error).message}`);
      }
    }
    const w = await openWarehouse(settings);
    try {
      const t = await w.catalog.addTable(positionals[0], positionals[1], { ...(format ? { format } : {}), ...(readerOptions !== undefined ? { readerOptions } : {}) });
      const rows = t.kind === 'parquet' ? `, ${t.files.reduce((s, f) => s + f.rowCount, 0)} rows` : '';
      out(`table ${t.name}: ${t.files.length} ${t.kind === 'parquet' ? '' : `${t.kind.toUpperCase()} `}file(s)${rows}, columns ${t.columns.map((c) => `${c.name} ${c.type}`).join(', ')}`);
    } finally {
      await w.close();
    }
    return;
  }
  if (sub === 'register') {
    const { values, positionals } = parse(args, { reroot: { type: 'boolean' }, format: { type: 'string' } });
    if (positionals.length !== 2) throw new PuffinError('bad_request', `usage: puffindb table register NAME PATH_TO_TABLE_OR_METADATA [--reroot] [--format iceberg|delta|hudi]`);
    const format = values.format as string | undefined;
    if (format !== undefined && format !== 'iceberg' && format !== 'delta' && format !== 'hudi') throw new PuffinError('bad_request', `--format must be iceberg, delta or hudi, got '${format}'`);
    const w = await openWarehouse(settings);
    try {
      if (format === 'hudi' || (format === undefined && (await w.catalog.isHudi(positionals[1])))) {
        if (values.reroot === true) throw new PuffinError('bad_request', '--reroot applies to Iceberg tables; a Hudi table records paths relative to its directory');
        const t = await w.catalog.registerHudi(positionals[0], positionals[1]);
        out(`registered Hudi table ${t.name}: instant ${t.snapshotId.split(':')[0]}, ${t.files.length} data file(s), ${t.files.reduce((s, f) => s + f.rowCount, 0)} rows by the commits' write statistics, columns ${t.columns.map((c) => `${c.name} ${c.type}`).join(', ')}`);
        return;
      }
      if (format === 'delta' || (format === undefined && (await w.catalog.isDelta(positionals[1])))) {
        if (values.reroot === true) throw new PuffinError('bad_request', '--reroot applies to Iceberg tables; a Delta table records paths relative to its directory');
        const t = await w.catalog.registerDelta(positionals[0], positionals[1]);
        out(`registered Delta table ${t.name}: version ${t.snapshotId.split(':')[0]}, ${t.files.length} data file(s), ${t.files.reduce((s, f) => s + f.rowCount, 0)} rows by the files' statistics (before deletion vectors), columns ${t.columns.map((c) => `${c.name} ${c.type}`).join(', ')}`);
        return;
      }
      // A re-rooted table is stored with absolute paths, its metadata copied under the
      // warehouse (data files stay in place), so every engine reads it through the REST catalog.
      const absoluteCopy = { io: uriTableIO(storeOptionsOf(settings)), location: `${settings.warehouse.replace(/\/+$/, '')}/${pointerName(positionals[0]).split('.').join('/')}` };
      const t = await w.catalog.registerIceberg(positionals[0], positionals[1], { reroot: values.reroot === true, absoluteCopy });
      out(`registered Iceberg table ${t.name}: snapshot ${t.snapshotId}, ${t.files.length} data file(s), ${t.files.reduce((s, f) => s + f.rowCount, 0)} rows, columns ${t.columns.map((c) => `${c.name} ${c.type}`).join(', ')}`);
    } finally {
      await w.close();
    }
    return;
  }
  if (sub === 'scan') {
    const { values, positionals } = parse(args, { where: { type: 'string' }, snapshot: { type: 'string' }, json: { type: 'boolean' } });
    if (positionals.length !== 1) throw new PuffinError('bad_request', `usage: puffindb table scan NAME [--where "PREDICATE"] [--snapshot ID] [--json]`);
    const snapshot = values.snapshot as string | undefined;
    if (snapshot !== undefined && !/^-?\d+$/.test(snapshot)) throw new PuffinError('bad_request', `--snapshot must be a snapshot id (an integer), got '${snapshot}'`);
    const where = values.where as string | undefined;
    // Parsing the predicate reads no files: an engine with no directory allowed.
    const engine = await Engine.create({ threads: 1, allowedDirectories: [] });
    const w = await openWarehouse(settings);
    try {
      const filter = where === undefined ? undefined : await scanPredicateFromSql(engine, where);
      const scan = await w.catalog.scanIceberg(positionals[0], { filter, snapshotId: snapshot });
      out(values.json ? JSON.stringify(scanReport(positionals[0].toLowerCase(), scan, filter), null, 2) : formatScan(positionals[0].toLowerCase(), scan, where));
    } finally {
      await w.close();
      engine.close();
    }
    return;
  }
  if (sub === 'orphans') {
    const { values, positionals } = parse(args, { json: { type: 'boolean' } });
    if (positionals.length !== 1) throw new PuffinError('bad_request', `usage: puffindb table orphans NAME [--json]`);
    const w = await openWarehouse(settings);
    try {
      const report = await findOrphanFiles(w.catalog.pointers, positionals[0], uriTableIO(storeOptionsOf(settings)));
      out(values.json ? JSON.stringify(report, null, 2) : formatOrphans(report));
    } finally {
      await w.close();
    }
    return;
  }
  throw new PuffinError('bad_request', `unknown table command '${sub}'`);
}

function scanReport(table: string, scan: IcebergScan, filter: unknown) {
  return {
    table,
    metadataLocation: scan.metadataLocation,
    snapshotId: scan.snapshotId,
    filter: filter ?? null,
    counts: scan.counts,
    files: scan.dataFiles.map((d) => ({
      uri: d.uri,
      rowCount: d.rowCount,
      sizeBytes: d.sizeBytes,
      partition: d.partition,
      sequenceNumber: d.sequenceNumber,
      deletes: d.deletes.map((x) => ({ uri: x.uri, content: x.content, sequenceNumber: x.sequenceNumber, rowCount: x.rowCount, ...(x.equalityColumns ? { equalityColumns: x.equalityColumns } : {}) })),
    })),
  };
}

function formatScan(table: string, scan: IcebergScan, where: string | undefined): string {
  const c = scan.counts;
  const lines = [
    `table ${table}, snapshot ${scan.snapshotId ?? '(none)'}${where ? `, where ${where}` : ''}`,
    `data files: ${c.filesKept} of ${c.filesTotal} kept, ${c.filesTotal - c.filesKept} pruned; ${c.rowsKept} rows, ${c.bytesKept} bytes`,
    `manifests: ${c.manifestsTotal}, ${c.manifestsSkipped} skipped by partition summaries`,
    `delete files: ${c.deleteFiles} apply to the kept files (${c.deleteFilesTotal} live in the snapshot)`,
  ];
  for (const d of scan.dataFiles) {
    const partition = Object.entries(d.partition).map(([k, v]) => `${k}=${v ?? 'null'}`).join(',');
    lines.push(`  ${d.uri}  ${d.rowCount} rows  ${d.sizeBytes} bytes${partition ? `  [${partition}]` : ''}${d.deletes.length ? `  ${d.deletes.length} delete file(s)` : ''}`);
  }
  return lines.join('\n');
}

function formatOrphans(r: OrphanReport): string {
  const lines = [
    `table ${r.table}, metadata ${r.metadataLocation}`,
    `files under the table location: ${r.filesTotal}, referenced: ${r.referenced}, orphans: ${r.orphans.length}`,
  ];
  for (const uri of r.orphans) lines.push(`  ${uri}`);
  return lines.join('\n');
}
