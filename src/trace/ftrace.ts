/**
 * ftrace text (trace or trace_pipe) of the kmem events: kmalloc(_node), kmem_cache_alloc(_node), kfree,
 * kmem_cache_free, mm_page_alloc, mm_page_free(_batched). Line layout (kernel/trace/trace_output.c):
 *   `<comm>-<pid> [(tgid)] [CPU] [FLAGS] SECS.USECS: EVENT: key=value ...`
 * Call sites are `%pS` (`fn+0x24/0x140 [mod]`) since 5.x, raw hex before (resolved through kallsyms).
 * With options/stacktrace a `<stack trace>` entry with ` => frame` lines follows an event; trace_pipe may
 * put another CPU's event in between, so stacks attach to the last event of the same CPU and pid.
 */
import { MemleakError } from '../errors.js';
import { Kallsyms } from '../kernel/kallsyms.js';

export type EventKind = 'alloc' | 'free' | 'page_alloc' | 'page_free';

export interface TraceEvent {
  kind: EventKind;
  event: string;
  comm: string;
  pid: number;
  cpu: number;
  ts: number;
  /** Object address (slab events) or struct page address (page events), as a hex string without 0x. */
  ptr: string;
  callSite: string | null;
  bytesReq: number;
  bytesAlloc: number;
  /** kmem_cache_free name= (5.12+) */
  cacheName: string | null;
  gfp: string | null;
  accounted: boolean | null;
  pfn: number | null;
  order: number;
  migratetype: number | null;
  stack: string[] | null;
  line: number;
}

export interface TraceStats {
  lines: number;
  events: number;
  byEvent: Record<string, number>;
  lostEvents: number;
  lostMarkers: number;
  badLines: number;
  firstBadLine: number | null;
  firstBadText: string | null;
  stacks: number;
  orphanStacks: number;
  firstTs: number | null;
  lastTs: number | null;
  callSiteFormat: 'symbolic' | 'hex' | 'mixed' | 'none';
  markers: { text: string; ts: number }[];
}

export interface ParsedTrace {
  file: string;
  events: TraceEvent[];
  stats: TraceStats;
}

const HEAD = /^\s*(.*?)-(\d+)\s+(?:\(\s*[\d-]+\)\s+)?\[(\d+)\]\s+(?:(\S{4,5})\s+)?(\d+\.\d+):\s+(<stack trace>|<user stack trace>|\w+):?\s?(.*)$/;
const FIELD = /(?:^|\s)([a-z_]+)=/g;

function parseFields(s: string): Map<string, string> {
  const out = new Map<string, string>();
  const keys: { k: string; start: number; end: number }[] = [];
  FIELD.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = FIELD.exec(s)) !== null) keys.push({ k: m[1], start: m.index, end: m.index + m[0].length });
  for (let i = 0; i < keys.length; i++) {
    const v = s.slice(keys[i].end, i + 1 < keys.length ? keys[i + 1].start : s.length).trim();
    out.set(keys[i].k, v);
  }
  return out;
}

const ALLOC_EVENTS = new Set(['kmalloc', 'kmalloc_node', 'kmem_cache_alloc', 'kmem_cache_alloc_node']);
const FREE_EVENTS = new Set(['kfree', 'kmem_cache_free']);

export function looksLikeTrace(text: string): boolean {
  for (const line of text.split('\n', 50)) {
    if (line.startsWith('#') || line.trim() === '') continue;
    return HEAD.test(line) || /^CPU:\d+ \[LOST \d+ EVENTS\]/.test(line);
  }
  return false;
}

export function parseFtrace(text: string, file: string, ks: Kallsyms | null = null): ParsedTrace {
  const events: TraceEvent[] = [];
  const stats: TraceStats = {
    lines: 0, events: 0, byEvent: {}, lostEvents: 0, lostMarkers: 0, badLines: 0, firstBadLine: null, firstBadText: null,
    stacks: 0, orphanStacks: 0, firstTs: null, lastTs: null, callSiteFormat: 'none', markers: [],
  };
  const lastByCpu = new Map<number, TraceEvent>();
  let pendingStack: { cpu: number; pid: number; target: TraceEvent | null; frames: string[] } | null = null;
  let symbolic = 0;
  let hexSites = 0;
  const resolved = new Map<string, string>();
  const bad = (lineNo: number, l: string) => {
    stats.badLines++;
    if (stats.firstBadLine === null) {
      stats.firstBadLine = lineNo;
      stats.firstBadText = l.slice(0, 120);
    }
  };
  const flushStack = () => {
    if (pendingStack) {
      if (pendingStack.target) pendingStack.target.stack = pendingStack.frames;
      else stats.orphanStacks++;
      pendingStack = null;
    }
  };
  let pos = 0;
  let lineNo = 0;
  while (pos < text.length) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    const l = text.slice(pos, end);
    pos = end + 1;
    lineNo++;
    stats.lines++;
    if (l.length === 0 || l[0] === '#') continue;
    if (l.startsWith(' => ')) {
      if (pendingStack) pendingStack.frames.push(l.slice(4).trim());
      else bad(lineNo, l);
      continue;
    }
    flushStack();
    const lost = /^CPU:(\d+) \[LOST (\d+) EVENTS\]/.exec(l);
    if (lost) {
      stats.lostEvents += Number(lost[2]);
      stats.lostMarkers++;
      continue;
    }
    const m = HEAD.exec(l);
    if (!m) {
      bad(lineNo, l);
      continue;
    }
    const comm = m[1];
    const pid = Number(m[2]);
    const cpu = Number(m[3]);
    const ts = Number(m[5]);
    const ev = m[6];
    const body = m[7];
    if (stats.firstTs === null) stats.firstTs = ts;
    stats.lastTs = ts;
    if (ev === '<user stack trace>') continue;
    if (ev === '<stack trace>') {
      stats.stacks++;
      const target = lastByCpu.get(cpu);
      pendingStack = { cpu, pid, target: target && target.pid === pid && !target.stack ? target : null, frames: [] };
      continue;
    }
    if (ev === 'tracing_mark_write' || ev === 'print') {
      stats.markers.push({ text: body.trim(), ts });
      continue;
    }
    let kind: EventKind;
    if (ALLOC_EVENTS.has(ev)) kind = 'alloc';
    else if (FREE_EVENTS.has(ev)) kind = 'free';
    else if (ev === 'mm_page_alloc') kind = 'page_alloc';
    else if (ev === 'mm_page_free' || ev === 'mm_page_free_batched') kind = 'page_free';
    else {
      stats.byEvent[ev] = (stats.byEvent[ev] ?? 0) + 1;
      continue;
    }
    const f = parseFields(body);
    const ptr = kind === 'alloc' || kind === 'free' ? f.get('ptr') : f.get('page');
    if (ptr === undefined || !/^(0x)?[0-9a-f]+$/.test(ptr)) {
      bad(lineNo, l);
      continue;
    }
    let callSite = f.get('call_site') ?? null;
    if (callSite !== null) {
      if (/^(0x)?[0-9a-f]{8,16}$/.test(callSite)) {
        hexSites++;
        const raw = callSite.replace(/^0x/, '');
        let r = resolved.get(raw);
        if (r === undefined) {
          const s = ks?.lookup(BigInt('0x' + raw)) ?? null;
          r = s ? Kallsyms.format(s) : `0x${raw}`;
          resolved.set(raw, r);
        }
        callSite = r;
      } else symbolic++;
    }
    const e: TraceEvent = {
      kind,
      event: ev,
      comm,
      pid,
      cpu,
      ts,
      ptr: ptr.replace(/^0x/, '').padStart(16, '0'),
      callSite,
      bytesReq: Number(f.get('bytes_req') ?? 0),
      bytesAlloc: Number(f.get('bytes_alloc') ?? 0),
      cacheName: f.get('name') ?? null,
      gfp: f.get('gfp_flags') ?? null,
      accounted: f.has('accounted') ? f.get('accounted') === 'true' : null,
      pfn: f.has('pfn') ? Number(f.get('pfn')) : null,
      order: Number(f.get('order') ?? 0),
      migratetype: f.has('migratetype') ? Number(f.get('migratetype')) : null,
      stack: null,
      line: lineNo,
    };
    stats.byEvent[ev] = (stats.byEvent[ev] ?? 0) + 1;
    stats.events++;
    events.push(e);
    lastByCpu.set(cpu, e);
  }
  flushStack();
  stats.callSiteFormat = symbolic && hexSites ? 'mixed' : symbolic ? 'symbolic' : hexSites ? 'hex' : 'none';
  if (stats.events === 0 && stats.badLines > 0) {
    throw new MemleakError('E_FORMAT', `no kmem trace events; first unreadable line: ${JSON.stringify(stats.firstBadText)}`, { file, line: stats.firstBadLine ?? undefined });
  }
  checkPointersNotHashed(events, file);
  if (ks !== null) expectTraceMatchesKallsyms(events, hexSites > 0 && [...resolved.values()].every((r) => r.startsWith('0x')), ks, file);
  return { file, events, stats };
}

/**
 * A trace from another boot or build: hex call sites that all fail to resolve (other KASLR offset), or
 * symbolic call sites naming functions this kallsyms does not have (other kernel).
 */
function expectTraceMatchesKallsyms(events: TraceEvent[], noHexResolves: boolean, ks: Kallsyms, file: string): void {
  if (noHexResolves) {
    throw new MemleakError('E_KALLSYMS', `no trace call site resolves through ${ks.source}: the kallsyms file is not from the traced kernel (KASLR offsets differ)`, { file });
  }
  const names = new Set<string>();
  for (const e of events) {
    if (e.callSite && !e.callSite.startsWith('0x')) names.add(e.callSite.replace(/\+.*$/, ''));
    if (names.size >= 200) break;
  }
  if (names.size === 0) return;
  let found = 0;
  for (const n of names) if (ks.addressOf(n) !== null) found++;
  if (found / names.size < 0.5) {
    throw new MemleakError('E_KALLSYMS', `only ${found} of ${names.size} trace call-site functions are in ${ks.source}: the trace and the kallsyms are from different kernels`, { file });
  }
}

/**
 * Since 4.15 %p hashes pointers (32 significant bits, upper half zero) unless the kernel booted with
 * no_hash_pointers (5.12+). Hashed pointers cannot be matched to memory, so such a trace is refused.
 */
function checkPointersNotHashed(events: TraceEvent[], file: string): void {
  let slab = 0;
  let hashed = 0;
  for (const e of events) {
    if (e.kind !== 'alloc') continue;
    if (/^0+$/.test(e.ptr)) continue;
    slab++;
    if (e.ptr.startsWith('00000000')) hashed++;
    if (slab >= 2000) break;
  }
  if (slab > 0 && hashed / slab > 0.5) {
    throw new MemleakError(
      'E_TRACE',
      `the trace's pointers are hashed (ptr=${events.find((e) => e.kind === 'alloc' && e.ptr.startsWith('00000000'))?.ptr}): they cannot be matched to memory. Boot with no_hash_pointers, or use live mode, which reads the raw ring buffer`,
      { file },
    );
  }
}
