// MERGE INTO an Iceberg table (copy-on-write) in the fragments: the part of
// runtime/catalog/iceberg/merge.ts's distributed MERGE that runs where the data is.
//
// The coordinator has materialized the source once, with a row number (MERGE_ROW_NUMBER), as
// a Parquet file; it is stored under the query's shuffle prefix (the object store every
// worker reads: a local directory for in-process and pooled workers, S3 for Lambda) and is a
// broadcast input of every fragment. Two rounds over the table's snapshot:
// 1. matching (when the statement needs it): the data files, balanced over the fragments
//    (assignFiles), each file a view of its own so rows carry their file's number, joined
//    with the whole source by the ON condition. Each fragment reports the files holding a
//    matched row, the source rows matched, and the most source rows any one target row
//    matches; the reduce step merges them (the source rows as ranges). A target row is in
//    one file, so in one fragment: the cardinality rule is checked where its rows are.
// 2. rewriting (when there are WHEN MATCHED / NOT MATCHED BY SOURCE clauses): the candidate
//    files, balanced again, each fragment's rows in a temporary table, DuckDB's MERGE with
//    only those clauses into it (the worker's write `setup` statements), its rows written as
//    data files of the table. The MERGE's count comes back with the files. Each write
//    fragment runs as an execution of its own (write-fragments.ts): when one fails, the
//    files the others wrote are deleted before the MERGE fails.
// The coordinator then inserts the unmatched source rows and commits (merge.ts).

import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { PuffinError } from '../errors.ts';
import { MERGE_ROW_NUMBER, type MergeFragmentsOutcome, type MergeFragmentsRequest } from '../catalog/iceberg/merge.ts';
import { toTableSnapshot } from '../catalog/warehouse-catalog.ts';
import { LINEAGE_COLUMNS } from '../catalog/iceberg/lineage.ts';
import { uriTableIO } from '../catalog/iceberg/writer-io.ts';
import { dataFileFromJson, type DataFileInfo, type DataFileJson } from '../catalog/iceberg/writer-manifest.ts';
import { assignFiles } from '../planner/assign.ts';
import type { FileRef, Fragment, FragmentInput, Plan } from '../planner/plan.ts';
import type { Settings } from '../settings.ts';
import { sqlIdent } from '../sql/quote.ts';
import { joinUrl, openStore } from '../storage/open.ts';
import type { ExecuteOptions, ExecuteOutcome } from './coordinator.ts';
import { addStats, emptyStats, type QueryOptions, type QueryStats, type RunStats } from './query-service.ts';
import { storeOptionsOf } from './worker.ts';
import { executeWriteFragments, writtenPaths } from './write-fragments.ts';

/** What the distributed MERGE runs with: the cluster's settings and coordinator. */
export interface MergeHost {
  settings: Settings;
  execute(plan: Plan, options: ExecuteOptions): Promise<ExecuteOutcome>;
  /** Delete files stored under the shuffle prefix. */
  discard(files: FileRef[]): Promise<void>;
}

export interface MergeRun {
  outcome: MergeFragmentsOutcome;
  /** What ran: the rounds' fragments, and why. */
  plan: Plan;
  stats: Omit<QueryStats, 'planMs' | 'totalMs'>;
}

const SOURCE_VIEW = '__merge_source';
const TARGET_VIEW = '__merge_target';
const WORK_TABLE = '__merge_w';
const MATCHES_VIEW = '__merge_matches';
const WRITTEN_VIEW = '__written';
const RN = sqlIdent(MERGE_ROW_NUMBER);

export async function mergeInFragments(host: MergeHost, request: MergeFragmentsRequest, queryId: string, options: Pick<QueryOptions, 'fragments' | 'timeoutMs' | 'signal'>): Promise<MergeRun> {
  const { settings } = host;
  const maxFragments = options.fragments ?? settings.maxFragments;
  const deadline = Date.now() + (options.timeoutMs ?? settings.queryTimeoutMs);
  let stats: RunStats = { ...emptyStats(), singleNodeBytes: 0, stages: [] };
  const ran: Fragment[] = [];
  const reasons: string[] = [];
  let step = 0;
  const add = (st: RunStats) => {
    stats = addStats(stats, st);
  };
  const remainingMs = (): number => {
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw new PuffinError('timeout', `query ${queryId} passed its deadline`);
    return remaining;
  };
  const execute = async (plan: Plan): Promise<ExecuteOutcome> => {
    const outcome = await host.execute(plan, { queryId: `${queryId}-m${++step}`, timeoutMs: remainingMs(), signal: options.signal });
    add(outcome.stats);
    ran.push(...plan.fragments);
    return outcome;
  };
  // The rewrite round's fragments each run on their own: when one fails, the files the
  // others wrote are deleted before the failure is told (write-fragments.ts).
  const io = uriTableIO(storeOptionsOf(settings));
  const executeWrites = async (plan: Plan): Promise<unknown[][]> => {
    const written = await executeWriteFragments(
      { execute: (p, o) => host.execute(p, o), concurrency: settings.concurrency, deleteFile: (path) => io.delete(path) },
      plan,
      { queryId: `${queryId}-m${++step}`, timeoutMs: remainingMs(), signal: options.signal },
    );
    add(written.stats);
    ran.push(...plan.fragments);
    return written.rows;
  };

  // The source, where every worker can fetch it.
  const bytes = await readFile(request.source.path);
  const key = `merge/${queryId}/source-${randomUUID()}.parquet`;
  await openStore(settings.shuffleUrl, storeOptionsOf(settings)).put(key, bytes);
  const sourceFile: FileRef = { uri: joinUrl(settings.shuffleUrl, key), sizeBytes: bytes.byteLength, rowCount: request.source.rows };
  const source: FragmentInput = { view: SOURCE_VIEW, table: SOURCE_VIEW, columns: request.source.columns, files: [sourceFile] };
  try {
    const { scan } = request;
    const snapshot = toTableSnapshot(request.table, scan);
    // Whole files (no row-range splits): a file is rewritten by one fragment.
    const refs: FileRef[] = snapshot.files.map((f) => ({ uri: f.uri, sizeBytes: f.sizeBytes, rowCount: f.rowCount, ...(f.iceberg ? { iceberg: f.iceberg } : {}) }));
    const indexOf = new Map(refs.map((f, i) => [f.uri, i]));
    const target = (view: string, files: FileRef[]): FragmentInput => ({ view, table: request.table, columns: snapshot.columns, files, ...(snapshot.iceberg ? { iceberg: snapshot.iceberg } : {}) });
    const T = sqlIdent(request.targetAlias);
    const S = `${sqlIdent(request.sourceAlias)}${request.sourceColumns ? `(${request.sourceColumns})` : ''}`;

    const outcome: MergeFragmentsOutcome = { matched: [], candidates: [], added: [], removed: [], changed: 0 };
    if (request.checkCardinality || request.matchedRows || !request.allFiles) {
      const groups = refs.length ? assignFiles(refs, maxFragments) : [];
      const fragments: Fragment[] = groups.map((files, j) => ({
        id: `m${j}`,
        output: MATCHES_VIEW,
        inputs: [source, ...files.map((f, k) => target(`__merge_t${k}`, [f]))],
        sql: matchSql(files.map((f) => indexOf.get(f.uri)!), T, sqlIdent(request.sourceAlias), S, request.on),
      }));
      const plan: Plan = {
        shape: 'scan', sql: '', output: MATCH_COLUMNS, join: null, scans: [], fragments,
        reduce: { views: [{ name: MATCHES_VIEW, columns: MATCH_COLUMNS }], sql: MATCH_REDUCE },
        reason: `MERGE into ${request.table}: matching the source against the data files`,
      };
      const rows = fragments.length ? (await execute(plan)).rows : [];
      for (const [k, a, b] of rows) {
        if (k === 'f') outcome.candidates.push(Number(a));
        else if (k === 'r') outcome.matched.push([Number(a), Number(b)]);
        else if (k === 'c' && b !== null && Number(b) > 1) outcome.violation = Number(b);
      }
      reasons.push(`${fragments.length} fragment(s) matched the source (${request.source.rows} row(s), broadcast from the shuffle prefix) against ${refs.length} data file(s) by the ON condition`);
      if (outcome.violation !== undefined && request.checkCardinality) return { outcome, plan: runPlan(request, ran, reasons), stats };
      delete outcome.violation;
    }
    if (request.allFiles) outcome.candidates = refs.map((_, i) => i);
    outcome.candidates.sort((a, b) => a - b);

    if (request.rewriteClauses && outcome.candidates.length > 0) {
      const groups = assignFiles(outcome.candidates.map((i) => refs[i]), maxFragments);
      // v3: the rows carry their lineage (two trailing columns the view computes), which the written files keep.
      const columns = request.lineage ? [...snapshot.columns, ...LINEAGE_COLUMNS.map((name) => ({ name, type: 'BIGINT' }))] : snapshot.columns;
      const write = {
        table: request.table,
        metadataLocation: request.base.metadataLocation,
        ...(request.lineage ? { lineage: true } : {}),
        setup: [
          `CREATE TEMP TABLE ${WORK_TABLE} AS SELECT * FROM ${TARGET_VIEW}`,
          `MERGE INTO ${WORK_TABLE} AS ${T} USING (SELECT * EXCLUDE (${RN}) FROM ${SOURCE_VIEW}) AS ${S} ON (${request.on}) ${request.rewriteClauses}`,
        ],
      };
      const sql = `SELECT * FROM ${WORK_TABLE}`;
      const fragments: Fragment[] = groups.map((files, j) => ({ id: `w${j}`, output: WRITTEN_VIEW, inputs: [source, { ...target(TARGET_VIEW, files), columns }], sql, write }));
      const plan: Plan = {
        shape: 'write', sql, output: [], join: null, scans: [], fragments,
        reduce: { views: [{ name: WRITTEN_VIEW, columns: [{ name: 'file', type: 'VARCHAR' }] }], sql: `SELECT file FROM ${WRITTEN_VIEW}` },
        reason: `MERGE into ${request.table}: rewriting the candidate files`,
      };
      const added: DataFileInfo[] = [];
      const rows = await executeWrites(plan);
      try {
        for (const [text] of rows) {
          const item = JSON.parse(String(text)) as { setup?: number; rows?: unknown[][] } & DataFileJson;
          if (item.setup === undefined) added.push(dataFileFromJson(item));
          else if (item.setup === 1) outcome.changed += Number(item.rows?.[0]?.[0] ?? 0);
        }
      } catch (err) {
        await Promise.all(writtenPaths(rows).map((path) => io.delete(path).catch(() => undefined)));
        throw err;
      }
      outcome.added = added;
      outcome.removed = outcome.candidates.map((i) => scan.dataFiles[i].path);
      reasons.push(`${fragments.length} write fragment(s) rewrote the ${outcome.candidates.length} candidate file(s) by DuckDB's MERGE with the WHEN MATCHED / NOT MATCHED BY SOURCE clauses`);
    } else if (!request.rewriteClauses) {
      reasons.push('no file is rewritten (INSERT clauses only)');
    } else {
      reasons.push('no data file holds a matching row: none is rewritten');
    }
    return { outcome, plan: runPlan(request, ran, reasons), stats };
  } finally {
    await host.discard([sourceFile]).catch(() => undefined);
  }
}

/** A matching fragment's partial: `f` file numbers, `s` source rows, `c` the most matches of one target row. */
const MATCH_COLUMNS = [{ name: 'k', type: 'VARCHAR' }, { name: 'a', type: 'BIGINT' }, { name: 'b', type: 'BIGINT' }];

/** Over all fragments: candidate files, the most matches of one target row, matched source rows as ranges. */
const MATCH_REDUCE = [
  `SELECT 'f' AS k, a, CAST(NULL AS BIGINT) AS b FROM ${MATCHES_VIEW} WHERE k = 'f' GROUP BY a`,
  `SELECT 'c', NULL, max(b) FROM ${MATCHES_VIEW} WHERE k = 'c'`,
  `SELECT 'r', min(a), max(a) FROM (SELECT a, a - row_number() OVER (ORDER BY a) AS g FROM (SELECT DISTINCT a FROM ${MATCHES_VIEW} WHERE k = 's')) GROUP BY g`,
].join(' UNION ALL ');

/** One matching fragment's SQL: its files' rows (numbered by file and row) joined with the source. */
function matchSql(fileNumbers: number[], T: string, alias: string, S: string, on: string): string {
  const rows = fileNumbers.map((n, k) => `SELECT ${n} AS __merge_file, * FROM __merge_t${k}`).join(' UNION ALL ');
  return [
    `WITH __merge_rows AS (${rows}),`,
    `__merge_pairs AS MATERIALIZED (SELECT ${T}.__merge_file AS f, ${T}.__merge_row AS r, ${alias}.${RN} AS n`,
    `FROM (SELECT *, row_number() OVER () AS __merge_row FROM __merge_rows) AS ${T} JOIN ${SOURCE_VIEW} AS ${S} ON (${on}))`,
    `SELECT 'f' AS k, f AS a, count(*) AS b FROM __merge_pairs GROUP BY f`,
    `UNION ALL SELECT 's', n, NULL FROM __merge_pairs GROUP BY n`,
    `UNION ALL SELECT 'c', NULL, max(c) FROM (SELECT count(*) AS c FROM __merge_pairs GROUP BY f, r HAVING count(*) > 1)`,
  ].join('\n');
}

/** The plan a distributed MERGE answers with: every fragment of its rounds, and why. */
function runPlan(request: MergeFragmentsRequest, fragments: Fragment[], reasons: string[]): Plan {
  return {
    shape: 'write',
    sql: '',
    output: [],
    fragments,
    reduce: { views: [], sql: '' },
    scans: [],
    join: null,
    reason: `merge on Iceberg table ${request.table} (copy-on-write), distributed: ${reasons.join('; ')}; ${request.matchedRows ? 'the coordinator inserts the source rows no target row matched (WHEN NOT MATCHED) and commits once' : 'the coordinator commits once'}`,
  };
}
