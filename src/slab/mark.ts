/**
 * Marking: an outstanding allocation is "marked" when its current contents have the shape of a hot
 * cluster, i.e. it looks like the objects that pile up. The call site with the most marked allocations
 * is the leaker.
 */
import type { MemoryReader } from '../util/memory.js';
import { templateInPlace, templateKey } from '../scan/heavy.js';
import { clusterSimilarity } from '../scan/clusters.js';
import type { ScanResult } from '../scan/scanner.js';
import { tokenizeObject } from '../scan/tokens.js';
import type { OutstandingAlloc } from './outstanding.js';
import type { MarkOptions } from '../request.js';

export interface MarkedAlloc extends OutstandingAlloc {
  /** null: contents not in the memory source. */
  readable: boolean;
  /** Index of the hot cluster it matches, or null. */
  cluster: number | null;
  similarity: number;
}

export function hotClusterIndexes(scan: ScanResult, opts: MarkOptions): number[] {
  const total = scan.stats.objectsScanned || 1;
  const out: number[] = [];
  for (let i = 0; i < Math.min(opts.hotClusters, scan.clusters.length); i++) {
    if (scan.clusters[i].count / total >= opts.hotMinShare) out.push(i);
  }
  return out;
}

export function markAllocations(allocs: OutstandingAlloc[], scan: ScanResult, memory: MemoryReader, stride: number, opts: MarkOptions): MarkedAlloc[] {
  const hot = hotClusterIndexes(scan, opts);
  const hotSet = new Set(hot);
  const nU32 = stride >>> 2;
  const words = new Uint32Array(nU32);
  const wbytes = new Uint8Array(words.buffer);
  const tok = new Uint32Array(nU32);
  return allocs.map((a) => {
    const data = memory.read(a.ptr, stride);
    if (!data) return { ...a, readable: false, cluster: null, similarity: 0 };
    wbytes.set(data);
    tokenizeObject(words, 0, nU32, Number(a.ptr & 0xffffffffn), Number(a.ptr >> 32n), stride, scan.space, tok);
    templateInPlace(tok, scan.heavy);
    const member = scan.clusterOfTemplate.get(templateKey(tok, nU32));
    if (member !== undefined && hotSet.has(member)) return { ...a, readable: true, cluster: member, similarity: 1 };
    let best: number | null = null;
    let bestSim = 0;
    for (const i of hot) {
      const s = clusterSimilarity(scan.clusters[i], tok);
      if (s > bestSim) {
        bestSim = s;
        best = i;
      }
    }
    return { ...a, readable: true, cluster: bestSim >= opts.threshold ? best : null, similarity: bestSim };
  });
}
