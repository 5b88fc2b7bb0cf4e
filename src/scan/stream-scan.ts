/**
 * Streaming scan: slab pages flow from a sequential source (a file, or stdin for `--raw -`) into a
 * small ring of page-aligned SharedArrayBuffers; piscina workers get offsets into them, not copies, and
 * a buffer is refilled as soon as its worker is done. Memory is bounded by the ring and the template
 * counts, never by the input size: the seed's 13.4 GB kmalloc-32 cache streams through ~100 MiB.
 * Heavy tokens are learned from the first LEARN_BYTES (a stream cannot be sampled ahead); the
 * representative object of every template is copied out before its buffer is reused, so the report can
 * still show and symbolize the top clusters.
 */
import * as fs from 'node:fs';
import { Piscina } from 'piscina';
import { MemleakError } from '../errors.js';
import { SparseMemory } from '../util/memory.js';
import type { AddressSpace } from '../kernel/address-space.js';
import { tokenSpaceOf } from './tokens.js';
import { HeavyLearner } from './heavy.js';
import { scanChunk, type ChunkJob, type ChunkResult, type UnreadChunkJob } from './scan-chunk.js';
import { FileRangeScanner, fileRangeChunks, fileRangeCounters, fileRangeDone, rawSlabAddrs, stopFileRange, type FileRangeJob } from './file-range.js';
import { packSlabs } from './chunk-job.js';
import { preadFully } from '../util/read-file.js';
import { NO_PHASES } from '../phases.js';
import { DEFAULT_SCAN, EarliestFailure, FirstFailure, mainThreadShare, runChunk, runFileRange, ScanTally, scanOptions, scanPool, type ScanOptions, type ScanResult } from './scanner.js';

/** Bytes read before the heavy tokens are fixed: 16 chunks of 4 MiB. */
export const LEARN_BYTES = 64 << 20;

export interface StreamSource {
  readonly description: string;
  /** For error messages: the file, device or pipe given, or "stdin". */
  readonly name: string;
  /** Fills `into` as far as the source goes; returns the bytes read (< length only at the end). */
  read(into: Uint8Array): number;
  /**
   * A regular file: its descriptor, name and size. Each chunk is then read by offset on the thread that
   * scans it (file-chunk.ts), and the report's words are read back from the file, not copied out.
   */
  readonly file?: { fd: number; path: string; size: number };
}

/** A file descriptor read sequentially (a regular file, a pipe, stdin). */
export function fdSource(fd: number, path: string): StreamSource {
  const wait = new Int32Array(new SharedArrayBuffer(4));
  const st = path === '-' ? null : fs.fstatSync(fd);
  return {
    file: st?.isFile() ? { fd, path, size: st.size } : undefined,
    description: path === '-' ? 'raw slab pages from stdin' : `raw slab pages streamed from ${path}`,
    name: path === '-' ? 'stdin' : path,
    read(into: Uint8Array): number {
      let done = 0;
      while (done < into.length) {
        let n: number;
        try {
          n = fs.readSync(fd, into, done, into.length - done, null);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'EAGAIN') {
            Atomics.wait(wait, 0, 0, 2); // a non-blocking stdin pipe with nothing yet
            continue;
          }
          if (code === 'EOF') break;
          throw new MemleakError('E_IO', `read failed after ${done} bytes of this chunk: ${(e as Error).message}`, { file: path });
        }
        if (n === 0) break;
        done += n;
      }
      return done;
    },
  };
}

export interface StreamGeometry {
  stride: number;
  objsPerSlab: number;
  slabSize: number;
  base: bigint;
}

export interface StreamScanResult {
  scan: ScanResult;
  /** Representative objects of every template (for the report's words). */
  reps: SparseMemory;
  slabs: number;
  bytes: number;
  trailingBytes: number;
}

interface Slot {
  buffer: SharedArrayBuffer;
  bytes: Uint8Array;
  /** Byte offset of this chunk in the stream. */
  offset: number;
  slabs: number;
}

export async function scanStream(src: StreamSource, g: StreamGeometry, space: AddressSpace, opts: Partial<ScanOptions> = {}): Promise<StreamScanResult> {
  // Not asked: a file is scanned where it is read (one worker per core; in this thread below
  // poolMinBytes, where starting workers costs more than they save); a pipe is read by this thread.
  const small = src.file !== undefined && src.file.size < (opts.poolMinBytes ?? DEFAULT_SCAN.poolMinBytes);
  const o = scanOptions({ ...opts, workers: opts.workers ?? (small ? 0 : DEFAULT_SCAN.workers) });
  const t0 = performance.now();
  // Workers start (and warm up) while this thread reads the head and learns the heavy tokens.
  // A file's workers each take one task, their whole share (file-range.ts); a pipe's get chunk after chunk.
  const pool = o.workers > 0 ? scanPool(o.workers, src.file ? 1 : 2) : null;
  try {
    return await scanStreamWith(src, g, space, o, pool, t0);
  } finally {
    await pool?.destroy();
  }
}

async function scanStreamWith(src: StreamSource, g: StreamGeometry, space: AddressSpace, o: ScanOptions, pool: Piscina | null, t0: number): Promise<StreamScanResult> {
  const { stride, objsPerSlab, slabSize } = g;
  const usable = stride * objsPerSlab;
  const slabsPerChunk = Math.max(1, Math.floor(o.chunkBytes / slabSize));
  const chunkBytes = slabsPerChunk * slabSize;
  const tokSpace = tokenSpaceOf(space);
  const free: Slot[] = [];
  const newSlot = (): Slot => {
    const buffer = new SharedArrayBuffer(chunkBytes);
    return { buffer, bytes: new Uint8Array(buffer), offset: 0, slabs: 0 };
  };
  let offset = 0;
  let trailing = 0;
  let eof = false;
  /** Reads the next chunk into a slot; null at the end of the stream. */
  const fill = (slot: Slot): Slot | null => {
    if (eof) return null;
    const n = src.read(slot.bytes);
    if (n < chunkBytes) eof = true;
    const slabs = Math.floor(n / slabSize);
    trailing += n - slabs * slabSize;
    if (slabs === 0) return null;
    slot.offset = offset;
    slot.slabs = slabs;
    offset += n;
    return slot;
  };

  // Phases for --verbose, the JSON's timings and the progress line: learn, then scan (a pipe's size is unknown).
  const phases = o.phases ?? NO_PHASES();
  const learning = phases.start('learn', 'objects');
  // Learn from the first LEARN_BYTES: every step-th object of the chunks that cover them.
  const learner = new HeavyLearner(stride >>> 2, stride, tokSpace);
  const baseLo = Number(g.base & 0xffffffffn);
  const baseHi = Number(g.base >> 32n);
  let k = 0;
  let step = 1;
  const learnChunk = (words: Uint32Array, at: number, slabs: number) => {
    learning.add(slabs * slabSize, Math.ceil((slabs * objsPerSlab) / step));
    for (let slab = 0; slab < slabs; slab++) {
      for (let j = 0; j < objsPerSlab; j++, k++) {
        if (k % step !== 0) continue;
        const within = slab * slabSize + j * stride;
        const sum = baseLo + at + within; // the object's address in u32 halves, as the jobs give it
        learner.add(words, within >>> 2, sum >>> 0, (baseHi + Math.floor(sum / 0x100000000)) >>> 0);
      }
    }
  };
  // A stream: those chunks stay in memory and are scanned first.
  const head: Slot[] = [];
  let headObjects = 0;
  if (src.file) {
    // A file: the same chunks as the stream would read, through one buffer (the scan reads them again).
    const { fd, path, size } = src.file;
    const chunks: [number, number][] = [];
    for (let at = 0; chunks.length * chunkBytes < LEARN_BYTES && at < size; at += chunkBytes) {
      const n = Math.min(chunkBytes, size - at);
      const slabs = Math.floor(n / slabSize);
      if (slabs === 0) break;
      chunks.push([at, slabs]);
      headObjects += slabs * objsPerSlab;
    }
    step = Math.max(1, Math.floor(headObjects / o.sampleObjects));
    const buf = new Uint8Array(chunkBytes);
    for (const [at, slabs] of chunks) {
      preadFully(fd, buf.subarray(0, slabs * slabSize), at, path);
      learnChunk(new Uint32Array(buf.buffer), at, slabs);
    }
  } else {
    while (head.length * chunkBytes < LEARN_BYTES) {
      const s = fill(newSlot());
      if (!s) break;
      head.push(s);
      headObjects += s.slabs * objsPerSlab;
    }
    step = Math.max(1, Math.floor(headObjects / o.sampleObjects));
    for (const s of head) learnChunk(new Uint32Array(s.buffer), s.offset, s.slabs);
  }
  if (headObjects === 0) {
    // Named like a regular file's (slab/load.ts): stdin or the device or pipe given, and how much came.
    const got = src.file ? src.file.size : trailing; // a stream's bytes that made no whole slab
    throw new MemleakError('E_NO_DATA', `raw dump of ${got} bytes holds no whole ${slabSize}-byte slab`, { file: src.file?.path ?? src.name, offset: got });
  }
  const heavy = learner.finish();
  learning.end();
  const scanning = phases.start('scan', 'bytes', src.file ? src.file.size : null);

  const tally = new ScanTally(o.maxTemplates);
  const merged = tally.merged;
  const repBytes = new Map<number, Uint8Array>();
  /** The job of `slabs` slabs at stream offset `at`, without its bytes. */
  const unreadJob = (at: number, slabs: number): UnreadChunkJob => {
    const slabAddrs = rawSlabAddrs(baseLo, baseHi, at, slabs, slabSize);
    return { stride, objsPerSlab, slabAddrs, state: null, heavy, space: tokSpace, maxTemplates: o.maxTemplates };
  };
  const jobOf = (s: Slot): ChunkJob => {
    // A slab's bytes past objsPerSlab * stride (slab padding) are not objects: the job reads
    // objsPerSlab * stride bytes per slab, so slabs must be packed when slabSize > usable.
    packSlabs(s.bytes, s.slabs, slabSize, usable);
    return { ...unreadJob(s.offset, s.slabs), buffer: s.buffer, byteOffset: 0 };
  };
  const absorb = (s: Slot, r: ChunkResult) => {
    const before = new Map<number, [number, number]>();
    for (const t of r.templates) {
      const e = merged.get(t.key);
      before.set(t.key, e ? [e.repLo, e.repHi] : [-1, -1]);
    }
    tally.absorb(r, s.offset / chunkBytes);
    scanning.add(s.slabs * slabSize, r.objects);
    // Copy out representatives that now live in this chunk (it is about to be reused).
    const lo = g.base + BigInt(s.offset);
    for (const t of r.templates) {
      const e = merged.get(t.key);
      if (!e || (e.repLo === before.get(t.key)![0] && e.repHi === before.get(t.key)![1])) continue;
      const addr = (BigInt(e.repHi) << 32n) | BigInt(e.repLo);
      const rel = Number(addr - lo);
      const slab = Math.floor(rel / slabSize);
      const within = rel - slab * slabSize;
      const at = usable !== slabSize ? slab * usable + within : rel;
      repBytes.set(t.key, s.bytes.slice(at, at + stride));
    }
  };

  /**
   * A regular file: every thread of the scan, this one included, takes chunks from one shared counter
   * and reads each by offset where it scans it (file-range.ts). This thread yields between its chunks
   * so that the pool can hand the workers their share as they come up.
   */
  const runFile = async (file: { fd: number; path: string; size: number }) => {
    const scanned = Math.floor(file.size / slabSize) * slabSize;
    trailing = file.size - scanned;
    offset = file.size;
    const job: FileRangeJob = {
      fd: file.fd, file: file.path, size: scanned, chunkBytes, slabSize, baseLo, baseHi,
      stride, objsPerSlab, heavy, space: tokSpace, maxTemplates: o.maxTemplates, counters: fileRangeCounters(),
    };
    const failure = new EarliestFailure();
    const shares = pool ? Array.from({ length: o.workers }, () => runFileRange(pool, job).catch((e) => {
      stopFileRange(job);
      failure.keep(e);
      return null;
    })) : [];
    const here = new FileRangeScanner(job);
    let reported = 0;
    let mine = 0;
    try {
      while (here.next()) {
        mine++;
        const done = Math.min(fileRangeDone(job.counters) * chunkBytes, scanned);
        scanning.add(done - reported);
        reported = done;
        if (pool) await new Promise((r) => setImmediate(r));
      }
    } catch (e) {
      failure.keep(e);
    }
    const results = [here.result(), ...(await Promise.all(shares))];
    if (failure.error) throw failure.error;
    scanning.add(scanned - reported);
    for (const r of results) {
      if (!r) continue;
      tally.absorbRange(r);
      scanning.add(0, r.objects);
    }
    if (pool) scanning.note = mainThreadShare(mine, fileRangeChunks(job), o.workers);
  };

  const run = async () => {
    const inFlight = new Set<Promise<void>>();
    const failure = new FirstFailure();
    const dispatch = (s: Slot) => {
      const job = jobOf(s);
      if (!pool) {
        absorb(s, scanChunk(job));
        free.push(s);
        return;
      }
      const p: Promise<void> = runChunk(pool, job)
        .then((r) => {
          absorb(s, r);
          free.push(s);
        })
        .catch(failure.keep)
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
    };
    const maxInFlight = pool ? 2 * o.workers : 1;
    for (const s of head) {
      while (pool && inFlight.size >= maxInFlight) await Promise.race(inFlight);
      dispatch(s);
    }
    for (;;) {
      if (failure.error) break;
      while (pool && inFlight.size >= maxInFlight) await Promise.race(inFlight);
      const slot = free.pop() ?? newSlot();
      const s = fill(slot);
      if (!s) {
        free.push(slot);
        break;
      }
      dispatch(s);
    }
    await Promise.all(inFlight);
    if (failure.error) throw failure.error;
  };

  if (src.file) await runFile(src.file);
  else await run();
  scanning.end();
  const reps = new SparseMemory(src.description);
  for (const t of merged.values()) {
    const b = repBytes.get(t.key);
    if (b) reps.write((BigInt(t.repHi) << 32n) | BigInt(t.repLo), b);
  }
  const slabs = Math.floor((offset - trailing) / slabSize);
  return {
    scan: await tally.finish(o, { heavy, space: tokSpace, slabs, sampled: learner.sampled, objectsFree: 0, objectsUnreadable: 0, t0, phases }),
    reps,
    slabs,
    bytes: offset,
    trailingBytes: trailing,
  };
}
