// Runs one fragment: fetch its input files through the local cache, expose each input as a
// temporary view, run the fragment's SQL into a Parquet partial, and hand the partial back
// inline or through the shuffle prefix. One Worker (one sandboxed DuckDB, one cache) per
// process or Lambda container, reused across invocations.

import { link, mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { PuffinError, registerInternalPath, toPuffinError } from '../errors.ts';
import type { DuckDBConnection } from '@duckdb/node-api';
import { Engine, assertSandboxed, runQuery } from '../engine/engine.ts';
import { FileCache, type AcquiredFiles } from '../storage/file-cache.ts';
import { fileUriToPath } from '../storage/locations.ts';
import { joinUrl, openStore, type StoreOptions } from '../storage/open.ts';
import { locationPolicyOf } from '../storage/locations.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import type { Settings } from '../settings.ts';
import type { FileRef, Fragment, FragmentInput } from '../planner/plan.ts';
import type { ColumnStats } from '../catalog/types.ts';
import { baseTable, colRef, conjunction, integerConstant, isIntegerType, selectNode } from '../planner/ast.ts';
import { printNodes } from '../sql/parse.ts';
import { readColumnSql } from '../sql/read-cast.ts';
import { PartitionCache, fileKeyOf, fragmentScanSpecs, type LocalStamp, type ScanSpec } from './partition-cache.ts';
import type { FragmentRequest, FragmentResult, PartialLocation } from './invoker.ts';
import { assertSafeId } from './wire.ts';
import { inputViewSql, parquetViewSql } from './views.ts';
import { describeParquetFiles, type ParquetFileSchema } from '../catalog/iceberg/parquet-schema.ts';
import { fragmentCopySql } from './fragment-sql.ts';
import { openIcebergTable } from '../catalog/iceberg/table.ts';
import { writeDataFiles } from '../catalog/iceberg/writer-data.ts';
import { uriTableIO } from '../catalog/iceberg/writer-io.ts';
import { dataFileToJson } from '../catalog/iceberg/writer-manifest.ts';
import { sqlIdent, sqlString, sqlStringList } from '../sql/quote.ts';
import { decodePartitionSource, type ShuffleIndex } from './shuffle-index.ts';
import { runCombineTask } from './shuffle-combine.ts';
import { readShufflePartition } from './shuffle-read.ts';
import { DEFAULT_SHUFFLE_INLINE_LIMIT, writeShuffle } from './shuffle-write.ts';
import { exportTargetOf, writeExport } from './export-write.ts';

/**
 * A DuckDB that may read one directory, its sandbox. A fragment takes a free sandbox, gets a
 * fresh directory in it holding links to its own files only, and gives the sandbox back
 * empty: the cache directory (every fragment's files, other queries' partials) is readable by
 * no engine. (allowed_directories cannot change once the configuration is locked, hence
 * sandboxes with a fixed directory each, one fragment at a time in each.)
 */
interface Sandbox {
  dir: string;
  engine: Engine;
}

/**
 * An input read through the filtered-partition cache (runtime/exec/partition-cache.ts): its
 * scan, and per file the cache key and either the entry that serves it (linked into the
 * sandbox; no path: no row passes the filter), or nothing (computed and kept by this
 * fragment), or `direct` (read as is: the entry was found not worth keeping before).
 */
interface CachedScan {
  spec: ScanSpec;
  files: { file: FileRef; key: string; hit?: { path: string | undefined; bytes: number }; direct?: boolean }[];
}

/** The views cached filtered partitions are computed from: one file of an input each. */
const PARTITION_SOURCE_VIEW = '__pdb_partition_source';
/** The column a miss's rows are partitioned by when written: the file's number. */
const PARTITION_COLUMN = '__pdb_file';

export class Worker {
  private readonly free: Sandbox[] = [];
  private readonly sandboxes: Sandbox[] = [];
  /** The number of the next sandbox made (its directory's name); sandbox 0 is made by create. */
  private nextSandbox = 1;
  /**
   * Fragments waiting for a sandbox once `maxSandboxes` exist, first come first served. Each
   * sandbox is a DuckDB with the settings' threads and memory limit: one process running many
   * fragments at once (the in-process invoker, e.g. the embedded library) would otherwise make
   * one per concurrent fragment, and multiply its memory limit by their number.
   */
  private readonly waiting: { resolve: (box: Sandbox) => void; reject: (err: unknown) => void }[] = [];
  private readonly maxSandboxes: number;
  /** Sandboxes being made (counted against maxSandboxes before they exist). */
  private making = 0;

  private constructor(
    private readonly settings: Settings,
    first: Sandbox,
    private readonly cache: FileCache,
    private readonly shuffle: ObjectStore,
    /** The filtered-partition cache over `cache`; absent when PUFFINDB_PARTITION_CACHE is off. */
    private readonly partitions?: PartitionCache,
  ) {
    this.free.push(first);
    this.sandboxes.push(first);
    this.maxSandboxes = Math.max(1, Math.floor(settings.workers) || 1);
  }

  private static async sandbox(settings: Settings, n: number): Promise<Sandbox> {
    const dir = join(settings.cacheDir, 'sandbox', String(n));
    // Whatever a fragment of an earlier run of this process left here.
    await rm(dir, { recursive: true, force: true });
    const engine = await Engine.create({ threads: settings.threads, memoryLimit: settings.memoryLimit, allowedDirectories: [dir] });
    assertSandboxed(engine);
    return { dir, engine };
  }

  private async takeSandbox(signal: AbortSignal): Promise<Sandbox> {
    const box = this.free.pop();
    if (box) return box;
    if (this.sandboxes.length + this.making >= this.maxSandboxes) {
      // Wait for one to be handed back (giveSandbox); the fragment's deadline or cancel still applies.
      return new Promise<Sandbox>((resolve, reject) => {
        const waiter = {
          resolve: (b: Sandbox) => {
            signal.removeEventListener('abort', onAbort);
            resolve(b);
          },
          reject,
        };
        const onAbort = () => {
          const i = this.waiting.indexOf(waiter);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(signal.reason);
        };
        if (signal.aborted) return onAbort();
        signal.addEventListener('abort', onAbort, { once: true });
        this.waiting.push(waiter);
      });
    }
    // The number is taken before the await: fragments arriving together while a sandbox is
    // being made must not get the same directory (each creation empties its directory, which
    // removed a running fragment's files: "Failed to create directory .../partitions/0").
    const n = this.nextSandbox++;
    this.making++;
    try {
      const made = await Worker.sandbox(this.settings, n);
      this.sandboxes.push(made);
      return made;
    } finally {
      this.making--;
    }
  }

  /** A fragment is done with `box`: the longest-waiting fragment gets it, else it is free. */
  private giveSandbox(box: Sandbox): void {
    const next = this.waiting.shift();
    if (next) next.resolve(box);
    else this.free.push(box);
  }

  static async create(settings: Settings): Promise<Worker> {
    // A fragment's files arrive in the cache directory (hard links for local files, downloads
    // for S3) and are linked into the fragment's own sandbox directory, the only one its
    // DuckDB may read: SQL in a fragment reaches its own files, nothing else.
    registerInternalPath(settings.cacheDir, '<worker cache>');
    const storeOptions = storeOptionsOf(settings);
    const cache = new FileCache({
      dir: join(settings.cacheDir, 'files'),
      maxBytes: settings.cacheBytes,
      directRoots: [],
      storeOptions,
    });
    const shuffle = openStore(settings.shuffleUrl, storeOptions);
    const partitions = settings.partitionCache === false ? undefined : new PartitionCache(cache);
    return new Worker(settings, await Worker.sandbox(settings, 0), cache, shuffle, partitions);
  }

  /**
   * Run one fragment. Rejects with 'timeout' when the request's deadline passes (DuckDB is
   * interrupted), with the signal's reason when aborted, and with a classified PuffinError
   * for anything DuckDB or the stores refuse.
   */
  async runFragment(request: FragmentRequest, signal?: AbortSignal): Promise<FragmentResult> {
    const { queryId, fragment } = request;
    assertSafeId('queryId', queryId);
    assertSafeId('fragment id', fragment.id);
    const remaining = request.deadline - Date.now();
    if (remaining <= 0) throw timeoutError(request);

    // Aborts cache fetches and interrupts DuckDB; fired by the deadline or by the caller.
    const stop = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    let onCallerAbort: (() => void) | undefined;
    const stopped = new Promise<never>((_, reject) => {
      const fail = (err: PuffinError) => {
        stop.abort(err);
        reject(err);
      };
      timer = setTimeout(() => fail(timeoutError(request)), remaining);
      onCallerAbort = () => fail(cancelError(request, signal?.reason));
      if (signal?.aborted) onCallerAbort();
      else signal?.addEventListener('abort', onCallerAbort, { once: true });
    });
    const work = this.execute(request, stop.signal);
    // Whichever loses the race must not surface as an unhandled rejection.
    work.catch(() => {});
    stopped.catch(() => {});
    try {
      return await Promise.race([work, stopped]);
    } catch (err) {
      // Answer a cancellation only once DuckDB has really stopped: a long scalar call ignores
      // the interrupt, and a process pool that heard "stopped" would hand this process the
      // next fragment while a core still runs the old one. The pool kills a child that does
      // not answer within its grace period, which is what stops such a call.
      if (stop.signal.aborted) await work.catch(() => undefined);
      throw err;
    } finally {
      clearTimeout(timer);
      if (onCallerAbort) signal?.removeEventListener('abort', onCallerAbort);
    }
  }

  private async execute(request: FragmentRequest, signal: AbortSignal): Promise<FragmentResult> {
    const started = Date.now();
    const { queryId, fragment } = request;
    // A combiner of the combining exchange moves shuffle bytes only: no files, no DuckDB.
    if (fragment.shuffleCombine) return runCombineTask(request, this.shuffle, Math.min(request.inlineLimitBytes ?? this.settings.inlineLimitBytes, DEFAULT_SHUFFLE_INLINE_LIMIT), signal);
    const tag = `${queryId}-${fragment.id}-${randomUUID()}`;

    let lease: AcquiredFiles | undefined;
    let box: Sandbox | undefined;
    let workDir: string | undefined;
    // Cached partitions in use, pinned against eviction until the fragment is done.
    const pins: (() => void)[] = [];
    try {
      box = await this.takeSandbox(signal);
      workDir = join(box.dir, tag);
      const scans = this.partitions ? await this.cachedScans(box.engine, fragment, join(workDir, 'cached'), pins) : fragment.inputs.map(() => undefined);
      // What is still read from the files: all of an input without a cached scan; of one with,
      // the files no entry serves.
      const reads: Fragment = {
        ...fragment,
        inputs: fragment.inputs.map((input, i) => {
          const scan = scans[i];
          return scan ? { ...input, files: scan.files.filter((f) => !f.hit).map((f) => f.file) } : input;
        }),
      };
      const uris = reads.inputs.flatMap((input) => input.files.map((f) => f.uri));
      // A whole Parquet file's catalog size spares the fetch its HEAD request (a split's
      // sizeBytes is the split's; a truncated text file would not fail, a Parquet file does).
      const sizes: (number | undefined)[] = reads.inputs.flatMap((input) => input.files.map((f) => (!input.fileSet && !f.rows && (!f.iceberg || f.iceberg.format === 'parquet') ? f.sizeBytes : undefined)));
      // Iceberg delete files are fetched through the cache like data files (DuckDB may read
      // only the cache directory); each is fetched once however many data files it applies to.
      const deletes = icebergDeleteFiles(reads);
      uris.push(...deletes.map((d) => d.uri));
      const hitFiles = scans.flatMap((scan) => scan?.files.filter((f) => f.hit) ?? []);
      const cache = scans.some(Boolean)
        ? {
            hits: hitFiles.length,
            misses: scans.reduce((n, scan) => n + (scan?.files.filter((f) => !f.hit).length ?? 0), 0),
            bytesSaved: hitFiles.reduce((n, f) => n + Math.max(0, f.file.sizeBytes - f.hit!.bytes), 0),
          }
        : undefined;
      const bytesScanned = reads.inputs.reduce((sum, input) => sum + input.files.reduce((s, f) => s + f.sizeBytes, 0), 0)
        + deletes.reduce((s, d) => s + d.sizeBytes, 0)
        + hitFiles.reduce((s, f) => s + f.hit!.bytes, 0);

      lease = await this.cache.acquire(uris, signal, sizes).catch((err: unknown) => {
        throw signal.aborted ? signal.reason : toPuffinError(err);
      });
      const partialPath = join(workDir, 'partial.parquet');
      const paths = await linkInto(join(workDir, 'in'), lease.paths);
      const ran = await this.runSql(request, reads, scans, paths, partialPath, tag, signal, box.engine);
      if (cache) this.partitions?.record(cache.hits, cache.misses, cache.bytesSaved);
      if (ran.shuffle) {
        // Hash-partitioned for a later stage: the partial is the offset index of the shuffle object.
        return {
          fragmentId: fragment.id, partial: { kind: 'shuffle', index: ran.shuffle }, rows: ran.rows, bytes: ran.shuffle.totalBytes,
          bytesScanned: bytesScanned + ran.stats.bytesRead + ran.inlineBytes, durationMs: Date.now() - started, shuffle: ran.stats, ...(cache ? { cache } : {}),
        };
      }
      const bytes = await readFile(partialPath);
      const partial = await this.deliver(request, bytes, signal);
      return {
        fragmentId: fragment.id, partial, rows: ran.rows, bytes: bytes.byteLength, bytesScanned: bytesScanned + ran.stats.bytesRead + ran.inlineBytes, durationMs: Date.now() - started,
        ...(fragment.shuffleReads?.length ? { shuffle: ran.stats } : {}),
        ...(cache ? { cache } : {}),
        ...(ran.columnStats ? { columnStats: ran.columnStats } : {}),
      };
    } finally {
      for (const release of pins) release();
      lease?.release();
      if (workDir) await rm(workDir, { recursive: true, force: true });
      if (box) this.giveSandbox(box);
    }
  }

  /**
   * The inputs the filtered-partition cache may serve (runtime/exec/partition-cache.ts), and
   * for each of their files the entry that serves it, linked into `dir` (in the fragment's
   * sandbox) and pinned (`pins`). Undefined for an input the cache cannot serve.
   */
  private async cachedScans(engine: Engine, fragment: Fragment, dir: string, pins: (() => void)[]): Promise<(CachedScan | undefined)[]> {
    const partitions = this.partitions!;
    const specs = await fragmentScanSpecs(engine, fragment);
    const out: (CachedScan | undefined)[] = [];
    let linked = 0;
    for (const [i, input] of fragment.inputs.entries()) {
      const spec = specs[i];
      if (!spec || input.files.length === 0) {
        out.push(undefined);
        continue;
      }
      const files: CachedScan['files'] = [];
      for (const file of input.files) {
        const key = fileKeyOf(input, file, await localStamp(file.uri));
        const hit = partitions.find(key, spec);
        if (!hit) {
          // A file too large for the cache to hold its rows is read as it is (its filtered
          // rows could be nearly as large, and are written before they are measured).
          const direct = partitions.wasSkipped(key, spec) || file.sizeBytes > partitions.maxSourceBytes;
          files.push({ file, key, ...(direct ? { direct: true } : {}) });
          continue;
        }
        pins.push(hit.release);
        if (hit.path === undefined) {
          // No row of the file passes the filter: nothing to read.
          files.push({ file, key, hit: { path: undefined, bytes: 0 } });
          continue;
        }
        await mkdir(dir, { recursive: true });
        const path = join(dir, `${linked++}.parquet`);
        try {
          await link(hit.path, path);
        } catch (err) {
          // An entry whose file is gone (the cache is an optimization): forgotten, and the
          // file is read as it is this time.
          if ((err as { code?: string }).code !== 'ENOENT') throw err;
          hit.lost?.();
          files.push({ file, key, direct: true });
          continue;
        }
        files.push({ file, key, hit: { path, bytes: hit.bytes } });
      }
      out.push({ spec, files });
    }
    return out;
  }

  /**
   * The view of an input read through the cache: its cached entries (those found, and those
   * this fragment computes and keeps now), and the files read as they are, as one view of the
   * columns the fragment reads.
   */
  private async cachedInputView(conn: DuckDBConnection, input: FragmentInput, scan: CachedScan, index: number, localPath: (uri: string) => string, footer: (uri: string) => ParquetFileSchema | undefined, scratch: string): Promise<void> {
    const { spec } = scan;
    const entries: string[] = [];
    const direct: FileRef[] = [];
    const misses: CachedScan['files'] = [];
    for (const f of scan.files) {
      if (f.hit) {
        if (f.hit.path !== undefined) entries.push(f.hit.path);
      } else if (f.direct) direct.push(f.file);
      else misses.push(f);
    }
    if (misses.length) {
      try {
        entries.push(...(await this.writePartitions(conn, input, spec, misses, localPath, footer, join(scratch, String(index)))));
      } catch (err) {
        // Caching is an optimization: a write that fails (a full disk) leaves the files to be
        // read as they are, now and next time. An interrupt is the fragment's end, not this.
        if ((err as { code?: string }).code === 'timeout' || /interrupt/i.test(String((err as Error).message))) throw err;
        for (const f of misses) this.partitions!.skipEntry(f.key, spec);
        direct.push(...misses.map((f) => f.file));
      }
    }
    const parts: string[] = [];
    const list = spec.columns.map(readColumnSql).join(', ');
    if (entries.length) parts.push(`SELECT ${list} FROM read_parquet(${sqlStringList(entries)}, union_by_name = true)`);
    if (!entries.length && !direct.length) {
      // Every file was found (or is now known) to have no row under the filter.
      await runQuery(conn, parquetViewSql(input.view, spec.columns, []));
      return;
    }
    if (direct.length) {
      const directView = `__pdb_direct_${index}`;
      await runQuery(conn, inputViewSql({ ...input, view: directView, files: direct }, localPath, footer));
      parts.push(`SELECT ${spec.columns.map((c) => sqlIdent(c.name)).join(', ')} FROM ${sqlIdent(directView)}`);
    }
    await runQuery(conn, `CREATE TEMP VIEW ${sqlIdent(input.view)} AS ${parts.join(' UNION ALL ')}`);
  }

  /**
   * The missed files' filtered, projected rows, in one pass: one view per file, one COPY of
   * their union partitioned by file (a Parquet file per file with rows), each kept as an
   * entry; a file without a row under the filter is kept as an empty entry. Returns the
   * Parquet files to read.
   */
  private async writePartitions(conn: DuckDBConnection, input: FragmentInput, spec: ScanSpec, misses: CachedScan['files'], localPath: (uri: string) => string, footer: (uri: string) => ParquetFileSchema | undefined, dir: string): Promise<string[]> {
    const source = (j: number) => `${PARTITION_SOURCE_VIEW}_${j}`;
    const views = misses.map((f, j) => inputViewSql({ ...input, view: source(j), files: [f.file] }, localPath, footer));
    const columns = spec.columns.map((c) => colRef(c.name));
    const selects = await printNodes(conn, misses.map((_, j) => selectNode([...columns, { ...integerConstant(j), alias: PARTITION_COLUMN }], baseTable(source(j)), { where_clause: conjunction('AND', spec.filter) })));
    await mkdir(dirname(dir), { recursive: true });
    await runQuery(conn, views.join(';\n'));
    try {
      await runQuery(conn, `COPY (${selects.map((q) => `(${q})`).join(' UNION ALL ')}) TO ${sqlString(dir)} (FORMAT parquet, PARTITION_BY (${PARTITION_COLUMN}))`);
    } finally {
      await runQuery(conn, misses.map((_, j) => `DROP VIEW IF EXISTS ${sqlIdent(source(j))}`).join(';\n'));
    }
    const out: string[] = [];
    for (const [j, f] of misses.entries()) {
      const part = join(dir, `${PARTITION_COLUMN}=${j}`);
      const names = (await readdir(part).catch(() => [] as string[])).filter((n) => n.endsWith('.parquet'));
      if (names.length === 0) {
        this.partitions!.admitEmpty(f.key, spec);
        continue;
      }
      for (const name of names) out.push(join(part, name));
      // A file's rows in more than one Parquet file (a large partition) are read, not kept.
      if (names.length === 1) await this.partitions!.admit(f.key, spec, join(part, names[0]), (await stat(join(part, names[0]))).size, f.file.sizeBytes);
    }
    return out;
  }

  /** Create the input views on a fresh connection and COPY the fragment's rows to Parquet. */
  private async runSql(request: FragmentRequest, reads: Fragment, scans: (CachedScan | undefined)[], paths: string[], partialPath: string, tag: string, signal: AbortSignal, engine: Engine): Promise<{ rows: number; shuffle?: ShuffleIndex; stats: { gets: number; puts: number; bytesRead: number }; inlineBytes: number; columnStats?: Record<string, ColumnStats> }> {
    // `reads` is the fragment with only the files still read (not served by cached partitions).
    const fragment = reads;
    const conn = await engine.connect();
    const interrupt = () => conn.interrupt();
    signal.addEventListener('abort', interrupt, { once: true });
    const stats = { gets: 0, puts: 0, bytesRead: 0 };
    // Shuffle pieces that came inline in the request: read by the task, but not from the store.
    let inlineBytes = 0;
    const releases: (() => Promise<void>)[] = [];
    // Shuffle pieces are fetched into, and written from, the fragment's sandbox directory:
    // the one place this DuckDB may read and write.
    const shuffleDir = join(dirname(partialPath), 'shuffle', tag);
    try {
      // A later stage's task: its partition of each producing stage, as a view.
      for (const read of fragment.shuffleReads ?? []) {
        const got = await readShufflePartition({
          conn, store: this.shuffle, sources: read.sources.map(decodePartitionSource),
          columns: read.columns, viewName: read.view, scratchDir: join(shuffleDir, 'in'), signal,
        });
        releases.push(got.release);
        stats.gets += got.gets;
        stats.bytesRead += got.bytesRead;
        inlineBytes += got.inlineBytes;
      }
      // `paths` follows the order the URIs were acquired in: every input's data files, then
      // the Iceberg delete files.
      const local = new Map<string, string>();
      let next = 0;
      for (const input of fragment.inputs) for (const f of input.files) local.set(f.uri, paths[next++]);
      for (const d of icebergDeleteFiles(fragment)) local.set(d.uri, paths[next++]);
      const localPath = (uri: string): string => {
        const path = local.get(uri);
        if (path === undefined) throw new PuffinError('internal', `fragment ${fragment.id}: ${uri} was not fetched`);
        return path;
      };
      // Iceberg data files' footers (field ids or not, cached by URI) decide id or name reads.
      const icebergFiles = fragment.inputs.flatMap((input) => (input.iceberg ? input.files.filter((f) => f.iceberg?.format === 'parquet').map((f) => ({ uri: f.uri, localPath: localPath(f.uri) })) : []));
      const footers = icebergFiles.length ? await describeParquetFiles(conn, icebergFiles) : new Map();
      for (const [i, input] of fragment.inputs.entries()) {
        const scan = scans[i];
        if (scan) await this.cachedInputView(conn, input, scan, i, localPath, (uri) => footers.get(uri), join(dirname(partialPath), 'partitions'));
        else await runQuery(conn, inputViewSql(input, localPath, (uri) => footers.get(uri)));
      }
      if (fragment.write) return { rows: await this.writeRows(conn, fragment, partialPath, signal), stats, inlineBytes };
      if (fragment.shuffleWrite) {
        const written = await writeShuffle({
          conn, store: this.shuffle, sourceSql: fragment.sql, partitioning: fragment.shuffleWrite.partitioning,
          queryId: request.queryId, stageId: fragment.shuffleWrite.stage, taskId: fragment.id, scratchDir: join(shuffleDir, 'out'),
          inlineLimitBytes: Math.min(request.inlineLimitBytes ?? this.settings.inlineLimitBytes, DEFAULT_SHUFFLE_INLINE_LIMIT), signal,
        });
        stats.puts += written.puts;
        return { rows: written.index.totalRows, shuffle: written.index, stats, inlineBytes };
      }
      const copied = await runQuery(conn, await fragmentCopySql(conn, fragment.sql, partialPath));
      const rows = Number(copied.rows[0]?.[0] ?? 0);
      if (!fragment.store) return { rows, stats, inlineBytes };
      return { rows, stats, inlineBytes, columnStats: await integerColumnStats(conn, partialPath) };
    } catch (err) {
      throw signal.aborted ? signal.reason : toPuffinError(err);
    } finally {
      signal.removeEventListener('abort', interrupt);
      conn.closeSync();
      for (const release of releases) await release().catch(() => undefined);
      await rm(shuffleDir, { recursive: true, force: true });
    }
  }

  /**
   * A write fragment: its rows become data files of the Iceberg table (staged in the cache
   * directory, the only place DuckDB may write, then uploaded), and its partial lists them,
   * one JSON description per row, for the coordinator's single commit.
   */
  private async writeRows(conn: DuckDBConnection, fragment: Fragment, partialPath: string, signal: AbortSignal): Promise<number> {
    const target = fragment.write!;
    const stagingDir = join(dirname(partialPath), 'staging');
    // COPY ... TO (runtime/exec/copy-to.ts): the rows become files under the export location.
    const exported = exportTargetOf(target);
    if (exported) {
      const written = await writeExport({ conn, sql: fragment.sql, target: exported, stagingDir, writer: fragment.id, storeOptions: storeOptionsOf(this.settings), signal });
      await writeFileList(conn, written.map((f) => JSON.stringify(f)), partialPath);
      return written.reduce((n, f) => n + f.rows, 0);
    }
    const io = uriTableIO(storeOptionsOf(this.settings));
    const table = await openIcebergTable(target.metadataLocation, { io });
    // Setup statements (a MERGE's temporary table and DuckDB's MERGE into it): their answers go back with the files.
    const answers: string[] = [];
    for (const [i, statement] of (target.setup ?? []).entries()) answers.push(JSON.stringify({ setup: i, rows: (await runQuery(conn, statement)).rows }));
    const written = await writeDataFiles({
      conn, table: target.table, metadata: table.metadata, selectSql: fragment.sql, stagingDir, io, lineage: target.lineage === true,
    });
    await writeFileList(conn, [...written.files.map((f) => JSON.stringify(dataFileToJson(f))), ...answers], partialPath);
    return written.rows;
  }

  /** Small partials travel in the response; large ones through the shuffle prefix. */
  private async deliver(request: FragmentRequest, bytes: Buffer, signal: AbortSignal): Promise<PartialLocation> {
    const limit = request.inlineLimitBytes ?? this.settings.inlineLimitBytes;
    // A file of a materialized result is read later as a table's file: it is always stored.
    if (bytes.byteLength <= limit && !request.fragment.store) return { kind: 'inline', parquetBase64: bytes.toString('base64') };
    const key = `${request.queryId}/${request.fragment.id}-${randomUUID()}.parquet`;
    try {
      await this.shuffle.put(key, bytes);
    } catch (err) {
      throw toPuffinError(err);
    }
    if (signal.aborted) {
      // Nobody will collect this partial any more; do not leave it behind.
      await this.shuffle.delete(key).catch(() => {});
      throw signal.reason;
    }
    return { kind: 'stored', uri: joinUrl(this.settings.shuffleUrl, key) };
  }

  close(): void {
    const closed = new PuffinError('unavailable', 'the worker was closed');
    for (const waiter of this.waiting.splice(0)) waiter.reject(closed);
    for (const box of this.sandboxes) box.engine.close();
  }
}

/** Hard-link each file into `dir` (same file system as the cache); returns the links' paths. */
async function linkInto(dir: string, paths: readonly string[]): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  return Promise.all(paths.map(async (path, i) => {
    const target = join(dir, `${i}.${path.split('.').pop()?.replace(/[^a-z0-9]/gi, '') || 'dat'}`);
    await link(path, target);
    return target;
  }));
}

/** A write fragment's partial: one row per file written, column `file` its description as JSON. */
async function writeFileList(conn: DuckDBConnection, files: string[], partialPath: string): Promise<void> {
  const list = files.length ? `SELECT unnest(${sqlStringList(files)}) AS file` : 'SELECT CAST(NULL AS VARCHAR) AS file WHERE false';
  await runQuery(conn, `COPY (${list}) TO ${sqlString(partialPath)} (FORMAT parquet)`);
}

/** The distinct delete files of a fragment's Iceberg inputs, in first-seen order. */
function icebergDeleteFiles(fragment: Fragment): { uri: string; sizeBytes: number }[] {
  const seen = new Map<string, { uri: string; sizeBytes: number }>();
  for (const input of fragment.inputs) {
    if (!input.iceberg) continue;
    for (const f of input.files) for (const d of f.iceberg?.deletes ?? []) if (d.inlineBlob === undefined && !seen.has(d.uri)) seen.set(d.uri, { uri: d.uri, sizeBytes: d.sizeBytes });
  }
  return [...seen.values()];
}

/** A local source file's identity for the partition cache's key; none for remote objects (written once). */
async function localStamp(uri: string): Promise<LocalStamp | undefined> {
  if (!/^file:/i.test(uri)) return undefined;
  try {
    const info = await stat(fileUriToPath(uri));
    return { ino: info.ino, size: info.size, mtimeMs: info.mtimeMs };
  } catch {
    return undefined;
  }
}

/** Object store options taken from the settings (S3 endpoint override, region). */
export function storeOptionsOf(settings: Settings): StoreOptions {
  return { s3Endpoint: settings.s3Endpoint, region: settings.region, locations: locationPolicyOf(settings) };
}

function timeoutError(request: FragmentRequest): PuffinError {
  return new PuffinError('timeout', `fragment ${request.fragment.id} of query ${request.queryId} passed its deadline`, {
    fragmentId: request.fragment.id,
  });
}

function cancelError(request: FragmentRequest, reason: unknown): PuffinError {
  if (reason instanceof PuffinError) return reason;
  return new PuffinError('timeout', `fragment ${request.fragment.id} of query ${request.queryId} was cancelled`, {
    fragmentId: request.fragment.id,
  });
}

/**
 * The integer columns' lowest and highest values and NULL counts of a Parquet file the
 * fragment just wrote (a file of a materialized result), exact, from one scan of those
 * columns. Other types are left out: they need no range for the planner's estimates.
 */
async function integerColumnStats(conn: DuckDBConnection, path: string): Promise<Record<string, ColumnStats>> {
  const described = await runQuery(conn, `DESCRIBE SELECT * FROM read_parquet(${sqlString(path)})`);
  const names = described.rows.filter((r) => isIntegerType(String(r[1]))).map((r) => String(r[0]));
  if (!names.length) return {};
  const parts = names.flatMap((n) => [`min(${sqlIdent(n)})::VARCHAR`, `max(${sqlIdent(n)})::VARCHAR`, `count(*) - count(${sqlIdent(n)})`]);
  const row = (await runQuery(conn, `SELECT ${parts.join(', ')} FROM read_parquet(${sqlString(path)})`)).rows[0] ?? [];
  const out: Record<string, ColumnStats> = {};
  names.forEach((n, i) => {
    const [min, max, nulls] = [row[3 * i], row[3 * i + 1], row[3 * i + 2]];
    out[n] = { min: min === null || min === undefined ? null : String(min), max: max === null || max === undefined ? null : String(max), nulls: Number(nulls ?? 0) };
  });
  return out;
}
