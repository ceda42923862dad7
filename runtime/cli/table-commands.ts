// Subcommands of `puffindb table`: `add` binds a name to files (Parquet, CSV, TSV, JSON,
// NDJSON), `register` adopts an existing Iceberg, Delta or Hudi table, `scan` shows what scan
// planning keeps for a predicate (the "table scanning API" on the command line), `orphans`
// lists files under a table's location that nothing references, and the maintenance
// commands (`expire`, `compact`, `remove-orphans`, `rewrite-manifests`) run the SQL
// procedures CALL puffindb.* (runtime/exec/maintenance.ts) through the warehouse, so they are
// logged like any statement (`snapshots` reads the metadata directly). main.ts dispatches here; the other table subcommands
// (list, drop) live there.

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { pointerName } from '../catalog/iceberg/file-pointer-store.ts';
import { findOrphanFiles, type OrphanReport } from '../catalog/iceberg/orphans.ts';
import { listSnapshots } from '../catalog/iceberg/maintenance.ts';
import type { IcebergScan } from '../catalog/iceberg/scan.ts';
import { uriTableIO } from '../catalog/iceberg/writer-io.ts';
import { parseFileFormat } from '../catalog/file-sets.ts';
import { scanPredicateFromSql } from '../catalog/scan-filter.ts';
import { Engine } from '../engine/engine.ts';
import { PuffinError } from '../errors.ts';
import { sqlString } from '../sql/quote.ts';
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
                                             (left by failed writes; listed only, never deleted)
  puffindb table snapshots NAME [--json]     an Iceberg table's snapshots: id, parent, time, operation, summary
  puffindb table expire NAME [--older-than TS] [--retain-last N] [--json]
                                             expire snapshots older than TS (default 5 days ago), keeping the
                                             newest N (default 1), the current one and those refs name; then
                                             delete the files only they referenced (under the table location)
  puffindb table compact NAME [--target-file-size BYTES] [--json]
                                             rewrite small data files (default below 128 MiB or the table's
                                             write.target-file-size-bytes) per partition, deletes applied
  puffindb table remove-orphans NAME [--older-than TS] [--json]
                                             delete the files 'table orphans' lists that are older than TS
                                             (default 3 days ago; newer ones may belong to a commit in flight)
  puffindb table rewrite-manifests NAME [--json]
                                             rewrite the current snapshot's small data manifests into fewer`;

/** The subcommands this module runs. */
export function isTableCommand(sub: string | undefined): boolean {
  return sub === 'add' || sub === 'register' || sub === 'scan' || sub === 'orphans' || (sub !== undefined && Object.hasOwn(MAINTENANCE, sub));
}

/** Maintenance subcommands: the procedure each calls and its options (name -> the procedure's argument). */
const MAINTENANCE: Record<string, { procedure: string; options: Record<string, string> }> = {
  snapshots: { procedure: 'snapshots', options: {} },
  expire: { procedure: 'expire_snapshots', options: { 'older-than': 'older_than', 'retain-last': 'retain_last' } },
  compact: { procedure: 'rewrite_data_files', options: { 'target-file-size': 'target_file_size_bytes' } },
  'remove-orphans': { procedure: 'remove_orphan_files', options: { 'older-than': 'older_than' } },
  'rewrite-manifests': { procedure: 'rewrite_manifests', options: {} },
};

/** An option's value as a literal of the CALL: whole numbers as numbers, times as TIMESTAMP '...'. */
function callLiteral(option: string, value: string): string {
  if (/^\d+$/.test(value)) return value;
  if (option === 'older-than') return `TIMESTAMP ${sqlString(value)}`;
  throw new PuffinError('bad_request', `--${option} must be a whole number, got '${value}'`);
}

async function runMaintenance(sub: string, args: string[], settings: Settings, out: (s: string) => void): Promise<void> {
  const m = MAINTENANCE[sub];
  const { values, positionals } = parse(args, { json: { type: 'boolean' }, ...Object.fromEntries(Object.keys(m.options).map((o) => [o, { type: 'string' as const }])) });
  const usage = `usage: puffindb table ${sub} NAME${Object.keys(m.options).map((o) => ` [--${o} ${o === 'older-than' ? 'TIMESTAMP' : 'N'}]`).join('')} [--json]`;
  if (positionals.length !== 1) throw new PuffinError('bad_request', usage);
  const args2 = [sqlString(positionals[0]), ...Object.entries(m.options).filter(([o]) => values[o] !== undefined).map(([o, a]) => `${a} => ${callLiteral(o, String(values[o]))}`)];
  const w = await openWarehouse(settings);
  try {
    if (sub === 'snapshots') {
      // Read only, from the metadata (as `table scan` and `table orphans`): no cluster needed.
      const snaps = (await listSnapshots(w.catalog.pointers, positionals[0], uriTableIO(storeOptionsOf(settings)))).map((s) => ({ id: s.id, parent: s.parent, timestamp: s.timestamp, operation: s.operation, summary: s.summary, manifestList: s.manifestList, current: s.current, refs: s.refs }));
      out(values.json ? JSON.stringify(snaps, null, 2) : formatSnapshots(positionals[0].toLowerCase(), snaps));
      return;
    }
    const outcome = await w.query(`CALL puffindb.${m.procedure}(${args2.join(', ')})`);
    const rows = outcome.rows.map((r) => Object.fromEntries(outcome.columns.map((c, i) => [c.name, c.type === 'BIGINT' && r[i] !== null ? Number(r[i]) : r[i]])));
    const r = rows[0] as Record<string, string | number | null>;
    out(values.json ? JSON.stringify(r, null, 2) : formatMaintenance(sub, r));
  } finally {
    await w.close();
  }
}

function formatSnapshots(table: string, snaps: { id: unknown; parent: unknown; timestamp: unknown; operation: unknown; summary: Record<string, string>; manifestList: unknown; current: unknown; refs: string[] }[]): string {
  const lines = [`table ${table}: ${snaps.length} snapshot(s)`];
  for (const s of snaps) {
    const sum = s.summary;
    const facts = [`+${sum['added-data-files'] ?? 0}/-${sum['deleted-data-files'] ?? 0} data files`, `${sum['total-records'] ?? '?'} rows`];
    lines.push(`  ${s.id}  ${s.timestamp}  ${String(s.operation ?? '?').padEnd(9)} parent ${s.parent ?? '-'}  ${facts.join(', ')}${s.refs.length ? `  [${s.refs.join(', ')}]` : ''}${s.current ? '  (current)' : ''}`);
    lines.push(`      ${s.manifestList ?? '(manifests inline)'}`);
  }
  return lines.join('\n');
}

function formatMaintenance(sub: string, r: Record<string, string | number | null>): string {
  switch (sub) {
    case 'expire':
      return `table ${r.table}: ${r.snapshots_expired} snapshot(s) expired, ${r.snapshots_retained} retained; deleted ${r.manifest_lists_deleted} manifest list(s), ${r.manifests_deleted} manifest(s), ${r.data_files_deleted} data file(s), ${r.delete_files_deleted} delete file(s), ${r.bytes_deleted} bytes${Number(r.files_kept_outside_location) ? `; ${r.files_kept_outside_location} unreferenced file(s) outside the table location kept` : ''}`;
    case 'compact':
      return r.snapshot_id === null
        ? `table ${r.table}: nothing to compact`
        : `table ${r.table}: rewrote ${r.rewritten_data_files} data file(s) (${r.rewritten_bytes} bytes) into ${r.added_data_files} (${r.added_bytes} bytes), ${r.rows} rows; snapshot ${r.snapshot_id}`;
    case 'remove-orphans':
      return `table ${r.table}: ${r.orphans_found} orphan file(s), ${r.files_deleted} deleted (${r.bytes_deleted} bytes), ${r.orphans_kept_too_new} kept as newer than ${r.older_than}`;
    default:
      return r.snapshot_id === null
        ? `table ${r.table}: nothing to rewrite (${r.kept_manifests} manifest(s))`
        : `table ${r.table}: rewrote ${r.rewritten_manifests} manifest(s) (${r.entries} entries) into ${r.added_manifests}, ${r.kept_manifests} kept; snapshot ${r.snapshot_id}`;
  }
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
  if (Object.hasOwn(MAINTENANCE, sub)) return runMaintenance(sub, args, settings, out);
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
