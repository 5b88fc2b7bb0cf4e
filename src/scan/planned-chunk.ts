/**
 * A chunk of a dump that the thread scanning it reads itself (dump/read-plan.ts): the main thread
 * plans which bytes of the dump file go where, the worker preads them straight into its wasm kernel's
 * memory and decodes the stored (compressed) pages there, then scans in place. Reading and
 * decompression run on every scan worker; the main thread only walks metadata and merges.
 */
import { runPlan, type PlannedReads } from '../dump/read-plan.js';
import { scanUnreadChunk, type UnreadChunkJob } from './scan-chunk.js';
import { corruptPagesOf, markFailedPages, type UnpackedChunkResult } from './unpack-chunk.js';

export interface PlannedChunkJob extends UnreadChunkJob {
  plan: PlannedReads;
  /** Bytes per slab as read (PAGE_SIZE << order): slabs are packed to objsPerSlab * stride after the read. */
  slabBytes: number;
}

export function scanPlannedChunk(job: PlannedChunkJob): UnpackedChunkResult {
  const { objsPerSlab, stride, slabBytes, plan } = job;
  const nSlabs = job.slabAddrs.length >>> 1;
  // A stored page may not decode: its objects are then marked not counted in the state the scan reads
  // (the same array object, so the kernel sees the marks made while filling).
  if (plan.pages.length && !job.state) job.state = new Uint8Array(nSlabs * objsPerSlab).fill(1);
  let bad: Pick<UnpackedChunkResult, 'corruptPages' | 'unreadableObjects'> | null = null;
  const r: UnpackedChunkResult = scanUnreadChunk(job, {
    slabBytes,
    fill: (into) => {
      const failed = runPlan(plan, into.subarray(0, nSlabs * slabBytes));
      if (failed.length) {
        const unreadableObjects = markFailedPages(job.state!, failed, { stride, objsPerSlab, slabBytes, pageSize: plan.pageSize });
        bad = { corruptPages: corruptPagesOf(failed), unreadableObjects };
      }
    },
  });
  if (bad) Object.assign(r, bad);
  return r;
}
