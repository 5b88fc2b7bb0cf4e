/**
 * The check over a window from /proc snapshot files (live --save, or a recording's guest/*.before/.after),
 * and the kind it decides for `--type auto`.
 */
import { readText } from '../util/read-file.js';
import { checkLeak, type CheckResult, type LeakKind, type UsageSeries } from './leak.js';
import { snapshotFromTexts } from './proc.js';

export interface Snapshots {
  meminfoBefore: string | null;
  meminfoAfter: string | null;
  slabinfoBefore: string | null;
  slabinfoAfter: string | null;
  vmallocinfoBefore: string | null;
  vmallocinfoAfter: string | null;
  /** live --save keeps the per-second usage samples (guest/usage_series.json) for the steady-growth rule. */
  usageSeries?: string | null;
}

export function checkFromSnapshots(s: Snapshots | null): CheckResult | null {
  if (!s || !s.meminfoBefore || !s.meminfoAfter) return null;
  const snap = (m: string, sl: string | null, vm: string | null) =>
    snapshotFromTexts(readText(m), sl ? readText(sl) : null, vm ? readText(vm) : null, { meminfo: m, slabinfo: sl ?? '' });
  const series = s.usageSeries ? (JSON.parse(readText(s.usageSeries)) as UsageSeries & { footprint?: number }) : null;
  // A live run saved its own footprint beside the samples (live.ts); a recording has none.
  const footprint = typeof series?.footprint === 'number' && Number.isFinite(series.footprint) && series.footprint >= 0 ? series.footprint : null;
  return checkLeak(snap(s.meminfoBefore, s.slabinfoBefore, s.vmallocinfoBefore), snap(s.meminfoAfter, s.slabinfoAfter, s.vmallocinfoAfter), series, { footprint });
}

export function decideType(type: 'auto' | LeakKind, check: CheckResult | null): LeakKind {
  if (type !== 'auto') return type;
  return check?.leak ?? 'slab';
}
