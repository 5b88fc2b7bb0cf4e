/**
 * `src/trace/`: ftrace text and the trace window (window.ts), shared by the slab and the page
 * analyses; what each kind does with the events lives in that kind's folder.
 *
 * ftrace text (trace or trace_pipe) of the kmem events: kmalloc(_node), kmem_cache_alloc(_node), kfree,
 * kmem_cache_free, mm_page_alloc, mm_page_free(_batched). Line layout (kernel/trace/trace_output.c):
 *   `<comm>-<pid> [(tgid)] [CPU] [FLAGS] SECS.USECS: EVENT: key=value ...`
 * Call sites are `%pS` (`fn+0x24/0x140 [mod]`) since 5.x, raw hex before (resolved through kallsyms).
 * With options/stacktrace a `<stack trace>` entry with ` => frame` lines follows an event; trace_pipe may
 * put another CPU's event in between, so stacks attach to the last event of the same CPU and pid.
 * Other producers of the same events, read as well:
 * - options/fields (print_event_fields, 6.x): `ptr=0xffff9e0e8571e000 (-107689771147264)`,
 *   `bytes_alloc=0x1000 (4096)`, `accounted=(0)`: raw pointers even where %p hashes;
 * - kernels before 4.15 print a NULL %p as `(null)` (padded: `ptr=          (null)`): kfree(NULL);
 * - `trace-cmd report` (its `version = 6`, `cpus=2`, `CPU 0 is empty` preamble; the kmem plugin's
 *   `(func+0x2f)` before the fields);
 * - `perf script` of kmem:* tracepoints: `comm  pid [cpu] secs: kmem:kmalloc: fields`, with `-g`
 *   followed by `\tADDR sym+off (dso)` frames.
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
  /** kfree/kmem_cache_free of NULL (`ptr=(null)` before 4.15, `ptr=0000000000000000` after): no object. */
  nullFrees: number;
  /** Allocations that returned NULL (failed): nothing to track. */
  nullAllocs: number;
  /** Which text layout the trace is in (the first event line decides). */
  producer: 'ftrace' | 'trace-cmd' | 'perf';
  stacks: number;
  orphanStacks: number;
  firstTs: number | null;
  lastTs: number | null;
  /** Lines whose timestamp is over a second before the line above (files concatenated, edited, or another clock). */
  backwardTs: number;
  firstBackwardLine: number | null;
  callSiteFormat: 'symbolic' | 'hex' | 'mixed' | 'none';
  markers: { text: string; ts: number }[];
}

export interface ParsedTrace {
  file: string;
  events: TraceEvent[];
  stats: TraceStats;
}

const HEAD = /^\s*(.*?)-(\d+)\s+(?:\(\s*[\d-]+\)\s+)?\[(\d+)\]\s+(?:(\S{4,5})\s+)?(\d+\.\d+):\s+(<stack trace>|<user stack trace>|\w+):?\s?(.*)$/;
/** perf script: `comm pid[/tid] [cpu] secs: [period] system:event: fields`; comm may hold spaces. */
const PERF_HEAD = /^\s*(.*?)\s+(\d+)(?:\/(\d+))?\s+\[(\d+)\]\s+(\d+\.\d+):\s+(?:\d+\s+)?(\w+):(\w+):\s?(.*)$/;
/** perf script -g frame: `\tffffffff811a2458 __kmalloc+0x1f8 ([kernel.kallsyms])`; user frames name a file. */
const PERF_FRAME = /^\s+([0-9a-f]+)\s+(.*?)(?:\s+\(([^()]*)\))?$/;
/** trace-cmd report's preamble and per-CPU notes. */
const TRACE_CMD_META = /^(version = \d+|cpus=\d+|CPU \d+ is empty|trace-cmd: .*|\s*buffer: .*|\s*instance: .*)$/;
const LOST = /^CPU:\s?(\d+) \[(?:LOST (\d+) EVENTS|(\d+) EVENTS DROPPED)\]/;
const FIELD = /(?:^|\s)([a-z_]+)=/g;
/** options/fields prints every number as `0x1000 (4096)`, a pointer as `0xffff... (-1076...)`, a bool as `(0)`. */
const FIELDS_VALUE = /^(\S*?)\s*\((-?\d+)\)$/;
const NULL_PTR = /^\((null|nil)\)$/;
const HEX_PTR = /^(?:0x)?([0-9a-f]{1,16})$/;

function parseFields(s: string): Map<string, string> {
  const out = new Map<string, string>();
  const keys: { k: string; start: number; end: number }[] = [];
  FIELD.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = FIELD.exec(s)) !== null) keys.push({ k: m[1], start: m.index, end: m.index + m[0].length });
  for (let i = 0; i < keys.length; i++) {
    let v = s.slice(keys[i].end, i + 1 < keys.length ? keys[i + 1].start : s.length).trim();
    // Only a value ending in `)` can be options/fields' `0x1000 (4096)` (one regex run per value cost ~10% of the trace).
    const f = v.charCodeAt(v.length - 1) === 41 ? FIELDS_VALUE.exec(v) : null;
    if (f) v = f[1] === '' ? f[2] : f[1];
    out.set(keys[i].k, v);
  }
  return out;
}

/** A decimal or 0x-hex count; null when it is neither (then the line is unreadable, never 0). */
function count(v: string | undefined, dflt: number | null): number | null {
  if (v === undefined) return dflt;
  if (/^\d{1,15}$/.test(v)) return Number(v);
  if (/^0x[0-9a-f]{1,13}$/i.test(v)) return Number(v);
  return null;
}

const ALLOC_EVENTS = new Set(['kmalloc', 'kmalloc_node', 'kmem_cache_alloc', 'kmem_cache_alloc_node']);
const FREE_EVENTS = new Set(['kfree', 'kmem_cache_free']);

export function looksLikeTrace(text: string): boolean {
  for (const line of text.slice(0, 1 << 16).split('\n', 50)) {
    if (line.startsWith('#') || line.trim() === '' || TRACE_CMD_META.test(line)) continue;
    return HEAD.test(line) || PERF_HEAD.test(line) || LOST.test(line);
  }
  return false;
}

/** Lines longer than this are no trace line (a binary file, a joined log); they are not regex-matched. */
const MAX_LINE = 8192;

export function parseFtrace(text: string, file: string, ks: Kallsyms | null = null): ParsedTrace {
  const events: TraceEvent[] = [];
  const stats: TraceStats = {
    lines: 0, events: 0, byEvent: {}, lostEvents: 0, lostMarkers: 0, badLines: 0, firstBadLine: null, firstBadText: null,
    nullFrees: 0, nullAllocs: 0, producer: 'ftrace',
    stacks: 0, orphanStacks: 0, firstTs: null, lastTs: null, backwardTs: 0, firstBackwardLine: null, callSiteFormat: 'none', markers: [],
  };
  const lastByCpu = new Map<number, TraceEvent>();
  let pendingStack: { cpu: number; pid: number; target: TraceEvent | null; frames: string[] } | null = null;
  let symbolic = 0;
  let hexSites = 0;
  /** Alloc events whose pointer has at most 8 hex digits: a 32-bit kernel's (hashed or not). */
  let narrowPtrs = 0;
  let widePtrs = 0;
  let firstNarrow: string | null = null;
  let sawProducer = false;
  let sawTraceCmdMeta = false;
  const resolved = new Map<string, string>();
  const bad = (lineNo: number, l: string) => {
    stats.badLines++;
    if (stats.firstBadLine === null) {
      stats.firstBadLine = lineNo;
      stats.firstBadText = l.slice(0, 120);
    }
  };
  /** kfree(NULL) and failed allocations are events (counted by type) but follow no object. */
  const countNull = (kind: 'alloc' | 'free', ev: string) => {
    if (kind === 'free') stats.nullFrees++;
    else stats.nullAllocs++;
    stats.byEvent[ev] = (stats.byEvent[ev] ?? 0) + 1;
    stats.events++;
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
    let l = text.slice(pos, end);
    pos = end + 1;
    lineNo++;
    stats.lines++;
    if (l.endsWith('\r')) l = l.slice(0, -1);
    if (l.length === 0 || l[0] === '#') continue;
    if (l.length > MAX_LINE) {
      bad(lineNo, l);
      continue;
    }
    if (l.startsWith(' => ')) {
      if (pendingStack) pendingStack.frames.push(l.slice(4).trim());
      else bad(lineNo, l);
      continue;
    }
    if (stats.producer === 'perf' && (l[0] === '\t' || l[0] === ' ')) {
      // perf script -g: the frames of the event just read, innermost first (those of a skipped event,
      // a kfree(NULL) or another tracepoint, go with it).
      const f = PERF_FRAME.exec(l);
      if (f) {
        // Kernel frames only ([kernel.kallsyms], [module]); the user-space part of a -g stack is not the allocator's caller.
        if (pendingStack && (f[3] === undefined || f[3].startsWith('['))) pendingStack.frames.push(f[2] === '[unknown]' || f[2] === '' ? f[1] : f[2]);
        continue;
      }
    }
    flushStack();
    if (l.trim() === '') continue;
    if (TRACE_CMD_META.test(l)) {
      sawTraceCmdMeta = true;
      continue;
    }
    const lost = LOST.exec(l);
    if (lost) {
      stats.lostEvents += Number(lost[2] ?? lost[3]);
      stats.lostMarkers++;
      continue;
    }
    let comm: string;
    let pid: number;
    let cpu: number;
    let tsText: string;
    let ev: string;
    let body: string;
    const m = HEAD.exec(l);
    if (m) {
      [, comm, , , , tsText, ev, body] = m;
      pid = Number(m[2]);
      cpu = Number(m[3]);
      if (!sawProducer) stats.producer = sawTraceCmdMeta || /^\s*\([^)]*\)\s/.test(body) ? 'trace-cmd' : 'ftrace';
    } else {
      const p = PERF_HEAD.exec(l);
      if (!p) {
        bad(lineNo, l);
        continue;
      }
      comm = p[1];
      pid = Number(p[3] ?? p[2]);
      cpu = Number(p[4]);
      tsText = p[5];
      ev = p[7];
      body = p[8];
      if (!sawProducer) stats.producer = 'perf';
    }
    sawProducer = true;
    const ts = Number(tsText);
    if (!Number.isFinite(ts)) {
      bad(lineNo, l);
      continue;
    }
    if (stats.firstTs === null) stats.firstTs = ts;
    // ftrace, trace-cmd and perf print events in time order: the window runs from the first line to
    // the last, which a trace put together from two runs (or a damaged timestamp) would make wrong.
    if (stats.lastTs !== null && ts < stats.lastTs - 1 && stats.backwardTs++ === 0) stats.firstBackwardLine = lineNo;
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
    // Page events key on the pfn; options/fields prints no page= (it is computed in the print format).
    const ptrText = kind === 'alloc' || kind === 'free' ? f.get('ptr') : f.get('page') ?? f.get('pfn');
    if (ptrText !== undefined && NULL_PTR.test(ptrText)) {
      // Before 4.15 %p printed NULL as "(null)": kfree(NULL) is legal and frees nothing.
      if (kind === 'page_alloc' || kind === 'page_free') bad(lineNo, l);
      else countNull(kind, ev);
      continue;
    }
    const pm = ptrText === undefined ? null : HEX_PTR.exec(ptrText);
    if (pm === null) {
      bad(lineNo, l);
      continue;
    }
    const ptrHex = pm[1];
    if (/^0+$/.test(ptrHex) && (kind === 'free' || kind === 'alloc')) {
      countNull(kind, ev);
      continue;
    }
    if (kind === 'alloc') {
      if (ptrHex.length <= 8) {
        narrowPtrs++;
        firstNarrow ??= ptrText!;
      } else widePtrs++;
    }
    const bytesReq = count(f.get('bytes_req'), 0);
    const bytesAlloc = count(f.get('bytes_alloc'), 0);
    const order = count(f.get('order'), 0);
    const pfn = count(f.get('pfn'), null);
    const migratetype = f.has('migratetype') ? count(f.get('migratetype'), null) : -1;
    if (bytesReq === null || bytesAlloc === null || order === null || order > 30 || migratetype === null || (f.has('pfn') && pfn === null)) {
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
    const acc = f.get('accounted');
    const e: TraceEvent = {
      kind,
      event: ev,
      comm,
      pid,
      cpu,
      ts,
      ptr: ptrHex.padStart(16, '0'),
      callSite,
      bytesReq,
      bytesAlloc,
      cacheName: f.get('name') ?? null,
      gfp: f.get('gfp_flags') ?? null,
      accounted: acc === undefined ? null : acc === 'true' || acc === '1',
      pfn,
      order,
      migratetype: migratetype === -1 ? null : migratetype,
      stack: null,
      line: lineNo,
    };
    stats.byEvent[ev] = (stats.byEvent[ev] ?? 0) + 1;
    stats.events++;
    events.push(e);
    lastByCpu.set(cpu, e);
    if (stats.producer === 'perf') pendingStack = { cpu, pid, target: e, frames: [] };
  }
  flushStack();
  stats.callSiteFormat = symbolic && hexSites ? 'mixed' : symbolic ? 'symbolic' : hexSites ? 'hex' : 'none';
  if (narrowPtrs > 0 && narrowPtrs >= widePtrs) {
    throw new MemleakError(
      'E_TRACE',
      `the trace is from a 32-bit kernel (ptr=${firstNarrow}: ${narrowPtrs} allocations with 32-bit pointers): 32-bit kernels are not supported, only x86_64`,
      { file },
    );
  }
  if (events.length === 0) throw noEvents(stats, file);
  checkPointersNotHashed(events, file);
  if (ks !== null) expectTraceMatchesKallsyms(events, hexSites > 0 && [...resolved.values()].every((r) => r.startsWith('0x')), ks, file);
  return { file, events, stats };
}

/** Why a trace gives nothing to analyse: empty, unreadable, or events of other kinds only. */
function noEvents(stats: TraceStats, file: string): MemleakError {
  const others = Object.entries(stats.byEvent).filter(([k]) => !ALLOC_EVENTS.has(k) && !FREE_EVENTS.has(k)).sort((a, b) => b[1] - a[1]);
  const enable = 'enable kmem:kmalloc, kmem:kfree, kmem:kmem_cache_alloc and kmem:kmem_cache_free (or mm_page_alloc/mm_page_free for pages)';
  if (stats.badLines > 0) {
    const perf = /^\s*\S+\s+\d+\s+\[\d+\]\s+\d+\.\d+:/.test(stats.firstBadText ?? '');
    // An ftrace line whose timestamp has no decimal point: trace_clock counter or x86-tsc (cycles, not seconds).
    const counter = /^\s*.*?-\d+\s+(?:\(\s*[\d-]+\)\s+)?\[\d+\]\s+(?:\S{4,5}\s+)?\d+:\s+\w+:/.test(stats.firstBadText ?? '');
    return new MemleakError(
      'E_FORMAT',
      `no kmem trace events; first unreadable line: ${JSON.stringify(stats.firstBadText)}` +
        (perf ? ' (perf script output is read for kmem:* tracepoints: `perf record -e kmem:kmalloc -e kmem:kfree ...` then `perf script`)' : '') +
        (counter ? ' (its timestamp has no decimal point: trace_clock was counter or x86-tsc; trace again with trace_clock local, global or mono, which print seconds)' : '') +
        '. Read are ftrace text (trace, trace_pipe, options/fields), trace-cmd report and perf script output',
      { file, line: stats.firstBadLine ?? undefined },
    );
  }
  if (others.length > 0) {
    return new MemleakError('E_TRACE', `the trace holds no kmem events, only ${others.slice(0, 3).map(([k, n]) => `${n} ${k}`).join(', ')}: ${enable}`, { file });
  }
  if (stats.nullFrees + stats.nullAllocs > 0) {
    return new MemleakError('E_TRACE', `the trace holds only frees of NULL (${stats.nullFrees}) and failed allocations (${stats.nullAllocs}): no object to follow`, { file });
  }
  return new MemleakError('E_TRACE', `the trace holds no events (${stats.lines} lines, empty or comments only): ${enable} and copy trace or trace_pipe while the leak runs`, { file });
}

/** What the user should know about a trace that was read (both the slab and the page analyses say it). */
export function traceWarnings(t: ParsedTrace): string[] {
  const w: string[] = [];
  const s = t.stats;
  if (s.badLines) w.push(`${t.file}: ${s.badLines} lines could not be read and were skipped (first: line ${s.firstBadLine}: ${JSON.stringify(s.firstBadText)})`);
  if (s.lostEvents || s.lostMarkers) w.push(`${t.file}: the kernel lost ${s.lostEvents} events (${s.lostMarkers} [LOST] markers): unfreed counts may include allocations whose free was lost`);
  if (s.nullAllocs) w.push(`${t.file}: ${s.nullAllocs} allocations returned NULL (failed) and were skipped`);
  if (s.backwardTs) w.push(`${t.file}: ${s.backwardTs} lines have a timestamp over a second before the line above (first: line ${s.firstBackwardLine}): traces joined or edited? The window is taken from the first line (${s.firstTs}) to the last (${s.lastTs})`);
  return w;
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
      `the trace's pointers are hashed (ptr=${events.find((e) => e.kind === 'alloc' && e.ptr.startsWith('00000000'))?.ptr}): they cannot be matched to memory. Boot with no_hash_pointers, or record with \`echo 1 > options/fields\` (6.2+: fields print raw pointers as ptr=0xffff... (-...)), or use live mode, which reads the raw ring buffer`,
      { file },
    );
  }
}
