/**
 * `src/pages/`: the page leak kind, with the same face as slab/ and vmalloc/ (analyze(request, check)
 * -> PageReport in report.ts).
 *
 * Page leaks: named from outstanding mm_page_alloc blocks grouped by the caller in their stacks.
 */
import { MemleakError } from '../errors.js';
import { readText } from '../util/read-file.js';
import { openVmcore, type Kernel } from '../kernel/kernel.js';
import { pageKinds, pfnFlagTest } from '../kernel/mm.js';
import type { CheckResult } from '../check/leak.js';
import { parseFtrace, traceWarnings } from '../trace/ftrace.js';
import { kallsymsOf, REPORT_SCHEMA, type AnalyzeRequest } from '../request.js';
import { outstandingPages, pageVerdict } from './page-trace.js';
import { unaccountedPages } from './dump-pages.js';
import type { PageReport } from './report.js';

/**
 * The page analysis: outstanding mm_page_alloc blocks of the trace grouped by caller, and with a dump
 * the census of in-use kernel pages nothing accounts for. `check` goes into the report.
 */
export function analyze(req: AnalyzeRequest, check: CheckResult | null = null): PageReport {
  const t0 = performance.now();
  if (!req.trace && !req.vmcore) throw new MemleakError('E_USAGE', 'a page-leak analysis needs a trace of mm_page_alloc/mm_page_free with stacks (--trace, or live mode), or a vmcore for the page census');
  const warnings: string[] = [];
  let v: Kernel | null = null;
  try {
    if (req.vmcore) v = openVmcore({ vmcore: req.vmcore, kallsyms: req.kallsyms, kallsymsTable: req.kallsymsTable, btf: req.btf });
    // With a dump its symbol table (already checked against --kallsyms) serves the trace too.
    const ks = v ? v.syms : kallsymsOf(req);
    const trace = req.trace ? parseFtrace(readText(req.trace), req.trace, ks) : null;
    if (trace) warnings.push(...traceWarnings(trace));
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
    // With a dump: PG_slab of the block's struct page (the flag only: see kernel/mm.ts pfnFlagTest).
    const isSlabPfn = v ? pfnFlagTest(v.prog, pageKinds(v.prog, v.types.btf), 'PG_slab') : undefined;
    const res = outstandingPages(trace, { freeOnlyPct: req.freeOnlyPct, memory: v?.prog ?? null, pageOffsetBase: v?.prog.bases.pageOffsetBase ?? null, isSlabPfn, ownPids: req.ownPids ? new Set(req.ownPids) : undefined });
    if (res.allocsSeen === 0) warnings.push(`${req.trace} has no unmovable mm_page_alloc events: record kmem:mm_page_alloc and kmem:mm_page_free`);
    const verdict = pageVerdict(res.rows);
    const top = verdict.row;
    return {
      ...base,
      trace: { file: req.trace!, allocsSeen: res.allocsSeen, freesSeen: res.freesSeen, skippedMovable: res.skippedMovable, skippedSlabOrVmalloc: res.skippedOtherOwner, skippedOwn: res.skippedOwn, withoutStack: res.withoutStack, window: res.window },
      callers: res.rows.slice(0, Math.max(req.top, 10)),
      verdict: top ? { type: 'page', function: top.caller, blocks: top.blocks, bytes: top.bytes, similar: top.similar, pattern: top.pattern } : null,
      verdictReason: verdict.reason, elapsedMs: Math.round(performance.now() - t0),
    };
  } finally {
    v?.close();
  }
}
