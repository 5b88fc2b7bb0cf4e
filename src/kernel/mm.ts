/**
 * The memory map (SPARSEMEM_VMEMMAP on x86_64): struct page of pfn N sits at vmemmap_base + N * sizeof
 * (struct page), its memory at page_offset_base + N * PAGE_SIZE. Helpers named after the kernel's
 * pfn_to_page / page_to_pfn / pfn_to_virt, the one walk over every struct page the analyses share, and
 * the struct page tests of include/linux/page-flags.h, each written once here: a page flag
 * (testPageFlag, pfnFlagTest), PageSlab / PageBuddy (pageKinds), PageTail (isCompoundTail), and which
 * struct describes a slab (slabStruct). Kernel-version differences are probed (VMCOREINFO, BTF), not
 * inferred from a version number; each branch names the release and commit that forced it.
 */
import { MemleakError } from '../errors.js';
import type { Kallsyms } from './kallsyms.js';
import type { KernelProgram, Program } from './program.js';
import type { KernelTypes } from './types.js';

/** sizeof(struct page): VMCOREINFO SIZE(page), 64 on every x86_64 kernel without debug fields. */
export function structPageSize(prog: Program): number {
  return prog.info.sizes.get('page') ?? 64;
}

export function pfnToPage(prog: KernelProgram, pfn: number): bigint {
  return prog.bases.vmemmapBase + BigInt(pfn) * BigInt(structPageSize(prog));
}

export function pageToPfn(prog: KernelProgram, page: bigint): number {
  return Number((page - prog.bases.vmemmapBase) / BigInt(structPageSize(prog)));
}

/** The direct-map address of a pfn's memory (page_address of a lowmem page). */
export function pfnToVirt(prog: KernelProgram, pfn: number): bigint {
  return prog.bases.pageOffsetBase + BigInt(pfn) * BigInt(prog.pageSize);
}

/** max_pfn from the kernel, else the dump's physical end. */
export function maxPfn(prog: Program, syms: Kallsyms): number {
  const dumpEnd = Math.ceil((prog.dump.phys?.physEnd ?? 0) / prog.pageSize);
  const at = syms.addressOf('max_pfn');
  if (at === null) return dumpEnd;
  const v = prog.u64(at, 'max_pfn');
  // 2^40 pfns is x86_64's whole 52-bit physical space: more is a damaged value, not a machine.
  if (v > 1n << 40n) throw new MemleakError('E_FORMAT', `max_pfn in the dump is ${v}: beyond any x86_64 machine (damaged memory or wrong symbols)`, { file: prog.dump.path });
  // A page past the dump's physical end has no memory in it; walking its struct pages reads nothing.
  return prog.dump.phys ? Math.min(Number(v), dumpEnd) : Number(v);
}

/** test_bit(bit, &page->flags) on the flags word; a bit of -1 (no such flag on this kernel) is never set. */
export function testPageFlag(flags: bigint, bit: number): boolean {
  return bit >= 0 && ((flags >> BigInt(bit)) & 1n) === 1n;
}

/**
 * PageTail: a tail page of a compound page carries compound_head | 1 in the word at offset 8 (the
 * compound_head encoding since 1d798ca3f164 "mm: make compound_head() robust", 4.6); only the head
 * page describes the compound page (a slab, a page-allocator block).
 */
export function isCompoundTail(dv: DataView, off: number): boolean {
  // Bit 0 of the little-endian word, read without a bigint (the struct page walk's hot loop).
  return (dv.getUint32(off + 8, true) & 1) === 1;
}

/**
 * The struct whose members describe a slab (slab_cache, freelist, inuse/objects/frozen): struct slab
 * since 5.17 (d122019bf061 "mm: Split slab into its own type"), struct page before it. Probed in BTF:
 * struct slab with a slab_cache member.
 */
export function slabStruct(types: KernelTypes): 'slab' | 'page' {
  return types.hasStruct('slab') && types.tryOffsetOf('slab', 'slab_cache') !== null ? 'slab' : 'page';
}

const PAGE_CHUNK = 4096; // struct pages per read (256 KiB)

export interface StructPageWalk {
  pfnsScanned: number;
  /** struct pages that could not be read (vmemmap holes are normal; excluded pages are not). */
  unreadableStructPages: number;
}

/**
 * Every struct page below `limit`, in pfn order: visit(pfn, view, offset) with the page's bytes at
 * view[offset .. offset + sizeof(struct page)). Read in chunks; a chunk that fails (a vmemmap hole, an
 * excluded page) is read again one vmemmap page at a time, and what still fails is counted.
 */
export function forEachStructPage(
  prog: KernelProgram,
  limit: number,
  visit: (pfn: number, dv: DataView, off: number) => void,
  progress?: (pfnsScanned: number) => void,
): StructPageWalk {
  const size = structPageSize(prog);
  return forEachStructPageBlock(prog, limit, (pfn0, dv, n) => {
    for (let i = 0; i < n; i++) visit(pfn0 + i, dv, i * size);
  }, progress);
}

/**
 * forEachStructPage a block at a time: visit(pfn0, view, n) with the struct pages of pfns
 * [pfn0, pfn0 + n) back to back in view (sizeof(struct page) apart), for walks whose per-page test is
 * a loop of their own (2 million struct pages for 8 GiB: a call per page costs more than the test).
 * The view is reused for the next block.
 */
export function forEachStructPageBlock(
  prog: KernelProgram,
  limit: number,
  visit: (pfn0: number, dv: DataView, n: number) => void,
  progress?: (pfnsScanned: number) => void,
): StructPageWalk {
  const size = structPageSize(prog);
  const perPage = prog.pageSize / size;
  const walk: StructPageWalk = { pfnsScanned: 0, unreadableStructPages: 0 };
  const visitBlock = (pfn0: number, bytes: Uint8Array, n: number) => {
    visit(pfn0, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), n);
    walk.pfnsScanned += n;
  };
  // One buffer for the whole walk, filled in bulk (a kdump decodes a batch of pages per read).
  const buf = new Uint8Array(PAGE_CHUNK * size);
  for (let pfn0 = 0; pfn0 < limit; pfn0 += PAGE_CHUNK) {
    const n = Math.min(PAGE_CHUNK, limit - pfn0);
    progress?.(pfn0);
    const chunk = buf.subarray(0, n * size);
    if (prog.readInto(pfnToPage(prog, pfn0), chunk)) {
      visitBlock(pfn0, chunk, n);
      continue;
    }
    for (let j = 0; j < n; j += perPage) {
      const m = Math.min(perPage, n - j);
      const one = prog.read(pfnToPage(prog, pfn0 + j), m * size);
      if (one) visitBlock(pfn0 + j, one, m);
      else walk.unreadableStructPages += m;
    }
  }
  return walk;
}

/**
 * Page flags and page types of a struct page, by what this kernel exports (VMCOREINFO first, BTF
 * enumerators second), the tests of include/linux/page-flags.h:
 * - flags: a bit number per flag (NUMBER(PG_lru), BTF enum pageflags); -1 when the kernel has no such flag.
 * - page types live in page->page_type, a union with _mapcount (6e292b9be7f4 "mm: split page_type out
 *   from _mapcount", 4.18). Up to 6.11 a type is a CLEARED bit under PAGE_TYPE_BASE 0xf0000000, and
 *   VMCOREINFO NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE) is ~PG_buddy (-129). 6.10 (46df8e73a4a3 "mm: free up
 *   PG_slab") made PageSlab such a type: PG_slab left the flags, NUMBER(PAGE_SLAB_MAPCOUNT_VALUE) came.
 *   6.12 (4ffca5a96678 "mm: support only one page_type per page") made the top byte the type (PGTY_buddy
 *   0xf0 ... PGTY_slab 0xf5, the low 24 bits its data) and the exported values PGTY_x << 24.
 *   Which encoding a kernel uses shows in the exported value itself (low 24 bits zero or not), so it is
 *   probed, not inferred from a version.
 */
export interface PageKinds {
  /** Bit number of a page flag, -1 when this kernel has no such flag. */
  flagBit(name: 'PG_slab' | 'PG_lru' | 'PG_reserved'): number;
  /** PageBuddy from the page_type/_mapcount word (read as u32). */
  isBuddy(pageType: number): boolean;
  /** PageSlab from the flags word and the page_type word. */
  isSlab(flags: bigint, pageType: number): boolean;
  /**
   * PageSlab of the struct page at view[off ..] whose page_type word is at off + offType: the same test
   * as isSlab, reading only the 32-bit word that holds the flag (no bigint: the memmap walk's hot loop).
   */
  isSlabAt(dv: DataView, off: number, offType: number): boolean;
  /** How PageSlab is told on this kernel, for reports and tests. */
  slabBy: 'PG_slab flag' | 'page type (cleared bit)' | 'page type (top byte)' | 'unknown';
}

const PAGE_TYPE_BASE = 0xf0000000;

/** A test for one page type from its exported *_MAPCOUNT_VALUE (a signed 32-bit number). */
function pageTypeTest(value: bigint | undefined): { test: (word: number) => boolean; byte: boolean } | null {
  if (value === undefined) return null;
  const v = Number(BigInt.asUintN(32, value));
  if ((v & 0xffffff) === 0) return { test: (w) => (w >>> 24) === v >>> 24, byte: true }; // 6.12+: PGTY_x << 24
  // up to 6.11: the type's bit is cleared under PAGE_TYPE_BASE (before 4.18 the whole word equals it: same test)
  const mask = (PAGE_TYPE_BASE | (~v >>> 0)) >>> 0;
  return { test: (w) => ((w & mask) >>> 0) === PAGE_TYPE_BASE, byte: false };
}

export function pageKinds(prog: Program, btf: { enumerator(name: string): number | null } | null): PageKinds {
  const flagBit = (name: string): number => {
    const n = prog.info.numbers.get(name);
    if (n !== undefined) return Number(n);
    const e = btf?.enumerator(name);
    return e === undefined || e === null ? -1 : e;
  };
  const buddy = pageTypeTest(prog.info.numbers.get('PAGE_BUDDY_MAPCOUNT_VALUE') ?? -129n);
  const slabType = pageTypeTest(prog.info.numbers.get('PAGE_SLAB_MAPCOUNT_VALUE'));
  const pgSlab = flagBit('PG_slab');
  return {
    flagBit,
    isBuddy: (w) => buddy!.test(w >>> 0),
    isSlab: slabType ? (_f, w) => slabType.test(w >>> 0) : (f) => testPageFlag(f, pgSlab),
    isSlabAt: slabType
      ? (dv, off, offType) => slabType.test(dv.getUint32(off + offType, true))
      : pgSlab >= 0 && pgSlab < 64
        ? (dv, off) => ((dv.getUint32(off + (pgSlab >> 5) * 4, true) >>> (pgSlab & 31)) & 1) === 1
        : () => false,
    slabBy: slabType ? (slabType.byte ? 'page type (top byte)' : 'page type (cleared bit)') : pgSlab >= 0 ? 'PG_slab flag' : 'unknown',
  };
}

/**
 * A test of one page flag of a pfn, reading only its struct page's flags word, or undefined when this
 * kernel has no such flag (pageKinds().flagBit: VMCOREINFO NUMBER(PG_x), else BTF's enum pageflags).
 */
export function pfnFlagTest(prog: KernelProgram, kinds: PageKinds, flag: 'PG_slab' | 'PG_lru' | 'PG_reserved'): ((pfn: number) => boolean) | undefined {
  const bit = kinds.flagBit(flag);
  if (bit < 0) return undefined;
  return (pfn) => {
    const b = prog.read(pfnToPage(prog, pfn), 8);
    return b !== null && testPageFlag(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true), bit);
  };
}
