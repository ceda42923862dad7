// The PointerStore over a DynamoDB table, in the layout of Iceberg's own DynamoDbCatalog so
// Spark and Trino (Iceberg's catalog-impl DynamoDbCatalog) can share it:
//
//   key schema: identifier (S, partition key) + namespace (S, sort key), billing on demand,
//               global secondary index 'namespace-identifier' (namespace, identifier; keys only)
//   a table:     identifier = 'ns.table', namespace = 'ns', 'p.table_type' = 'ICEBERG',
//                'p.metadata_location', 'p.previous_metadata_location', v (a UUID that changes
//                on every write: Iceberg's own optimistic lock), created_at, updated_at (ms)
//   a namespace: identifier = 'NAMESPACE', namespace = 'ns' (Iceberg needs one before it
//                creates a table there; a create here writes it when missing)
//
// Every swap is one conditional write, checked and applied by DynamoDB as one step: a create
// is a PutItem under attribute_not_exists(identifier), a commit an UpdateItem under
// 'p.metadata_location' = :expected (which also moves v, so an Iceberg writer that read the
// old v loses too), a drop a DeleteItem under the same condition. Reads are strongly
// consistent. The table is created (with the schema above) only when the catalog's option
// create=true says so; otherwise a missing table, or one with another key schema, is refused
// when the store opens.

import { randomUUID } from 'node:crypto';
import {
  CreateTableCommand,
  DeleteItemCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  ScanCommand,
  UpdateItemCommand,
  waitUntilTableExists,
  type AttributeValue,
  type TableDescription,
} from '@aws-sdk/client-dynamodb';
import { PuffinError } from '../../errors.ts';
import type { PointerStore, TablePointer } from '../iceberg/pointer-store.ts';
import { awsClientConfig, awsErrorName, awsFailure, sendWrite, type AwsClientOptions } from './aws-calls.ts';
import { isAddressableName, splitTableName, type ExternalTableName } from './stores.ts';

export interface DynamoDbPointerStoreOptions extends AwsClientOptions {
  /** The DynamoDB table holding the catalog. */
  table: string;
  /** Create the table when it does not exist (default false). */
  create?: boolean;
  /** How long to wait for a created table to become ACTIVE. Default 120 s. */
  createWaitSeconds?: number;
  /** Items a list's Scan reads per page (DynamoDB's own bound, 1 MB, when unset). */
  scanPageSize?: number;
}

const SERVICE = 'DynamoDB';
const WHAT = 'the DynamoDB catalog';
const COL_IDENTIFIER = 'identifier';
const COL_NAMESPACE = 'namespace';
const NAMESPACE_IDENTIFIER = 'NAMESPACE';
const GSI_NAMESPACE_IDENTIFIER = 'namespace-identifier';
const COL_METADATA_LOCATION = 'p.metadata_location';
const COL_PREVIOUS_METADATA_LOCATION = 'p.previous_metadata_location';
const COL_TABLE_TYPE = 'p.table_type';
const COL_VERSION = 'v';

/** The attribute names with a dot in them, as every expression here refers to them. */
const NAMES = { '#ml': COL_METADATA_LOCATION } as const;

export class DynamoDbPointerStore implements PointerStore {
  private constructor(
    private readonly reads: DynamoDBClient,
    private readonly writes: DynamoDBClient,
    readonly table: string,
    private readonly scanPageSize: number | undefined,
  ) {}

  static async open(options: DynamoDbPointerStoreOptions): Promise<DynamoDbPointerStore> {
    const store = new DynamoDbPointerStore(new DynamoDBClient(awsClientConfig(options, 3)), new DynamoDBClient(awsClientConfig(options, 1)), options.table, options.scanPageSize);
    try {
      await store.ensureTable(options.create ?? false, options.createWaitSeconds ?? 120);
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  }

  async get(name: string): Promise<string | undefined> {
    const id = splitTableName(name, WHAT);
    try {
      const answer = await this.reads.send(new GetItemCommand({
        TableName: this.table, Key: tableKey(id), ConsistentRead: true, ProjectionExpression: '#ml', ExpressionAttributeNames: NAMES,
      }));
      return answer.Item?.[COL_METADATA_LOCATION]?.S;
    } catch (err) {
      throw awsFailure(SERVICE, `GetItem of ${id.name}`, err);
    }
  }

  async list(): Promise<TablePointer[]> {
    const out: TablePointer[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      let page;
      try {
        page = await this.reads.send(new ScanCommand({
          TableName: this.table,
          ConsistentRead: true,
          ProjectionExpression: '#id, #ml',
          FilterExpression: '#id <> :namespace AND attribute_exists(#ml)',
          ExpressionAttributeNames: { ...NAMES, '#id': COL_IDENTIFIER },
          ExpressionAttributeValues: { ':namespace': { S: NAMESPACE_IDENTIFIER } },
          ...(start ? { ExclusiveStartKey: start } : {}),
          ...(this.scanPageSize ? { Limit: this.scanPageSize } : {}),
        }));
      } catch (err) {
        throw awsFailure(SERVICE, `Scan of ${this.table}`, err);
      }
      for (const item of page.Items ?? []) {
        const name = item[COL_IDENTIFIER]?.S;
        const metadataLocation = item[COL_METADATA_LOCATION]?.S;
        if (name && metadataLocation && isAddressableName(name)) out.push({ name, metadataLocation });
      }
      start = page.LastEvaluatedKey;
    } while (start);
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  async compareAndSwap(name: string, expected: string | undefined, next: string): Promise<boolean> {
    if (typeof next !== 'string' || next === '') throw new PuffinError('bad_request', 'a metadata location must be a non-empty string');
    const id = splitTableName(name, WHAT);
    const now = { N: String(Date.now()) };
    if (expected === undefined) {
      await this.ensureNamespace(id, now);
      return this.conditional(`PutItem of ${id.name}`, (c) => c.send(new PutItemCommand({
        TableName: this.table,
        Item: {
          ...tableKey(id),
          [COL_TABLE_TYPE]: { S: 'ICEBERG' },
          [COL_METADATA_LOCATION]: { S: next },
          [COL_VERSION]: { S: randomUUID() },
          created_at: now,
          updated_at: now,
        },
        ConditionExpression: 'attribute_not_exists(#id)',
        ExpressionAttributeNames: { '#id': COL_IDENTIFIER },
      })));
    }
    return this.conditional(`UpdateItem of ${id.name}`, (c) => c.send(new UpdateItemCommand({
      TableName: this.table,
      Key: tableKey(id),
      ConditionExpression: '#ml = :expected',
      UpdateExpression: 'SET #ml = :next, #pml = :expected, #v = :v, updated_at = :now',
      ExpressionAttributeNames: { ...NAMES, '#pml': COL_PREVIOUS_METADATA_LOCATION, '#v': COL_VERSION },
      ExpressionAttributeValues: { ':expected': { S: expected }, ':next': { S: next }, ':v': { S: randomUUID() }, ':now': now },
    })));
  }

  async remove(name: string, expected: string): Promise<boolean> {
    const id = splitTableName(name, WHAT);
    return this.conditional(`DeleteItem of ${id.name}`, (c) => c.send(new DeleteItemCommand({
      TableName: this.table,
      Key: tableKey(id),
      ConditionExpression: '#ml = :expected',
      ExpressionAttributeNames: NAMES,
      ExpressionAttributeValues: { ':expected': { S: expected } },
    })));
  }

  async close(): Promise<void> {
    this.reads.destroy();
    this.writes.destroy();
  }

  /** A conditional write: true when applied, false when its condition did not hold. */
  private async conditional(what: string, send: (client: DynamoDBClient) => Promise<unknown>): Promise<boolean> {
    try {
      await sendWrite(() => send(this.writes));
      return true;
    } catch (err) {
      if (awsErrorName(err) === 'ConditionalCheckFailedException') return false;
      throw awsFailure(SERVICE, what, err);
    }
  }

  /** The namespace item Iceberg's catalog expects under a table; written once, never overwritten. */
  private async ensureNamespace(id: ExternalTableName, now: AttributeValue): Promise<void> {
    await this.conditional(`PutItem of namespace ${id.namespace}`, (c) => c.send(new PutItemCommand({
      TableName: this.table,
      Item: {
        [COL_IDENTIFIER]: { S: NAMESPACE_IDENTIFIER },
        [COL_NAMESPACE]: { S: id.namespace },
        [COL_VERSION]: { S: randomUUID() },
        created_at: now,
        updated_at: now,
      },
      ConditionExpression: 'attribute_not_exists(#id)',
      ExpressionAttributeNames: { '#id': COL_IDENTIFIER },
    })));
  }

  private async describe(): Promise<TableDescription | undefined> {
    try {
      return (await this.reads.send(new DescribeTableCommand({ TableName: this.table }))).Table;
    } catch (err) {
      if (awsErrorName(err) === 'ResourceNotFoundException') return undefined;
      throw awsFailure(SERVICE, `DescribeTable of ${this.table}`, err);
    }
  }

  private async ensureTable(create: boolean, waitSeconds: number): Promise<void> {
    let table = await this.describe();
    if (!table) {
      if (!create) {
        throw new PuffinError('bad_request', `DynamoDB table '${this.table}' does not exist: create it (${EXPECTED_SCHEMA}) or register the catalog with the option create=true`);
      }
      try {
        await this.writes.send(new CreateTableCommand({
          TableName: this.table,
          KeySchema: [{ AttributeName: COL_IDENTIFIER, KeyType: 'HASH' }, { AttributeName: COL_NAMESPACE, KeyType: 'RANGE' }],
          AttributeDefinitions: [{ AttributeName: COL_IDENTIFIER, AttributeType: 'S' }, { AttributeName: COL_NAMESPACE, AttributeType: 'S' }],
          GlobalSecondaryIndexes: [{
            IndexName: GSI_NAMESPACE_IDENTIFIER,
            KeySchema: [{ AttributeName: COL_NAMESPACE, KeyType: 'HASH' }, { AttributeName: COL_IDENTIFIER, KeyType: 'RANGE' }],
            Projection: { ProjectionType: 'KEYS_ONLY' },
          }],
          BillingMode: 'PAY_PER_REQUEST',
        }));
      } catch (err) {
        // ResourceInUseException: another process is creating it; wait for it as for ours.
        if (awsErrorName(err) !== 'ResourceInUseException') throw awsFailure(SERVICE, `CreateTable of ${this.table}`, err);
      }
      try {
        await waitUntilTableExists({ client: this.reads, maxWaitTime: waitSeconds, minDelay: 1, maxDelay: 5 }, { TableName: this.table });
      } catch (err) {
        throw new PuffinError('unavailable', `DynamoDB table '${this.table}' did not become ACTIVE within ${waitSeconds} s: ${(err as Error).message}`);
      }
      table = await this.describe();
    }
    const keys = (table?.KeySchema ?? []).map((k) => `${k.AttributeName}:${k.KeyType}`).sort().join(',');
    if (keys !== `${COL_IDENTIFIER}:HASH,${COL_NAMESPACE}:RANGE`) {
      throw new PuffinError('bad_request', `DynamoDB table '${this.table}' has the key schema ${keys || 'none'}; a catalog table needs ${EXPECTED_SCHEMA}`);
    }
  }
}

const EXPECTED_SCHEMA = `partition key '${COL_IDENTIFIER}' (S) and sort key '${COL_NAMESPACE}' (S), as Iceberg's DynamoDbCatalog`;

function tableKey(id: ExternalTableName): Record<string, AttributeValue> {
  return { [COL_IDENTIFIER]: { S: id.name }, [COL_NAMESPACE]: { S: id.namespace } };
}
