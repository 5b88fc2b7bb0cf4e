/**
 * A raw file (`--raw FILE`) scanned by every scanning thread at once, each taking the next chunk from
 * one shared counter: the main thread and each worker loop "take an index, pread that chunk into the
 * kernel's memory, scan it, fold the result into this thread's tally" until the file is done, and
 * hand their tallies over once at the end. Nothing crosses threads per chunk. With a message per chunk
 * (piscina's round trip, two chunks queued per worker), a worker posted both results together and then
 * idled until the main thread, busy with a chunk of its own, sent the next two: ~40% of a 1 GiB scan.
 */
import { MemleakError } from '../errors.js';
import { scanFileChunk, type FileChunkJob } from './file-chunk.js';
import { mergeChunkResults, type ChunkResult, type TemplateCount } from './scan-chunk.js';
import type { HeavyTable } from './heavy.js';
import type { TokenSpace } from './tokens.js';

/** The shared counters: [next chunk index, chunks done]. */
const NEXT = 0;
const DONE = 1;

export interface FileRangeJob {
  fd: number;
  /** For error messages. */
  file: string;
  /** Bytes of the file scanned (whole slabs of it). */
  size: number;
  chunkBytes: number;
  /** Bytes per slab in the file (PAGE_SIZE << order). */
  slabSize: number;
  /** The file's first byte's kernel address, as u32 halves. */
  baseLo: number;
  baseHi: number;
  stride: number;
  objsPerSlab: number;
  heavy: HeavyTable;
  space: TokenSpace;
  maxTemplates: number;
  /** Int32 counters (NEXT, DONE) every thread of this scan shares. */
  counters: SharedArrayBuffer;
}

/** One thread's share of the file: its templates merged, and each chunk's checksum by chunk index. */
export interface FileRangeResult extends ChunkResult {
  /** [index, digest0, digest1] for every chunk this thread scanned. */
  chunkDigests: number[];
}

/**
 * The addresses of `slabs` slabs at byte `at` of a raw dump whose first byte is at (baseHi:baseLo), as
 * the u32 pairs a chunk job carries: base + offset in u32 halves, no bigint per slab (offsets stay
 * below 2^53).
 */
export function rawSlabAddrs(baseLo: number, baseHi: number, at: number, slabs: number, slabSize: number): Uint32Array {
  const slabAddrs = new Uint32Array(2 * slabs);
  for (let i = 0; i < slabs; i++) {
    const sum = baseLo + at + i * slabSize;
    slabAddrs[2 * i] = sum >>> 0;
    slabAddrs[2 * i + 1] = (baseHi + Math.floor(sum / 0x100000000)) >>> 0;
  }
  return slabAddrs;
}

/** The shared counters for a new scan. */
export function fileRangeCounters(): SharedArrayBuffer {
  return new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT);
}

export function fileRangeChunks(job: Pick<FileRangeJob, 'size' | 'chunkBytes'>): number {
  return Math.ceil(job.size / job.chunkBytes);
}

/** Chunks done by all threads so far (for the progress line). */
export function fileRangeDone(counters: SharedArrayBuffer): number {
  return Atomics.load(new Int32Array(counters), DONE);
}

/** Makes every thread stop at its next chunk (one failed: the scan fails). */
export function stopFileRange(job: FileRangeJob): void {
  Atomics.store(new Int32Array(job.counters), NEXT, fileRangeChunks(job));
}

/** One thread's loop: next() scans one chunk, false once the file is done. */
export class FileRangeScanner {
  private readonly counters: Int32Array;
  private readonly nChunks: number;
  private readonly merged = new Map<number, TemplateCount>();
  private readonly digests: number[] = [];
  private objects = 0;
  private skipped = 0;
  private overflow = 0;

  /** Templates this thread holds: their tokens are not materialised again (KnownTemplates). */
  private readonly known = (key: number): boolean => this.merged.has(key);

  constructor(private readonly job: FileRangeJob) {
    this.counters = new Int32Array(job.counters);
    this.nChunks = fileRangeChunks(job);
    if (this.nChunks >= 2 ** 31) throw new MemleakError('E_INTERNAL', `${job.file}: too many chunks`);
  }

  next(): boolean {
    const { job } = this;
    const index = Atomics.add(this.counters, NEXT, 1);
    if (index >= this.nChunks) return false;
    const at = index * job.chunkBytes;
    const slabs = Math.floor(Math.min(job.chunkBytes, job.size - at) / job.slabSize);
    if (slabs > 0) {
      const slabAddrs = rawSlabAddrs(job.baseLo, job.baseHi, at, slabs, job.slabSize);
      const chunk: FileChunkJob = {
        stride: job.stride, objsPerSlab: job.objsPerSlab, slabAddrs, state: null, heavy: job.heavy, space: job.space, maxTemplates: job.maxTemplates,
        fd: job.fd, file: job.file, offset: at, slabBytes: job.slabSize,
      };
      let r: ChunkResult;
      try {
        r = scanFileChunk(chunk, this.known);
      } catch (e) {
        stopFileRange(job);
        throw e;
      }
      this.digests.push(index, r.digest[0], r.digest[1]);
      this.objects += r.objects;
      this.skipped += r.skipped;
      // The same cap as the main thread's tally: a thread never holds more templates than it would.
      this.overflow += mergeChunkResults(this.merged, r, job.maxTemplates * 4);
    }
    Atomics.add(this.counters, DONE, 1);
    return true;
  }

  result(): FileRangeResult {
    return { templates: [...this.merged.values()], objects: this.objects, skipped: this.skipped, overflow: this.overflow, digest: [0, 0], chunkDigests: this.digests };
  }
}

/** A worker's whole share: chunks until the file is done. */
export function scanFileRange(job: FileRangeJob): FileRangeResult {
  const s = new FileRangeScanner(job);
  while (s.next());
  return s.result();
}
