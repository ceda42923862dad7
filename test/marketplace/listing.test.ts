// marketplace/listing.yaml against AWS Marketplace's product-detail limits and against the
// dimensions the metering service reports. Limits and their sources: LISTING_LIMITS in
// marketplace/listing.ts (the Management Portal's product form as tabulated at
// https://docs.saasus.io/docs/aws-marketplace-integration/supplementary/supplementary-2: title 72,
// short description 1000, long description 5000, up to 3 highlights of 500, support 2000,
// keywords 250; AWS's "Categories and metadata" guide: descriptions up to 350 characters;
// https://docs.aws.amazon.com/marketplace-catalog/latest/api-reference/ami-products.html:
// UpdateInformation for AmiProduct@1.0 with up to three categories).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { readFileSync } from 'node:fs';
import { dimensionProblems, LISTING_LIMITS, LISTING_PATH, listingProblems, loadListing } from '../../marketplace/listing.ts';
import { PuffinError } from '../../runtime/errors.ts';
import { METERING_DIMENSIONS } from '../../runtime/metering/dimensions.ts';

const raw = parse(readFileSync(LISTING_PATH, 'utf8')) as Record<string, unknown>;
const withField = (field: string, value: unknown): Record<string, unknown> => ({ ...structuredClone(raw), [field]: value });

describe('the listing', () => {
  test('is within every documented limit', () => {
    assert.deepEqual(listingProblems(raw), []);
    const l = loadListing();
    assert.ok(l.product_title.length <= 72 && LISTING_LIMITS.productTitle === 72);
    assert.ok(l.highlights.length >= 1 && l.highlights.length <= 3);
    assert.ok(l.search_keywords.join(',').length <= 250);
  });

  test('prices exactly the metered dimensions, with their units and descriptions', () => {
    const l = loadListing();
    assert.deepEqual(l.pricing_dimensions.map((d) => [d.key, d.unit, d.description]), METERING_DIMENSIONS.map((d) => [d.key, d.unit, d.description]));
  });

  test('usage instructions say how to launch, where the admin key is, and how to send a first query with curl', () => {
    const u = loadListing().usage_instructions;
    assert.match(u, /AdminCidr/);
    assert.match(u, /AdminKeySecretArn/);
    assert.match(u, /secretsmanager get-secret-value/);
    assert.match(u, /curl .*-X POST "<url>\/v1\/query" -H "Authorization: Bearer \$KEY"/);
    assert.match(u, /AdminApiUrl/);
  });

  test('each limit is enforced', () => {
    const over = (n: number): string => 'x'.repeat(n + 1);
    const cases: [string, unknown, RegExp][] = [
      ['product_title', over(LISTING_LIMITS.productTitle), /product_title is 73 characters; the limit is 72/],
      ['short_description', over(LISTING_LIMITS.shortDescription), /short_description is/],
      ['long_description', over(LISTING_LIMITS.longDescription), /long_description is/],
      ['support_description', over(LISTING_LIMITS.supportDescription), /support_description is/],
      ['highlights', ['a', 'b', 'c', 'd'], /highlights has 4 entries/],
      ['highlights', [], /highlights has 0 entries/],
      ['highlights', [over(LISTING_LIMITS.highlight)], /highlights\[0\] is 501 characters/],
      ['search_keywords', Array.from({ length: 30 }, (_, i) => `keyword${i}`), /search_keywords \(joined with commas\) is/],
      ['search_keywords', ['a,b'], /without commas/],
      ['categories', ['A', 'B', 'C', 'D'], /categories has 4 entries/],
      ['product_title', '', /product_title must be a non-empty string/],
      ['surprise', 'x', /unknown field surprise/],
    ];
    for (const [field, value, message] of cases) {
      const problems = listingProblems(withField(field, value));
      assert.ok(problems.some((p) => message.test(p)), `${field}=${JSON.stringify(value).slice(0, 40)}: ${JSON.stringify(problems)}`);
    }
  });

  test('a pricing dimension that drifts from the metering table is refused', () => {
    const dims = (raw.pricing_dimensions as { key: string; unit: string; description: string; name: string }[]);
    assert.match(dimensionProblems(dims.slice(1)).join('\n'), /must be the metered dimensions/);
    assert.match(dimensionProblems([{ ...dims[0]!, unit: 'TB' }, ...dims.slice(1)]).join('\n'), /has unit "TB"; the metering service reports "GB"/);
    assert.match(dimensionProblems([...dims].reverse()).join('\n'), /in that order/);
  });

  test('loadListing names every problem in one PuffinError', () => {
    const dir = mkdtempSync(join(tmpdir(), 'puffindb-listing-'));
    try {
      const path = join(dir, 'listing.yaml');
      writeFileSync(path, 'product_title: [unclosed');
      assert.throws(() => loadListing(path), (e: unknown) => e instanceof PuffinError && /cannot read the Marketplace listing/.test(e.message));
      writeFileSync(path, JSON.stringify(withField('categories', [])));
      assert.throws(() => loadListing(path), (e: unknown) => e instanceof PuffinError && /categories has 0 entries/.test(e.message));
      assert.deepEqual(listingProblems('text'), ['the listing must be a YAML mapping']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
