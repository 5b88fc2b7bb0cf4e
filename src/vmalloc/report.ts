/** The vmalloc report: plain data, rendered by report/kinds.ts or printed as JSON. */
import type { CheckResult } from '../check/leak.js';
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
}
