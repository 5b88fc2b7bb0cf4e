/** piscina entry point: scans one chunk of slab memory. Errors return as plain {code, message, context}. */
import { MemleakError } from '../src/errors.js';
import { scanChunk, warmUpScanChunk } from '../src/scan/scan-chunk.js';
import { scanFileChunk, type FileChunkJob } from '../src/scan/file-chunk.js';
import { scanPlannedChunk, type PlannedChunkJob } from '../src/scan/planned-chunk.js';
import { unpackChunk, unpackOnly, type PackedChunkJob, type UnpackedChunkResult, type UnpackJob, type UnpackResult } from '../src/scan/unpack-chunk.js';

warmUpScanChunk();

export default function scanWorker(job: PackedChunkJob | UnpackJob | FileChunkJob | PlannedChunkJob): UnpackedChunkResult | UnpackResult | { error: unknown } {
  try {
    if ('unpackOnly' in job) return unpackOnly(job);
    if ('fd' in job) return scanFileChunk(job);
    if ('plan' in job) return scanPlannedChunk(job);
    const bad = unpackChunk(job);
    const r: UnpackedChunkResult = scanChunk(job);
    if (bad.corruptPages.length) Object.assign(r, bad);
    return r;
  } catch (e) {
    if (e instanceof MemleakError) return { error: e.toPlain() };
    return { error: { code: 'E_WORKER', message: (e as Error).message ?? String(e), context: {} } };
  }
}
