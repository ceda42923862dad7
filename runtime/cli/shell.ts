// `puffindb shell`: an interactive prompt over the embedded engine, like DuckDB's CLI. A
// statement runs when a line ends it with `;` (several may share a line, one may span
// many); dot commands (.tables, .schema, .explain, .timer, .help, .quit) are read at the
// start of a statement. Statements run as `puffindb query` runs them (the warehouse's
// cluster, role admin, written to the query log), with DESCRIBE, SHOW TABLES, SUMMARIZE and
// information_schema answered from the catalog (runtime/exec/catalog-statements.ts).
// History is kept in $PUFFINDB_HOME/.shell_history. With stdin not a terminal, the
// statements it holds run in order (`echo 'select 1;' | puffindb shell`), and the exit code
// is 1 when any of them failed.

import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { PuffinError, toPuffinError } from '../errors.ts';
import { CatalogStatements, type CatalogStatementRunner } from '../exec/catalog-statements.ts';
import type { QueryOutcome } from '../exec/query-service.ts';
import { formatPlan } from '../planner/explain.ts';
import type { Settings } from '../settings.ts';
import { lex, splitStatements } from '../sql/lexer.ts';
import { sqlIdent } from '../sql/quote.ts';
import { toTextTable } from '../results/text.ts';
import { openWarehouse, type Warehouse } from './warehouse.ts';

export interface ShellIo {
  input: Readable;
  /** Where the prompt and readline's echo go in interactive mode. */
  terminal: Writable;
  interactive: boolean;
  out: (s: string) => void;
  err: (s: string) => void;
}

const HELP = `.tables              list the tables
.schema [NAME]       the CREATE TABLE of a table (of every table without NAME)
.explain SQL         the distributed plan of a statement, without running it
.timer on|off        print each statement's run time
.help                this text
.quit                leave (also .exit, or Ctrl-D)
Statements end with ';' and may span lines. DESCRIBE t, SHOW TABLES, SUMMARIZE t and
information_schema queries are answered from the catalog.`;

const PROMPT = 'puffindb> ';
const CONTINUE = '     ...> ';
const HISTORY_SIZE = 1000;

/** The complete statements at the start of `buffer`, and what is left after them (an unfinished statement). */
export function completeStatements(buffer: string): { statements: string[]; rest: string } {
  let tokens;
  try {
    tokens = lex(buffer).tokens;
  } catch {
    return { statements: [], rest: buffer }; // an open quote or comment: the statement goes on
  }
  let lastSemicolon = -1;
  for (let i = tokens.length - 1; i >= 0; i--) {
    if (tokens[i].kind === 'semicolon') {
      lastSemicolon = i;
      break;
    }
  }
  if (lastSemicolon < 0) return { statements: [], rest: buffer };
  const end = tokens[lastSemicolon].end;
  const statements = splitStatements(tokens.slice(0, lastSemicolon + 1)).map((s) => buffer.slice(s[0].start, s[s.length - 1].end));
  return { statements, rest: buffer.slice(end) };
}

function hasTokens(text: string): boolean {
  try {
    return lex(text).tokens.length > 0;
  } catch {
    return true; // an open quote or comment: the statement's error is worth showing
  }
}

/** An identifier as DuckDB's .schema prints it: bare when it can be. */
function ident(name: string): string {
  return /^[a-z_][a-z0-9_]*$/.test(name) ? name : sqlIdent(name);
}

export async function runShell(settings: Settings, io: ShellIo): Promise<number> {
  const warehouse = await openWarehouse(settings);
  const shell = new Shell(warehouse, io);
  try {
    return await shell.run(settings);
  } finally {
    await shell.close();
    await warehouse.close();
  }
}

class Shell {
  private timer = false;
  /** The statement running now, cancelled by Ctrl-C. */
  private running?: AbortController;
  private failures = 0;
  private statements?: CatalogStatements;
  private readonly runner: CatalogStatementRunner;

  constructor(
    private readonly w: Warehouse,
    private readonly io: ShellIo,
  ) {
    this.runner = {
      query: (statement, options) => this.w.query(statement, options),
      explain: async (statement, options) => (await this.w.cluster()).explain(statement, options),
    };
  }

  async run(settings: Settings): Promise<number> {
    const { io } = this;
    const historyFile = join(settings.home, '.shell_history');
    const history = io.interactive && existsSync(historyFile) ? readFileSync(historyFile, 'utf8').split('\n').filter(Boolean).slice(-HISTORY_SIZE).reverse() : [];
    const rl = createInterface({ input: io.input, output: io.interactive ? io.terminal : undefined, terminal: io.interactive, history, historySize: HISTORY_SIZE, removeHistoryDuplicates: true, prompt: PROMPT });
    const remember = (entry: string) => {
      if (!io.interactive) return;
      try {
        appendFileSync(historyFile, `${entry.replace(/\n/g, ' ')}\n`);
      } catch {
        // a history that cannot be written is no reason to stop
      }
    };
    let buffer = '';
    if (io.interactive) {
      io.out('PuffinDB shell: statements end with ";", .help for commands, .quit to leave');
      rl.on('SIGINT', () => {
        // Ctrl-C cancels the running statement, or else drops the unfinished one.
        if (this.running) {
          this.running.abort(new PuffinError('conflict', 'cancelled (Ctrl-C)'));
          return;
        }
        buffer = '';
        io.terminal.write('\n');
        rl.setPrompt(PROMPT);
        rl.prompt();
      });
      rl.prompt();
    }
    let quit = false;
    for await (const line of rl) {
      if (buffer.trim() === '' && line.trim().startsWith('.')) {
        remember(line.trim());
        buffer = '';
        quit = await this.dot(line.trim());
        if (quit) break;
      } else {
        buffer = buffer ? `${buffer}\n${line}` : line;
        const { statements, rest } = completeStatements(buffer);
        if (statements.length) remember(buffer.slice(0, buffer.length - rest.length).trim());
        // Only whitespace or comments left: the next line starts a statement (or a dot command).
        buffer = hasTokens(rest) ? rest : '';
        for (const sql of statements) await this.statement(sql);
      }
      if (io.interactive) {
        rl.setPrompt(buffer ? CONTINUE : PROMPT);
        rl.prompt();
      }
    }
    // What stdin held after its last ';' runs too, as a statement of its own (unless it is only comments).
    if (!quit && hasTokens(buffer)) await this.statement(buffer.trim());
    rl.close();
    return this.failures > 0 && !io.interactive ? 1 : 0;
  }

  async close(): Promise<void> {
    this.statements?.close();
  }

  private async catalogStatements(): Promise<CatalogStatements> {
    // The cluster's catalog: the one its queries see (puffindb.query_log included).
    this.statements ??= new CatalogStatements((await this.w.cluster()).catalog);
    return this.statements;
  }

  private fail(err: unknown): void {
    const e = toPuffinError(err);
    this.failures++;
    this.io.err(`error (${e.code}): ${e.message}`);
  }

  private async statement(sql: string): Promise<void> {
    const started = performance.now();
    const controller = new AbortController();
    this.running = controller;
    try {
      // The cluster answers catalog statements (DESCRIBE, SHOW, ...) itself, and the warehouse logs every statement.
      const outcome: QueryOutcome = await this.w.query(sql, { role: 'admin', signal: controller.signal });
      this.io.out(toTextTable(outcome));
    } catch (err) {
      this.fail(controller.signal.aborted ? controller.signal.reason : err);
    } finally {
      this.running = undefined;
    }
    if (this.timer) this.io.out(`Run Time (s): real ${((performance.now() - started) / 1000).toFixed(3)}`);
  }

  /** A dot command; true when it asks to leave. */
  private async dot(line: string): Promise<boolean> {
    const [command, ...args] = line.split(/\s+/);
    const rest = line.slice(command.length).trim();
    try {
      switch (command) {
        case '.quit':
        case '.exit':
          return true;
        case '.help':
          this.io.out(HELP);
          return false;
        case '.timer':
          if (args[0] !== 'on' && args[0] !== 'off') throw new PuffinError('bad_request', 'usage: .timer on|off');
          this.timer = args[0] === 'on';
          return false;
        case '.tables': {
          const names = await (await this.w.cluster()).catalog.listTables();
          this.io.out(names.length ? names.join('\n') : 'no tables yet: run `puffindb demo` or `puffindb table add NAME PATH`');
          return false;
        }
        case '.schema': {
          const catalog = (await this.w.cluster()).catalog;
          const names = rest ? [rest] : await catalog.listTables();
          for (const name of names) {
            const table = await catalog.getTable(name);
            if (!table) throw new PuffinError('unknown_table', `unknown table '${name}'; known tables: ${(await catalog.listTables()).join(', ')}`, { table: name });
            const columns = table.columns.map((c) => `${ident(c.name)} ${c.type}`).join(', ');
            this.io.out(`CREATE TABLE ${name.split('.').map(ident).join('.')}(${columns});`);
          }
          return false;
        }
        case '.explain': {
          if (!rest) throw new PuffinError('bad_request', 'usage: .explain SQL');
          const sql = rest.replace(/;\s*$/, '');
          const cs = await this.catalogStatements();
          const statement = await cs.classify(sql);
          const plan = (await cs.explain(statement, { role: 'admin' }, this.runner)) ?? (await this.w.planOnly(sql));
          this.io.out(formatPlan(plan));
          return false;
        }
        default:
          throw new PuffinError('bad_request', `unknown command '${command}'; .help lists the commands`);
      }
    } catch (err) {
      this.fail(err);
      return false;
    }
  }
}
