// The PointerStore over Postgres (RDS) in the schema of Iceberg's JDBC catalog, so Spark,
// Trino and Flink (Iceberg's JdbcCatalog with the same catalog name) share the tables.
// Iceberg's DDL (JdbcUtil), run here when the tables are missing:
//
//   CREATE TABLE iceberg_tables(catalog_name VARCHAR(255) NOT NULL, table_namespace VARCHAR(255)
//     NOT NULL, table_name VARCHAR(255) NOT NULL, metadata_location VARCHAR(1000),
//     previous_metadata_location VARCHAR(1000), PRIMARY KEY (catalog_name, table_namespace, table_name))
//   CREATE TABLE iceberg_namespace_properties(catalog_name VARCHAR(255) NOT NULL, namespace
//     VARCHAR(255) NOT NULL, property_key VARCHAR(255), property_value VARCHAR(1000),
//     PRIMARY KEY (catalog_name, namespace, property_key))
//
// That is Iceberg's schema V0; a catalog that Iceberg moved to V1 (jdbc.schema-version=V1
// adds iceberg_type VARCHAR(5), 'TABLE' or 'VIEW') is detected, and then only its TABLE rows
// (or untyped ones) are tables here and a create writes 'TABLE'. A table's namespace is the
// levels joined by dots ('a.b'), as JdbcUtil stores it; a namespace exists while a table is in
// it, so none is written to iceberg_namespace_properties (read by Iceberg, left to it).
//
// A commit is Iceberg's own: UPDATE ... SET metadata_location = new, previous_metadata_location
// = old WHERE <the table> AND metadata_location = old, one statement, so Postgres's row lock
// makes exactly one of several writers from the same base match (rowCount 1). A create is an
// INSERT (a unique violation: the table exists), a drop a DELETE under the same location check.

import pg from 'pg';
import { PuffinError } from '../../errors.ts';
import type { PointerStore, TablePointer } from '../iceberg/pointer-store.ts';
import { checkPostgresUrlParameters, isAddressableName, splitTableName, type ExternalTableName } from './stores.ts';

export interface PostgresPointerStoreOptions {
  /** postgres://user@host:5432/database[?sslmode=...], without a password. */
  url: string;
  password?: string;
  /** The JDBC catalog's name (its rows' catalog_name), as Spark's catalog of the same name. */
  catalogName: string;
  /** Pool size. Default 4. */
  maxConnections?: number;
}

const CREATE_CATALOG_TABLE = 'CREATE TABLE IF NOT EXISTS iceberg_tables('
  + 'catalog_name VARCHAR(255) NOT NULL,table_namespace VARCHAR(255) NOT NULL,table_name VARCHAR(255) NOT NULL,'
  + 'metadata_location VARCHAR(1000),previous_metadata_location VARCHAR(1000),'
  + 'PRIMARY KEY (catalog_name, table_namespace, table_name))';
const CREATE_NAMESPACE_PROPERTIES_TABLE = 'CREATE TABLE IF NOT EXISTS iceberg_namespace_properties('
  + 'catalog_name VARCHAR(255) NOT NULL,namespace VARCHAR(255) NOT NULL,property_key VARCHAR(255),property_value VARCHAR(1000),'
  + 'PRIMARY KEY (catalog_name, namespace, property_key))';
/** Whether the catalog table is at Iceberg's schema V1 (has iceberg_type). */
const HAS_RECORD_TYPE = "SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('iceberg_tables') AND attname = 'iceberg_type' AND NOT attisdropped";
const TABLE_RECORD = " AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)";
const WHERE_TABLE = 'catalog_name = $1 AND table_namespace = $2 AND table_name = $3';

const WHAT = 'the Postgres catalog';
export class PostgresPointerStore implements PointerStore {
  private constructor(
    private readonly pool: pg.Pool,
    readonly catalogName: string,
    /** The SQL condition that keeps views of a V1 catalog out ('' at V0). */
    private readonly tablesOnly: string,
  ) {}

  /** Connect, create Iceberg's tables when missing, and find the schema version. */
  static async open(options: PostgresPointerStoreOptions): Promise<PostgresPointerStore> {
    const url = new URL(options.url);
    checkPostgresUrlParameters(url);
    // pg reads the password from the URL only (a password given beside a connection string
    // is overridden by the URL's empty one).
    if (options.password !== undefined) url.password = encodeURIComponent(options.password);
    const pool = new pg.Pool({
      connectionString: url.toString(),
      max: options.maxConnections ?? 4,
      connectionTimeoutMillis: 5_000,
      query_timeout: 10_000,
      statement_timeout: 10_000,
      idleTimeoutMillis: 10_000,
      allowExitOnIdle: true,
      application_name: 'puffindb',
    });
    pool.on('error', () => undefined); // an idle connection's failure shows on the next query
    try {
      // Looked up first, as Iceberg does: a user with only row privileges may not run CREATE at all.
      for (const [table, ddl] of [['iceberg_tables', CREATE_CATALOG_TABLE], ['iceberg_namespace_properties', CREATE_NAMESPACE_PROPERTIES_TABLE]] as const) {
        if ((await pool.query('SELECT to_regclass($1) AS found', [table])).rows[0]?.found) continue;
        try {
          await pool.query(ddl);
        } catch (err) {
          // Another process created it between the look-up and the create.
          if (!['23505', '42P07'].includes(sqlState(err))) throw err;
        }
      }
      const v1 = (await pool.query(HAS_RECORD_TYPE)).rowCount === 1;
      return new PostgresPointerStore(pool, options.catalogName, v1 ? TABLE_RECORD : '');
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw failure('opening', err);
    }
  }

  async get(name: string): Promise<string | undefined> {
    const id = splitTableName(name, WHAT);
    const r = await this.query<{ metadata_location: string | null }>('get', `SELECT metadata_location FROM iceberg_tables WHERE ${WHERE_TABLE}${this.tablesOnly}`, this.key(id));
    return r.rows[0]?.metadata_location ?? undefined;
  }

  async list(): Promise<TablePointer[]> {
    const r = await this.query<{ table_namespace: string; table_name: string; metadata_location: string | null }>(
      'list',
      `SELECT table_namespace, table_name, metadata_location FROM iceberg_tables WHERE catalog_name = $1${this.tablesOnly}`,
      [this.catalogName],
    );
    return r.rows
      .map((row) => ({ name: `${row.table_namespace}.${row.table_name}`, metadataLocation: row.metadata_location ?? '' }))
      .filter((t) => t.metadataLocation !== '' && isAddressableName(t.name))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async compareAndSwap(name: string, expected: string | undefined, next: string): Promise<boolean> {
    if (typeof next !== 'string' || next === '') throw new PuffinError('bad_request', 'a metadata location must be a non-empty string');
    const id = splitTableName(name, WHAT);
    if (expected === undefined) {
      const typed = this.tablesOnly !== '';
      try {
        await this.pool.query(
          `INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name, metadata_location, previous_metadata_location${typed ? ', iceberg_type' : ''}) VALUES ($1, $2, $3, $4, null${typed ? ", 'TABLE'" : ''})`,
          [...this.key(id), next],
        );
        return true;
      } catch (err) {
        if (sqlState(err) === '23505') return false; // the table (or a view of that name) exists
        throw failure('create', err);
      }
    }
    const r = await this.query(
      'commit',
      `UPDATE iceberg_tables SET metadata_location = $4, previous_metadata_location = $5 WHERE ${WHERE_TABLE} AND metadata_location = $5${this.tablesOnly}`,
      [...this.key(id), next, expected],
    );
    return r.rowCount === 1;
  }

  async remove(name: string, expected: string): Promise<boolean> {
    const id = splitTableName(name, WHAT);
    const r = await this.query('drop', `DELETE FROM iceberg_tables WHERE ${WHERE_TABLE} AND metadata_location = $4${this.tablesOnly}`, [...this.key(id), expected]);
    return r.rowCount === 1;
  }

  async close(): Promise<void> {
    await this.pool.end().catch(() => undefined);
  }

  private key(id: ExternalTableName): [string, string, string] {
    return [this.catalogName, id.namespace, id.table];
  }

  private async query<R extends pg.QueryResultRow = pg.QueryResultRow>(what: string, sql: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(sql, values);
    } catch (err) {
      throw failure(what, err);
    }
  }
}

function sqlState(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

/** A failure as a PuffinError: bad credentials or database are the registration's to fix. */
function failure(what: string, err: unknown): PuffinError {
  if (err instanceof PuffinError) return err;
  const state = sqlState(err);
  const message = `${WHAT}: ${what} failed${state ? ` (SQLSTATE ${state})` : ''}: ${err instanceof Error ? err.message : String(err)}`;
  // 28: invalid authorization; 3D000: no such database; 42501: no privilege on the tables.
  if (state.startsWith('28') || state === '3D000') return new PuffinError('bad_request', message);
  if (state === '42501') return new PuffinError('internal', `${message} (grant the catalog's user SELECT, INSERT, UPDATE, DELETE on iceberg_tables)`);
  if (state === '22001') return new PuffinError('bad_request', `${message} (Iceberg's JDBC schema keeps names to 255 characters and locations to 1000)`);
  return new PuffinError('unavailable', message);
}
