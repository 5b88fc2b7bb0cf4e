/** What the scanner needs to know about one cache: its geometry, its slabs, and where to read them. */
import type { MemoryReader } from '../util/memory.js';
import type { AddressSpace } from '../kernel/address-space.js';

export interface CacheGeometry {
  name: string;
  /** Distance between objects (SLUB s->size). */
  stride: number;
  objsPerSlab: number;
  /** Bytes per slab (PAGE_SIZE << order). */
  slabSize: number;
  /** Allocated objects of the whole cache as the source says (kmem -s, slabinfo, freelists), if known. */
  allocated: number | null;
  /** Where the geometry came from, for the report. */
  source: string;
}

/** Allocation state of an object: true allocated, false free, null unknown (assumed allocated). */
export type AllocationOracle = (objAddr: bigint) => boolean | null;

export interface SlabSet {
  cache: CacheGeometry;
  /** Slab base addresses (first object), ascending: 8 bytes per slab in a BigUint64Array for dumps. */
  slabs: readonly bigint[] | BigUint64Array;
  memory: MemoryReader;
  allocated: AllocationOracle;
  /**
   * Fast path for the scanner: the free object indexes of one slab (by its position in `slabs`), or
   * null when the source knows no free objects at all (every object counted). When absent, the
   * scanner asks `allocated` once per object.
   */
  freeIndexes?: (slabIndex: number) => readonly number[] | null;
  addressSpace: AddressSpace;
  /** How the allocation state is known: 'kmem -S markers', 'freelists', 'none'. */
  freeSource: string;
}
