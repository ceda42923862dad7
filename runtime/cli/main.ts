// The `puffindb` command: one adapter over the same core the HTTP API and the Lambdas use.
// It works from a warehouse directory (PUFFINDB_HOME, default ./.puffindb).

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileUriToPath } from '../storage/locations.ts';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { toCsv, toJsonRows, toTextTable } from '../results/text.ts';
import { PuffinError, toPuffinError } from '../errors.ts';
import { cleanLeftovers, registerProcess } from '../exec/leftovers.ts';
import type { Plan } from '../planner/plan.ts';
import { formatPlan as formatStages } from '../planner/explain.ts';
import { loadSettings, type Settings } from '../settings.ts';
import { openWarehouse, type Warehouse, type WarehouseOptions } from './warehouse.ts';
import { isTableCommand, runTableCommand, TABLE_COMMANDS_HELP } from './table-commands.ts';
import { duckdbText, FRONTEND_HELP, FRONTEND_OPTIONS, needsCatalog, runTranslate, warehouseTables } from './frontend-commands.ts';
import { runShell } from './shell.ts';
import { GENERATOR_HELP, runGeneratorCommand } from './generator-commands.ts';
import { namesTaken, REMOTE_HELP, runRemoteCommand } from './remote-commands.ts';
import { CATALOG_HELP, runCatalogCommand } from './catalog-commands.ts';
import { PIPELINE_HELP, runPipelineCommand } from './pipeline-commands.ts';
import { openGeneratorRegistry } from '../state/generator-file.ts';
import { download, downloadFormat, downloadSql } from './download.ts';
import { formatBytes, formatDemoProgress, progressLine, queryProgressHooks } from './progress.ts';

const HELP = `puffindb: distributed DuckDB over a lakehouse

Usage:
  puffindb demo [--scale SF]                 write a TPC-H-shaped data set and register its tables
  puffindb table list                        list tables with files, rows and bytes
  puffindb table drop NAME                   forget a table (its files stay)
${TABLE_COMMANDS_HELP}
  puffindb query [--format table|json|csv] [--workers N] [--fragments N] [--lang prql|malloy] [--dialect D] "SQL"
${FRONTEND_HELP}
  puffindb download "SQL"|TABLE --to FILE [--format parquet|csv|arrow|json] [--url URL [--key-env VAR]] [--part-bytes N] [--parallel N]
                                             write a result of any size to FILE (format from its extension, else --format);
                                             with --url, run it on that server (key from \$VAR, else PUFFINDB_KEY or PUFFINDB_ADMIN_KEY)
                                             and fetch the stored Parquet in parallel byte ranges; the file appears whole or not at all
${GENERATOR_HELP}
${REMOTE_HELP}
${CATALOG_HELP}
${PIPELINE_HELP}
  puffindb shell                             an interactive SQL prompt (statements end with ';'; .help lists .tables, .schema,
                                             .explain, .timer, .quit); with stdin not a terminal, runs the statements it holds
  puffindb explain [--json] [--analyze] [--fragments N] [--partitions N] [--lang prql] [--dialect D] "SQL"   the stage tree; --analyze runs the query and shows actual rows, bytes and time per stage
                                             print the distributed plan: shape, fragments, files kept and pruned
  puffindb serve [--port N] [--host H] [--pg-port N]
                                             serve the HTTP API (GET /v1/health, POST /v1/query, ...; bearer API keys),
                                             and with --pg-port (or PUFFINDB_PG_PORT) the PostgreSQL wire protocol
                                             and the Iceberg REST catalog at /iceberg (GET /iceberg/v1/config, ...)
  puffindb start [--port N] [--scale SF]     demo data on first run, then serve (what \`npm start\` runs)

Environment: PUFFINDB_HOME (default ./.puffindb), PUFFINDB_WORKERS, PUFFINDB_THREADS, PUFFINDB_MEMORY_LIMIT,\nPUFFINDB_ADMIN_KEY (first admin API key; generated and printed once when unset), REDIS_URL (state store), ...
`;

type Values = Record<string, string | boolean | undefined>;

function parse(args: string[], options: ParseArgsConfig['options']): { values: Values; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true });
    return { values: values as Values, positionals };
  } catch (err) {
    throw new PuffinError('bad_request', `${(err as Error).message}\n\n${HELP}`);
  }
}

function intOption(values: Values, name: string): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new PuffinError('bad_request', `--${name} must be a positive integer, got '${raw}'`);
  return n;
}

function scaleOption(values: Values, fallback: number): number {
  const raw = values.scale;
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0 || n > 100) throw new PuffinError('bad_request', `--scale must be a number in (0, 100], got '${raw}'`);
  return n;
}

function sqlArgument(positionals: string[], command: string): string {
  if (positionals.length !== 1) throw new PuffinError('bad_request', `${command} takes one SQL argument in quotes, e.g. puffindb ${command} "SELECT count(*) FROM lineitem"`);
  return positionals[0];
}

export function formatPlan(plan: Plan): string {
  return formatStages(plan);
}

async function withWarehouse<T>(settings: Settings, fn: (w: Warehouse) => Promise<T>, options: WarehouseOptions = {}): Promise<T> {
  const warehouse = await openWarehouse(settings, options);
  try {
    return await fn(warehouse);
  } finally {
    await warehouse.close();
  }
}

/** TPC-H's tables, as `writeDemo` writes them (one directory each, in this order). */
const DEMO_TABLES = 8;

async function demo(settings: Settings, scale: number, log: (s: string) => void): Promise<void> {
  await withWarehouse(settings, async (w) => {
    const started = Date.now();
    // Progress on a terminal: writeDemo has no hook, so the table directories it has started are
    // counted (all but the newest are written).
    const line = progressLine();
    const dir = settings.warehouse.startsWith('file://') ? join(fileUriToPath(settings.warehouse), 'demo', 'tpch') : undefined;
    const timer = process.stderr.isTTY && dir ? setInterval(() => {
      let begun = 0;
      try {
        begun = readdirSync(dir).length;
      } catch {
        // not created yet
      }
      line.update(formatDemoProgress(Math.max(0, begun - 1), DEMO_TABLES, Date.now() - started), true);
    }, 250) : undefined;
    let tables;
    try {
      tables = await w.writeDemo(scale);
    } finally {
      if (timer) clearInterval(timer);
      line.clear();
    }
    const rows = tables.reduce((s, t) => s + t.rows, 0);
    log(`wrote TPC-H scale ${scale}: ${tables.length} tables, ${rows} rows, in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    for (const t of tables) log(`  ${t.table.padEnd(9)} ${String(t.rows).padStart(9)} rows in ${t.files.length} file(s)`);
  });
}

/**
 * The curl line `serve` prints. The header is double-quoted so that a pasted
 * `$PUFFINDB_ADMIN_KEY` is expanded by the shell (single quotes sent the literal text: 401);
 * a generated key (`pdb_` and base64url) has nothing a shell expands inside double quotes.
 */
export function curlExample(url: string, key: string): string {
  return `curl -s ${url}/v1/query -H "authorization: Bearer ${key}" -H 'content-type: application/json' -d '{"sql": "SELECT l_returnflag, count(*) AS n FROM lineitem GROUP BY 1 ORDER BY 1"}'`;
}

async function serve(settings: Settings, values: Values, log: (s: string) => void): Promise<void> {
  // The server's modules (hono, the wire protocol, the control plane) load only for serve:
  // the other commands start without them.
  const [{ createApp }, { bootstrapAdminKey, resolveAdminKey, StateSeed }, { startServer }, { startPgServer }, { openControlPlane }] = await Promise.all([
    import('../api/app.ts'), import('../api/auth.ts'), import('../api/server.ts'), import('../pgwire/server.ts'), import('../exec/control-plane.ts'),
  ]);
  const port = intOption(values, 'port') ?? settings.port;
  const host = typeof values.host === 'string' ? values.host : '127.0.0.1';
  // Before anything of this process creates scratch: what a killed run left is removed now,
  // unless a live process sharing the home may own it (runtime/exec/leftovers.ts).
  registerProcess(settings.home, 'serve');
  const leftovers = cleanLeftovers(settings);
  if (leftovers.removed.length > 0) log(`removed ${leftovers.removed.length} leftover scratch entries (${leftovers.bytes} bytes) of an earlier run that ended without cleaning up`);
  const warehouse = await openWarehouse(settings);
  const plane = await openControlPlane({ settings, catalog: warehouse.catalog });
  const adminKey = await resolveAdminKey(settings);
  const { generated } = await bootstrapAdminKey(plane.state, adminKey);
  const app = createApp({ manager: plane.manager, state: plane.state, catalog: plane.catalog, settings, version: process.env.npm_package_version, iceberg: plane.iceberg, adminKey, workersHealth: () => plane.cluster.workersHealth(), generators: openGeneratorRegistry(settings, plane.state) });
  const server = await startServer(app, { port, host });
  // The PostgreSQL wire protocol (runtime/pgwire/), on the same host, over the same manager and keys.
  const pgPort = intOption(values, 'pg-port') ?? settings.pgPort;
  const pg = pgPort === undefined ? undefined : await startPgServer({ manager: plane.manager, state: plane.state, catalog: plane.catalog, settings, seed: new StateSeed(plane.state, adminKey), port: pgPort, host });
  plane.startLogFlushes();
  // Scheduled refreshes of materialized views (ALTER MATERIALIZED VIEW ... SET REFRESH EVERY), once a minute.
  plane.startPipelines();
  const state = settings.redisUrl ? `Redis state at ${settings.redisUrl.replace(/\/\/[^@/]*@/, '//')}` : 'in-memory state';
  if (pg) log(`PostgreSQL wire protocol on ${pg.host.includes(':') ? `[${pg.host}]` : pg.host}:${pg.port} (psql "host=${pg.host} port=${pg.port} user=puffindb dbname=puffindb", password: an API key)`);
  log(`PuffinDB is serving ${server.url} (warehouse ${settings.home}, ${settings.workers} worker processes, ${state})`);
  if (generated) {
    log(`admin API key (shown once; set PUFFINDB_ADMIN_KEY to choose your own): ${generated}`);
  } else if (!adminKey) {
    log('admin API keys already exist in the state store; use one of them (or set PUFFINDB_ADMIN_KEY)');
  }
  const key = generated ?? (settings.adminKey ? '$PUFFINDB_ADMIN_KEY' : '<your admin key>');
  log(`try:\n  ${curlExample(server.url, key)}\nor open the web console: ${server.url}/console/ (sign in with an API key)`);
  const stop = async () => {
    log('stopping');
    await server.close();
    await pg?.close();
    await plane.close();
    await warehouse.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

export async function main(argv: string[], out: (s: string) => void = (s) => process.stdout.write(`${s}\n`)): Promise<void> {
  const [command, ...rest] = argv;
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const settings = loadSettings();
  switch (command) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      out(HELP);
      return;
    case 'demo': {
      const { values } = parse(rest, { scale: { type: 'string' } });
      await demo(settings, scaleOption(values, 0.1), log);
      return;
    }
    case 'table': {
      const [sub, ...args] = rest;
      // add, register, scan, orphans and the maintenance commands live in table-commands.ts.
      if (isTableCommand(sub)) return runTableCommand(sub, args, settings, out);
      const { values, positionals } = parse(args, { json: { type: 'boolean' } });
      await withWarehouse(settings, async (w) => {
        if (sub === 'list') {
          const tables = await w.summaries();
          if (values.json) out(JSON.stringify(tables, null, 2));
          else if (tables.length === 0) out('no tables yet: run `puffindb demo` or `puffindb table add NAME PATH`');
          else for (const t of tables) out(`${t.name.padEnd(24)} ${String(t.fileCount).padStart(5)} files ${String(t.rowCount).padStart(12)} rows ${String(t.sizeBytes).padStart(14)} bytes`);
        } else if (sub === 'drop') {
          if (positionals.length !== 1) throw new PuffinError('bad_request', 'usage: puffindb table drop NAME');
          await w.catalog.dropTable(positionals[0]);
          out(`dropped table ${positionals[0]} (its files were not deleted)`);
        } else {
          throw new PuffinError('bad_request', `unknown table command '${sub ?? ''}'; use add, list, drop, register or scan`);
        }
      });
      return;
    }
    case 'query': {
      const { values, positionals } = parse(rest, { format: { type: 'string', default: 'table' }, workers: { type: 'string' }, fragments: { type: 'string' }, ...FRONTEND_OPTIONS });
      const text = sqlArgument(positionals, 'query');
      // Malloy compiles once the warehouse (its catalog) is open; the others before.
      let sql = needsCatalog(values) ? undefined : await duckdbText(text, values);
      const format = String(values.format);
      if (!['table', 'json', 'csv'].includes(format)) throw new PuffinError('bad_request', `--format must be table, json or csv, got '${format}'`);
      const workers = intOption(values, 'workers');
      const s = workers ? { ...settings, workers, maxFragments: workers } : settings;
      // Its scratch (write staging, partials) must not look like a dead run's to a server starting beside it.
      registerProcess(settings.home, 'query');
      await withWarehouse(s, async (w) => {
        sql ??= await duckdbText(text, values, await warehouseTables(w.catalog));
        // Through the warehouse, so the query is written to the query log like a server's.
        // On a terminal, stages, tasks done and bytes read on one line of stderr while it runs.
        const line = progressLine();
        const hooks = process.stderr.isTTY ? queryProgressHooks(line) : undefined;
        let result;
        try {
          result = await w.query(sql, { fragments: intOption(values, 'fragments'), role: 'admin', onPlan: hooks?.onPlan, onFragment: hooks?.onFragment });
        } finally {
          line.clear();
        }
        if (format === 'json') out(toJsonRows(result));
        else if (format === 'csv') process.stdout.write(toCsv(result));
        else {
          out(toTextTable(result));
          log(`${result.plan.shape}, ${result.stats.fragments} fragment(s), ${result.stats.bytesScanned} bytes scanned, ${result.stats.totalMs.toFixed(0)} ms`);
        }
        // One statement of this user's, then the process exits: its SQL runs in this process
        // (a deadline interrupts it between vectors) rather than in child processes it would
        // spend most of its time starting.
      }, { runners: 'in-process' });
      return;
    }
    case 'download': {
      const { values, positionals } = parse(rest, { to: { type: 'string' }, format: { type: 'string' }, url: { type: 'string' }, 'key-env': { type: 'string' }, 'part-bytes': { type: 'string' }, parallel: { type: 'string' } });
      if (positionals.length !== 1) throw new PuffinError('bad_request', 'download takes one SQL argument in quotes (or a table name), e.g. puffindb download "SELECT * FROM lineitem" --to lineitem.parquet');
      const to = typeof values.to === 'string' ? values.to : undefined;
      if (!to) throw new PuffinError('bad_request', 'download needs --to FILE, e.g. --to out.parquet');
      const format = downloadFormat(to, typeof values.format === 'string' ? values.format : undefined);
      const url = typeof values.url === 'string' ? values.url : undefined;
      let key: string | undefined;
      if (url) {
        const keyEnv = typeof values['key-env'] === 'string' ? values['key-env'] : undefined;
        key = keyEnv ? process.env[keyEnv] : (process.env.PUFFINDB_KEY ?? process.env.PUFFINDB_ADMIN_KEY);
        if (!key) throw new PuffinError('bad_request', keyEnv ? `--key-env ${keyEnv}: the environment variable ${keyEnv} is not set` : 'download --url needs an API key: set PUFFINDB_KEY (or PUFFINDB_ADMIN_KEY), or name the variable holding it with --key-env VAR');
      } else if (values['key-env'] !== undefined) {
        throw new PuffinError('bad_request', '--key-env goes with --url (a local download runs on this warehouse, as admin)');
      } else {
        registerProcess(settings.home, 'download');
      }
      const started = Date.now();
      const summary = await download({ sql: downloadSql(positionals[0]), to, format, url, key, settings, partBytes: intOption(values, 'part-bytes'), parallel: intOption(values, 'parallel'), progress: progressLine() });
      const rows = summary.rows === undefined ? '' : `${summary.rows} rows, `;
      const how = summary.ranges > 1 ? ` in ${summary.ranges} ranges` : '';
      log(`wrote ${summary.path} (${summary.format}, ${rows}${formatBytes(summary.bytes)}${how}) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      return;
    }
    case 'shell': {
      parse(rest, {});
      registerProcess(settings.home, 'shell');
      const interactive = Boolean(process.stdin.isTTY);
      const code = await runShell(settings, { input: process.stdin, terminal: process.stdout, interactive, out, err: log });
      if (code !== 0) process.exitCode = code;
      return;
    }
    case 'explain': {
      const { values, positionals } = parse(rest, { json: { type: 'boolean' }, analyze: { type: 'boolean' }, fragments: { type: 'string' }, partitions: { type: 'string' }, ...FRONTEND_OPTIONS });
      const text = sqlArgument(positionals, 'explain');
      let sql = needsCatalog(values) ? undefined : await duckdbText(text, values);
      await withWarehouse(settings, async (w) => {
        sql ??= await duckdbText(text, values, await warehouseTables(w.catalog));
        if (values.analyze) {
          // Runs the query, then shows each stage's actual rows, bytes and time beside the plan.
          const ran = await w.query(sql, { fragments: intOption(values, 'fragments'), partitions: intOption(values, 'partitions'), role: 'admin' });
          const figures = { stages: ran.stats.stages ?? [], singleNodeBytes: ran.stats.singleNodeBytes, duplicates: ran.stats.duplicates, duplicateWins: ran.stats.duplicateWins, reduce: { bytesIn: ran.stats.bytesShuffled, ms: Math.round(ran.stats.reduceMs), rows: ran.rows.length } };
          out(values.json ? JSON.stringify({ plan: ran.plan, stats: ran.stats }, null, 2) : formatStages(ran.plan, figures));
          return;
        }
        const plan = await w.planOnly(sql, intOption(values, 'fragments'));
        out(values.json ? JSON.stringify(plan, null, 2) : formatPlan(plan));
      }, { runners: 'in-process' });
      return;
    }
    case 'translate':
      await runTranslate(rest, out);
      return;
    case 'generator':
      await runGeneratorCommand(rest, settings, out);
      return;
    case 'remote':
      // A remote's name may not be a local namespace nor an external catalog: name.table would mean both.
      await runRemoteCommand(rest, settings, out, [(name) => withWarehouse(settings, async (w) => (await Promise.all(namesTaken(w.catalog).map((taken) => taken(name)))).find(Boolean))]);
      return;
    case 'catalog':
      await runCatalogCommand(rest, settings, out);
      return;
    case 'pipeline':
      await runPipelineCommand(rest, settings, (fn) => withWarehouse(settings, fn), out);
      return;
    case 'serve': {
      const { values } = parse(rest, { port: { type: 'string' }, host: { type: 'string' }, 'pg-port': { type: 'string' } });
      await serve(settings, values, log);
      return;
    }
    case 'start': {
      const { values } = parse(rest, { port: { type: 'string' }, host: { type: 'string' }, scale: { type: 'string' }, 'pg-port': { type: 'string' } });
      const hasTables = await withWarehouse(settings, async (w) => (await w.catalog.listTables()).length > 0);
      if (!hasTables) {
        log('first run: writing demo data (TPC-H shaped) ...');
        await demo(settings, scaleOption(values, 0.1), log);
      }
      await serve(settings, values, log);
      return;
    }
    default:
      throw new PuffinError('bad_request', `unknown command '${command}'\n\n${HELP}`);
  }
}

const isEntry = process.argv[1] && /puffindb(\.js)?$|cli[/\\]main\.ts$/.test(process.argv[1]);
if (isEntry) {
  main(process.argv.slice(2)).catch((err) => {
    const e = toPuffinError(err);
    process.stderr.write(`error (${e.code}): ${e.message}\n`);
    process.exit(e.code === 'internal' ? 2 : 1);
  });
}
