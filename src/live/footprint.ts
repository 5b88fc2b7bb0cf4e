/**
 * This tool's own kernel-memory footprint over a live window, so that it never counts as growth of
 * allocPages (the residual: everything not free, LRU, slab or vmalloc). What we add there: our page
 * tables (VmPTE), the kernel stacks of our threads, and tracing ring buffers -- the instance's, and the
 * top-level buffer that the first event enabled on a boot expands (tracing_update_buffers()). Our
 * anonymous memory is on the LRU (Active/Inactive), outside the residual already.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';

/** x86_64 THREAD_SIZE (16 KiB with KASAN off): one kernel stack per thread. */
const THREAD_STACK_BYTES = 16 * 1024;

export interface Footprint {
  pageTables: number;
  threads: number;
  /** buffer_total_size_kb of the top level and of our instance, in bytes. */
  ringBuffers: number;
}

function statusField(text: string, key: string): number {
  const m = new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

function totalKb(dir: string): number {
  try {
    // "1416" or "7 (expanded: 1408)": the first number is what is allocated now.
    const m = /^(\d+)/.exec(fs.readFileSync(join(dir, 'buffer_total_size_kb'), 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Our footprint now; `tracingDirs` are the top-level tracefs and our instance (absent ones count 0). */
export function measureFootprint(tracingDirs: string[]): Footprint {
  let status = '';
  try {
    status = fs.readFileSync('/proc/self/status', 'utf8');
  } catch {
    /* not Linux: nothing to measure */
  }
  return {
    pageTables: statusField(status, 'VmPTE') * 1024,
    threads: statusField(status, 'Threads'),
    ringBuffers: tracingDirs.reduce((s, d) => s + totalKb(d), 0),
  };
}

/** Our thread ids (/proc/self/task): the page allocations made in their context are ours. */
export function ownThreadIds(): number[] {
  try {
    return fs.readdirSync('/proc/self/task').map(Number).filter((n) => Number.isInteger(n) && n > 0);
  } catch {
    return [process.pid];
  }
}

/** Bytes our footprint grew by between two measurements (never below 0: shrinking is not ours to credit). */
export function footprintGrowth(a: Footprint, b: Footprint): number {
  const d = b.pageTables - a.pageTables + (b.threads - a.threads) * THREAD_STACK_BYTES + (b.ringBuffers - a.ringBuffers);
  return Math.max(0, d);
}
