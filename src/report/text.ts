/** The English text report. */
import type { SlabReport } from '../slab/report.js';
import type { WordInfo } from '../slab/symbolize.js';

const sign = (n: number) => `${n >= 0 ? '+' : ''}${n}`;

function pct(n: number, d: number): string {
  return d ? `${((100 * n) / d).toFixed(1)}%` : '-';
}

function wordLine(w: WordInfo, indent: string): string[] {
  const text = w.kind === 'zero' ? '' : w.text;
  const lines = [`${indent}+0x${w.offset.toString(16).padStart(2, '0')}  ${w.value.slice(2)}  ${text}${w.varies ? '  (varies)' : ''}`.trimEnd()];
  const shown = w.target?.filter((t) => t.kind !== 'zero') ?? [];
  if (shown.length) {
    lines.push(`${indent}        -> points to:`);
    for (const t of shown) lines.push(`${indent}           +0x${t.offset.toString(16).padStart(2, '0')}  ${t.value.slice(2)}  ${t.text}`);
  }
  return lines;
}

export function renderText(r: SlabReport): string {
  const o: string[] = [];
  const c = r.cache;
  o.push(`sysak memleak: slab scan of ${c.name}`);
  o.push(`memory: ${r.source.memory}`);
  if (r.source.kallsyms) o.push(`symbols: ${r.source.kallsyms}`);
  o.push(`cache: ${c.name}, object size ${c.objectSize}, ${c.objectsPerSlab} objects per ${c.slabSize}-byte slab, allocated in the whole cache: ${c.allocated ?? 'unknown'} (geometry from ${c.geometrySource})`);
  const s = r.scan;
  o.push(`scanned: ${s.slabs} slabs, ${s.objectsScanned} objects counted, ${s.objectsFree} free objects skipped, ${s.objectsUnreadable} not in the dump; free state from ${r.source.freeState}`);
  o.push(`         ${s.templates} shapes, ${s.workers} worker${s.workers === 1 ? '' : 's'}, ${s.elapsedMs.toFixed(0)} ms`);
  o.push('');
  o.push('Most repeated objects:');
  for (const cl of r.clusters) {
    o.push(`#${cl.rank}  ${cl.count} objects (${pct(cl.count, s.objectsScanned)} of scanned), similarity ${cl.similarity.toFixed(3)}, e.g. ${cl.object}`);
    if (cl.words) for (const w of cl.words) o.push(...wordLine(w, '      '));
    else o.push('      (contents not readable)');
  }
  if (r.trace) {
    const t = r.trace;
    o.push('');
    o.push(
      `Trace ${t.file}: ${t.stats.events} events, window ${t.window.start.toFixed(3)}-${t.window.end.toFixed(3)} s, ${t.stats.lostEvents} lost events`,
    );
    o.push(
      `  allocations after ${t.window.allocCutoff.toFixed(3)} s (--free-only ${t.window.freeOnlyPct}%) ${t.strictFreeOnly ? 'are not counted (--strict-free-only)' : `count only when they match a hot cluster (${t.youngSetAside} set aside)`}`,
    );
    o.push('Unfreed allocations per call site:');
    o.push('  unfreed   marked  function');
    for (const cs of r.callSites.slice(0, 20)) {
      o.push(`  ${String(cs.unfreed).padStart(7)}  ${String(cs.marked).padStart(7)}  ${cs.function}${cs.unreadable ? `  (${cs.unreadable} not in the dump)` : ''}`);
    }
    if (r.callSites.length > 20) o.push(`  ... ${r.callSites.length - 20} more call sites (--json lists all)`);
    if (r.clusterGrowth.length) {
      o.push('Hot clusters in the window (look-alike allocations outstanding vs objects of the shape freed):');
      for (const g of r.clusterGrowth) {
        o.push(`  #${g.rank}  ${String(g.allocs).padStart(6)} allocated  ${String(g.frees).padStart(6)} freed  net ${sign(g.net).padStart(6)}  ${g.allocs === 0 ? '' : !g.growing ? 'replaced in place' : g.staleFreeSlots !== undefined ? `GROWS? (${g.staleFreeSlots} untouched free slots hold its shape: untraced frees?)` : 'GROWS'}`.trimEnd());
        if (g.freeSites.length) o.push(`        freed by ${g.freeSites.map((f) => `${f.function}${f.rcu ? ' (RCU)' : ''} ${f.frees}`).join(', ')}`);
      }
    }
    const repl = r.callSites.filter((cs) => cs.replacingReason !== null);
    if (repl.length) {
      o.push('Replacing in place, not leaking:');
      for (const cs of repl) o.push(`  ${cs.function}: ${cs.replacing} of ${cs.unfreed} unfreed look alike, but ${cs.replacingReason}`);
    }
  }
  o.push('');
  if (r.verdict) {
    const v = r.verdict;
    o.push(`Verdict: slab leak in ${v.cache} by ${v.function}`);
    o.push(`         ${v.unfreed} unfreed, ${v.marked} marked, ${v.similarObjects} similar objects (e.g. ${v.object})`);
    if (v.leakers.length > 1) {
      o.push(`Leaking call sites (${v.leakers.length}, each with its own cluster, by growth in the window):`);
      v.leakers.forEach((l, i) => {
        o.push(`  ${i + 1}. ${l.function}: cluster #${l.cluster}, ${l.similarObjects} objects (e.g. ${l.object}); ${l.unfreed} unfreed, ${l.marked} marked, net ${sign(l.growth)} in the window`);
        if (l.words) for (const w of l.words) o.push(...wordLine(w, '        '));
      });
    }
  } else {
    o.push(`Verdict: none (${r.verdictReason})`);
  }
  if (r.warnings.length) {
    o.push('');
    o.push('Warnings:');
    for (const w of r.warnings) o.push(`  - ${w}`);
  }
  return o.join('\n') + '\n';
}
