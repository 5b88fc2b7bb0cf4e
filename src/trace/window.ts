/** The window of a trace, shared by the slab and the page analyses (the original's -r free-only part). */
import type { ParsedTrace } from './ftrace.js';

/** The trace window and its free-only cutoff: allocations after allocCutoff are "young" (the original's -r). */
export function traceWindow(trace: ParsedTrace, freeOnlyPct: number): { start: number; end: number; allocCutoff: number } {
  const start = trace.stats.firstTs ?? 0;
  const end = trace.stats.lastTs ?? 0;
  return { start, end, allocCutoff: start + ((end - start) * (100 - freeOnlyPct)) / 100 };
}
