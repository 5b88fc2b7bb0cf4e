/** Text and sysak renderings of vmalloc and page reports. */
import type { PageReport } from '../pages/report.js';
import type { VmallocReport } from '../vmalloc/report.js';
import { mib } from '../check/units.js';
import { renderCheckText } from './check.js';

const sign = (n: number | null) => (n === null ? '' : `${n >= 0 ? '+' : ''}${n}`);

export function renderVmallocText(r: VmallocReport): string {
  const o: string[] = [];
  if (r.check) o.push(renderCheckText(r.check));
  o.push(`sysak memleak: vmalloc use by caller (${r.source})`);
  // bytes are the areas' pages (pages=N), not /proc/vmallocinfo's sizes, which add each area's guard page
  o.push('     areas   growth   page bytes       growth  caller');
  for (const c of r.callers) {
    o.push(`${String(c.areas).padStart(10)} ${sign(c.growthAreas).padStart(8)} ${String(c.bytes).padStart(12)} ${sign(c.growthBytes).padStart(12)}  ${c.caller}`);
  }
  o.push('');
  o.push(r.verdict ? `Verdict: vmalloc leak by ${r.verdict.function}\n         ${r.verdict.areas} areas, ${mib(r.verdict.bytes)} of pages (${sign(r.verdict.growthAreas)} areas, ${mib(r.verdict.growthBytes ?? 0)} over the window)${r.check ? `\n         (the check above counts /proc/vmallocinfo's sizes, which include each area's guard page)` : ''}` : `Verdict: none (${r.verdictReason})`);
  if (r.warnings.length) o.push('', 'Warnings:', ...r.warnings.map((w) => `  - ${w}`));
  return o.join('\n') + '\n';
}

export function renderPageText(r: PageReport): string {
  const o: string[] = [];
  if (r.check) o.push(renderCheckText(r.check));
  const t = r.trace;
  o.push(`sysak memleak: page leaks (${r.source})`);
  if (r.dumpPages) {
    const d = r.dumpPages;
    o.push(`dump: ${d.unaccounted} in-use kernel pages nothing accounts for (${mib(d.bytes)}; not slab, LRU, buddy, reserved or mapped) of ${d.pfnsScanned}; most common first words:`);
    for (const h of d.headers) o.push(`  ${String(h.pages).padStart(8)}  ${h.value}${h.text ? `  "${h.text}"` : ''}`);
  }
  if (t) {
    o.push(`trace: ${t.allocsSeen} allocations, ${t.freesSeen} frees; left out: ${t.skippedMovable} movable/reclaimable, ${t.skippedSlabOrVmalloc} slab or vmalloc pages, ${t.skippedOwn} of our own, ${t.withoutStack} without stack`);
    o.push('unfreed unmovable page blocks by caller:');
    o.push('    blocks    young        bytes  similar  caller');
    for (const c of r.callers) o.push(`${String(c.blocks).padStart(10)} ${String(c.young).padStart(8)} ${String(c.bytes).padStart(12)} ${String(c.similar).padStart(8)}  ${c.caller}${c.pattern ? `  (first word ${c.pattern})` : ''}`);
  }
  o.push('');
  o.push(r.verdict ? `Verdict: page leak by ${r.verdict.function}\n         ${r.verdict.blocks} unfreed blocks, ${mib(r.verdict.bytes)}, ${r.verdict.similar} start alike${r.verdict.pattern ? ` (${r.verdict.pattern})` : ''}` : `Verdict: none (${r.verdictReason})`);
  if (r.warnings.length) o.push('', 'Warnings:', ...r.warnings.map((w) => `  - ${w}`));
  return o.join('\n') + '\n';
}

/** The original's vmalloc and page modes group by caller; rows of vmalloc under 1 MB are not shown. */
export function renderKindSysak(r: VmallocReport | PageReport): string {
  const o: string[] = [];
  o.push('未释放内存汇总:');
  if (r.type === 'vmalloc') {
    o.push('大小(字节)       函数');
    for (const c of r.callers) if (c.bytes >= 1 << 20) o.push(`${String(c.bytes).padEnd(17)}${c.caller}`);
  } else {
    o.push('次数    大小(字节)       函数');
    for (const c of r.callers) o.push(`${String(c.blocks).padEnd(8)}${String(c.bytes).padEnd(17)}${c.caller}`);
  }
  o.push(`疑似泄漏函数: ${r.verdict ? r.verdict.function : '无'}`);
  return o.join('\n') + '\n';
}
