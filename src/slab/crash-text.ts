/**
 * Builds a SlabSet from crash text (rd -64 / rd -S pages, kmem -S, kmem -s), /proc/slabinfo and raw page
 * dumps: the "crash dump extract" path, where only some pages of the cache are at hand.
 */
import { MemleakError } from '../errors.js';
import { SparseMemory } from '../util/memory.js';
import type { Kallsyms } from '../kernel/kallsyms.js';
import { estimateAddressSpace } from '../kernel/address-space.js';
import type { KmemReport } from '../input/crash-kmem.js';
import type { SlabinfoRow } from '../input/slabinfo.js';
import type { CacheGeometry, SlabSet } from '../scan/slab-set.js';
import type { GeometryHints } from '../request.js';
import { PAGE_SIZE } from '../util/page.js';

/**
 * Geometry precedence: explicit flags, then kmem (crash saw the kmem_cache), then slabinfo. An object
 * size that leaves bytes over in the slab is accepted only when a source says how many objects a slab
 * holds (SLUB leaves the remainder unused, e.g. 21 x 192 in 4 KiB).
 */
export function resolveGeometry(h: GeometryHints, kmem: KmemReport | null, slabinfo: Map<string, SlabinfoRow> | null): CacheGeometry {
  let name = h.cache ?? null;
  let stride: number | null = null;
  let slabSize: number | null = null;
  let perSlab: number | null = null;
  let allocated: number | null = null;
  const sources: string[] = [];
  if (kmem) {
    const row = name ? kmem.caches.find((c) => c.name === name) : kmem.caches.length === 1 ? kmem.caches[0] : null;
    if (row) {
      name = row.name;
      stride = kmem.stride ?? row.objectSize;
      slabSize = row.slabSize;
      perSlab = row.slabs > 0 && row.total % row.slabs === 0 ? row.total / row.slabs : null;
      allocated = row.allocated;
      sources.push('crash kmem');
    }
  }
  if (slabinfo && name) {
    const row = slabinfo.get(name);
    if (row) {
      stride ??= row.objectSize;
      slabSize ??= row.pagesPerSlab * PAGE_SIZE;
      perSlab ??= row.objsPerSlab;
      allocated ??= row.activeObjs;
      sources.push('slabinfo');
    }
  }
  if (h.objectSize !== undefined) {
    stride = h.objectSize;
    sources.push('--object-size');
  }
  if (h.slabSize !== undefined) {
    slabSize = h.slabSize;
    sources.push('--slab-size');
  }
  if (h.objectsPerSlab !== undefined) perSlab = h.objectsPerSlab;
  if (stride === null) {
    throw new MemleakError('E_GEOMETRY', `object size of ${name ?? 'the cache'} unknown: give --kmem (crash kmem -S), --slabinfo, or --object-size`);
  }
  if (!Number.isInteger(stride) || stride <= 0 || stride % 8 !== 0) {
    throw new MemleakError('E_GEOMETRY', `object size ${stride} is not a positive multiple of 8`);
  }
  slabSize ??= PAGE_SIZE;
  if (slabSize % PAGE_SIZE !== 0 || (slabSize & (slabSize - 1)) !== 0) {
    throw new MemleakError('E_GEOMETRY', `slab size ${slabSize} is not a power-of-two number of 4 KiB pages`);
  }
  if (stride > slabSize) throw new MemleakError('E_GEOMETRY', `object size ${stride} is larger than the slab size ${slabSize}`);
  if (perSlab === null) {
    if (slabSize % stride !== 0) {
      throw new MemleakError(
        'E_GEOMETRY',
        `object size ${stride} does not divide the slab size ${slabSize} (${slabSize % stride} bytes left over): check --object-size, or give --objects-per-slab ${Math.floor(slabSize / stride)} if the slab really has unused bytes`,
      );
    }
    perSlab = slabSize / stride;
  }
  if (perSlab * stride > slabSize) {
    throw new MemleakError('E_GEOMETRY', `${perSlab} objects of ${stride} bytes do not fit in a ${slabSize}-byte slab`);
  }
  return { name: name ?? 'unknown', stride, objsPerSlab: perSlab, slabSize, allocated, source: sources.join(' + ') || 'defaults' };
}

/** Replaces rd -S symbol words by their addresses where kallsyms knows them; `[cache]` words stay opaque. */
export function resolveSymbolicWords(mem: SparseMemory, ks: Kallsyms | null): { resolved: number; unresolved: number } {
  let resolved = 0;
  let unresolved = 0;
  for (const [addr, text] of mem.symbolic) {
    if (text.startsWith('[')) continue;
    const m = /^([^+]+)(?:\+(\d+))?$/.exec(text);
    const base = ks && m ? ks.addressOf(m[1]) : null;
    if (base === null) {
      unresolved++;
      continue;
    }
    mem.writeWord(addr, base + BigInt(m![2] ?? 0));
    mem.symbolic.delete(addr);
    resolved++;
  }
  return { resolved, unresolved };
}

/** Slabs present in the dump: every slab-aligned region with at least one known word. */
export function slabSetFromMemory(mem: SparseMemory, geometry: CacheGeometry, kmem: KmemReport | null): SlabSet {
  const mask = BigInt(geometry.slabSize - 1);
  const slabs = new Set<bigint>();
  for (const p of mem.pageAddresses()) slabs.add(p & ~mask);
  const list = [...slabs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (list.length === 0) throw new MemleakError('E_NO_DATA', 'the dump holds no memory');
  const objects = kmem?.objects ?? null;
  return {
    cache: geometry,
    slabs: list,
    memory: mem,
    allocated: (a) => (objects ? objects.get(a) ?? null : null),
    addressSpace: estimateAddressSpace(list),
    freeSource: objects && objects.size ? 'crash kmem -S object markers (full slabs assumed allocated)' : 'none (all objects counted)',
  };
}

