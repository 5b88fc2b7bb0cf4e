/**
 * Churn vs growth. A busy kernel keeps populations of long-lived objects and refreshes them in place:
 * allocate a new object, copy, publish, free the old one (directly, or later from an RCU callback or
 * kfree_rcu's batch work). In a trace window such a call site leaves nearly every allocation
 * outstanding -- the objects it frees were allocated before the window -- and its objects look exactly
 * like a large hot cluster. What tells churn from growth is the other half: frees, during the window,
 * of objects of the same shape. The trace names the freed address; the object's shape is in memory,
 * since a freed slot keeps its old contents until it is reused (SLUB writes only its free pointer, an
 * RCU free also its rcu_head). So per hot cluster: allocations marked in the window against frees in
 * the window of objects of its shape; a cluster that does not grow is replacing, not leaking.
 */
import type { MemoryReader } from '../util/memory.js';
import { templateInPlace } from '../scan/heavy.js';
import { isVar, tokenizeObject } from '../scan/tokens.js';
import type { ScanResult } from '../scan/scanner.js';
import type { AllocationOracle } from '../scan/slab-set.js';
import { floorIndex } from '../util/sorted.js';
import { DEFAULTS, type ChurnRules } from '../request.js';

/** A free in the window of an object that was allocated before it (its shape is only in memory). */
export interface PreWindowFree {
  ptr: bigint;
  callSite: string;
  ts: number;
  /** The address was allocated again later in the window: the slot now holds another object. */
  reusedLater: boolean;
}

/** Functions that free on behalf of a caller after an RCU grace period (kernel/rcu/tree.c, srcutree.c). */
const RCU_FREERS = /^(rcu_do_batch|rcu_core|kfree_rcu_work|kvfree_rcu_bulk|kvfree_rcu_list|rcu_cblist_|srcu_invoke_callbacks|kvfree_call_rcu)/;

export function isRcuFreeSite(fn: string): boolean {
  return RCU_FREERS.test(fn);
}

export interface FreeSiteCount {
  function: string;
  /** Its frees of objects of this shape in the window: seen, scaled to all its frees (see clusterGrowth). */
  frees: number;
  /** Freed slots that still show this shape. */
  seen: number;
  /** The free runs from RCU (callback or kfree_rcu batch), not from the code that dropped the object. */
  rcu: boolean;
}

export interface ClusterGrowth {
  /** Index into the scan's clusters (rank - 1). */
  cluster: number;
  rank: number;
  /** Outstanding allocations of the window that look like this cluster. */
  allocs: number;
  /** Frees in the window of objects (allocated before it) whose slot still shows this cluster's shape. */
  frees: number;
  net: number;
  growing: boolean;
  freeSites: FreeSiteCount[];
  reason: string;
  /** Growing with no free of its shape seen, yet this many free slots untouched by the window hold its shape. */
  staleFreeSlots?: number;
}

export interface ChurnResult {
  clusters: ClusterGrowth[];
  /** Frees in the window of objects allocated before it that lie in this cache's slabs. */
  preWindowFrees: number;
  /** ...whose slot was allocated again (in the trace, or at dump time): their old shape is gone. */
  reused: number;
  /** ...whose memory is not in the source. */
  unreadable: number;
  /** ...whose slot was zeroed since (its slab freed and made again). */
  wiped: number;
  /** ...whose old contents match no hot cluster. */
  otherShapes: number;
}

/** u32 positions where the cluster's representative holds a fixed, non-zero token: what identifies its shape. */
function identityPositions(t: ArrayLike<number>): number[] {
  const out: number[] = [];
  for (let p = 0; p < t.length; p++) if (t[p] !== 0 && !isVar(t[p])) out.push(p);
  return out;
}

export interface ChurnInput {
  scan: ScanResult;
  hot: number[];
  memory: MemoryReader;
  allocated: AllocationOracle;
  slabs: readonly bigint[] | BigUint64Array;
  /** The SlabSet's free object indexes per slab (dumps): the stale-slot count visits only those. */
  freeIndexes?: (slabIndex: number) => readonly number[] | null;
  slabSize: number;
  stride: number;
  objsPerSlab: number;
  /** Every address an allocation or free event of the window names (hex, as the trace prints it). */
  traced: ReadonlySet<string>;
  /** The source knows which objects are free (a dump's freelists): the stale-slot check needs it. */
  freeSlotsKnown: boolean;
}

/** Cluster allocation counts: marked (counted) outstanding allocations of the window per hot cluster. */
export function clusterGrowth(allocsByCluster: Map<number, number>, frees: PreWindowFree[], input: ChurnInput, rules: ChurnRules = DEFAULTS.churn): ChurnResult {
  const { scan, hot, memory, stride } = input;
  const nU32 = stride >>> 2;
  const words = new Uint32Array(nU32);
  const wbytes = new Uint8Array(words.buffer);
  const tok = new Uint32Array(nU32);
  // Per hot cluster, per member template: the identity positions (members differ in which words are fixed).
  const ident = new Map<number, { tokens: ArrayLike<number>; pos: number[] }[]>();
  for (const i of hot) {
    const ms = scan.clusters[i].members.map((m) => ({ tokens: m.tokens, pos: identityPositions(m.tokens) })).filter((m) => m.pos.length >= rules.minIdentityWords);
    if (ms.length) ident.set(i, ms);
  }
  // Per free call site: its frees of this cache in the window, and what its readable slots show.
  const bySite = new Map<string, { frees: number; sample: number; shapes: Map<number, number> }>();
  let inCache = 0;
  let reused = 0;
  let unreadable = 0;
  let wiped = 0;
  let other = 0;
  const seen = new Set<bigint>();
  for (const f of frees) {
    if (!inSlabs(f.ptr, input)) continue;
    if (seen.has(f.ptr)) continue; // freed twice in the window: the slot's contents show the last object only
    seen.add(f.ptr);
    inCache++;
    let site = bySite.get(f.callSite);
    if (!site) bySite.set(f.callSite, (site = { frees: 0, sample: 0, shapes: new Map() }));
    site.frees++;
    if (f.reusedLater || input.allocated(f.ptr) === true) {
      reused++;
      continue;
    }
    const data = memory.read(f.ptr, stride);
    if (!data) {
      unreadable++;
      continue;
    }
    wbytes.set(data);
    if (isWiped(words)) {
      // A slab freed whole and made again (init_on_alloc zeroes it): the old contents are gone.
      wiped++;
      continue;
    }
    tokenizeObject(words, 0, nU32, Number(f.ptr & 0xffffffffn), Number(f.ptr >> 32n), stride, scan.space, tok);
    templateInPlace(tok, scan.heavy);
    let best = -1;
    let bestScore = 0;
    for (const [i, ms] of ident) {
      let score = 0;
      for (const m of ms) {
        let hit = 0;
        for (const p of m.pos) if (tok[p] === m.tokens[p]) hit++;
        score = Math.max(score, hit / m.pos.length);
      }
      if (score > bestScore) [best, bestScore] = [i, score];
    }
    site.sample++;
    if (best < 0 || bestScore < rules.freedMatch) {
      other++;
      continue;
    }
    site.shapes.set(best, (site.shapes.get(best) ?? 0) + 1);
  }
  // A slot freed early in the window is often taken again before the dump (SLUB hands out the last
  // freed slot first), so not every freed object's old contents survive. A free call site frees objects
  // of one or a few shapes, whatever became of their slots: the shapes its surviving slots show stand
  // for all its frees, once there are rules.minSample of them.
  const freesOf = new Map<number, FreeSiteCount[]>();
  for (const [fn, st] of bySite) {
    for (const [c, n] of st.shapes) {
      const est = st.sample >= rules.minSample ? Math.round((st.frees * n) / st.sample) : n;
      let l = freesOf.get(c);
      if (!l) freesOf.set(c, (l = []));
      l.push({ function: fn, frees: est, seen: n, rcu: isRcuFreeSite(fn) });
    }
  }
  const clusters: ClusterGrowth[] = hot.map((i) => {
    const allocs = allocsByCluster.get(i) ?? 0;
    const sites = (freesOf.get(i) ?? []).sort((a, b) => b.frees - a.frees || a.function.localeCompare(b.function));
    const frees = sites.reduce((s, x) => s + x.frees, 0);
    const net = allocs - frees;
    const growing = !(allocs > 0 && frees >= rules.balancedShare * allocs);
    const via = sites.length ? ` (freed by ${sites.slice(0, 2).map((s) => `${s.function}${s.rcu ? ' via RCU' : ''}`).join(', ')})` : '';
    const reason = allocs === 0 ? 'no outstanding allocation of the window looks like it'
      : growing ? `${allocs} allocations of its shape outstanding, ${frees} objects of its shape freed: grows by ${net}`
      : `${frees} objects of its shape freed in the window${via} against ${allocs} allocated: replaced in place, net ${net >= 0 ? '+' : ''}${net}`;
    return { cluster: i, rank: i + 1, allocs, frees, net, growing, freeSites: sites.slice(0, 5), reason };
  });
  // Frees the trace does not show: on 6.1 kfree_rcu() frees mostly in batches through kfree_bulk(),
  // which has no kmem event. A growing cluster none of whose frees were seen, while free slots the
  // window never touched hold its shape, may be churn whose frees are invisible: said, not decided.
  const unseen = clusters.filter((g) => g.growing && g.allocs > 0);
  if (unseen.length && input.freeSlotsKnown) {
    const stale = staleFreeSlots(input, new Map(unseen.map((g) => [g.cluster, ident.get(g.cluster) ?? []])), rules);
    for (const g of unseen) {
      const n = stale.get(g.cluster) ?? 0;
      if (n < rules.minSample) continue;
      g.staleFreeSlots = n;
      g.reason += `; yet ${n} free slots the window never touched hold its shape: its frees may not be in the trace (kfree_rcu() batches and kmem_cache_free_bulk() have no kmem event), so the growth may be overstated`;
    }
  }
  return { clusters, preWindowFrees: inCache, reused, unreadable, wiped, otherShapes: other };
}

/** Free slots of the cache, untouched by the window's events, per cluster whose identity words they match. */
function staleFreeSlots(input: ChurnInput, ident: Map<number, { tokens: ArrayLike<number>; pos: number[] }[]>, rules: ChurnRules): Map<number, number> {
  const { scan, memory, stride } = input;
  const nU32 = stride >>> 2;
  const words = new Uint32Array(nU32);
  const wbytes = new Uint8Array(words.buffer);
  const tok = new Uint32Array(nU32);
  const out = new Map<number, number>();
  for (let s = 0; s < input.slabs.length; s++) {
    const base = input.slabs[s];
    // A dump's walk knows each slab's free slots: asking the oracle for every object (40 M on a big
    // dump, a bigint and a search each) cost 3.6 s of a 7.4 s analysis to find the few free ones.
    const free = input.freeIndexes ? input.freeIndexes(s) : null;
    if (input.freeIndexes && !free) continue;
    const count = free ? free.length : input.objsPerSlab;
    for (let k = 0; k < count; k++) {
      const i = free ? free[k] : k;
      if (!Number.isInteger(i) || i < 0 || i >= input.objsPerSlab) continue;
      const addr = base + BigInt(i * stride);
      if (input.allocated(addr) !== false || input.traced.has(addr.toString(16).padStart(16, '0'))) continue;
      const data = memory.read(addr, stride);
      if (!data) continue;
      wbytes.set(data);
      if (isWiped(words)) continue;
      tokenizeObject(words, 0, nU32, Number(addr & 0xffffffffn), Number(addr >> 32n), stride, scan.space, tok);
      templateInPlace(tok, scan.heavy);
      for (const [c, ms] of ident) {
        if (ms.some((m) => m.pos.filter((p) => tok[p] === m.tokens[p]).length >= rules.freedMatch * m.pos.length)) {
          out.set(c, (out.get(c) ?? 0) + 1);
          break;
        }
      }
    }
  }
  return out;
}

/** All zero but for at most one 8-byte word (SLUB's free pointer). */
function isWiped(words: Uint32Array): boolean {
  let nonZero = 0;
  for (let i = 0; i < words.length; i += 2) if (words[i] !== 0 || words[i + 1] !== 0) nonZero++;
  return nonZero <= 1;
}

function inSlabs(ptr: bigint, input: ChurnInput): boolean {
  const i = floorIndex(input.slabs, ptr);
  if (i < 0) return false;
  const off = ptr - input.slabs[i];
  return off < BigInt(input.slabSize) && off % BigInt(input.stride) === 0n;
}
