/**
 * A chunk of a raw file that the thread scanning it reads itself: the main thread sends the file's
 * descriptor and the chunk's offset, the worker preads the bytes straight into its wasm kernel's memory
 * (descriptors are per process, so every worker thread can use the main thread's). Nothing is read on
 * the main thread or copied between threads: the second core scans instead of waiting for hand-offs.
 */
import { preadFully } from '../util/read-file.js';
import { scanUnreadChunk, type KnownTemplates, type UnreadChunkJob } from './scan-chunk.js';
import type { ChunkResult } from './chunk-job.js';

export interface FileChunkJob extends UnreadChunkJob {
  fd: number;
  /** For error messages. */
  file: string;
  /** Byte offset of the chunk's first slab in the file. */
  offset: number;
  /** Bytes per slab in the file (PAGE_SIZE << order): slabs are packed to objsPerSlab * stride after the read. */
  slabBytes: number;
}

export function scanFileChunk(job: FileChunkJob, known?: KnownTemplates): ChunkResult {
  const bytes = (job.slabAddrs.length >>> 1) * job.slabBytes;
  return scanUnreadChunk(job, { slabBytes: job.slabBytes, fill: (into) => preadFully(job.fd, into.subarray(0, bytes), job.offset, job.file) }, known);
}
