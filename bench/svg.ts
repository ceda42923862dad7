// A tiny grouped bar-chart generator (SVG text, no dependency) for bench/results/README.md.

import type { ChartSpec } from './harness.ts';

const COLOURS = ['#3b6ea8', '#e08a2c', '#5a9e4b', '#b8433f', '#7d5ba6', '#8c6d4f'];

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6) return `${(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${(v / 1e3).toPrecision(3)}k`;
  if (a >= 100) return v.toFixed(0);
  return v.toPrecision(3);
}

/** Render a grouped bar chart; null values draw no bar. */
export function barChart(spec: ChartSpec): string {
  const barW = 10;
  const groupGap = 12;
  const groupW = spec.series.length * barW + groupGap;
  const left = 60;
  const top = 40;
  const plotH = 220;
  const width = Math.max(360, left + 20 + spec.groups.length * groupW);
  const height = top + plotH + 80;
  const values = spec.groups.flatMap((g) => g.values).filter((v): v is number => v !== null && Number.isFinite(v) && (!spec.log || v > 0));
  const maxV = values.length ? Math.max(...values) : 1;
  const minV = spec.log && values.length ? Math.min(...values) : 0;
  const lo = spec.log ? Math.floor(Math.log10(minV)) : 0;
  const hi = spec.log ? Math.max(lo + 1, Math.ceil(Math.log10(maxV))) : maxV * 1.1 || 1;
  const y = (v: number): number => {
    const f = spec.log ? (Math.log10(v) - lo) / (hi - lo) : v / hi;
    return top + plotH - Math.max(0, Math.min(1, f)) * plotH;
  };
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="10">`);
  out.push(`<rect width="100%" height="100%" fill="white"/>`);
  out.push(`<text x="${left}" y="16" font-size="13" font-weight="bold">${esc(spec.title)}</text>`);
  const ticks = spec.log ? Array.from({ length: hi - lo + 1 }, (_, i) => 10 ** (lo + i)) : [0, 0.25, 0.5, 0.75, 1].map((f) => f * hi);
  for (const t of ticks) {
    out.push(`<line x1="${left}" x2="${width - 10}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#ddd"/>`);
    out.push(`<text x="${left - 4}" y="${(y(t) + 3).toFixed(1)}" text-anchor="end">${fmt(t)}</text>`);
  }
  out.push(`<text x="12" y="${top + plotH / 2}" transform="rotate(-90 12 ${top + plotH / 2})" text-anchor="middle">${esc(spec.unit)}${spec.log ? ' (log)' : ''}</text>`);
  spec.groups.forEach((g, gi) => {
    const gx = left + 10 + gi * groupW;
    g.values.forEach((v, si) => {
      if (v === null || !Number.isFinite(v) || (spec.log && v <= 0)) return;
      const yy = y(v);
      out.push(`<rect x="${gx + si * barW}" y="${yy.toFixed(1)}" width="${barW - 1}" height="${(top + plotH - yy).toFixed(1)}" fill="${COLOURS[si % COLOURS.length]}"><title>${esc(`${g.label} ${spec.series[si]}: ${fmt(v)} ${spec.unit}`)}</title></rect>`);
    });
    const lx = gx + (spec.series.length * barW) / 2;
    out.push(`<text x="${lx}" y="${top + plotH + 12}" text-anchor="end" transform="rotate(-45 ${lx} ${top + plotH + 12})">${esc(g.label)}</text>`);
  });
  spec.series.forEach((s, si) => {
    const lx = left + si * 130;
    out.push(`<rect x="${lx}" y="${height - 14}" width="10" height="10" fill="${COLOURS[si % COLOURS.length]}"/><text x="${lx + 14}" y="${height - 5}">${esc(s)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
