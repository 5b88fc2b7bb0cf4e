/**
 * The WebAssembly SIMD scan kernel (wasm/scan-kernel.ts, embedded as src/scan/scan-kernel-wasm.ts):
 * loading it once per thread, laying out its small memory, feeding it a chunk block by block.
 * The chunk stays where it is (a SharedArrayBuffer of the scanner's ring); blocks of whole slabs are
 * copied into the kernel's own memory, which stays a few MiB (never the chunk, never GiBs reserved).
 */
import { SCAN_KERNEL_WASM } from './scan-kernel-wasm.js';
import { fastPathTables, type HeavyTable } from './heavy.js';
import { TOK_VAR, tokenizeObject, varClassOf, type TokenSpace } from './tokens.js';
import { packSlabs, type ChunkJob } from './chunk-job.js';

interface KernelExports {
  memory: WebAssembly.Memory;
  configure(...args: number[]): void;
  begin(): void;
  scanBlock(dataPtr: number, nSlabs: number, slabPtr: number, statePtr: number, firstObj: number): void;
  getTemplates(): number;
  getObjects(): number;
  getSkipped(): number;
  getOverflow(): number;
  getC1(): number;
  getC2(): number;
}

export interface ScanKernel {
  x: KernelExports;
  /** The layout the kernel was last configured with (a change clears the template table). */
  layout: string;
}

/** Slab bytes copied into the kernel per call: small enough to stay in L2 while it is scanned. */
const BLOCK_BYTES = 256 << 10;
/** The kernel's memory never grows past this (64 MiB); a job needing more runs in JS. */
const MAX_BYTES = 64 << 20;
/** Below this the kernel's statics live (AssemblyScript lays them out from address 0). */
const LAYOUT_BASE = 65536;

let loaded: ScanKernel | null | undefined;

/**
 * The kernel for this thread, or null where WebAssembly SIMD is unavailable (the JS loop runs then).
 * SYSAK_SCAN_KERNEL=js forces the JS loop (the bench compares both).
 */
export function scanKernel(): ScanKernel | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  if (process.env.SYSAK_SCAN_KERNEL === 'js') return null;
  try {
    const mod = new WebAssembly.Module(Buffer.from(SCAN_KERNEL_WASM, 'base64'));
    loaded = { x: new WebAssembly.Instance(mod, {}).exports as unknown as KernelExports, layout: '' };
  } catch {
    loaded = null; // an engine without SIMD: WebAssembly.Module throws a CompileError
  }
  return loaded;
}

/** Templates in order of first appearance: key, count, and the chunk index of the first object. */
export interface KernelResult {
  keys: number[];
  counts: number[];
  first: number[];
  objects: number;
  skipped: number;
  overflow: number;
  digest: [number, number];
  /** The chunk as scanned, in the kernel's memory, when it was filled there (valid until the next chunk). */
  words: Uint32Array | null;
}

const align = (n: number, a: number) => Math.ceil(n / a) * a;

/** Objects sampled per chunk to pick each position's constant word. */
const CONSTANT_SAMPLE = 64;
/** The sample's words at one position, and which of them are pointers into their own object (reused). */
const sampleX = new Int32Array(2 * CONSTANT_SAMPLE);
const sampleY = new Int32Array(2 * CONSTANT_SAMPLE);
const sampleD = new Int32Array(2 * CONSTANT_SAMPLE);
const sampleSeen = new Uint8Array(2 * CONSTANT_SAMPLE);
/** fastPathTokens' four rows of nU32 words (reused: a typed array allocated per chunk deopted its caller). */
let fastScratch = new Uint32Array(4 * 64);

/**
 * The kernel's fast path: per 8-byte word position, the raw value that most objects of this chunk hold
 * there (the most frequent in a sample: ops pointers, flags, zeros, list poison), with its template
 * tokens computed here once. Four objects holding it skip the class tests and heavy checks. Only values
 * whose tokens do not depend on the object's address qualify (not direct-map pointers, which may point
 * into the object itself); otherwise zero stands in. Beside it, the offset that the position's pointers
 * into their own object most often have (an empty list_head next to deleted ones holding poison): four
 * objects that each hold either skip the class tests too. That one needs every object of the chunk in
 * the direct map, where the tokenizer reads such a pointer as a self pointer. Which values are picked
 * changes speed, never results.
 * It runs once per chunk in every worker, so it is written in plain typed-array loops: the Map-based
 * version took TurboFan ~50 ms per compile, and deopts recompiled it up to seven times per process
 * (~0.4 s of CPU on the compiler threads for a 1 GiB scan with two workers).
 * out: per position 16 i32: the pair twice, tok0 x 4, tok1 x 4, then self on, its offset, tok0, tok1.
 */
function constantWords(words: Uint32Array, stride: number, objsPerSlab: number, slabAddrs: Uint32Array, heavy: HeavyTable, space: TokenSpace, out: Int32Array): void {
  const nU32 = stride >>> 2;
  const nObj = Math.floor(words.length / nU32);
  const step = Math.max(1, Math.floor(nObj / CONSTANT_SAMPLE));
  let selfOn = space.heapLo <= space.heapHi && slabAddrs.length > 0;
  for (let i = 0; selfOn && i < slabAddrs.length; i += 2) {
    const hi = slabAddrs[i + 1];
    const hiEnd = slabAddrs[i] + objsPerSlab * stride - 1 > 0xffffffff ? (hi + 1) >>> 0 : hi;
    if (hi < 0xffff8000 || hi < space.heapLo || hiEnd > space.heapHi || hiEnd < hi) selfOn = false;
  }
  // Words as int32 (what the kernel compares): a uint32 above 2^31 is a double in JS, and the optimized
  // code deopted ("lost precision") on the first kernel address it met.
  const w32 = new Int32Array(words.buffer, words.byteOffset, words.length);
  for (let p = 0; p < nU32; p += 2) {
    // The sample: raw pairs, and self-pointer offsets (-1: not one; its value moves with the object).
    let n = 0;
    for (let o = 0; o < nObj && n < sampleX.length; o += step, n++) {
      const x = w32[o * nU32 + p];
      const y = w32[o * nU32 + p + 1];
      const s = Math.floor(o / objsPerSlab);
      const addr = slabAddrs[2 * s] + (o - s * objsPerSlab) * stride; // may carry into the high half
      const lo = addr | 0;
      const hi = (slabAddrs[2 * s + 1] + (addr >= 0x100000000 ? 1 : 0)) | 0;
      const d = (x - lo) | 0;
      sampleX[n] = x;
      sampleY[n] = y;
      sampleD[n] = y === hi && d >= 0 && d < stride ? d : -1;
    }
    // The most frequent pair (a plurality, not a majority: deleted and empty list_heads split a
    // position), the first seen among equals; and the most frequent self offset, the lowest among equals.
    let a = 0;
    let b = 0;
    let votes = 0;
    let d = -1;
    let dVotes = 0;
    // Each distinct value is counted once, at its first sample (a position holds a few distinct values).
    sampleSeen.fill(0, 0, n);
    for (let i = 0; i < n; i++) {
      if (sampleSeen[i]) continue;
      let c = 0;
      const di = sampleD[i];
      if (di < 0) {
        const xi = sampleX[i];
        const yi = sampleY[i];
        for (let k = i; k < n; k++) {
          if (sampleD[k] < 0 && sampleX[k] === xi && sampleY[k] === yi) {
            c++;
            sampleSeen[k] = 1;
          }
        }
        if (c > votes) {
          a = xi;
          b = yi;
          votes = c;
        }
      } else {
        for (let k = i; k < n; k++) {
          if (sampleD[k] === di) {
            c++;
            sampleSeen[k] = 1;
          }
        }
        if (c > dVotes || (c === dVotes && di < d)) {
          d = di;
          dVotes = c;
        }
      }
    }
    // A direct-map pointer's tokens depend on the object's address: zero stands in.
    if (b >>> 0 >= 0xffff8000 && b >>> 0 >= space.heapLo && b >>> 0 <= space.heapHi) a = b = 0;
    const e = p * 8;
    out[e] = out[e + 2] = a | 0;
    out[e + 1] = out[e + 3] = b | 0;
    out[e + 12] = selfOn && d >= 0 ? 1 : 0;
    out[e + 13] = d;
  }
  fastPathTokens(out, nU32, stride, slabAddrs[1], heavy, space);
}

/**
 * The template tokens of constantWords' picks, by the reference tokenizer, one call per kind for all
 * positions: the constant pairs as one object at address 0 (none of them is a direct-map pointer, so
 * none depends on where it sits), and the self pointers as one object at 0x1000 in the direct map.
 */
function fastPathTokens(out: Int32Array, nU32: number, stride: number, slabHi: number, heavy: HeavyTable, space: TokenSpace): void {
  if (fastScratch.length < 4 * nU32) fastScratch = new Uint32Array(4 * nU32);
  const raw = fastScratch.subarray(0, nU32);
  const self = fastScratch.subarray(nU32, 2 * nU32);
  const tok = fastScratch.subarray(2 * nU32, 3 * nU32);
  const selfTok = fastScratch.subarray(3 * nU32, 4 * nU32);
  const lo = 0x1000;
  for (let p = 0; p < nU32; p += 2) {
    raw[p] = out[p * 8];
    raw[p + 1] = out[p * 8 + 1];
    self[p] = lo + out[p * 8 + 13];
    self[p + 1] = slabHi;
  }
  tokenizeObject(raw, 0, nU32, 0, 0, stride, space, tok);
  tokenizeObject(self, 0, nU32, lo, slabHi, stride, space, selfTok);
  for (let p = 0; p < nU32; p += 2) {
    const e = p * 8;
    out.fill(templateToken(tok[p], p, heavy), e + 4, e + 8);
    out.fill(templateToken(tok[p + 1], p + 1, heavy), e + 8, e + 12);
    if (!out[e + 12]) continue;
    out[e + 14] = templateToken(selfTok[p], p, heavy);
    out[e + 15] = templateToken(selfTok[p + 1], p + 1, heavy);
  }
}

/** A token's template value at position p (templateInPlace for one token). */
function templateToken(t: number, p: number, heavy: HeavyTable): number {
  for (let i = heavy.start[p]; i < heavy.start[p + 1]; i++) if (heavy.vals[i] === t) return t | 0;
  return (TOK_VAR | varClassOf(t)) | 0;
}

/**
 * Where a chunk's bytes come from when they are not in a buffer yet: `fill` writes nSlabs slabs of
 * `slabBytes` each (PAGE_SIZE << order as read; packed to objsPerSlab * stride afterwards) straight
 * into the kernel's memory, e.g. one pread of the file, so the bytes are never copied in user space.
 */
export interface ChunkFill {
  slabBytes: number;
  fill(into: Uint8Array): void;
}

/**
 * Runs one chunk through the kernel; null when it does not fit the kernel's memory (the caller runs JS).
 * With `from`, job.buffer is ignored: the whole chunk is filled into the kernel's memory and scanned in
 * place. `words` is the chunk as scanned (packed), valid until the kernel's next chunk.
 */
export function runKernel(k: ScanKernel, job: Omit<ChunkJob, 'buffer' | 'byteOffset'> & Partial<Pick<ChunkJob, 'buffer' | 'byteOffset'>>, from?: ChunkFill): KernelResult | null {
  const { stride, objsPerSlab, slabAddrs, state, heavy, space, maxTemplates } = job;
  const nU32 = stride >>> 2;
  const nSlabs = slabAddrs.length >>> 1;
  const slabBytes = stride * objsPerSlab;
  const blockSlabs = Math.max(1, Math.floor(BLOCK_BYTES / slabBytes));
  if (!from && !job.buffer) throw new Error('runKernel: a job needs a buffer or a fill');
  const tabSlots = 2 ** Math.ceil(Math.log2(Math.max(1024, 2 * maxTemplates)));
  // Layout: positions, fast-path flags, heavy values, template table and arrays, one block.
  const scratchPtr = LAYOUT_BASE - 64;
  const fastPtr = LAYOUT_BASE;
  const posPtr = fastPtr + (nU32 >>> 1) * 64;
  const valsPtr = posPtr + nU32 * 16;
  const tabPtr = align(valsPtr + heavy.vals.length * 4, 64);
  const keyHPtr = tabPtr + tabSlots * 4;
  const keyLPtr = keyHPtr + maxTemplates * 4;
  const countPtr = keyLPtr + maxTemplates * 4;
  const firstPtr = countPtr + maxTemplates * 4;
  const slabPtr = align(firstPtr + maxTemplates * 4, 64);
  const statePtr = align(slabPtr + blockSlabs * 8, 64);
  const dataPtr = align(statePtr + blockSlabs * objsPerSlab, 64);
  // The data area: one block copied in at a time, or the whole chunk filled in place.
  const end = dataPtr + (from ? nSlabs * Math.max(slabBytes, from.slabBytes) : blockSlabs * slabBytes);
  if (end > MAX_BYTES || maxTemplates > 1 << 24 || (job.byteOffset ?? 0) % 4 !== 0) return null;
  const x = k.x;
  const have = x.memory.buffer.byteLength;
  if (end > have) {
    try {
      x.memory.grow(Math.ceil((end - have) / 65536));
    } catch {
      return null; // no memory for it: the JS loop scans this chunk
    }
  }
  const mem = x.memory.buffer;
  const i32 = new Int32Array(mem);
  const u8 = new Uint8Array(mem);

  const layout = `${nU32}/${heavy.vals.length}/${tabSlots}/${maxTemplates}`;
  x.begin(); // clears the previous chunk's templates with the previous layout
  const { hFirst, hNone } = fastPathTables(heavy, space);
  for (let p = 0; p < nU32; p++) {
    const e = (posPtr >>> 2) + p * 4;
    i32[e] = hFirst[p];
    i32[e + 1] = hNone[p];
    i32[e + 2] = heavy.start[p];
    i32[e + 3] = heavy.start[p + 1];
  }
  if (from) {
    from.fill(u8.subarray(dataPtr, dataPtr + nSlabs * from.slabBytes));
    packSlabs(u8.subarray(dataPtr, dataPtr + nSlabs * from.slabBytes), nSlabs, from.slabBytes, slabBytes);
  }
  const words = from ? new Uint32Array(mem, dataPtr, (nSlabs * slabBytes) >>> 2) : new Uint32Array(job.buffer!, job.byteOffset ?? 0, (nSlabs * slabBytes) >>> 2);
  constantWords(words, stride, objsPerSlab, slabAddrs, heavy, space, i32.subarray(fastPtr >>> 2, (fastPtr >>> 2) + (nU32 >>> 1) * 16));
  i32.set(new Int32Array(heavy.vals.buffer, heavy.vals.byteOffset, heavy.vals.length), valsPtr >>> 2);
  if (layout !== k.layout) {
    u8.fill(0, tabPtr, tabPtr + tabSlots * 4);
    k.layout = layout;
  }
  x.configure(
    nU32, stride, objsPerSlab, posPtr, fastPtr, valsPtr, scratchPtr,
    space.heapLo <= space.heapHi ? 1 : 0, space.heapLo | 0, space.heapHi | 0,
    space.vmemmapLo <= space.vmemmapHi ? 1 : 0, space.vmemmapLo | 0, space.vmemmapHi | 0,
    space.vmallocLo <= space.vmallocHi ? 1 : 0, space.vmallocLo | 0, space.vmallocHi | 0,
    tabPtr, tabSlots - 1, keyHPtr, keyLPtr, countPtr, firstPtr, maxTemplates,
  );
  x.begin();
  const src = from ? null : new Uint8Array(job.buffer!, job.byteOffset ?? 0, nSlabs * slabBytes);
  const addrs = new Uint32Array(mem, slabPtr, blockSlabs * 2);
  for (let s = 0; s < nSlabs; s += blockSlabs) {
    const n = Math.min(blockSlabs, nSlabs - s);
    if (src) u8.set(src.subarray(s * slabBytes, (s + n) * slabBytes), dataPtr);
    addrs.set(slabAddrs.subarray(2 * s, 2 * (s + n)));
    if (state) u8.set(state.subarray(s * objsPerSlab, (s + n) * objsPerSlab), statePtr);
    x.scanBlock(src ? dataPtr : dataPtr + s * slabBytes, n, slabPtr, state ? statePtr : 0, s * objsPerSlab);
  }
  const nT = x.getTemplates();
  const keys: number[] = new Array(nT);
  const counts: number[] = new Array(nT);
  const first: number[] = new Array(nT);
  for (let i = 0; i < nT; i++) {
    keys[i] = (i32[(keyHPtr >>> 2) + i] >>> 0) * 0x200000 + i32[(keyLPtr >>> 2) + i];
    counts[i] = i32[(countPtr >>> 2) + i] >>> 0;
    first[i] = i32[(firstPtr >>> 2) + i];
  }
  return { keys, counts, first, objects: x.getObjects(), skipped: x.getSkipped(), overflow: x.getOverflow(), digest: [x.getC1() >>> 0, x.getC2() >>> 0], words: from ? words : null };
}
