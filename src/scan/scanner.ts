/**
 * Scan orchestration: learn heavy tokens from a sample, cut the slabs into chunks in SharedArrayBuffers,
 * run scanChunk on piscina workers (or in this thread), merge the template counts, cluster them.
 * The main thread reads and merges; workers get offsets into shared memory, not copies.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import xxhash from 'xxhash-wasm';
import { MemleakError, isPlainError, type PlainError } from '../errors.js';
import { HeavyLearner, type HeavyTable } from './heavy.js';
import { buildClusters, DEFAULT_CLUSTER, type Cluster, type ClusterOptions } from './clusters.js';
import { mergeChunkResults, scanChunk, type ChunkJob, type ChunkResult, type TemplateCount } from './scan-chunk.js';
import type { SlabSet } from './slab-set.js';
import { tokenSpaceOf, type TokenSpace } from './tokens.js';
import { embeddedWorkerFile } from '../ship/worker-files.js';

export interface ScanOptions {
  /** 0: scan in this thread; N: N piscina workers. */
  workers: number;
  /** Objects sampled to learn heavy tokens. */
  sampleObjects: number;
  /** Bytes of slab memory per chunk handed to a worker. */
  chunkBytes: number;
  /** Distinct templates a worker keeps before counting the rest as overflow. */
  maxTemplates: number;
  cluster: ClusterOptions;
}

export const DEFAULT_SCAN: ScanOptions = {
  workers: Math.max(1, Math.min(availableParallelism(), 8)),
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

/** The scan pool: one piscina worker per --workers. */
export function scanPool(workers: number): Piscina {
  return new Piscina({ filename: workerPath('scan-worker'), minThreads: workers, maxThreads: workers });
}

/** One chunk on the pool; the worker's errors (plain {code, message, context}, or a crash) come back as MemleakError. */
export async function runChunk(pool: Piscina, job: ChunkJob): Promise<ChunkResult> {
  let r: unknown;
  try {
    r = await pool.run(job);
  } catch (e) {
    throw isPlainError(e) ? MemleakError.fromPlain(e) : new MemleakError('E_WORKER', `scan worker failed: ${(e as Error).message}`);
  }
  const res = r as ChunkResult | { error: PlainError };
  if ('error' in res) throw MemleakError.fromPlain(res.error);
  return res;
}

/** The first failure among chunks in flight, rethrown once every chunk has settled (no unhandled rejections). */
export class FirstFailure {
  error: MemleakError | null = null;
  keep = (e: unknown): void => {
    this.error ??= e instanceof MemleakError ? e : new MemleakError('E_WORKER', String(e));
  };
}

interface PreparedChunk {
  job: ChunkJob;
  unreadable: number;
}

/** Reads slabs [from, to) into a fresh shared buffer with their allocation states. */
function prepareChunk(set: SlabSet, from: number, to: number, heavy: HeavyTable, space: TokenSpace, maxTemplates: number): PreparedChunk {
  const { stride, objsPerSlab } = set.cache;
  const slabBytes = stride * objsPerSlab;
  const n = to - from;
  const buffer = new SharedArrayBuffer(n * slabBytes);
  const bytes = new Uint8Array(buffer);
  const slabAddrs = new Uint32Array(2 * n);
  let state: Uint8Array | null = new Uint8Array(n * objsPerSlab);
  let anyFree = false;
  let unreadable = 0;
  for (let i = 0; i < n; i++) {
    const base = set.slabs[from + i];
    slabAddrs[2 * i] = Number(base & 0xffffffffn);
    slabAddrs[2 * i + 1] = Number(base >> 32n);
    const dst = bytes.subarray(i * slabBytes, (i + 1) * slabBytes);
    let whole = set.memory.readInto ? set.memory.readInto(base, dst) : false;
    if (!whole && !set.memory.readInto) {
      const b = set.memory.read(base, slabBytes);
      if (b) {
        dst.set(b);
        whole = true;
      }
    }
    const st = state.subarray(i * objsPerSlab, (i + 1) * objsPerSlab);
    if (whole && set.freeIndexes) {
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
      if (!whole) {
        const data = set.memory.read(addr, stride);
        if (!data) {
          unreadable++;
          anyFree = true;
          continue; // state stays 0: not counted
        }
        dst.set(data, j * stride);
      }
      const a = set.allocated(addr) === false ? 0 : 1;
      st[j] = a;
      if (a === 0) anyFree = true;
    }
  }
  if (!anyFree) state = null;
  return { job: { buffer, byteOffset: 0, stride, objsPerSlab, slabAddrs, state, heavy, space, maxTemplates }, unreadable };
}

function learn(set: SlabSet, space: TokenSpace, sampleObjects: number): HeavyLearner {
  const { stride, objsPerSlab } = set.cache;
  const learner = new HeavyLearner(stride >>> 2, stride, space);
  const total = set.slabs.length * objsPerSlab;
  const step = Math.max(1, Math.floor(total / sampleObjects));
  const words = new Uint32Array(stride >>> 2);
  const wordBytes = new Uint8Array(words.buffer);
  for (let k = 0; k < total; k += step) {
    const s = Math.floor(k / objsPerSlab);
    const j = k % objsPerSlab;
    const addr = set.slabs[s] + BigInt(j * stride);
    if (set.allocated(addr) === false) continue;
    const data = set.memory.read(addr, stride);
    if (!data) continue;
    wordBytes.set(data);
    learner.add(words, 0, Number(addr & 0xffffffffn), Number(addr >> 32n));
  }
  return learner;
}

export async function scanSlabs(set: SlabSet, opts: Partial<ScanOptions> = {}): Promise<ScanResult> {
  const o: ScanOptions = { ...DEFAULT_SCAN, ...opts, cluster: { ...DEFAULT_SCAN.cluster, ...(opts.cluster ?? {}) } };
  const t0 = performance.now();
  const { stride, objsPerSlab } = set.cache;
  if (stride % 8 !== 0 || stride <= 0) {
    throw new MemleakError('E_GEOMETRY', `object size ${stride} is not a positive multiple of 8`);
  }
  if (set.slabs.length === 0) throw new MemleakError('E_NO_DATA', `no slab pages of ${set.cache.name} to scan`);
  const space = tokenSpaceOf(set.addressSpace);
  const learner = learn(set, space, o.sampleObjects);
  const heavy = learner.finish();

  const slabsPerChunk = Math.max(1, Math.floor(o.chunkBytes / (stride * objsPerSlab)));
  const merged = new Map<number, TemplateCount>();
  let objects = 0;
  let skipped = 0;
  let unreadable = 0;
  let overflow = 0;
  const mergeCap = o.maxTemplates * 4;

  // Each chunk's checksum is folded into the hot loop (scan-chunk.ts); xxhash-wasm combines the per-chunk
  // checksums, in slab order, into the memory digest: one call per scan, where it is fast.
  const xx = await xxhash();
  const chunkDigests: [number, number][] = [];
  const absorb = (r: ChunkResult, index: number) => {
    chunkDigests[index] = r.digest;
    objects += r.objects;
    skipped += r.skipped;
    overflow += mergeChunkResults(merged, r, mergeCap);
  };

  if (o.workers <= 0) {
    for (let s = 0; s < set.slabs.length; s += slabsPerChunk) {
      const c = prepareChunk(set, s, Math.min(set.slabs.length, s + slabsPerChunk), heavy, space, o.maxTemplates);
      unreadable += c.unreadable;
      absorb(scanChunk(c.job), chunkDigests.length);
    }
  } else {
    const pool = scanPool(o.workers);
    const failure = new FirstFailure();
    let chunkIndex = 0;
    try {
      const pending: Promise<void>[] = [];
      for (let s = 0; s < set.slabs.length && failure.error === null; s += slabsPerChunk) {
        const c = prepareChunk(set, s, Math.min(set.slabs.length, s + slabsPerChunk), heavy, space, o.maxTemplates);
        unreadable += c.unreadable;
        const index = chunkIndex++;
        pending.push(runChunk(pool, c.job).then((r) => absorb(r, index)).catch(failure.keep));
        // Bounded memory: never more chunks in flight than twice the workers.
        if (pending.length >= 2 * o.workers) await pending.shift();
      }
      await Promise.all(pending);
      if (failure.error) throw failure.error;
    } finally {
      await pool.destroy();
    }
  }
  const { clusters, clusterOfTemplate, rareObjects } = buildClusters(merged.values(), o.cluster);
  return {
    clusters,
    clusterOfTemplate,
    heavy,
    space,
    stats: {
      slabs: set.slabs.length,
      objectsScanned: objects,
      objectsFree: skipped - unreadable,
      objectsUnreadable: unreadable,
      overflowObjects: overflow,
      rareObjects,
      templates: merged.size,
      sampled: learner.sampled,
      workers: o.workers,
      elapsedMs: performance.now() - t0,
      memoryDigest: xx.h64Raw(new Uint8Array(Uint32Array.from(chunkDigests.flat()).buffer)).toString(16).padStart(16, '0'),
    },
  };
}
