/**
 * Learning the heavy tokens: every step-th object of the cache (a sample spread over all of it) is
 * tokenized and counted on this thread, before any chunk is scanned. From a compressed dump each sample
 * costs a page decompression (65,536 of them on a big cache, seconds of one thread), so there the sample
 * pages are read in batches with their compressed pages left packed, and the scan pool (idle until the
 * scan starts) decompresses them. The sample, and therefore the heavy table, is the same either way:
 * counting does not depend on order, and a page that cannot be read or decompressed skips its sample
 * in both paths.
 */
import type { Piscina } from 'piscina';
import { HeavyLearner } from './heavy.js';
import type { SlabSet } from './slab-set.js';
import type { MemoryReader } from '../util/memory.js';
import type { TokenSpace } from './tokens.js';
import { PageDeferral } from '../dump/decompress.js';
import { ReadPlan } from '../dump/read-plan.js';
import type { Phase } from '../phases.js';
import { PAGE_SIZE } from '../util/page.js';
import { floorIndex } from '../util/sorted.js';
import type { UnpackJob, UnpackResult } from './unpack-chunk.js';

const PAGE = PAGE_SIZE;
/** Samples per batch: 512 slots of two pages (an object may cross a page boundary) = 4 MiB. */
const BATCH = 512;

/** The sample's addresses, in slab order: every step-th object that is not known to be free. */
function* sampleAddresses(set: SlabSet, sampleObjects: number, phase: Phase): Generator<bigint> {
  const { stride, objsPerSlab } = set.cache;
  const total = set.slabs.length * objsPerSlab;
  const step = Math.max(1, Math.floor(total / sampleObjects));
  phase.total = Math.ceil(total / step);
  for (let k = 0; k < total; k += step) {
    const addr = set.slabs[Math.floor(k / objsPerSlab)] + BigInt((k % objsPerSlab) * stride);
    if (set.allocated(addr) === false) continue;
    yield addr;
  }
}

/**
 * The same sample as sampleAddresses, in the same order, when it holds several objects per page: each
 * slab is read whole into one buffer (one read and one page decompression per page, where reading
 * object by object cost a translation, a page-cache lookup and a copy per object) and its sampled
 * objects are tokenized in place. An object is left out exactly as sampleAddresses and one() leave it
 * out: free (the slab's free indexes, or the allocation oracle), or unreadable (a slab that cannot be
 * read whole is read object by object). False when the source cannot read whole slabs.
 * With `kept` (slabs × slabSize bytes), each slab is read into its place there and `whole` marks those
 * read whole: the scan that follows in this thread takes them from there instead of decompressing
 * them again.
 */
function learnDense(set: SlabSet, learner: HeavyLearner, step: number, phase: Phase, kept: Uint8Array | null, whole: Uint8Array | null): boolean {
  const { stride, objsPerSlab, slabSize } = set.cache;
  const readInto = set.memory.readInto?.bind(set.memory);
  if (!readInto || slabSize < stride * objsPerSlab || slabSize % PAGE !== 0) return false;
  const total = set.slabs.length * objsPerSlab;
  phase.total = Math.ceil(total / step);
  const own = kept ? null : new Uint8Array(slabSize);
  const keptWords = kept ? new Uint32Array(kept.buffer, kept.byteOffset, kept.byteLength >>> 2) : null;
  const ownWords = own ? new Uint32Array(own.buffer) : null;
  const one = new Uint8Array(stride);
  const oneWords = new Uint32Array(one.buffer);
  let k = 0;
  for (let i = 0; i < set.slabs.length && k < total; i++) {
    const first = i * objsPerSlab;
    const end = first + objsPerSlab;
    if (k >= end) continue;
    const base = set.slabs[i];
    const baseLo = Number(base & 0xffffffffn);
    const baseHi = Number(base >> 32n);
    const free = set.freeIndexes ? set.freeIndexes(i) : undefined;
    const at = kept ? i * slabSize : 0;
    const ok = readInto(base, kept ? kept.subarray(at, at + slabSize) : own!);
    if (ok && whole) whole[i] = 1;
    const words = keptWords ?? ownWords!;
    let added = 0;
    for (; k < end; k += step) {
      const j = k - first;
      if (free !== undefined) {
        if (free !== null && free.includes(j)) continue;
      } else if (set.allocated(base + BigInt(j * stride)) === false) continue;
      let lo = baseLo + j * stride;
      let hi = baseHi;
      if (lo >= 0x100000000) {
        lo -= 0x100000000;
        hi = (hi + 1) >>> 0;
      }
      if (ok) learner.add(words, (at + j * stride) >>> 2, lo, hi);
      else {
        if (!readInto(base + BigInt(j * stride), one)) continue;
        learner.add(oneWords, 0, lo, hi);
      }
      added++;
    }
    // Counted per slab: a clock read per sampled object showed in the profile.
    phase.add(added * stride, added);
  }
  return true;
}

/** Caches up to this size keep the slabs the dense sample read, for a scan in this thread. */
const KEEP_MAX_BYTES = 64 << 20;

/**
 * The slabs learnDense read whole, in front of the source: a read of whole kept slabs (the scan reads
 * runs of adjacent slabs) is a copy; anything else goes to the source.
 */
function keptSlabs(set: SlabSet, kept: Uint8Array, whole: Uint8Array): MemoryReader {
  const src = set.memory;
  const { slabSize } = set.cache;
  const slabs = set.slabs;
  const indexOf = (addr: bigint): number => {
    const i = floorIndex<bigint>(slabs, addr);
    return i >= 0 && slabs[i] === addr ? i : -1;
  };
  const fromKept = (addr: bigint, out: Uint8Array): boolean => {
    if (out.length === 0 || out.length % slabSize !== 0) return false;
    const i = indexOf(addr);
    const n = out.length / slabSize;
    if (i < 0 || i + n > slabs.length) return false;
    for (let j = 0; j < n; j++) if (!whole[i + j] || slabs[i + j] !== addr + BigInt(j * slabSize)) return false;
    out.set(kept.subarray(i * slabSize, (i + n) * slabSize));
    return true;
  };
  return {
    description: src.description,
    read: (addr, len) => src.read(addr, len),
    readInto: (addr, out, defer) => fromKept(addr, out) || src.readInto!(addr, out, defer),
    noteCorruptPages: src.noteCorruptPages ? (pages) => src.noteCorruptPages!(pages) : undefined,
  };
}

/** The heavy tokens learned, and (keep) the source with the slabs read for them kept in front. */
export interface Learned {
  learner: HeavyLearner;
  memory: MemoryReader | null;
}

/**
 * `keep`: the scan will run in this thread; a small cache's slabs read for a dense sample are kept for
 * it (Learned.memory).
 */
export async function learnHeavy(set: SlabSet, space: TokenSpace, sampleObjects: number, phase: Phase, pool: Piscina | null, keep = false): Promise<Learned> {
  const { stride } = set.cache;
  const learner = new HeavyLearner(stride >>> 2, stride, space);
  const words = new Uint32Array(stride >>> 2);
  const wordBytes = new Uint8Array(words.buffer);
  const add = (addr: bigint) => {
    learner.add(words, 0, Number(addr & 0xffffffffn), Number(addr >> 32n));
    phase.add(stride, 1);
  };
  const one = (addr: bigint) => {
    // Straight into the sample buffer where the source can (one pread, no copies).
    if (set.memory.readInto) {
      if (!set.memory.readInto(addr, wordBytes)) return;
    } else {
      const data = set.memory.read(addr, stride);
      if (!data) return;
      wordBytes.set(data);
    }
    add(addr);
  };
  const total = set.slabs.length * set.cache.objsPerSlab;
  const step = Math.max(1, Math.floor(total / sampleObjects));
  const sparse = step * stride >= PAGE;
  // A dense sample (several objects per page) reads each slab once and tokenizes in place.
  if (!sparse) {
    const bytes = set.slabs.length * set.cache.slabSize;
    const kept = keep && bytes <= KEEP_MAX_BYTES ? new Uint8Array(bytes) : null;
    const whole = kept ? new Uint8Array(set.slabs.length) : null;
    if (learnDense(set, learner, step, phase, kept, whole)) return { learner, memory: kept ? keptSlabs(set, kept, whole!) : null };
  }
  const addrs = sampleAddresses(set, sampleObjects, phase);
  // Batches on the pool: worth it only when samples lie in different pages.
  if (!pool || !set.memory.readInto || stride > PAGE || !sparse) {
    for (const a of addrs) one(a);
    return { learner, memory: null };
  }
  // Batches of whole pages; the pool decompresses what the source left packed. The first batch tells
  // whether the source compresses at all: if not, the rest is read object by object (64 bytes, not 4 KiB).
  const slot = 2 * PAGE;
  const defer = new PageDeferral(PAGE);
  // A dump file the pool can read itself: this thread only plans each sample page's read (dump/read-plan.ts).
  const plan = set.memory.planRead ? new ReadPlan(PAGE) : null;
  // Two batch buffers, alternating: one being filled by the pool while the other's samples are counted.
  const buffers: SharedArrayBuffer[] = [];
  let batches = 0;
  let inFlight: Promise<() => void> | null = null;
  let compressed = true;
  for (;;) {
    const batch: bigint[] = [];
    for (let i = 0; i < BATCH; i++) {
      const r = addrs.next();
      if (r.done) break;
      batch.push(r.value);
    }
    if (batch.length === 0) break;
    if (!compressed) {
      for (const a of batch) one(a);
      continue;
    }
    // Batch k uses buffer k % 2: batch k - 2's samples were counted before batch k - 1 was sent.
    const buffer = (buffers[batches++ % 2] ??= new SharedArrayBuffer(BATCH * slot));
    const bytes = new Uint8Array(buffer, 0, batch.length * slot);
    const ok = new Uint8Array(batch.length);
    for (let i = 0; i < batch.length; i++) {
      const a = batch[i];
      const page = a & ~BigInt(PAGE - 1);
      const len = Number(a - page) + stride > PAGE ? 2 * PAGE : PAGE;
      const m = plan?.mark();
      const planned = plan ? set.memory.planRead!(page, len, plan, i * slot) : null;
      if (planned !== true && m) plan!.rollback(m);
      ok[i] = (planned ?? set.memory.readInto(page, bytes.subarray(i * slot, i * slot + len), defer.at(i * slot))) ? 1 : 0;
    }
    const reads = plan?.take() ?? null;
    const packed = defer.take();
    if (!packed && !reads) compressed = false;
    const finish = () => {
      for (let i = 0; i < batch.length; i++) {
        if (!ok[i]) continue;
        const off = i * slot + Number(batch[i] & BigInt(PAGE - 1));
        wordBytes.set(bytes.subarray(off, off + stride));
        add(batch[i]);
      }
    };
    // One batch decompressing while the next is read.
    const job: Promise<() => void> = packed || reads
      ? (pool.run({ unpackOnly: true, packed: packed ?? undefined, plan: reads ?? undefined, buffer } satisfies UnpackJob) as Promise<UnpackResult>).then((r) => {
          for (const at of r.failedOffsets) ok[Math.floor(at / slot)] = 0;
          if (r.failedOffsets.length) set.memory.noteCorruptPages?.(r.corruptPages);
          return finish;
        })
      : Promise.resolve(finish);
    if (inFlight) (await inFlight)();
    inFlight = job;
  }
  if (inFlight) (await inFlight)();
  return { learner, memory: null };
}
