// The PointerStore over the AWS Glue Data Catalog's classic API, as Iceberg's GlueCatalog
// keeps tables there: a Glue table per Iceberg table, Parameters.table_type = 'ICEBERG' and
// Parameters.metadata_location = its current metadata file. Names are 'database.table' (Glue
// has one level of namespace, and lower-cases names itself).
//
// A commit is Glue's optimistic lock: GetTable, check that metadata_location is the expected
// one, then UpdateTable with the VersionId that was read (Glue refuses it with
// ConcurrentModificationException when another update came between), setting
// previous_metadata_location as Iceberg does. The rest of the table's definition is carried
// over unchanged (its StorageDescriptor columns are not rewritten from the Iceberg schema).
//
// DeleteTable takes no version, so a drop first marks the table (an UpdateTable with the
// VersionId read, adding DROPPING_PARAMETER): a commit that read the table before the mark
// fails its own version check, one that reads it after sees the mark and loses, and only
// then is the table deleted. A drop interrupted between the two leaves a marked table that
// reads as before and refuses commits until the drop is run again. Engines that do not know
// the mark (Spark, Trino) can still commit in that window.
//
// Creating a table in a database that does not exist creates the database, as the built-in
// catalog needs no namespace declared first.

import {
  CreateDatabaseCommand,
  CreateTableCommand,
  DeleteTableCommand,
  GetDatabasesCommand,
  GetTableCommand,
  GetTablesCommand,
  GlueClient,
  UpdateTableCommand,
  type Table,
  type TableInput,
} from '@aws-sdk/client-glue';
import { PuffinError } from '../../errors.ts';
import type { PointerStore, TablePointer } from '../iceberg/pointer-store.ts';
import { awsClientConfig, awsErrorName, awsFailure, sendWrite, type AwsClientOptions } from './aws-calls.ts';
import { isAddressableName, splitTableName, type ExternalTableName } from './stores.ts';

export interface GlueDataCatalogStoreOptions extends AwsClientOptions {
  /** The Data Catalog's id (the account id, or a federated catalog's); default: the caller's account. */
  catalogId?: string;
}

export const METADATA_LOCATION = 'metadata_location';
export const PREVIOUS_METADATA_LOCATION = 'previous_metadata_location';
export const TABLE_TYPE = 'table_type';
export const ICEBERG = 'ICEBERG';
/** Set on a table being dropped (see the head of this file). */
export const DROPPING_PARAMETER = 'puffindb.dropping';

const SERVICE = 'AWS Glue';
const WHAT = 'the Glue catalog';

export class GlueDataCatalogStore implements PointerStore {
  private constructor(
    private readonly reads: GlueClient,
    private readonly writes: GlueClient,
    private readonly catalogId: string | undefined,
  ) {}

  /** Connect and check that the catalog answers (one GetDatabases), so a bad endpoint or role fails here. */
  static async open(options: GlueDataCatalogStoreOptions): Promise<GlueDataCatalogStore> {
    const store = new GlueDataCatalogStore(
      new GlueClient(awsClientConfig(options, 3)),
      new GlueClient(awsClientConfig(options, 1)),
      options.catalogId,
    );
    try {
      await store.reads.send(new GetDatabasesCommand({ ...store.catalog(), MaxResults: 1 }));
    } catch (err) {
      await store.close();
      throw awsFailure(SERVICE, 'GetDatabases', err);
    }
    return store;
  }

  async get(name: string): Promise<string | undefined> {
    const id = splitTableName(name, WHAT, 1);
    const table = await this.table(id);
    return table ? metadataLocationOf(id, table) : undefined;
  }

  async list(): Promise<TablePointer[]> {
    const out: TablePointer[] = [];
    for (const database of await this.databases()) {
      let token: string | undefined;
      do {
        const page = await this.read('GetTables', () => this.reads.send(new GetTablesCommand({ ...this.catalog(), DatabaseName: database, ...(token ? { NextToken: token } : {}) })));
        for (const table of page.TableList ?? []) {
          const location = table.Parameters?.[METADATA_LOCATION];
          const name = `${database}.${table.Name ?? ''}`;
          if (isIceberg(table) && location && isAddressableName(name)) out.push({ name, metadataLocation: location });
        }
        token = page.NextToken || undefined;
      } while (token);
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  async compareAndSwap(name: string, expected: string | undefined, next: string): Promise<boolean> {
    if (typeof next !== 'string' || next === '') throw new PuffinError('bad_request', 'a metadata location must be a non-empty string');
    const id = splitTableName(name, WHAT, 1);
    if (expected === undefined) return this.create(id, next);
    const table = await this.table(id);
    if (!table || !isIceberg(table) || table.Parameters?.[METADATA_LOCATION] !== expected) return false;
    if (table.Parameters?.[DROPPING_PARAMETER] !== undefined) return false;
    return this.update(id, table, { ...table.Parameters, [METADATA_LOCATION]: next, [PREVIOUS_METADATA_LOCATION]: expected });
  }

  async remove(name: string, expected: string): Promise<boolean> {
    const id = splitTableName(name, WHAT, 1);
    const table = await this.table(id);
    if (!table || !isIceberg(table) || table.Parameters?.[METADATA_LOCATION] !== expected) return false;
    if (!(await this.update(id, table, { ...table.Parameters, [DROPPING_PARAMETER]: new Date().toISOString() }))) return false;
    try {
      await sendWrite(() => this.writes.send(new DeleteTableCommand({ ...this.catalog(), DatabaseName: id.namespace, Name: id.table })));
      return true;
    } catch (err) {
      if (awsErrorName(err) === 'EntityNotFoundException') return false; // another drop finished first
      throw awsFailure(SERVICE, `DeleteTable of ${id.name}`, err);
    }
  }

  async close(): Promise<void> {
    this.reads.destroy();
    this.writes.destroy();
  }

  private catalog(): { CatalogId?: string } {
    return this.catalogId ? { CatalogId: this.catalogId } : {};
  }

  private async read<T>(what: string, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (err) {
      throw awsFailure(SERVICE, what, err);
    }
  }

  private async table(id: ExternalTableName): Promise<Table | undefined> {
    try {
      return (await this.reads.send(new GetTableCommand({ ...this.catalog(), DatabaseName: id.namespace, Name: id.table }))).Table;
    } catch (err) {
      if (awsErrorName(err) === 'EntityNotFoundException') return undefined;
      throw awsFailure(SERVICE, `GetTable of ${id.name}`, err);
    }
  }

  private async databases(): Promise<string[]> {
    const names: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.read('GetDatabases', () => this.reads.send(new GetDatabasesCommand({ ...this.catalog(), ...(token ? { NextToken: token } : {}) })));
      for (const db of page.DatabaseList ?? []) if (db.Name) names.push(db.Name);
      token = page.NextToken || undefined;
    } while (token);
    return names;
  }

  private async create(id: ExternalTableName, next: string): Promise<boolean> {
    const input: TableInput = {
      Name: id.table,
      TableType: 'EXTERNAL_TABLE',
      Parameters: { [TABLE_TYPE]: ICEBERG, [METADATA_LOCATION]: next },
      ...(tableLocation(next) ? { StorageDescriptor: { Location: tableLocation(next) } } : {}),
    };
    const send = () => sendWrite(() => this.writes.send(new CreateTableCommand({ ...this.catalog(), DatabaseName: id.namespace, TableInput: input })));
    try {
      await send();
      return true;
    } catch (err) {
      const name = awsErrorName(err);
      if (name === 'AlreadyExistsException') return false;
      if (name !== 'EntityNotFoundException') throw awsFailure(SERVICE, `CreateTable of ${id.name}`, err);
    }
    // The database does not exist yet: create it (or find it created meanwhile), then the table.
    try {
      await sendWrite(() => this.writes.send(new CreateDatabaseCommand({ ...this.catalog(), DatabaseInput: { Name: id.namespace } })));
    } catch (err) {
      if (awsErrorName(err) !== 'AlreadyExistsException') throw awsFailure(SERVICE, `CreateDatabase of ${id.namespace}`, err);
    }
    try {
      await send();
      return true;
    } catch (err) {
      if (awsErrorName(err) === 'AlreadyExistsException') return false;
      throw awsFailure(SERVICE, `CreateTable of ${id.name}`, err);
    }
  }

  /** UpdateTable at the version read: false when another update came first. */
  private async update(id: ExternalTableName, table: Table, parameters: Record<string, string>): Promise<boolean> {
    if (!table.VersionId) throw new PuffinError('unavailable', `${SERVICE} returned table ${id.name} without a VersionId, so it cannot be updated safely`);
    try {
      await sendWrite(() => this.writes.send(new UpdateTableCommand({
        ...this.catalog(),
        DatabaseName: id.namespace,
        TableInput: { ...tableInput(table), Parameters: parameters },
        VersionId: table.VersionId,
        // Iceberg's default too: a version archived per commit would soon hit Glue's limit.
        SkipArchive: true,
      })));
      return true;
    } catch (err) {
      const name = awsErrorName(err);
      if (name === 'ConcurrentModificationException' || name === 'EntityNotFoundException') return false;
      throw awsFailure(SERVICE, `UpdateTable of ${id.name}`, err);
    }
  }
}

function isIceberg(table: Table): boolean {
  return table.Parameters?.[TABLE_TYPE]?.toUpperCase() === ICEBERG;
}

function metadataLocationOf(id: ExternalTableName, table: Table): string {
  if (!isIceberg(table)) {
    throw new PuffinError('unsupported', `Glue table ${id.name} is not an Iceberg table (table_type ${JSON.stringify(table.Parameters?.[TABLE_TYPE] ?? null)})`);
  }
  const location = table.Parameters?.[METADATA_LOCATION];
  if (!location) throw new PuffinError('internal', `Glue table ${id.name} is an Iceberg table without a metadata_location`);
  return location;
}

/** The table's root, for the StorageDescriptor: '<root>/metadata/<file>' -> '<root>'. */
function tableLocation(metadataLocation: string): string | undefined {
  return /^(.+)\/metadata\/[^/]+$/.exec(metadataLocation)?.[1];
}

/** What UpdateTable takes back of what GetTable gave (the output-only fields left out). */
function tableInput(table: Table): TableInput {
  return {
    Name: table.Name,
    ...(table.Description !== undefined ? { Description: table.Description } : {}),
    ...(table.Owner !== undefined ? { Owner: table.Owner } : {}),
    ...(table.LastAccessTime !== undefined ? { LastAccessTime: table.LastAccessTime } : {}),
    ...(table.LastAnalyzedTime !== undefined ? { LastAnalyzedTime: table.LastAnalyzedTime } : {}),
    ...(table.Retention !== undefined ? { Retention: table.Retention } : {}),
    ...(table.StorageDescriptor !== undefined ? { StorageDescriptor: table.StorageDescriptor } : {}),
    ...(table.PartitionKeys !== undefined ? { PartitionKeys: table.PartitionKeys } : {}),
    ...(table.ViewOriginalText !== undefined ? { ViewOriginalText: table.ViewOriginalText } : {}),
    ...(table.ViewExpandedText !== undefined ? { ViewExpandedText: table.ViewExpandedText } : {}),
    ...(table.TableType !== undefined ? { TableType: table.TableType } : {}),
    ...(table.TargetTable !== undefined ? { TargetTable: table.TargetTable } : {}),
  };
}
