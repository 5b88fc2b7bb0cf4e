/**
 * Slab leaks: analyze(request) reads the suspect cache's slabs (load.ts), clusters their contents
 * (scan/), names the words of the hot clusters (symbolize.ts) and, with a trace, marks the outstanding
 * allocations that look like a hot cluster (outstanding.ts, mark.ts) to name the call site that leaks
 * (verdict.ts). Returns a SlabReport (plain data); never prints or exits.
 */
import { hex } from '../util/hex.js';
import type { Kallsyms } from '../kernel/kallsyms.js';
import type { OpenVmcore } from '../kernel/vmcore.js';
import type { CheckResult } from '../check/leak.js';
import { scanSlabs, type ScanResult } from '../scan/scanner.js';
import type { SlabSet } from '../scan/slab-set.js';
import { isVar } from '../scan/tokens.js';
import { clusterAddress } from '../scan/clusters.js';
import { parseFtrace } from '../trace/ftrace.js';
import { readText } from '../util/read-file.js';
import { REPORT_SCHEMA, type AnalyzeRequest } from '../request.js';
import { loadMemory, type Loaded } from './load.js';
import { describeObject } from './symbolize.js';
import { outstandingSlab } from './outstanding.js';
import { markAllocations } from './mark.js';
import { callSiteRows, chooseVerdict, presumedInFlight, type CallSiteRow } from './verdict.js';
import type { ClusterReport, DumpReport, SlabReport, UnfreedReport } from './report.js';

function dumpReport(v: OpenVmcore): DumpReport {
  return {
    file: v.dump.path,
    format: v.dump.format,
    live: v.dump.live,
    osrelease: v.prog.info.osrelease,
    kaslrOffset: hex(v.prog.kaslrOffset),
    physBase: hex(v.prog.physBase),
    pageOffsetBase: hex(v.prog.bases!.pageOffsetBase),
    types: v.typesSource,
    excludedPages: v.dump.stats.excludedPages,
    corruptPages: v.dump.stats.corruptPages,
  };
}

function clusterReports(scan: ScanResult, set: SlabSet, kallsyms: Kallsyms | null, top: number): ClusterReport[] {
  return scan.clusters.slice(0, top).map((c, i) => {
    const rep = clusterAddress(c);
    const toks = c.members[0].tokens;
    const varying: number[] = [];
    const variesWord: boolean[] = [];
    for (let p = 0; p < toks.length; p += 2) {
      const v = isVar(toks[p]) || isVar(toks[p + 1]);
      variesWord.push(v);
      if (v) varying.push(p * 4);
    }
    return {
      rank: i + 1,
      count: c.count,
      similarity: Math.round(c.similarity * 1000) / 1000,
      object: hex(rep),
      varyingOffsets: varying,
      words: describeObject(rep, set.cache.stride, { kallsyms, addressSpace: set.addressSpace, memory: set.memory }, true, variesWord),
    };
  });
}

/** The slab analysis; `check` (the /proc check over the window, when there is one) goes into the report. */
export async function analyze(req: AnalyzeRequest, check: CheckResult | null = null): Promise<SlabReport> {
  const t0 = performance.now();
  const warnings: string[] = [];
  const loaded = await loadMemory(req, warnings);
  try {
    const report = await analyzeLoaded(req, loaded, warnings, t0);
    if (loaded.vmcore && req.vmcoreHook) req.vmcoreHook.beforeClose(loaded.vmcore, loaded.set);
    if (check) report.check = check;
    return report;
  } finally {
    loaded.vmcore?.close();
  }
}

async function analyzeLoaded(req: AnalyzeRequest, loaded: Loaded, warnings: string[], t0: number): Promise<SlabReport> {
  const { set, kallsyms } = loaded;
  // Parse the trace before the scan: a bad trace should fail fast.
  const trace = req.trace ? parseFtrace(readText(req.trace), req.trace, kallsyms) : null;
  if (trace) {
    if (trace.stats.badLines) warnings.push(`${req.trace}: ${trace.stats.badLines} lines could not be read (first: line ${trace.stats.firstBadLine})`);
    if (trace.stats.lostEvents) warnings.push(`${req.trace}: the kernel lost ${trace.stats.lostEvents} events: unfreed counts may include objects whose free was lost; enlarge the trace buffer`);
  }
  const scan = loaded.pre ?? (await scanSlabs(set, req.scan));
  if (scan.stats.overflowObjects) warnings.push(`${scan.stats.overflowObjects} objects had rarer shapes than the ${scan.stats.templates} kept templates and are not in any cluster`);
  const clusters = clusterReports(scan, set, kallsyms, req.top);

  let callSites: CallSiteRow[] = [];
  let unfreed: UnfreedReport[] = [];
  let verdict: SlabReport['verdict'] = null;
  let verdictReason = 'no trace given: clusters only (give --trace to name the leaking function)';
  let traceReport: SlabReport['trace'] = null;
  if (trace) {
    const out = outstandingSlab(trace, { freeOnlyPct: req.freeOnlyPct, bytesAlloc: set.cache.stride, cacheName: set.cache.name, strict: req.strictFreeOnly });
    const marked = markAllocations(out.allocs, scan, set.memory, set.cache.stride, req.mark);
    const counted = marked.filter((m) => !presumedInFlight(m));
    const youngAside = marked.length - counted.length;
    callSites = callSiteRows(counted);
    unfreed = counted.map((m) => ({
      comm: m.comm, pid: m.pid, function: m.callSite, ptr: hex(m.ptr), marked: m.cluster !== null, readable: m.readable,
      similarity: Math.round(m.similarity * 1000) / 1000, age: Math.round(m.age * 1e6) / 1e6, young: m.young, stack: m.stack,
    }));
    const unreadable = unfreed.filter((m) => !m.readable).length;
    if (unreadable) warnings.push(`${unreadable} of ${unfreed.length} unfreed objects are not in the memory source (${set.memory.description}) and could not be marked`);
    const v = chooseVerdict(callSites, req.verdict);
    verdictReason = v.reason;
    if (v.row && v.row.cluster !== null) {
      const c = scan.clusters[v.row.cluster];
      verdict = {
        type: 'slab', cache: set.cache.name, function: v.row.function, object: hex(clusterAddress(c)),
        similarObjects: c.count, unfreed: v.row.unfreed, marked: v.row.marked,
      };
    }
    traceReport = {
      file: trace.file, stats: trace.stats, window: { ...out.window, freeOnlyPct: req.freeOnlyPct },
      allocsSeen: out.allocsSeen, freesSeen: out.freesSeen, reallocWithoutFree: out.reallocWithoutFree,
      youngSetAside: youngAside, strictFreeOnly: req.strictFreeOnly,
    };
  }
  const v = loaded.vmcore;
  if (v) {
    const st = v.dump.stats;
    if (st.excludedPages) warnings.push(`${st.excludedPages} page reads hit pages the dump does not hold (filtered out by makedumpfile -d, or not RAM): those bytes were not analysed`);
    if (st.firstCorrupt) warnings.push(`${st.corruptPages} pages of ${v.dump.path} are corrupt (first: pfn ${st.firstCorrupt.pfn} at file offset ${st.firstCorrupt.offset}: ${st.firstCorrupt.why}); they were skipped`);
  }
  return {
    schema: REPORT_SCHEMA,
    type: 'slab',
    source: {
      memory: set.memory.description, freeState: set.freeSource, addressSpace: set.addressSpace.source,
      kallsyms: v ? v.symbolsSource : kallsyms?.source ?? null, dump: v ? dumpReport(v) : null,
    },
    cache: { name: set.cache.name, objectSize: set.cache.stride, objectsPerSlab: set.cache.objsPerSlab, slabSize: set.cache.slabSize, allocated: set.cache.allocated, geometrySource: set.cache.source },
    scan: scan.stats,
    clusters,
    trace: traceReport,
    callSites,
    unfreed,
    verdict,
    verdictReason,
    warnings,
    elapsedMs: Math.round(performance.now() - t0),
  };
}

