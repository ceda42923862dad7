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

import { PuffinError, toPuffinError } from '../../errors.ts';
import { topLevelKeyword } from '../../sql/lexer.ts';
import { sqlIdent } from '../../sql/quote.ts';
import { commitTable, loadTable } from './commit.ts';
import { assertWritableFormat } from './metadata.ts';
import { buildIcebergReadSql } from './read.ts';
import { planTableScan, type IcebergScan } from './scan.ts';
import { writeDataFiles } from './writer-data.ts';
import { localReadOptions, type WriteResult, type WriterContext } from './writer.ts';

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

function fileRead(scan: IcebergScan, i: number, options: Awaited<ReturnType<typeof localReadOptions>>): string {
  return buildIcebergReadSql({ ...scan, dataFiles: [scan.dataFiles[i]] }, undefined, options);
}

/** MERGE INTO m.table USING source ON ... WHEN ... (copy-on-write). */
export async function mergeRows(ctx: WriterContext, m: MergeStatement): Promise<WriteResult> {
  const base = await loadTable(ctx.store, m.table, ctx.io);
  assertWritableFormat(base.metadata, m.table);
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
  try {
    await run(ctx, `CREATE TEMP TABLE ${src} AS ${m.sourceSql}`);
    if (scan.dataFiles.length > 0) {
      await run(ctx, `CREATE TEMP TABLE ${all} AS ${scan.dataFiles.map((_, i) => `SELECT ${i} AS __merge_file, * FROM (${fileRead(scan, i, options)})`).join(' UNION ALL ')}`);
    } else {
      await run(ctx, `CREATE TEMP TABLE ${all} (__merge_file INTEGER, ${scan.fields.map((f) => `${sqlIdent(f.name)} ${f.type}`).join(', ')})`);
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
          conflictingAdds: async (paths) => {
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
          },
        },
        { io: ctx.io, base, summary: { 'puffindb.operation': 'merge' } },
      );
      return { table: m.table, rowsAffected: changed, snapshotId: String(c.snapshotId), metadataLocation: c.metadataLocation, attempts: c.attempts };
    } catch (err) {
      if (err instanceof PuffinError && err.code === 'conflict') await Promise.all(written.files.map((f) => ctx.io.delete(f.path).catch(() => undefined)));
      throw err;
    }
  } finally {
    for (const name of [work, all, src]) await ctx.conn.run(`DROP TABLE IF EXISTS ${name}`).catch(() => undefined);
  }
}
