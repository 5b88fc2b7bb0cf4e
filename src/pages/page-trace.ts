/**
 * Page leaks by caller: mm_page_alloc / mm_page_free(_batched) events with a kernel stack per
 * allocation (options/stacktrace, or a stacktrace trigger on mm_page_alloc). Outstanding blocks at
 * the end of the window are grouped by the first stack frame outside the page allocator; pages of
 * slabs and of vmalloc areas belong to those analyses and are left out, and so are movable and
 * reclaimable migratetypes (page cache, anonymous memory), as the original does. Bytes are
 * PAGE_SIZE << order, counted once per block.
 */
import type { MemoryReader } from '../util/memory.js';
import type { ParsedTrace, TraceEvent } from '../trace/ftrace.js';
import { traceWindow } from '../trace/window.js';
import { PAGE_SIZE } from '../util/page.js';

/** Frames that are the allocator itself (or the tracing that recorded the stack), not its caller, by
 *  their name before 6.10 (see allocatorName). Frames come with or without `+off/size` (trace option
 *  sym-offset). `get_free_pages` is 6.10's name of `__get_free_pages`; `___kmalloc_large_node` (6.11)
 *  is what large kmalloc()s go through. */
const ALLOCATOR = /^(__alloc_pages|alloc_pages|__alloc_pages_bulk|alloc_pages_bulk\w*|_?_?get_free_pages|get_zeroed_page|alloc_pages_exact\w*|__folio_alloc|folio_alloc|folio_alloc_mpol|vma_alloc_folio|__alloc_pages_node|alloc_pages_node|alloc_pages_vma|__alloc_pages_nodemask|alloc_page_interleave|alloc_pages_mpol|alloc_contig_pages|__page_frag_cache_refill|page_frag_alloc\w*|_{2,3}kmalloc_large\w*|kmalloc_large\w*|kmalloc_order\w*|trace_event_raw_event_\w+|perf_trace_\w+|__traceiter_\w+|stack_trace_save\w*|__ftrace_trace_stack|ftrace_\w+)(\+|$|\s)/;
/** Stacks through these are slab or vmalloc pages: analysed as such, not as page leaks. Page tables of
 *  the kernel's own address space (__pte_alloc_kernel: vmalloc and ioremap mappings) stay allocated when
 *  the areas are unmapped (vunmap clears entries, it does not free table pages), so vmalloc churn leaves
 *  them outstanding without any leak (25 blocks in the 6.12 churn control). */
const OTHER_OWNER = /^(allocate_slab|new_slab|___slab_alloc|__vmalloc_area_node|vm_area_alloc_pages|__vmalloc_node_range|__pte_alloc_kernel)(\+|$|\s)/;
/**
 * A frame's function as it was named before 6.10: memory allocation profiling (b951aaff5035 "mm: enable
 * page allocation tagging", 88ae5fb755b0 "mm: vmalloc: enable memory allocation profiling", v6.10)
 * renamed the allocator's functions to `NAME_noprof` and made `NAME` a macro that wraps the call in
 * alloc_hooks(), so stacks of 6.10+ kernels show `__alloc_pages_noprof`, `alloc_pages_mpol_noprof`,
 * `__vmalloc_node_range_noprof` where older ones show the plain names (kallsyms tells which: both
 * spellings are never in one kernel).
 */
export function allocatorName(frame: string): string {
  return frame.replace(/^(\w+?)_noprof(?=\+|$|\s)/, '$1');
}
const MIGRATE_UNMOVABLE = 0;

export interface PageBlock {
  pfn: number;
  order: number;
  caller: string;
  stack: string[] | null;
  comm: string;
  pid: number;
  ts: number;
  young: boolean;
  /** First 8 bytes of the block, when memory is readable. */
  header: bigint | null;
}

export interface PageCallerRow {
  caller: string;
  blocks: number;
  bytes: number;
  young: number;
  /** Blocks whose first 8 bytes equal the caller's most common non-zero header. */
  similar: number;
  pattern: string | null;
}

export interface PageTraceResult {
  rows: PageCallerRow[];
  blocks: PageBlock[];
  allocsSeen: number;
  freesSeen: number;
  skippedMovable: number;
  skippedOtherOwner: number;
  /** Allocations made by this tool's own threads (live mode): its page tables and stacks are not a leak. */
  skippedOwn: number;
  withoutStack: number;
  window: { start: number; end: number; allocCutoff: number };
}

export function callerOf(stack: string[] | null): string | null {
  if (!stack) return null;
  for (const f of stack) {
    const name = allocatorName(f);
    if (OTHER_OWNER.test(name)) return '';
    if (!ALLOCATOR.test(name)) return f;
  }
  return null;
}

export function outstandingPages(
  trace: ParsedTrace,
  opts: {
    freeOnlyPct: number;
    memory: MemoryReader | null;
    pageOffsetBase: bigint | null;
    pageSize?: number;
    /** With a dump: is this pfn a slab page now (PG_slab)? Catches slab pages whose stack is missing. */
    isSlabPfn?: (pfn: number) => boolean;
    /** Thread ids of this tool (live mode): their allocations are our footprint, never growth. */
    ownPids?: ReadonlySet<number>;
  },
): PageTraceResult {
  const pageSize = opts.pageSize ?? PAGE_SIZE;
  const { start, end, allocCutoff } = traceWindow(trace, opts.freeOnlyPct);
  const live = new Map<number, TraceEvent>();
  let allocs = 0;
  let frees = 0;
  let movable = 0;
  let other = 0;
  let noStack = 0;
  let own = 0;
  for (const e of trace.events) {
    if (e.pfn === null) continue;
    if (e.kind === 'page_alloc') {
      if (e.migratetype !== null && e.migratetype !== MIGRATE_UNMOVABLE) {
        movable++;
        continue;
      }
      if (opts.ownPids?.has(e.pid)) {
        own++;
        continue;
      }
      allocs++;
      live.set(e.pfn, e);
    } else if (e.kind === 'page_free') {
      frees++;
      live.delete(e.pfn);
    }
  }
  const blocks: PageBlock[] = [];
  for (const e of live.values()) {
    const c = opts.isSlabPfn?.(e.pfn!) ? '' : callerOf(e.stack);
    if (c === '') {
      other++;
      continue;
    }
    if (c === null) noStack++;
    let header: bigint | null = null;
    if (opts.memory && opts.pageOffsetBase !== null) {
      const b = opts.memory.read(opts.pageOffsetBase + BigInt(e.pfn!) * BigInt(pageSize), 8);
      if (b) header = new DataView(b.buffer, b.byteOffset).getBigUint64(0, true);
    }
    blocks.push({ pfn: e.pfn!, order: e.order, caller: c ?? '(no stack: turn on options/stacktrace)', stack: e.stack, comm: e.comm, pid: e.pid, ts: e.ts, young: e.ts > allocCutoff, header });
  }
  const byCaller = new Map<string, PageBlock[]>();
  for (const b of blocks) {
    const l = byCaller.get(b.caller) ?? [];
    l.push(b);
    byCaller.set(b.caller, l);
  }
  const rows: PageCallerRow[] = [];
  for (const [caller, list] of byCaller) {
    const counts = new Map<bigint, number>();
    for (const b of list) if (b.header !== null && b.header !== 0n) counts.set(b.header, (counts.get(b.header) ?? 0) + 1);
    let best: bigint | null = null;
    for (const [h, n] of counts) if (best === null || n > counts.get(best)!) best = h;
    const similar = best === null ? 0 : counts.get(best)!;
    rows.push({
      caller,
      blocks: list.length,
      bytes: list.reduce((n, b) => n + (pageSize << b.order), 0),
      young: list.filter((b) => b.young).length,
      similar: similar >= 2 ? similar : 0,
      pattern: best !== null && similar >= 2 ? `0x${best.toString(16).padStart(16, '0')}` : null,
    });
  }
  rows.sort((a, b) => b.blocks - b.young - (a.blocks - a.young) || b.bytes - a.bytes || a.caller.localeCompare(b.caller));
  return { rows, blocks, allocsSeen: allocs, freesSeen: frees, skippedMovable: movable, skippedOtherOwner: other, skippedOwn: own, withoutStack: noStack, window: { start, end, allocCutoff } };
}

/** Young blocks (last --free-only % of the window) may still be freed: they do not count toward the verdict. */
export const PAGE_MIN_BLOCKS = 5;

export function pageVerdict(rows: PageCallerRow[]): { row: PageCallerRow | null; reason: string } {
  const settled = (r: PageCallerRow) => r.blocks - r.young;
  const [top, next] = rows;
  if (!top || settled(top) < PAGE_MIN_BLOCKS) return { row: null, reason: `no caller holds ${PAGE_MIN_BLOCKS} or more unfreed unmovable page blocks from before the free-only window` };
  if (top.caller.startsWith('(no stack')) return { row: null, reason: 'outstanding pages have no stacks: record with options/stacktrace (or a stacktrace trigger on mm_page_alloc) to name the caller' };
  if (next && settled(next) * 2 > settled(top)) return { row: null, reason: `${top.caller} and ${next.caller} hold alike numbers of unfreed blocks (${settled(top)}, ${settled(next)}): no single leaker` };
  return { row: top, reason: `${top.caller} holds ${settled(top)} unfreed page blocks from before the free-only window, at least twice any other caller` };
}
