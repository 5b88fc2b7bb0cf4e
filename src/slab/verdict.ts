/** Per-call-site aggregation and the verdict: the call site with the most marked allocations. */
import type { MarkedAlloc } from './mark.js';
import type { VerdictRules } from '../request.js';

export interface CallSiteRow {
  function: string;
  unfreed: number;
  marked: number;
  unreadable: number;
  /** The hot cluster most of its marked allocations match. */
  cluster: number | null;
}

/** A young allocation (free-only window) that looks like nothing hot: presumed in flight, not evidence. */
export function presumedInFlight(a: MarkedAlloc): boolean {
  return a.young && a.cluster === null;
}

/**
 * Per call site, sorted as the original's summary: by marked, then unfreed (then name, so the order is
 * stable). Takes the allocations that count, i.e. without the ones presumedInFlight.
 */
export function callSiteRows(marked: MarkedAlloc[]): CallSiteRow[] {
  const rows = new Map<string, CallSiteRow & { byCluster: Map<number, number> }>();
  for (const a of marked) {
    let r = rows.get(a.callSite);
    if (!r) {
      r = { function: a.callSite, unfreed: 0, marked: 0, unreadable: 0, cluster: null, byCluster: new Map() };
      rows.set(a.callSite, r);
    }
    r.unfreed++;
    if (!a.readable) r.unreadable++;
    if (a.cluster !== null) {
      r.marked++;
      r.byCluster.set(a.cluster, (r.byCluster.get(a.cluster) ?? 0) + 1);
    }
  }
  const out: CallSiteRow[] = [];
  for (const r of rows.values()) {
    let best: number | null = null;
    let n = 0;
    for (const [c, k] of r.byCluster) if (k > n || (k === n && best !== null && c < best)) [best, n] = [c, k];
    out.push({ function: r.function, unfreed: r.unfreed, marked: r.marked, unreadable: r.unreadable, cluster: best });
  }
  out.sort((a, b) => b.marked - a.marked || b.unfreed - a.unfreed || a.function.localeCompare(b.function));
  return out;
}

export function chooseVerdict(rows: CallSiteRow[], rules: VerdictRules): { row: CallSiteRow | null; reason: string } {
  const top = rows[0];
  if (!top) return { row: null, reason: 'no allocation of this cache was outstanding at the end of the trace' };
  if (top.marked === 0) return { row: null, reason: 'no outstanding allocation looks like the objects that pile up in the cache' };
  if (top.marked < rules.minMarked) {
    return { row: null, reason: `the most marked call site (${top.function}) has only ${top.marked} marked allocations (< ${rules.minMarked}): trace longer (--duration)` };
  }
  if (top.marked / top.unfreed < rules.minMarkedShare) {
    return { row: null, reason: `${top.function}: only ${top.marked} of ${top.unfreed} unfreed allocations look like the hot objects (< ${rules.minMarkedShare * 100}%)` };
  }
  return { row: top, reason: `${top.function}: ${top.marked} of ${top.unfreed} unfreed allocations look like the hot objects` };
}
