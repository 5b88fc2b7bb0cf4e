/**
 * Which kind of memory leaks (slab, vmalloc, pages) and who leaks it. `--type auto` decides from
 * /proc snapshots at both ends of a window (the check); `--type` forces one. Slab leaks go to
 * analyze(); vmalloc leaks are named from /proc/vmallocinfo growth by caller (or listed from a dump's
 * vmap areas); page leaks from outstanding mm_page_alloc blocks grouped by the caller in their stacks.
 */
import { MemleakError } from './errors.js';
import { analyze, kallsymsOf, REPORT_SCHEMA, type AnalyzeRequest, type LiveInfo, type Report } from './slab/analyze.js';
import { readText } from './input/files.js';
import { checkLeak, snapshotFromTexts, type CheckResult, type LeakKind, type UsageSeries } from './check/leak.js';
import { parseVmallocinfo, vmallocByCaller, vmallocVerdict, type VmallocArea, type VmallocCallerRow } from './vmalloc/vmallocinfo.js';
import { vmapAreasFromDump } from './vmalloc/vmap-areas.js';
import { openVmcore, type OpenVmcore } from './kernel/vmcore.js';
import { parseFtrace } from './trace/ftrace.js';
import { outstandingPages, pageVerdict, type PageCallerRow } from './pages/page-trace.js';
import { unaccountedPages, type UnaccountedPages } from './pages/dump-pages.js';
import { pfnToPage } from './kernel/mm.js';

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

export interface VmallocReport {
  schema: typeof REPORT_SCHEMA;
  type: 'vmalloc';
  source: string;
  check: CheckResult | null;
  callers: VmallocCallerRow[];
  verdict: null | { type: 'vmalloc'; function: string; areas: number; bytes: number; growthAreas: number | null; growthBytes: number | null };
  verdictReason: string;
  warnings: string[];
  elapsedMs: number;
  live?: LiveInfo;
}

export interface PageReport {
  schema: typeof REPORT_SCHEMA;
  type: 'page';
  source: string;
  check: CheckResult | null;
  trace: null | { file: string; allocsSeen: number; freesSeen: number; skippedMovable: number; skippedSlabOrVmalloc: number; withoutStack: number; window: { start: number; end: number; allocCutoff: number } };
  /** With a dump: in-use kernel pages nothing accounts for, and their most common first words. */
  dumpPages: UnaccountedPages | null;
  callers: PageCallerRow[];
  verdict: null | { type: 'page'; function: string; blocks: number; bytes: number; similar: number; pattern: string | null };
  verdictReason: string;
  warnings: string[];
  elapsedMs: number;
  live?: LiveInfo;
}

export type AnyReport = Report | VmallocReport | PageReport;

export function checkFromSnapshots(s: Snapshots | null): CheckResult | null {
  if (!s || !s.meminfoBefore || !s.meminfoAfter) return null;
  const snap = (m: string, sl: string | null, vm: string | null) =>
    snapshotFromTexts(readText(m), sl ? readText(sl) : null, vm ? readText(vm) : null, { meminfo: m, slabinfo: sl ?? '' });
  const series = s.usageSeries ? (JSON.parse(readText(s.usageSeries)) as UsageSeries) : null;
  return checkLeak(snap(s.meminfoBefore, s.slabinfoBefore, s.vmallocinfoBefore), snap(s.meminfoAfter, s.slabinfoAfter, s.vmallocinfoAfter), series);
}

export function decideType(type: 'auto' | LeakKind, check: CheckResult | null): LeakKind {
  if (type !== 'auto') return type;
  return check?.leak ?? 'slab';
}

function vmallocReport(req: AnalyzeRequest, snaps: Snapshots | null, check: CheckResult | null, t0: number): VmallocReport {
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
    let v: OpenVmcore | null = null;
    try {
      v = openVmcore({ vmcore: req.vmcore, kallsyms: req.kallsyms, kallsymsTable: req.kallsymsTable, btf: req.btf });
      const r = vmapAreasFromDump(v);
      after = r.areas;
      warnings.push(...v.warnings, ...r.warnings);
      source = `${req.vmcore} (vmap_area_list)`;
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

function pageReport(req: AnalyzeRequest, check: CheckResult | null, t0: number): PageReport {
  if (!req.trace && !req.vmcore) throw new MemleakError('E_USAGE', 'a page-leak analysis needs a trace of mm_page_alloc/mm_page_free with stacks (--trace, or live mode), or a vmcore for the page census');
  const warnings: string[] = [];
  let v: OpenVmcore | null = null;
  try {
    if (req.vmcore) v = openVmcore({ vmcore: req.vmcore, kallsyms: req.kallsyms, kallsymsTable: req.kallsymsTable, btf: req.btf });
    // With a dump its symbol table (already checked against --kallsyms) serves the trace too.
    const ks = v ? v.syms : kallsymsOf(req);
    const trace = req.trace ? parseFtrace(readText(req.trace), req.trace, ks) : null;
    if (trace?.stats.lostEvents) warnings.push(`${req.trace}: the kernel lost ${trace.stats.lostEvents} events: some frees may be missing`);
    // An extract keeps only the struct pages of its cache's slabs: a census of it would count nothing.
    const census = v && !v.dump.extractInfo ? unaccountedPages(v) : null;
    if (v?.dump.extractInfo) warnings.push(`${req.vmcore} is a sysak extract (struct pages of its cache only): no page census`);
    const base = {
      schema: REPORT_SCHEMA as typeof REPORT_SCHEMA, type: 'page' as const, source: [req.trace, req.vmcore].filter(Boolean).join(' + '), check, dumpPages: census,
      warnings, elapsedMs: 0,
    };
    if (!trace) {
      if (!census) throw new MemleakError('E_USAGE', 'a page-leak analysis of an extract needs the trace (--trace)');
      const h = census.headers[0];
      return {
        ...base, trace: null, callers: [], verdict: null, elapsedMs: Math.round(performance.now() - t0),
        verdictReason: `no trace: callers need mm_page_alloc stacks; the dump holds ${census.unaccounted} in-use kernel pages nothing accounts for${h ? `, ${h.pages} of them starting with ${h.value}${h.text ? ` "${h.text}"` : ''}` : ''}`,
      };
    }
    const isSlabPfn = v ? slabPfnTest(v) : undefined;
    const res = outstandingPages(trace, { freeOnlyPct: req.freeOnlyPct, memory: v?.prog ?? null, pageOffsetBase: v?.prog.bases?.pageOffsetBase ?? null, isSlabPfn });
    if (res.allocsSeen === 0) warnings.push(`${req.trace} has no unmovable mm_page_alloc events: record kmem:mm_page_alloc and kmem:mm_page_free`);
    const verdict = pageVerdict(res.rows);
    const top = verdict.row;
    return {
      ...base,
      trace: { file: req.trace!, allocsSeen: res.allocsSeen, freesSeen: res.freesSeen, skippedMovable: res.skippedMovable, skippedSlabOrVmalloc: res.skippedOtherOwner, withoutStack: res.withoutStack, window: res.window },
      callers: res.rows.slice(0, Math.max(req.top, 10)),
      verdict: top ? { type: 'page', function: top.caller, blocks: top.blocks, bytes: top.bytes, similar: top.similar, pattern: top.pattern } : null,
      verdictReason: verdict.reason, elapsedMs: Math.round(performance.now() - t0),
    };
  } finally {
    v?.close();
  }
}

/** PG_slab of a pfn's struct page (VMCOREINFO NUMBER(PG_slab), else BTF's enum pageflags). */
function slabPfnTest(v: OpenVmcore): ((pfn: number) => boolean) | undefined {
  const bit = v.prog.info.numbers.get('PG_slab') ?? (v.types.btf?.enumerator('PG_slab') != null ? BigInt(v.types.btf.enumerator('PG_slab')!) : undefined);
  if (bit === undefined || !v.prog.bases) return undefined;
  return (pfn) => {
    const b = v.prog.read(pfnToPage(v.prog, pfn), 8);
    return b !== null && ((new DataView(b.buffer, b.byteOffset).getBigUint64(0, true) >> bit) & 1n) === 1n;
  };
}

export async function analyzeAny(req: AnalyzeRequest, type: 'auto' | LeakKind, snaps: Snapshots | null): Promise<AnyReport> {
  const t0 = performance.now();
  const check = checkFromSnapshots(snaps);
  const kind = decideType(type, check);
  if (kind === 'vmalloc') return vmallocReport(req, snaps, check, t0);
  if (kind === 'page') return pageReport(req, check, t0);
  const r = await analyze(req);
  if (check) r.check = check;
  return r;
}
