/** A walked cache of a dump (kernel/vmcore.ts walkCache) as the scan engine's SlabSet. */
import { MemleakError } from '../errors.js';
import { hex } from '../util/hex.js';
import { addressSpaceOf, type CacheWalk, type OpenVmcore } from '../kernel/vmcore.js';
import type { SlabSet } from '../scan/slab-set.js';

export function slabSetFromWalk(v: OpenVmcore, walk: CacheWalk): SlabSet {
  const c = walk.cache;
  const slabs = walk.slabs.map((s) => s.base).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (slabs.length === 0) throw new MemleakError('E_NO_DATA', `cache ${c.name} has no slabs in the dump`, { file: v.dump.path });
  const free = walk.free;
  // Free object indexes per slab, computed once: the scanner's hot path then never builds a bigint.
  const index = new Map<bigint, number>();
  slabs.forEach((b, i) => index.set(b, i));
  const perSlab: number[][] = slabs.map(() => []);
  const slabBytes = BigInt(v.prog.pageSize << c.order);
  for (const o of free) {
    const base = o - ((o - v.prog.bases!.pageOffsetBase) % slabBytes);
    const i = index.get(base);
    if (i !== undefined) perSlab[i].push(Number(o - base) / c.size);
  }
  return {
    freeIndexes: (i) => perSlab[i],
    cache: {
      name: c.name,
      stride: c.size,
      objsPerSlab: c.objects,
      slabSize: v.prog.pageSize << c.order,
      allocated: walk.allocated,
      source: `kmem_cache at ${hex(c.addr)} (${v.typesSource})`,
    },
    slabs,
    memory: v.prog,
    allocated: (a) => !free.has(a),
    addressSpace: addressSpaceOf(v),
    freeSource: `SLUB freelists (${walk.free.size} free objects, ${walk.cpuFreelistObjects} on per-CPU freelists)`,
  };
}
