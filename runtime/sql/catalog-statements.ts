// Which statements are questions about the catalog rather than about data: DESCRIBE t,
// DESCRIBE SELECT ..., SHOW t, SHOW TABLES, SHOW ALL TABLES, queries over
// information_schema.tables / columns / schemata / views, and SUMMARIZE t or SUMMARIZE
// SELECT ... (which is about data: it becomes an aggregate query over it). Decided from
// DuckDB's parse alone, once, by the classifier (runtime/sql/classify.ts); answered by
// runtime/exec/catalog-statements.ts. Pure: no engine, no catalog.

import { visitNodes, type AstNode } from './parse.ts';
import { lex } from './lexer.ts';
import { sqlIdent } from './quote.ts';

export interface CatalogStatement {
  /**
   * 'mirror': answered by DuckDB over a mirror of the catalog (empty tables shaped like the
   * catalog's), since nothing it reads is data. 'summarize': SUMMARIZE as a statement of its
   * own, answered by an aggregate query over the data. 'nested-summarize': SUMMARIZE inside
   * a larger query, which is refused.
   */
  kind: 'mirror' | 'summarize' | 'nested-summarize';
  /** Catalog tables the statement names (inside DESCRIBE / SHOW), as written (qualified, lower-cased). */
  tables: string[];
}

const INFORMATION_SCHEMA = 'information_schema';

function isTableRef(node: AstNode): boolean {
  return typeof node.type === 'string' && !('class' in node) && ['BASE_TABLE', 'SHOW_REF', 'TABLE_FUNCTION', 'SUBQUERY', 'JOIN', 'EXPRESSION_LIST', 'EMPTY', 'PIVOT', 'COLUMN_DATA', 'DELIM_GET'].includes(node.type);
}

function qualified(node: AstNode): string {
  return [node.catalog_name, node.schema_name, node.table_name].filter((p) => typeof p === 'string' && p !== '').join('.').toLowerCase();
}

function isPlainStar(list: unknown): boolean {
  if (!Array.isArray(list) || list.length !== 1) return false;
  const e = list[0] as AstNode;
  return e.class === 'STAR' && !e.relation_name && !e.columns && !e.expr && !e.exclude_list?.length && !e.replace_list?.length && !e.rename_list?.length && !e.qualified_exclude_list?.length;
}

/** The SHOW_REF a statement consists of (SELECT * FROM <show> and nothing else), if it does. */
function wholeShow(node: AstNode): AstNode | undefined {
  if (node.type !== 'SELECT_NODE' || node.from_table?.type !== 'SHOW_REF') return undefined;
  if (!isPlainStar(node.select_list) || node.where_clause || node.having || node.qualify || node.sample) return undefined;
  if (node.group_expressions?.length || node.modifiers?.length || node.cte_map?.map?.length) return undefined;
  return node.from_table;
}

/**
 * What kind of catalog statement a SELECT is (from its query node), or undefined when it
 * reads data the ordinary way. A query mixing catalog tables' data with information_schema
 * is not one (the planner answers it, or says why not).
 */
export function catalogStatementOf(node: AstNode): CatalogStatement | undefined {
  const show = wholeShow(node);
  if (show?.show_type === 'SUMMARY') return { kind: 'summarize', tables: baseTablesIn(show.query) };

  const cteNames = new Set<string>();
  let catalogRefs = 0;
  let tableFunctions = 0;
  let summarize = false;
  const outside: string[] = [];
  const inside: string[] = [];
  const walk = (value: unknown, inShow: boolean): void => {
    if (Array.isArray(value)) {
      for (const v of value) walk(v, inShow);
      return;
    }
    if (!value || typeof value !== 'object') return;
    const n = value as AstNode;
    if (n.cte_map?.map) for (const entry of n.cte_map.map as AstNode[]) if (typeof entry.key === 'string') cteNames.add(entry.key.toLowerCase());
    if (isTableRef(n)) {
      if (n.type === 'SHOW_REF') {
        if (n.show_type === 'SUMMARY') summarize = true;
        catalogRefs++;
        walk(n.query, true);
        return;
      }
      if (n.type === 'BASE_TABLE') {
        if (String(n.schema_name ?? '').toLowerCase() === INFORMATION_SCHEMA) catalogRefs++;
        else (inShow ? inside : outside).push(qualified(n));
      } else if (n.type === 'TABLE_FUNCTION' && !inShow) {
        tableFunctions++;
      }
    }
    for (const key of Object.keys(n)) walk(n[key], inShow);
  };
  walk(node, false);
  if (catalogRefs === 0) return undefined;
  if (summarize) return { kind: 'nested-summarize', tables: [] };
  // Data is read outside DESCRIBE / SHOW (a reference that is no CTE's name, or a table function): not for the mirror.
  if (tableFunctions > 0 || outside.some((t) => !cteNames.has(t))) return undefined;
  return { kind: 'mirror', tables: [...new Set(inside.filter((t) => !cteNames.has(t)))] };
}

function baseTablesIn(node: unknown): string[] {
  const out: string[] = [];
  const ctes = new Set<string>();
  visitNodes(node, (n) => {
    if (n.cte_map?.map) for (const entry of n.cte_map.map as AstNode[]) if (typeof entry.key === 'string') ctes.add(entry.key.toLowerCase());
    if (isTableRef(n) && n.type === 'BASE_TABLE') out.push(qualified(n));
  });
  return [...new Set(out.filter((t) => !ctes.has(t) && !t.startsWith(`${INFORMATION_SCHEMA}.`)))];
}

const QUERY_HEADS = new Set(['SELECT', 'FROM', 'WITH', 'VALUES', 'TABLE', '(']);

/**
 * What a SUMMARIZE statement (comment-free text, as classified) summarizes: a table name
 * (`SUMMARIZE lineitem`) or a query (`SUMMARIZE SELECT ...`), as the SQL text after the keyword.
 */
export function summarizedSource(text: string): { kind: 'table' | 'query'; sql: string } {
  const { tokens } = lex(text);
  const rest = tokens[1] ? text.slice(tokens[1].start).replace(/[\s;]+$/, '') : '';
  const head = tokens[1]?.kind === 'word' ? tokens[1].text.toUpperCase() : tokens[1]?.text;
  return { kind: head && QUERY_HEADS.has(head) ? 'query' : 'table', sql: rest };
}

/** SUMMARIZE's result columns, as DuckDB names and types them. */
export const SUMMARY_COLUMNS = [
  { name: 'column_name', type: 'VARCHAR' }, { name: 'column_type', type: 'VARCHAR' },
  { name: 'min', type: 'VARCHAR' }, { name: 'max', type: 'VARCHAR' },
  { name: 'approx_unique', type: 'BIGINT' }, { name: 'avg', type: 'VARCHAR' },
  { name: 'std', type: 'VARCHAR' }, { name: 'q25', type: 'VARCHAR' },
  { name: 'q50', type: 'VARCHAR' }, { name: 'q75', type: 'VARCHAR' },
  { name: 'count', type: 'BIGINT' }, { name: 'null_percentage', type: 'DECIMAL(9,2)' },
];

const NUMERIC = /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE|DECIMAL(\(\d+,\s*\d+\))?)$/i;
const TEMPORAL = /^(DATE|TIME|TIME WITH TIME ZONE|TIMESTAMP|TIMESTAMP WITH TIME ZONE|TIMESTAMP_S|TIMESTAMP_MS|TIMESTAMP_NS)$/i;

/** Statistics per column in the order of SUMMARY_COLUMNS[2..]: the SQL expressions DuckDB's SUMMARIZE computes. */
function statistics(ref: string, type: string): string[] {
  const numeric = NUMERIC.test(type);
  const ordered = numeric || TEMPORAL.test(type);
  const text = (e: string) => `CAST(${e} AS VARCHAR)`;
  const none = 'CAST(NULL AS VARCHAR)';
  return [
    text(`min(${ref})`),
    text(`max(${ref})`),
    `approx_count_distinct(${ref})`,
    ordered ? text(`avg(${ref})`) : none,
    numeric ? text(`stddev_samp(${ref})`) : none,
    ...[0.25, 0.5, 0.75].map((q) => (ordered ? text(`approx_quantile(${ref}, ${q})`) : none)),
    // DuckDB's own formula (in DOUBLE): the same rounding at .xx5 boundaries; NULL for no rows.
    `CASE WHEN count(*) = 0 THEN NULL ELSE CAST((1 - CAST(count(${ref}) AS DOUBLE) / count(*)) * 100 AS DECIMAL(9,2)) END`,
  ];
}

/**
 * SUMMARIZE as one aggregate query over the data (so it runs distributed like any
 * aggregate): one output row, nine statistics per column (s<i>_<j>) and the row count (n).
 * `pivotSummary` turns that row into SUMMARIZE's rows.
 */
export function summaryQuery(source: { kind: 'table' | 'query'; sql: string }, columns: readonly { name: string; type: string }[]): string {
  const refs = columns.map((c, i) => (source.kind === 'table' ? sqlIdent(c.name) : sqlIdent(`c${i}`)));
  const select = columns.flatMap((c, i) => statistics(refs[i], c.type).map((e, j) => `${e} AS ${sqlIdent(`s${i}_${j}`)}`));
  select.push('count(*) AS n');
  const from = source.kind === 'table' ? source.sql : `(${source.sql}) AS __summarized(${refs.join(', ')})`;
  return `SELECT ${select.join(', ')} FROM ${from}`;
}

/** The aggregate row of summaryQuery as SUMMARIZE's rows: one per column. */
export function pivotSummary<V>(columns: readonly { name: string; type: string }[], row: readonly V[]): (V | string)[][] {
  const n = row[row.length - 1];
  return columns.map((c, i) => {
    const s = row.slice(i * 9, i * 9 + 9);
    return [c.name, c.type, s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], n, s[8]];
  });
}
