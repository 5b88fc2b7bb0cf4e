/**
 * The standing pile-up: an unreclaimable slab cache that holds far more than any of its peers. This is
 * what the original's check and `slabtop` show a user before any window: a leak that has run for a
 * while stands out by size alone. The window's growth is the better evidence when it is clear; when it
 * is not (a short window, a residual that swings by tens of MiB), the pile-up is the evidence left.
 */

/** The largest unreclaimable cache holds at least PILEUP_RATIO x the next one, and PILEUP_MIN_BYTES and PILEUP_MIN_SHARE of RAM. */
export const PILEUP_RATIO = 4;
export const PILEUP_MIN_BYTES = 4 * 1024 * 1024;
export const PILEUP_MIN_SHARE = 0.002;

export interface Pileup {
  cache: string;
  bytes: number;
  /** Its bytes over those of the next unreclaimable cache. */
  ratio: number;
  next: string | null;
  nextBytes: number;
}

/**
 * Caches SLUB creates with SLAB_RECLAIM_ACCOUNT (dentries, inodes, radix tree nodes, buffer heads,
 * kmalloc-rcl-*): the fallback where /sys/kernel/slab is not at hand (a recording's slabinfo).
 */
const RECLAIMABLE_NAMES = /^(dentry|inode_cache|.*_inode(_cache)?|radix_tree_node|buffer_head|kmalloc-rcl-.*|xfs_ili|xfs_buf|ext4_extent_status|mbcache|nfs_.*_cache)$/;

export function reclaimableByName(name: string): boolean {
  return RECLAIMABLE_NAMES.test(name);
}

export function standingPileup(caches: readonly { name: string; bytes: number }[], memTotal: number, reclaimable: (name: string) => boolean = reclaimableByName): Pileup | null {
  const rows = caches.filter((c) => c.bytes > 0 && !reclaimable(c.name)).sort((a, b) => b.bytes - a.bytes);
  const top = rows[0];
  if (!top) return null;
  const next = rows[1] ?? null;
  const ratio = next ? top.bytes / next.bytes : Infinity;
  if (ratio < PILEUP_RATIO || top.bytes < PILEUP_MIN_BYTES || top.bytes < PILEUP_MIN_SHARE * memTotal) return null;
  return { cache: top.name, bytes: top.bytes, ratio: Math.round(ratio * 10) / 10, next: next?.name ?? null, nextBytes: next?.bytes ?? 0 };
}
