/**
 * `sysak memleak extract`: cut from a vmcore only what the analysis reads (the cache's slab pages,
 * its struct pages, kmem_cache and per-CPU structures, page tables, kallsyms tables, BTF, module
 * symbols), as a small ELF core that opens again with --vmcore. The pages are found by running the
 * analysis itself with page tracking on, so the extract answers exactly what a later run asks.
 * struct pages of other caches' and free pages are blanked (zeros read as "not a slab"), which is
 * what keeps the extract small: the memmap is 1.6% of RAM.
 */
import { MemleakError } from '../errors.js';
import type { AnalyzeRequest } from '../request.js';
import { analyze } from './analyze.js';
import type { SlabReport } from './report.js';
import { writeElfCore, type ExtractPage } from '../dump/elf-writer.js';
import type { Kernel } from '../kernel/kernel.js';
import type { SlabSet } from '../scan/slab-set.js';
import { maxPfn, pfnToPage, structPageSize } from '../kernel/mm.js';

export interface ExtractResult {
  image: Uint8Array;
  report: SlabReport;
  pages: number;
  blankedStructPages: number;
}

export function buildImage(v: Kernel, set: SlabSet): { image: Uint8Array; pages: number; blanked: number } {
  const prog = v.prog;
  const capture = prog.capture;
  if (!capture) throw new MemleakError('E_INTERNAL', 'extract: the kernel was opened without page capture');
  const bases = prog.bases;
  const pageSize = prog.pageSize;
  const ps = BigInt(pageSize);
  const size = structPageSize(prog);
  // pfns whose struct page must survive: every page of every slab of the cache.
  const keep = new Set<number>();
  const pagesPerSlab = set.cache.slabSize / pageSize;
  for (const s of set.slabs) {
    const pfn = Number((s - bases.pageOffsetBase) / ps);
    for (let k = 0; k < pagesPerSlab; k++) keep.add(pfn + k);
  }
  // Which dump pages hold struct pages, and of which pfns.
  const memmapPage = new Map<number, number>(); // physical pfn -> first pfn described
  // max_pfn bounds the walk, not the dump's physical end: a damaged ELF p_memsz of 2^50 made 2^32 translations.
  const lastPfn = maxPfn(prog, v.syms);
  const perPage = pageSize / size;
  for (let pfn = 0; pfn < lastPfn; pfn += perPage) {
    const phys = prog.translate(pfnToPage(prog, pfn));
    if (phys !== null) memmapPage.set(Math.floor(phys / pageSize), pfn);
  }
  // The memmap translation above may still read page tables: capture ends only now.
  const captured = capture.stop();
  const pages: ExtractPage[] = [];
  let blanked = 0;
  for (const pfn of [...captured.keys()].sort((a, b) => a - b)) {
    const data = captured.get(pfn)!.slice();
    const first = memmapPage.get(pfn);
    if (first !== undefined) {
      for (let i = 0; i < perPage; i++) {
        if (keep.has(first + i)) continue;
        data.fill(0, i * size, (i + 1) * size);
        blanked++;
      }
    }
    pages.push({ pfn, data });
  }
  const image = writeElfCore(pages, pageSize, prog.dump.vmcoreinfo!, {
    tool: 'sysak memleak extract',
    from: v.dump.path,
    format: v.dump.format,
    cache: set.cache.name,
    pages: pages.length,
    note: 'struct pages outside the cache are zeroed; only pages the analysis reads are present',
  });
  return { image, pages: pages.length, blanked };
}

export async function extractVmcore(req: AnalyzeRequest): Promise<ExtractResult> {
  if (!req.vmcore) throw new MemleakError('E_USAGE', 'extract needs --vmcore FILE');
  let built: { image: Uint8Array; pages: number; blanked: number } | null = null;
  const report = await analyze({
    ...req,
    vmcoreHook: {
      capturePages: true,
      beforeClose: (v, set) => {
        built = buildImage(v, set);
      },
    },
  });
  if (!built) throw new MemleakError('E_INTERNAL', 'extract: the analysis did not reach the dump');
  const b = built as { image: Uint8Array; pages: number; blanked: number };
  return { image: b.image, report, pages: b.pages, blankedStructPages: b.blanked };
}
