/**
 * `src/vmalloc/`: the vmalloc leak kind, with the same face as slab/ and pages/ (analyze(request,
 * check) -> VmallocReport in report.ts).
 *
 * vmalloc leaks: named from /proc/vmallocinfo growth by caller (or listed from a dump's vmap areas).
 */
import { MemleakError } from '../errors.js';
import { readText } from '../util/read-file.js';
import { openVmcore, type Kernel } from '../kernel/kernel.js';
import type { CheckResult } from '../check/leak.js';
import { parseVmallocinfo, type VmallocArea } from '../check/vmallocinfo.js';
import { kallsymsOf, REPORT_SCHEMA, type AnalyzeRequest } from '../request.js';
import { vmallocByCaller, vmallocVerdict } from './vmallocinfo.js';
import { vmapAreasFromDump } from './vmap-areas.js';
import type { VmallocReport } from './report.js';

/**
 * The vmalloc analysis: /proc/vmallocinfo snapshots of the request (growth by caller) or, without
 * them, the dump's vmap areas (sizes by caller, no verdict). `check` goes into the report.
 */
export function analyze(req: AnalyzeRequest, check: CheckResult | null = null): VmallocReport {
  const t0 = performance.now();
  const snaps = req.snapshots;
  const warnings: string[] = [];
  let after: VmallocArea[] | null = null;
  let before: VmallocArea[] | null = null;
  let source: string;
  if (snaps?.vmallocinfoAfter) {
    const ks = kallsymsOf(req);
    after = parseVmallocinfo(readText(snaps.vmallocinfoAfter), snaps.vmallocinfoAfter, ks);
    if (snaps.vmallocinfoBefore) before = parseVmallocinfo(readText(snaps.vmallocinfoBefore), snaps.vmallocinfoBefore, ks);
    source = before ? `${snaps.vmallocinfoBefore} -> ${snaps.vmallocinfoAfter}` : snaps.vmallocinfoAfter;
  } else if (req.vmcore) {
    let v: Kernel | null = null;
    try {
      v = openVmcore({ vmcore: req.vmcore, kallsyms: req.kallsyms, kallsymsTable: req.kallsymsTable, btf: req.btf });
      const r = vmapAreasFromDump(v);
      after = r.areas;
      warnings.push(...v.warnings, ...r.warnings);
      source = `${req.vmcore} (${r.lists})`;
    } finally {
      v?.close();
    }
  } else {
    throw new MemleakError('E_USAGE', 'a vmalloc analysis needs /proc/vmallocinfo snapshots (live mode, or guest/vmallocinfo.before/.after with --from) or a vmcore');
  }
  const rows = vmallocByCaller(after, before);
  const v = vmallocVerdict(rows);
  return {
    schema: REPORT_SCHEMA, type: 'vmalloc', source, check, callers: rows.filter((r) => r.bytes > 0 || (r.growthBytes ?? 0) !== 0).slice(0, Math.max(req.top, 10)),
    verdict: v.row ? { type: 'vmalloc', function: v.row.caller, areas: v.row.areas, bytes: v.row.bytes, growthAreas: v.row.growthAreas, growthBytes: v.row.growthBytes } : null,
    verdictReason: v.reason, warnings, elapsedMs: Math.round(performance.now() - t0),
  };
}
