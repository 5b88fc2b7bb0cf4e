/** The slab report: plain data, rendered by report/text.ts and report/sysak.ts, or printed as JSON. */
import type { Timings } from '../phases.js';
import type { CheckResult, KindAnalysis } from '../check/leak.js';
import type { ScanStats } from '../scan/scanner.js';
import type { TraceStats } from '../trace/ftrace.js';
import type { LiveInfo, REPORT_SCHEMA } from '../request.js';
import type { WordInfo } from './symbolize.js';
import type { CallSiteRow } from './verdict.js';
import type { ClusterGrowth } from './churn.js';

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

/** One leaking call site and the cluster its objects pile up in. */
export interface Leaker {
  function: string;
  /** Rank of its cluster in clusters[] (1 = largest). */
  cluster: number;
  object: string;
  similarObjects: number;
  unfreed: number;
  marked: number;
  /** Look-alike allocations of its cluster in the window, frees of its shape, and the difference. */
  allocs: number;
  frees: number;
  growth: number;
  words: WordInfo[] | null;
}

export interface UnfreedReport {
  comm: string;
  pid: number;
  function: string;
  ptr: string;
  marked: boolean;
  /** Looks like a hot cluster that does not grow: replaced in place, not leaked. */
  replacing: boolean;
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

export interface SlabReport {
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
    /** Frees in the window of objects allocated before it, in this cache's slabs, and what their slots showed. */
    preWindowFrees: { inCache: number; reused: number; unreadable: number; wiped: number; otherShapes: number };
  };
  /** Per hot cluster: look-alike allocations of the window, frees of its shape in the window, net growth. */
  clusterGrowth: Omit<ClusterGrowth, 'cluster'>[];
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
    /** Every leaking call site with its own cluster, by growth; [0] is the one above. */
    leakers: Leaker[];
  };
  verdictReason: string;
  warnings: string[];
  elapsedMs: number;
  /** Time, bytes and peak memory of every phase (open, symbols, types, memmap walk, ... mark). */
  timings: Timings;
  /** The /proc check over the window, when snapshots were given (--from with before/after files). */
  check?: CheckResult;
  /** Live runs only: the window, what was traced, and the /proc check over the window. */
  live?: LiveInfo;
  /** --type auto: every kind analysed, in order, and why (src/analyze.ts); the report is the first that named a leaker. */
  analysed?: KindAnalysis[];
}
