/**
 * x86_64 kernel address-space layout (Documentation/x86/x86_64/mm.rst). With KASLR (CONFIG_RANDOMIZE_MEMORY,
 * since 4.8) page_offset_base, vmalloc_base and vmemmap_base are variables; a dump tells them exactly.
 * Text dumps do not: then the direct map is bounded from the slab addresses we did see, which is safe
 * because KASLR puts at least 10 TiB of padding (CONFIG_RANDOMIZE_MEMORY_PHYSICAL_PADDING) between the
 * end of the direct map and vmalloc, and without KASLR the direct map spans 64 TiB.
 */
/** The bases without CONFIG_RANDOMIZE_MEMORY (the defaults of page_offset_base, vmalloc_base, vmemmap_base). */
export const DEFAULT_PAGE_OFFSET_BASE = 0xffff888000000000n;
export const DEFAULT_VMALLOC_BASE = 0xffffc90000000000n;
export const DEFAULT_VMEMMAP_BASE = 0xffffea0000000000n;
const DIRECT_MAP_REGION_START_HI = 0xffff8880;

export interface AddressSpace {
  /** Where the bounds come from: 'vmcore', 'kcore', or 'estimated from slab addresses'. */
  source: string;
  directMap: { lo: bigint; hi: bigint };
  vmalloc: { lo: bigint; hi: bigint } | null;
  vmemmap: { lo: bigint; hi: bigint } | null;
}

export function estimateAddressSpace(slabAddrs: bigint[]): AddressSpace {
  let min = slabAddrs.length ? slabAddrs[0] : DEFAULT_PAGE_OFFSET_BASE;
  let max = min;
  for (const a of slabAddrs) {
    if (a < min) min = a;
    if (a > max) max = a;
  }
  const lo = BigInt(DIRECT_MAP_REGION_START_HI) << 32n;
  const hi = max + (4n << 40n); // 4 TiB above the highest slab seen
  return { source: 'estimated from slab addresses', directMap: { lo: lo < min ? lo : min, hi }, vmalloc: null, vmemmap: null };
}

export type AddressClass = 'direct-map' | 'vmalloc' | 'vmemmap' | 'kernel' | 'user-or-data';

export function classifyAddress(as: AddressSpace, v: bigint): AddressClass {
  if (v >= 0xffffffff80000000n) return 'kernel';
  if (v >= as.directMap.lo && v < as.directMap.hi) return 'direct-map';
  if (as.vmalloc && v >= as.vmalloc.lo && v < as.vmalloc.hi) return 'vmalloc';
  if (as.vmemmap && v >= as.vmemmap.lo && v < as.vmemmap.hi) return 'vmemmap';
  return 'user-or-data';
}
