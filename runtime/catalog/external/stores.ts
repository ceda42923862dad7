// The pointer stores behind the external catalogs whose tables' Iceberg metadata lives in the
// object store and whose catalog holds only each table's current metadata location: AWS Glue
// Data Catalog (GetTable's metadata_location, UpdateTable with a version check), DynamoDB
// (conditional writes) and Postgres in the schema of Iceberg's JDBC catalog. Each is a
// PointerStore, so the built-in commit path (one compare-and-swap per commit) serves them.
// Names are 'namespace.table', lower-case, as in the built-in catalog.

import { PuffinError } from '../../errors.ts';
import type { PointerStore } from '../iceberg/pointer-store.ts';

export type PointerCatalogType = 'glue' | 'dynamodb' | 'postgres';

/** A catalog's connection options as registered (strings; secrets by reference only). */
export type PointerCatalogOptions = Record<string, string>;

export async function openExternalPointerStore(type: PointerCatalogType, _options: PointerCatalogOptions): Promise<PointerStore> {
  throw new PuffinError('bad_request', `catalog type '${type}' is not built yet`);
}
