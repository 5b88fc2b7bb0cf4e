/**
 * The analysis library's entry point: inputs in, a Report (plain data) out. It never prints or exits;
 * the CLI renders the report and maps errors to exit codes.
 */
import { MemleakError } from '../errors.js';
import { hex } from '../util/hex.js';
import { SparseMemory } from '../util/memory.js';
import { Kallsyms } from '../kernel/kallsyms.js';
import { estimateAddressSpace } from '../kernel/address-space.js';
import { parseCrashRd } from '../input/crash-rd.js';
import { parseCrashKmem, type KmemReport } from '../input/crash-kmem.js';
import { parseSlabinfo, type SlabinfoRow } from '../input/slabinfo.js';
import { RawFileMemory } from '../input/raw.js';
import { findRecording, readAs, readText } from '../input/files.js';
import { resolveGeometry, resolveSymbolicWords, slabSetFromMemory, type GeometryHints } from './crash-text.js';
import { scanSlabs, type ScanOptions, type ScanResult, type ScanStats } from '../scan/scanner.js';
import { fdSource, scanStream } from '../scan/stream-scan.js';
import { closeSync, openSync } from 'node:fs';
import type { CacheGeometry } from '../scan/slab-set.js';
import type { SlabSet } from '../scan/slab-set.js';
import { isVar } from '../scan/tokens.js';
import { clusterAddress } from '../scan/clusters.js';
import { describeObject, type WordInfo } from './symbolize.js';
import { chooseSuspectCache, openVmcore, slabSetFromWalk, summarizeCaches, walkCache, type OpenVmcore } from '../kernel/vmcore.js';
import { findSlabCache, type KmemCache } from '../kernel/slub.js';
import { parseFtrace, type TraceStats } from '../trace/ftrace.js';
import { outstandingSlab } from './outstanding.js';
import { DEFAULT_MARK, markAllocations, type MarkOptions } from './mark.js';
import { callSiteRows, chooseVerdict, DEFAULT_VERDICT, presumedInFlight, type CallSiteRow, type VerdictRules } from './verdict.js';

export const REPORT_SCHEMA = 'sysak-memleak/1';

export interface AnalyzeRequest {
  /** A vmcore, kcore or extract: the whole offline analysis from one file. */
  vmcore: string | null;
  /** BTF for the vmcore (else the dump's own .BTF). */
  btf: string | null;
  rd: string[];
  kmem: string | null;
  kallsyms: string | null;
  /** The same table already parsed (live mode read /proc/kallsyms once for the trace): wins over the file. */
  kallsymsTable?: Kallsyms;
  slabinfo: string | null;
  raw: { file: string; base: bigint } | null;
  trace: string | null;
  geometry: GeometryHints;
  scan: Partial<ScanOptions>;
  freeOnlyPct: number;
  /** Drop young allocations as the original does instead of keeping the marked ones. */
  strictFreeOnly: boolean;
  mark: MarkOptions;
  verdict: VerdictRules;
  /** Clusters in the report. */
  top: number;
  /** Set by requestFromRecording when the directory holds no slab memory (fine for vmalloc/page analyses). */
  recordingWithoutMemory?: string;
  /** /proc snapshots at both ends of a window (--from DIR with guest/*.before/.after), for --type auto. */
  snapshots: import('../analyze.js').Snapshots | null;
  /** For `extract`: record the dump pages the analysis reads, and see the open dump before it closes. */
  vmcoreHook?: { capturePages: true; beforeClose(v: OpenVmcore, set: SlabSet): void };
}

export function defaultRequest(): AnalyzeRequest {
  return {
    snapshots: null, vmcore: null, btf: null, rd: [], kmem: null, kallsyms: null, slabinfo: null, raw: null, trace: null, geometry: {}, scan: {},
    freeOnlyPct: 20, strictFreeOnly: false, mark: { ...DEFAULT_MARK }, verdict: { ...DEFAULT_VERDICT }, top: 5,
  };
}

/** Fills a request from a recording directory (../shared/recordings layout); explicit fields win. */
export function requestFromRecording(dir: string, base: AnalyzeRequest = defaultRequest()): AnalyzeRequest {
  const r = findRecording(dir);
  base = {
    ...base,
    snapshots: base.snapshots ?? {
      meminfoBefore: r.meminfoBefore, meminfoAfter: r.meminfoAfter, slabinfoBefore: r.slabinfoBefore, slabinfoAfter: r.slabinfo,
      vmallocinfoBefore: r.vmallocinfoBefore, vmallocinfoAfter: r.vmallocinfoAfter, usageSeries: r.usageSeries,
    },
  };
  const explicitMemory = base.vmcore !== null || base.rd.length > 0 || base.raw !== null;
  if (!explicitMemory && r.vmcore) {
    // A dump is the complete source (every slab, exact free objects): it wins over crash text.
    return { ...base, vmcore: r.vmcore, kallsyms: base.kallsyms ?? r.kallsyms, btf: base.btf ?? r.btf, trace: base.trace ?? r.trace, geometry: { cache: base.geometry.cache ?? r.cache ?? undefined, ...base.geometry } };
  }
  if (r.rd.length === 0 && !explicitMemory) base = { ...base, recordingWithoutMemory: dir };
  return {
    ...base,
    rd: base.rd.length ? base.rd : r.rd,
    kmem: base.kmem ?? r.kmem,
    kallsyms: base.kallsyms ?? r.kallsyms,
    slabinfo: base.slabinfo ?? r.slabinfo,
    trace: base.trace ?? r.trace,
    geometry: { cache: base.geometry.cache ?? r.cache ?? undefined, ...base.geometry },
  };
}

export interface ClusterReport {
  rank: number;
  count: number;
  similarity: number;
  object: string;
  /** Byte offsets whose value differs between objects of the cluster. */
  varyingOffsets: number[];
  words: WordInfo[] | null;
}

export interface CallSiteReport extends CallSiteRow {}

export interface UnfreedReport {
  comm: string;
  pid: number;
  function: string;
  ptr: string;
  marked: boolean;
  readable: boolean;
  similarity: number;
  age: number;
  young: boolean;
  stack: string[] | null;
}

export interface DumpReport {
  file: string;
  format: string;
  live: boolean;
  osrelease: string | null;
  kaslrOffset: string;
  physBase: string;
  pageOffsetBase: string;
  types: string;
  /** Pages the analysis asked for that the dump does not hold (filtered out by makedumpfile). */
  excludedPages: number;
  corruptPages: number;
}

export interface Report {
  schema: typeof REPORT_SCHEMA;
  type: 'slab';
  source: { memory: string; freeState: string; addressSpace: string; kallsyms: string | null; dump: DumpReport | null };
  cache: { name: string; objectSize: number; objectsPerSlab: number; slabSize: number; allocated: number | null; geometrySource: string };
  scan: ScanStats;
  clusters: ClusterReport[];
  trace: null | {
    file: string;
    stats: TraceStats;
    window: { start: number; end: number; allocCutoff: number; freeOnlyPct: number };
    allocsSeen: number;
    freesSeen: number;
    reallocWithoutFree: number;
    /** Young (free-only window) unfreed allocations that did not match a hot cluster: not counted. */
    youngSetAside: number;
    strictFreeOnly: boolean;
  };
  callSites: CallSiteReport[];
  unfreed: UnfreedReport[];
  verdict: null | {
    type: 'slab';
    cache: string;
    function: string;
    object: string;
    similarObjects: number;
    unfreed: number;
    marked: number;
  };
  verdictReason: string;
  warnings: string[];
  elapsedMs: number;
  /** The /proc check over the window, when snapshots were given (--from with before/after files). */
  check?: import('../check/leak.js').CheckResult;
  /** Live runs only: the window, what was traced, and the /proc check over the window. */
  live?: LiveInfo;
}

export interface LiveInfo {
  durationS: number;
  eventsTraced: number;
  lostEvents: number;
  saved: string | null;
  check: import('../check/leak.js').CheckResult;
}

interface Loaded {
  set: SlabSet;
  /** Streaming sources are scanned while they are read. */
  pre?: ScanResult;
  kallsyms: Kallsyms | null;
  vmcore: OpenVmcore | null;
}

function loadVmcore(req: AnalyzeRequest, warnings: string[]): Loaded {
  if (req.rd.length || req.raw || req.kmem) throw new MemleakError('E_USAGE', '--vmcore is a complete memory source: do not combine it with --rd, --raw or --kmem');
  const v = openVmcore({ vmcore: req.vmcore!, kallsyms: req.kallsyms, kallsymsTable: req.kallsymsTable, btf: req.btf, capturePages: req.vmcoreHook?.capturePages });
  try {
    warnings.push(...v.warnings);
    let cache: KmemCache;
    // An extract must also answer the summary a later run without --cache makes.
    const summary = !req.geometry.cache || req.vmcoreHook ? summarizeCaches(v) : null;
    // An extract remembers its cache (SYSAK note): `--from` a saved run analyses the same one.
    const wanted = req.geometry.cache ?? (typeof v.dump.extractInfo?.cache === 'string' ? v.dump.extractInfo.cache : undefined);
    if (wanted) cache = findSlabCache(v, wanted);
    else {
      const suspect = chooseSuspectCache(summary!);
      if (!suspect) throw new MemleakError('E_NO_DATA', 'the dump has no unreclaimable slab cache with objects', { file: v.dump.path });
      cache = suspect.cache;
      warnings.push(`no --cache given: analysing ${cache.name}, the unreclaimable cache with the most allocated bytes in the dump`);
    }
    const walk = walkCache(v, cache);
    warnings.push(...walk.warnings);
    return { set: slabSetFromWalk(v, walk), kallsyms: v.syms, vmcore: v };
  } catch (e) {
    v.close();
    throw e;
  }
}

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

/** The request's symbol table: parsed by the caller, or from the --kallsyms file, or none. */
export function kallsymsOf(req: AnalyzeRequest): Kallsyms | null {
  return req.kallsymsTable ?? (req.kallsyms ? Kallsyms.parse(readText(req.kallsyms), req.kallsyms) : null);
}

async function loadMemory(req: AnalyzeRequest, warnings: string[]): Promise<Loaded> {
  if (req.recordingWithoutMemory) {
    throw new MemleakError('E_NO_DATA', 'no slab memory in this directory: expected a vmcore, crash/rd64_pages.txt or crash/rdS_pages.txt (or give --vmcore / --rd / --raw)', { file: req.recordingWithoutMemory });
  }
  if (req.vmcore) return loadVmcore(req, warnings);
  if (req.btf) throw new MemleakError('E_USAGE', '--btf goes with --vmcore');
  const kallsyms = kallsymsOf(req);
  let kmem: KmemReport | null = null;
  if (req.kmem) kmem = parseCrashKmem(readAs(req.kmem, 'kmem'), req.kmem);
  let slabinfo: Map<string, SlabinfoRow> | null = null;
  if (req.slabinfo) slabinfo = parseSlabinfo(readAs(req.slabinfo, 'slabinfo'), req.slabinfo);
  const geometry = resolveGeometry(req.geometry, kmem, slabinfo);
  if (req.raw) {
    if (req.rd.length) throw new MemleakError('E_USAGE', '--raw and --rd are different memory sources: give one');
    if (req.raw.file === '-' || !kmem) return streamRaw(req, geometry, kallsyms, warnings);
    const mem = new RawFileMemory(req.raw.file, req.raw.base);
    const { slabs, trailingBytes } = mem.slabs(geometry.slabSize);
    if (slabs.length === 0) throw new MemleakError('E_NO_DATA', `raw dump is smaller than one ${geometry.slabSize}-byte slab`, { file: req.raw.file });
    if (trailingBytes) warnings.push(`${req.raw.file}: ${trailingBytes} bytes after the last whole slab were not scanned`);
    return {
      set: {
        cache: geometry, slabs, memory: mem, allocated: (a) => kmem?.objects.get(a) ?? null,
        freeIndexes: kmem ? undefined : () => null,
        addressSpace: estimateAddressSpace(slabs), freeSource: kmem ? 'crash kmem -S object markers' : 'none (all objects counted)',
      },
      kallsyms,
      vmcore: null,
    };
  }
  if (req.rd.length === 0) throw new MemleakError('E_USAGE', 'no memory source: give --rd FILE (crash rd -64 text), --raw FILE --base ADDR, or --from DIR');
  const mem = new SparseMemory(`crash rd text (${req.rd.join(', ')})`);
  for (const f of req.rd) parseCrashRd(readAs(f, 'rd'), f, mem);
  const sym = resolveSymbolicWords(mem, kallsyms);
  if (sym.unresolved) warnings.push(`${sym.unresolved} rd -S symbol words did not resolve${kallsyms ? ' in kallsyms' : ': give --kallsyms'}`);
  return { set: slabSetFromMemory(mem, geometry, kmem), kallsyms, vmcore: null };
}

/**
 * `--raw FILE|-` without free-object markers: streamed through the scanner's ring of shared buffers
 * (bounded memory, stdin works); the report's words come from the representatives copied out.
 */
async function streamRaw(req: AnalyzeRequest, geometry: CacheGeometry, kallsyms: Kallsyms | null, warnings: string[]): Promise<Loaded> {
  const { file, base } = req.raw!;
  if (base & 0xfffn) throw new MemleakError('E_USAGE', `--base ${hex(base)} is not page aligned`, { file });
  let fd: number;
  try {
    fd = file === '-' ? 0 : openSync(file, 'r');
  } catch (e) {
    throw new MemleakError('E_IO', `cannot open raw dump: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file });
  }
  try {
    // The end of a stream is unknown up front: the direct map is bounded 4 TiB above the first slab.
    const space = estimateAddressSpace([base]);
    const r = await scanStream(fdSource(fd, file), { stride: geometry.stride, objsPerSlab: geometry.objsPerSlab, slabSize: geometry.slabSize, base }, space, req.scan);
    if (r.trailingBytes) warnings.push(`${file === '-' ? 'stdin' : file}: ${r.trailingBytes} bytes after the last whole slab were not scanned`);
    const slabs = r.slabs > 0 ? [base, base + BigInt((r.slabs - 1) * geometry.slabSize)] : [base];
    return {
      set: {
        cache: geometry, slabs, memory: r.reps, allocated: () => null, freeIndexes: () => null,
        addressSpace: space, freeSource: 'none (all objects counted)',
      },
      kallsyms,
      vmcore: null,
      pre: r.scan,
    };
  } finally {
    if (fd !== 0) closeSync(fd);
  }
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

export async function analyze(req: AnalyzeRequest): Promise<Report> {
  const t0 = performance.now();
  const warnings: string[] = [];
  const loaded = await loadMemory(req, warnings);
  try {
    const report = await analyzeLoaded(req, loaded, warnings, t0);
    if (loaded.vmcore && req.vmcoreHook) req.vmcoreHook.beforeClose(loaded.vmcore, loaded.set);
    return report;
  } finally {
    loaded.vmcore?.close();
  }
}

async function analyzeLoaded(req: AnalyzeRequest, loaded: Loaded, warnings: string[], t0: number): Promise<Report> {
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
  let verdict: Report['verdict'] = null;
  let verdictReason = 'no trace given: clusters only (give --trace to name the leaking function)';
  let traceReport: Report['trace'] = null;
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

