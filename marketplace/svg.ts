// A small SVG writer (no dependency): elements with escaped attributes and text, written
// with stable attribute order and fixed number formatting, so the same drawing always
// produces the same bytes (the committed diagram is compared byte for byte).

export type Attrs = Record<string, string | number | undefined>;

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const num = (n: number): string => (Number.isInteger(n) ? String(n) : n.toFixed(1));

function attrs(a: Attrs): string {
  return Object.entries(a)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}="${typeof v === 'number' ? num(v) : escapeXml(String(v))}"`)
    .join('');
}

export class SvgWriter {
  private readonly lines: string[] = [];
  private depth = 1;

  constructor(private readonly width: number, private readonly height: number) {}

  element(name: string, a: Attrs, text?: string): this {
    const body = text === undefined ? '/>' : `>${escapeXml(text)}</${name}>`;
    this.lines.push(`${'  '.repeat(this.depth)}<${name}${attrs(a)}${body}`);
    return this;
  }

  open(name: string, a: Attrs = {}): this {
    this.lines.push(`${'  '.repeat(this.depth)}<${name}${attrs(a)}>`);
    this.depth++;
    return this;
  }

  close(name: string): this {
    this.depth--;
    this.lines.push(`${'  '.repeat(this.depth)}</${name}>`);
    return this;
  }

  raw(line: string): this {
    this.lines.push(`${'  '.repeat(this.depth)}${line}`);
    return this;
  }

  toString(): string {
    const head = `<svg xmlns="http://www.w3.org/2000/svg" width="${num(this.width)}" height="${num(this.height)}" viewBox="0 0 ${num(this.width)} ${num(this.height)}" font-family="Helvetica, Arial, sans-serif" font-size="12">`;
    return `${head}\n${this.lines.join('\n')}\n</svg>\n`;
  }
}
