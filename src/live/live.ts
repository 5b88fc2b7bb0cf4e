/**
 * `src/live/`: live mode on the running kernel (tracefs instance, ring-buffer decoder, trace text); it
 * computes the check (check/) over its own window and hands it to analyze.ts with /proc/kcore as the
 * dump.
 *
 * Live mode: `sysak memleak --duration 200` on a running kernel with root, tracefs, /proc/kcore,
 * /proc/kallsyms and BTF, and no module. Steps: preflight checks, /proc snapshots (the quick check),
 * a private tracefs instance with the kmem events filtered to the suspect cache's size, the binary
 * ring buffer drained while the window runs (raw pointers even where text output hashes them),
 * snapshots again, then the offline analysis on /proc/kcore with the trace written as text.
 * The instance is removed on every way out (success, error, abort); nothing else is written.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { MemleakError } from '../errors.js';
import { defaultRequest, type AnalyzeRequest } from '../request.js';
import { analyzeWithCheck, type AnyReport } from '../analyze.js';
import { decideType, type Snapshots } from '../check/snapshots.js';
import { Kallsyms } from '../kernel/kallsyms.js';
import { readText } from '../util/read-file.js';
import { buildImage } from '../slab/extract.js';
import { checkLeak, usageOf, type CheckResult, type LeakKind, type UsageSeries } from '../check/leak.js';
import { parseMeminfo, snapshotFromTexts, type Snapshot } from '../check/proc.js';
import { vmallocBytes } from '../check/vmallocinfo.js';
import { suspectCache } from '../check/suspect.js';
import { findTracefs, TraceInstance } from './tracefs.js';
import { footprintGrowth, measureFootprint, ownThreadIds } from './footprint.js';
import { decodePage } from './ring-buffer.js';
import { EventTextWriter, formatTs, type DecodedEvent } from './trace-text.js';
import type { EventFormat } from './event-format.js';
import { gzipSync } from 'node:zlib';
import { PAGE_SIZE } from '../util/page.js';

export interface LiveOptions {
  duration: number;
  cache: string | null;
  type: 'auto' | LeakKind;
  checkOnly: boolean;
  save: string | null;
  /** Ring buffer per CPU; drained every DRAIN_MS, so it only has to hold a burst. */
  bufferKb: number;
  request: Partial<AnalyzeRequest>;
}

const DRAIN_MS = 200;
const SETTLE_MS = 2000;
/** Events younger than this at a drain wait for the next one, so CPUs merge in time order. */
const HOLD_BACK_NS = 50_000_000n;

export interface LiveHooks {
  signal: AbortSignal;
  progress?(elapsedS: number, totalS: number, events: number): void;
}

export interface LiveResult {
  check: CheckResult;
  report: AnyReport | null;
  reason: string;
}

const PROC = '/proc';

function readProc(path: string): string {
  try {
    return fs.readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') throw new MemleakError('E_PERMISSION', 'permission denied: live mode needs root', { file: path });
    throw new MemleakError('E_LIVE', `cannot read: ${(e as Error).message}`, { file: path });
  }
}

export function snapshot(): Snapshot & { texts: Record<string, string> } {
  const meminfo = readProc(`${PROC}/meminfo`);
  const slabinfo = readProc(`${PROC}/slabinfo`);
  let vmallocinfo: string | null = null;
  try {
    vmallocinfo = fs.readFileSync(`${PROC}/vmallocinfo`, 'utf8');
  } catch {
    vmallocinfo = null;
  }
  const s = snapshotFromTexts(meminfo, slabinfo, vmallocinfo, { meminfo: `${PROC}/meminfo`, slabinfo: `${PROC}/slabinfo` });
  return { ...s, texts: { meminfo, slabinfo, vmallocinfo: vmallocinfo ?? '' } };
}

/** One usage sample (meminfo + vmallocinfo), for the steady-growth rule. */
function sampleUsage(series: UsageSeries): void {
  try {
    const meminfo = parseMeminfo(fs.readFileSync(`${PROC}/meminfo`, 'utf8'), `${PROC}/meminfo`);
    let vm: number | null = null;
    try {
      vm = vmallocBytes(fs.readFileSync(`${PROC}/vmallocinfo`, 'utf8'));
    } catch {
      vm = null;
    }
    const u = usageOf({ meminfo, vmallocBytes: vm });
    series.t.push(Date.now());
    series.page.push(u.page);
    series.slab.push(u.slab);
    series.vmalloc.push(u.vmalloc);
  } catch {
    /* a missed sample only shortens the series */
  }
}

export function newSeries(): UsageSeries {
  return { t: [], page: [], slab: [], vmalloc: [] };
}

function reclaimable(name: string): boolean {
  try {
    return fs.readFileSync(`/sys/kernel/slab/${name}/reclaim_account`, 'utf8').trim() === '1';
  } catch {
    return false;
  }
}

/** Everything live mode needs, checked before anything is written. */
export function preflight(): { tracefs: string; kallsyms: Kallsyms; kallsymsText: string; btf: string } {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new MemleakError('E_PERMISSION', 'live mode needs root (tracefs, /proc/kcore); or analyse a vmcore offline with --vmcore');
  }
  try {
    const lockdown = fs.readFileSync('/sys/kernel/security/lockdown', 'utf8');
    if (lockdown.includes('[confidentiality]')) {
      throw new MemleakError('E_PERMISSION', 'kernel lockdown=confidentiality blocks /proc/kcore and tracefs: take a vmcore (kdump) and use --vmcore', { file: '/sys/kernel/security/lockdown' });
    }
  } catch (e) {
    if (e instanceof MemleakError) throw e;
  }
  const tracefs = findTracefs();
  const kallsymsText = readText('/proc/kallsyms');
  const kallsyms = Kallsyms.parse(kallsymsText, '/proc/kallsyms');
  const btf = '/sys/kernel/btf/vmlinux';
  if (!fs.existsSync(btf)) throw new MemleakError('E_LIVE', 'no BTF: the kernel lacks CONFIG_DEBUG_INFO_BTF; pass --btf FILE for this exact kernel', { file: btf });
  try {
    fs.closeSync(fs.openSync('/proc/kcore', 'r'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new MemleakError(code === 'EPERM' || code === 'EACCES' ? 'E_PERMISSION' : 'E_LIVE', `cannot open: ${(e as Error).message} (needs root and no lockdown)`, { file: '/proc/kcore' });
  }
  return { tracefs, kallsyms, kallsymsText, btf };
}

interface TraceRun {
  file: string;
  events: number;
  lost: number;
  windowS: number;
}

/** Events to enable, by what the kernel has: kmalloc_node/kmem_cache_alloc_node exist up to 6.0; 6.1 folded them into kmalloc/kmem_cache_alloc (with a node field). */
const SLAB_EVENTS = ['kmalloc', 'kmalloc_node', 'kmem_cache_alloc', 'kmem_cache_alloc_node', 'kfree', 'kmem_cache_free'];

async function traceWindow(
  inst: TraceInstance, ks: Kallsyms, stride: number, opts: LiveOptions, hooks: LiveHooks, out: string, drainMs: number, series: UsageSeries,
  settled: () => void,
): Promise<TraceRun> {
  const formats: EventFormat[] = [];
  if (opts.type === 'auto' || opts.type === 'page') {
    // Page leaks: unmovable allocations with a kernel stack each (a stacktrace trigger on
    // mm_page_alloc only, so frees and slab events carry no stack), and every free.
    formats.push(inst.eventFormat('ftrace', 'kernel_stack'));
    const alloc = inst.eventFormat('kmem', 'mm_page_alloc');
    formats.push(alloc, inst.eventFormat('kmem', 'mm_page_free'));
    if (alloc.fields.has('migratetype')) inst.set(join('events', 'kmem', 'mm_page_alloc', 'filter'), 'migratetype == 0');
    inst.set(join('events', 'kmem', 'mm_page_alloc', 'trigger'), 'stacktrace');
    inst.set(join('events', 'kmem', 'mm_page_alloc', 'enable'), '1');
    inst.set(join('events', 'kmem', 'mm_page_free', 'enable'), '1');
  }
  if (opts.type === 'page') {
    // no slab events
  } else for (const ev of SLAB_EVENTS) {
    if (!inst.has(join('events', 'kmem', ev))) continue;
    const fmt = inst.eventFormat('kmem', ev);
    formats.push(fmt);
    // Allocation events are filtered in the kernel to the cache's object size; frees cannot be (kfree has no size).
    if (fmt.fields.has('bytes_alloc')) inst.set(join('events', 'kmem', ev, 'filter'), `bytes_alloc == ${stride}`);
    inst.set(join('events', 'kmem', ev, 'enable'), '1');
  }
  if (opts.type !== 'page' && !formats.some((f) => f.name.startsWith('kmalloc'))) throw new MemleakError('E_LIVE', 'no kmem:kmalloc event in tracefs (CONFIG_TRACEPOINTS?)', { file: inst.dir });
  const hdr = inst.headerPage();
  const cpus = inst.cpus();
  const writer = new EventTextWriter(formats, ks);
  const fd = fs.openSync(out, 'w');
  const pageSize = PAGE_SIZE;
  let pending: DecodedEvent[] = [];
  let lost = 0;
  const flush = (upTo: bigint | null) => {
    pending.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : a.cpu - b.cpu));
    let n = 0;
    const lines: string[] = [];
    for (const e of pending) {
      if (upTo !== null && e.ts > upTo) break;
      lines.push(e.line);
      n++;
    }
    pending = pending.slice(n);
    if (lines.length) fs.writeSync(fd, lines.join('\n') + '\n');
  };
  const drain = () => {
    const now = process.hrtime.bigint();
    for (const cpu of cpus) {
      for (const page of inst.readPages(cpu, pageSize, 4096)) {
        const d = decodePage(page, hdr);
        if (d.missed || d.missedUnknown) {
          lost += d.missed;
          fs.writeSync(fd, `CPU:${cpu} [LOST ${d.missed || 1} EVENTS]\n`);
        }
        for (const e of d.events) {
          const line = writer.line(cpu, e);
          if (line) pending.push({ ts: e.ts, cpu, line });
        }
      }
    }
    flush(now - HOLD_BACK_NS);
  };
  const mark = (text: string) => fs.writeSync(fd, `sysak-${process.pid} [000] ..... ${formatTs(process.hrtime.bigint())}: tracing_mark_write: ${text}\n`);
  try {
    mark('SYSAK_WINDOW_START');
    inst.set('tracing_on', '1');
    const t0 = Date.now();
    const end = t0 + opts.duration * 1000;
    let lastProgress = 0;
    // Usage samples start after SETTLE_MS: enabling events and the stacktrace trigger allocate and free
    // megabytes in the first second (seen in the guest), which is not the workload's trend.
    let nextSample = t0 + SETTLE_MS;
    let isSettled = false;
    while (Date.now() < end) {
      if (Date.now() >= nextSample) {
        if (!isSettled) {
          // The check's "before" snapshot too: enabling the first event on a boot also expands the
          // top-level ring buffer (MiBs of pages) -- our own doing, not the workload's growth.
          settled();
          isSettled = true;
        }
        sampleUsage(series);
        nextSample += 1000;
      }
      if (hooks.signal.aborted) throw new MemleakError('E_INTERRUPTED', 'interrupted: the tracing instance was removed, nothing else was changed');
      await new Promise((r) => setTimeout(r, Math.min(drainMs, Math.max(0, end - Date.now()))));
      drain();
      if (hooks.progress && Date.now() - lastProgress >= 1000) {
        lastProgress = Date.now();
        hooks.progress((Date.now() - t0) / 1000, opts.duration, writer.events);
      }
    }
    inst.set('tracing_on', '0');
    sampleUsage(series);
    drain();
    flush(null);
    lost += inst.lostEvents();
    mark('SYSAK_WINDOW_END');
    return { file: out, events: writer.events, lost, windowS: (Date.now() - t0) / 1000 };
  } finally {
    fs.closeSync(fd);
  }
}

function saveSnapshots(dir: string, before: ReturnType<typeof snapshot>, after: ReturnType<typeof snapshot>): void {
  fs.mkdirSync(join(dir, 'guest'), { recursive: true });
  for (const [k, v] of Object.entries(before.texts)) fs.writeFileSync(join(dir, 'guest', `${k}.before`), v);
  for (const [k, v] of Object.entries(after.texts)) fs.writeFileSync(join(dir, 'guest', `${k}.after`), v);
}

function topLevelBufferKb(root: string): number | null {
  const m = /^(\d+)/.exec(fs.readFileSync(join(root, 'buffer_size_kb'), 'utf8'));
  return m ? Number(m[1]) : null;
}

function restoreTopLevelBuffer(root: string, kb: number | null): void {
  if (kb === null) return;
  try {
    if (topLevelBufferKb(root) !== kb) fs.writeFileSync(join(root, 'buffer_size_kb'), String(kb));
  } catch {
    /* best effort: reported by the state check in the tests */
  }
}

/** `-c`: one snapshot, or two `duration` seconds apart when a duration is given (growth). */
async function checkOnly(opts: LiveOptions, hooks: LiveHooks, withWindow: boolean): Promise<LiveResult> {
  const first = snapshot();
  if (!withWindow) return { check: checkLeak(first, null), report: null, reason: 'check only (-c)' };
  const t0 = Date.now();
  const series = newSeries();
  sampleUsage(series);
  let nextSample = t0 + 1000;
  while (Date.now() - t0 < opts.duration * 1000) {
    if (hooks.signal.aborted) throw new MemleakError('E_INTERRUPTED', 'interrupted during the check window (nothing was changed)');
    await new Promise((r) => setTimeout(r, 200));
    if (Date.now() >= nextSample) {
      sampleUsage(series);
      nextSample += 1000;
    }
    hooks.progress?.((Date.now() - t0) / 1000, opts.duration, 0);
  }
  sampleUsage(series);
  return { check: checkLeak(first, snapshot(), series), report: null, reason: 'check only (-c)' };
}

export async function runLive(opts: LiveOptions, hooks: LiveHooks, checkWindow = false): Promise<LiveResult> {
  if (opts.checkOnly) return checkOnly(opts, hooks, checkWindow);
  const pre = preflight();
  const workDir = opts.save ?? fs.mkdtempSync(join(process.env.TMPDIR ?? '/tmp', 'sysak-memleak-'));
  try {
    return await traceAndAnalyze(opts, hooks, pre, workDir);
  } finally {
    // A temporary directory goes on every way out, an analysis that throws included; --save DIR stays.
    if (!opts.save) fs.rmSync(workDir, { recursive: true, force: true });
  }
}

async function traceAndAnalyze(opts: LiveOptions, hooks: LiveHooks, pre: ReturnType<typeof preflight>, workDir: string): Promise<LiveResult> {
  fs.mkdirSync(join(workDir, 'guest'), { recursive: true });
  const tracePath = join(workDir, 'guest', 'trace.txt');
  if (opts.save) {
    // The table the trace was symbolized with, not a second read that a module load could change.
    fs.writeFileSync(join(workDir, 'guest', 'kallsyms.txt'), pre.kallsymsText);
    fs.writeFileSync(join(workDir, 'guest', 'btf_vmlinux.bin.gz'), gzipSync(fs.readFileSync(pre.btf), { level: 6 }));
  }

  const first = snapshot();
  const initial = checkLeak(first, null);
  let cacheName = opts.cache;
  if (!cacheName) cacheName = suspectCache(initial.caches, reclaimable)?.name ?? null;
  if (!cacheName) throw new MemleakError('E_NO_DATA', 'no slab cache with objects in /proc/slabinfo');
  const row = first.slabinfo?.get(cacheName);
  if (!row) throw new MemleakError('E_USAGE', `no slab cache named ${cacheName} in /proc/slabinfo`);

  // Enabling an event in any instance expands the top-level ring buffer the first time tracing is used
  // on a boot (kernel/trace/trace.c: tracing_update_buffers() resizes global_trace to trace_buf_size).
  // Its size is put back afterwards; the kernel's one-way "expanded" flag cannot be (README: Safety).
  const topSize = topLevelBufferKb(pre.tracefs);
  const inst = TraceInstance.create(pre.tracefs, `sysak-memleak-${process.pid}`);
  const restore = () => {
    inst.remove();
    restoreTopLevelBuffer(pre.tracefs, topSize);
  };
  const onExit = () => restore();
  process.once('exit', onExit);
  let run: TraceRun;
  let before: ReturnType<typeof snapshot>;
  let after: ReturnType<typeof snapshot>;
  const warnings: string[] = [];
  const series = newSeries();
  let footprint = 0;
  let ownPids: number[] = [process.pid];
  try {
    inst.set('buffer_size_kb', String(opts.bufferKb));
    // mono = CLOCK_MONOTONIC, the clock of process.hrtime(): drains can tell which events are complete.
    if (fs.readFileSync(join(inst.dir, 'trace_clock'), 'utf8').includes('mono')) inst.set('trace_clock', 'mono');
    // The window's "before" is taken once tracing has settled (our ring buffers allocated), so they are
    // not counted as growth; a window shorter than the settle time falls back to a snapshot taken now.
    let settledSnap: ReturnType<typeof snapshot> | null = null;
    const tracing = [pre.tracefs, inst.dir];
    const early = snapshot();
    let ownBefore = measureFootprint(tracing);
    run = await traceWindow(inst, pre.kallsyms, row.objectSize, opts, hooks, tracePath, DRAIN_MS, series, () => {
      settledSnap = snapshot();
      ownBefore = measureFootprint(tracing);
    });
    before = settledSnap ?? early;
    // "after" while our ring buffers still exist, as they did for "before": removing the instance
    // frees 2 x --buffer-kb per CPU, which is not the workload shrinking either.
    after = snapshot();
    footprint = footprintGrowth(ownBefore, measureFootprint(tracing));
    ownPids = ownThreadIds();
  } finally {
    restore();
    process.removeListener('exit', onExit);
  }
  saveSnapshots(workDir, before, after);
  const check = checkLeak(before, after, series, { footprint, reclaimable });
  const g = (f: string) => join(workDir, 'guest', f);
  const snaps: Snapshots = {
    meminfoBefore: g('meminfo.before'), meminfoAfter: g('meminfo.after'), slabinfoBefore: g('slabinfo.before'),
    slabinfoAfter: g('slabinfo.after'), vmallocinfoBefore: g('vmallocinfo.before'), vmallocinfoAfter: g('vmallocinfo.after'),
  };
  // Our footprint goes with the samples, so a replay (--from) takes the same decision.
  fs.writeFileSync(g('usage_series.json'), JSON.stringify({ ...series, footprint }));
  snaps.usageSeries = g('usage_series.json');
  const kind = decideType(opts.type, check);
  if (!opts.cache && decideType(opts.type, check) === 'slab') {
    const grown = suspectCache(check.caches, reclaimable);
    if (grown && grown.name !== cacheName && (grown.growthObjs ?? 0) > 0) warnings.push(`${grown.name} grew most during the window (${grown.growthObjs} objects); this run traced ${cacheName}: rerun with -n ${grown.name}`);
  }

  const req: AnalyzeRequest = {
    ...defaultRequest(),
    ...opts.request,
    vmcore: '/proc/kcore',
    kallsyms: opts.save ? join(workDir, 'guest', 'kallsyms.txt') : '/proc/kallsyms',
    kallsymsTable: pre.kallsyms,
    btf: opts.save ? join(workDir, 'guest', 'btf_vmlinux.bin.gz') : pre.btf,
    trace: tracePath,
    geometry: { cache: cacheName },
    ownPids,
  };
  // The slab analysis may also run after another kind found nothing (--type auto): keep its pages too.
  if (opts.save && (kind === 'slab' || opts.type === 'auto')) {
    req.vmcoreHook = {
      capturePages: true,
      beforeClose: (v, set) => {
        const img = buildImage(v, set);
        fs.writeFileSync(join(workDir, 'vmcore.extract.gz'), gzipSync(img.image, { level: 6 }));
      },
    };
  }
  // The check computed above goes in as it is: not written out and read back.
  // opts.type, not the kind decided: with --type auto the other plausible kinds may be analysed too.
  const report = await analyzeWithCheck({ ...req, snapshots: snaps }, opts.type, check);
  if (report.type === 'slab') report.warnings.unshift(...warnings);
  report.live = {
    durationS: Math.round(run.windowS * 10) / 10, eventsTraced: run.events, lostEvents: run.lost, saved: opts.save, check,
  };
  if (opts.save) fs.writeFileSync(join(workDir, 'live.json'), JSON.stringify({ cache: cacheName, durationS: run.windowS, events: run.events, lost: run.lost, check }, null, 2));
  return { check, report, reason: report.verdictReason };
}
