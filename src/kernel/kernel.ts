/**
 * A vmcore (or kcore, or an extract) as an analysis source: open the dump, find symbols (a kallsyms
 * file, or the dump's own tables) and types (a BTF file, or the dump's .BTF), read the address-space
 * bases, walk one slab cache, and hand the scan engine a SlabSet whose free objects come from the
 * freelists.
 */
import type { Dump } from '../dump/dump.js';
import { openDump } from '../dump/open-dump.js';
import { Btf } from './btf.js';
import { btfFromDump, checkKallsymsAgainstDump, dumpKernelSymbols, moduleSymbolsFromDump } from './dump-symbols.js';
import { Kallsyms } from './kallsyms.js';
import { Program, type KernelProgram } from './program.js';
import { KernelTypes } from './types.js';
import {
  cpuSlabs, forEachSlab, forEachSlabCache, walkFreelist,
  type CpuSlab, type FreeChain, type KmemCache, type SlubContext,
} from './slub.js';
import type { AddressSpace } from './address-space.js';
import { maxPfn, pageToPfn, pfnToPage, pfnToVirt, structPageSize } from './mm.js';
import { readBinary, readText } from '../util/read-file.js';
import { Phases } from '../phases.js';

export interface VmcoreInputs {
  vmcore: string;
  kallsyms: string | null;
  /** `kallsyms` already parsed: used instead of reading the file again. */
  kallsymsTable?: Kallsyms;
  btf: string | null;
  /** Keep every physical page read (for `extract` and live --save). */
  capturePages?: boolean;
}

/**
 * One opened kernel (drgn's Program): its memory with the address-space bases fixed at open, its
 * symbols (kernel + modules) and its types. Built once by openVmcore; nothing is set on it afterwards.
 */
export interface Kernel extends SlubContext {
  dump: Dump;
  prog: KernelProgram;
  symbolsSource: string;
  typesSource: string;
  warnings: string[];
  close(): void;
}

/** Opens a vmcore, /proc/kcore or an extract as a Kernel. */
export function openVmcore(inp: VmcoreInputs, phases: Phases = new Phases()): Kernel {
  const dump = phases.run('open', 'bytes', () => openDump(inp.vmcore));
  try {
    // The kernel image is read through the page tables' fixed mapping: symbols first, then the bases.
    const image = new Program(dump, { capture: inp.capturePages === true });
    const warnings: string[] = [];
    const symbols = phases.start('symbols', 'objects');
    const fileSyms = inp.kallsymsTable ?? (inp.kallsyms ? Kallsyms.parse(readText(inp.kallsyms), inp.kallsyms) : null);
    // Decoded once: the kernel's table, and later the base of kernel + module symbols. A live kernel's
    // own /proc/kallsyms needs no cross-check against its image (the search and decode would only slow
    // the first run); an extract being kept (--save) still gets the tables.
    const fromDump = fileSyms && dump.live && !inp.capturePages ? { rows: null, source: '', error: null } : dumpKernelSymbols(image);
    const kernelRows = fromDump.rows;
    const dumpKernel = fromDump.rows ? Kallsyms.fromRows(fromDump.rows, `${dump.path} (${fromDump.source})`) : null;
    if (fileSyms) checkKallsymsAgainstDump(image, fileSyms, dumpKernel);
    symbols.add(0, kernelRows?.length ?? 0);
    symbols.end();
    const kernelSyms = fileSyms ?? dumpKernel;
    if (!kernelSyms) throw fromDump.error!;
    const base = (name: string) => {
      const a = kernelSyms.addressOf(name);
      // Without CONFIG_RANDOMIZE_MEMORY the bases are constants (Documentation/x86/x86_64/mm.rst).
      return a === null ? null : image.u64(a, name);
    };
    const prog = image.withBases({
      pageOffsetBase: base('page_offset_base') ?? 0xffff888000000000n,
      vmallocBase: base('vmalloc_base') ?? 0xffffc90000000000n,
      vmemmapBase: base('vmemmap_base') ?? 0xffffea0000000000n,
    });
    const typesPhase = phases.start('types', 'bytes');
    let btf: Btf | null = null;
    let typesSource: string;
    if (inp.btf) {
      btf = Btf.parse(readBinary(inp.btf), inp.btf);
      typesSource = inp.btf;
    } else {
      btf = btfFromDump(prog, kernelSyms);
      typesSource = btf ? btf.source : 'VMCOREINFO only (no BTF in the dump: pass --btf)';
    }
    const types = new KernelTypes(btf, prog.info, dump.path);
    typesPhase.end();
    const modPhase = phases.start('module symbols', 'objects');
    let syms = kernelSyms;
    let symbolsSource = kernelSyms.source;
    if (!fileSyms) {
      const mods = moduleSymbolsFromDump(prog, kernelSyms, types);
      warnings.push(...mods.warnings);
      syms = Kallsyms.fromRows([...kernelRows!, ...mods.rows], kernelSyms.source);
      symbolsSource = `${dump.path} (${fromDump.source} + ${mods.rows.length} module symbols)`;
      modPhase.add(0, mods.rows.length);
    }
    modPhase.end();
    return { dump, prog, syms, types, symbolsSource, typesSource, warnings, close: () => dump.close() };
  } catch (e) {
    dump.close();
    throw e;
  }
}

export interface CacheSummary {
  cache: KmemCache;
  slabs: number;
  total: number;
  allocated: number;
}

/** kmem -s for every cache: one pass over struct pages; cpu slabs' private freelists subtracted. */
export function summarizeCaches(v: Kernel): CacheSummary[] {
  const caches = forEachSlabCache(v);
  const byAddr = new Map<bigint, CacheSummary>();
  for (const c of caches) byAddr.set(c.addr, { cache: c, slabs: 0, total: 0, allocated: 0 });
  forEachSlab(v, new Set(byAddr.keys()), (s) => {
    const row = byAddr.get(s.cache)!;
    row.slabs++;
    row.total += s.objects;
    row.allocated += s.inuse;
  });
  for (const row of byAddr.values()) {
    for (const { chain } of cpuFreelists(v, row.cache, () => row.cache.objects)) row.allocated -= chain.objects.length;
  }
  return [...byAddr.values()];
}

/**
 * Each CPU's private freelist (kmem_cache_cpu.freelist, objects of its cpu slab). On a live kernel it
 * moves with every allocation: a broken walk reads kmem_cache_cpu and the slab again, up to 3 times.
 */
function cpuFreelists(v: Kernel, cache: KmemCache, objectsOf: (slabBase: bigint) => number): { cpu: CpuSlab; chain: FreeChain; raced: boolean }[] {
  const slabBytes = v.prog.pageSize << cache.order;
  const out: { cpu: CpuSlab; chain: FreeChain; raced: boolean }[] = [];
  const cpus = cpuSlabs(v, cache);
  for (let k = 0; k < cpus.length; k++) {
    let cpu = cpus[k];
    const walkCpu = () => {
      if (cpu.freelist === 0n || cpu.slab === 0n) return null;
      const base = slabBaseOfPage(v, cpu.slab);
      return walkFreelist(cache, base, objectsOf(base), null, (a) => readU64(v, a), cpu.freelist);
    };
    let chain = walkCpu();
    let raced = false;
    for (let attempt = 0; chain?.broken && v.dump.live && attempt < 3; attempt++) {
      v.prog.forget(cpu.addr, 32);
      if (cpu.slab) v.prog.forget(slabBaseOfPage(v, cpu.slab), slabBytes);
      cpu = cpuSlabs(v, cache)[k] ?? cpu;
      chain = walkCpu();
      if (chain && !chain.broken) raced = true;
    }
    if (chain) out.push({ cpu, chain, raced });
  }
  return out;
}

function readU64(v: Kernel, a: bigint): bigint | null {
  const b = v.prog.read(a, 8);
  return b ? new DataView(b.buffer, b.byteOffset).getBigUint64(0, true) : null;
}

/** page_address(slab): the direct-map address of a struct page's memory. */
export function slabBaseOfPage(v: Kernel, page: bigint): bigint {
  return pfnToVirt(v.prog, pageToPfn(v.prog, page));
}

export interface CacheWalk {
  cache: KmemCache;
  /**
   * Slab head pfns, ascending (the struct page walk goes in pfn order), and each slab's object count:
   * 16 bytes per slab, where a SlabPage object with its bigints took ~200 (the walk of a 2.4 GiB cache
   * held 625,136 of them).
   */
  pfns: number[];
  objects: number[];
  /** Free object indexes of the slabs that have free objects, by slab index: slab and per-CPU freelists. */
  freeBySlab: Map<number, number[]>;
  freeObjects: number;
  total: number;
  allocated: number;
  cpuFreelistObjects: number;
  warnings: string[];
  /** page_address() of slab i. */
  slabBase(i: number): bigint;
  /** True if `addr` is on a freelist of this cache. */
  isFree(addr: bigint): boolean;
}

/** Every slab of one cache and its free objects. */
export function walkCache(v: Kernel, cache: KmemCache, phases: Phases = new Phases()): CacheWalk {
  const pfns: number[] = [];
  const objects: number[] = [];
  const heads: { slab: number; page: bigint; freelist: bigint }[] = [];
  const walkPhase = phases.start('memmap walk', 'pages', maxPfn(v.prog, v.syms));
  const stats = forEachSlab(v, new Set([cache.addr]), (s) => {
    if (s.freelist !== 0n) heads.push({ slab: pfns.length, page: s.page, freelist: s.freelist });
    pfns.push(pageToPfn(v.prog, s.page));
    objects.push(s.objects);
  }, (done) => {
    walkPhase.items = done;
    walkPhase.tick();
  });
  walkPhase.bytes = stats.pfnsScanned * structPageSize(v.prog);
  walkPhase.end();
  const warnings: string[] = [];
  if (stats.unreadableStructPages) {
    warnings.push(`${stats.unreadableStructPages} struct pages could not be read (vmemmap holes or pages excluded from the dump): slabs there are not seen`);
  }
  const freePhase = phases.start('freelists', 'slabs');
  const ps = v.prog.pageSize;
  const base0 = v.prog.bases.pageOffsetBase;
  const slabBase = (i: number) => base0 + BigInt(pfns[i] * ps);
  const slabBytes = ps << cache.order;
  const freeBySlab = new Map<number, number[]>();
  let freeObjects = 0;
  const addFree = (i: number, objs: bigint[]) => {
    if (objs.length === 0) return;
    const base = slabBase(i);
    let list = freeBySlab.get(i);
    if (!list) freeBySlab.set(i, (list = []));
    for (const o of objs) {
      const j = Number(o - base) / cache.size;
      if (!list.includes(j)) {
        list.push(j);
        freeObjects++;
      }
    }
  };
  let broken = 0;
  const note = (msg: string) => {
    if (broken++ < 3) warnings.push(msg);
  };
  const S = v.types.hasStruct('slab') ? 'slab' : 'page';
  const offFreelist = BigInt(v.types.offsetOf(S, 'freelist'));
  let raced = 0;
  for (const h of heads) {
    const base = slabBase(h.slab);
    const n = objects[h.slab];
    let chain = walkFreelist(cache, base, n, v.prog.read(base, slabBytes), (a) => readU64(v, a), h.freelist);
    // On a live kernel the slab may change between reading its struct slab and its objects: read both
    // again (a few times) before calling the freelist broken.
    for (let attempt = 0; chain.broken && v.dump.live && attempt < 3; attempt++) {
      v.prog.forget(h.page, 64);
      v.prog.forget(base, slabBytes);
      const head = readU64(v, h.page + offFreelist) ?? 0n;
      chain = walkFreelist(cache, base, n, v.prog.read(base, slabBytes), (a) => readU64(v, a), head);
      if (!chain.broken) raced++;
    }
    if (chain.broken) note(v.dump.live ? `${chain.broken} (live kernel: still changing after 3 re-reads; its free objects count as allocated)` : chain.broken);
    addFree(h.slab, chain.objects);
    freePhase.add(slabBytes, 1);
  }
  const indexOfBase = (b: bigint) => {
    const pfn = Number((b - base0) / BigInt(ps));
    let lo = 0;
    let hi = pfns.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (pfns[mid] === pfn) return mid;
      if (pfns[mid] < pfn) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  };
  let cpuFree = 0;
  for (const { cpu, chain, raced: moved } of cpuFreelists(v, cache, (b) => objects[indexOfBase(b)] ?? cache.objects)) {
    if (moved) raced++;
    if (chain.broken) note(`cpu ${cpu.cpu}: ${chain.broken}${v.dump.live ? ' (live kernel: still changing after 3 re-reads)' : ''}`);
    const before = freeObjects;
    const byBase = new Map<number, bigint[]>();
    for (const o of chain.objects) {
      const i = indexOfBase(o - ((o - base0) % BigInt(slabBytes)));
      if (i < 0) continue;
      let l = byBase.get(i);
      if (!l) byBase.set(i, (l = []));
      l.push(o);
    }
    for (const [i, objs] of byBase) addFree(i, objs);
    cpuFree += freeObjects - before;
  }
  freePhase.end();
  if (raced) warnings.push(`${raced} slabs changed while being read (live kernel) and were read again`);
  if (broken > 3) warnings.push(`${broken - 3} more broken freelists`);
  let total = 0;
  for (const n of objects) total += n;
  const isFree = (a: bigint) => {
    if (a < base0) return false;
    const i = indexOfBase(a - ((a - base0) % BigInt(slabBytes)));
    return i >= 0 && (freeBySlab.get(i)?.includes(Number(a - slabBase(i)) / cache.size) ?? false);
  };
  return { cache, pfns, objects, freeBySlab, freeObjects, total, allocated: total - freeObjects, cpuFreelistObjects: cpuFree, warnings, slabBase, isFree };
}

export function addressSpaceOf(v: Kernel): AddressSpace {
  const b = v.prog.bases;
  const physEnd = BigInt(v.dump.phys?.physEnd ?? 0);
  return {
    source: v.dump.live ? 'kcore (live)' : 'vmcore',
    directMap: { lo: b.pageOffsetBase, hi: b.pageOffsetBase + (physEnd > 0n ? physEnd : 1n << 46n) },
    // VMALLOC_SIZE_TB is 32 with 4-level paging, 12800 with 5-level (Documentation/x86/x86_64/mm.rst).
    vmalloc: { lo: b.vmallocBase, hi: b.vmallocBase + ((v.prog.pgtableL5 ? 12800n : 32n) << 40n) },
    vmemmap: { lo: b.vmemmapBase, hi: physEnd > 0n ? pfnToPage(v.prog, Number(physEnd / BigInt(v.prog.pageSize))) : b.vmemmapBase + (1n << 40n) },
  };
}
