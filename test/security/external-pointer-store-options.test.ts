// The external catalogs' connection options as a way in: whoever registers a catalog chooses
// where the server connects and which secret it sends there, so openExternalPointerStore
// refuses secrets in plaintext, environment variables that are not a catalog's, URL
// parameters that read local files, the instance metadata address, and unknown or malformed
// options, each as a bad_request naming the option, before any connection is made.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PuffinError } from '../../runtime/errors.ts';
import { checkPointerCatalogOptions, openExternalPointerStore, type PointerCatalogType } from '../../runtime/catalog/external/stores.ts';

const badRequest = (pattern: RegExp) => (err: unknown) => err instanceof PuffinError && err.code === 'bad_request' && pattern.test(err.message);

describe('openExternalPointerStore: options', () => {
  test('refuses unknown types, unknown or missing options and malformed values, naming them', async () => {
    await assert.rejects(openExternalPointerStore('hive' as PointerCatalogType, {}), badRequest(/unknown catalog type 'hive'/));
    await assert.rejects(openExternalPointerStore('glue', {}), badRequest(/needs the option 'region'/));
    await assert.rejects(openExternalPointerStore('glue', { region: 'us-east-1', regoin: 'x' }), badRequest(/no option 'regoin'/));
    await assert.rejects(openExternalPointerStore('glue', { region: 'Mars' }), badRequest(/'region' is not an AWS region/));
    await assert.rejects(openExternalPointerStore('glue', { region: 'us-east-1', endpoint: 'ftp://x' }), badRequest(/'endpoint' must be an http/));
    await assert.rejects(openExternalPointerStore('glue', { region: 'us-east-1', catalogId: '12' }), badRequest(/'catalogId'/));
    await assert.rejects(openExternalPointerStore('dynamodb', { region: 'us-east-1' }), badRequest(/needs the option 'table'/));
    await assert.rejects(openExternalPointerStore('dynamodb', { region: 'us-east-1', table: 'a b' }), badRequest(/'table' is not a DynamoDB table name/));
    await assert.rejects(openExternalPointerStore('dynamodb', { region: 'us-east-1', table: 'cat', create: 'yes' }), badRequest(/'create' must be 'true' or 'false'/));
    await assert.rejects(openExternalPointerStore('postgres', { url: 'postgres://u@h/db' }), badRequest(/needs the option 'catalogName'/));
    await assert.rejects(openExternalPointerStore('postgres', { url: 'mysql://u@h/db', catalogName: 'c' }), badRequest(/postgres:\/\/ URL/));
    await assert.rejects(openExternalPointerStore('postgres', { url: 'postgres://u:secret@h/db', catalogName: 'c' }), badRequest(/must not hold a password/));
    await assert.rejects(openExternalPointerStore('postgres', { url: 'postgres://u@h/db?password=secret', catalogName: 'c' }), badRequest(/may not set 'password'/));
    await assert.rejects(openExternalPointerStore('postgres', { url: 'postgres://u@h/db?sslkey=/etc/shadow', catalogName: 'c' }), badRequest(/may not set 'sslkey'/));
    await assert.rejects(openExternalPointerStore('postgres', { url: 'postgres://u@h/db', catalogName: 'c', passwordEnv: 'PUFFINDB_ADMIN_KEY' }), badRequest(/PGPASSWORD or a variable starting with PUFFINDB_CATALOG_/));
    await assert.rejects(openExternalPointerStore('postgres', { url: 'postgres://u@h/db', catalogName: 'c', passwordEnv: 'PUFFINDB_CATALOG_UNSET_X' }), badRequest(/not set/));
    await assert.rejects(openExternalPointerStore('postgres', { url: 'postgres://u@h/db', catalogName: 'c', passwordSecretArn: 'not-an-arn' }), badRequest(/'passwordSecretArn'/));
    await assert.rejects(
      openExternalPointerStore('postgres', { url: 'postgres://u@h/db', catalogName: 'c', passwordEnv: 'PGPASSWORD', passwordSecretArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:x' }),
      badRequest(/not both/),
    );
  });

  test('refuses the instance metadata address as an endpoint or a Postgres host', async () => {
    await assert.rejects(openExternalPointerStore('glue', { region: 'us-east-1', endpoint: 'http://169.254.169.254/' }), badRequest(/'endpoint' names 169.254.169.254, a link-local/));
    await assert.rejects(openExternalPointerStore('dynamodb', { region: 'us-east-1', table: 'cat', endpoint: 'http://[fd00:ec2::254]/' }), badRequest(/link-local/));
    await assert.rejects(openExternalPointerStore('postgres', { url: 'postgres://u@169.254.169.254:5432/db', catalogName: 'c' }), badRequest(/'url' names 169.254.169.254/));
  });

  test('checkPointerCatalogOptions checks what catalog add is given, without connecting or reading the secret', () => {
    assert.deepEqual(checkPointerCatalogOptions('postgres', { url: 'postgres://u@db.example.com/lake?sslmode=verify-full', catalogName: 'spark', passwordEnv: 'PUFFINDB_CATALOG_NOT_SET_HERE' }), {
      type: 'postgres', url: 'postgres://u@db.example.com/lake?sslmode=verify-full', catalogName: 'spark', passwordEnv: 'PUFFINDB_CATALOG_NOT_SET_HERE',
    });
    assert.deepEqual(checkPointerCatalogOptions('dynamodb', { table: 'iceberg', region: 'eu-west-1' }), { type: 'dynamodb', table: 'iceberg', region: 'eu-west-1', create: false });
    assert.deepEqual(checkPointerCatalogOptions('glue', { region: 'us-gov-west-1', catalogId: '123456789012' }), { type: 'glue', region: 'us-gov-west-1', catalogId: '123456789012' });
    assert.throws(() => checkPointerCatalogOptions('postgres', { url: 'postgres://u@h/db', catalogName: 'c', passwordEnv: 'PG_PASSWORD' }), badRequest(/'passwordEnv' must name PGPASSWORD/));
    assert.throws(() => checkPointerCatalogOptions('dynamodb', { table: 'iceberg' }), badRequest(/needs the option 'region'/));
  });
});
