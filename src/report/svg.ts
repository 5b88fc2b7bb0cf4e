/**
 * SVG for the HTML report, written as text: no chart library and no script, so the page renders the
 * same in a browser, printed, as a PDF and in greyscale. Emphasis never rests on colour alone: the
 * emphasised series is thicker and hatched, and every mark carries a text label.
 */

export function esc(s: string | number): string {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const f1 = (n: number) => (Math.round(n * 10) / 10).toString();

/** Shared <defs>: hatch patterns referenced as url(#hatch) / url(#dots). Put once in the page. */
export function patternDefs(): string {
  return `<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs>
<pattern id="hatch" patternUnits="userSpaceOnUse" width="6" height="6" patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff"/><line x1="0" y1="0" x2="0" y2="6" stroke="#000" stroke-width="2.5"/></pattern>
<pattern id="dots" patternUnits="userSpaceOnUse" width="5" height="5"><rect width="5" height="5" fill="#fff"/><circle cx="2.5" cy="2.5" r="1" fill="#000"/></pattern>
</defs></svg>`;
}

/** Round axis steps: 1, 2, 5 x 10^k, about `n` of them over [lo, hi]. */
export function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

export interface Panel {
  title: string;
  subtitle: string;
  /** Hatched area, thick line, "LEAKING" in the title. */
  emphasis: boolean;
}

/** One small line chart (own y scale) of a series over seconds; the area under the emphasised one is hatched. */
export function linePanel(p: Panel, t: number[], values: number[], unit: (v: number, step: number) => string, w = 330, h = 190): string {
  const m = { l: 72, r: 10, t: 40, b: 30 };
  const iw = w - m.l - m.r;
  const ih = h - m.t - m.b;
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  // A flat line sits mid-panel on a scale of +-5% (not +-1 byte: the axis would print noise digits).
  if (hi === lo) [lo, hi] = [lo - Math.max(1, lo * 0.05), hi + Math.max(1, hi * 0.05)];
  const pad = (hi - lo) * 0.08;
  lo = Math.max(0, lo - pad);
  hi += pad;
  const t0 = t[0];
  const t1 = t[t.length - 1] > t0 ? t[t.length - 1] : t0 + 1;
  const x = (s: number) => m.l + ((s - t0) / (t1 - t0)) * iw;
  const y = (v: number) => m.t + ih - ((v - lo) / (hi - lo)) * ih;
  const pts = values.map((v, i) => `${f1(x(t[i]))},${f1(y(v))}`).join(' ');
  const o: string[] = [];
  o.push(`<svg class="chart panel${p.emphasis ? ' emphasis' : ''}" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="${esc(`${p.title}: ${p.subtitle}`)}">`);
  o.push(`<text x="4" y="15" class="ptitle">${esc(p.title)}${p.emphasis ? ' — LEAKING' : ''}</text>`);
  o.push(`<text x="4" y="30" class="psub">${esc(p.subtitle)}</text>`);
  const yt = niceTicks(lo, hi, 4);
  const step = yt.length > 1 ? yt[1] - yt[0] : hi - lo;
  for (const v of yt) {
    o.push(`<line x1="${m.l}" x2="${w - m.r}" y1="${f1(y(v))}" y2="${f1(y(v))}" class="grid"/><text x="${m.l - 4}" y="${f1(y(v) + 4)}" class="tick" text-anchor="end">${esc(unit(v, step))}</text>`);
  }
  for (const s of niceTicks(0, t1 - t0, 5)) {
    o.push(`<line x1="${f1(x(t0 + s))}" x2="${f1(x(t0 + s))}" y1="${m.t + ih}" y2="${m.t + ih + 4}" class="axis"/><text x="${f1(x(t0 + s))}" y="${h - 12}" class="tick" text-anchor="middle">${esc(s)} s</text>`);
  }
  o.push(`<line x1="${m.l}" x2="${w - m.r}" y1="${m.t + ih}" y2="${m.t + ih}" class="axis"/><line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${m.t + ih}" class="axis"/>`);
  if (p.emphasis) o.push(`<polygon points="${f1(x(t[0]))},${m.t + ih} ${pts} ${f1(x(t[t.length - 1]))},${m.t + ih}" fill="url(#hatch)" opacity="0.45"/>`);
  o.push(`<polyline points="${pts}" class="line${p.emphasis ? ' strong' : ''}" fill="none"/>`);
  o.push('</svg>');
  return o.join('');
}

/** Two bars (before, after) on the panel's own scale, each labelled with its value. */
export function beforeAfterPanel(p: Panel, before: number | null, after: number, unit: (v: number) => string, w = 330, h = 190): string {
  const m = { l: 10, r: 10, t: 40, b: 36 };
  const ih = h - m.t - m.b;
  const hi = Math.max(after, before ?? 0) * 1.1 || 1;
  const bars: [string, number | null][] = [['before', before], ['after', after]];
  const bw = 90;
  const o: string[] = [];
  o.push(`<svg class="chart panel${p.emphasis ? ' emphasis' : ''}" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="${esc(`${p.title}: ${p.subtitle}`)}">`);
  o.push(`<text x="4" y="15" class="ptitle">${esc(p.title)}${p.emphasis ? ' — LEAKING' : ''}</text>`);
  o.push(`<text x="4" y="30" class="psub">${esc(p.subtitle)}</text>`);
  bars.forEach(([label, v], i) => {
    const x = m.l + 40 + i * (bw + 60);
    if (v === null) {
      o.push(`<text x="${x + bw / 2}" y="${m.t + ih / 2}" class="tick" text-anchor="middle">not recorded</text>`);
    } else {
      const bh = (v / hi) * ih;
      const fill = p.emphasis && i === 1 ? 'url(#hatch)' : i === 1 ? '#bbb' : '#fff';
      o.push(`<rect x="${x}" y="${f1(m.t + ih - bh)}" width="${bw}" height="${f1(Math.max(bh, 0.5))}" fill="${fill}" class="bar"/>`);
      o.push(`<text x="${x + bw / 2}" y="${f1(m.t + ih - bh - 4)}" class="tick" text-anchor="middle">${esc(unit(v))}</text>`);
    }
    o.push(`<text x="${x + bw / 2}" y="${h - 16}" class="tick" text-anchor="middle">${label}</text>`);
  });
  o.push(`<line x1="${m.l}" x2="${w - m.r}" y1="${m.t + ih}" y2="${m.t + ih}" class="axis"/></svg>`);
  return o.join('');
}

export interface BarRow {
  label: string;
  value: number;
  /** Text right of the bar (the value, a share). */
  note: string;
  emphasis?: boolean;
  /** Part of the bar drawn solid (e.g. marked of unfreed); the rest outlined. */
  part?: number;
}

/** Horizontal bars with labels on the left; one scale for all rows. */
export function hBars(rows: BarRow[], opts: { labelWidth?: number; width?: number; aria: string }): string {
  const lw = opts.labelWidth ?? 300;
  const w = opts.width ?? 900;
  const rh = 24;
  // Room right of the longest bar for the longest note (11px text: ~6.3px a character).
  const noteW = Math.max(...rows.map((r) => r.note.length + (r.emphasis ? 7 : 0)), 4) * 6.3 + 14;
  const bwMax = Math.max(80, w - lw - noteW);
  const max = Math.max(1, ...rows.map((r) => r.value));
  const h = rows.length * rh + 6;
  const o: string[] = [`<svg class="chart bars" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="${esc(opts.aria)}">`];
  rows.forEach((r, i) => {
    const y = 3 + i * rh;
    const bw = Math.max(1, (r.value / max) * bwMax);
    const label = r.label.length > 48 ? `${r.label.slice(0, 47)}…` : r.label;
    o.push(`<text x="${lw - 8}" y="${y + 16}" class="blabel${r.emphasis ? ' strong' : ''}" text-anchor="end">${esc(label)}<title>${esc(r.label)}</title></text>`);
    // A bar with a part: the part dotted, the rest plain; emphasis is then a heavy outline (hatching
    // would hide under the dots). A bar without: emphasis is hatching.
    const split = r.part !== undefined;
    const fill = !split && r.emphasis ? 'url(#hatch)' : '#ddd';
    o.push(`<rect x="${lw}" y="${y + 3}" width="${f1(bw)}" height="${rh - 8}" fill="${fill}" class="bar${split && r.emphasis ? ' heavy' : ''}"/>`);
    if (split && r.value > 0 && r.part! > 0) {
      o.push(`<rect x="${lw}" y="${y + 3}" width="${f1(Math.max(1, (r.part! / max) * bwMax))}" height="${rh - 8}" fill="url(#dots)" class="bar${r.emphasis ? ' heavy' : ''}"/>`);
    }
    o.push(`<text x="${f1(lw + bw + 6)}" y="${y + 16}" class="tick">${esc(r.note)}${r.emphasis ? ' ◀ leak' : ''}</text>`);
  });
  o.push('</svg>');
  return o.join('');
}

export interface Tick {
  at: number;
  /** Row 0 (upper) or 1 (lower). */
  row: 0 | 1;
}

/**
 * The trace window on a time axis: [start, end] with the free-only part [cutoff, end] hatched and
 * labelled; optional ticks (allocations) in two labelled rows.
 */
export function timeline(win: { start: number; end: number; cutoff: number }, labels: { cutoff: string; rows?: [string, string] }, ticks: Tick[] = [], w = 900): string {
  const m = { l: 150, r: 20 };
  const iw = w - m.l - m.r;
  const span = win.end > win.start ? win.end - win.start : 1;
  const x = (s: number) => m.l + ((Math.min(Math.max(s, win.start), win.end) - win.start) / span) * iw;
  const rowsY = [28, 52];
  const axisY = ticks.length ? 74 : 40;
  const h = axisY + 48;
  const o: string[] = [`<svg class="chart timeline" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="${esc(`trace window of ${(win.end - win.start).toFixed(1)} s; ${labels.cutoff}`)}">`];
  const top = ticks.length ? 16 : 14;
  o.push(`<rect x="${m.l}" y="${top}" width="${f1(iw)}" height="${axisY - top}" fill="none" class="axis"/>`);
  o.push(`<rect x="${f1(x(win.cutoff))}" y="${top}" width="${f1(x(win.end) - x(win.cutoff))}" height="${axisY - top}" fill="url(#hatch)" opacity="0.35"/>`);
  o.push(`<text x="${f1(x(win.cutoff) - 4)}" y="${top - 4}" class="tick" text-anchor="end">${esc(labels.cutoff)} ▶</text>`);
  if (ticks.length && labels.rows) {
    labels.rows.forEach((l, i) => o.push(`<text x="${m.l - 8}" y="${rowsY[i] + 4}" class="blabel" text-anchor="end">${esc(l)}</text>`));
    for (const t of ticks) {
      const tx = f1(x(t.at));
      o.push(t.row === 0 ? `<line x1="${tx}" x2="${tx}" y1="${rowsY[0] - 7}" y2="${rowsY[0] + 7}" class="tick-strong"/>` : `<line x1="${tx}" x2="${tx}" y1="${rowsY[1] - 5}" y2="${rowsY[1] + 5}" class="tick-light"/>`);
    }
  }
  for (const s of niceTicks(0, span, 8)) {
    o.push(`<line x1="${f1(x(win.start + s))}" x2="${f1(x(win.start + s))}" y1="${axisY}" y2="${axisY + 5}" class="axis"/><text x="${f1(x(win.start + s))}" y="${axisY + 18}" class="tick" text-anchor="middle">+${esc(s)} s</text>`);
  }
  o.push('</svg>');
  return o.join('');
}
