/**
 * One Program over a dump's memory (drgn's model): kernel virtual addresses are translated to physical
 * ones through the direct map, the kernel-image mapping, or a walk of the kernel page tables
 * (init_top_pgt), then read from the dump's physical segments. /proc/kcore gives virtual segments,
 * which are read directly. Analysis code only ever calls read(addr, len).
 */
import { MemleakError } from '../errors.js';
import { hex, U64_MASK as U64 } from '../util/hex.js';
import type { MemoryReader, ReadPlanner } from '../util/memory.js';
import type { Dump } from '../dump/dump.js';
import type { DeferredPages } from '../dump/decompress.js';
import { CapturedMemory } from '../dump/capture.js';
import { parseVmcoreinfo, type VmcoreInfo } from './vmcoreinfo.js';
import { PAGE_OFFSET_MASK, PAGE_SIZE_BIG } from '../util/page.js';

/** __START_KERNEL_map (arch/x86/include/asm/page_64_types.h). */
export const START_KERNEL_MAP = 0xffffffff80000000n;
/** The kernel image mapping spans KERNEL_IMAGE_SIZE (1 GiB with KASLR); modules follow it. */
const KERNEL_IMAGE_END = 0xffffffffc0000000n;
const PTE_PRESENT = 1n;
const PTE_PSE = 1n << 7n;
/** Physical address bits of a page-table entry (bits 12..51). */
const PTE_PFN_MASK = 0x000ffffffffff000n;
const HUGE_MASK = (1n << 21n) - 1n;

export interface ProgramBases {
  pageOffsetBase: bigint;
  vmallocBase: bigint;
  vmemmapBase: bigint;
}

export interface ProgramOptions {
  /** The address-space bases, once the kernel's symbols are known (see withBases). */
  bases?: ProgramBases;
  /** Read physical memory through a page capture (extract, live --save): true for a new one, or one to share. */
  capture?: boolean | CapturedMemory;
}

/** A Program whose address-space bases are known: what the mm and SLUB helpers need. */
export type KernelProgram = Program & { readonly bases: ProgramBases };

export class Program implements MemoryReader {
  readonly description: string;
  readonly info: VmcoreInfo;
  readonly kaslrOffset: bigint;
  readonly physBase: bigint;
  readonly pgtableL5: boolean;
  readonly pageSize: number;
  /**
   * page_offset_base, vmalloc_base, vmemmap_base: variables in the kernel image, so known only once the
   * symbols are (kernel/kernel.ts reads them, then takes withBases). Null on the Program that finds them.
   */
  readonly bases: ProgramBases | null;
  /**
   * Bytes of the direct map that are translated by subtraction: the dump's physical end, but never past
   * vmalloc_base (the regions are laid out in that order, KASLR or not). A damaged segment size (an ELF
   * p_memsz of 2^50) must not turn vmalloc and vmemmap addresses into direct-map ones that read zeros.
   */
  readonly directMapBytes: bigint;
  /** The page capture physical reads go through (dump/capture.ts), when one was asked for. */
  readonly capture: CapturedMemory | null;
  private readonly tlb = new Map<bigint, number>();
  /** Huge (2 MiB and 1 GiB) mappings by 2 MiB-aligned virtual address: vmemmap is mapped this way. */
  private readonly hugeTlb = new Map<bigint, number>();
  private readonly topPgt: bigint;
  private readonly smeMask: bigint;

  constructor(readonly dump: Dump, opts: ProgramOptions = {}) {
    if (!dump.vmcoreinfo) {
      throw new MemleakError(
        'E_FORMAT',
        'the dump has no VMCOREINFO note: cannot find KASLR offset and page tables (QEMU needs `-device vmcoreinfo` in the guest, kdump always writes it)',
        { file: dump.path },
      );
    }
    this.info = parseVmcoreinfo(dump.vmcoreinfo, `${dump.path} (VMCOREINFO)`);
    this.description = dump.format;
    this.pageSize = this.info.pageSize;
    this.kaslrOffset = this.info.kernelOffset ?? 0n;
    const pb = this.info.numbers.get('phys_base');
    this.physBase = pb !== undefined ? pb & U64 : (dump.headerPhysBase ?? 0n);
    this.pgtableL5 = (this.info.numbers.get('pgtable_l5_enabled') ?? 0n) !== 0n;
    this.smeMask = this.info.numbers.get('sme_mask') ?? 0n;
    const top = this.info.symbols.get('init_top_pgt') ?? this.info.symbols.get('swapper_pg_dir');
    if (top === undefined) throw new MemleakError('E_FORMAT', 'VMCOREINFO has no SYMBOL(init_top_pgt): cannot walk page tables', { file: dump.path });
    this.topPgt = top;
    this.bases = opts.bases ?? null;
    const physEnd = BigInt(dump.phys?.physEnd ?? 0);
    const b = this.bases;
    this.directMapBytes = b && b.vmallocBase > b.pageOffsetBase && b.vmallocBase - b.pageOffsetBase < physEnd ? b.vmallocBase - b.pageOffsetBase : physEnd;
    this.capture = opts.capture instanceof CapturedMemory ? opts.capture : opts.capture ? new CapturedMemory(dump.phys, this.pageSize) : null;
  }

  /** The same kernel memory (and the same capture) with the address-space bases known. */
  withBases(bases: ProgramBases): KernelProgram {
    return new Program(this.dump, { bases, capture: this.capture ?? false }) as KernelProgram;
  }

  /** Physical address of a kernel-image virtual address (phys_base accounts for where it was loaded). */
  private kernelImagePhys(v: bigint): number {
    return Number((v - START_KERNEL_MAP + this.physBase) & U64);
  }

  private readPhysU64(paddr: number): bigint | null {
    const b = this.readPhys(paddr, 8);
    return b ? new DataView(b.buffer, b.byteOffset).getBigUint64(0, true) : null;
  }

  private readPhys(paddr: number, len: number): Uint8Array | null {
    const phys = this.dump.phys;
    if (!phys) return null;
    return (this.capture ?? phys).readPhys(paddr, len);
  }

  /** x86_64 4- or 5-level walk from init_top_pgt; handles 1 GiB and 2 MiB pages. Null if not mapped. */
  walkPageTables(v: bigint): number | null {
    const mask = PTE_PFN_MASK & ~this.smeMask;
    let table = BigInt(this.kernelImagePhys(this.topPgt));
    const shifts = this.pgtableL5 ? [48n, 39n, 30n, 21n, 12n] : [39n, 30n, 21n, 12n];
    for (let level = 0; level < shifts.length; level++) {
      const shift = shifts[level];
      const idx = (v >> shift) & 0x1ffn;
      const e = this.readPhysU64(Number(table + idx * 8n));
      if (e === null || (e & PTE_PRESENT) === 0n) return null;
      const last = level === shifts.length - 1;
      // PSE at the PUD (1 GiB) or PMD (2 MiB) level maps a huge page.
      if (!last && (e & PTE_PSE) !== 0n && (shift === 30n || shift === 21n)) {
        const pageMask = (1n << shift) - 1n;
        // Remembered per 2 MiB: the struct page walk translates 512 pages of each huge page, and every
        // walk costs four 8-byte reads of the dump.
        const block = v & ~HUGE_MASK;
        if (this.hugeTlb.size > 1 << 16) this.hugeTlb.clear();
        this.hugeTlb.set(block, Number(((e & mask) & ~pageMask) | (block & pageMask)));
        return Number(((e & mask) & ~pageMask) | (v & pageMask));
      }
      table = e & mask;
      if (last) return Number(table | (v & PAGE_OFFSET_MASK));
    }
    return null;
  }

  /** Physical address of a kernel virtual address, or null if it is not mapped. */
  translate(v: bigint): number | null {
    if (v >= START_KERNEL_MAP && v < KERNEL_IMAGE_END) return this.kernelImagePhys(v);
    const b = this.bases;
    if (b && v >= b.pageOffsetBase && v - b.pageOffsetBase < this.directMapBytes) return Number(v - b.pageOffsetBase);
    const huge = this.hugeTlb.get(v & ~HUGE_MASK);
    if (huge !== undefined) return huge + Number(v & HUGE_MASK);
    const page = v & ~PAGE_OFFSET_MASK;
    let p = this.tlb.get(page);
    if (p === undefined) {
      const t = this.walkPageTables(page);
      if (t === null) return null;
      p = t;
      if (this.tlb.size > 1 << 16) this.tlb.clear();
      this.tlb.set(page, p);
    }
    return p + Number(v & PAGE_OFFSET_MASK);
  }

  read(addr: bigint, len: number): Uint8Array | null {
    // Physical first, also on /proc/kcore (whose RAM segments carry p_paddr): one path for every
    // source, and captured pages for extracts. kcore's virtual segments are the fallback.
    const r = this.readTranslated(addr, len);
    if (r !== null) return r;
    const virt = this.dump.virt;
    if (virt && virt.covers(addr)) return virt.readVirt(addr, len);
    return null;
  }

  /**
   * Bulk read into `out` (slab pages, struct pages): the range is translated page by page and each run
   * of physically contiguous pages goes to the dump in one request, which reads it with as few file
   * reads as it can and may leave compressed pages to `defer`. Captures and kcore's virtual segments
   * take read().
   */
  readInto(addr: bigint, out: Uint8Array, defer?: DeferredPages): boolean {
    const phys = this.dump.phys;
    if (this.capture?.capturing || !phys?.readPhysInto) {
      const r = this.read(addr, out.length);
      if (r) out.set(r);
      return r !== null;
    }
    const r = this.physRuns(addr, out.length, (p, done, n) => phys.readPhysInto!(p, out.subarray(done, done + n), defer?.at(done)));
    return r === null ? this.readVirtInto(addr, out) : r;
  }

  /**
   * readInto planned instead of done (dump/read-plan.ts): the same translation, each physically
   * contiguous run planned by the dump. Null when reads cannot be planned: a capture must see every
   * page, and a dump without a file behind it cannot be read by another thread.
   */
  planRead(addr: bigint, len: number, plan: ReadPlanner, dst: number): boolean | null {
    const phys = this.dump.phys;
    if (this.capture?.capturing || !phys?.planPhys) return null;
    return this.physRuns(addr, len, (p, done, n) => phys.planPhys!(p, n, plan, dst + done));
  }

  /**
   * Virtual [addr, addr + len) as physically contiguous runs: each(paddr, done, n) in order until one
   * does not return true (its answer is returned); null when a page is not mapped. The direct map is
   * one run; elsewhere the range is translated page by page.
   */
  private physRuns(addr: bigint, len: number, each: (paddr: number, done: number, n: number) => boolean | null): boolean | null {
    const b = this.bases;
    if (b && addr >= b.pageOffsetBase && addr - b.pageOffsetBase + BigInt(len) <= this.directMapBytes) {
      return each(Number(addr - b.pageOffsetBase), 0, len);
    }
    const ps = this.pageSize;
    let done = 0;
    while (done < len) {
      const a = addr + BigInt(done);
      const p0 = this.translate(a);
      if (p0 === null) return null;
      let n = Math.min(ps - Number(a & BigInt(ps - 1)), len - done);
      while (done + n < len) {
        const next = this.translate(a + BigInt(n));
        if (next !== p0 + n) break;
        n += Math.min(ps, len - done - n);
      }
      const r = each(p0, done, n);
      if (r !== true) return r;
      done += n;
    }
    return true;
  }

  /** kcore's virtual segments for what the page tables do not map. */
  private readVirtInto(addr: bigint, out: Uint8Array): boolean {
    const r = this.read(addr, out.length);
    if (r) out.set(r);
    return r !== null;
  }

  /** Pages a scan worker could not decompress: counted in the dump's stats like the reader's own. */
  noteCorruptPages(pages: { pfn: number; offset: number; why: string }[]): void {
    const st = this.dump.stats;
    st.corruptPages += pages.length;
    if (!st.firstCorrupt && pages.length) st.firstCorrupt = pages[0];
  }

  private readTranslated(addr: bigint, len: number): Uint8Array | null {
    const out = new Uint8Array(len);
    let done = 0;
    while (done < len) {
      const a = addr + BigInt(done);
      const inPage = this.pageSize - Number(a & BigInt(this.pageSize - 1));
      const n = Math.min(inPage, len - done);
      const p = this.translate(a);
      if (p === null) return null;
      const bytes = this.readPhys(p, n);
      if (!bytes) return null;
      out.set(bytes, done);
      done += n;
    }
    return out;
  }

  /** Drops captured copies of [addr, addr+len) so the next read sees the kernel's current bytes (live retries). */
  forget(addr: bigint, len: number): void {
    if (!this.capture?.capturing) return;
    for (let a = addr & ~PAGE_OFFSET_MASK; a < addr + BigInt(len); a += PAGE_SIZE_BIG) {
      const p = this.translate(a);
      if (p !== null) this.capture.forget(Math.floor(p / this.pageSize));
    }
  }

  /** Reads that must succeed: a missing page here means the dump cannot be analysed. */
  mustRead(addr: bigint, len: number, what: string): Uint8Array {
    const b = this.read(addr, len);
    if (!b) {
      throw new MemleakError('E_FORMAT', `cannot read ${what} at ${hex(addr)} (${len} bytes): the page is not in the dump (excluded or not mapped)`, {
        file: this.dump.path,
      });
    }
    return b;
  }

  u64(addr: bigint, what: string): bigint {
    const b = this.mustRead(addr, 8, what);
    return new DataView(b.buffer, b.byteOffset).getBigUint64(0, true);
  }

  u32(addr: bigint, what: string): number {
    const b = this.mustRead(addr, 4, what);
    return new DataView(b.buffer, b.byteOffset).getUint32(0, true);
  }

  cString(addr: bigint, max: number, what: string): string {
    const b = this.read(addr, max) ?? this.mustRead(addr, Math.min(max, this.pageSize - Number(addr & PAGE_OFFSET_MASK)), what);
    const z = b.indexOf(0);
    return new TextDecoder().decode(z < 0 ? b : b.subarray(0, z));
  }

  /** Address of a VMCOREINFO symbol, or null. */
  vmcoreSymbol(name: string): bigint | null {
    return this.info.symbols.get(name) ?? null;
  }
}
