/**
 * The suspect cache, the one slab cache a slab analysis reads: from /proc (live: slabinfo rows and their
 * growth) or from a dump's cache summary (no --cache given).
 */
import { SLAB_RECLAIM_ACCOUNT, type CacheSummary } from '../kernel/slub.js';
import type { CacheGrowth } from './leak.js';


/**
 * The suspect cache: the original takes the unreclaimable cache with the most objects; with growth
 * known, the cache that grew most wins. `reclaimable` names caches to skip (SLAB_RECLAIM_ACCOUNT).
 */
export function suspectCache(rows: CacheGrowth[], reclaimable: (name: string) => boolean): CacheGrowth | null {
  const cands = rows.filter((r) => !reclaimable(r.name) && r.activeObjs > 0);
  const grown = cands.filter((r) => (r.growthBytes ?? 0) > 0).sort((a, b) => b.growthBytes! - a.growthBytes!);
  if (grown.length) return grown[0];
  return cands.sort((a, b) => b.activeObjs - a.activeObjs)[0] ?? null;
}

/** From a dump: the unreclaimable cache with the most allocated bytes. */
export function chooseSuspectCache(rows: CacheSummary[]): CacheSummary | null {
  let best: CacheSummary | null = null;
  for (const r of rows) {
    if (r.cache.flags & SLAB_RECLAIM_ACCOUNT) continue; // reclaimable caches are not leak suspects
    if (!best || r.allocated * r.cache.size > best.allocated * best.cache.size) best = r;
  }
  return best;
}
