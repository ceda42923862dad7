// MERGE INTO an Iceberg table, copy-on-write, run on the writer's DuckDB connection (the
// coordinator). The source is materialized once; the target's rows are read with a tag
// naming the data file each came from; the data files holding a row the ON condition
// matches (every file, with WHEN NOT MATCHED BY SOURCE) are the ones the MERGE can change.
// Their rows go into a temporary table, DuckDB's own MERGE runs the user's WHEN clauses on
// it (so the semantics of UPDATE / DELETE / INSERT, conditions and `*` are DuckDB's), and
// the result is written as new data files that replace exactly those files in one
// `overwrite` snapshot. Rows of untouched files are never rewritten.
//
// A target row that the ON condition matches with more than one source row is an error (the
// SQL standard's cardinality violation), checked before anything is written. Commits follow
// commit.ts's rules for overwrites: a file this MERGE rewrote that a concurrent commit
// removed conflicts, and (serializable) so does a concurrently added file holding a row the
// ON condition matches with a source row.
//
// With `write.merge.mode = merge-on-read` the same DuckDB MERGE runs on the same rows, each
// tagged with its data file and position. Afterwards a candidate row that is gone (deleted)
// or whose values changed (updated) gets a position delete (writer.ts's
// writePositionDeletes, the one DELETE / UPDATE use; on a v3 table a deletion vector per
// data file, writer-data.ts's writeDeletionVectorsAt, the old vector removed in the same
// commit, as DELETE / UPDATE on v3 do), and the changed and inserted rows are
// appended as new data files, all in one row-delta snapshot (commit.ts: it conflicts with a
// concurrent commit that removed or added delete files to a data file it references, and,
// serializable, with a concurrently added file holding a row the ON condition matches).

import { PuffinError, toPuffinError } from '../../errors.ts';
import { topLevelKeyword } from '../../sql/lexer.ts';
import { sqlIdent } from '../../sql/quote.ts';
import { commitTable, liveDataFileInfos, loadTable } from './commit.ts';
import { resolveLocation } from './io.ts';
import { assertWritableFormat } from './metadata.ts';
import { buildIcebergReadSql, ROW_POSITION_COLUMN, type ReadSqlOptions } from './read.ts';
import { planTableScan, type IcebergDataFile, type IcebergScan } from './scan.ts';
import { writeDataFiles, writeDeletionVectorsAt } from './writer-data.ts';
import { localReadOptions, writeMode, writePositionDeletes, type WriteResult, type WriterContext } from './writer.ts';
import type { LoadedTable } from './commit.ts';

export interface MergeStatement {
  table: string;
  /** The name the WHEN clauses and ON call the target by (its alias, else its name). */
  targetAlias: string;
  /** The source as a query the writer's connection can run. */
  sourceSql: string;
  sourceAlias: string;
  /** `s(a, b)`: the source's column aliases, as written. */
  sourceColumns?: string;
  /** `ON ... WHEN ...` as written. */
  clauses: string;
}

/** The clauses without string literals and quoted names, for recognizing keywords. */
function keywordsOf(text: string): string {
  return text.replace(/'(?:[^']|'')*'|"(?:[^"]|"")*"/g, ' ');
}

async function run(ctx: WriterContext, sql: string): Promise<void> {
  try {
    await ctx.conn.run(sql);
  } catch (err) {
    throw mergeError(err);
  }
}

async function rows(ctx: WriterContext, sql: string): Promise<unknown[][]> {
  try {
    return (await ctx.conn.runAndReadAll(sql)).getRowsJson() as unknown[][];
  } catch (err) {
    throw mergeError(err);
  }
}

function mergeError(err: unknown): PuffinError {
  const e = toPuffinError(err);
  return e.code === 'internal' ? new PuffinError('bad_request', `MERGE: ${e.message}`) : e;
}

function fileRead(scan: IcebergScan, i: number, options: Awaited<ReturnType<typeof localReadOptions>>, rowPositions = false): string {
  return buildIcebergReadSql({ ...scan, dataFiles: [scan.dataFiles[i]] }, undefined, rowPositions ? { ...options, rowPositions } : options);
}

/** `text` with string literals and quoted names blanked out, keeping every offset. */
function masked(text: string): string {
  return text.replace(/'(?:[^']|'')*'|"(?:[^"]|"")*"/g, (q) => ' '.repeat(q.length));
}

/**
 * `UPDATE SET *`, `INSERT *` and `INSERT VALUES (...)` spelled out column by column (DuckDB's
 * meaning: the source's columns, or the values, in order, for the target's), so the MERGE can
 * run on rows carrying extra tag columns.
 */
export function expandStars(clauses: string, targetColumns: string[], sourceAlias: string, sourceColumns: string[]): string {
  const mask = masked(clauses);
  const found = [...mask.matchAll(/\bUPDATE\s+SET\s+\*|\bINSERT\s+\*|\bINSERT\s+VALUES\b/gi)];
  if (found.length === 0) return clauses;
  if (found.some((m) => m[0].endsWith('*')) && sourceColumns.length !== targetColumns.length) {
    throw new PuffinError('bad_request', `MERGE: '*' in UPDATE SET * / INSERT * needs as many source columns as the target has (${sourceColumns.length} source, ${targetColumns.length} target)`);
  }
  const src = sourceColumns.map((c) => `${sqlIdent(sourceAlias)}.${sqlIdent(c)}`);
  let out = clauses;
  for (const m of found.reverse()) {
    const text = /^UPDATE/i.test(m[0])
      ? `UPDATE SET ${targetColumns.map((c, i) => `${sqlIdent(c)} = ${src[i]}`).join(', ')}`
      : /VALUES$/i.test(m[0])
        ? `INSERT (${targetColumns.map(sqlIdent).join(', ')}) VALUES`
        : `INSERT (${targetColumns.map(sqlIdent).join(', ')}) VALUES (${src.join(', ')})`;
    out = out.slice(0, m.index) + text + out.slice(m.index + m[0].length);
  }
  return out;
}

/** Serializable: of files a concurrent commit added, the first holding a row `on` matches with a source row. */
async function firstMatchingAdd(ctx: WriterContext, m: MergeStatement, t: string, sourceRef: string, on: string, paths: string[]): Promise<string | undefined> {
  const current = await loadTable(ctx.store, m.table, ctx.io);
  const now = await planTableScan({ metadataLocation: current.metadataLocation, tableUri: current.metadata.location, metadata: current.metadata, io: ctx.io });
  const wanted = new Set(paths);
  const added = now.dataFiles.filter((d) => wanted.has(d.path));
  const addedOptions = await localReadOptions(ctx, added);
  for (const file of added) {
    const read = buildIcebergReadSql({ ...now, dataFiles: [file] }, undefined, addedOptions);
    const hit = await rows(ctx, `SELECT 1 FROM (${read}) AS ${t} JOIN ${sourceRef} ON (${on}) LIMIT 1`);
    if (hit.length > 0) return file.path;
  }
  return undefined;
}

/** MERGE INTO m.table USING source ON ... WHEN ... (copy-on-write, or merge-on-read by `write.merge.mode`). */
export async function mergeRows(ctx: WriterContext, m: MergeStatement): Promise<WriteResult> {
  const base = await loadTable(ctx.store, m.table, ctx.io);
  // v3: commitTable assigns the new files' row lineage; merge-on-read writes deletion vectors.
  assertWritableFormat(base.metadata, m.table, { v3: true });
  const scan = await planTableScan({ metadataLocation: base.metadataLocation, tableUri: base.metadata.location, metadata: base.metadata, io: ctx.io });
  const options = await localReadOptions(ctx, scan.dataFiles);
  const tag = Math.random().toString(36).slice(2, 10);
  const src = `__merge_src_${tag}`;
  const all = `__merge_all_${tag}`;
  const work = `__merge_w_${tag}`;
  const t = sqlIdent(m.targetAlias);
  const sourceRef = `${src} AS ${sqlIdent(m.sourceAlias)}${m.sourceColumns ? `(${m.sourceColumns})` : ''}`;
  const when = topLevelKeyword(m.clauses, 'WHEN');
  const on = m.clauses.slice(0, when).replace(/^\s*ON\b/i, '').trim();
  if (!on) throw new PuffinError('syntax_error', 'MERGE needs an ON condition');
  const words = keywordsOf(m.clauses.slice(when));
  const bySource = /\bNOT\s+MATCHED\s+BY\s+SOURCE\b/i.test(words);
  const matchedClauses = /\bWHEN\s+MATCHED\b/i.test(words);
  const mor = writeMode(base.metadata, 'merge') === 'merge-on-read';
  const POS = sqlIdent(ROW_POSITION_COLUMN);
  try {
    await run(ctx, `CREATE TEMP TABLE ${src} AS ${m.sourceSql}`);
    if (scan.dataFiles.length > 0) {
      await run(ctx, `CREATE TEMP TABLE ${all} AS ${scan.dataFiles.map((_, i) => `SELECT ${i} AS __merge_file, * FROM (${fileRead(scan, i, options, mor)})`).join(' UNION ALL ')}`);
    } else {
      await run(ctx, `CREATE TEMP TABLE ${all} (__merge_file INTEGER, ${scan.fields.map((f) => `${sqlIdent(f.name)} ${f.type}`).join(', ')}${mor ? `, ${POS} BIGINT` : ''})`);
    }
    const joined = `FROM ${all} AS ${t} JOIN ${sourceRef} ON (${on})`;
    if (matchedClauses) {
      const twice = await rows(ctx, `SELECT count(*) ${joined} GROUP BY ${t}.rowid HAVING count(*) > 1 LIMIT 1`);
      if (twice.length > 0) {
        throw new PuffinError('bad_request', `MERGE into '${m.table}': a target row matches ${String(twice[0][0])} source rows of the ON condition (the SQL standard's cardinality violation: each target row may be matched by one source row at most); nothing was changed`);
      }
    }
    const files = bySource
      ? scan.dataFiles.map((_, i) => i)
      : (await rows(ctx, `SELECT DISTINCT ${t}.__merge_file ${joined}`)).map((r) => Number(r[0]));
    if (mor) return await mergeOnRead(ctx, m, { base, scan, options, files, all, work, t, sourceRef, on, tag });
    await run(ctx, `CREATE TEMP TABLE ${work} AS SELECT * EXCLUDE (__merge_file) FROM ${all} WHERE __merge_file IN (${files.length ? files.join(', ') : 'NULL'})`);
    const changed = Number((await rows(ctx, `MERGE INTO ${work} AS ${t} USING ${sourceRef} ${m.clauses}`))[0]?.[0] ?? 0);
    if (changed === 0) return { table: m.table, rowsAffected: 0, snapshotId: null, metadataLocation: base.metadataLocation };
    const written = await writeDataFiles({ conn: ctx.conn, table: m.table, metadata: base.metadata, selectSql: `SELECT * FROM ${work}`, stagingDir: ctx.stagingDir, io: ctx.io });
    const removed = files.map((i) => scan.dataFiles[i].path);
    try {
      const c = await commitTable(
        ctx.store,
        m.table,
        {
          operation: 'overwrite',
          added: written.files,
          removed,
          isolation: 'serializable',
          // A file appended concurrently conflicts when one of its rows matches a source row.
          conflictingAdds: (paths) => firstMatchingAdd(ctx, m, t, sourceRef, on, paths),
        },
        { io: ctx.io, base, summary: { 'puffindb.operation': 'merge' } },
      );
      return { table: m.table, rowsAffected: changed, snapshotId: String(c.snapshotId), metadataLocation: c.metadataLocation, attempts: c.attempts };
    } catch (err) {
      if (err instanceof PuffinError && err.code === 'conflict') await Promise.all(written.files.map((f) => ctx.io.delete(f.path).catch(() => undefined)));
      throw err;
    }
  } finally {
    for (const name of [`__merge_keep_${tag}`, work, all, src]) await ctx.conn.run(`DROP TABLE IF EXISTS ${name}`).catch(() => undefined);
  }
}

interface MorState {
  base: LoadedTable;
  scan: IcebergScan;
  options: ReadSqlOptions;
  /** Indexes into scan.dataFiles of the files holding candidate rows. */
  files: number[];
  /** Temp tables: every target row tagged (__merge_file, position); the MERGE's working rows. */
  all: string;
  work: string;
  t: string;
  sourceRef: string;
  on: string;
  tag: string;
}

/** The merge-on-read half of mergeRows: position deletes plus appended rows, one row-delta. */
async function mergeOnRead(ctx: WriterContext, m: MergeStatement, st: MorState): Promise<WriteResult> {
  const { base, scan, options, files, all, work, t, sourceRef, on, tag } = st;
  const POS = sqlIdent(ROW_POSITION_COLUMN);
  const keep = `__merge_keep_${tag}`;
  const noChange: WriteResult = { table: m.table, rowsAffected: 0, snapshotId: null, metadataLocation: base.metadataLocation };
  // The candidate rows, the table's columns first, their tags last (out of `*`'s way).
  await run(ctx, `CREATE TEMP TABLE ${work} AS SELECT * EXCLUDE (__merge_file, ${POS}), __merge_file, ${POS} FROM ${all} WHERE __merge_file IN (${files.length ? files.join(', ') : 'NULL'})`);
  const columns = (await ctx.conn.runAndReadAll(`SELECT * FROM ${work} LIMIT 0`)).columnNames().slice(0, -2);
  const sourceColumns = (await ctx.conn.runAndReadAll(`SELECT * FROM ${sourceRef} LIMIT 0`).catch((err) => {
    throw mergeError(err);
  })).columnNames();
  const clauses = expandStars(m.clauses, columns, m.sourceAlias, sourceColumns);
  const changed = Number((await rows(ctx, `MERGE INTO ${work} AS ${t} USING ${sourceRef} ${clauses}`))[0]?.[0] ?? 0);
  if (changed === 0) return noChange;
  // Rows still there with every value as it was are untouched; the other candidates are deleted
  // (by position), and the other working rows (updated or inserted) are appended.
  const same = columns.map((c) => `w.${sqlIdent(c)} IS NOT DISTINCT FROM a.${sqlIdent(c)}`).join(' AND ');
  await run(ctx, `CREATE TEMP TABLE ${keep} AS SELECT w.__merge_file, w.${POS} FROM ${work} w JOIN ${all} a ON a.__merge_file = w.__merge_file AND a.${POS} = w.${POS} WHERE ${same || 'true'}`);
  const index = new Map(scan.dataFiles.map((f, i) => [f.path, i]));
  const touched = new Set(files);
  const positionsOf = (file: IcebergDataFile): string | null => {
    const i = index.get(file.path) as number;
    return touched.has(i) ? `SELECT a.${POS} AS pos FROM ${all} a ANTI JOIN ${keep} k ON k.__merge_file = a.__merge_file AND k.${POS} = a.${POS} WHERE a.__merge_file = ${i}` : null;
  };
  // v3: one deletion vector per data file, holding its earlier deletions too and replacing its earlier vector.
  const vectors = base.metadata.formatVersion >= 3
    ? await writeDeletionVectorsAt({ conn: ctx.conn, io: ctx.io, table: m.table, scan, readOptions: options, infos: await liveDataFileInfos(ctx.io, base), location: resolveLocation(base.metadata.location).replace(/\/+$/, '') }, positionsOf)
    : undefined;
  const { deletes, affected } = vectors ?? await writePositionDeletes(ctx, m.table, base, scan, positionsOf);
  const removeAll = (extra: { path: string }[]) => Promise.all([...deletes.map((d) => d.file), ...extra].map((f) => ctx.io.delete(f.path).catch(() => undefined)));
  let added: Awaited<ReturnType<typeof writeDataFiles>>['files'] = [];
  let committing = false;
  try {
    const appended = `SELECT ${columns.map((c) => `w.${sqlIdent(c)}`).join(', ')} FROM ${work} w ANTI JOIN ${keep} k ON k.__merge_file = w.__merge_file AND k.${POS} = w.${POS}`;
    added = (await writeDataFiles({ conn: ctx.conn, table: m.table, metadata: base.metadata, selectSql: appended, stagingDir: ctx.stagingDir, io: ctx.io })).files;
    // UPDATEs that set every value to what it was: the table is unchanged, nothing to commit.
    if (deletes.length === 0 && added.length === 0) return { ...noChange, rowsAffected: changed };
    committing = true;
    const c = await commitTable(
      ctx.store,
      m.table,
      {
        operation: 'row-delta',
        added,
        deletes,
        referenced: affected.map((f) => f.path),
        ...(vectors?.replaced.length ? { removedDeletes: vectors.replaced } : {}),
        isolation: 'serializable',
        conflictingAdds: (paths) => firstMatchingAdd(ctx, m, t, sourceRef, on, paths),
      },
      { io: ctx.io, base, summary: { 'puffindb.operation': 'merge' } },
    );
    return { table: m.table, rowsAffected: changed, snapshotId: String(c.snapshotId), metadataLocation: c.metadataLocation, attempts: c.attempts };
  } catch (err) {
    // Written files go unless the commit's outcome is unknown (an unreachable store may have swapped).
    if (!committing || (err instanceof PuffinError && err.code === 'conflict')) await removeAll(added);
    throw err;
  }
}
