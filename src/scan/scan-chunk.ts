/**
 * The per-chunk scan a worker runs: every allocated object -> tokens -> template -> count per template.
 * Memory grows with the number of distinct templates (capped), never with the number of objects.
 */
import { templateInPlace, templateKey, type HeavyTable } from './heavy.js';
import { tokenizeObject, type TokenSpace } from './tokens.js';

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
}

function lessAddr(aLo: number, aHi: number, bLo: number, bHi: number): boolean {
  return aHi < bHi || (aHi === bHi && aLo < bLo);
}

export function scanChunk(job: ChunkJob): ChunkResult {
  const { stride, objsPerSlab, slabAddrs, state, heavy, space } = job;
  const nU32 = stride >>> 2;
  const nSlabs = slabAddrs.length >>> 1;
  const words = new Uint32Array(job.buffer, job.byteOffset, (nSlabs * objsPerSlab * stride) >>> 2);
  const tok = new Uint32Array(nU32);
  const map = new Map<number, TemplateCount>();
  let objects = 0;
  let skipped = 0;
  let overflow = 0;
  let obj = 0;
  for (let s = 0; s < nSlabs; s++) {
    const baseLo = slabAddrs[2 * s];
    const baseHi = slabAddrs[2 * s + 1];
    for (let j = 0; j < objsPerSlab; j++, obj++) {
      if (state !== null && state[obj] === 0) {
        skipped++;
        continue;
      }
      const off = j * stride;
      let lo = (baseLo + off) >>> 0;
      const hi = lo < baseLo ? (baseHi + 1) >>> 0 : baseHi;
      tokenizeObject(words, obj * nU32, nU32, lo, hi, stride, space, tok);
      templateInPlace(tok, heavy);
      const key = templateKey(tok, nU32);
      const e = map.get(key);
      objects++;
      if (e !== undefined) {
        e.count++;
        if (lessAddr(lo, hi, e.repLo, e.repHi)) {
          e.repLo = lo;
          e.repHi = hi;
        }
      } else if (map.size < job.maxTemplates) {
        map.set(key, { key, count: 1, tokens: Array.from(tok), repLo: lo, repHi: hi });
      } else {
        overflow++;
      }
    }
  }
  return { templates: [...map.values()], objects, skipped, overflow };
}

/** Merges chunk results (order-independent: counts add, representative = lowest address). */
export function mergeChunkResults(into: Map<number, TemplateCount>, r: ChunkResult, maxTemplates: number): number {
  let overflow = r.overflow;
  for (const t of r.templates) {
    const e = into.get(t.key);
    if (e) {
      e.count += t.count;
      if (lessAddr(t.repLo, t.repHi, e.repLo, e.repHi)) {
        e.repLo = t.repLo;
        e.repHi = t.repHi;
      }
    } else if (into.size < maxTemplates) {
      into.set(t.key, { ...t });
    } else {
      overflow += t.count;
    }
  }
  return overflow;
}
