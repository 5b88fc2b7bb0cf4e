/**
 * `src/check/`: the /proc check over a window: parsers (proc.ts, vmallocinfo.ts), these rules, the
 * suspect cache (suspect.ts), the kinds worth a second look (plausible.ts), units (units.ts). Below
 * the leak kinds, above kernel/ and input/.
 *
 * The leak rules of the quick check (is kernel memory leaking, and which kind) over snapshots of
 * /proc/meminfo, /proc/slabinfo and /proc/vmallocinfo (parsed in proc.ts). The original's absolute rule (SYSAK.md) misses leaks on small machines, so a
 * kind also counts as leaking when it grew over the window by at least GROWTH_MIN_BYTES and
 * GROWTH_MIN_SHARE of MemTotal.
 */
import type { SlabinfoRow } from '../input/slabinfo.js';
import type { Snapshot } from './proc.js';
import { GiB, MiB, mib } from './units.js';
import { standingPileup, type Pileup } from './pileup.js';

/** Growth over the window that counts as a leak: 4 MiB and 0.5% of RAM (libbpf-tools style: defaults next to their use). */
export const GROWTH_MIN_BYTES = 4 * MiB;
export const GROWTH_MIN_SHARE = 0.005;

export type LeakKind = 'slab' | 'vmalloc' | 'page';

export interface KindUsage {
  kind: LeakKind;
  bytes: number;
  growth: number | null;
  leaking: boolean;
  why: string;
}

export interface CheckResult {
  memTotal: number;
  kinds: KindUsage[];
  /** The first leaking kind in the original's order (page, slab, vmalloc), or null. */
  leak: LeakKind | null;
  caches: CacheGrowth[];
  /** How `leak` was chosen: our own footprint left out, the standing pile-up, and why. */
  decision: Decision;
  /** The per-second samples the decision read (live runs, --from a --save directory): memory over the window. */
  series?: UsageSeries;
}

/** One analysis of a kind that `--type auto` ran (src/analyze.ts), and why. */
export interface KindAnalysis {
  kind: LeakKind;
  why: string;
  /** The function it named, or null. */
  verdict: string | null;
}

export interface Decision {
  /** Bytes of allocPages growth that were this tool's own (page tables, thread stacks, ring buffers), left out; null offline. */
  footprint: number | null;
  /** An unreclaimable cache that holds far more than its peers (check/pileup.ts), or null. */
  pileup: Pileup | null;
  why: string;
}

/** What the caller knows beyond the snapshots: our own footprint over the window, and which caches are reclaimable. */
export interface CheckContext {
  footprint?: number | null;
  reclaimable?: (name: string) => boolean;
}

/**
 * allocPages growth below this (and below PAGE_AMBIGUOUS_SHARE of RAM) does not outweigh a standing
 * pile-up: the residual swung by +14 to -24 MiB between first runs in the harness guest (issue 12)
 * with nothing leaking pages, as the per-CPU page lists fill and drain.
 */
export const PAGE_AMBIGUOUS_BYTES = 32 * MiB;
export const PAGE_AMBIGUOUS_SHARE = 0.01;

export interface CacheGrowth {
  name: string;
  objsize: number;
  activeObjs: number;
  bytes: number;
  growthObjs: number | null;
  growthBytes: number | null;
}

function usage(s: Snapshot): Record<LeakKind, number> {
  const g = (k: string) => s.meminfo.get(k) ?? 0;
  const vm = s.vmallocBytes ?? 0;
  // allocPages = MemTotal - MemFree - Active - Inactive - Mlocked - Slab - hugepages - vmalloc (SYSAK.md)
  const huge = g('HugePages_Total') * g('Hugepagesize');
  const page = g('MemTotal') - g('MemFree') - g('Active') - g('Inactive') - g('Mlocked') - g('Slab') - huge - vm;
  return { page: Math.max(0, page), slab: g('SUnreclaim'), vmalloc: vm };
}

/** Usage of the three kinds sampled through a window (live mode samples every second). */
export interface UsageSeries {
  /** Sample times, Date.now() milliseconds. */
  t: number[];
  page: number[];
  slab: number[];
  vmalloc: number[];
}

/**
 * Steady growth over one-second samples: a trend, not a single jump and not noise. Three tests:
 * the median of the last third exceeds the median of the first third by STEADY_MIN_BYTES (medians shrug
 * off the per-CPU page lists' bursts); Kendall's tau >= STEADY_TAU (the series mostly rises, whatever the
 * noise); and no single step carries more than STEADY_MAX_STEP of the growth (one big allocation is one step).
 */
export const STEADY_MIN_BYTES = 1 << 20;
export const STEADY_TAU = 0.5;
export const STEADY_MAX_STEP = 0.6;
export const STEADY_MIN_SAMPLES = 6;

export function usageOf(s: { meminfo: Map<string, number>; vmallocBytes: number | null }): Record<LeakKind, number> {
  return usage({ ...s, slabinfo: null, at: 0 });
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * A leak grows in step after step; churn goes up and down. With samples every second a leak is seen
 * long before it reaches the absolute thresholds: 240 KiB/s of vmalloc on a 2 GiB machine is 4.8 MiB in
 * 20 s, under the 0.5%-of-RAM growth rule, but it rises the whole time.
 */
export function steadyGrowth(values: number[]): { growth: number; tau: number } | null {
  const n = values.length;
  if (n < STEADY_MIN_SAMPLES) return null;
  const third = Math.max(2, Math.floor(n / 3));
  const growth = median(values.slice(n - third)) - median(values.slice(0, third));
  if (growth < STEADY_MIN_BYTES) return null;
  let concordant = 0;
  let discordant = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      if (values[j] > values[i]) concordant++;
      else if (values[j] < values[i]) discordant++;
    }
  }
  const tau = (concordant - discordant) / ((n * (n - 1)) / 2);
  if (tau < STEADY_TAU) return null;
  let maxStep = 0;
  for (let i = 1; i < n; i++) maxStep = Math.max(maxStep, values[i] - values[i - 1]);
  if (maxStep > STEADY_MAX_STEP * (values[n - 1] - values[0])) return null;
  return { growth, tau };
}

export function checkLeak(before: Snapshot, after: Snapshot | null, series: UsageSeries | null = null, ctx: CheckContext = {}): CheckResult {
  const now = after ?? before;
  const memTotal = now.meminfo.get('MemTotal')!;
  const u1 = usage(now);
  const u0 = after ? usage(before) : null;
  // Our own page tables, thread stacks and ring buffers land in the allocPages residual: never growth.
  const own = u0 && ctx.footprint ? ctx.footprint : 0;
  const kinds: KindUsage[] = (['page', 'slab', 'vmalloc'] as LeakKind[]).map((kind) => {
    const bytes = u1[kind];
    const growth = u0 ? bytes - u0[kind] - (kind === 'page' ? own : 0) : null;
    const absolute = bytes >= 6 * GiB || (bytes > 0.1 * memTotal && bytes > 1.5 * GiB);
    const grew = growth !== null && growth >= GROWTH_MIN_BYTES && growth >= GROWTH_MIN_SHARE * memTotal;
    // The steady rule reads the specific counters (SUnreclaim, vmalloc) only: allocPages is a residual
    // that also holds the page tables and stacks of whatever runs in the window -- this tool included --
    // and rose steadily in the no-leak guest. Page leaks need the growth or absolute rule (or -t page).
    const steady = series && kind !== 'page' ? steadyGrowth(series[kind]) : null;
    const why = absolute ? `${mib(bytes)} in use (the original's rule: >= 6 GiB, or > 10% of RAM and > 1.5 GiB)`
      : grew ? `grew by ${mib(growth!)} over the window (>= ${mib(GROWTH_MIN_BYTES)} and >= ${GROWTH_MIN_SHARE * 100}% of RAM)`
      : steady ? `grew steadily by ${mib(steady.growth)} over ${series!.t.length} one-second samples (Kendall's tau ${steady.tau.toFixed(2)})`
      : growth !== null ? `${mib(bytes)} in use, ${growth >= 0 ? '+' : ''}${mib(growth)} over the window` : `${mib(bytes)} in use`;
    const ours = kind === 'page' && own ? ` (${mib(own)} of our own page tables, stacks and ring buffers left out)` : '';
    return { kind, bytes, growth, leaking: absolute || grew || steady !== null, why: why + ours };
  });
  // Several kinds may pass: with growth known the one that grew most is the leak (a slab leak also
  // grows allocPages by its new slab pages); without, the original's order (page, slab, vmalloc).
  const leaking = kinds.filter((k) => k.leaking);
  // With per-second samples the trend's size (medians) ranks the kinds: it leaves out one-off swings.
  // allocPages is a residual (everything not free, cached, slab or vmalloc) that also holds the page
  // tables and stacks of whatever runs during the window -- this tool included; in the guest it rose
  // steadily beside a real vmalloc leak. So a growing slab or vmalloc wins over a growing residual.
  const size = (k: KindUsage) => (series ? steadyGrowth(series[k.kind])?.growth ?? k.growth ?? 0 : k.growth ?? 0);
  const specific = leaking.filter((k) => k.kind !== 'page');
  const ranked = u0 ? (specific.length ? specific : leaking).sort((a, b) => size(b) - size(a)) : leaking;
  let leak = ranked[0]?.kind ?? null;
  const caches = cacheGrowth(before.slabinfo, after?.slabinfo ?? null);
  const pileup = standingPileup(caches, memTotal, ctx.reclaimable);
  const pick = (k: LeakKind) => kinds.find((x) => x.kind === k)!;
  let why = leak ? `${leak}: ${pick(leak).why}` : u0 ? 'no kind grew beyond the thresholds' : 'one snapshot: the absolute rule only';
  const page = pick('page');
  const limit = Math.max(PAGE_AMBIGUOUS_BYTES, PAGE_AMBIGUOUS_SHARE * memTotal);
  const pageAmbiguous = u0 !== null && leak === 'page' && page.bytes < 1.5 * GiB && (page.growth ?? 0) < limit;
  if (pileup && pageAmbiguous) {
    // The residual's growth is within its own noise; the pile-up is the evidence that stands.
    leak = 'slab';
    why = `allocPages grew by ${mib(page.growth ?? 0)}, within what the residual swings by on its own (< ${mib(limit)}); ${pileupText(pileup)}: slab first`;
  } else if (pileup && leak === null && u0) {
    why = `no kind grew beyond the thresholds; ${pileupText(pileup)}`;
  }
  return { memTotal, kinds, leak, caches, decision: { footprint: u0 ? own : null, pileup, why }, ...(series ? { series } : {}) };
}

export function pileupText(p: Pileup): string {
  return `${p.cache} holds ${mib(p.bytes)}, ${p.ratio}x the next unreclaimable cache${p.next ? ` (${p.next}, ${mib(p.nextBytes)})` : ''}`;
}

function cacheGrowth(before: Map<string, SlabinfoRow> | null, after: Map<string, SlabinfoRow> | null): CacheGrowth[] {
  const now = after ?? before;
  if (!now) return [];
  const rows: CacheGrowth[] = [];
  for (const [name, r] of now) {
    const b = after && before ? before.get(name) : undefined;
    const growthObjs = after && before ? r.activeObjs - (b?.activeObjs ?? 0) : null;
    rows.push({ name, objsize: r.objectSize, activeObjs: r.activeObjs, bytes: r.activeObjs * r.objectSize, growthObjs, growthBytes: growthObjs === null ? null : growthObjs * r.objectSize });
  }
  return rows.sort((x, y) => (y.growthBytes ?? 0) - (x.growthBytes ?? 0) || y.bytes - x.bytes);
}
