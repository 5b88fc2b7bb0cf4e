/** What a scan worker gets (a chunk of slabs in shared memory) and what it gives back (template counts). */
import type { HeavyTable } from './heavy.js';
import type { TokenSpace } from './tokens.js';

/** A run of slabs in one buffer: slab i's objects start at byte i * objsPerSlab * stride. */
export interface ChunkJob {
  buffer: SharedArrayBuffer | ArrayBuffer;
  byteOffset: number;
  stride: number;
  objsPerSlab: number;
  /** Slab (first object) addresses as u32 pairs: [lo0, hi0, lo1, hi1, ...]. */
  slabAddrs: Uint32Array;
  /** Per object: 1 = count it (allocated), 0 = skip (free, or not in the dump). Null: all allocated. */
  state: Uint8Array | null;
  heavy: HeavyTable;
  space: TokenSpace;
  maxTemplates: number;
}

export interface TemplateCount {
  key: number;
  count: number;
  tokens: number[];
  /** Lowest-address object of this template: [lo, hi]. */
  repLo: number;
  repHi: number;
}

export interface ChunkResult {
  templates: TemplateCount[];
  objects: number;
  skipped: number;
  /** Objects whose template did not fit under maxTemplates (reported, never dropped silently). */
  overflow: number;
  /**
   * Checksum of every word of every counted object, in order: two 32-bit polynomial lanes folded into
   * the hot loop (it loads each word anyway). An xxhash-wasm pass over each chunk cost 0.6 s per GiB in
   * the workers, a quarter of the scan (npm run bench); this costs two multiply-adds per word.
   */
  digest: [number, number];
}

/**
 * Drops slab padding in place: `n` slabs read `slabBytes` apart (PAGE_SIZE << order) end up `usable`
 * (objsPerSlab * stride) apart, the layout a ChunkJob describes. Slab 0 is already where it belongs.
 */
export function packSlabs(bytes: Uint8Array, n: number, slabBytes: number, usable: number): void {
  if (slabBytes === usable) return;
  for (let i = 1; i < n; i++) bytes.copyWithin(i * usable, i * slabBytes, i * slabBytes + usable);
}
