/**
 * vmalloc leaks by caller: /proc/vmallocinfo areas (parsed by check/vmallocinfo.ts, the parser the
 * check uses too) grouped by caller with bytes, areas and growth between two snapshots. SIZE includes
 * the guard page; bytes count backing pages (`pages=N`) where the line gives them.
 */
import type { VmallocArea } from '../check/vmallocinfo.js';
import { PAGE_SIZE } from '../util/page.js';

export interface VmallocCallerRow {
  caller: string;
  areas: number;
  bytes: number;
  growthAreas: number | null;
  growthBytes: number | null;
}

function areaBytes(a: VmallocArea, pageSize: number): number {
  return a.pages !== null ? a.pages * pageSize : Math.max(0, a.size - pageSize);
}

/** Rows of vmalloc() areas (kind vmalloc/vpages/user) by caller; growth when `before` is given. */
export function vmallocByCaller(after: VmallocArea[], before: VmallocArea[] | null, pageSize = PAGE_SIZE): VmallocCallerRow[] {
  const counted = (a: VmallocArea) => a.kind === 'vmalloc' || a.kind === 'vpages' || a.kind === 'user';
  const sum = (areas: VmallocArea[]) => {
    const m = new Map<string, { areas: number; bytes: number }>();
    for (const a of areas) {
      if (!counted(a)) continue;
      const r = m.get(a.caller) ?? { areas: 0, bytes: 0 };
      r.areas++;
      r.bytes += areaBytes(a, pageSize);
      m.set(a.caller, r);
    }
    return m;
  };
  const now = sum(after);
  const then = before ? sum(before) : null;
  const callers = new Set([...now.keys(), ...(then ? then.keys() : [])]);
  const rows: VmallocCallerRow[] = [];
  for (const c of callers) {
    const a = now.get(c) ?? { areas: 0, bytes: 0 };
    const b = then?.get(c) ?? { areas: 0, bytes: 0 };
    rows.push({ caller: c, areas: a.areas, bytes: a.bytes, growthAreas: then ? a.areas - b.areas : null, growthBytes: then ? a.bytes - b.bytes : null });
  }
  return rows.sort((x, y) => (y.growthBytes ?? 0) - (x.growthBytes ?? 0) || y.bytes - x.bytes || x.caller.localeCompare(y.caller));
}

/**
 * A caller is named when it grew by at least VMALLOC_MIN_GROWTH bytes in at least VMALLOC_MIN_AREAS
 * areas (one big buffer is an allocation, a growing count of them is a leak; memdemo's own 2 MiB
 * ground-truth array is the example), and by 4x the next caller's growth.
 */
export const VMALLOC_MIN_GROWTH = 1 << 20;
export const VMALLOC_MIN_AREAS = 8;

export function vmallocVerdict(rows: VmallocCallerRow[]): { row: VmallocCallerRow | null; reason: string } {
  if (rows.length === 0 || rows[0].growthBytes === null) return { row: null, reason: 'one snapshot only: vmalloc use by caller is listed, growth needs two (live mode, or before/after files)' };
  const [top, next] = rows;
  const g = top.growthBytes ?? 0;
  if (g < VMALLOC_MIN_GROWTH) return { row: null, reason: `no caller's vmalloc use grew by ${VMALLOC_MIN_GROWTH >> 20} MiB or more over the window (top: ${top.caller} ${g >= 0 ? '+' : ''}${g} bytes)` };
  if ((top.growthAreas ?? 0) < VMALLOC_MIN_AREAS) return { row: null, reason: `${top.caller} grew by ${g} bytes but in ${top.growthAreas} area(s): a large allocation, not a pile-up (needs ${VMALLOC_MIN_AREAS} areas)` };
  if (next && (next.growthBytes ?? 0) * 4 > g) return { row: null, reason: `${top.caller} and ${next.caller} grew alike (${g} and ${next.growthBytes} bytes): no single leaker` };
  return { row: top, reason: `${top.caller} grew by ${top.growthAreas} areas, ${g} bytes over the window, and no other caller grew by a quarter of that` };
}
