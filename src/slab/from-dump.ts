/** A walked cache of a dump (kernel/slub.ts walkCache) as the scan engine's SlabSet. */
import { MemleakError } from '../errors.js';
import { hex } from '../util/hex.js';
import { addressSpaceOf, type Kernel } from '../kernel/kernel.js';
import type { CacheWalk } from '../kernel/slub.js';
import type { SlabSet } from '../scan/slab-set.js';

export function slabSetFromWalk(v: Kernel, walk: CacheWalk): SlabSet {
  const c = walk.cache;
  if (walk.pfns.length === 0) throw new MemleakError('E_NO_DATA', `cache ${c.name} has no slabs in the dump`, { file: v.dump.path });
  const slabs = slabBases(v, walk);
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

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * page_address() of every slab (walk.slabBase for all of them) without a bigint per slab: the direct
 * map's base plus pfn * PAGE_SIZE in two 32-bit halves (625,136 bigint sums cost ~80 ms).
 */
function slabBases(v: Kernel, walk: CacheWalk): BigUint64Array {
  const n = walk.pfns.length;
  const slabs = new BigUint64Array(n);
  if (!LITTLE_ENDIAN) {
    for (let i = 0; i < n; i++) slabs[i] = walk.slabBase(i);
    return slabs;
  }
  const halves = new Uint32Array(slabs.buffer);
  const base = v.prog.bases.pageOffsetBase;
  const bLo = Number(base & 0xffffffffn);
  const bHi = Number(base >> 32n);
  const ps = v.prog.pageSize;
  for (let i = 0; i < n; i++) {
    const a = walk.pfns[i] * ps;
    const lo = bLo + (a % 2 ** 32);
    halves[2 * i] = lo >>> 0;
    halves[2 * i + 1] = (bHi + Math.floor(a / 2 ** 32) + (lo >= 2 ** 32 ? 1 : 0)) >>> 0;
  }
  return slabs;
}
