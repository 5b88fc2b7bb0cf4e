/**
 * SLUB helpers (mm/slub.c), named after the kernel's: for_each_slab_cache, for_each_slab (a walk of
 * every struct page in vmemmap), slab_free_objects (freelists). Offsets come from KernelTypes (BTF).
 *
 * Version branches:
 * - struct slab split from struct page in v5.17 ("mm: Split slab into its own type"); before it the
 *   same members (slab_cache, freelist, counters/inuse/objects/frozen) live in struct page, and
 *   kmem_cache_cpu has `page` instead of `slab`.
 * - CONFIG_SLAB_FREELIST_HARDENED stores free pointers as ptr ^ s->random ^ swab(&ptr) since v5.7
 *   ("slub: improve bit diffusion for freelist ptr obfuscation"), ptr ^ s->random ^ &ptr before (v4.14).
 * - PageSlab: the PG_slab flag up to 6.9, a page type since 6.10 (kernel/mm.ts pageKinds). Where the
 *   kernel tells neither, a page counts as a slab when its slab_cache is a known kmem_cache, which is
 *   the same test with one fewer witness.
 */
import { MemleakError } from '../errors.js';
import { hex, U64_MASK } from '../util/hex.js';
import type { Kallsyms } from './kallsyms.js';
import type { KernelProgram } from './program.js';
import type { KernelTypes } from './types.js';
import { forEachStructPage, maxPfn, pageKinds, pfnToPage, pfnToVirt, structPageSize, type StructPageWalk } from './mm.js';


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
  cpuSlab: bigint;
  /** s->flags (SLAB_RECLAIM_ACCOUNT ...), 0 when the layout has no such member. */
  flags: number;
}

export interface SlabPage {
  /** struct page / struct slab address. */
  page: bigint;
  /** page_address(): the first object. */
  base: bigint;
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
}

function sym(ctx: SlubContext, name: string): bigint {
  const a = ctx.syms.addressOf(name);
  if (a === null) throw new MemleakError('E_KALLSYMS', `kernel symbol ${name} not found in ${ctx.syms.source}`, { file: ctx.syms.source });
  return a;
}

const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

/** The layout struct for slab fields: struct slab since v5.17, struct page before. */
function slabStruct(types: KernelTypes): 'slab' | 'page' {
  return types.hasStruct('slab') && types.tryOffsetOf('slab', 'slab_cache') !== null ? 'slab' : 'page';
}

export function readKmemCache(ctx: SlubContext, addr: bigint): KmemCache {
  const { prog, types } = ctx;
  const size = types.sizeOf('kmem_cache');
  const b = dv(prog.mustRead(addr, size, 'struct kmem_cache'));
  const u32 = (m: string) => b.getUint32(types.offsetOf('kmem_cache', m), true);
  const namePtr = b.getBigUint64(types.offsetOf('kmem_cache', 'name'), true);
  const oo = b.getUint32(types.offsetOf('kmem_cache', 'oo'), true);
  const randomOff = types.tryOffsetOf('kmem_cache', 'random');
  const flagsOff = types.tryOffsetOf('kmem_cache', 'flags');
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
    cpuSlab: b.getBigUint64(types.offsetOf('kmem_cache', 'cpu_slab'), true),
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
  const inuse = types.bitfield(S, 'inuse');
  const objects = types.bitfield(S, 'objects');
  const frozen = types.bitfield(S, 'frozen');
  const kinds = pageKinds(prog, types.btf);
  const offType = types.offsetOf('page', '_mapcount');
  const size = structPageSize(prog);
  // Head pages naming one of the caches, with and without the slab marker: a PG_slab bit (or page
  // type) that marks none of them while many name the cache is a damaged VMCOREINFO, not an empty cache.
  let flagged = 0;
  let unflagged = 0;
  // The cheapest test first, without a bigint: most struct pages (2 million for 8 GiB) name no wanted
  // cache in the low half of slab_cache.
  const cacheLows = new Set([...caches].map((c) => Number(c & 0xffffffffn)));
  const walk = forEachStructPage(prog, maxPfn(prog, ctx.syms), (pfn, dv, off) => {
    if (!cacheLows.has(dv.getUint32(off + offCache, true))) return;
    const cache = dv.getBigUint64(off + offCache, true);
    if (!caches.has(cache)) return;
    // Tail pages of a compound slab carry compound_head | 1 at offset 8; only head pages describe a slab.
    if ((dv.getUint32(off + 8, true) & 1) === 1) return;
    const isSlab = kinds.slabBy === 'unknown' || kinds.isSlab(dv.getBigUint64(off, true), dv.getUint32(off + offType, true));
    if (!isSlab && flagged > 0) return; // the marker is known to work: the plain path
    if (!isSlab) {
      unflagged++;
      return;
    }
    flagged++;
    const b = new DataView(dv.buffer, dv.byteOffset + off, size);
    visit({
      page: pfnToPage(prog, pfn),
      base: pfnToVirt(prog, pfn),
      cache,
      objects: readBits(b, objects.bitOffset, objects.bitSize),
      inuse: readBits(b, inuse.bitOffset, inuse.bitSize),
      frozen: readBits(b, frozen.bitOffset, frozen.bitSize) === 1,
      freelist: b.getBigUint64(offFreelist, true),
    });
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

/** Per-CPU kmem_cache_cpu of a cache: this_cpu_ptr(s->cpu_slab) for every possible CPU. */
export function cpuSlabs(ctx: SlubContext, c: KmemCache): CpuSlab[] {
  const { prog, types } = ctx;
  const nr = prog.u32(sym(ctx, 'nr_cpu_ids'), 'nr_cpu_ids');
  const offsets = prog.mustRead(sym(ctx, '__per_cpu_offset'), nr * 8, '__per_cpu_offset');
  const ov = dv(offsets);
  const offFree = types.offsetOf('kmem_cache_cpu', 'freelist');
  // kmem_cache_cpu.page became .slab in v5.17 with struct slab.
  const offSlab = types.tryOffsetOf('kmem_cache_cpu', 'slab') ?? types.offsetOf('kmem_cache_cpu', 'page');
  const offPartial = types.tryOffsetOf('kmem_cache_cpu', 'partial');
  const out: CpuSlab[] = [];
  for (let cpu = 0; cpu < nr; cpu++) {
    const addr = (c.cpuSlab + ov.getBigUint64(cpu * 8, true)) & U64_MASK;
    const b = prog.read(addr, Math.max(offFree, offSlab, offPartial ?? 0) + 8);
    if (!b) continue;
    const v = dv(b);
    out.push({ cpu, addr, freelist: v.getBigUint64(offFree, true), slab: v.getBigUint64(offSlab, true), partial: offPartial === null ? 0n : v.getBigUint64(offPartial, true) });
  }
  return out;
}
