/**
 * `--html FILE`: one self-contained page (no network, no script, no font files) drawn from the report
 * object the JSON prints -- nothing is recomputed, and the JSON itself rides along in a non-executed
 * <script type="application/json" id="sysak-report">. Verdict first, then memory over the window, the
 * hot clusters, the call sites, the trace window, the check and the warnings. Print CSS keeps it
 * readable on paper and as a PDF; hatching and labels carry every emphasis that colour does.
 */
import type { AnyReport } from '../analyze.js';
import type { PageReport } from '../pages/report.js';
import type { SlabReport } from '../slab/report.js';
import type { CheckResult, LeakKind, UsageSeries } from '../check/leak.js';
import type { WordInfo } from '../slab/symbolize.js';
import { beforeAfterPanel, esc, hBars, linePanel, patternDefs, timeline, type BarRow, type Tick } from './svg.js';

/** The /proc check a report carries: the window check of --from, or the live run's. */
function checkOf(r: AnyReport): CheckResult | null {
  return r.check ?? r.live?.check ?? null;
}

/** Per-second usage samples, when the run recorded them (live mode, --from a --save directory). */
function seriesOf(c: CheckResult | null): UsageSeries | null {
  const s = c?.series;
  return s && s.t.length >= 2 ? s : null;
}

const MiB = 1024 * 1024;
const mibText = (b: number) => (Math.abs(b) < MiB && b !== 0 ? `${(b / 1024).toFixed(Math.abs(b) < 10240 ? 1 : 0)} KiB` : `${(b / MiB).toFixed(Math.abs(b) >= 100 * MiB ? 0 : 1)} MiB`);
/** Axis labels in MiB with as many decimals as the tick step needs (a 32 KiB rise over 17 MiB). */
const mibAxis = (b: number, step: number) => `${(b / MiB).toFixed(Math.min(3, Math.max(1, Math.ceil(-Math.log10(step / MiB)))))} MiB`;
const signed = (n: number, f: (n: number) => string = String) => (n === 0 ? '0' : `${n > 0 ? '+' : '−'}${f(Math.abs(n))}`);
const pct = (n: number, d: number) => (d ? `${((100 * n) / d).toFixed(1)}%` : '–');
const num = (n: number) => n.toLocaleString('en-US');
const KIND_NAME: Record<LeakKind, string> = { page: 'allocPages (alloc_pages)', slab: 'unreclaimable slab (SUnreclaim)', vmalloc: 'vmalloc' };

function table(head: string[], rows: string[][], cls: string[] = [], rowCls: string[] = []): string {
  const th = head.map((h, i) => `<th class="${cls[i] ?? ''}">${h}</th>`).join('');
  const tr = rows.map((r, j) => `<tr class="${rowCls[j] ?? ''}">${r.map((c, i) => `<td class="${cls[i] ?? ''}">${c}</td>`).join('')}</tr>`).join('\n');
  return `<table><thead><tr>${th}</tr></thead><tbody>\n${tr}\n</tbody></table>`;
}

function section(id: string, title: string, body: string): string {
  return `<section id="${id}"><h2>${esc(title)}</h2>\n${body}\n</section>`;
}

const dl = (pairs: [string, string][]) => `<dl>${pairs.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join('')}</dl>`;

// ---------------------------------------------------------------- verdict

function verdictBox(r: AnyReport): string {
  const v = r.verdict;
  if (!v) {
    return `<div class="verdict none" id="verdict"><p class="vkind">No leak named</p><p class="vwhy">${esc(r.verdictReason)}</p></div>`;
  }
  const pairs: [string, string][] = [];
  let kind: string;
  if (v.type === 'slab') {
    const s = r as SlabReport;
    kind = `slab leak in <code>${esc(v.cache)}</code>`;
    const leakers = v.leakers?.length ? v.leakers : null;
    if (leakers && leakers.length > 1) {
      pairs.push(['leaking functions', leakers.map((l, i) => `${i + 1}. <code class="fn">${esc(l.function)}</code>: cluster #${l.cluster}, ${num(l.marked)} of ${num(l.unfreed)} unfreed marked, ${num(l.similarObjects)} similar objects, net ${signed(l.growth, num)} in the window`).join('<br>')]);
    } else {
      pairs.push(['leaking function', `<code class="fn">${esc(v.function)}</code>`]);
    }
    pairs.push(['marked / unfreed', `${num(v.marked)} of ${num(v.unfreed)} unfreed allocations look like the hot objects`]);
    pairs.push(['similar objects', `${num(v.similarObjects)} in the cache (e.g. <code>${esc(v.object)}</code>)`]);
    const named = new Set(leakers?.map((l) => l.function) ?? [v.function]);
    const also = s.callSites.filter((c) => !named.has(c.function) && c.marked > 0).slice(0, 3);
    if (also.length) pairs.push(['also marked', also.map((c) => `<code class="fn">${esc(c.function)}</code> ${c.marked} of ${c.unfreed}`).join('<br>')]);
  } else if (v.type === 'vmalloc') {
    kind = 'vmalloc leak';
    pairs.push(['leaking function', `<code class="fn">${esc(v.function)}</code>`]);
    pairs.push(['held', `${num(v.areas)} areas, ${mibText(v.bytes)}`]);
    if (v.growthAreas !== null) pairs.push(['grew over the window', `${signed(v.growthAreas, num)} areas, ${signed(v.growthBytes ?? 0, mibText)}`]);
  } else {
    kind = 'page leak';
    pairs.push(['leaking function', `<code class="fn">${esc(v.function)}</code>`]);
    pairs.push(['unfreed blocks', `${num(v.blocks)} blocks, ${mibText(v.bytes)}`]);
    pairs.push(['start alike', `${num(v.similar)}${v.pattern ? ` (first word <code>${esc(v.pattern)}</code>)` : ''}`]);
  }
  return `<div class="verdict leak" id="verdict"><p class="vkind">Verdict: ${kind}</p>${dl(pairs)}<p class="vwhy">${esc(r.verdictReason)}</p></div>`;
}

// ---------------------------------------------------------------- memory chart

/** Per-kind panels from the check: per-second samples when recorded, else before/after bars. */
function checkPanels(c: CheckResult, leak: LeakKind | null): string {
  const series = seriesOf(c);
  const panels = c.kinds.map((k) => {
    const p = { title: KIND_NAME[k.kind], subtitle: '', emphasis: k.kind === leak };
    if (series) {
      const vals = series[k.kind];
      p.subtitle = `${mibText(vals[0])} → ${mibText(vals[vals.length - 1])} (${signed(vals[vals.length - 1] - vals[0], mibText)})`;
      return linePanel(p, series.t.map((ms) => (ms - series.t[0]) / 1000), vals, mibAxis);
    }
    p.subtitle = k.growth === null ? `${mibText(k.bytes)} in use` : `${mibText(k.bytes - k.growth)} → ${mibText(k.bytes)} (${signed(k.growth, mibText)})`;
    return beforeAfterPanel(p, k.growth === null ? null : k.bytes - k.growth, k.bytes, mibText);
  });
  const what = series
    ? `${series.t.length} one-second samples of /proc over the window; each panel has its own scale`
    : 'the /proc snapshots at both ends of the window (no per-second samples in this input); each panel has its own scale';
  return `<p class="note">${esc(what)}.${leak ? ' The leaking kind is hatched and marked LEAKING.' : ''}</p><div class="panels">${panels.join('')}</div>`;
}

/** Without /proc snapshots: what the analysis itself measured (the scanned cache, or bytes by caller). */
function measuredBars(r: AnyReport): string {
  const note = '<p class="note">No /proc snapshots in this input (meminfo before/after), so no memory-over-time chart; what the analysis measured instead:</p>';
  if (r.type === 'slab') {
    const s = r.scan;
    const leakCluster = r.clusters.find((cl) => cl.object === r.verdict?.object) ?? r.clusters[0];
    const rows: BarRow[] = [{ label: `objects of ${r.cache.name} scanned`, value: s.objectsScanned, note: `${num(s.objectsScanned)} × ${r.cache.objectSize} B = ${mibText(s.objectsScanned * r.cache.objectSize)}` }];
    if (leakCluster) rows.push({ label: `alike (cluster #${leakCluster.rank})`, value: leakCluster.count, note: `${num(leakCluster.count)} (${pct(leakCluster.count, s.objectsScanned)})`, emphasis: r.verdict !== null });
    rows.push({ label: 'free objects', value: s.objectsFree, note: num(s.objectsFree) });
    return note + hBars(rows, { aria: `objects in ${r.cache.name}` });
  }
  const rows: { caller: string; bytes: number }[] = r.callers;
  return note + hBars(rows.slice(0, 8).map((x) => ({ label: x.caller, value: x.bytes, note: mibText(x.bytes), emphasis: x.caller === r.verdict?.function })), { aria: 'bytes held by caller' });
}

function memoryChart(r: AnyReport): string {
  const c = checkOf(r);
  return c ? checkPanels(c, r.verdict ? r.type : c.leak) : measuredBars(r);
}

// ---------------------------------------------------------------- clusters

function wordRows(words: WordInfo[], depth = 0): string[][] {
  const rows: string[][] = [];
  for (const w of words) {
    const text = w.kind === 'zero' ? '' : esc(w.text);
    rows.push([`${depth ? '&nbsp;&nbsp;→ ' : ''}+0x${w.offset.toString(16).padStart(2, '0')}`, `<code>${esc(w.value.slice(2))}</code>`, esc(w.kind), `${text}${w.varies ? ' <em>(varies)</em>' : ''}`]);
    const shown = w.target?.filter((t) => t.kind !== 'zero') ?? [];
    if (shown.length) {
      rows.push(['', '', '', `<em>points to an object holding:</em>`]);
      rows.push(...wordRows(shown, depth + 1));
    }
  }
  return rows;
}

/** What names a cluster at a glance: its first symbol (an ops pointer), else its first string. */
function tagOf(words: WordInfo[] | null): string | null {
  const w = words?.find((x) => x.kind === 'symbol') ?? words?.find((x) => x.kind === 'ascii');
  return w ? w.text : null;
}

/** Ranks of the clusters the leaking call sites pile up in. */
function leakRanks(r: SlabReport): Set<number> {
  const v = r.verdict;
  if (!v) return new Set();
  if (v.leakers?.length) return new Set(v.leakers.map((l) => l.cluster));
  const rank = r.clusters.find((cl) => cl.object === v.object)?.rank;
  return new Set(rank === undefined ? [] : [rank]);
}

function clusters(r: SlabReport): string {
  const s = r.scan;
  const leaking = leakRanks(r);
  const growth = new Map((r.clusterGrowth ?? []).map((g) => [g.rank, g]));
  const bars = hBars(
    r.clusters.map((cl) => ({ label: `#${cl.rank} ${tagOf(cl.words) ?? cl.object}`, value: cl.count, note: `${num(cl.count)} objects (${pct(cl.count, s.objectsScanned)}), similarity ${cl.similarity.toFixed(3)}`, emphasis: leaking.has(cl.rank) })),
    { aria: 'most repeated objects', labelWidth: 300 },
  );
  const details = r.clusters
    .map((cl) => {
      const g = growth.get(cl.rank);
      const inWindow = g && g.allocs > 0 ? `<p class="note">In the trace window: ${num(g.allocs)} look-alike allocations outstanding, ${num(g.frees)} of the shape freed, net ${signed(g.net, num)}: <strong>${g.growing ? 'GROWS' : 'replaced in place'}</strong>${g.freeSites.length ? `; freed by ${g.freeSites.map((f) => `${esc(f.function)}${f.rcu ? ' (RCU)' : ''} ${num(f.frees)}`).join(', ')}` : ''}.</p>` : '';
      const head = `<h3>#${cl.rank}${leaking.has(cl.rank) ? ' (leaking)' : ''}: ${num(cl.count)} objects like <code>${esc(cl.object)}</code></h3>${inWindow}`;
      if (!cl.words) return `<div class="cluster">${head}<p class="note">contents not readable</p></div>`;
      return `<div class="cluster">${head}${table(['offset', 'value', 'kind', 'what it is'], wordRows(cl.words), ['mono', 'mono', '', ''])}</div>`;
    })
    .join('\n');
  const head = `<p class="note">${num(s.objectsScanned)} objects of ${esc(r.cache.name)} scanned (${num(s.slabs)} slabs, ${num(s.templates)} shapes); a cluster is a set of objects that look alike. Representative words, symbolized; a heap pointer is followed one level.</p>`;
  return head + bars + details;
}

function pageHeaders(r: PageReport): string {
  const d = r.dumpPages;
  if (!d) return '';
  const bars = hBars(d.headers.map((h) => ({ label: `${h.value}${h.text ? ` "${h.text}"` : ''}`, value: h.pages, note: `${num(h.pages)} pages` })), { aria: 'most common first words of unaccounted pages' });
  return `<p class="note">The dump holds ${num(d.unaccounted)} in-use kernel pages nothing accounts for (${mibText(d.bytes)}; not slab, LRU, buddy, reserved or mapped) of ${num(d.pfnsScanned)}; their most common first words:</p>${bars}`;
}

// ---------------------------------------------------------------- call sites

function callSites(r: AnyReport): string {
  const fn = r.verdict?.function;
  const leakers = new Set(r.type === 'slab' && r.verdict?.leakers?.length ? r.verdict.leakers.map((l) => l.function) : fn ? [fn] : []);
  const mark = (f: string) => (leakers.has(f) ? 'verdict-row' : '');
  if (r.type === 'slab') {
    if (!r.trace) return '<p class="note">No trace in this input: no call sites.</p>';
    const rows = r.callSites.slice(0, 30);
    const bars = hBars(rows.slice(0, 12).map((c) => ({ label: c.function, value: c.unfreed, part: c.marked, note: `${c.marked} marked of ${c.unfreed} unfreed`, emphasis: leakers.has(c.function) })), { aria: 'unfreed and marked allocations per call site' });
    const legend = '<p class="legend"><span class="sw dots"></span> marked (looks like a hot cluster) <span class="sw plain"></span> unfreed, not marked; the verdict\'s call site in bold, heavy outline, ◀</p>';
    const t = table(
      ['function', 'unfreed', 'marked', 'marked share', 'replacing', 'not in the dump'],
      rows.map((c) => [`<code class="fn">${esc(c.function)}</code>${leakers.has(c.function) ? ' <strong>◀ leaking</strong>' : ''}${c.replacingReason ? `<br><em>replaced in place: ${esc(c.replacingReason)}</em>` : ''}`, num(c.unfreed), num(c.marked), pct(c.marked, c.unfreed), c.replacing ? num(c.replacing) : '', c.unreadable ? num(c.unreadable) : '']),
      ['', 'num', 'num', 'num', 'num', 'num'],
      rows.map((c) => mark(c.function)),
    );
    const more = r.callSites.length > rows.length ? `<p class="note">… ${r.callSites.length - rows.length} more call sites in the JSON.</p>` : '';
    return bars + legend + t + more;
  }
  const byBytes = (rows: { caller: string; bytes: number }[], note: (i: number) => string) =>
    hBars(rows.slice(0, 10).map((c, i) => ({ label: c.caller, value: c.bytes, note: note(i), emphasis: c.caller === fn })), { aria: 'bytes held by caller' });
  if (r.type === 'vmalloc') {
    const g = (n: number | null, f: (n: number) => string = num) => (n === null ? '' : signed(n, f));
    const rows = r.callers.slice(0, 30);
    const bars = byBytes(rows, (i) => `${mibText(rows[i].bytes)} in ${num(rows[i].areas)} areas${rows[i].growthBytes !== null ? `, ${signed(rows[i].growthBytes!, mibText)}` : ''}`);
    return bars + table(
      ['caller', 'areas', 'growth', 'bytes', 'growth'],
      rows.map((c) => [`<code class="fn">${esc(c.caller)}</code>${c.caller === fn ? ' <strong>◀ verdict</strong>' : ''}`, num(c.areas), g(c.growthAreas), mibText(c.bytes), g(c.growthBytes, mibText)]),
      ['', 'num', 'num', 'num', 'num'],
      rows.map((c) => mark(c.caller)),
    );
  }
  if (!r.trace) return '<p class="note">No trace in this input: no callers.</p>';
  const rows = r.callers.slice(0, 30);
  return byBytes(rows, (i) => `${mibText(rows[i].bytes)} in ${num(rows[i].blocks)} blocks`) + table(
    ['caller', 'blocks', 'young', 'bytes', 'start alike', 'first word'],
    rows.map((c) => [`<code class="fn">${esc(c.caller)}</code>${c.caller === fn ? ' <strong>◀ verdict</strong>' : ''}`, num(c.blocks), num(c.young), mibText(c.bytes), num(c.similar), c.pattern ? `<code>${esc(c.pattern)}</code>` : '']),
    ['', 'num', 'num', 'num', 'num', 'mono'],
    rows.map((c) => mark(c.caller)),
  );
}

// ---------------------------------------------------------------- trace window

function traceWindow(r: AnyReport): string {
  const live = r.live ? `<p>Live run: ${r.live.durationS} s traced, ${num(r.live.eventsTraced)} events, ${num(r.live.lostEvents)} lost${r.live.saved ? `, saved to <code>${esc(r.live.saved)}</code>` : ''}.</p>` : '';
  if (r.type === 'vmalloc') return `${live}<p class="note">vmalloc leaks are named from /proc/vmallocinfo at both ends of the window; no trace is used.</p>`;
  const t = r.trace;
  if (!t) return `${live}<p class="note">No trace in this input.</p>`;
  const w = t.window;
  const cutPct = r.type === 'slab' ? r.trace!.window.freeOnlyPct : Math.round((100 * (w.end - w.allocCutoff)) / Math.max(1e-9, w.end - w.start));
  const labels = { cutoff: `free-only window (last ${cutPct}%) from ${w.allocCutoff.toFixed(3)} s` };
  let ticks: Tick[] = [];
  let rows: [string, string] | undefined;
  let text: string;
  if (r.type === 'slab') {
    const st = r.trace!;
    ticks = r.unfreed.map((u) => ({ at: w.end - u.age, row: u.marked ? 0 : 1 }));
    rows = [`marked (${num(r.unfreed.filter((u) => u.marked).length)})`, `not marked (${num(r.unfreed.filter((u) => !u.marked).length)})`];
    text = `<p>Trace <code>${esc(st.file)}</code>: ${num(st.stats.events)} events, window ${w.start.toFixed(3)}–${w.end.toFixed(3)} s (${(w.end - w.start).toFixed(1)} s), ${num(st.stats.lostEvents)} lost events; ${num(st.allocsSeen)} allocations and ${num(st.freesSeen)} frees seen. Allocations after ${w.allocCutoff.toFixed(3)} s ${st.strictFreeOnly ? 'are not counted (--strict-free-only)' : `count only when they match a hot cluster (${num(st.youngSetAside)} set aside)`}. Each tick is an unfreed allocation at the time it was made.</p>`;
  } else {
    const pt = (r as PageReport).trace!;
    text = `<p>Trace <code>${esc(pt.file)}</code>: window ${w.start.toFixed(3)}–${w.end.toFixed(3)} s, ${num(pt.allocsSeen)} allocations and ${num(pt.freesSeen)} frees; left out: ${num(pt.skippedMovable)} movable/reclaimable, ${num(pt.skippedSlabOrVmalloc)} slab or vmalloc pages, ${num(pt.withoutStack)} without stack. Blocks allocated in the free-only window count as young.</p>`;
  }
  return live + text + timeline({ start: w.start, end: w.end, cutoff: w.allocCutoff }, { ...labels, rows }, ticks);
}

// ---------------------------------------------------------------- check, warnings, page

function checkSection(c: CheckResult | null): string {
  if (!c) return '<p class="note">No /proc snapshots in this input.</p>';
  const kinds = table(
    ['kind', 'in use', 'growth', 'leaking', 'why'],
    c.kinds.map((k) => [esc(KIND_NAME[k.kind]), mibText(k.bytes), k.growth === null ? '' : signed(k.growth, mibText), k.leaking ? '<strong>LEAKING</strong>' : 'ok', esc(k.why)]),
    ['', 'num', 'num', '', ''],
    c.kinds.map((k) => (k.kind === c.leak ? 'verdict-row' : '')),
  );
  const caches = c.caches.slice(0, 10);
  const cacheTable = caches.length
    ? `<h3>Slab caches (most growth, then most bytes)</h3>${table(
        ['cache', 'objects', 'object size', 'bytes', 'growth (objects)'],
        caches.map((x) => [`<code>${esc(x.name)}</code>`, num(x.activeObjs), `${x.objsize} B`, mibText(x.bytes), x.growthObjs === null ? '' : signed(x.growthObjs, num)]),
        ['', 'num', 'num', 'num', 'num'],
      )}`
    : '';
  return `<p>MemTotal ${mibText(c.memTotal)}; conclusion: <strong>${c.leak ? `${c.leak === 'page' ? 'alloc page' : c.leak} memleak` : 'no memleak'}</strong>.</p>${kinds}${cacheTable}`;
}

function warnings(ws: string[]): string {
  return ws.length ? `<ul class="warnings">${ws.map((w) => `<li>${esc(w)}</li>`).join('')}</ul>` : '<p class="note">None.</p>';
}

const CSS = `
:root{--fg:#161616;--muted:#555;--rule:#bbb;--accent:#9b1c1c}
*{box-sizing:border-box}
body{margin:0;color:var(--fg);background:#fff;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans","Liberation Sans",Arial,sans-serif}
main{max-width:1000px;margin:0 auto;padding:20px 24px 40px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:17px;border-bottom:2px solid var(--fg);padding-bottom:2px;margin:28px 0 10px}h3{font-size:14px;margin:16px 0 6px}
code,.mono{font-family:ui-monospace,"DejaVu Sans Mono","Liberation Mono",Menlo,Consolas,monospace;font-size:12.5px}
code.fn{word-break:break-all}
.sub,.note,.legend{color:var(--muted)}.note{font-size:13px}
.verdict{border:3px solid var(--fg);padding:10px 16px;margin:14px 0}
.verdict.leak{border-color:var(--accent);border-left-width:12px}
.verdict.none{border-style:dashed}
.vkind{font-size:19px;font-weight:700;margin:2px 0 8px}.verdict.leak .vkind{color:var(--accent)}
.vwhy{margin:8px 0 2px;color:var(--muted)}
dl{display:grid;grid-template-columns:max-content 1fr;gap:3px 14px;margin:0}dt{font-weight:600}dd{margin:0}
table{border-collapse:collapse;width:100%;margin:6px 0}
th,td{border-bottom:1px solid var(--rule);padding:3px 8px;text-align:left;vertical-align:top}
th{border-bottom:2px solid var(--fg);font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.verdict-row td{font-weight:700;border-top:2px solid var(--fg);border-bottom:2px solid var(--fg)}
.panels{display:grid;grid-template-columns:repeat(3,minmax(0,1fr));gap:8px}.panels svg.chart{width:100%}
svg.chart{max-width:100%;height:auto;display:block;margin:4px 0}
svg.panel{border:1px solid var(--rule)}svg.panel.emphasis{border:3px solid var(--accent)}
svg .ptitle{font-size:13px;font-weight:700}svg .psub,svg .tick{font-size:11px;fill:#333}svg .blabel{font-size:12px;font-family:ui-monospace,"DejaVu Sans Mono",monospace}
svg .strong{font-weight:700}
svg .grid{stroke:#e3e3e3}svg .axis{stroke:#444}svg .bar{stroke:#222;stroke-width:1}svg .bar.heavy{stroke-width:2.5}
svg .line{stroke:#333;stroke-width:1.6}svg .line.strong{stroke:var(--accent);stroke-width:3.2}
svg .tick-strong{stroke:var(--accent);stroke-width:1.4}svg .tick-light{stroke:#666;stroke-width:1;stroke-dasharray:2 2}
.legend .sw{display:inline-block;width:22px;height:11px;border:1px solid #222;vertical-align:-1px;margin:0 4px 0 10px}
.sw.dots{background:radial-gradient(#000 1px,#fff 1.2px) 0 0/5px 5px}.sw.plain{background:#ccc}.sw.hatch{background:repeating-linear-gradient(45deg,#000 0 2px,#fff 2px 5px)}
.cluster table{width:auto;min-width:60%}
.warnings li{margin:3px 0}
footer{margin-top:30px;border-top:1px solid var(--rule);padding-top:6px;font-size:12px;color:var(--muted)}
@media print{
  @page{margin:14mm}
  body{font-size:10pt}main{max-width:none;padding:0}
  section,.verdict,.cluster,svg.chart,tr{break-inside:avoid;page-break-inside:avoid}
  h2,h3{break-after:avoid;page-break-after:avoid}
  *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}`;

function page(title: string, subtitle: string, parts: string[], data: unknown, tool: string): string {
  // The JSON rides along for whoever wants the data back; "<" is escaped so no text ends the element.
  const json = JSON.stringify(data).replace(/</g, '\\u003c');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body>
${patternDefs()}
<main>
<header><h1>${esc(title)}</h1><p class="sub">${subtitle}</p></header>
${parts.join('\n')}
<footer>${esc(tool)} · report schema ${esc((data as { schema?: string }).schema ?? '')} · the data of this page is the JSON report (<code>--json</code>), embedded below as <code>#sysak-report</code></footer>
</main>
<script type="application/json" id="sysak-report">${json}</script>
</body>
</html>
`;
}

function titleOf(r: AnyReport): string {
  const v = r.verdict;
  if (!v) return `sysak memleak: no leak named (${r.type} analysis)`;
  return v.type === 'slab' ? `sysak memleak: slab leak in ${v.cache} by ${v.function}` : `sysak memleak: ${v.type} leak by ${v.function}`;
}

function sourceOf(r: AnyReport): string {
  const s = r.type === 'slab' ? `${r.source.memory}` : r.source;
  return `${r.live ? 'live run' : 'offline'} · ${esc(s)} · analysis ${(r.elapsedMs / 1000).toFixed(1)} s`;
}

/** The HTML page of a slab, vmalloc or page report. `tool` names the version that wrote it. */
export function renderHtml(r: AnyReport, tool: string): string {
  const parts = [verdictBox(r), section('memory', 'Memory over the window', memoryChart(r))];
  if (r.type === 'slab') parts.push(section('clusters', 'Hot clusters: the most repeated objects', clusters(r)));
  if (r.type === 'page' && r.dumpPages) parts.push(section('clusters', 'Unaccounted pages in the dump', pageHeaders(r)));
  parts.push(section('callsites', r.type === 'slab' ? 'Unfreed allocations per call site' : r.type === 'page' ? 'Unfreed unmovable page blocks by caller' : 'vmalloc use by caller', callSites(r)));
  parts.push(section('trace', 'Trace window', traceWindow(r)));
  parts.push(section('check', 'Quick check (/proc)', checkSection(checkOf(r))));
  parts.push(section('warnings', 'Warnings', warnings(r.warnings)));
  return page(titleOf(r), sourceOf(r), parts, r, tool);
}

/** The page of a check-only run (`-c`): the conclusion and the memory of the three kinds. */
export function renderCheckHtml(c: CheckResult, tool: string): string {
  const verdict = c.leak
    ? `<div class="verdict leak" id="verdict"><p class="vkind">Check: ${c.leak === 'page' ? 'alloc page' : c.leak} memleak</p><p class="vwhy">${esc(c.kinds.find((k) => k.kind === c.leak)!.why)}</p></div>`
    : `<div class="verdict none" id="verdict"><p class="vkind">Check: no memleak</p></div>`;
  const parts = [verdict, section('memory', 'Memory over the window', checkPanels(c, c.leak)), section('check', 'Quick check (/proc)', checkSection(c))];
  return page(`sysak memleak -c: ${c.leak ? `${c.leak} memleak` : 'no memleak'}`, 'quick check from /proc', parts, { schema: 'sysak-memleak-check/1', check: c }, tool);
}

