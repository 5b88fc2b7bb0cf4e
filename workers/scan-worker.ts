/** piscina entry point: scans one chunk of slab memory. Errors return as plain {code, message, context}. */
import { MemleakError } from '../src/errors.js';
import { scanChunk, warmUpScanChunk, type ChunkJob } from '../src/scan/scan-chunk.js';

warmUpScanChunk();

export default function scanWorker(job: ChunkJob) {
  try {
    return scanChunk(job);
  } catch (e) {
    if (e instanceof MemleakError) return { error: e.toPlain() };
    return { error: { code: 'E_WORKER', message: (e as Error).message ?? String(e), context: {} } };
  }
}
