/** piscina entry point: scans one chunk of slab memory. Errors return as plain {code, message, context}. */
import { MemleakError } from '../src/errors.js';
import { warmUpScanChunk } from '../src/scan/scan-chunk.js';
import { scanAnyChunk, type AnyChunkJob } from '../src/scan/any-chunk.js';
import { scanFileRange, type FileRangeJob, type FileRangeResult } from '../src/scan/file-range.js';
import { unpackOnly, type UnpackedChunkResult, type UnpackJob, type UnpackResult } from '../src/scan/unpack-chunk.js';

warmUpScanChunk(); // the JS loop's, where the wasm kernel is not available

export default function scanWorker(job: AnyChunkJob | UnpackJob | FileRangeJob): UnpackedChunkResult | UnpackResult | FileRangeResult | { error: unknown } {
  try {
    if ('unpackOnly' in job) return unpackOnly(job);
    if ('counters' in job) return scanFileRange(job);
    return scanAnyChunk(job);
  } catch (e) {
    if (e instanceof MemleakError) return { error: e.toPlain() };
    return { error: { code: 'E_WORKER', message: (e as Error).message ?? String(e), context: {} } };
  }
}
