/**
 * One chunk job of any kind scanned in the calling thread: what a scan worker does with a job
 * (workers/scan-worker.ts), and what the main thread does when it scans beside the workers
 * (ChunkDispatch in scanner.ts).
 */
import { scanChunk } from './scan-chunk.js';
import { scanFileChunk, type FileChunkJob } from './file-chunk.js';
import { scanPlannedChunk, type PlannedChunkJob } from './planned-chunk.js';
import { unpackChunk, type PackedChunkJob, type UnpackedChunkResult } from './unpack-chunk.js';

export type AnyChunkJob = PackedChunkJob | FileChunkJob | PlannedChunkJob;

export function scanAnyChunk(job: AnyChunkJob): UnpackedChunkResult {
  if ('fd' in job) return scanFileChunk(job);
  if ('plan' in job) return scanPlannedChunk(job);
  // Packed: compressed pages are decoded in place first; pages that do not decode are reported.
  const bad = unpackChunk(job);
  const r: UnpackedChunkResult = scanChunk(job);
  return bad.corruptPages.length ? Object.assign(r, bad) : r;
}
