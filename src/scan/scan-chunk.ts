/**
 * The per-chunk scan a worker runs: every allocated object -> tokens -> template -> count per template.
 * Memory grows with the number of distinct templates (capped), never with the number of objects.
 */
import { fastPathTables, finishKey, templateInPlace, templateKey, type HeavyTable } from './heavy.js';
import { CLASS_HI, TOK_HEAP, TOK_KPTR, TOK_LIST_NEXT, TOK_LIST_PREV, TOK_SELF, TOK_VAR, TOK_VMALLOC, TOK_VMEMMAP, tokenizeObject, type TokenSpace } from './tokens.js';
import { OPAQUE_SLAB_POINTER_HI } from '../util/opaque-words.js';
import { MemleakError } from '../errors.js';
import { runKernel, scanKernel, type ChunkFill, type ScanKernel } from './scan-wasm.js';
import { packSlabs, type ChunkJob, type ChunkResult, type TemplateCount } from './chunk-job.js';

export type { ChunkJob, ChunkResult, TemplateCount } from './chunk-job.js';

function lessAddr(aLo: number, aHi: number, bLo: number, bHi: number): boolean {
  return aHi < bHi || (aHi === bHi && aLo < bLo);
}

// The JS hot loop works on int32 (Int32Array views, `| 0` constants): V8 keeps int32 in registers, while
// uint32 values above 2^31 become heap doubles. Hashes are bit-identical (Math.imul and ^ are ToInt32).
const I_CLASS_HI = CLASS_HI | 0;
const I_LIST_NEXT = TOK_LIST_NEXT | 0;
const I_LIST_PREV = TOK_LIST_PREV | 0;
const I_SELF = TOK_SELF | 0;
const I_HEAP = TOK_HEAP | 0;
const I_VMALLOC = TOK_VMALLOC | 0;
const I_VMEMMAP = TOK_VMEMMAP | 0;
const I_KPTR = TOK_KPTR | 0;
const I_VAR = TOK_VAR | 0;
const I_POISON_HI = 0xdead0000 | 0;
const I_OPAQUE_HI = OPAQUE_SLAB_POINTER_HI | 0;
const I_KERNEL_HALF = 0xffff8000 | 0; // -32768: high halves of kernel addresses are in [-32768, -1]

/** varClassOf() for an int32 token. */
function varTok(t: number): number {
  if (t === I_CLASS_HI) return I_VAR | 6;
  const c = t & (0xffff0000 | 0);
  if (c === I_HEAP) return I_VAR | 1;
  if (c === I_SELF) return I_VAR | 2;
  if (c === I_VMALLOC) return I_VAR | 3;
  if (c === I_VMEMMAP) return I_VAR | 4;
  if (c === I_KPTR) return I_VAR | 5;
  if (c === (0x11570000 | 0)) return I_VAR | 7;
  return I_VAR;
}

/**
 * The hot loop, on the WebAssembly SIMD kernel (scan-wasm.ts, wasm/scan-kernel.ts: four objects per
 * step; npm run bench compares it with SYSAK_SCAN_KERNEL=js) or, where that is unavailable or the
 * job does not fit its memory, in JS. Both give the same result to the bit (scan-kernel.test.ts).
 */
export function scanChunk(job: ChunkJob): ChunkResult {
  checkAscending(job.slabAddrs);
  const k = scanKernel();
  return (k && scanChunkWasm(k, job)) || scanChunkJs(job);
}

function checkAscending(slabAddrs: Uint32Array): void {
  for (let i = 2; i < slabAddrs.length; i += 2) {
    if (lessAddr(slabAddrs[i], slabAddrs[i + 1], slabAddrs[i - 2], slabAddrs[i - 1])) {
      throw new MemleakError('E_INTERNAL', 'scanChunk: slabs must come in ascending address order');
    }
  }
}

/** A chunk whose bytes are not read yet: `from` puts them where the scan wants them. */
export type UnreadChunkJob = Omit<ChunkJob, 'buffer' | 'byteOffset'>;

let fallbackBuffer: ArrayBuffer | null = null;

/**
 * scanChunk for a chunk not read yet (a range of a raw file): its bytes are read straight into the
 * wasm kernel's memory and scanned there, so no thread copies them; where the kernel cannot take the
 * job, into a buffer of this thread for the JS loop. The same result as scanChunk on the same bytes.
 */
export function scanUnreadChunk(job: UnreadChunkJob, from: ChunkFill, known?: KnownTemplates): ChunkResult {
  checkAscending(job.slabAddrs);
  const k = scanKernel();
  return (k && scanChunkWasm(k, job, from, known)) || scanUnreadChunkJs(job, from);
}

/**
 * Keys whose tokens the caller already holds (a thread folding chunk after chunk into its own tally):
 * their templates come back with no tokens. Materialising ~40 templates' tokens per chunk that the
 * tally already had made tokenizeObject and templateInPlace hot enough to be compiled again in
 * every worker.
 */
export type KnownTemplates = (key: number) => boolean;
const NO_TOKENS: number[] = [];

/** scanUnreadChunk on the JS loop: the bytes are read into a buffer this thread keeps. */
export function scanUnreadChunkJs(job: UnreadChunkJob, from: ChunkFill): ChunkResult {
  const nSlabs = job.slabAddrs.length >>> 1;
  const usable = job.stride * job.objsPerSlab;
  const bytes = nSlabs * Math.max(usable, from.slabBytes);
  if (!fallbackBuffer || fallbackBuffer.byteLength < bytes) fallbackBuffer = new ArrayBuffer(bytes);
  const u8 = new Uint8Array(fallbackBuffer);
  from.fill(u8.subarray(0, nSlabs * from.slabBytes));
  packSlabs(u8, nSlabs, from.slabBytes, usable);
  return scanChunkJs({ ...job, buffer: fallbackBuffer, byteOffset: 0 });
}

/** scanChunk on the wasm kernel; null when the job does not fit its memory. */
export function scanChunkWasm(k: ScanKernel, job: ChunkJob | UnreadChunkJob, from?: ChunkFill, known?: KnownTemplates): ChunkResult | null {
  const r = runKernel(k, job, from);
  if (!r) return null;
  const { stride, objsPerSlab, slabAddrs, heavy, space } = job;
  const nU32 = stride >>> 2;
  const uwords = r.words ?? new Uint32Array((job as ChunkJob).buffer, (job as ChunkJob).byteOffset, ((slabAddrs.length >>> 1) * objsPerSlab * stride) >>> 2);
  const templates: TemplateCount[] = [];
  for (let i = 0; i < r.keys.length; i++) {
    // Tokens of the template's first (lowest) object, by the reference path, as the JS loop does.
    const o = r.first[i];
    const s = Math.floor(o / objsPerSlab);
    const baseLo = slabAddrs[2 * s];
    const ulo = (baseLo + (o - s * objsPerSlab) * stride) >>> 0;
    const uhi = ulo < baseLo ? (slabAddrs[2 * s + 1] + 1) >>> 0 : slabAddrs[2 * s + 1];
    if (known?.(r.keys[i])) {
      templates.push({ key: r.keys[i], count: r.counts[i], tokens: NO_TOKENS, repLo: ulo, repHi: uhi });
      continue;
    }
    const tok = new Uint32Array(nU32);
    tokenizeObject(uwords, o * nU32, nU32, ulo, uhi, stride, space, tok);
    templateInPlace(tok, heavy);
    templates.push({ key: r.keys[i], count: r.counts[i], tokens: Array.from(tok), repLo: ulo, repHi: uhi });
  }
  return { templates, objects: r.objects, skipped: r.skipped, overflow: r.overflow, digest: r.digest };
}

/**
 * The hot loop in JS. Tokenizing, templating and hashing are fused per word, so an object costs one
 * pass over its words and no writes; tokens are materialised (tokenizeObject + templateInPlace, the
 * reference path) only for a template seen for the first time in this chunk. A one-entry cache catches
 * runs of same-shaped objects before the Map. Equivalence with the reference path is a test (scan.test.ts).
 */
export function scanChunkJs(job: ChunkJob): ChunkResult {
  const { stride, objsPerSlab, slabAddrs, state, heavy, space } = job;
  const nU32 = stride >>> 2;
  const nSlabs = slabAddrs.length >>> 1;
  const words = new Int32Array(job.buffer, job.byteOffset, (nSlabs * objsPerSlab * stride) >>> 2);
  const uwords = new Uint32Array(job.buffer, job.byteOffset, words.length);
  const tok = new Uint32Array(nU32);
  // Templates by index: counts in a typed array, so the hot path touches no object properties
  // (a property bump there was the last deopt: V8 lacked feedback for it when the loop was optimized).
  const index = new Map<number, number>();
  let counts = new Float64Array(1024);
  const found: TemplateCount[] = [];
  const hStart = heavy.start;
  const hVals = new Int32Array(heavy.vals.buffer, heavy.vals.byteOffset, heavy.vals.length);
  const { hFirst, hNone, same } = fastPathTables(heavy, space);
  const heapLo = space.heapLo | 0, heapHi = space.heapHi | 0, vmemLo = space.vmemmapLo | 0, vmemHi = space.vmemmapHi | 0;
  const vmLo = space.vmallocLo | 0, vmHi = space.vmallocHi | 0;
  // A disabled range has lo > hi as unsigned; keep it empty as signed too.
  const heapOn = space.heapLo <= space.heapHi, vmemOn = space.vmemmapLo <= space.vmemmapHi, vmOn = space.vmallocLo <= space.vmallocHi;
  let objects = 0;
  let skipped = 0;
  let overflow = 0;
  let obj = 0;
  let c1 = 0x811c9dc5 | 0;
  let c2 = 0x6a09e667 | 0;
  // A direct-mapped cache of 256 templates in front of the Map: hot shapes never reach Map.get.
  const cacheKeys = new Float64Array(256).fill(-1);
  const cacheIdx = new Int32Array(256);
  for (let s = 0; s < nSlabs; s++) {
    const baseLo = slabAddrs[2 * s];
    const baseHi = slabAddrs[2 * s + 1];
    for (let j = 0; j < objsPerSlab; j++, obj++) {
      if (state !== null && state[obj] === 0) {
        skipped++;
        continue;
      }
      const off = j * stride;
      const ulo = (baseLo + off) >>> 0;
      const uhi = ulo < baseLo ? (baseHi + 1) >>> 0 : baseHi;
      const lo = ulo | 0;
      const hi = uhi | 0;
      const w0 = obj * nU32;
      let h1 = 0x9747b28c | 0;
      let h2 = 0x85ebca6b | 0;
      for (let p = 0; p < nU32; p += 2) {
        const a = words[w0 + p];
        const b = words[w0 + p + 1];
        c1 = (Math.imul(c1, 0x01000193) + a) | 0;
        c2 = (Math.imul(c2, 0x2c1b3c6d) + b) | 0;
        let t0: number;
        let t1: number;
        if (same[p >>> 1] === 1 && a === hFirst[p] && b === hFirst[p + 1]) {
          h1 = Math.imul(((h1 << 13) | (h1 >>> 19)) ^ a, 0x9e3779b1) ^ b;
          h2 = Math.imul(((h2 << 5) | (h2 >>> 27)) ^ b, 0x85ebca6b) ^ a;
          continue;
        }
        if (b < I_KERNEL_HALF || b >= 0) {
          if (b === I_POISON_HI && (a === 0x100 || a === 0x100100)) (t0 = I_LIST_NEXT), (t1 = I_CLASS_HI);
          else if (b === I_POISON_HI && (a === 0x122 || a === 0x200200)) (t0 = I_LIST_PREV), (t1 = I_CLASS_HI);
          else if (b === I_OPAQUE_HI) (t0 = I_HEAP), (t1 = I_CLASS_HI);
          else (t0 = a), (t1 = b);
        } else if (heapOn && b >= heapLo && b <= heapHi) {
          const d = (a - lo) | 0;
          if (b === hi && d >= 0 && d < stride) {
            const here = p << 2;
            t0 = d === here ? I_LIST_NEXT : d + 8 === here ? I_LIST_PREV : I_SELF | d;
          } else t0 = I_HEAP;
          t1 = I_CLASS_HI;
        } else if (vmemOn && b >= vmemLo && b <= vmemHi) (t0 = I_VMEMMAP), (t1 = I_CLASS_HI);
        else if (vmOn && b >= vmLo && b <= vmHi) (t0 = I_VMALLOC), (t1 = I_CLASS_HI);
        else if (b !== -1 || a >= 0) (t0 = I_KPTR), (t1 = I_CLASS_HI);
        else (t0 = a), (t1 = b);
        // Not heavy at its position -> VAR|class (templateInPlace, inlined). The most frequent heavy
        // value is checked first on its own: constant fields hit it with one load.
        if (t0 !== hFirst[p] || hNone[p] === 1) {
          let i = hStart[p] + 1;
          const e = hStart[p + 1];
          while (i < e && hVals[i] !== t0) i++;
          if (i >= e) t0 = varTok(t0);
        }
        if (t1 !== hFirst[p + 1] || hNone[p + 1] === 1) {
          let i = hStart[p + 1] + 1;
          const e = hStart[p + 2];
          while (i < e && hVals[i] !== t1) i++;
          if (i >= e) t1 = varTok(t1);
        }
        // templateKey, inlined: one step per 8-byte word (two tokens).
        h1 = Math.imul(((h1 << 13) | (h1 >>> 19)) ^ t0, 0x9e3779b1) ^ t1;
        h2 = Math.imul(((h2 << 5) | (h2 >>> 27)) ^ t1, 0x85ebca6b) ^ t0;
      }
      const key = finishKey(h1, h2, nU32);
      objects++;
      const slot = key & 255;
      if (cacheKeys[slot] === key) {
        // Slabs come in ascending address order, so the first object seen is the template's lowest:
        // no per-object representative update (mergeChunkResults keeps the lowest across chunks).
        counts[cacheIdx[slot]]++;
        continue;
      }
      const at = index.get(key);
      if (at !== undefined) {
        counts[at]++;
        cacheKeys[slot] = key;
        cacheIdx[slot] = at;
      } else if (found.length < job.maxTemplates) {
        tokenizeObject(uwords, w0, nU32, ulo, uhi, stride, space, tok);
        templateInPlace(tok, heavy);
        const n = found.length;
        found.push({ key, count: 0, tokens: Array.from(tok), repLo: ulo, repHi: uhi });
        index.set(key, n);
        if (n >= counts.length) {
          const grown = new Float64Array(counts.length * 2);
          grown.set(counts);
          counts = grown;
        }
        counts[n] = 1;
        cacheKeys[slot] = key;
        cacheIdx[slot] = n;
      } else {
        overflow++;
      }
    }
  }
  for (let i = 0; i < found.length; i++) found[i].count = counts[i];
  return { templates: found, objects, skipped, overflow, digest: [c1 >>> 0, c2 >>> 0] };
}

/** The reference path (tokens, then template, then key): what the fused loop must equal. */
export function referenceKey(words: Uint32Array, w0: number, nU32: number, lo: number, hi: number, stride: number, space: TokenSpace, heavy: HeavyTable): number {
  const tok = new Uint32Array(nU32);
  tokenizeObject(words, w0, nU32, lo, hi, stride, space, tok);
  templateInPlace(tok, heavy);
  return templateKey(tok, nU32);
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

/**
 * Runs scanChunk on one crafted slab that takes every branch of the hot loop (each token class, heavy
 * hits and misses, new and cached templates), so V8 optimizes it with complete type feedback instead of
 * deoptimizing on the first heap pointer, vmemmap pointer or VAR class it meets mid-scan. Measured: the
 * first 256 MiB of a scan ran at half speed without it (bench, --trace-deopt: "insufficient type feedback").
 * Only the JS loop is warmed. With the wasm kernel, warming it (with few templates) cost ~65 ms of CPU
 * per worker at start: the JIT compiled runKernel and constantWords for the warm-up's shapes, then again
 * for the real jobs'. That is more than the first real chunk loses while V8 tiers the kernel up (tens of
 * ms, once per worker), and on 2 cores the start-up of two workers is time the scan does not get.
 */
export function warmUpScanChunk(): void {
  if (scanKernel() !== null) return;
  const stride = 64;
  const perSlab = 64;
  const nSlabs = 16; // enough shapes that some collide in the 256-slot cache (the Map-hit path)
  const words = new Uint32Array(16 * perSlab * nSlabs);
  const vals: [number, number][] = [
    [0x100, 0xdead0000], [0x122, 0xdead0000], [0x100100, 0xdead0000], [0x200200, 0xdead0000], [5, OPAQUE_SLAB_POINTER_HI],
    [0x1000, 0xffff8ead], [0x40, 0xffff8ead], [0x48, 0xffff8ead], [0x2000, 0xfffffb6e], [0x3000, 0xffffd3f3], [0x1234, 0xffffc000],
    [0xc0614b60, 0xffffffff], [0x12345678, 0xffffffff], [7, 0], [0, 0], [0xdeadbeef, 0x12345678], [0xffffffff, 0xffffffff], [1, 0x80000000],
  ];
  let r = 1;
  for (let w = 0; w < words.length; w += 2) {
    r = (Math.imul(r, 1103515245) + 12345) >>> 0;
    const [lo, hi] = vals[r % vals.length];
    words[w] = lo;
    words[w + 1] = hi;
  }
  const heavy = { nU32: 16, start: new Int32Array(17), vals: new Uint32Array(0) };
  const hv: number[] = [];
  for (let p = 0; p < 16; p++) {
    heavy.start[p] = hv.length;
    for (let k = 0; k < 1 + (p % 3); k++) hv.push(words[p + 16 * k]);
  }
  heavy.start[16] = hv.length;
  heavy.vals = Uint32Array.from(hv);
  const space = { heapLo: 0xffff8800, heapHi: 0xffff9fff, vmallocLo: 0xffffd3f3, vmallocHi: 0xffffd3ff, vmemmapLo: 0xfffffb6e, vmemmapHi: 0xfffffb6f };
  const slabAddrs = new Uint32Array(2 * nSlabs);
  for (let i = 0; i < nSlabs; i++) {
    slabAddrs[2 * i] = 0x1000 * (i + 1);
    slabAddrs[2 * i + 1] = 0xffff8ead;
  }
  const state = new Uint8Array(perSlab * nSlabs).fill(1);
  state[3] = 0;
  for (let i = 0; i < 40; i++) {
    scanChunk({ buffer: words.buffer, byteOffset: 0, stride, objsPerSlab: perSlab, slabAddrs, state: i & 1 ? state : null, heavy, space, maxTemplates: i & 2 ? 4 : 1 << 16 });
  }
}
