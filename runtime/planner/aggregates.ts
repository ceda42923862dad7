// Partial and final aggregation, as one table of rules (DataFusion's Partial/Final modes).
// Each fragment computes the `partials` over its rows; the reduce step combines them with
// `final`. Templates are SQL: `__x0`, `__x1` stand for the call's arguments, `__p0`,
// `__p1` for the partial columns. An aggregate without a row here makes the planner fall
// back to the single-node shape, so adding an aggregate is adding a row. A rule that does
// not fit its argument's type (say avg over an interval) fails the planner's DuckDB check
// of the rewritten SQL, and that query too runs single-node.
//
// DISTINCT aggregates need no row: their arguments become grouping keys of the partial
// step, and the reduce step applies the same aggregate with DISTINCT to those keys.

export interface AggregateRule {
  /** Function names DuckDB knows this aggregate by (lower case). */
  names: string[];
  /** Number of arguments this rule handles. */
  arity: number;
  partials: string[];
  final: string;
}

// Variance family: each fragment sends n, its mean and its sum of squared deviations
// (M2 = var_pop * n); the reduce step merges them with Chan et al.'s parallel formula,
// M2 = sum(M2_i) + sum(n_i * mean_i^2) - (sum(n_i * mean_i))^2 / n,
// which avoids the catastrophic cancellation of summing raw squares.
const M2 = '(sum(__p0 * __p2) + sum(__p0 * __p1 * __p1) - sum(__p0 * __p1) * sum(__p0 * __p1) / sum(__p0))';
const VAR_PARTIALS = ['count(__x0)', 'avg(CAST(__x0 AS DOUBLE))', 'var_pop(CAST(__x0 AS DOUBLE))'];
const VAR_POP = `CASE WHEN sum(__p0) > 0 THEN greatest(${M2}, 0) / sum(__p0) END`;
const VAR_SAMP = `CASE WHEN sum(__p0) > 1 THEN greatest(${M2}, 0) / (sum(__p0) - 1) END`;

export const AGGREGATE_RULES: AggregateRule[] = [
  { names: ['count_star'], arity: 0, partials: ['count_star()'], final: 'coalesce(sum(__p0), 0)' },
  { names: ['count'], arity: 0, partials: ['count_star()'], final: 'coalesce(sum(__p0), 0)' },
  { names: ['count'], arity: 1, partials: ['count(__x0)'], final: 'coalesce(sum(__p0), 0)' },
  { names: ['count_if', 'countif'], arity: 1, partials: ['count_if(__x0)'], final: 'coalesce(sum(__p0), 0)' },
  { names: ['sum'], arity: 1, partials: ['sum(__x0)'], final: 'sum(__p0)' },
  { names: ['fsum', 'sumkahan', 'kahan_sum'], arity: 1, partials: ['kahan_sum(__x0)'], final: 'kahan_sum(__p0)' },
  { names: ['min'], arity: 1, partials: ['min(__x0)'], final: 'min(__p0)' },
  { names: ['max'], arity: 1, partials: ['max(__x0)'], final: 'max(__p0)' },
  { names: ['avg', 'mean'], arity: 1, partials: ['sum(__x0)', 'count(__x0)'], final: 'CAST(sum(__p0) AS DOUBLE) / sum(__p1)' },
  { names: ['favg'], arity: 1, partials: ['kahan_sum(__x0)', 'count(__x0)'], final: 'kahan_sum(__p0) / sum(__p1)' },
  { names: ['var_pop'], arity: 1, partials: VAR_PARTIALS, final: VAR_POP },
  { names: ['var_samp', 'variance'], arity: 1, partials: VAR_PARTIALS, final: VAR_SAMP },
  { names: ['stddev_pop'], arity: 1, partials: VAR_PARTIALS, final: `sqrt(${VAR_POP})` },
  { names: ['stddev_samp', 'stddev'], arity: 1, partials: VAR_PARTIALS, final: `sqrt(${VAR_SAMP})` },
  { names: ['bool_and'], arity: 1, partials: ['bool_and(__x0)'], final: 'bool_and(__p0)' },
  { names: ['bool_or'], arity: 1, partials: ['bool_or(__x0)'], final: 'bool_or(__p0)' },
  { names: ['bit_and'], arity: 1, partials: ['bit_and(__x0)'], final: 'bit_and(__p0)' },
  { names: ['bit_or'], arity: 1, partials: ['bit_or(__x0)'], final: 'bit_or(__p0)' },
  { names: ['bit_xor'], arity: 1, partials: ['bit_xor(__x0)'], final: 'bit_xor(__p0)' },
  { names: ['product'], arity: 1, partials: ['product(__x0)'], final: 'product(__p0)' },
  {
    // regr_count(y, x): pairs where both are non-NULL.
    names: ['regr_count'], arity: 2,
    partials: ['regr_count(__x0, __x1)'], final: 'coalesce(sum(__p0), 0)',
  },
];

/** Aggregates that are combinable under DISTINCT by grouping on their argument. */
export const DISTINCT_SAFE = new Set(['count', 'sum', 'avg', 'mean', 'min', 'max', 'product', 'bool_and', 'bool_or', 'bit_and', 'bit_or',
  'var_pop', 'var_samp', 'variance', 'stddev', 'stddev_pop', 'stddev_samp', 'favg', 'fsum', 'sumkahan', 'kahan_sum']);

export function findRule(name: string, arity: number): AggregateRule | undefined {
  const n = name.toLowerCase();
  return AGGREGATE_RULES.find((r) => r.names.includes(n) && r.arity === arity);
}
