/** The vmalloc report: plain data, rendered by report/kinds.ts or printed as JSON. */
import type { CheckResult, KindAnalysis } from '../check/leak.js';
import type { LiveInfo, REPORT_SCHEMA } from '../request.js';
import type { VmallocCallerRow } from './vmallocinfo.js';

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
  /** --type auto: every kind analysed, in order, and why (src/analyze.ts); the report is the first that named a leaker. */
  analysed?: KindAnalysis[];
}
