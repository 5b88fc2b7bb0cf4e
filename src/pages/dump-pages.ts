/**
 * Page leaks from a dump alone: a census of struct pages that nothing accounts for. A page counts as
 * "unaccounted kernel memory" when it is in use (_refcount > 0), not free in the buddy allocator
 * (page_type PAGE_BUDDY_MAPCOUNT_VALUE), not a slab page (PG_slab), not on an LRU list (PG_lru: page
 * cache and anonymous memory), not reserved (PG_reserved), has no mapping, and is not a compound tail.
 * Those are what alloc_pages() callers hold: page tables, kernel stacks, driver buffers, and leaks.
 * Their first 8 bytes are grouped: a leak that stamps its pages shows up as one large group.
 */
import type { OpenVmcore } from '../sources/vmcore.js';

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

export function unaccountedPages(v: OpenVmcore, top = 5): UnaccountedPages {
  const { prog, types, syms } = v;
  const bases = prog.bases!;
  const btf = types.btf;
  const bit = (name: string, vmcoreName: string) => {
    const b = btf?.enumerator(name) ?? prog.info.numbers.get(vmcoreName);
    return b === undefined || b === null ? -1 : Number(b);
  };
  const PG_slab = bit('PG_slab', 'PG_slab');
  const PG_lru = bit('PG_lru', 'PG_lru');
  const PG_reserved = bit('PG_reserved', 'PG_reserved');
  const offRef = types.offsetOf('page', '_refcount');
  const offMapping = types.offsetOf('page', 'mapping');
  const offMapcount = types.offsetOf('page', '_mapcount');
  const buddy = Number(prog.info.numbers.get('PAGE_BUDDY_MAPCOUNT_VALUE') ?? -129n);
  const maxPfnAddr = syms.addressOf('max_pfn');
  const maxPfn = maxPfnAddr ? Number(prog.u64(maxPfnAddr, 'max_pfn')) : Math.floor((prog.dump.phys?.physEnd ?? 0) / prog.pageSize);
  const counts = new Map<bigint, number>();
  let scanned = 0;
  let unaccounted = 0;
  const CHUNK = 4096;
  for (let pfn0 = 0; pfn0 < maxPfn; pfn0 += CHUNK) {
    const n = Math.min(CHUNK, maxPfn - pfn0);
    const b = prog.read(bases.vmemmapBase + BigInt(pfn0 * 64), n * 64);
    if (!b) continue;
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    for (let i = 0; i < n; i++) {
      const o = i * 64;
      scanned++;
      const flags = dv.getBigUint64(o, true);
      const has = (k: number) => k >= 0 && ((flags >> BigInt(k)) & 1n) === 1n;
      if (has(PG_slab) || has(PG_lru) || has(PG_reserved)) continue;
      if ((dv.getBigUint64(o + 8, true) & 1n) === 1n) continue; // compound tail
      if (dv.getInt32(o + offRef, true) <= 0) continue;
      if (dv.getInt32(o + offMapcount, true) === buddy) continue;
      if (dv.getBigUint64(o + offMapping, true) !== 0n) continue;
      unaccounted++;
      const head = prog.read(bases.pageOffsetBase + BigInt(pfn0 + i) * BigInt(prog.pageSize), 8);
      if (!head) continue;
      const w = new DataView(head.buffer, head.byteOffset).getBigUint64(0, true);
      if (w !== 0n) counts.set(w, (counts.get(w) ?? 0) + 1);
    }
  }
  const headers = [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)
    .map(([w, c]) => ({ value: `0x${w.toString(16).padStart(16, '0')}`, pages: c, text: ascii(w) }));
  return { pfnsScanned: scanned, unaccounted, bytes: unaccounted * prog.pageSize, headers };
}
