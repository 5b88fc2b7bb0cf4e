/**
 * Allocations still outstanding at the end of the trace. As in the original, frees count during the whole
 * window and allocations made in its last freeOnlyPct% are "young": they may simply not have been freed
 * yet. The original drops them (strict); by default they are kept aside and count only if their
 * contents match a hot cluster (see verdict.ts), so a leak's last minutes are not thrown away.
 */
import type { ParsedTrace, TraceEvent } from '../trace/ftrace.js';
import { traceWindow } from '../trace/window.js';
import type { PreWindowFree } from './churn.js';

export interface OutstandingOptions {
  /** Percent of the window at its end in which allocations are not counted (--free-only; default 20 as the original). */
  freeOnlyPct: number;
  /** Keep only allocations whose bytes_alloc equals this (the cache's object size), if set. */
  bytesAlloc?: number;
  /** Keep only kmem_cache_alloc/free events of this cache name where the event carries a name. */
  cacheName?: string;
  /** The original's rule to the letter: young allocations are dropped, not set aside. */
  strict?: boolean;
}

export interface OutstandingAlloc {
  ptr: bigint;
  callSite: string;
  comm: string;
  pid: number;
  ts: number;
  /** Seconds between the allocation and the end of the window. */
  age: number;
  /** Allocated in the free-only part of the window: presumed in flight unless it looks like the leak. */
  young: boolean;
  bytesReq: number;
  stack: string[] | null;
}

export interface OutstandingResult {
  allocs: OutstandingAlloc[];
  window: { start: number; end: number; allocCutoff: number };
  allocsSeen: number;
  freesSeen: number;
  /** Allocation of an address that was already live: a free we did not see (lost event, other path). */
  reallocWithoutFree: number;
  /** Frees of addresses allocated before the trace started. */
  freesOfUnknown: number;
  /** Allocations made after the cutoff (in the free-only part of the window). */
  lateAllocs: number;
  /** The frees of objects allocated before the window (any cache: kfree names none), for churn (churn.ts). */
  preWindowFrees: PreWindowFree[];
}

export function outstandingSlab(trace: ParsedTrace, opts: OutstandingOptions): OutstandingResult {
  const { start, end, allocCutoff } = traceWindow(trace, opts.freeOnlyPct);
  const live = new Map<string, TraceEvent>();
  let allocsSeen = 0;
  let freesSeen = 0;
  let realloc = 0;
  let unknownFrees = 0;
  let late = 0;
  const preFrees: PreWindowFree[] = [];
  const preFreed = new Map<string, PreWindowFree>();
  for (const e of trace.events) {
    if (e.kind === 'alloc') {
      if (/^0+$/.test(e.ptr)) continue; // failed allocation
      if (opts.bytesAlloc !== undefined && e.bytesAlloc !== opts.bytesAlloc) continue;
      allocsSeen++;
      if (live.has(e.ptr)) realloc++;
      const pf = preFreed.get(e.ptr);
      if (pf) {
        pf.reusedLater = true;
        preFreed.delete(e.ptr);
      }
      if (e.ts > allocCutoff) {
        late++;
        if (opts.strict) {
          live.delete(e.ptr);
          continue;
        }
      }
      live.set(e.ptr, e);
    } else if (e.kind === 'free') {
      if (/^0+$/.test(e.ptr)) continue; // kfree(NULL)
      if (opts.cacheName && e.cacheName && e.cacheName !== opts.cacheName && !live.has(e.ptr)) continue;
      freesSeen++;
      if (!live.delete(e.ptr)) {
        unknownFrees++;
        const f: PreWindowFree = { ptr: BigInt('0x' + e.ptr), callSite: e.callSite ?? '(unknown)', ts: e.ts, reusedLater: false };
        preFrees.push(f);
        preFreed.set(e.ptr, f);
      }
    }
  }
  const allocs: OutstandingAlloc[] = [];
  for (const e of live.values()) {
    allocs.push({
      ptr: BigInt('0x' + e.ptr),
      callSite: e.callSite ?? '(unknown)',
      comm: e.comm,
      pid: e.pid,
      ts: e.ts,
      age: end - e.ts,
      young: e.ts > allocCutoff,
      bytesReq: e.bytesReq,
      stack: e.stack,
    });
  }
  allocs.sort((a, b) => a.ts - b.ts);
  return { allocs, window: { start, end, allocCutoff }, allocsSeen, freesSeen, reallocWithoutFree: realloc, freesOfUnknown: unknownFrees, lateAllocs: late, preWindowFrees: preFrees };
}
