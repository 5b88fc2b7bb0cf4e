/** The page report: plain data, rendered by report/kinds.ts or printed as JSON. */
import type { CheckResult, KindAnalysis } from '../check/leak.js';
import type { LiveInfo, REPORT_SCHEMA } from '../request.js';
import type { UnaccountedPages } from './dump-pages.js';
import type { PageCallerRow } from './page-trace.js';

export interface PageReport {
  schema: typeof REPORT_SCHEMA;
  type: 'page';
  source: string;
  check: CheckResult | null;
  trace: null | { file: string; allocsSeen: number; freesSeen: number; skippedMovable: number; skippedSlabOrVmalloc: number; skippedOwn: number; withoutStack: number; window: { start: number; end: number; allocCutoff: number } };
  /** With a dump: in-use kernel pages nothing accounts for, and their most common first words. */
  dumpPages: UnaccountedPages | null;
  callers: PageCallerRow[];
  verdict: null | { type: 'page'; function: string; blocks: number; bytes: number; similar: number; pattern: string | null };
  verdictReason: string;
  warnings: string[];
  elapsedMs: number;
  live?: LiveInfo;
  /** --type auto: every kind analysed, in order, and why (src/analyze.ts); the report is the first that named a leaker. */
  analysed?: KindAnalysis[];
}
