/**
 * Page leaks from a dump alone: a census of struct pages that nothing accounts for. A page counts as
 * "unaccounted kernel memory" when it is in use (_refcount > 0), not free in the buddy allocator
 * (PageBuddy), not a slab page (PageSlab: a flag before 6.10, a page type since; kernel/mm.ts pageKinds), not on an LRU list (PG_lru: page
 * cache and anonymous memory), not reserved (PG_reserved), has no mapping, and is not a compound tail.
 * Those are what alloc_pages() callers hold: page tables, kernel stacks, driver buffers, and leaks.
 * Their first 8 bytes are grouped: a leak that stamps its pages shows up as one large group.
 */
import type { Kernel } from '../kernel/kernel.js';
import { forEachStructPage, isCompoundTail, maxPfn, pageKinds, pfnToVirt, testPageFlag } from '../kernel/mm.js';

export interface UnaccountedPages {
  pfnsScanned: number;
  unaccounted: number;
  bytes: number;
  /** The most common non-zero first words of unaccounted pages. */
  headers: { value: string; pages: number; text: string }[];
}

function ascii(v: bigint): string {
  let t = '';
  for (let i = 0; i < 8; i++) {
    const c = Number((v >> BigInt(8 * i)) & 0xffn);
    if (c === 0) break;
    t += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : '.';
  }
  return t;
}

export function unaccountedPages(v: Kernel, top = 5): UnaccountedPages {
  const { prog, types, syms } = v;
  const kinds = pageKinds(prog, types.btf);
  const PG_lru = kinds.flagBit('PG_lru');
  const PG_reserved = kinds.flagBit('PG_reserved');
  const offRef = types.offsetOf('page', '_refcount');
  const offMapping = types.offsetOf('page', 'mapping');
  const offMapcount = types.offsetOf('page', '_mapcount');
  const counts = new Map<bigint, number>();
  let unaccounted = 0;
  const walk = forEachStructPage(prog, maxPfn(prog, syms), (pfn, dv, o) => {
    const flags = dv.getBigUint64(o, true);
    const pageType = dv.getUint32(o + offMapcount, true);
    if (kinds.isSlab(flags, pageType) || testPageFlag(flags, PG_lru) || testPageFlag(flags, PG_reserved)) return;
    if (isCompoundTail(dv, o)) return;
    if (dv.getInt32(o + offRef, true) <= 0) return;
    if (kinds.isBuddy(pageType)) return;
    if (dv.getBigUint64(o + offMapping, true) !== 0n) return;
    unaccounted++;
    const head = prog.read(pfnToVirt(prog, pfn), 8);
    if (!head) return;
    const w = new DataView(head.buffer, head.byteOffset).getBigUint64(0, true);
    if (w !== 0n) counts.set(w, (counts.get(w) ?? 0) + 1);
  });
  const headers = [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)
    .map(([w, c]) => ({ value: `0x${w.toString(16).padStart(16, '0')}`, pages: c, text: ascii(w) }));
  return { pfnsScanned: walk.pfnsScanned, unaccounted, bytes: unaccounted * prog.pageSize, headers };
}
