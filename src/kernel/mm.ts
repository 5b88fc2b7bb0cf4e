/**
 * The memory map (SPARSEMEM_VMEMMAP on x86_64): struct page of pfn N sits at vmemmap_base + N * sizeof
 * (struct page), its memory at page_offset_base + N * PAGE_SIZE. Helpers named after the kernel's
 * pfn_to_page / page_to_pfn / pfn_to_virt, and the one walk over every struct page the analyses share.
 */
import type { Kallsyms } from './kallsyms.js';
import type { Program } from './program.js';

/** sizeof(struct page): VMCOREINFO SIZE(page), 64 on every x86_64 kernel without debug fields. */
export function structPageSize(prog: Program): number {
  return prog.info.sizes.get('page') ?? 64;
}

export function pfnToPage(prog: Program, pfn: number): bigint {
  return prog.bases!.vmemmapBase + BigInt(pfn) * BigInt(structPageSize(prog));
}

export function pageToPfn(prog: Program, page: bigint): number {
  return Number((page - prog.bases!.vmemmapBase) / BigInt(structPageSize(prog)));
}

/** The direct-map address of a pfn's memory (page_address of a lowmem page). */
export function pfnToVirt(prog: Program, pfn: number): bigint {
  return prog.bases!.pageOffsetBase + BigInt(pfn) * BigInt(prog.pageSize);
}

/** max_pfn from the kernel, else the dump's physical end. */
export function maxPfn(prog: Program, syms: Kallsyms): number {
  const at = syms.addressOf('max_pfn');
  return at !== null ? Number(prog.u64(at, 'max_pfn')) : Math.floor((prog.dump.phys?.physEnd ?? 0) / prog.pageSize);
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
export function forEachStructPage(prog: Program, limit: number, visit: (pfn: number, dv: DataView, off: number) => void): StructPageWalk {
  const size = structPageSize(prog);
  const perPage = prog.pageSize / size;
  const walk: StructPageWalk = { pfnsScanned: 0, unreadableStructPages: 0 };
  const visitBlock = (pfn0: number, bytes: Uint8Array, n: number) => {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < n; i++) visit(pfn0 + i, dv, i * size);
    walk.pfnsScanned += n;
  };
  for (let pfn0 = 0; pfn0 < limit; pfn0 += PAGE_CHUNK) {
    const n = Math.min(PAGE_CHUNK, limit - pfn0);
    const chunk = prog.read(pfnToPage(prog, pfn0), n * size);
    if (chunk) {
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
