/** A walked cache of a dump (kernel/slub.ts walkCache) as the scan engine's SlabSet. */
import { MemleakError } from '../errors.js';
import { hex } from '../util/hex.js';
import { addressSpaceOf, type Kernel } from '../kernel/kernel.js';
import type { CacheWalk } from '../kernel/slub.js';
import type { SlabSet } from '../scan/slab-set.js';

export function slabSetFromWalk(v: Kernel, walk: CacheWalk): SlabSet {
  const c = walk.cache;
  if (walk.pfns.length === 0) throw new MemleakError('E_NO_DATA', `cache ${c.name} has no slabs in the dump`, { file: v.dump.path });
  const slabs = new BigUint64Array(walk.pfns.length);
  for (let i = 0; i < slabs.length; i++) slabs[i] = walk.slabBase(i);
  return {
    // Free object indexes per slab, from the walk: the scanner's hot path never builds a bigint.
    freeIndexes: (i) => walk.freeBySlab.get(i) ?? null,
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
    allocated: (a) => !walk.isFree(a),
    addressSpace: addressSpaceOf(v),
    freeSource: `SLUB freelists (${walk.freeObjects} free objects, ${walk.cpuFreelistObjects} on per-CPU freelists)`,
  };
}
