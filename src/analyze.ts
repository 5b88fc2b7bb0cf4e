/**
 * The analysis library's entry point: which kind of memory leaks (slab, vmalloc, pages), then that
 * kind's analyze(request) -> report (slab/, vmalloc/, pages/). `--type auto` decides from the /proc
 * check over a window (check/); `--type` forces one. Returns plain data; never prints or exits (the
 * CLI renders the report and maps errors to exit codes).
 */
import { checkFromSnapshots, decideType, type Snapshots } from './check/snapshots.js';
import type { CheckResult, LeakKind } from './check/leak.js';
import type { AnalyzeRequest } from './request.js';
import { analyze as analyzeSlab } from './slab/analyze.js';
import { analyze as analyzeVmalloc } from './vmalloc/analyze.js';
import { analyze as analyzePages } from './pages/analyze.js';
import type { SlabReport } from './slab/report.js';
import type { VmallocReport } from './vmalloc/report.js';
import type { PageReport } from './pages/report.js';

export type { SlabReport, VmallocReport, PageReport };
export type AnyReport = SlabReport | VmallocReport | PageReport;

/** Offline: the check is computed from the snapshot files, when there are both ends of a window. */
export async function analyzeAny(req: AnalyzeRequest, type: 'auto' | LeakKind, snaps: Snapshots | null): Promise<AnyReport> {
  return analyzeWithCheck({ ...req, snapshots: snaps }, type, checkFromSnapshots(snaps));
}

/** With the check already computed (live mode computed it over its own window). */
export async function analyzeWithCheck(req: AnalyzeRequest, type: 'auto' | LeakKind, check: CheckResult | null): Promise<AnyReport> {
  const kind = decideType(type, check);
  if (kind === 'vmalloc') return analyzeVmalloc(req, check);
  if (kind === 'page') return analyzePages(req, check);
  return analyzeSlab(req, check);
}
