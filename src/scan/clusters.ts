/**
 * Templates -> clusters. Templates that differ only a little (a flag, a second list state) merge into
 * one cluster, greedily from the most frequent down, as an experienced reader of `rd` output would
 * group them. Similarity is weighted: a fixed non-zero value counts 1, a shared zero 0.25 (zeros are
 * everywhere, as the original's rule knows), a position that varies in both 0.5.
 */
import { isVar } from './tokens.js';
import type { TemplateCount } from './scan-chunk.js';

export interface Cluster {
  /** Member templates, most frequent first; members[0] is the representative template. */
  members: TemplateCount[];
  count: number;
  /** Count-weighted mean similarity of the members to the representative template (0..1). */
  similarity: number;
  /** Lowest-address object of the representative template. */
  repLo: number;
  repHi: number;
}

/** Address of the cluster's representative object. */
export function clusterAddress(c: { repLo: number; repHi: number }): bigint {
  return (BigInt(c.repHi) << 32n) | BigInt(c.repLo);
}

export function templateSimilarity(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let p = 0; p < a.length; p++) {
    const x = a[p];
    const y = b[p];
    const vx = isVar(x);
    const vy = isVar(y);
    if (vx && vy) {
      den += 0.5;
      if (x === y) num += 0.5; // same class of variation
      continue;
    }
    if (x === 0 && y === 0) {
      den += 0.25;
      num += 0.25;
      continue;
    }
    den += 1;
    if (x === y) num += 1;
  }
  return den === 0 ? 1 : num / den;
}

export interface ClusterOptions {
  /** Templates at least this similar to a cluster's representative join it. */
  mergeThreshold: number;
  /** Only the most frequent templates are clustered (the rest are counted as "rare shapes"). */
  maxTemplates: number;
  /** Members kept per cluster for marking and reports. */
  maxMembers: number;
}

export const DEFAULT_CLUSTER: ClusterOptions = { mergeThreshold: 0.75, maxTemplates: 4096, maxMembers: 32 };

export interface ClusterResult {
  clusters: Cluster[];
  /** Every clustered template key -> index into clusters. */
  clusterOfTemplate: Map<number, number>;
  /** Objects in templates beyond maxTemplates. */
  rareObjects: number;
}

function byCountThenAddr(a: TemplateCount, b: TemplateCount): number {
  return b.count - a.count || a.repHi - b.repHi || a.repLo - b.repLo || a.key - b.key;
}

export function buildClusters(templates: Iterable<TemplateCount>, opts: ClusterOptions = DEFAULT_CLUSTER): ClusterResult {
  const sorted = [...templates].sort(byCountThenAddr);
  const head = sorted.slice(0, opts.maxTemplates);
  let rareObjects = 0;
  for (let i = opts.maxTemplates; i < sorted.length; i++) rareObjects += sorted[i].count;
  const clusters: Cluster[] = [];
  const owner = new Map<number, number>();
  for (const t of head) {
    let best: Cluster | null = null;
    let bestIdx = -1;
    let bestSim = opts.mergeThreshold;
    for (let ci = 0; ci < clusters.length; ci++) {
      const c = clusters[ci];
      const s = templateSimilarity(t.tokens, c.members[0].tokens);
      if (s >= bestSim) {
        best = c;
        bestIdx = ci;
        bestSim = s;
        if (s === 1) break;
      }
    }
    owner.set(t.key, best ? bestIdx : clusters.length);
    if (best) {
      best.count += t.count;
      best.similarity += t.count * bestSim;
      if (best.members.length < opts.maxMembers) best.members.push(t);
    } else {
      clusters.push({ members: [t], count: t.count, similarity: t.count, repLo: t.repLo, repHi: t.repHi });
    }
  }
  for (const c of clusters) c.similarity = c.similarity / c.count;
  const order = clusters.map((c, i) => ({ c, i })).sort((a, b) => b.c.count - a.c.count || a.c.repHi - b.c.repHi || a.c.repLo - b.c.repLo);
  const newIndex = new Map<number, number>();
  order.forEach((o, k) => newIndex.set(o.i, k));
  const clusterOfTemplate = new Map<number, number>();
  for (const [key, i] of owner) clusterOfTemplate.set(key, newIndex.get(i)!);
  return { clusters: order.map((o) => o.c), clusterOfTemplate, rareObjects };
}

/** Best similarity of a template to any member of the cluster. */
export function clusterSimilarity(c: Cluster, tpl: ArrayLike<number>): number {
  let best = 0;
  for (const m of c.members) {
    const s = templateSimilarity(tpl, m.tokens);
    if (s > best) best = s;
    if (best === 1) break;
  }
  return best;
}
