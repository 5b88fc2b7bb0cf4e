/**
 * What an analysis is asked (AnalyzeRequest) and the one table of defaults (DEFAULTS) that both the
 * CLI's option defaults and defaultRequest() read, so a default is written once. Also the frame every
 * report kind shares (its schema name, the live-run block). The leak kinds (slab/, vmalloc/, pages/)
 * import this file; it imports none of them.
 */
import { Kallsyms } from './kernel/kallsyms.js';
import type { Kernel } from './kernel/kernel.js';
import type { CheckResult } from './check/leak.js';
import type { Snapshots } from './check/snapshots.js';
import { DEFAULT_SCAN, type ScanOptions } from './scan/scanner.js';
import type { SlabSet } from './scan/slab-set.js';
import { findRecording } from './input/files.js';
import { readText } from './util/read-file.js';
import type { ProgressListener } from './phases.js';

export interface MarkOptions {
  /** Similarity to a hot cluster at which an object is marked (--threshold). */
  threshold: number;
  /** Clusters that count as hot: the largest N... */
  hotClusters: number;
  /** ...that hold at least this share of the scanned objects. */
  hotMinShare: number;
}

export interface VerdictRules {
  /** A verdict needs at least this many marked allocations at the call site... */
  minMarked: number;
  /** ...and at least this share of its unfreed allocations marked. */
  minMarkedShare: number;
}

/** When a hot cluster counts as replaced in place rather than growing (slab/churn.ts). */
export interface ChurnRules {
  /** A cluster whose frees of its shape balance at least this share of its marked allocations does not grow. */
  balancedShare: number;
  /** A freed slot belongs to a cluster when this share of the cluster's identity words match. */
  freedMatch: number;
  /** Identity words (fixed, non-zero u32 positions of the representative) a cluster needs to match freed slots. */
  minIdentityWords: number;
  /** Readable freed slots a free call site needs before its shapes stand for all its frees. */
  minSample: number;
}

/** Slab cache geometry given by flags (--cache, --object-size, --slab-size, --objects-per-slab). */
export interface GeometryHints {
  cache?: string;
  objectSize?: number;
  slabSize?: number;
  objectsPerSlab?: number;
}

/** Every user-facing default, in one place (libbpf-tools style); the CLI shows them in --help. */
export const DEFAULTS = {
  /** -r/--free-only: percent of the trace window at its end in which allocations are young (the original's 20). */
  freeOnlyPct: 20,
  /** --top: clusters in the report. */
  top: 5,
  /** 0.75: leaked demo_conn objects score 1.0, the other outstanding objects of the recordings at most 0.2 (README, Calibration). */
  mark: { threshold: 0.75, hotClusters: 3, hotMinShare: 0.05 } as Readonly<MarkOptions>,
  verdict: { minMarked: 5, minMarkedShare: 0.5 } as Readonly<VerdictRules>,
  /**
   * 0.8: in the recorded replace-in-place scenarios (test/scenarios/churn-*) the refreshing site's
   * allocations are balanced to 95-100%; the leakers' clusters have no frees of their shape. 0.75 of
   * identity words: a freed object loses at most its free pointer and rcu_head to the allocator.
   */
  churn: { balancedShare: 0.8, freedMatch: 0.75, minIdentityWords: 2, minSample: 5 } as Readonly<ChurnRules>,
  /** --workers: the scan engine's own default (one less than the cores, at most 7: the main thread scans or reads too)... */
  workers: DEFAULT_SCAN.workers,
  /** ...when not given: for caches of this much slab memory or more (smaller ones scan in the main thread). */
  poolMinBytes: DEFAULT_SCAN.poolMinBytes,
  /** -i/--duration: live mode's trace window in seconds (the original's 300). */
  duration: 300,
  /** --buffer-kb: ring buffer per CPU; drained every 200 ms, so it only has to hold a burst. */
  bufferKb: 8192,
  /** -t/--type */
  type: 'auto' as const,
  /** --format */
  format: 'text' as const,
};

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
  churn: ChurnRules;
  /** Clusters in the report. */
  top: number;
  /** Set by requestFromRecording when the directory holds no slab memory (fine for vmalloc/page analyses). */
  recordingWithoutMemory?: string;
  /** /proc snapshots at both ends of a window (--from DIR with guest/*.before/.after), for --type auto. */
  snapshots: Snapshots | null;
  /** Progress of long phases, as data (the CLI draws it on a terminal). */
  onProgress?: ProgressListener;
  /** Live mode: this tool's thread ids; their page allocations (our page tables, stacks) are left out. */
  ownPids?: number[];
  /** For `extract`: record the dump pages the analysis reads, and see the open dump before it closes. */
  vmcoreHook?: { capturePages: true; beforeClose(v: Kernel, set: SlabSet): void };
}

export function defaultRequest(): AnalyzeRequest {
  return {
    snapshots: null, vmcore: null, btf: null, rd: [], kmem: null, kallsyms: null, slabinfo: null, raw: null, trace: null, geometry: {}, scan: {},
    freeOnlyPct: DEFAULTS.freeOnlyPct, strictFreeOnly: false, mark: { ...DEFAULTS.mark }, verdict: { ...DEFAULTS.verdict }, churn: { ...DEFAULTS.churn }, top: DEFAULTS.top,
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

/** The request's symbol table: parsed by the caller, or from the --kallsyms file, or none. */
export function kallsymsOf(req: AnalyzeRequest): Kallsyms | null {
  return req.kallsymsTable ?? (req.kallsyms ? Kallsyms.parse(readText(req.kallsyms), req.kallsyms) : null);
}

export const REPORT_SCHEMA = 'sysak-memleak/1';

/** Live runs only: the window, what was traced, and the /proc check over the window (any report kind). */
export interface LiveInfo {
  durationS: number;
  eventsTraced: number;
  lostEvents: number;
  saved: string | null;
  check: CheckResult;
}
