// One client connection speaking the PostgreSQL protocol v3: startup (SSLRequest, TLS,
// CancelRequest), authentication (runtime/pgwire/auth.ts), then the simple and extended
// query protocols. Every statement goes the way an HTTP query goes: classified once
// (runtime/sql/classify.ts), authorized by the key's role, then run by the QueryManager
// (query log, deadline, result cache), except session statements (SET, BEGIN, SHOW
// server_version, ...) answered here and metadata queries answered by the catalog mirror
// (runtime/pgwire/catalog.ts). A simple Query holding several statements is split with the
// classifier's lexer; every statement is classified and authorized before the first runs,
// so one a key may not run refuses the whole message and nothing runs.
//
// A session may write its statements in another SQL dialect or in PRQL: `SET
// puffindb.dialect = 'snowflake'`, `SET puffindb.language = 'prql'` (RESET and SHOW too).
// Session statements are recognized first and never translated; metadata queries BI tools
// send (PostgreSQL SQL over pg_catalog) still go to the mirror as sent; every other statement
// is turned into DuckDB SQL by the HTTP API's front ends (runtime/sql/frontends.ts) and only
// then classified and authorized, so a reader's translated write is refused like the write.
// The query record keeps the text sent beside the SQL that ran. Malloy is not taken here.

import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { timingSafeEqual } from 'node:crypto';
import type { QueryResult } from '../engine/engine.ts';
import { PuffinError, toPuffinError } from '../errors.ts';
import type { QueryManager } from '../exec/query-manager.ts';
import { unsupportedStatement, type ClassifiedStatement } from '../sql/classify.ts';
import { lex, splitStatements } from '../sql/lexer.ts';
import { refuseUnsafeCalls } from '../planner/scope.ts';
import { hasRole, type Principal } from '../api/auth.ts';
import type { RateLimiter } from '../api/rate-limit.ts';
import {
  BodyReader, CANCEL_REQUEST, GSSENC_REQUEST, MessageReader, PROTOCOL_3, ProtocolError, SSL_REQUEST,
  authOk, backendKeyData, bindComplete, closeComplete, commandComplete, dataRow, emptyQuery, errorResponse, noData,
  parameterDescription, parameterStatus, parseComplete, portalSuspended, readyForQuery, rowDescription,
  type FieldDescription, type FrontendMessage,
} from './codec.ts';
import { PgAuthenticator } from './auth.ts';
import { DEFAULT_FRONT_END, isCatalogQuery, rewriteCatalogSql, SESSION_PARAMETERS, sessionStatement, type CatalogMirror, type FrontEndSettings, type SessionAnswer } from './catalog.ts';
import { toDuckdbSql, type QuerySource } from '../sql/frontends.ts';
import type { Token } from '../sql/lexer.ts';
import { parameterCount, substitute, type BoundValue } from './params.ts';
import { PROTOCOL_VIOLATION, QUERY_CANCELED, sqlstateOf } from './sqlstate.ts';
import { binaryCapable, binaryValue, OID, oidOfDuckType, textValue, typeSize } from './types.ts';

export interface SessionContext {
  manager: QueryManager;
  mirror: CatalogMirror;
  auth: PgAuthenticator;
  limiter: RateLimiter;
  tls?: SecureContext;
  maxMessageBytes: number;
  /** Startup and authentication must be done within this. */
  startupTimeoutMs: number;
  /** A message begun but not completed within this closes the connection (slowloris). */
  stallTimeoutMs: number;
  /** Most prepared statements and portals a session keeps. */
  maxPrepared: number;
  /** Sessions by backend pid, for CancelRequest. */
  sessions: Map<number, Session>;
  newBackendKey(): { pid: number; secret: number };
  onError(err: unknown, context: string): void;
}

/** What one statement is, decided before anything runs. */
type Prepared =
  | { kind: 'empty' }
  | { kind: 'session'; answer: SessionAnswer }
  | { kind: 'catalog'; sql: string }
  | { kind: 'query'; statement: ClassifiedStatement; source?: QuerySource };

interface Outcome {
  tag: string;
  result?: QueryResult;
}

interface PreparedStatement {
  sql: string;
  oids: number[];
}

interface Portal {
  sql: string;
  resultFormats: number[];
  outcome?: Outcome;
  offset: number;
}

const TRANSACTION_ABORTED = '25P02';

export class Session {
  private sock: Socket;
  private readonly reader: MessageReader;
  private phase: 'startup' | 'auth' | 'ready' | 'closed' = 'startup';
  private principal?: Principal;
  private user = '';
  private readonly key: { pid: number; secret: number };
  private txn: 'I' | 'T' | 'E' = 'I';
  private wroteInTxn = false;
  private skipUntilSync = false;
  private readonly statements = new Map<string, PreparedStatement>();
  private readonly portals = new Map<string, Portal>();
  private running?: AbortController;
  private cancelRequested = false;
  private busy = false;
  private startupTimer?: NodeJS.Timeout;
  private stallTimer?: NodeJS.Timeout;
  private tlsDone = false;
  /** What this session's statements are written in (SET puffindb.language / puffindb.dialect). */
  private frontEnd: FrontEndSettings = DEFAULT_FRONT_END;

  constructor(socket: Socket, private readonly ctx: SessionContext) {
    this.sock = socket;
    this.reader = new MessageReader(ctx.maxMessageBytes);
    this.key = ctx.newBackendKey();
    this.attach(socket);
    this.startupTimer = setTimeout(() => this.fatal('08006', `startup and authentication did not finish within ${ctx.startupTimeoutMs} ms`), ctx.startupTimeoutMs);
    this.startupTimer.unref();
  }

  private readonly onChunk = (chunk: Buffer): void => this.onData(chunk);
  private readonly onGone = (): void => this.close();

  private attach(socket: Socket): void {
    socket.on('data', this.onChunk);
    socket.on('error', this.onGone);
    socket.on('close', this.onGone);
  }

  get pid(): number {
    return this.key.pid;
  }

  /** CancelRequest with this session's pid: the secret must match. */
  cancelWith(secret: number): void {
    const a = Buffer.alloc(4);
    const b = Buffer.alloc(4);
    a.writeInt32BE(secret | 0);
    b.writeInt32BE(this.key.secret | 0);
    if (!timingSafeEqual(a, b)) return;
    if (this.running) {
      this.cancelRequested = true;
      this.running.abort(new PuffinError('conflict', 'canceling statement due to user request'));
    }
  }

  private write(b: Buffer): void {
    if (this.phase !== 'closed' && !this.sock.destroyed) this.sock.write(b);
  }

  private async drain(): Promise<void> {
    if (!this.sock.writableNeedDrain || this.sock.destroyed) return;
    await new Promise<void>((done) => {
      const finish = () => {
        this.sock.off('drain', finish);
        this.sock.off('close', finish);
        done();
      };
      this.sock.on('drain', finish);
      this.sock.on('close', finish);
    });
  }

  private sendError(err: unknown, severity: 'ERROR' | 'FATAL' = 'ERROR'): void {
    const e = toPuffinError(err);
    const canceled = this.cancelRequested && (e.code === 'conflict' || e.code === 'timeout');
    const position = typeof e.details?.position === 'number' ? e.details.position + 1 : undefined;
    this.write(errorResponse({
      severity,
      code: canceled ? QUERY_CANCELED : sqlstateOf(e),
      message: canceled ? 'canceling statement due to user request' : e.message,
      position,
    }));
    if (e.code === 'internal') this.ctx.onError(err, 'pgwire statement');
  }

  private fatal(code: string, message: string): void {
    if (this.phase === 'closed') return;
    this.write(errorResponse({ severity: 'FATAL', code, message }));
    this.sock.end();
    this.close();
  }

  close(): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    clearTimeout(this.startupTimer);
    clearTimeout(this.stallTimer);
    this.running?.abort(new PuffinError('conflict', 'the client went away'));
    this.ctx.sessions.delete(this.key.pid);
    if (!this.sock.destroyed) this.sock.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.phase === 'closed') return;
    this.reader.push(chunk);
    if (this.busy) {
      // Messages wait in the buffer while one runs; a client that keeps sending meanwhile is paused.
      if (this.reader.pending > this.ctx.maxMessageBytes) this.sock.pause();
      return;
    }
    void this.pump();
  }

  private async pump(): Promise<void> {
    this.busy = true;
    try {
      for (let msg = this.nextMessage(); msg && this.phase !== 'closed'; msg = this.nextMessage()) {
        await this.handle(msg);
      }
    } catch (err) {
      if (err instanceof ProtocolError) this.fatal(PROTOCOL_VIOLATION, err.message);
      else {
        this.ctx.onError(err, 'pgwire session');
        this.fatal('XX000', toPuffinError(err).message);
      }
    } finally {
      this.busy = false;
    }
    if (this.phase === 'closed') return;
    if (this.sock.isPaused()) this.sock.resume();
    this.watchStall();
  }

  private nextMessage(): FrontendMessage | undefined {
    const m = this.reader.next();
    if (m) {
      clearTimeout(this.stallTimer);
      this.stallTimer = undefined;
    }
    return m;
  }

  /** A message begun and not finished in time: the client is stalling (slowloris). */
  private watchStall(): void {
    if (this.reader.pending === 0 || this.stallTimer) return;
    this.stallTimer = setTimeout(() => this.fatal(PROTOCOL_VIOLATION, `a message was not completed within ${this.ctx.stallTimeoutMs} ms`), this.ctx.stallTimeoutMs);
    this.stallTimer.unref();
  }

  private async handle(msg: FrontendMessage): Promise<void> {
    if (this.phase === 'startup') return this.startup(msg.body);
    if (this.phase === 'auth') return this.authStep(msg);
    if (this.skipUntilSync && msg.type !== 'S' && msg.type !== 'X') return;
    switch (msg.type) {
      case 'Q': return this.simpleQuery(new BodyReader(msg.body).cstring());
      case 'P': return this.extended(() => this.parse(new BodyReader(msg.body)));
      case 'B': return this.extended(() => this.bind(new BodyReader(msg.body)));
      case 'D': return this.extended(() => this.describe(new BodyReader(msg.body)));
      case 'E': return this.extended(() => this.execute(new BodyReader(msg.body)));
      case 'C': return this.extended(() => this.closeTarget(new BodyReader(msg.body)));
      case 'S':
        this.skipUntilSync = false;
        this.portals.clear();
        this.write(readyForQuery(this.txn));
        return;
      case 'H':
        return;
      case 'X':
        this.sock.end();
        this.close();
        return;
      case 'd': case 'c': case 'f':
        return this.extended(async () => {
          throw new PuffinError('unsupported', 'COPY is not supported over the wire protocol');
        });
      default:
        throw new ProtocolError(`unexpected message type ${JSON.stringify(msg.type)}`);
    }
  }

  // -- startup and authentication

  private async startup(body: Buffer): Promise<void> {
    const r = new BodyReader(body);
    const code = r.int32();
    if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
      if (code === SSL_REQUEST && this.ctx.tls && !this.tlsDone) {
        if (this.reader.pending > 0) throw new ProtocolError('data sent after SSLRequest before the TLS handshake');
        this.write(Buffer.from('S'));
        this.upgrade(this.ctx.tls);
      } else this.write(Buffer.from('N'));
      return;
    }
    if (code === CANCEL_REQUEST) {
      const pid = r.int32();
      const secret = r.int32();
      this.ctx.sessions.get(pid)?.cancelWith(secret);
      this.sock.end();
      this.close();
      return;
    }
    if (code !== PROTOCOL_3) {
      this.fatal('0A000', `unsupported frontend protocol ${code >>> 16}.${code & 0xffff}: this server speaks 3.0`);
      return;
    }
    const params = new Map<string, string>();
    for (let i = 0; i < 64 && r.remaining > 1; i++) {
      const name = r.cstring();
      if (name === '') break;
      params.set(name, r.cstring());
    }
    this.user = params.get('user') ?? '';
    if (!this.user) {
      this.fatal('28000', 'no PostgreSQL user name specified in startup packet');
      return;
    }
    this.reader.startup = false;
    this.phase = 'auth';
    this.write(this.ctx.auth.begin(this.tlsDone));
  }

  private upgrade(context: SecureContext): void {
    const plain = this.sock;
    // Only this session's own listeners: the server's (connection count) stay on the plain socket.
    plain.off('data', this.onChunk);
    plain.off('error', this.onGone);
    plain.off('close', this.onGone);
    const secure = new TLSSocket(plain, { isServer: true, secureContext: context });
    this.sock = secure;
    this.tlsDone = true;
    this.attach(secure);
  }

  private authExchange?: ReturnType<PgAuthenticator['exchange']>;

  private async authStep(msg: FrontendMessage): Promise<void> {
    if (msg.type !== 'p') throw new ProtocolError(`expected a password message, got ${JSON.stringify(msg.type)}`);
    this.authExchange ??= this.ctx.auth.exchange(this.tlsDone, this.sock.remoteAddress);
    let step;
    try {
      step = await this.authExchange.step(msg.body);
    } catch (err) {
      const e = toPuffinError(err);
      this.fatal(e.code === 'rate_limited' ? '53400' : e.code === 'unauthorized' ? '28P01' : sqlstateOf(e), e.code === 'unauthorized' ? `password authentication failed for user "${this.user}": ${e.message}` : e.message);
      return;
    }
    if (step.reply) this.write(step.reply);
    if (!step.principal) return;
    this.principal = step.principal;
    this.phase = 'ready';
    clearTimeout(this.startupTimer);
    this.ctx.sessions.set(this.key.pid, this);
    this.write(authOk());
    for (const [k, v] of Object.entries(SESSION_PARAMETERS)) this.write(parameterStatus(k, v));
    this.write(parameterStatus('session_authorization', this.user));
    this.write(parameterStatus('application_name', ''));
    this.write(backendKeyData(this.key.pid, this.key.secret));
    this.write(readyForQuery('I'));
  }

  // -- statements

  private who(): Principal {
    if (!this.principal) throw new PuffinError('unauthorized', 'not authenticated');
    return this.principal;
  }

  /**
   * Classify, route and authorize one statement; nothing runs. `frontEnd` is what the
   * statement is written in: the session's, or that left by a SET earlier in the same message.
   */
  private async prepare(sql: string, frontEnd: FrontEndSettings = this.frontEnd): Promise<Prepared> {
    const translated = isTranslated(frontEnd);
    let tokens: Token[] | undefined;
    try {
      tokens = lex(sql).tokens;
    } catch (err) {
      // PRQL's `#` comments and other dialects' strings need not lex as DuckDB SQL: their own compiler judges them.
      if (!translated) throw err;
    }
    if (tokens) {
      if (tokens.length === 0 || tokens.every((t) => t.kind === 'semicolon')) return { kind: 'empty' };
      const answer = sessionStatement(tokens, frontEnd);
      if (answer) return { kind: 'session', answer };
    } else if (sql.trim() === '') return { kind: 'empty' };
    if (this.txn === 'E') throw new PuffinError('bad_request', 'current transaction is aborted, commands ignored until end of transaction block', { sqlstate: TRANSACTION_ABORTED });
    if (tokens && isCatalogQuery(tokens, await this.ctx.mirror.tableNames())) {
      // BI tools' metadata queries are PostgreSQL SQL whatever the session's dialect: the mirror answers them as sent.
      try {
        const catalog = await this.catalogStatement(sql, frontEnd);
        if (catalog) return catalog;
      } catch (err) {
        if (!translated) throw err;
      }
    }
    let source: QuerySource | undefined;
    let duckdb = sql;
    if (translated) {
      // psql sends a statement with its closing ';', which is no part of a PRQL pipeline.
      const text = frontEnd.language === 'prql' ? sql.replace(/[\s;]+$/, '') : sql;
      const front = await toDuckdbSql({ text, language: frontEnd.language, dialect: frontEnd.language === 'sql' ? frontEnd.dialect : undefined });
      duckdb = front.sql;
      source = front.source;
    }
    const statement = await this.ctx.manager.classify(duckdb);
    // As POST /v1/query does (runtime/api/app.ts authorizedStatement): a write needs a writer.
    const who = this.who();
    if (statement.access === 'write' && !hasRole(who, 'writer')) {
      throw new PuffinError('forbidden', `key '${who.name}' is a reader and may run SELECT statements only; this statement is ${statement.keyword}${source ? ` (translated from ${source.dialect ?? source.language})` : ''}`);
    }
    // Engine statements (PRAGMA, ATTACH, ...) are never run: refused here, before any statement of the message runs.
    if (statement.kind === 'other') throw unsupportedStatement(statement);
    return { kind: 'query', statement, source };
  }

  /** A metadata query the mirror answers, or undefined when it is no read; `frontEnd`: what current_setting('puffindb.*') answers. */
  private async catalogStatement(sql: string, frontEnd: FrontEndSettings): Promise<Prepared | undefined> {
    const rewritten = rewriteCatalogSql(sql, frontEnd);
    const statement = await this.ctx.manager.classify(rewritten);
    if (statement.access !== 'read') return undefined;
    // The planner's check of calls, here too: no file readers, no SQL run from a value
    // (query(), query_table()), which could change the mirror other sessions read.
    if (statement.parsed) refuseUnsafeCalls(statement.parsed.statement);
    return { kind: 'catalog', sql: statement.text };
  }

  private async run(p: Prepared): Promise<Outcome> {
    switch (p.kind) {
      case 'empty':
        return { tag: '' };
      case 'session': {
        const a = p.answer;
        if (a.frontEnd) this.frontEnd = a.frontEnd;
        if (a.transaction === 'begin') {
          this.txn = 'T';
          this.wroteInTxn = false;
        } else if (a.transaction === 'end') {
          const wasAborted = this.txn === 'E';
          this.txn = 'I';
          if (a.tag === 'ROLLBACK' && this.wroteInTxn) {
            this.write(errorResponse({ severity: 'WARNING', code: '25000', message: 'PuffinDB has no transactions: the writes since BEGIN were committed when they ran and are not rolled back' }, 'N'));
          }
          this.wroteInTxn = false;
          return { tag: wasAborted ? 'ROLLBACK' : a.tag, result: a.result };
        }
        return { tag: a.tag, result: a.result };
      }
      case 'catalog': {
        const result = await this.ctx.mirror.query(p.sql);
        return { tag: `SELECT ${result.rows.length}`, result };
      }
      case 'query': {
        const who = this.who();
        this.ctx.limiter.take(who.id);
        const controller = new AbortController();
        this.running = controller;
        this.cancelRequested = false;
        try {
          const done = await this.ctx.manager.run(p.statement, { user: who.id, role: who.role, format: 'json', signal: controller.signal, ...(p.source ? { source: p.source } : {}) });
          if (done.result.kind === 'stored') {
            throw new PuffinError('payload_too_large', `the result (${done.result.rows} rows) is over PUFFINDB_RESULT_INLINE_LIMIT_BYTES and was stored as Parquet (query ${done.record.id}); add a LIMIT, or fetch it over HTTP: GET /v1/queries/${done.record.id}/result`);
          }
          const result = done.result.result;
          if (p.statement.access === 'write' && this.txn === 'T') this.wroteInTxn = true;
          return outcomeOf(p.statement, result);
        } finally {
          if (this.running === controller) this.running = undefined;
        }
      }
    }
  }

  private fields(result: QueryResult, formats: readonly number[]): FieldDescription[] {
    return result.columns.map((c, i) => {
      const typeOid = oidOfDuckType(c.type);
      const format = (formats.length === 1 ? formats[0] : formats[i] ?? 0) === 1 ? 1 : 0;
      if (format === 1 && !binaryCapable(typeOid)) throw new PuffinError('unsupported', `binary format is not supported for column "${c.name}" (type ${c.type}); ask for text format`);
      return { name: c.name, typeOid, typeSize: typeSize(typeOid), format };
    });
  }

  private async sendRows(result: QueryResult, fields: readonly FieldDescription[], from: number, to: number): Promise<void> {
    for (let i = from; i < to; i++) {
      const row = result.rows[i];
      this.write(dataRow(fields.map((f, j) => {
        if (f.format === 1) return binaryValue(row[j], f.typeOid);
        const t = textValue(row[j], f.typeOid);
        return t === null ? null : Buffer.from(t, 'utf8');
      })));
      if ((i & 255) === 255) await this.drain();
    }
  }

  private async simpleQuery(sql: string): Promise<void> {
    try {
      let spans: [number, number][];
      try {
        spans = splitStatements(lex(sql).tokens).map((s) => [s[0].start, s[s.length - 1].end]);
      } catch (err) {
        // Text that does not lex as DuckDB SQL (a PRQL comment, a MySQL string) in a translated session: one statement, judged by its own compiler.
        if (!isTranslated(this.frontEnd)) throw toPuffinError(err);
        spans = sql.trim() === '' ? [] : [[0, sql.length]];
      }
      if (spans.length === 0) {
        this.write(emptyQuery());
        return;
      }
      if (spans.length > 64) throw new PuffinError('bad_request', `a query message may hold at most 64 statements; this one holds ${spans.length}`);
      // Every statement is classified and authorized before the first one runs, each in the
      // front end left by the SETs before it in the message.
      const prepared: Prepared[] = [];
      let frontEnd = this.frontEnd;
      for (let i = 0; i < spans.length; i++) {
        let piece = sql.slice(spans[i][0], spans[i][1]);
        if (frontEnd.language === 'prql' && !isSessionText(piece, frontEnd)) {
          // PRQL has no ';' between statements: the rest of the message is one pipeline.
          piece = sql.slice(spans[i][0]);
          i = spans.length;
        }
        const p = await this.prepare(piece, frontEnd);
        if (p.kind === 'session' && p.answer.frontEnd) frontEnd = p.answer.frontEnd;
        prepared.push(p);
      }
      for (const p of prepared) {
        const outcome = await this.run(p);
        if (p.kind === 'empty') {
          this.write(emptyQuery());
          continue;
        }
        if (outcome.result && outcome.result.columns.length > 0) {
          const fields = this.fields(outcome.result, []);
          this.write(rowDescription(fields));
          await this.sendRows(outcome.result, fields, 0, outcome.result.rows.length);
        }
        this.write(commandComplete(outcome.tag));
      }
    } catch (err) {
      this.failed(err);
    } finally {
      this.write(readyForQuery(this.txn));
    }
  }

  private failed(err: unknown): void {
    this.sendError(err);
    if (this.txn === 'T') this.txn = 'E';
  }

  /** An extended-protocol message: on error, ErrorResponse and skip to the next Sync. */
  private async extended(fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      if (err instanceof ProtocolError) throw err;
      this.failed(err);
      this.skipUntilSync = true;
    }
  }

  private async parse(r: BodyReader): Promise<void> {
    const name = r.cstring();
    const sql = r.cstring();
    const n = r.int16();
    if (n < 0) throw new ProtocolError('negative parameter type count');
    const oids: number[] = [];
    for (let i = 0; i < n; i++) oids.push(r.int32());
    if (name !== '' && this.statements.has(name)) throw new PuffinError('conflict', `prepared statement "${name}" already exists`);
    if (this.statements.size >= this.ctx.maxPrepared && !this.statements.has(name)) throw new PuffinError('rate_limited', `a session may keep at most ${this.ctx.maxPrepared} prepared statements; close some`);
    const count = parameterCount(sql);
    while (oids.length < count) oids.push(0);
    this.statements.set(name, { sql, oids });
    this.write(parseComplete());
  }

  private async bind(r: BodyReader): Promise<void> {
    const portalName = r.cstring();
    const stmtName = r.cstring();
    const stmt = this.statements.get(stmtName);
    if (!stmt) throw new PuffinError('not_found', `prepared statement "${stmtName}" does not exist`);
    const nFormats = r.int16();
    if (nFormats < 0) throw new ProtocolError('negative format count');
    const formats: number[] = [];
    for (let i = 0; i < nFormats; i++) formats.push(r.int16());
    const nValues = r.int16();
    if (nValues < 0) throw new ProtocolError('negative parameter count');
    const values: BoundValue[] = [];
    for (let i = 0; i < nValues; i++) {
      const len = r.int32();
      const value = len === -1 ? null : len < 0 ? (() => { throw new ProtocolError('invalid parameter length'); })() : Buffer.from(r.bytes(len));
      const f = nFormats === 1 ? formats[0] : formats[i] ?? 0;
      values.push({ value, format: f === 1 ? 1 : 0 });
    }
    const nResult = r.int16();
    if (nResult < 0) throw new ProtocolError('negative result format count');
    const resultFormats: number[] = [];
    for (let i = 0; i < nResult; i++) resultFormats.push(r.int16());
    const count = parameterCount(stmt.sql);
    if (values.length !== count) throw new PuffinError('bad_request', `bind message supplies ${values.length} parameters, but prepared statement "${stmtName}" requires ${count}`);
    const sql = substitute(stmt.sql, values, stmt.oids);
    if (this.portals.size >= this.ctx.maxPrepared && !this.portals.has(portalName)) throw new PuffinError('rate_limited', `a session may keep at most ${this.ctx.maxPrepared} portals`);
    this.portals.set(portalName, { sql, resultFormats, offset: 0 });
    this.write(bindComplete());
  }

  private async portalOutcome(portal: Portal): Promise<Outcome> {
    portal.outcome ??= await this.run(await this.prepare(portal.sql));
    return portal.outcome;
  }

  private async describe(r: BodyReader): Promise<void> {
    const what = String.fromCharCode(r.byte());
    const name = r.cstring();
    if (what === 'S') {
      const stmt = this.statements.get(name);
      if (!stmt) throw new PuffinError('not_found', `prepared statement "${name}" does not exist`);
      this.write(parameterDescription(stmt.oids.map((o) => o || OID.text)));
      // The columns, without the parameters' values: the statement with NULLs, run for no rows.
      const p = await this.prepare(substitute(stmt.sql, stmt.oids.map(() => ({ value: null, format: 0 })), stmt.oids));
      if (p.kind === 'session' && p.answer.result) {
        this.write(rowDescription(this.fields(p.answer.result, [])));
      } else if (p.kind === 'query' && p.statement.access === 'read' && p.statement.kind === 'call') {
        // A read-only procedure (CALL puffindb.snapshots(...)) is no subquery: its columns are
        // those of its answer, which only reads metadata.
        const outcome = await this.run(p);
        this.write(outcome.result ? rowDescription(this.fields(outcome.result, [])) : noData());
      } else if ((p.kind === 'query' && p.statement.access === 'read') || p.kind === 'catalog') {
        const text = p.kind === 'catalog' ? p.sql : p.statement.text;
        const probe = await this.prepare(`SELECT * FROM (${text}) AS puffindb_describe LIMIT 0`, DEFAULT_FRONT_END);
        const outcome = await this.run(probe);
        this.write(outcome.result ? rowDescription(this.fields(outcome.result, [])) : noData());
      } else this.write(noData());
      return;
    }
    if (what !== 'P') throw new ProtocolError(`Describe of ${JSON.stringify(what)}`);
    const portal = this.portals.get(name);
    if (!portal) throw new PuffinError('not_found', `portal "${name}" does not exist`);
    const outcome = await this.portalOutcome(portal);
    if (outcome.result && outcome.result.columns.length > 0) this.write(rowDescription(this.fields(outcome.result, portal.resultFormats)));
    else this.write(noData());
  }

  private async execute(r: BodyReader): Promise<void> {
    const name = r.cstring();
    const maxRows = r.int32();
    const portal = this.portals.get(name);
    if (!portal) throw new PuffinError('not_found', `portal "${name}" does not exist`);
    const outcome = await this.portalOutcome(portal);
    if (outcome.tag === '') {
      this.write(emptyQuery());
      return;
    }
    const result = outcome.result;
    if (result && result.columns.length > 0) {
      const fields = this.fields(result, portal.resultFormats);
      const end = maxRows > 0 ? Math.min(result.rows.length, portal.offset + maxRows) : result.rows.length;
      await this.sendRows(result, fields, portal.offset, end);
      portal.offset = end;
      if (end < result.rows.length) {
        this.write(portalSuspended());
        return;
      }
    }
    this.write(commandComplete(outcome.tag));
  }

  private async closeTarget(r: BodyReader): Promise<void> {
    const what = String.fromCharCode(r.byte());
    const name = r.cstring();
    if (what === 'S') this.statements.delete(name);
    else if (what === 'P') this.portals.delete(name);
    else throw new ProtocolError(`Close of ${JSON.stringify(what)}`);
    this.write(closeComplete());
  }
}

/** Whether statements written in `frontEnd` are translated (anything but DuckDB SQL). */
function isTranslated(frontEnd: FrontEndSettings): boolean {
  return frontEnd.language !== 'sql' || frontEnd.dialect !== 'duckdb';
}

/** Whether `sql` is a session statement (SET, SHOW, BEGIN, ...), which no front end translates. */
function isSessionText(sql: string, frontEnd: FrontEndSettings): boolean {
  let tokens: Token[];
  try {
    tokens = lex(sql).tokens;
  } catch {
    return false;
  }
  try {
    return sessionStatement(tokens, frontEnd) !== undefined;
  } catch {
    return true; // a session statement with a bad value: prepare() reports it
  }
}

/** The command tag (and rows to send) of a statement the manager ran. */
function outcomeOf(statement: ClassifiedStatement, result: QueryResult): Outcome {
  if (statement.access === 'read') return { tag: `SELECT ${result.rows.length}`, result };
  const single = result.rows.length === 1 && result.columns.length === 1 ? Number(result.rows[0][0]) : NaN;
  const n = Number.isFinite(single) ? single : result.rows.length;
  switch (statement.kind) {
    case 'insert': return { tag: `INSERT 0 ${n}` };
    case 'delete': return { tag: `DELETE ${n}` };
    case 'update': return { tag: `UPDATE ${n}` };
    case 'merge': return { tag: `MERGE ${n}` };
    case 'create_table': return { tag: /\bAS\b/i.test(statement.text) ? `SELECT ${n}` : 'CREATE TABLE' };
    default: return { tag: statement.keyword };
  }
}
