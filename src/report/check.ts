/** The quick check (`-c`): the original's three numbers and conclusion, plus growth and the top caches. */
import type { CheckResult } from '../check/leak.js';
import { mib } from '../check/units.js';

export function renderCheckText(c: CheckResult): string {
  const o: string[] = [];
  const k = (n: string) => c.kinds.find((x) => x.kind === n)!;
  o.push(`allocPages: ${mib(k('page').bytes)}, uslab: ${mib(k('slab').bytes)}, vmalloc: ${mib(k('vmalloc').bytes)} (MemTotal ${mib(c.memTotal)})`);
  for (const x of c.kinds) o.push(`  ${x.kind.padEnd(8)} ${x.leaking ? 'LEAKING ' : 'ok      '} ${x.why}`);
  o.push(`conclusion: ${c.leak ? `${c.leak === 'page' ? 'alloc page' : c.leak} memleak` : 'no memleak'}`);
  const top = c.caches.slice(0, 5);
  if (top.length) {
    o.push('caches (most growth, then most bytes):');
    for (const r of top) {
      o.push(`  ${r.name.padEnd(24)} ${String(r.activeObjs).padStart(10)} objects x ${r.objsize} B${r.growthObjs !== null ? `, ${r.growthObjs >= 0 ? '+' : ''}${r.growthObjs} over the window` : ''}`);
    }
  }
  return o.join('\n') + '\n';
}

export function renderCheckSysak(c: CheckResult): string {
  const k = (n: string) => Math.round(c.kinds.find((x) => x.kind === n)!.bytes / 1048576);
  const verdict = c.leak === 'slab' ? 'slab memleak' : c.leak === 'vmalloc' ? 'vmalloc memleak' : c.leak === 'page' ? 'alloc page memleak' : ' no memleak';
  return `allocPages:${k('page')}M, uslab:${k('slab')}M vmalloc:${k('vmalloc')}M\n诊断结论:${verdict}\n`;
}
