import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { geometricMean, measureInterleaved, summarize } from '../../bench/harness.ts';
import { barChart } from '../../bench/svg.ts';
import { PuffinError } from '../../runtime/errors.ts';

describe('harness statistics', () => {
  test('summarize gives median (odd and even counts), min and max regardless of order', () => {
    assert.deepEqual(summarize([5, 1, 3]), { median: 3, min: 1, max: 5, n: 3 });
    assert.deepEqual(summarize([4, 1, 3, 2]), { median: 2.5, min: 1, max: 4, n: 4 });
    assert.deepEqual(summarize([7]), { median: 7, min: 7, max: 7, n: 1 });
  });

  test('summarize refuses an empty or non-finite series with a PuffinError', () => {
    assert.throws(() => summarize([]), PuffinError);
    assert.throws(() => summarize([1, Number.NaN]), /finite/);
  });

  test('geometric mean of ratios; refuses non-positive values', () => {
    assert.ok(Math.abs(geometricMean([2, 8]) - 4) < 1e-12);
    assert.ok(Math.abs(geometricMean([0.5, 2]) - 1) < 1e-12);
    assert.throws(() => geometricMean([1, 0]), PuffinError);
    assert.throws(() => geometricMean([]), PuffinError);
  });

  test('measureInterleaved warms up, repeats, and rotates the order of contenders', async () => {
    const calls: string[] = [];
    const m = await measureInterleaved(
      ['a', 'b', 'c'].map((name) => ({ name, run: async () => { calls.push(name); return name.toUpperCase(); } })),
      { warmup: 1, reps: 3 },
    );
    assert.deepEqual(calls, ['a', 'b', 'c', 'a', 'b', 'c', 'b', 'c', 'a', 'c', 'a', 'b']);
    for (const name of ['a', 'b', 'c']) {
      assert.equal(m.raw[name].length, 3);
      assert.equal(m.timings[name].n, 3);
      assert.ok(m.timings[name].min <= m.timings[name].median && m.timings[name].median <= m.timings[name].max);
    }
    assert.equal(m.last.b, 'B');
    await assert.rejects(measureInterleaved([], { warmup: 0, reps: 1 }), PuffinError);
    await assert.rejects(measureInterleaved([{ name: 'x', run: async () => 0 }], { warmup: 0, reps: 0 }), PuffinError);
  });

  test('the bar chart is SVG with one bar per non-null value, and escapes labels', () => {
    const svg = barChart({ title: 'a < b', unit: 'ms', series: ['s1', 's2'], groups: [{ label: 'q1', values: [1, 2] }, { label: 'q&2', values: [3, null] }], log: true });
    assert.match(svg, /^<svg /);
    assert.equal((svg.match(/<rect x="\d/g) ?? []).length, 3 + 2, 'three bars and two legend swatches');
    assert.ok(svg.includes('a &lt; b') && svg.includes('q&amp;2'));
    assert.ok(!svg.includes('NaN'));
  });
});
