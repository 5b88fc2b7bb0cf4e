/**
 * SLUB helpers (mm/slub.c), named after the kernel's: for_each_slab_cache, for_each_slab (a walk of
 * every struct page in vmemmap), slab_free_objects (freelists), and the walks built on them: a kmem -s
 * summary of every cache (summarizeCaches) and every slab and free object of one cache (walkCache),
 * re-reading what moves on a live kernel. Offsets come from KernelTypes (BTF).
 *
 * Version branches:
 * - struct slab split from struct page in v5.17 (d122019bf061 "mm: Split slab into its own type",
 *   kernel/mm.ts slabStruct); before it the same members (slab_cache, freelist,
 *   counters/inuse/objects/frozen) live in struct page, and kmem_cache_cpu has `page` instead of `slab`
 *   (bb192ed9aa71 "mm/slub: Convert most struct page to struct slab by spatch", v5.17).
 * - CONFIG_SLAB_FREELIST_HARDENED stores free pointers as ptr ^ s->random ^ swab(&ptr) since v5.7
 *   (1ad53d9fa3f6 "slub: improve bit diffusion for freelist ptr obfuscation"), ptr ^ s->random ^ &ptr
 *   before (2482ddec670f "mm: add SLUB free list pointer obfuscation", v4.14); told apart on the first link.
 * - kmem_cache.cpu_slab (per-CPU kmem_cache_cpu with its own freelist) is read when the kernel has it
 *   and not required: without it there are no per-CPU freelists to subtract, and walkCache says so
 *   (work on per-CPU array caches, "sheaves", aims to replace the per-CPU slab).
 * - PageSlab: the PG_slab flag up to 6.9, a page type since 6.10 (kernel/mm.ts pageKinds). Where the
 *   kernel tells neither, a page counts as a slab when its slab_cache is a known kmem_cache, which is
 *   the same test with one fewer witness.
 */
import { MemleakError } from '../errors.js';
import { hex, U64_MASK } from '../util/hex.js';
import type { Kallsyms } from './kallsyms.js';
import type { KernelProgram } from './program.js';
import type { KernelTypes } from './types.js';
import { Phases } from '../phases.js';
import { forEachStructPageBlock, isCompoundTail, maxPfn, pageKinds, pageToPfn, pfnToPage, pfnToVirt, slabStruct, structPageSize, type StructPageWalk } from './mm.js';


/** SLAB_RECLAIM_ACCOUNT (include/linux/slab.h): the cache's objects are reclaimable (dentries, inodes ...). */
export const SLAB_RECLAIM_ACCOUNT = 0x00020000;

export interface KmemCache {
  addr: bigint;
  name: string;
  /** s->size: distance between objects. */
  size: number;
  objectSize: number;
  /** s->offset: where a free object keeps the next-free pointer. */
  offset: number;
  order: number;
  objects: number;
  /** s->random (0 without CONFIG_SLAB_FREELIST_HARDENED). */
  random: bigint;
  hardened: boolean;
  /** s->cpu_slab (per-CPU kmem_cache_cpu), null on a kernel whose kmem_cache has none. */
  cpuSlab: bigint | null;
  /** s->flags (SLAB_RECLAIM_ACCOUNT ...), 0 when the layout has no such member. */
  flags: number;
}

export interface SlabPage {
  /** The head page's pfn. */
  pfn: number;
  /** struct page / struct slab address. */
  readonly page: bigint;
  /** page_address(): the first object. */
  readonly base: bigint;
  cache: bigint;
  objects: number;
  inuse: number;
  frozen: boolean;
  freelist: bigint;
}

export interface SlubContext {
  prog: KernelProgram;
  syms: Kallsyms;
  types: KernelTypes;
  /** --btf FILE, when the types did not come from the dump: named when struct contents make no sense. */
  btfFile?: string | null;
}

function sym(ctx: SlubContext, name: string): bigint {
  const a = ctx.syms.addressOf(name);
  if (a === null) throw new MemleakError('E_KALLSYMS', `kernel symbol ${name} not found in ${ctx.syms.source}`, { file: ctx.syms.source });
  return a;
}

const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);


export function readKmemCache(ctx: SlubContext, addr: bigint): KmemCache {
  const c = readKmemCacheFields(ctx, addr);
  checkKmemCache(c, ctx.prog, ctx.btfFile ?? null);
  return c;
}

/** Slabs of at most 2^10 pages (MAX_ORDER; SLUB caps its own order lower). */
const MAX_SLAB_ORDER = 10;

/**
 * The geometry every walk of a cache trusts, as SLUB sets it (calculate_sizes): an aligned object
 * size, the free pointer inside the object, and oo's objects = order_objects() = slab bytes / size
 * (before 4.18 less a few reserved bytes). Damaged memory here was a hang (65535 objects of a 64-byte
 * slab walked one by one), a DataView out of bounds, or a silent report of the wrong objects.
 */
function checkKmemCache(c: KmemCache, prog: KernelProgram, btfFile: string | null): void {
  const slab = prog.pageSize * 2 ** c.order;
  const ok = c.order <= MAX_SLAB_ORDER && c.size >= 8 && c.size % 8 === 0 && c.size <= slab && c.objectSize <= c.size &&
    c.offset + 8 <= c.size && c.objects >= 1 && c.objects <= Math.floor(slab / c.size) && c.objects >= Math.floor((slab - 256) / c.size);
  if (!ok) {
    throw new MemleakError(
      'E_FORMAT',
      `struct kmem_cache at ${hex(c.addr)} (${JSON.stringify(c.name.slice(0, 40))}) says size ${c.size}, object_size ${c.objectSize}, free pointer at ${c.offset}, ${c.objects} objects in an order-${c.order} slab: not a SLUB geometry (damaged memory${btfFile ? `, or ${btfFile} is another kernel's BTF` : ''})`,
      { file: prog.dump.path },
    );
  }
}

function readKmemCacheFields(ctx: SlubContext, addr: bigint): KmemCache {
  const { prog, types } = ctx;
  const size = types.sizeOf('kmem_cache');
  const b = dv(prog.mustRead(addr, size, 'struct kmem_cache'));
  const u32 = (m: string) => b.getUint32(types.offsetOf('kmem_cache', m), true);
  const namePtr = b.getBigUint64(types.offsetOf('kmem_cache', 'name'), true);
  const oo = b.getUint32(types.offsetOf('kmem_cache', 'oo'), true);
  const randomOff = types.tryOffsetOf('kmem_cache', 'random');
  const flagsOff = types.tryOffsetOf('kmem_cache', 'flags');
  const cpuSlabOff = types.tryOffsetOf('kmem_cache', 'cpu_slab');
  return {
    addr,
    name: prog.cString(namePtr, 64, 'kmem_cache name'),
    size: u32('size'),
    objectSize: u32('object_size'),
    offset: u32('offset'),
    // struct kmem_cache_order_objects: order in the high 16 bits (OO_SHIFT), objects in the low.
    order: oo >>> 16,
    objects: oo & 0xffff,
    random: randomOff === null ? 0n : b.getBigUint64(randomOff, true),
    hardened: randomOff !== null,
    // Not required: a kernel that drops the per-CPU slab (kmem_cache_cpu) has no per-CPU freelists.
    cpuSlab: cpuSlabOff === null ? null : b.getBigUint64(cpuSlabOff, true),
    flags: flagsOff === null ? 0 : b.getUint32(flagsOff, true),
  };
}

/** list_for_each_entry(s, &slab_caches, list). */
export function forEachSlabCache(ctx: SlubContext): KmemCache[] {
  const head = sym(ctx, 'slab_caches');
  const listOff = BigInt(ctx.types.offsetOf('kmem_cache', 'list'));
  const out: KmemCache[] = [];
  const seen = new Set<bigint>();
  let node = ctx.prog.u64(head, 'slab_caches');
  while (node !== head) {
    if (seen.has(node) || seen.size > 100000) throw new MemleakError('E_FORMAT', `slab_caches list loops at ${hex(node)}`, { file: ctx.prog.dump.path });
    seen.add(node);
    out.push(readKmemCache(ctx, node - listOff));
    node = ctx.prog.u64(node, 'kmem_cache.list');
  }
  return out;
}

export function findSlabCache(ctx: SlubContext, name: string): KmemCache {
  const all = forEachSlabCache(ctx);
  const c = all.find((k) => k.name === name);
  if (!c) {
    const near = all.map((k) => k.name).filter((n) => n.includes(name.replace(/-\d+$/, ''))).slice(0, 6);
    throw new MemleakError('E_USAGE', `no slab cache named ${name} in the dump${near.length ? ` (similar: ${near.join(', ')})` : ''}`);
  }
  return c;
}

function readBits(b: DataView, bitOffset: number, bitSize: number): number {
  const byte = bitOffset >> 3;
  const word = b.getUint32(byte, true) + (byte + 4 < b.byteLength ? b.getUint8(byte + 4) * 2 ** 32 : 0);
  return Math.floor(word / 2 ** (bitOffset & 7)) % 2 ** bitSize;
}

/**
 * A reader of one bitfield of a struct at view[off ..]: one aligned u32 read, shift and mask when the
 * field lies inside one 32-bit word (inuse/objects/frozen in SLUB's counters always do), else readBits.
 */
function bitReader(f: { bitOffset: number; bitSize: number }, structSize: number): (dv: DataView, off: number) => number {
  const shift = f.bitOffset & 31;
  if (shift + f.bitSize <= 32 && (f.bitOffset >> 5) * 4 + 4 <= structSize) {
    const at = (f.bitOffset >> 5) * 4;
    const mask = f.bitSize === 32 ? 0xffffffff : (1 << f.bitSize) - 1;
    return (dv, off) => ((dv.getUint32(off + at, true) >>> shift) & mask) >>> 0;
  }
  return (dv, off) => readBits(new DataView(dv.buffer, dv.byteOffset + off, structSize), f.bitOffset, f.bitSize);
}

/**
 * One slab head page as forEachSlab found it: numbers read in the walk, the page and base addresses
 * (bigints) computed only when asked for (a 2.4 GiB cache has 625,136 slabs; most callers want its pfn).
 */
class FoundSlab implements SlabPage {
  constructor(
    private readonly prog: KernelProgram,
    readonly pfn: number,
    readonly cache: bigint,
    readonly objects: number,
    readonly inuse: number,
    readonly frozen: boolean,
    readonly freelist: bigint,
  ) {}
  get page(): bigint {
    return pfnToPage(this.prog, this.pfn);
  }
  get base(): bigint {
    return pfnToVirt(this.prog, this.pfn);
  }
}

export type SlabWalkStats = StructPageWalk;

/**
 * for_each_slab: every head page whose slab_cache is one of `caches`, by reading struct page for every
 * pfn up to max_pfn.
 */
export function forEachSlab(ctx: SlubContext, caches: Set<bigint>, visit: (s: SlabPage) => void, progress?: (pfnsScanned: number) => void): SlabWalkStats {
  const { prog, types } = ctx;
  const S = slabStruct(types);
  const offCache = types.offsetOf(S, 'slab_cache');
  const offFreelist = types.offsetOf(S, 'freelist');
  const size = structPageSize(prog);
  const inuse = bitReader(types.bitfield(S, 'inuse'), size);
  const objects = bitReader(types.bitfield(S, 'objects'), size);
  const frozen = bitReader(types.bitfield(S, 'frozen'), size);
  const kinds = pageKinds(prog, types.btf);
  const offType = types.offsetOf('page', '_mapcount');
  // Head pages naming one of the caches, with and without the slab marker: a PG_slab bit (or page
  // type) that marks none of them while many name the cache is a damaged VMCOREINFO, not an empty cache.
  let flagged = 0;
  let unflagged = 0;
  // The cheapest test first, without a bigint: most struct pages (2 million for 8 GiB) name no wanted
  // cache in the low half of slab_cache.
  const cacheLows = new Set([...caches].map((c) => Number(c & 0xffffffffn)));
  const only = cacheLows.size === 1 ? [...cacheLows][0] : -1;
  const visitOne = (pfn: number, dv: DataView, off: number): void => {
    const cache = dv.getBigUint64(off + offCache, true);
    if (!caches.has(cache)) return;
    // Only a slab's head page describes it.
    if (isCompoundTail(dv, off)) return;
    const isSlab = kinds.slabBy === 'unknown' || kinds.isSlabAt(dv, off, offType);
    if (!isSlab && flagged > 0) return; // the marker is known to work: the plain path
    if (!isSlab) {
      unflagged++;
      return;
    }
    flagged++;
    visit(new FoundSlab(prog, pfn, cache, objects(dv, off), inuse(dv, off), frozen(dv, off) === 1, dv.getBigUint64(off + offFreelist, true)));
  };
  const walk = forEachStructPageBlock(prog, maxPfn(prog, ctx.syms), (pfn0, dv, n) => {
    for (let i = 0, off = offCache; i < n; i++, off += size) {
      const low = dv.getUint32(off, true);
      if (only >= 0 ? low !== only : !cacheLows.has(low)) continue;
      visitOne(pfn0 + i, dv, off - offCache);
    }
  }, progress);
  if (flagged === 0 && unflagged >= 8) {
    const marker = kinds.slabBy === 'PG_slab flag' ? `VMCOREINFO NUMBER(PG_slab)=${kinds.flagBit('PG_slab')}` : `the slab page type (${kinds.slabBy})`;
    throw new MemleakError(
      'E_FORMAT',
      `${marker} marks none of the ${unflagged} struct pages that name the cache as their slab_cache: the slab marker is wrong (corrupt VMCOREINFO) or the memory map is damaged`,
      { file: prog.dump.path },
    );
  }
  return walk;
}

function swab64(x: bigint): bigint {
  let r = 0n;
  for (let i = 0; i < 8; i++) {
    r = (r << 8n) | (x & 0xffn);
    x >>= 8n;
  }
  return r;
}

/** freelist_ptr(): the next free object stored at `ptrAddr`. */
export function decodeFreePointer(c: KmemCache, stored: bigint, ptrAddr: bigint, withSwab = true): bigint {
  if (!c.hardened) return stored;
  return stored ^ c.random ^ (withSwab ? swab64(ptrAddr) : ptrAddr);
}

export interface FreeChain {
  objects: bigint[];
  /** Why the walk stopped early, if it did. */
  broken: string | null;
}

/**
 * Follows a freelist inside one slab: every element must be an object start of that slab; a repeat
 * (cycle) or a stray pointer stops the walk and is reported.
 */
export function walkFreelist(c: KmemCache, slabBase: bigint, nObjects: number, bytes: Uint8Array | null, read: (a: bigint) => bigint | null, head: bigint): FreeChain {
  const objects: bigint[] = [];
  const seen = new Set<bigint>();
  const end = slabBase + BigInt(nObjects * c.size);
  const stride = BigInt(c.size);
  let cur = head;
  let swab = true;
  while (cur !== 0n) {
    if (cur < slabBase || cur >= end || (cur - slabBase) % stride !== 0n) {
      return { objects, broken: `free pointer ${hex(cur)} is not an object of the slab at ${hex(slabBase)}` };
    }
    if (seen.has(cur)) return { objects, broken: `freelist of the slab at ${hex(slabBase)} loops at ${hex(cur)}` };
    seen.add(cur);
    objects.push(cur);
    const ptrAddr = cur + BigInt(c.offset);
    let stored: bigint | null;
    if (bytes) stored = dv(bytes).getBigUint64(Number(ptrAddr - slabBase), true);
    else stored = read(ptrAddr);
    if (stored === null) return { objects, broken: `free object ${hex(cur)} is not in the dump` };
    let next = decodeFreePointer(c, stored, ptrAddr, swab);
    if (objects.length === 1 && c.hardened && next !== 0n && (next < slabBase || next >= end)) {
      // Kernels before v5.7 obfuscate without swab(); decide on the first link.
      const alt = decodeFreePointer(c, stored, ptrAddr, false);
      if (alt === 0n || (alt >= slabBase && alt < end)) {
        swab = false;
        next = alt;
      }
    }
    cur = next;
  }
  return { objects, broken: null };
}

export interface CpuSlab {
  cpu: number;
  /** Address of this CPU's kmem_cache_cpu. */
  addr: bigint;
  freelist: bigint;
  slab: bigint;
  partial: bigint;
}

const MAX_NR_CPUS = 8192;

/** Per-CPU kmem_cache_cpu of a cache: this_cpu_ptr(s->cpu_slab) for every possible CPU. */
export function cpuSlabs(ctx: SlubContext, c: KmemCache): CpuSlab[] {
  if (c.cpuSlab === null) return [];
  const cpuSlab = c.cpuSlab;
  const { prog, types } = ctx;
  const nr = prog.u32(sym(ctx, 'nr_cpu_ids'), 'nr_cpu_ids');
  // A count read from the dump sizes the next read: x86_64's NR_CPUS is at most 8192 (CONFIG_MAXSMP),
  // and a booted kernel has a CPU.
  if (nr < 1 || nr > MAX_NR_CPUS) {
    throw new MemleakError('E_FORMAT', `nr_cpu_ids in the dump is ${nr}: not 1..${MAX_NR_CPUS} as on any x86_64 kernel (damaged memory or wrong symbols)`, { file: prog.dump.path });
  }
  const offsets = prog.mustRead(sym(ctx, '__per_cpu_offset'), nr * 8, '__per_cpu_offset');
  const ov = dv(offsets);
  const offFree = types.offsetOf('kmem_cache_cpu', 'freelist');
  // kmem_cache_cpu.page became .slab in v5.17 with struct slab.
  const offSlab = types.tryOffsetOf('kmem_cache_cpu', 'slab') ?? types.offsetOf('kmem_cache_cpu', 'page');
  const offPartial = types.tryOffsetOf('kmem_cache_cpu', 'partial');
  const out: CpuSlab[] = [];
  for (let cpu = 0; cpu < nr; cpu++) {
    const addr = (cpuSlab + ov.getBigUint64(cpu * 8, true)) & U64_MASK;
    const b = prog.read(addr, Math.max(offFree, offSlab, offPartial ?? 0) + 8);
    if (!b) continue;
    const v = dv(b);
    out.push({ cpu, addr, freelist: v.getBigUint64(offFree, true), slab: v.getBigUint64(offSlab, true), partial: offPartial === null ? 0n : v.getBigUint64(offPartial, true) });
  }
  return out;
}

export interface CacheSummary {
  cache: KmemCache;
  slabs: number;
  total: number;
  allocated: number;
}

/** kmem -s for every cache: one pass over struct pages; cpu slabs' private freelists subtracted. */
export function summarizeCaches(ctx: SlubContext): CacheSummary[] {
  const caches = forEachSlabCache(ctx);
  const byAddr = new Map<bigint, CacheSummary>();
  for (const c of caches) byAddr.set(c.addr, { cache: c, slabs: 0, total: 0, allocated: 0 });
  forEachSlab(ctx, new Set(byAddr.keys()), (s) => {
    const row = byAddr.get(s.cache)!;
    row.slabs++;
    row.total += s.objects;
    row.allocated += s.inuse;
  });
  for (const row of byAddr.values()) {
    for (const { chain } of cpuFreelists(ctx, row.cache, () => row.cache.objects)) row.allocated -= chain.objects.length;
  }
  return [...byAddr.values()];
}

/**
 * Each CPU's private freelist (kmem_cache_cpu.freelist, objects of its cpu slab). On a live kernel it
 * moves with every allocation: a broken walk reads kmem_cache_cpu and the slab again, up to 3 times.
 */
function cpuFreelists(ctx: SlubContext, cache: KmemCache, objectsOf: (slabBase: bigint) => number): { cpu: CpuSlab; chain: FreeChain; raced: boolean }[] {
  const slabBytes = ctx.prog.pageSize << cache.order;
  const out: { cpu: CpuSlab; chain: FreeChain; raced: boolean }[] = [];
  const cpus = cpuSlabs(ctx, cache);
  for (let k = 0; k < cpus.length; k++) {
    let cpu = cpus[k];
    const walkCpu = () => {
      if (cpu.freelist === 0n || cpu.slab === 0n) return null;
      const base = slabBaseOfPage(ctx, cpu.slab);
      return walkFreelist(cache, base, objectsOf(base), null, (a) => readU64(ctx, a), cpu.freelist);
    };
    let chain = walkCpu();
    let raced = false;
    for (let attempt = 0; chain?.broken && ctx.prog.dump.live && attempt < 3; attempt++) {
      ctx.prog.forget(cpu.addr, 32);
      if (cpu.slab) ctx.prog.forget(slabBaseOfPage(ctx, cpu.slab), slabBytes);
      cpu = cpuSlabs(ctx, cache)[k] ?? cpu;
      chain = walkCpu();
      if (chain && !chain.broken) raced = true;
    }
    if (chain) out.push({ cpu, chain, raced });
  }
  return out;
}

function readU64(ctx: SlubContext, a: bigint): bigint | null {
  const b = ctx.prog.read(a, 8);
  return b ? new DataView(b.buffer, b.byteOffset).getBigUint64(0, true) : null;
}

/** page_address(slab): the direct-map address of a struct page's memory. */
export function slabBaseOfPage(ctx: SlubContext, page: bigint): bigint {
  return pfnToVirt(ctx.prog, pageToPfn(ctx.prog, page));
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
export function walkCache(ctx: SlubContext, cache: KmemCache, phases: Phases = new Phases()): CacheWalk {
  const pfns: number[] = [];
  const objects: number[] = [];
  const heads: { slab: number; page: bigint; freelist: bigint }[] = [];
  const walkPhase = phases.start('memmap walk', 'pages', maxPfn(ctx.prog, ctx.syms));
  const stats = forEachSlab(ctx, new Set([cache.addr]), (s) => {
    if (s.freelist !== 0n) heads.push({ slab: pfns.length, page: s.page, freelist: s.freelist });
    pfns.push(s.pfn);
    objects.push(s.objects);
  }, (done) => {
    walkPhase.items = done;
    walkPhase.tick();
  });
  walkPhase.bytes = stats.pfnsScanned * structPageSize(ctx.prog);
  walkPhase.end();
  const warnings: string[] = [];
  if (stats.unreadableStructPages) {
    warnings.push(`${stats.unreadableStructPages} struct pages could not be read (vmemmap holes or pages excluded from the dump): slabs there are not seen`);
  }
  if (cache.cpuSlab === null) {
    warnings.push(`struct kmem_cache of this kernel has no cpu_slab: no per-CPU freelists were read, so objects free on them count as allocated (a kernel newer than this tool knows: report it)`);
  }
  const freePhase = phases.start('freelists', 'slabs');
  const ps = ctx.prog.pageSize;
  const base0 = ctx.prog.bases.pageOffsetBase;
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
  const S = slabStruct(ctx.types);
  const offFreelist = BigInt(ctx.types.offsetOf(S, 'freelist'));
  let raced = 0;
  for (const h of heads) {
    const base = slabBase(h.slab);
    const n = objects[h.slab];
    let chain = walkFreelist(cache, base, n, ctx.prog.read(base, slabBytes), (a) => readU64(ctx, a), h.freelist);
    // On a live kernel the slab may change between reading its struct slab and its objects: read both
    // again (a few times) before calling the freelist broken.
    for (let attempt = 0; chain.broken && ctx.prog.dump.live && attempt < 3; attempt++) {
      ctx.prog.forget(h.page, 64);
      ctx.prog.forget(base, slabBytes);
      const head = readU64(ctx, h.page + offFreelist) ?? 0n;
      chain = walkFreelist(cache, base, n, ctx.prog.read(base, slabBytes), (a) => readU64(ctx, a), head);
      if (!chain.broken) raced++;
    }
    if (chain.broken) note(ctx.prog.dump.live ? `${chain.broken} (live kernel: still changing after 3 re-reads; its free objects count as allocated)` : chain.broken);
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
  for (const { cpu, chain, raced: moved } of cpuFreelists(ctx, cache, (b) => objects[indexOfBase(b)] ?? cache.objects)) {
    if (moved) raced++;
    if (chain.broken) note(`cpu ${cpu.cpu}: ${chain.broken}${ctx.prog.dump.live ? ' (live kernel: still changing after 3 re-reads)' : ''}`);
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
