/** Per-call-site aggregation and the verdict: the call site with the most marked allocations. */
import type { MarkedAlloc } from './mark.js';
import type { VerdictRules } from '../request.js';

export interface CallSiteRow {
  function: string;
  unfreed: number;
  /** Outstanding allocations marked as leaking: they look like a hot cluster that grows in the window. */
  marked: number;
  unreadable: number;
  /** The hot cluster most of its look-alike allocations (marked or replacing) match. */
  cluster: number | null;
  /** Outstanding allocations that look like a hot cluster which does not grow: churn, not growth. */
  replacing: number;
  /** Why the site replaces rather than leaks (null unless most of its look-alikes are replacing). */
  replacingReason: string | null;
}

/** A young allocation (free-only window) that looks like nothing hot: presumed in flight, not evidence. */
export function presumedInFlight(a: MarkedAlloc): boolean {
  return a.young && a.cluster === null;
}

/**
 * Per call site, sorted as the original's summary: by marked, then unfreed (then name, so the order is
 * stable). Takes the allocations that count, i.e. without the ones presumedInFlight. An allocation of a
 * cluster that does not grow (`notGrowing`, churn.ts) is replacing, not marked.
 */
export function callSiteRows(marked: MarkedAlloc[], notGrowing: (cluster: number) => string | null = () => null): CallSiteRow[] {
  const rows = new Map<string, CallSiteRow & { byCluster: Map<number, number> }>();
  for (const a of marked) {
    let r = rows.get(a.callSite);
    if (!r) {
      r = { function: a.callSite, unfreed: 0, marked: 0, unreadable: 0, cluster: null, replacing: 0, replacingReason: null, byCluster: new Map() };
      rows.set(a.callSite, r);
    }
    r.unfreed++;
    if (!a.readable) r.unreadable++;
    if (a.cluster !== null) {
      if (notGrowing(a.cluster) !== null) r.replacing++;
      else r.marked++;
      r.byCluster.set(a.cluster, (r.byCluster.get(a.cluster) ?? 0) + 1);
    }
  }
  const out: CallSiteRow[] = [];
  for (const r of rows.values()) {
    let best: number | null = null;
    let n = 0;
    for (const [c, k] of r.byCluster) if (k > n || (k === n && best !== null && c < best)) [best, n] = [c, k];
    const why = r.replacing > r.marked && best !== null ? notGrowing(best) : null;
    out.push({ function: r.function, unfreed: r.unfreed, marked: r.marked, unreadable: r.unreadable, cluster: best, replacing: r.replacing, replacingReason: why });
  }
  out.sort((a, b) => b.marked - a.marked || b.unfreed - a.unfreed || a.function.localeCompare(b.function));
  return out;
}

export interface LeakerChoice {
  /** Every leaking call site, one per hot cluster, by growth of its cluster (then marked). */
  rows: CallSiteRow[];
  reason: string;
}

/**
 * The leakers: call sites that pass the rules, each with a cluster of its own (a second site of an
 * already named cluster adds nothing the user needs), ordered by how much their cluster grew in the
 * window. The first is the verdict the original would give.
 */
export function chooseLeakers(rows: CallSiteRow[], rules: VerdictRules, growthOf: (cluster: number) => number = () => 0, doubtful: (cluster: number) => boolean = () => false): LeakerChoice {
  const passes = (r: CallSiteRow) => r.cluster !== null && r.marked >= rules.minMarked && r.marked / r.unfreed >= rules.minMarkedShare;
  const byCluster = new Map<number, CallSiteRow>();
  for (const r of rows) if (passes(r) && !byCluster.has(r.cluster!)) byCluster.set(r.cluster!, r);
  // A cluster whose frees may be untraced (churn.ts: staleFreeSlots) goes after those whose growth is sure.
  const d = (r: CallSiteRow) => (doubtful(r.cluster!) ? 1 : 0);
  const leakers = [...byCluster.values()].sort((a, b) => d(a) - d(b) || growthOf(b.cluster!) - growthOf(a.cluster!) || b.marked - a.marked || a.function.localeCompare(b.function));
  const replacing = rows.filter((r) => r.replacingReason !== null);
  const also = replacing.length ? `; replacing in place, not leaking: ${replacing.map((r) => r.function).join(', ')}` : '';
  if (leakers.length) {
    const said = leakers.map((r) => `${r.function}: ${r.marked} of ${r.unfreed} unfreed allocations look like the hot objects`).join('; ');
    return { rows: leakers, reason: said + also };
  }
  const top = rows[0];
  if (!top) return { rows: [], reason: 'no allocation of this cache was outstanding at the end of the trace' };
  if (top.marked === 0) {
    if (replacing.length) return { rows: [], reason: `the outstanding allocations that look like the hot objects are churn, not growth: ${replacing.map((r) => `${r.function} (${r.replacingReason})`).join('; ')}` };
    return { rows: [], reason: 'no outstanding allocation looks like the objects that pile up in the cache' };
  }
  if (top.marked < rules.minMarked) {
    return { rows: [], reason: `the most marked call site (${top.function}) has only ${top.marked} marked allocations (< ${rules.minMarked}): trace longer (--duration)${also}` };
  }
  return { rows: [], reason: `${top.function}: only ${top.marked} of ${top.unfreed} unfreed allocations look like the hot objects (< ${rules.minMarkedShare * 100}%)${also}` };
}
