// A local stand-in for the AWS Glue Data Catalog API (JSON 1.1 over HTTP on loopback: POST /
// with X-Amz-Target: AWSGlue.<Operation>), like the local Lambda endpoint, so the real
// @aws-sdk/client-glue runs against it. It keeps Glue's semantics that a pointer store relies
// on: names are lower-cased; a table's VersionId starts at '0' and goes up by one on each
// UpdateTable; an UpdateTable whose VersionId is not the current one fails with
// ConcurrentModificationException; a table needs its database (EntityNotFoundException);
// creating what exists is AlreadyExistsException; list calls are paginated with NextToken.
// Each request is handled whole before the next, as Glue's updates are atomic.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface GlueTableRecord {
  Name: string;
  DatabaseName: string;
  TableType?: string;
  Parameters: Record<string, string>;
  StorageDescriptor?: Record<string, unknown>;
  Description?: string;
  VersionId: string;
  CreateTime: number;
  UpdateTime: number;
  [field: string]: unknown;
}

export interface LocalGlue {
  /** Base URL for the Glue client's endpoint. */
  endpoint: string;
  /** Every request: the operation and its CatalogId (undefined when not sent). */
  requests: { operation: string; catalogId: string | undefined }[];
  /** The stored table (not a copy), or undefined. */
  table(database: string, name: string): GlueTableRecord | undefined;
  /** Run `hook` just before the next request for `operation` is handled (e.g. a competing update). */
  beforeNext(operation: string, hook: () => void): void;
  /** Answer the next request for `operation` with this error instead of handling it (status 400, or 500 for InternalServiceException). */
  failNext(operation: string, errorType: string): void;
  /** An UpdateTable by another writer: merges `parameters` and moves the VersionId on. */
  updateBehind(database: string, name: string, parameters: Record<string, string>): void;
  close(): Promise<void>;
}

export interface LocalGlueOptions {
  /** Items per page of GetDatabases/GetTables when the caller sets no MaxResults. Default 100. */
  pageSize?: number;
}

class GlueError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

type Body = Record<string, unknown>;

export async function startLocalGlue(options: LocalGlueOptions = {}): Promise<LocalGlue> {
  const pageSize = options.pageSize ?? 100;
  const databases = new Map<string, { Name: string; CreateTime: number; Description?: string }>();
  const tables = new Map<string, Map<string, GlueTableRecord>>();
  const requests: LocalGlue['requests'] = [];
  const hooks = new Map<string, (() => void)[]>();
  const failures = new Map<string, string[]>();
  const now = () => Date.now() / 1000;

  const databaseTables = (name: unknown): Map<string, GlueTableRecord> => {
    const key = lower(name, 'DatabaseName');
    const found = tables.get(key);
    if (!found) throw new GlueError('EntityNotFoundException', `Database ${key} not found.`);
    return found;
  };
  const page = <T>(items: T[], body: Body): { items: T[]; next?: string } => {
    const start = body.NextToken === undefined ? 0 : Number(body.NextToken);
    if (!Number.isInteger(start) || start < 0) throw new GlueError('InvalidInputException', 'Invalid NextToken');
    const size = typeof body.MaxResults === 'number' ? body.MaxResults : pageSize;
    const end = start + size;
    return { items: items.slice(start, end), ...(end < items.length ? { next: String(end) } : {}) };
  };
  const tableInput = (body: Body): Body => {
    const input = body.TableInput as Body | undefined;
    if (!input || typeof input !== 'object') throw new GlueError('InvalidInputException', 'TableInput is required');
    return input;
  };

  const operations: Record<string, (body: Body) => unknown> = {
    CreateDatabase(body) {
      const input = (body.DatabaseInput ?? {}) as Body;
      const name = lower(input.Name, 'DatabaseInput.Name');
      if (databases.has(name)) throw new GlueError('AlreadyExistsException', 'Database already exists.');
      databases.set(name, { Name: name, CreateTime: now(), ...(typeof input.Description === 'string' ? { Description: input.Description } : {}) });
      tables.set(name, new Map());
      return {};
    },
    GetDatabases(body) {
      const { items, next } = page([...databases.values()].sort((a, b) => a.Name.localeCompare(b.Name)), body);
      return { DatabaseList: items.map((d) => ({ ...d, CatalogId: body.CatalogId ?? '000000000000' })), ...(next ? { NextToken: next } : {}) };
    },
    CreateTable(body) {
      const db = databaseTables(body.DatabaseName);
      const input = tableInput(body);
      const name = lower(input.Name, 'TableInput.Name');
      if (db.has(name)) throw new GlueError('AlreadyExistsException', 'Table already exists.');
      const t = now();
      db.set(name, { ...input, Name: name, DatabaseName: lower(body.DatabaseName, 'DatabaseName'), Parameters: { ...((input.Parameters as Record<string, string>) ?? {}) }, VersionId: '0', CreateTime: t, UpdateTime: t });
      return {};
    },
    GetTable(body) {
      const db = databaseTables(body.DatabaseName);
      const table = db.get(lower(body.Name, 'Name'));
      if (!table) throw new GlueError('EntityNotFoundException', `Table ${String(body.Name)} not found.`);
      return { Table: { ...table, CatalogId: body.CatalogId ?? '000000000000', IsRegisteredWithLakeFormation: false } };
    },
    GetTables(body) {
      const db = databaseTables(body.DatabaseName);
      const { items, next } = page([...db.values()].sort((a, b) => a.Name.localeCompare(b.Name)), body);
      return { TableList: items, ...(next ? { NextToken: next } : {}) };
    },
    UpdateTable(body) {
      const db = databaseTables(body.DatabaseName);
      const input = tableInput(body);
      const name = lower(input.Name, 'TableInput.Name');
      const current = db.get(name);
      if (!current) throw new GlueError('EntityNotFoundException', `Table ${name} not found.`);
      if (body.VersionId !== undefined && body.VersionId !== current.VersionId) {
        throw new GlueError('ConcurrentModificationException', `Update table failed due to concurrent modifications. (version ${String(body.VersionId)} is not the current ${current.VersionId})`);
      }
      // UpdateTable replaces the definition with TableInput; the service keeps the rest.
      db.set(name, {
        ...input,
        Name: name,
        DatabaseName: current.DatabaseName,
        Parameters: { ...((input.Parameters as Record<string, string>) ?? {}) },
        VersionId: String(Number(current.VersionId) + 1),
        CreateTime: current.CreateTime,
        UpdateTime: now(),
      });
      return {};
    },
    DeleteTable(body) {
      const db = databaseTables(body.DatabaseName);
      const name = lower(body.Name, 'Name');
      if (!db.delete(name)) throw new GlueError('EntityNotFoundException', `Table ${name} not found.`);
      return {};
    },
  };

  const handle = (req: IncomingMessage, res: ServerResponse, text: string): void => {
    const target = String(req.headers['x-amz-target'] ?? '');
    const operation = target.startsWith('AWSGlue.') ? target.slice('AWSGlue.'.length) : '';
    try {
      if (req.method !== 'POST' || !operations[operation]) throw new GlueError('UnknownOperationException', `Unknown operation ${target}`);
      const body = (text ? JSON.parse(text) : {}) as Body;
      requests.push({ operation, catalogId: typeof body.CatalogId === 'string' ? body.CatalogId : undefined });
      for (const hook of hooks.get(operation)?.splice(0) ?? []) hook();
      const failure = failures.get(operation)?.shift();
      if (failure) throw new GlueError(failure, `injected ${failure}`);
      send(res, 200, operations[operation]!(body));
    } catch (err) {
      const type = err instanceof GlueError ? err.type : 'InternalServiceException';
      send(res, type === 'InternalServiceException' ? 500 : 400, { __type: type, Message: (err as Error).message }, { 'x-amzn-ErrorType': type });
    }
  };

  const server: Server = createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (text += chunk));
    req.on('end', () => handle(req, res, text));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    endpoint,
    requests,
    table: (database, name) => tables.get(database.toLowerCase())?.get(name.toLowerCase()),
    beforeNext(operation, hook) {
      hooks.set(operation, [...(hooks.get(operation) ?? []), hook]);
    },
    failNext(operation, errorType) {
      failures.set(operation, [...(failures.get(operation) ?? []), errorType]);
    },
    updateBehind(database, name, parameters) {
      const current = tables.get(database.toLowerCase())?.get(name.toLowerCase());
      if (!current) throw new Error(`no table ${database}.${name}`);
      Object.assign(current.Parameters, parameters);
      current.VersionId = String(Number(current.VersionId) + 1);
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function lower(value: unknown, field: string): string {
  if (typeof value !== 'string' || value === '') throw new GlueError('InvalidInputException', `${field} is required`);
  return value.toLowerCase();
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/x-amz-json-1.1', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}
