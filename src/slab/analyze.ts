/**
 * `src/slab/`: the slab leak kind, with the same face as vmalloc/ and pages/ (analyze(request, check)
 * -> SlabReport in report.ts).
 *
 * Slab leaks: analyze(request) reads the suspect cache's slabs (load.ts), clusters their contents
 * (scan/), names the words of the hot clusters (symbolize.ts) and, with a trace, marks the outstanding
 * allocations that look like a hot cluster (outstanding.ts, mark.ts) to name the call site that leaks
 * (verdict.ts). Returns a SlabReport (plain data); never prints or exits.
 */
import { hex } from '../util/hex.js';
import type { Kallsyms } from '../kernel/kallsyms.js';
import type { Kernel } from '../kernel/kernel.js';
import type { CheckResult } from '../check/leak.js';
import { scanSlabs, type ScanResult } from '../scan/scanner.js';
import type { SlabSet } from '../scan/slab-set.js';
import { isVar } from '../scan/tokens.js';
import { clusterAddress } from '../scan/clusters.js';
import { parseFtrace, traceWarnings } from '../trace/ftrace.js';
import { readText } from '../util/read-file.js';
import { REPORT_SCHEMA, type AnalyzeRequest } from '../request.js';
import { loadMemory, type Loaded } from './load.js';
import { describeObject } from './symbolize.js';
import { outstandingSlab } from './outstanding.js';
import { hotClusterIndexes, markAllocations } from './mark.js';
import { callSiteRows, chooseLeakers, presumedInFlight, type CallSiteRow } from './verdict.js';
import { clusterGrowth, type ChurnResult } from './churn.js';
import type { ClusterReport, DumpReport, Leaker, SlabReport, UnfreedReport } from './report.js';
import { Phases } from '../phases.js';

function dumpReport(v: Kernel): DumpReport {
  return {
    file: v.dump.path,
    format: v.dump.format,
    live: v.dump.live,
    osrelease: v.prog.info.osrelease,
    kaslrOffset: hex(v.prog.kaslrOffset),
    physBase: hex(v.prog.physBase),
    pageOffsetBase: hex(v.prog.bases.pageOffsetBase),
    types: v.typesSource,
    excludedPages: v.dump.stats.excludedPages,
    corruptPages: v.dump.stats.corruptPages,
  };
}

function clusterReports(scan: ScanResult, set: SlabSet, kallsyms: Kallsyms | null, top: number): ClusterReport[] {
  return scan.clusters.slice(0, top).map((_, i) => clusterReport(scan, i, set, kallsyms));
}

function clusterReport(scan: ScanResult, i: number, set: SlabSet, kallsyms: Kallsyms | null): ClusterReport {
  const c = scan.clusters[i];
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
}

/** The slab analysis; `check` (the /proc check over the window, when there is one) goes into the report. */
export async function analyze(req: AnalyzeRequest, check: CheckResult | null = null): Promise<SlabReport> {
  const t0 = performance.now();
  const warnings: string[] = [];
  const phases = new Phases(req.onProgress ?? null);
  const loaded = await loadMemory(req, warnings, phases);
  try {
    const report = await analyzeLoaded(req, loaded, warnings, t0, phases);
    if (loaded.vmcore && req.vmcoreHook) req.vmcoreHook.beforeClose(loaded.vmcore, loaded.set);
    if (check) report.check = check;
    return report;
  } finally {
    loaded.vmcore?.close();
  }
}

async function analyzeLoaded(req: AnalyzeRequest, loaded: Loaded, warnings: string[], t0: number, phases: Phases): Promise<SlabReport> {
  const { set, kallsyms } = loaded;
  // Parse the trace before the scan: a bad trace should fail fast.
  const trace = req.trace ? phases.run('trace', 'lines', (p) => {
    const text = readText(req.trace!);
    const t = parseFtrace(text, req.trace!, kallsyms);
    p.add(text.length, t.stats.lines);
    return t;
  }) : null;
  if (trace) warnings.push(...traceWarnings(trace));
  const scan = loaded.pre ?? (await scanSlabs(set, { ...req.scan, phases }));
  if (scan.stats.overflowObjects) warnings.push(`${scan.stats.overflowObjects} objects had rarer shapes than the ${scan.stats.templates} kept templates and are not in any cluster`);
  const clusters = phases.run('symbolize', 'objects', (p) => {
    p.add(0, Math.min(req.top, scan.clusters.length));
    return clusterReports(scan, set, kallsyms, req.top);
  });

  let callSites: CallSiteRow[] = [];
  let unfreed: UnfreedReport[] = [];
  let verdict: SlabReport['verdict'] = null;
  let verdictReason = 'no trace given: clusters only (give --trace to name the leaking function)';
  let traceReport: SlabReport['trace'] = null;
  let churn: ChurnResult | null = null;
  if (trace) {
    const out = outstandingSlab(trace, { freeOnlyPct: req.freeOnlyPct, bytesAlloc: set.cache.stride, cacheName: set.cache.name, strict: req.strictFreeOnly });
    const markPhase = phases.start('mark', 'objects');
    markPhase.add(out.allocs.length * set.cache.stride, out.allocs.length);
    const marked = markAllocations(out.allocs, scan, set.memory, set.cache.stride, req.mark);
    const counted = marked.filter((m) => !presumedInFlight(m));
    const youngAside = marked.length - counted.length;
    // Churn vs growth: per hot cluster, its look-alike allocations of the window against the frees in
    // the window of objects of its shape (read from the freed slots).
    const allocsByCluster = new Map<number, number>();
    for (const m of counted) if (m.cluster !== null) allocsByCluster.set(m.cluster, (allocsByCluster.get(m.cluster) ?? 0) + 1);
    churn = clusterGrowth(allocsByCluster, out.preWindowFrees, {
      scan, hot: hotClusterIndexes(scan, req.mark), memory: set.memory, allocated: set.allocated,
      slabs: set.slabs, freeIndexes: set.freeIndexes, slabSize: set.cache.slabSize, stride: set.cache.stride, objsPerSlab: set.cache.objsPerSlab,
      traced: new Set(trace.events.filter((e) => e.kind === 'alloc' || e.kind === 'free').map((e) => e.ptr)), freeSlotsKnown: loaded.vmcore !== null,
    }, req.churn);
    markPhase.end();
    const growthOf = new Map(churn.clusters.map((g) => [g.cluster, g]));
    const notGrowing = (c: number) => {
      const g = growthOf.get(c);
      return g && !g.growing ? `cluster #${g.rank} does not grow: ${g.reason}` : null;
    };
    callSites = callSiteRows(counted, notGrowing);
    unfreed = counted.map((m) => ({
      comm: m.comm, pid: m.pid, function: m.callSite, ptr: hex(m.ptr), marked: m.cluster !== null && notGrowing(m.cluster) === null,
      replacing: m.cluster !== null && notGrowing(m.cluster) !== null, readable: m.readable,
      similarity: Math.round(m.similarity * 1000) / 1000, age: Math.round(m.age * 1e6) / 1e6, young: m.young, stack: m.stack,
    }));
    const unreadable = unfreed.filter((m) => !m.readable).length;
    if (unreadable) warnings.push(`${unreadable} of ${unfreed.length} unfreed objects are not in the memory source (${set.memory.description}) and could not be marked`);
    const choice = chooseLeakers(callSites, req.verdict, (c) => growthOf.get(c)?.net ?? 0, (c) => growthOf.get(c)?.staleFreeSlots !== undefined);
    for (const g of churn.clusters) {
      if (g.staleFreeSlots !== undefined) warnings.push(`cluster #${g.rank}: ${g.staleFreeSlots} free slots the window never touched hold its shape, but few or none of its frees are in the trace: if they are freed with kfree_rcu() (batches through kfree_bulk()) or kmem_cache_free_bulk(), which have no kmem event, its growth (+${g.net}) is overstated`);
    }
    verdictReason = choice.reason;
    const leakers: Leaker[] = choice.rows.map((row) => {
      const c = scan.clusters[row.cluster!];
      const g = growthOf.get(row.cluster!);
      return {
        function: row.function, cluster: row.cluster! + 1, object: hex(clusterAddress(c)), similarObjects: c.count,
        unfreed: row.unfreed, marked: row.marked, allocs: g?.allocs ?? row.marked, frees: g?.frees ?? 0, growth: g?.net ?? row.marked,
        words: clusters[row.cluster!]?.words ?? clusterReport(scan, row.cluster!, set, kallsyms).words,
      };
    });
    const first = leakers[0];
    if (first) {
      verdict = {
        type: 'slab', cache: set.cache.name, function: first.function, object: first.object,
        similarObjects: first.similarObjects, unfreed: first.unfreed, marked: first.marked, leakers,
      };
    }
    traceReport = {
      file: trace.file, stats: trace.stats, window: { ...out.window, freeOnlyPct: req.freeOnlyPct },
      allocsSeen: out.allocsSeen, freesSeen: out.freesSeen, reallocWithoutFree: out.reallocWithoutFree,
      youngSetAside: youngAside, strictFreeOnly: req.strictFreeOnly,
      preWindowFrees: { inCache: churn.preWindowFrees, reused: churn.reused, unreadable: churn.unreadable, wiped: churn.wiped, otherShapes: churn.otherShapes },
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
    clusterGrowth: churn?.clusters.map(({ cluster, ...g }) => g) ?? [],
    callSites,
    unfreed,
    verdict,
    verdictReason,
    warnings,
    elapsedMs: Math.round(performance.now() - t0),
    timings: phases.finish(),
  };
}

