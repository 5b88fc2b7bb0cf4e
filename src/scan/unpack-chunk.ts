/**
 * The step before a chunk is scanned when its pages arrive compressed (kdump): decompress them into the
 * chunk's shared buffer where they belong, then pack the slabs at objsPerSlab * stride as scanChunk
 * reads them. Runs in the scan worker (or the main thread with --workers 0), so decompression is spread
 * over the workers instead of serializing on the thread that reads the file. A page that does not
 * decompress is never scanned as zeros: its objects are marked not counted and the page is reported.
 */
import { unpackPages, type PackedPages, type UnpackFailure } from '../dump/decompress.js';
import { runPlan, type PlannedReads } from '../dump/read-plan.js';
import { packSlabs, type ChunkJob, type ChunkResult } from './chunk-job.js';

export interface PackedChunkJob extends ChunkJob {
  /** Compressed pages to decompress into `buffer` first. */
  packed?: PackedPages | null;
  /** Bytes per slab in `buffer` as read (PAGE_SIZE << order); slabs are packed to objsPerSlab * stride after unpacking. */
  slabBytes?: number;
}

export interface CorruptPage {
  pfn: number;
  offset: number;
  why: string;
}

export interface UnpackedChunkResult extends ChunkResult {
  corruptPages?: CorruptPage[];
  /** Objects not counted because their page did not decompress. */
  unreadableObjects?: number;
}

/** Makes `job` scannable in place; returns the pages that failed and the objects they hold. */
export function unpackChunk(job: PackedChunkJob): { corruptPages: CorruptPage[]; unreadableObjects: number } {
  const { stride, objsPerSlab } = job;
  const usable = stride * objsPerSlab;
  const slabBytes = job.slabBytes ?? usable;
  const slabs = job.slabAddrs.length / 2;
  const bytes = new Uint8Array(job.buffer, job.byteOffset, slabs * slabBytes);
  const failed = job.packed ? unpackPages(job.packed, bytes) : [];
  let unreadableObjects = 0;
  if (failed.length) {
    job.state ??= new Uint8Array(slabs * objsPerSlab).fill(1);
    unreadableObjects = markFailedPages(job.state, failed, { stride, objsPerSlab, slabBytes, pageSize: job.packed!.pageSize });
  }
  packSlabs(bytes, slabs, slabBytes, usable);
  job.packed = null;
  return { corruptPages: corruptPagesOf(failed), unreadableObjects };
}

/** Pages that did not decompress, as a chunk result reports them. */
export function corruptPagesOf(failed: UnpackFailure[]): CorruptPage[] {
  return failed.map((f) => ({ pfn: f.pfn, offset: f.fileOffset, why: f.why }));
}

/**
 * Marks every object that overlaps a failed page not counted in `state` (slabs of slabBytes as read);
 * returns how many were counted before.
 */
export function markFailedPages(state: Uint8Array, failed: UnpackFailure[], g: { stride: number; objsPerSlab: number; slabBytes: number; pageSize: number }): number {
  const { stride, objsPerSlab, slabBytes, pageSize } = g;
  let unreadableObjects = 0;
  for (const f of failed) {
    const slab = Math.floor(f.dstOffset / slabBytes);
    const within = f.dstOffset - slab * slabBytes;
    // Every object that overlaps the page.
    const first = Math.floor(within / stride);
    const last = Math.min(objsPerSlab - 1, Math.floor((within + pageSize - 1) / stride));
    for (let j = first; j <= last; j++) {
      if (state[slab * objsPerSlab + j]) unreadableObjects++;
      state[slab * objsPerSlab + j] = 0;
    }
  }
  return unreadableObjects;
}

/** A learning batch: pages to decompress into `buffer`, nothing to scan. */
export interface UnpackJob {
  unpackOnly: true;
  packed?: PackedPages;
  /** Reads to do first (dump/read-plan.ts): the worker preads (and decodes) the pages itself. */
  plan?: PlannedReads;
  buffer: SharedArrayBuffer;
}

export interface UnpackResult {
  /** Destination offsets of the pages that did not decompress. */
  failedOffsets: number[];
  corruptPages: CorruptPage[];
}

export function unpackOnly(job: UnpackJob): UnpackResult {
  const bytes = new Uint8Array(job.buffer);
  const failed = [...(job.plan ? runPlan(job.plan, bytes) : []), ...(job.packed ? unpackPages(job.packed, bytes) : [])];
  return { failedOffsets: failed.map((f) => f.dstOffset), corruptPages: corruptPagesOf(failed) };
}
