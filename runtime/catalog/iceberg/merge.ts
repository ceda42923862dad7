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
//
// v3 row lineage (lineage.ts) on both coordinator paths: the target's rows are read with
// their `_row_id` and `_last_updated_sequence_number` (`lineage: true`), the WHEN clauses are
// spelled out over the table's columns (expandBareUpdates, expandStars) so the two extra
// columns stay out of `*`'s way, and the written files keep the lineage. Copy-on-write: each
// UPDATE also nulls the sequence number (markUpdatedRows), so copied rows keep both values,
// updated rows keep their id; inserted rows (no file tag) get null for both, fresh ids.
// Merge-on-read: the "unchanged" comparison leaves the lineage out, and the appended new
// version of an updated row keeps its `_row_id` with a null sequence number; inserted rows
// get null for both.
//
// Distributed (copy-on-write, when the context has `mergeFiles`: the query engine's
// fragments, runtime/exec/merge-fragments.ts): the source is materialized here once, with a
// row number, as a Parquet file every fragment reads whole. The fragments find the candidate
// files and the source rows some target row matches, and check the cardinality rule; then
// each rewrites its share of the candidate files by DuckDB's MERGE with the WHEN MATCHED and
// WHEN NOT MATCHED BY SOURCE clauses only (every target row is in one fragment, the whole
// source in each, so those clauses see exactly what they see here). The WHEN NOT MATCHED
// [BY TARGET] clauses run here, by DuckDB's MERGE into an empty table of the target's
// columns, over the source rows no target row matched. One commit: an overwrite replacing
// the rewritten files (or, when only INSERT clauses exist, a row delta that rewrites nothing
// and conflicts like one over the candidate files), with the conflict rules above.

import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PuffinError, toPuffinError } from '../../errors.ts';
import { lex, topLevelKeyword, type Token } from '../../sql/lexer.ts';
import { sqlIdent, sqlString } from '../../sql/quote.ts';
import { commitTable, liveDataFileInfos, loadTable } from './commit.ts';
import { resolveLocation } from './io.ts';
import { assertWritableFormat } from './metadata.ts';
import { buildIcebergReadSql, ROW_POSITION_COLUMN, type ReadSqlOptions } from './read.ts';
import { planTableScan, type IcebergDataFile, type IcebergScan } from './scan.ts';
import { writeDataFiles, writeDeletionVectorsAt } from './writer-data.ts';
import { localReadOptions, writeMode, writePositionDeletes, type WriteResult, type WriterContext } from './writer.ts';
import type { LoadedTable } from './commit.ts';
import { keepsLineage, LAST_UPDATED_COLUMN, markUpdatedRows, ROW_ID_COLUMN } from './lineage.ts';
import type { DataFileInfo } from './writer-manifest.ts';

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

/** The column of the materialized source numbering its rows (distributed MERGE). */
export const MERGE_ROW_NUMBER = '__merge_rn';

/** One WHEN clause of a MERGE, as written. */
export interface MergeClause {
  kind: 'matched' | 'not_matched_by_target' | 'not_matched_by_source';
  text: string;
}

/**
 * `ON cond WHEN ... WHEN ...` split into the condition and the WHEN clauses, each as written
 * (a WHEN inside parentheses or a CASE expression starts no clause).
 */
export function splitMergeClauses(clauses: string): { on: string; clauses: MergeClause[] } {
  const tokens = lex(clauses).tokens;
  const starts = clauseWords(tokens).filter((i) => tokens[i].text.toUpperCase() === 'WHEN');
  if (starts.length === 0) throw new PuffinError('syntax_error', 'MERGE needs at least one WHEN [NOT] MATCHED clause');
  const on = clauses.slice(0, tokens[starts[0]].start).replace(/^\s*ON\b/i, '').trim();
  if (!on) throw new PuffinError('syntax_error', 'MERGE needs an ON condition');
  const word = (i: number) => (tokens[i]?.kind === 'word' ? tokens[i].text.toUpperCase() : '');
  const out = starts.map((at, n): MergeClause => {
    const text = clauses.slice(tokens[at].start, n + 1 < starts.length ? tokens[starts[n + 1]].start : clauses.length).trim();
    if (word(at + 1) === 'MATCHED') return { kind: 'matched', text };
    if (word(at + 1) !== 'NOT' || word(at + 2) !== 'MATCHED') throw new PuffinError('syntax_error', `MERGE: expected WHEN [NOT] MATCHED, got: ${text.slice(0, 40)}`);
    return { kind: word(at + 3) === 'BY' && word(at + 4) === 'SOURCE' ? 'not_matched_by_source' : 'not_matched_by_target', text };
  });
  return { on, clauses: out };
}

/** What a distributed MERGE asks of the fragments (runtime/exec/merge-fragments.ts). */
export interface MergeFragmentsRequest {
  table: string;
  base: LoadedTable;
  /** The scan of `base` the MERGE reads; candidate files are indexes into its dataFiles. */
  scan: IcebergScan;
  /** The materialized source: a local Parquet file, its columns (MERGE_ROW_NUMBER last) and rows. */
  source: { path: string; columns: { name: string; type: string }[]; rows: number };
  targetAlias: string;
  sourceAlias: string;
  /** `s(a, b)`'s column aliases, as written. */
  sourceColumns?: string;
  on: string;
  /** The WHEN MATCHED and WHEN NOT MATCHED BY SOURCE clauses the fragments run; '' for none (no file is rewritten). */
  rewriteClauses: string;
  /**
   * v3: the fragments' rows carry their row lineage (lineage.ts's two trailing columns) and
   * the written files keep it; `rewriteClauses` are then spelled out column by column, each
   * UPDATE also marking its rows updated (markUpdatedRows).
   */
  lineage: boolean;
  /** Every data file is a candidate (WHEN NOT MATCHED BY SOURCE). */
  allFiles: boolean;
  /** Check that no target row matches more than one source row (there are WHEN MATCHED clauses). */
  checkCardinality: boolean;
  /** Report the source rows some target row matches (there are WHEN NOT MATCHED clauses). */
  matchedRows: boolean;
}

export interface MergeFragmentsOutcome {
  /** How many source rows one target row matches, when a target row matches more than one. */
  violation?: number;
  /** The source rows (MERGE_ROW_NUMBER) some target row matches, as inclusive ranges. */
  matched: [number, number][];
  /** Indexes into the scan's dataFiles of the files holding a row the ON condition matches (all, with allFiles). */
  candidates: number[];
  /** Files the fragments wrote, replacing `removed` (paths as the manifests record them). */
  added: DataFileInfo[];
  removed: string[];
  /** Target rows the fragments' MERGE updated or deleted. */
  changed: number;
}

export type FileMerger = (request: MergeFragmentsRequest) => Promise<MergeFragmentsOutcome>;

export interface MergeContext extends WriterContext {
  /** Runs a copy-on-write MERGE's rewrite in the query engine's fragments; absent: all on `conn`. */
  mergeFiles?: FileMerger;
}

/** The action of a WHEN clause: the text after its THEN (a THEN inside parentheses or a CASE is not it). */
function actionAt(clause: string): number {
  const tokens = lex(clause).tokens;
  const then = clauseWords(tokens).find((i) => tokens[i].text.toUpperCase() === 'THEN');
  return then === undefined ? -1 : tokens[then].end;
}

/**
 * Indexes of the words of a MERGE's clauses that belong to the clauses themselves: outside
 * parentheses, brackets and braces, and outside CASE ... END (whose WHEN and THEN are an
 * expression's).
 */
function clauseWords(tokens: readonly Token[]): number[] {
  const out: number[] = [];
  let depth = 0;
  let cases = 0;
  tokens.forEach((tok, i) => {
    if (tok.kind === 'symbol' && (tok.text === '(' || tok.text === '[' || tok.text === '{')) depth++;
    else if (tok.kind === 'symbol' && (tok.text === ')' || tok.text === ']' || tok.text === '}')) depth--;
    else if (tok.kind === 'word' && depth === 0) {
      const w = tok.text.toUpperCase();
      if (w === 'CASE') cases++;
      else if (w === 'END' && cases > 0) cases--;
      else if (cases === 0) out.push(i);
    }
  });
  return out;
}

/**
 * DuckDB's `UPDATE` without SET (by position, as `UPDATE SET *`; or BY NAME) spelled out as
 * `UPDATE SET col = source.col, ...`, and its `INSERT` without a list (by position, as
 * `INSERT *`), so the MERGE can run on rows carrying extra columns (`INSERT BY NAME` needs
 * nothing: the extra columns get null).
 */
export function expandBareUpdates(clauses: MergeClause[], targetColumns: string[], sourceAlias: string, sourceColumns: string[]): MergeClause[] {
  return clauses.map((c) => {
    const at = actionAt(c.text);
    if (at < 0) return c;
    const action = c.text.slice(at).trim();
    let spelled: string | undefined;
    if (/^UPDATE(\s+BY\s+POSITION)?$/i.test(action)) spelled = expandStars('UPDATE SET *', targetColumns, sourceAlias, sourceColumns);
    else if (/^INSERT(\s+BY\s+POSITION)?$/i.test(action)) spelled = expandStars('INSERT *', targetColumns, sourceAlias, sourceColumns);
    else if (/^UPDATE\s+BY\s+NAME$/i.test(action)) {
      const byName = new Map(sourceColumns.map((n) => [n.toLowerCase(), n]));
      const set = targetColumns.filter((n) => byName.has(n.toLowerCase())).map((n) => `${sqlIdent(n)} = ${sqlIdent(sourceAlias)}.${sqlIdent(byName.get(n.toLowerCase())!)}`);
      if (set.length === 0) throw new PuffinError('bad_request', 'MERGE: UPDATE BY NAME: the source has no column of the target');
      spelled = `UPDATE SET ${set.join(', ')}`;
    }
    return spelled ? { ...c, text: `${c.text.slice(0, at)} ${spelled}` } : c;
  });
}

/** The cardinality violation's error (the same on both paths). */
function cardinalityError(table: string, count: number): PuffinError {
  return new PuffinError('bad_request', `MERGE into '${table}': a target row matches ${String(count)} source rows of the ON condition (the SQL standard's cardinality violation: each target row may be matched by one source row at most); nothing was changed`);
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

/**
 * `ON ... WHEN ...` with every action that relies on the target's columns lining up with the
 * source's (`UPDATE SET *`, bare `UPDATE` / `INSERT`, `INSERT *`, `INSERT VALUES`) spelled out
 * column by column over `targetColumns`, for a MERGE into rows carrying extra columns.
 */
async function spelledClauses(ctx: WriterContext, clauses: string, targetColumns: string[], sourceRef: string, sourceAlias: string): Promise<string> {
  const sourceColumns = (await ctx.conn.runAndReadAll(`SELECT * FROM ${sourceRef} LIMIT 0`).catch((err) => {
    throw mergeError(err);
  })).columnNames();
  const split = splitMergeClauses(clauses);
  const spelled = expandBareUpdates(split.clauses, targetColumns, sourceAlias, sourceColumns).map((c) => c.text).join(' ');
  return expandStars(`ON (${split.on}) ${spelled}`, targetColumns, sourceAlias, sourceColumns);
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
export async function mergeRows(ctx: MergeContext, m: MergeStatement): Promise<WriteResult> {
  const base = await loadTable(ctx.store, m.table, ctx.io);
  // v3: commitTable assigns the new files' row lineage; merge-on-read writes deletion vectors.
  assertWritableFormat(base.metadata, m.table, { v3: true });
  const scan = await planTableScan({ metadataLocation: base.metadataLocation, tableUri: base.metadata.location, metadata: base.metadata, io: ctx.io });
  const mor = writeMode(base.metadata, 'merge') === 'merge-on-read';
  const tag = Math.random().toString(36).slice(2, 10);
  // Copy-on-write runs in the fragments when there are fragments (the table's files are read
  // there, never fetched here); merge-on-read, and a bare writer connection, run here.
  if (!mor && ctx.mergeFiles) return mergeDistributed(ctx, ctx.mergeFiles, m, base, scan, tag);
  const options = await localReadOptions(ctx, scan.dataFiles);
  // v3: the rows read carry their row lineage (lineage.ts's two columns, after the table's
  // and before the positions), so the rewritten or appended rows keep their `_row_id`.
  const lineage = keepsLineage(base.metadata);
  const readOptions = lineage ? { ...options, lineage: true } : options;
  const RID = sqlIdent(ROW_ID_COLUMN);
  const LUS = sqlIdent(LAST_UPDATED_COLUMN);
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
  const POS = sqlIdent(ROW_POSITION_COLUMN);
  try {
    await run(ctx, `CREATE TEMP TABLE ${src} AS ${m.sourceSql}`);
    if (scan.dataFiles.length > 0) {
      await run(ctx, `CREATE TEMP TABLE ${all} AS ${scan.dataFiles.map((_, i) => `SELECT ${i} AS __merge_file, * FROM (${fileRead(scan, i, readOptions, mor)})`).join(' UNION ALL ')}`);
    } else {
      await run(ctx, `CREATE TEMP TABLE ${all} (__merge_file INTEGER, ${scan.fields.map((f) => `${sqlIdent(f.name)} ${f.type}`).join(', ')}${lineage ? `, ${RID} BIGINT, ${LUS} BIGINT` : ''}${mor ? `, ${POS} BIGINT` : ''})`);
    }
    const joined = `FROM ${all} AS ${t} JOIN ${sourceRef} ON (${on})`;
    if (matchedClauses) {
      const twice = await rows(ctx, `SELECT count(*) ${joined} GROUP BY ${t}.rowid HAVING count(*) > 1 LIMIT 1`);
      if (twice.length > 0) {
        throw cardinalityError(m.table, Number(twice[0][0]));
      }
    }
    const files = bySource
      ? scan.dataFiles.map((_, i) => i)
      : (await rows(ctx, `SELECT DISTINCT ${t}.__merge_file ${joined}`)).map((r) => Number(r[0]));
    if (mor) return await mergeOnRead(ctx, m, { base, scan, options, files, all, work, t, sourceRef, on, tag, lineage });
    const inFiles = `WHERE __merge_file IN (${files.length ? files.join(', ') : 'NULL'})`;
    let changed: number;
    let selectSql = `SELECT * FROM ${work}`;
    if (lineage) {
      // The table's columns, then the lineage and the file tag (null on the rows the MERGE
      // inserts); the clauses spelled out over the table's columns, each UPDATE marking its
      // rows updated (markUpdatedRows): they keep `_row_id` with a null sequence number.
      await run(ctx, `CREATE TEMP TABLE ${work} AS SELECT * EXCLUDE (__merge_file, ${RID}, ${LUS}), ${RID}, ${LUS}, __merge_file FROM ${all} ${inFiles}`);
      const columns = (await ctx.conn.runAndReadAll(`SELECT * FROM ${work} LIMIT 0`)).columnNames().slice(0, -3);
      const clauses = markUpdatedRows(await spelledClauses(ctx, m.clauses, columns, sourceRef, m.sourceAlias));
      changed = Number((await rows(ctx, `MERGE INTO ${work} AS ${t} USING ${sourceRef} ${clauses}`))[0]?.[0] ?? 0);
      // Inserted rows get fresh ids whatever an INSERT BY NAME found in the source.
      selectSql = `SELECT * EXCLUDE (__merge_file, ${RID}, ${LUS}), CASE WHEN __merge_file IS NULL THEN NULL ELSE ${RID} END AS ${RID}, CASE WHEN __merge_file IS NULL THEN NULL ELSE ${LUS} END AS ${LUS} FROM ${work}`;
    } else {
      await run(ctx, `CREATE TEMP TABLE ${work} AS SELECT * EXCLUDE (__merge_file) FROM ${all} ${inFiles}`);
      changed = Number((await rows(ctx, `MERGE INTO ${work} AS ${t} USING ${sourceRef} ${m.clauses}`))[0]?.[0] ?? 0);
    }
    if (changed === 0) return { table: m.table, rowsAffected: 0, snapshotId: null, metadataLocation: base.metadataLocation };
    const written = await writeDataFiles({ conn: ctx.conn, table: m.table, metadata: base.metadata, selectSql, stagingDir: ctx.stagingDir, io: ctx.io, lineage });
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
  /** v3: `all`'s rows carry their lineage (after the table's columns, before the positions). */
  lineage: boolean;
}

/** The merge-on-read half of mergeRows: position deletes plus appended rows, one row-delta. */
async function mergeOnRead(ctx: WriterContext, m: MergeStatement, st: MorState): Promise<WriteResult> {
  const { base, scan, options, files, all, work, t, sourceRef, on, tag, lineage } = st;
  const POS = sqlIdent(ROW_POSITION_COLUMN);
  const RID = sqlIdent(ROW_ID_COLUMN);
  const keep = `__merge_keep_${tag}`;
  const noChange: WriteResult = { table: m.table, rowsAffected: 0, snapshotId: null, metadataLocation: base.metadataLocation };
  // The candidate rows, the table's columns first, their tags (and v3 lineage) last.
  const tags = lineage ? `__merge_file, ${POS}, ${RID}, ${sqlIdent(LAST_UPDATED_COLUMN)}` : `__merge_file, ${POS}`;
  await run(ctx, `CREATE TEMP TABLE ${work} AS SELECT * EXCLUDE (${tags}), ${tags} FROM ${all} WHERE __merge_file IN (${files.length ? files.join(', ') : 'NULL'})`);
  const columns = (await ctx.conn.runAndReadAll(`SELECT * FROM ${work} LIMIT 0`)).columnNames().slice(0, lineage ? -4 : -2);
  const clauses = await spelledClauses(ctx, m.clauses, columns, sourceRef, m.sourceAlias);
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
    // v3: an updated row's new version (a candidate row: it has a position) keeps its
    // `_row_id` with a null sequence number (the commit's); an inserted row gets null for both.
    const lineageSql = lineage ? `, CASE WHEN w.${POS} IS NULL THEN NULL ELSE w.${RID} END AS ${RID}, CAST(NULL AS BIGINT) AS ${sqlIdent(LAST_UPDATED_COLUMN)}` : '';
    const appended = `SELECT ${columns.map((c) => `w.${sqlIdent(c)}`).join(', ')}${lineageSql} FROM ${work} w ANTI JOIN ${keep} k ON k.__merge_file = w.__merge_file AND k.${POS} = w.${POS}`;
    added = (await writeDataFiles({ conn: ctx.conn, table: m.table, metadata: base.metadata, selectSql: appended, stagingDir: ctx.stagingDir, io: ctx.io, lineage })).files;
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

/**
 * The distributed copy-on-write MERGE (see the top of this file): the source materialized
 * here, the WHEN MATCHED / NOT MATCHED BY SOURCE rewrite in the fragments (`merge`), the
 * WHEN NOT MATCHED inserts here, one commit.
 */
async function mergeDistributed(ctx: WriterContext, merge: FileMerger, m: MergeStatement, base: LoadedTable, scan: IcebergScan, tag: string): Promise<WriteResult> {
  const split = splitMergeClauses(m.clauses);
  const src = `__merge_src_${tag}`;
  const ins = `__merge_ins_${tag}`;
  const ranges = `__merge_rng_${tag}`;
  const staged = join(ctx.stagingDir, `merge-source-${tag}.parquet`);
  const t = sqlIdent(m.targetAlias);
  const RN = sqlIdent(MERGE_ROW_NUMBER);
  const alias = `${sqlIdent(m.sourceAlias)}${m.sourceColumns ? `(${m.sourceColumns})` : ''}`;
  /** The source without its row numbers, as the MERGE names it; `where` filters it (over `__u`). */
  const sourceOf = (where = '') => `(SELECT * EXCLUDE (${RN}) FROM ${src} AS __u${where}) AS ${alias}`;
  const inserts = split.clauses.filter((c) => c.kind === 'not_matched_by_target');
  const rewrites = split.clauses.filter((c) => c.kind !== 'not_matched_by_target');
  const noChange: WriteResult = { table: m.table, rowsAffected: 0, snapshotId: null, metadataLocation: base.metadataLocation };
  let added: DataFileInfo[] = [];
  let committing = false;
  try {
    await run(ctx, `CREATE TEMP TABLE ${src} AS SELECT *, row_number() OVER () AS ${RN} FROM (${m.sourceSql}) AS __merge_q`);
    await run(ctx, `CREATE TEMP TABLE ${ins} (${scan.schema.map((f) => `${sqlIdent(f.name)} ${f.type}`).join(', ')})`);
    // The whole statement bound once here, before any fragment runs: a wrong column or
    // clause fails as it does on the coordinator's path.
    await rows(ctx, `MERGE INTO ${ins} AS ${t} USING ${sourceOf(' WHERE false')} ${m.clauses}`);
    const described = await ctx.conn.runAndReadAll(`SELECT * FROM ${src} LIMIT 0`);
    const types = described.columnTypes();
    const columns = described.columnNames().map((name, i) => ({ name, type: types[i].toString() }));
    const sourceRows = Number((await rows(ctx, `SELECT count(*) FROM ${src}`))[0][0]);
    await run(ctx, `COPY (SELECT * FROM ${src} ORDER BY ${RN}) TO ${sqlString(staged)} (FORMAT parquet)`);
    // v3: the rewritten rows keep their lineage; the fragments' MERGE runs over rows carrying
    // it, so its clauses are spelled out column by column and each UPDATE marks its rows.
    const lineage = keepsLineage(base.metadata) && rewrites.length > 0;
    let rewriteClauses = rewrites.map((c) => c.text).join(' ');
    if (lineage) {
      const sourceColumns = (await ctx.conn.runAndReadAll(`SELECT * FROM ${sourceOf()} LIMIT 0`).catch((err) => {
        throw mergeError(err);
      })).columnNames();
      const targetColumns = scan.schema.map((f) => f.name);
      rewriteClauses = markUpdatedRows(expandStars(expandBareUpdates(rewrites, targetColumns, m.sourceAlias, sourceColumns).map((c) => c.text).join(' '), targetColumns, m.sourceAlias, sourceColumns));
    }
    const out = await merge({
      table: m.table, base, scan,
      source: { path: staged, columns, rows: sourceRows },
      targetAlias: m.targetAlias, sourceAlias: m.sourceAlias, ...(m.sourceColumns ? { sourceColumns: m.sourceColumns } : {}),
      on: split.on,
      rewriteClauses,
      lineage,
      allFiles: rewrites.some((c) => c.kind === 'not_matched_by_source'),
      checkCardinality: rewrites.some((c) => c.kind === 'matched'),
      matchedRows: inserts.length > 0,
    });
    added = out.added;
    if (out.violation !== undefined) throw cardinalityError(m.table, out.violation);
    let inserted = 0;
    if (inserts.length > 0) {
      // The source rows no target row matches, through the INSERT clauses (into the empty table: every row is NOT MATCHED).
      await run(ctx, `CREATE TEMP TABLE ${ranges} (lo BIGINT, hi BIGINT)`);
      for (let i = 0; i < out.matched.length; i += 1000) {
        await run(ctx, `INSERT INTO ${ranges} VALUES ${out.matched.slice(i, i + 1000).map(([lo, hi]) => `(${lo}, ${hi})`).join(', ')}`);
      }
      const unmatched = ` WHERE NOT EXISTS (SELECT 1 FROM ${ranges} AS __r WHERE __u.${RN} BETWEEN __r.lo AND __r.hi)`;
      inserted = Number((await rows(ctx, `MERGE INTO ${ins} AS ${t} USING ${sourceOf(unmatched)} ON (${split.on}) ${inserts.map((c) => c.text).join(' ')}`))[0]?.[0] ?? 0);
    }
    const changed = out.changed + inserted;
    if (changed === 0) {
      await Promise.all(added.map((f) => ctx.io.delete(f.path).catch(() => undefined)));
      added = [];
      return noChange;
    }
    if (inserted > 0) {
      const written = await writeDataFiles({ conn: ctx.conn, table: m.table, metadata: base.metadata, selectSql: `SELECT * FROM ${ins}`, stagingDir: ctx.stagingDir, io: ctx.io });
      added = [...added, ...written.files];
    }
    const conflictingAdds = (paths: string[]) => firstMatchingAdd(ctx, m, t, sourceOf(), split.on, paths);
    committing = true;
    const c = await commitTable(
      ctx.store,
      m.table,
      out.removed.length > 0
        ? { operation: 'overwrite', added, removed: out.removed, isolation: 'serializable', conflictingAdds }
        // Nothing rewritten (INSERT clauses only): the candidate files must still be live as read.
        : { operation: 'row-delta', added, deletes: [], referenced: out.candidates.map((i) => scan.dataFiles[i].path), isolation: 'serializable', conflictingAdds },
      { io: ctx.io, base, summary: { 'puffindb.operation': 'merge' } },
    );
    return { table: m.table, rowsAffected: changed, snapshotId: String(c.snapshotId), metadataLocation: c.metadataLocation, attempts: c.attempts };
  } catch (err) {
    // Written files go unless the commit's outcome is unknown (an unreachable store may have swapped).
    if (!committing || (err instanceof PuffinError && err.code === 'conflict')) await Promise.all(added.map((f) => ctx.io.delete(f.path).catch(() => undefined)));
    throw err;
  } finally {
    await rm(staged, { force: true }).catch(() => undefined);
    for (const name of [ranges, ins, src]) await ctx.conn.run(`DROP TABLE IF EXISTS ${name}`).catch(() => undefined);
  }
}
