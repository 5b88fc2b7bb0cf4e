/**
 * The analysis library's entry point: which kind of memory leaks (slab, vmalloc, pages), then that
 * kind's analyze(request) -> report (slab/, vmalloc/, pages/). `--type auto` decides from the /proc
 * check over a window (check/); `--type` forces one. Returns plain data; never prints or exits (the
 * CLI renders the report and maps errors to exit codes).
 */
import { checkFromSnapshots, decideType, type Snapshots } from './check/snapshots.js';
import type { CheckResult, KindAnalysis, LeakKind } from './check/leak.js';
import { otherPlausibleKinds } from './check/plausible.js';
import { MemleakError } from './errors.js';
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

async function analyzeKind(req: AnalyzeRequest, kind: LeakKind, check: CheckResult | null): Promise<AnyReport> {
  if (kind === 'vmalloc') return analyzeVmalloc(req, check);
  if (kind === 'page') return analyzePages(req, check);
  return analyzeSlab(req, check);
}

/**
 * With the check already computed (live mode computed it over its own window). With `--type auto`,
 * when the kind the check chose names no leaker, the other plausible kinds are analysed too; the
 * report is the first that names one, and `analysed[]` says which kinds ran and why.
 */
export async function analyzeWithCheck(req: AnalyzeRequest, type: 'auto' | LeakKind, check: CheckResult | null): Promise<AnyReport> {
  const kind = decideType(type, check);
  const first = await analyzeKind(req, kind, check);
  if (type !== 'auto') return first;
  const analysed: KindAnalysis[] = [{ kind, why: check ? check.decision.why : 'no /proc snapshots: slab, the default', verdict: first.verdict?.function ?? null }];
  let best: AnyReport = first;
  if (!first.verdict && check) {
    for (const next of otherPlausibleKinds(check, kind)) {
      let r: AnyReport;
      try {
        r = await analyzeKind(req, next.kind, check);
      } catch (e) {
        // A kind whose inputs are not there (no page events, no vmallocinfo) is reported, not fatal.
        if (e instanceof MemleakError && (e.code === 'E_USAGE' || e.code === 'E_NO_DATA')) {
          analysed.push({ kind: next.kind, why: `${next.why}; not analysable here: ${e.message}`, verdict: null });
          continue;
        }
        throw e;
      }
      analysed.push({ kind: next.kind, why: `${analysed[analysed.length - 1].kind} found no leaker; ${next.why}`, verdict: r.verdict?.function ?? null });
      if (r.verdict) {
        best = r;
        break;
      }
    }
  }
  best.analysed = analysed;
  return best;
}
