/**
 * /proc/vmallocinfo (mm/vmalloc.c s_show), the one parser of it:
 *   `0xSTART-0xEND  SIZE CALLER [pages=N] [phys=..] [ioremap|vmalloc|vmap|user|vpages|dma-coherent] [N0=..]`
 * parseVmallocinfo reads every area (the vmalloc analysis: a bad line is an error naming it; a caller
 * printed as a raw address, a module without symbols at %pS time, is resolved through kallsyms when
 * given); vmallocBytes is the check's total (lenient: lines that do not parse are skipped).
 * The addresses are printed with %pK: raw only for a reader with CAP_SYSLOG under kptr_restrict=1;
 * hashed under kptr_restrict=0 (%p hashing, 4.15), and `(____ptrval____)` while the hashing key is not
 * yet set up, which a 5.10 guest without entropy shows for good; zeros under kptr_restrict=2. Nothing
 * here needs them: an area is known by its caller, size and pages.
 */
import { MemleakError } from '../errors.js';
import { Kallsyms } from '../kernel/kallsyms.js';

export interface VmallocArea {
  /** null where the kernel hid the address (hashed, `(____ptrval____)`, zeros). */
  start: bigint | null;
  size: number;
  caller: string;
  pages: number | null;
  kind: string;
}

/** `0xSTART-0xEND SIZE`: every line begins so, the addresses raw, hashed or `(____ptrval____)` (above). */
const HEAD = /^0x([0-9a-f]+|\(_*ptrval_*\))-0x([0-9a-f]+|\(_*ptrval_*\))\s+(\d+)/;
/** ... then the caller (or a flag when there is none), with the module %pS names after it (`[vmleak]`), and the rest. */
const LINE = new RegExp(`${HEAD.source}(?:\\s+(\\S+(?: \\[[\\w-]+\\])?))?(.*)$`);

export function parseVmallocinfo(text: string, file: string, ks: Kallsyms | null = null): VmallocArea[] {
  const out: VmallocArea[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    const m = LINE.exec(line.trim());
    if (!m) throw new MemleakError('E_FORMAT', `not a /proc/vmallocinfo line: ${JSON.stringify(line.slice(0, 80))}`, { file, line: i + 1 });
    let caller = m[4] ?? '(none)';
    const rest = m[5] ?? '';
    if (/^(pages|phys|N\d+)=/.test(caller) || /^(ioremap|vmalloc|vmap|user|vpages|unpurged|vm_map_ram|dma-coherent)$/.test(caller)) caller = '(none)';
    if (/^0x[0-9a-f]+$/.test(caller) && ks) {
      const s = ks.lookup(BigInt(caller));
      if (s) caller = Kallsyms.format(s);
    }
    const pages = /\bpages=(\d+)/.exec(line);
    // Numbers a report multiplies and sums: at most 15 digits (exact in a double), and an area's pages
    // fit in its size (which counts the guard page too).
    if (m[3].length > 15) throw new MemleakError('E_FORMAT', `vmallocinfo size ${m[3].slice(0, 24)} is not a size`, { file, line: i + 1 });
    if (pages && (pages[1].length > 15 || Number(pages[1]) * 4096 > Number(m[3]))) {
      throw new MemleakError('E_FORMAT', `pages=${pages[1].slice(0, 24)} do not fit in an area of ${m[3]} bytes: damaged line`, { file, line: i + 1 });
    }
    const kinds = ['vmalloc', 'vmap', 'ioremap', 'user', 'vpages', 'unpurged', 'vm_map_ram', 'dma-coherent'].filter((k) => new RegExp(`\\b${k}\\b`).test(rest + ' ' + (m[4] ?? '')));
    const start = /^[0-9a-f]+$/.test(m[1]) && !/^0+$/.test(m[1]) ? BigInt('0x' + m[1]) : null;
    out.push({ start, size: Number(m[3]), caller, pages: pages ? Number(pages[1]) : null, kind: kinds[0] ?? 'other' });
  });
  return out;
}

/** Bytes of vmalloc() areas: /proc/vmallocinfo lines that say "vmalloc" (as the original counts). */
export function vmallocBytes(text: string): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!/\bvmalloc\b/.test(line)) continue;
    const m = HEAD.exec(line);
    if (m) total += Number(m[3]);
  }
  return total;
}
