/**
 * The check over a window from /proc snapshot files (live --save, or a recording's guest/*.before/.after),
 * and the kind it decides for `--type auto`.
 */
import { MemleakError } from '../errors.js';
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

/**
 * A snapshot file that is there must hold its /proc file: an empty one (a copy that failed, a full
 * disk) is refused like an empty meminfo, never read as "0 bytes of vmalloc" (which made --type auto
 * switch to a vmalloc analysis) or as "no slabinfo".
 */
function snapshotText(file: string): string {
  const t = readText(file);
  if (t.trim() === '') {
    throw new MemleakError('E_FORMAT', 'the snapshot file is empty: the recording is incomplete (remove it to analyse without the /proc check, or force a kind with --type)', { file });
  }
  return t;
}

function usageSeries(file: string): UsageSeries {
  let j: unknown;
  try {
    j = JSON.parse(snapshotText(file));
  } catch (e) {
    if (e instanceof MemleakError) throw e;
    throw new MemleakError('E_FORMAT', `not JSON: ${(e as Error).message}`, { file });
  }
  const o = j as Record<string, unknown>;
  const ok = (k: string) => Array.isArray(o?.[k]) && (o[k] as unknown[]).every((x) => typeof x === 'number' && Number.isFinite(x));
  if (!['t', 'page', 'slab', 'vmalloc'].every(ok)) throw new MemleakError('E_FORMAT', 'not a usage series: expected {t, page, slab, vmalloc} arrays of numbers', { file });
  return o as unknown as UsageSeries;
}

export function checkFromSnapshots(s: Snapshots | null): CheckResult | null {
  if (!s) return null;
  // Every file that is there is checked, even when the window is incomplete and no check is made.
  const files = [s.meminfoBefore, s.meminfoAfter, s.slabinfoBefore, s.slabinfoAfter, s.vmallocinfoBefore, s.vmallocinfoAfter].filter((f): f is string => !!f);
  const texts = new Map(files.map((f) => [f, snapshotText(f)]));
  if (!s.meminfoBefore || !s.meminfoAfter) return null;
  const snap = (m: string, sl: string | null, vm: string | null) =>
    snapshotFromTexts(texts.get(m)!, sl ? texts.get(sl)! : null, vm ? texts.get(vm)! : null, { meminfo: m, slabinfo: sl ?? '' });
  const series = s.usageSeries ? usageSeries(s.usageSeries) : null;
  // A live run saved its own footprint beside the samples (live.ts); a recording has none.
  const fp = (series as (UsageSeries & { footprint?: unknown }) | null)?.footprint;
  const footprint = typeof fp === 'number' && Number.isFinite(fp) && fp >= 0 ? fp : null;
  return checkLeak(snap(s.meminfoBefore, s.slabinfoBefore, s.vmallocinfoBefore), snap(s.meminfoAfter, s.slabinfoAfter, s.vmallocinfoAfter), series, { footprint });
}

export function decideType(type: 'auto' | LeakKind, check: CheckResult | null): LeakKind {
  if (type !== 'auto') return type;
  return check?.leak ?? 'slab';
}
