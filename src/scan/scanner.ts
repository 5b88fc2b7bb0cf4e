/**
 * `src/scan/`: the scan engine (tokens, heavy values, templates, clusters; this random-access scanner
 * and the streaming one, sharing ScanTally); it reads a SlabSet and knows nothing of where the memory
 * came from.
 *
 * Scan orchestration: learn heavy tokens from a sample, cut the slabs into chunks in SharedArrayBuffers,
 * run scanChunk on piscina workers (or in this thread), merge the template counts, cluster them.
 * The main thread reads and merges; workers get offsets into shared memory, not copies.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { xxh64 } from '../util/hash64.js';
import { MemleakError, isPlainError, type PlainError } from '../errors.js';
import type { HeavyTable } from './heavy.js';
import { buildClusters, DEFAULT_CLUSTER, type Cluster, type ClusterOptions } from './clusters.js';
import { mergeChunkResults, type ChunkJob, type ChunkResult, type TemplateCount } from './scan-chunk.js';
import type { SlabSet } from './slab-set.js';
import { tokenSpaceOf, type TokenSpace } from './tokens.js';
import { embeddedWorkerFile } from '../ship/worker-files.js';
import { PageDeferral } from '../dump/decompress.js';
import { ReadPlan } from '../dump/read-plan.js';
import type { PlannedChunkJob } from './planned-chunk.js';
import { Phases } from '../phases.js';
import { PAGE_SIZE } from '../util/page.js';
import { learnHeavy } from './learn.js';
import { scanAnyChunk, type AnyChunkJob } from './any-chunk.js';
import type { PackedChunkJob, UnpackedChunkResult } from './unpack-chunk.js';
import type { FileChunkJob } from './file-chunk.js';
import type { FileRangeJob, FileRangeResult } from './file-range.js';

export interface ScanOptions {
  /**
   * 0: scan in this thread; N: N piscina workers beside it. The default leaves one core to this thread,
   * which scans too (a file, a dump) or reads (a pipe, where the writer also wants a core): on 2 cores
   * the seed's case (13.4 GB piped) took 19.0 s with 0 workers, 11.5 s with 1 and 14.4 s with 2.
   */
  workers: number;
  /**
   * When `workers` is not asked for, a cache with less slab memory than this is scanned in this
   * thread: starting a worker (loading the scan modules, warming up the kernel) costs ~100-150 ms of
   * CPU each, more than the pool saves on a few MiB (the 768 MiB demo's 10 MiB cache).
   */
  poolMinBytes: number;
  /** Objects sampled to learn heavy tokens. */
  sampleObjects: number;
  /** Bytes of slab memory per chunk handed to a worker. */
  chunkBytes: number;
  /** Distinct templates a worker keeps before counting the rest as overflow. */
  maxTemplates: number;
  cluster: ClusterOptions;
  /** Where the scan's phases (learn, slab reads, scan, merge, cluster) and progress are recorded. */
  phases?: Phases;
}

export const DEFAULT_SCAN: ScanOptions = {
  workers: Math.max(0, Math.min(availableParallelism(), 8) - 1),
  poolMinBytes: 64 << 20,
  sampleObjects: 1 << 16,
  chunkBytes: 4 << 20,
  maxTemplates: 1 << 16,
  cluster: DEFAULT_CLUSTER,
};

export interface ScanStats {
  slabs: number;
  objectsScanned: number;
  objectsFree: number;
  objectsUnreadable: number;
  overflowObjects: number;
  rareObjects: number;
  templates: number;
  sampled: number;
  workers: number;
  elapsedMs: number;
  /**
   * xxh64 over the per-chunk xxh64 of every byte scanned, in slab order: two runs (or a run and its
   * replay from a saved extract) read the same memory exactly when the digests agree.
   */
  memoryDigest: string;
}

export interface ScanResult {
  clusters: Cluster[];
  clusterOfTemplate: Map<number, number>;
  heavy: HeavyTable;
  space: TokenSpace;
  stats: ScanStats;
}

export function workerPath(name: string): string {
  const embedded = embeddedWorkerFile(name);
  if (embedded) return embedded;
  // Compiled layout: dist/src/scan/scanner.js -> dist/workers/NAME.js. Under vitest the source runs
  // from src/scan/scanner.ts, and the compiled worker is under dist/.
  for (const rel of [`../../workers/${name}.js`, `../../dist/workers/${name}.js`]) {
    const p = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(p)) return p;
  }
  throw new MemleakError('E_INTERNAL', `worker ${name}.js not found: run "npm run build" first`);
}

/**
 * The scan pool: one piscina worker per --workers. Two tasks per worker: the next chunk waits in the
 * worker's own queue, so it starts as soon as the previous one ends; with one, each chunk waited for a
 * round trip through the main thread's event loop, and the workers of a --raw FILE scan idled 25-45%.
 */
export function scanPool(workers: number, tasksPerWorker = 2): Piscina {
  return new Piscina({ filename: workerPath('scan-worker'), minThreads: workers, maxThreads: workers, concurrentTasksPerWorker: tasksPerWorker });
}

/** One chunk on the pool; the worker's errors (plain {code, message, context}, or a crash) come back as MemleakError. */
export async function runChunk(pool: Piscina, job: ChunkJob | PackedChunkJob | FileChunkJob | PlannedChunkJob | FileRangeJob): Promise<UnpackedChunkResult> {
  let r: unknown;
  try {
    r = await pool.run(job);
  } catch (e) {
    throw isPlainError(e) ? MemleakError.fromPlain(e) : new MemleakError('E_WORKER', `scan worker failed: ${(e as Error).message}`);
  }
  const res = r as UnpackedChunkResult | { error: PlainError };
  if ('error' in res) throw MemleakError.fromPlain(res.error);
  return res;
}

/** One worker's share of a raw file (file-range.ts), its errors as runChunk's. */
export async function runFileRange(pool: Piscina, job: FileRangeJob): Promise<FileRangeResult> {
  return (await runChunk(pool, job)) as FileRangeResult;
}

/** The first failure among chunks in flight, rethrown once every chunk has settled (no unhandled rejections). */
export class FirstFailure {
  error: MemleakError | null = null;
  keep = (e: unknown): void => {
    this.error ??= asScanError(e);
  };
}

/**
 * Of several threads' failures, the one nearest the file's start (by context.offset; one without an
 * offset counts as last). Threads that take a raw file's chunks in file order (file-range.ts) all read
 * the chunk where a shrunk file ends, but one past it may fail first: the report still names where
 * the file ends, whichever thread got there.
 */
export class EarliestFailure {
  error: MemleakError | null = null;
  keep = (e: unknown): void => {
    const m = asScanError(e);
    if (!this.error || (m.context.offset ?? Infinity) < (this.error.context.offset ?? Infinity)) this.error = m;
  };
}

function asScanError(e: unknown): MemleakError {
  return e instanceof MemleakError ? e : new MemleakError('E_WORKER', String(e));
}

/** The scan phase's note when the main thread scanned beside the workers (both scanners). */
export function mainThreadShare(here: number, chunks: number, workers: number): string {
  return `${here} of ${chunks} chunks scanned on the main thread, beside ${workers} worker${workers === 1 ? '' : 's'}`;
}

/**
 * Chunks handed to the pool, at most two per worker in flight (bounded memory). When every worker has
 * its two, this thread scans the next chunk itself instead of waiting, then lets finished chunks in:
 * the workers take ~70 ms of CPU each to start (Node isolate, modules, JIT) and this thread would
 * otherwise idle through that and through every wait.
 */
export class ChunkDispatch {
  private readonly inFlight = new Set<Promise<void>>();
  private readonly failure = new FirstFailure();
  /** Chunks this thread scanned, of all submitted. */
  here = 0;
  chunks = 0;

  constructor(
    private readonly pool: Piscina,
    private readonly workers: number,
  ) {}

  get error(): MemleakError | null {
    return this.failure.error;
  }

  /** For --verbose and the JSON timings: how the chunks were shared. */
  get note(): string | undefined {
    return this.here ? mainThreadShare(this.here, this.chunks, this.workers) : undefined;
  }

  async submit<J extends AnyChunkJob>(job: J, scanHere: (job: J) => UnpackedChunkResult, absorb: (r: UnpackedChunkResult) => void): Promise<void> {
    this.chunks++;
    if (this.inFlight.size >= 2 * this.workers) {
      this.here++;
      absorb(scanHere(job));
      await new Promise((r) => setImmediate(r));
      return;
    }
    const p: Promise<void> = runChunk(this.pool, job)
      .then(absorb)
      .catch(this.failure.keep)
      .finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  /** Waits for every chunk in flight; the first failure among them is thrown. */
  async drain(): Promise<void> {
    await Promise.all(this.inFlight);
    if (this.failure.error) throw this.failure.error;
  }
}

/** The caller's options over DEFAULT_SCAN (cluster options merged one level down): both scanners start here. */
export function scanOptions(opts: Partial<ScanOptions>): ScanOptions {
  // Workers asked for are started whatever the cache's size.
  const poolMinBytes = opts.poolMinBytes ?? (opts.workers !== undefined ? 0 : DEFAULT_SCAN.poolMinBytes);
  return { ...DEFAULT_SCAN, ...opts, poolMinBytes, cluster: { ...DEFAULT_SCAN.cluster, ...(opts.cluster ?? {}) } };
}

/** What both scanners gather as chunks come back: merged template counts, object counts, chunk digests. */
export class ScanTally {
  readonly merged = new Map<number, TemplateCount>();
  objects = 0;
  skipped = 0;
  overflow = 0;
  private readonly digests: [number, number][] = [];
  private readonly mergeCap: number;

  constructor(maxTemplates: number) {
    this.mergeCap = maxTemplates * 4;
  }

  /** One chunk's result; `index` is the chunk's place in slab order (the memory digest follows that order). */
  absorb(r: ChunkResult, index: number): void {
    this.digests[index] = r.digest;
    this.fold(r);
  }

  /** One thread's share of a raw file: its merged templates, and the checksums of the chunks it took. */
  absorbRange(r: FileRangeResult): void {
    for (let i = 0; i < r.chunkDigests.length; i += 3) this.digests[r.chunkDigests[i]] = [r.chunkDigests[i + 1], r.chunkDigests[i + 2]];
    this.fold(r);
  }

  /** Counts and templates of one chunk, or of one thread's share. */
  private fold(r: ChunkResult): void {
    this.objects += r.objects;
    this.skipped += r.skipped;
    this.overflow += mergeChunkResults(this.merged, r, this.mergeCap);
  }

  /**
   * The finish both scanners share: clusters from the merged templates, the stats, and the memory
   * digest (each chunk's checksum is folded into the hot loop, scan-chunk.ts; xxh64 (util/hash64.ts) combines the
   * per-chunk checksums, in slab order, in one call per scan, where it is fast).
   */
  async finish(
    o: ScanOptions,
    parts: { heavy: HeavyTable; space: TokenSpace; slabs: number; sampled: number; objectsFree: number; objectsUnreadable: number; t0: number; phases?: Phases },
  ): Promise<ScanResult> {
    const h64 = await xxh64();
    const clustering = parts.phases?.start('cluster', 'objects');
    const { clusters, clusterOfTemplate, rareObjects } = buildClusters(this.merged.values(), o.cluster);
    clustering?.add(0, this.merged.size);
    clustering?.end();
    return {
      clusters,
      clusterOfTemplate,
      heavy: parts.heavy,
      space: parts.space,
      stats: {
        slabs: parts.slabs,
        objectsScanned: this.objects,
        objectsFree: parts.objectsFree,
        objectsUnreadable: parts.objectsUnreadable,
        overflowObjects: this.overflow,
        rareObjects,
        templates: this.merged.size,
        sampled: parts.sampled,
        workers: o.workers,
        elapsedMs: performance.now() - parts.t0,
        memoryDigest: h64(new Uint8Array(Uint32Array.from(this.digests.flat()).buffer)).toString(16).padStart(16, '0'),
      },
    };
  }
}

interface PreparedChunk {
  job: PackedChunkJob | PlannedChunkJob;
  unreadable: number;
  /** Bytes read from the source for this chunk (compressed pages count their compressed size). */
  sourceBytes: number;
}

/** Bytes per slab in a chunk buffer: whole slabs for bulk readers (packed to objsPerSlab * stride later). */
function chunkSlabBytes(set: SlabSet): number {
  const usable = set.cache.stride * set.cache.objsPerSlab;
  return (set.memory.readInto || set.memory.planRead) && set.cache.slabSize >= usable ? set.cache.slabSize : usable;
}

/** Slab addresses [from, to) as the u32 pairs a chunk job carries. */
function slabAddrsOf(set: SlabSet, from: number, to: number): Uint32Array {
  const slabAddrs = new Uint32Array(2 * (to - from));
  for (let i = 0; i < to - from; i++) {
    const base = set.slabs[from + i];
    slabAddrs[2 * i] = Number(base & 0xffffffffn);
    slabAddrs[2 * i + 1] = Number(base >> 32n);
  }
  return slabAddrs;
}

/**
 * Each run of slabs that follow each other in memory goes to `bulk` in one request; a run that fails
 * is asked for again slab by slab. Returns which slabs came whole.
 */
function wholeSlabs(set: SlabSet, from: number, n: number, slabBytes: number, bulk: (i: number, j: number, retry: boolean) => boolean): Uint8Array {
  const whole = new Uint8Array(n);
  const step = BigInt(slabBytes);
  for (let i = 0; i < n; ) {
    let j = i + 1;
    while (j < n && set.slabs[from + j] === set.slabs[from + j - 1] + step) j++;
    if (bulk(i, j, false)) whole.fill(1, i, j);
    else for (let k = i; k < j; k++) whole[k] = bulk(k, k + 1, true) ? 1 : 0;
    i = j;
  }
  return whole;
}

/**
 * The allocation state of every object of slabs [from, from + n), from the free indexes of whole slabs;
 * a slab that did not come whole (a page missing or corrupt) is read object by object, each readable
 * object handed to `place` (slab, index, bytes), the rest not counted.
 */
function slabStates(set: SlabSet, from: number, whole: Uint8Array, place: (i: number, j: number, data: Uint8Array) => void): { state: Uint8Array | null; unreadable: number } {
  const { stride, objsPerSlab } = set.cache;
  const n = whole.length;
  const state = new Uint8Array(n * objsPerSlab);
  let anyFree = false;
  let unreadable = 0;
  for (let i = 0; i < n; i++) {
    const base = set.slabs[from + i];
    const st = state.subarray(i * objsPerSlab, (i + 1) * objsPerSlab);
    if (whole[i] && set.freeIndexes) {
      st.fill(1);
      const free = set.freeIndexes(from + i);
      if (free) for (const j of free) {
        st[j] = 0;
        anyFree = true;
      }
      continue;
    }
    for (let j = 0; j < objsPerSlab; j++) {
      const addr = base + BigInt(j * stride);
      if (!whole[i]) {
        const data = set.memory.read(addr, stride);
        if (!data) {
          unreadable++;
          anyFree = true;
          continue; // state stays 0: not counted
        }
        place(i, j, data);
      }
      const a = set.allocated(addr) === false ? 0 : 1;
      st[j] = a;
      if (a === 0) anyFree = true;
    }
  }
  return { state: anyFree ? state : null, unreadable };
}

/**
 * Reads slabs [from, to) into `buffer` (reused across chunks) with their allocation states. A source
 * that reads in bulk (readInto) gets each run of adjacent slabs in one request, and may leave
 * compressed pages packed for the worker to decompress.
 */
function prepareChunk(set: SlabSet, from: number, to: number, heavy: HeavyTable, space: TokenSpace, maxTemplates: number, defer: PageDeferral | null, buffer: SharedArrayBuffer): PreparedChunk {
  const { stride, objsPerSlab } = set.cache;
  const slabBytes = chunkSlabBytes(set);
  const n = to - from;
  const bytes = new Uint8Array(buffer, 0, n * slabBytes);
  const readInto = set.memory.readInto?.bind(set.memory);
  const whole = readInto
    ? wholeSlabs(set, from, n, slabBytes, (i, j, retry) => readInto(set.slabs[from + i], bytes.subarray(i * slabBytes, j * slabBytes), retry ? undefined : defer?.at(i * slabBytes)))
    : new Uint8Array(n);
  if (!readInto) {
    for (let i = 0; i < n; i++) {
      const b = set.memory.read(set.slabs[from + i], slabBytes);
      if (b) {
        bytes.set(b, i * slabBytes);
        whole[i] = 1;
      }
    }
  }
  // Not whole (a page missing or corrupt): object by object, into the same slab layout.
  for (let i = 0; i < n; i++) if (!whole[i] && readInto) bytes.fill(0, i * slabBytes, (i + 1) * slabBytes);
  const { state, unreadable } = slabStates(set, from, whole, (i, j, data) => bytes.set(data, i * slabBytes + j * stride));
  const compressed = defer?.bytes ?? 0;
  const packed = defer?.take() ?? null;
  const packedPages = packed ? packed.index.length / 6 : 0;
  const sourceBytes = n * slabBytes - packedPages * (packed?.pageSize ?? 0) + (packed ? compressed : 0);
  return { job: { buffer, byteOffset: 0, stride, objsPerSlab, slabAddrs: slabAddrsOf(set, from, to), state, heavy, space, maxTemplates, packed, slabBytes }, unreadable, sourceBytes };
}

/**
 * prepareChunk without reading: the source plans the reads (MemoryReader.planRead) and the worker does
 * them straight into the memory it scans. Null when the source cannot plan (then prepareChunk reads).
 */
function planChunk(set: SlabSet, from: number, to: number, heavy: HeavyTable, space: TokenSpace, maxTemplates: number, plan: ReadPlan): PreparedChunk | null {
  const { stride, objsPerSlab } = set.cache;
  const slabBytes = chunkSlabBytes(set);
  const n = to - from;
  let unplannable = false;
  const whole = wholeSlabs(set, from, n, slabBytes, (i, j) => {
    const m = plan.mark();
    const ok = set.memory.planRead!(set.slabs[from + i], (j - i) * slabBytes, plan, i * slabBytes);
    if (ok === null) unplannable = true;
    if (ok !== true) plan.rollback(m);
    return ok === true;
  });
  if (unplannable) {
    plan.take();
    return null;
  }
  // Not whole: zeros, then the objects this thread could read.
  for (let i = 0; i < n; i++) if (!whole[i]) plan.read(i * slabBytes, -1, slabBytes);
  const { state, unreadable } = slabStates(set, from, whole, (i, j, data) => plan.bytes(i * slabBytes + j * stride, data));
  const sourceBytes = plan.fileBytes;
  const job: PlannedChunkJob = { stride, objsPerSlab, slabAddrs: slabAddrsOf(set, from, to), state, heavy, space, maxTemplates, plan: plan.take(), slabBytes };
  return { job, unreadable, sourceBytes };
}

export async function scanSlabs(set: SlabSet, opts: Partial<ScanOptions> = {}): Promise<ScanResult> {
  const o = scanOptions(opts);
  const t0 = performance.now();
  const { stride } = set.cache;
  if (stride % 8 !== 0 || stride <= 0) {
    throw new MemleakError('E_GEOMETRY', `object size ${stride} is not a positive multiple of 8`);
  }
  if (set.slabs.length === 0) throw new MemleakError('E_NO_DATA', `no slab pages of ${set.cache.name} to scan`);
  const phases = o.phases ?? new Phases();
  // Workers start (and warm up their JIT) while this thread learns the heavy tokens.
  const pool = o.workers > 0 && set.slabs.length * set.cache.slabSize >= o.poolMinBytes ? scanPool(o.workers) : null;
  try {
    return await scanWith(set, o, pool, phases, t0);
  } finally {
    await pool?.destroy();
  }
}

async function scanWith(set: SlabSet, o: ScanOptions, pool: Piscina | null, phases: Phases, t0: number): Promise<ScanResult> {
  const { stride, objsPerSlab } = set.cache;
  const space = tokenSpaceOf(set.addressSpace);
  const { learner, memory: kept } = await phases.runAsync('learn', 'objects', (p) => learnHeavy(set, space, o.sampleObjects, p, pool, !pool));
  const heavy = learner.finish();
  // In this thread, slabs the learning read whole are scanned from there, not read again.
  const source = kept ? { ...set, memory: kept } : set;

  const slabsPerChunk = Math.max(1, Math.floor(o.chunkBytes / (stride * objsPerSlab)));
  const tally = new ScanTally(o.maxTemplates);
  let unreadable = 0;
  let chunkIndex = 0;
  const slabBytes = set.cache.slabSize;
  const totalBytes = set.slabs.length * slabBytes;
  // Compressed dumps hand their pages over packed: decompression then runs on the scan workers.
  const defer = set.memory.readInto ? new PageDeferral(PAGE_SIZE) : null;

  const scan = phases.start('scan', 'bytes', totalBytes);
  const reads = phases.start('slab reads', 'bytes', totalBytes);
  reads.note = 'main thread, overlaps scan';
  reads.reports = false;
  const merge = phases.start('merge', 'objects');
  merge.note = 'main thread, overlaps scan';
  merge.reports = false;
  let readMs = 0;
  let mergeMs = 0;
  let corruptPages = 0;
  const absorb = (r: UnpackedChunkResult, index: number, slabs: number) => {
    const tm = performance.now();
    unreadable += r.unreadableObjects ?? 0;
    if (r.corruptPages?.length) {
      corruptPages += r.corruptPages.length;
      set.memory.noteCorruptPages?.(r.corruptPages);
    }
    tally.absorb(r, index);
    mergeMs += performance.now() - tm;
    merge.items += r.templates.length;
    scan.add(slabs * slabBytes, r.objects);
  };
  // Chunk buffers are reused once their chunk is scanned: memory stays at the chunks in flight.
  const spare: SharedArrayBuffer[] = [];
  const chunkBytes = slabsPerChunk * chunkSlabBytes(set);
  // A dump file the workers can read themselves: this thread only plans the reads (see planChunk).
  const plan = source.memory.planRead ? new ReadPlan(PAGE_SIZE) : null;
  let canPlan = plan !== null;
  let planned = false;
  const prepare = (s: number): PreparedChunk => {
    const tr = performance.now();
    const to = Math.min(set.slabs.length, s + slabsPerChunk);
    let c = canPlan ? planChunk(source, s, to, heavy, space, o.maxTemplates, plan!) : null;
    if (c) planned = true;
    else {
      // Chunks are independent: the rest is read here, as before planning.
      canPlan = false;
      c = prepareChunk(source, s, to, heavy, space, o.maxTemplates, defer, spare.pop() ?? new SharedArrayBuffer(chunkBytes));
    }
    readMs += performance.now() - tr;
    reads.add(c.sourceBytes, c.job.slabAddrs.length / 2);
    unreadable += c.unreadable;
    return c;
  };

  if (!pool) {
    for (let s = 0; s < set.slabs.length; s += slabsPerChunk) {
      const { job } = prepare(s);
      const index = chunkIndex++;
      absorb(scanAnyChunk(job), index, job.slabAddrs.length / 2);
      if (!('plan' in job)) spare.push(job.buffer as SharedArrayBuffer);
    }
  } else {
    // Chunks to the pool, and to this thread when every worker has two (ChunkDispatch).
    const dispatch = new ChunkDispatch(pool, o.workers);
    try {
      for (let s = 0; s < set.slabs.length && dispatch.error === null; s += slabsPerChunk) {
        const c = prepare(s);
        const index = chunkIndex++;
        const n = c.job.slabAddrs.length / 2;
        await dispatch.submit(c.job, scanAnyChunk, (r) => {
          absorb(r, index, n);
          if (!('plan' in c.job)) spare.push(c.job.buffer as SharedArrayBuffer);
        });
      }
    } finally {
      await dispatch.drain();
    }
    scan.note = dispatch.note;
  }
  scan.end();
  const rt = reads.end();
  rt.ms = Math.round(readMs * 10) / 10;
  if (planned) rt.note = `planned on the main thread, read ${pool ? 'by the scan workers' : 'on this thread'}${rt.bytes < totalBytes ? ', which decompress; bytes: as stored in the dump' : ''}`;
  else if (defer && rt.bytes < totalBytes) rt.note = `main thread, overlaps scan; ${pool ? 'the scan workers decompress' : 'decompressed on this thread'}; bytes: as stored in the dump`;
  const mt = merge.end();
  mt.ms = Math.round(mergeMs * 10) / 10;
  if (corruptPages) scan.note = [scan.note, `${corruptPages} corrupt pages`].filter(Boolean).join('; ');
  return tally.finish(pool ? o : { ...o, workers: 0 }, { heavy, space, slabs: set.slabs.length, sampled: learner.sampled, objectsFree: tally.skipped - unreadable, objectsUnreadable: unreadable, t0, phases });
}
