// The Marketplace product information (marketplace/listing.yaml): read, checked against the
// field limits of the Management Portal's product form and of the Catalog API's
// UpdateInformation change, and against the metering dimensions the instance reports, so a
// listing that Marketplace would refuse, or one that prices a dimension nobody meters, fails
// `npm run package` and the tests instead of a seller's submission.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { PuffinError } from '../runtime/errors.ts';
import { METERING_DIMENSIONS } from '../runtime/metering/dimensions.ts';

export const LISTING_PATH = join(dirname(fileURLToPath(import.meta.url)), 'listing.yaml');

export interface PricingDimension {
  key: string;
  name: string;
  description: string;
  unit: string;
}

export interface Listing {
  product_title: string;
  short_description: string;
  long_description: string;
  highlights: string[];
  search_keywords: string[];
  categories: string[];
  pricing_dimensions: PricingDimension[];
  support_description: string;
  usage_instructions: string;
}

/**
 * Limits of the product detail fields, in characters. Sources: the AWS Marketplace Management
 * Portal's "Create product" form, as tabulated in
 * https://docs.saasus.io/docs/aws-marketplace-integration/supplementary/supplementary-2
 * (title 72, short description 1000, long description 5000, 1 to 3 highlights of 500, support
 * details 2000, search keywords 250 in all, comma-separated), AWS's seller guide "Categories
 * and metadata" (https://docs.aws.amazon.com/marketplace/latest/userguide/categories-and-metadata.html:
 * a product description of up to 350 characters, applied to the short description, the
 * stricter of the two), and the Catalog API's UpdateInformation example for AmiProduct@1.0
 * (https://docs.aws.amazon.com/marketplace-catalog/latest/api-reference/ami-products.html:
 * up to three categories).
 */
export const LISTING_LIMITS = {
  productTitle: 72,
  shortDescription: 350,
  longDescription: 5000,
  highlightsMin: 1,
  highlightsMax: 3,
  highlight: 500,
  supportDescription: 2000,
  searchKeywordsTotal: 250,
  categoriesMin: 1,
  categoriesMax: 3,
  /** Usage instructions of an AMI version (the portal's "Usage instructions" box). */
  usageInstructions: 5000,
  /** Dimension API names: letters, digits and underscores (MeterUsage UsageDimension). */
  dimensionKey: /^[A-Za-z0-9_.-]{1,100}$/,
} as const;

const STRING_FIELDS = ['product_title', 'short_description', 'long_description', 'support_description', 'usage_instructions'] as const;
const LIST_FIELDS = ['highlights', 'search_keywords', 'categories', 'pricing_dimensions'] as const;

/** Every reason Marketplace would refuse the listing, or the metering would disagree with it; empty when it is fine. */
export function listingProblems(value: unknown): string[] {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return ['the listing must be a YAML mapping'];
  const l = value as Record<string, unknown>;
  const problems: string[] = [];
  for (const f of STRING_FIELDS) if (typeof l[f] !== 'string' || (l[f] as string).trim() === '') problems.push(`${f} must be a non-empty string`);
  for (const f of LIST_FIELDS) if (!Array.isArray(l[f])) problems.push(`${f} must be a list`);
  const known = new Set<string>([...STRING_FIELDS, ...LIST_FIELDS]);
  for (const k of Object.keys(l)) if (!known.has(k)) problems.push(`unknown field ${k}`);
  if (problems.length > 0) return problems;
  const listing = l as unknown as Listing;

  const max = (field: string, text: string, limit: number): void => {
    if (text.length > limit) problems.push(`${field} is ${text.length} characters; the limit is ${limit}`);
  };
  max('product_title', listing.product_title, LISTING_LIMITS.productTitle);
  max('short_description', listing.short_description, LISTING_LIMITS.shortDescription);
  max('long_description', listing.long_description, LISTING_LIMITS.longDescription);
  max('support_description', listing.support_description, LISTING_LIMITS.supportDescription);
  max('usage_instructions', listing.usage_instructions, LISTING_LIMITS.usageInstructions);

  const h = listing.highlights;
  if (h.length < LISTING_LIMITS.highlightsMin || h.length > LISTING_LIMITS.highlightsMax) problems.push(`highlights has ${h.length} entries; ${LISTING_LIMITS.highlightsMin} to ${LISTING_LIMITS.highlightsMax} are allowed`);
  h.forEach((x, i) => (typeof x === 'string' && x.trim() ? max(`highlights[${i}]`, x, LISTING_LIMITS.highlight) : problems.push(`highlights[${i}] must be a non-empty string`)));

  const keywords = listing.search_keywords;
  if (keywords.some((k) => typeof k !== 'string' || k.trim() === '' || k.includes(','))) problems.push('search_keywords must be non-empty strings without commas (Marketplace joins them with commas)');
  else max('search_keywords (joined with commas)', keywords.join(','), LISTING_LIMITS.searchKeywordsTotal);

  const c = listing.categories;
  if (c.length < LISTING_LIMITS.categoriesMin || c.length > LISTING_LIMITS.categoriesMax) problems.push(`categories has ${c.length} entries; ${LISTING_LIMITS.categoriesMin} to ${LISTING_LIMITS.categoriesMax} are allowed`);
  if (new Set(c).size !== c.length) problems.push('categories has duplicates');

  problems.push(...dimensionProblems(listing.pricing_dimensions));
  return problems;
}

/** The listing's pricing dimensions against METERING_DIMENSIONS: same keys, order, units and descriptions. */
export function dimensionProblems(dimensions: readonly PricingDimension[]): string[] {
  const problems: string[] = [];
  const metered = METERING_DIMENSIONS.map((d) => d.key);
  const listed = dimensions.map((d) => d?.key);
  if (JSON.stringify(listed) !== JSON.stringify(metered)) {
    problems.push(`pricing_dimensions ${JSON.stringify(listed)} must be the metered dimensions ${JSON.stringify(metered)} (runtime/metering/dimensions.ts), in that order`);
  }
  dimensions.forEach((d, i) => {
    if (!d || typeof d.key !== 'string' || !LISTING_LIMITS.dimensionKey.test(d.key)) problems.push(`pricing_dimensions[${i}].key must match ${LISTING_LIMITS.dimensionKey}`);
    if (!d || typeof d.name !== 'string' || d.name.trim() === '') problems.push(`pricing_dimensions[${i}].name must be a non-empty string`);
    const m = METERING_DIMENSIONS.find((x) => x.key === d?.key);
    if (m && d.unit !== m.unit) problems.push(`pricing_dimensions[${i}] (${d.key}) has unit ${JSON.stringify(d.unit)}; the metering service reports ${JSON.stringify(m.unit)}`);
    if (m && d.description !== m.description) problems.push(`pricing_dimensions[${i}] (${d.key}) description differs from the metering dimension's: ${JSON.stringify(m.description)}`);
  });
  return problems;
}

/** Reads and checks the listing; a PuffinError names every problem. */
export function loadListing(path = LISTING_PATH): Listing {
  let value: unknown;
  try {
    value = parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new PuffinError('bad_request', `cannot read the Marketplace listing ${path}: ${(err as Error).message}`);
  }
  const problems = listingProblems(value);
  if (problems.length > 0) throw new PuffinError('bad_request', `the Marketplace listing ${path} is not valid:\n  - ${problems.join('\n  - ')}`);
  return value as Listing;
}
