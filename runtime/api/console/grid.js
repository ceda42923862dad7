// The results grid: a table of one page of rows. Values are text nodes; NULL, numbers,
// nested values (lists, structs, maps) are shown apart.

import { h } from './dom.js';

const NUMERIC = /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE|REAL|DECIMAL|NUMERIC|INT)/i;

/** @param {unknown} v */
function cellText(v) {
  if (v === null || v === undefined) return null;
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/**
 * @param {{name: string, type: string}[]} columns
 * @param {Record<string, unknown>[] | unknown[][]} rows
 * @param {number} offset  the first row's number (0-based) in the whole result
 */
export function grid(columns, rows, offset = 0) {
  const numeric = columns.map((c) => NUMERIC.test(c.type) && !c.type.endsWith(']'));
  const head = h('tr', null, h('th', { class: 'rownum' }, '#'), columns.map((c) => h('th', { title: c.type }, h('span', { class: 'col-name' }, c.name), h('span', { class: 'col-type' }, c.type))));
  const body = rows.map((row, i) => {
    const values = Array.isArray(row) ? row : columns.map((c) => /** @type {Record<string, unknown>} */ (row)[c.name]);
    return h('tr', null, h('td', { class: 'rownum' }, offset + i + 1), values.map((v, j) => {
      const text = cellText(v);
      if (text === null) return h('td', { class: 'null' }, 'NULL');
      return h('td', { class: numeric[j] ? 'num' : typeof v === 'object' ? 'nested' : null, title: text.length > 80 ? text.slice(0, 2000) : null }, text.length > 500 ? `${text.slice(0, 500)}…` : text);
    }));
  });
  return h('div', { class: 'grid-wrap' }, h('table', { class: 'grid' }, h('thead', null, head), h('tbody', null, body)));
}
