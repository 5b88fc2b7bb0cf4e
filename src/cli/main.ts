#!/usr/bin/env node
/**
 * `src/cli/`: the command line, the top of the layout: flags -> request (request.ts), analyze.ts or
 * live/ -> report/ renderers -> stdout, errors -> exit codes (exit.ts).
 *
 * `sysak memleak`: a thin layer over analyze(): flags -> request, report -> text/sysak/JSON, errors ->
 * exit codes (cli/exit.ts). Option defaults come from the one table in request.ts (DEFAULTS).
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { MemleakError } from '../errors.js';
import { parseHex, parseSize } from '../util/hex.js';
import { DEFAULTS, defaultRequest, requestFromRecording, type AnalyzeRequest } from '../request.js';
import { reportCommanderExit, reportError } from './exit.js';
import { extractVmcore } from '../slab/extract.js';
import { runLive } from '../live/live.js';
import { render, renderCheck } from '../report/render.js';
import { analyzeAny } from '../analyze.js';
import { versionText } from '../ship/version.js';
import { checkHtmlTarget, writeHtmlReport } from './html-file.js';
import { memleakHelpTail } from './help.js';
import { forTerminal, terminalOf } from '../report/terminal.js';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { terminalProgress, timingsTable } from './progress.js';
import type { Timings } from '../phases.js';

/** Whole decimal numbers only: `Number()` would take "1e3", "0x10", " 5 " and "" (0). */
function int(name: string, min: number, max: number) {
  return (v: string) => {
    const n = /^\d{1,10}$/.test(v.trim()) ? Number(v) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
    return n;
  };
}

/** A size (64, 4096, 8k, 2M) within bounds: what a slab or an object can be on x86_64. */
function size(name: string, min: number, max: number, multipleOf = 1) {
  return (v: string) => {
    const n = parseSize(v);
    if (n === null || n < min || n > max || n % multipleOf !== 0) {
      throw new InvalidArgumentError(`${name} must be a size from ${min} to ${max}${multipleOf > 1 ? `, a multiple of ${multipleOf}` : ''} (such as 64, 4096 or 8k)`);
    }
    return n;
  };
}

function fraction(name: string) {
  return (v: string) => {
    const n = /^(0|1|0?\.\d+|1\.0*)$/.test(v.trim()) ? Number(v) : NaN;
    if (!Number.isFinite(n) || n <= 0 || n > 1) throw new InvalidArgumentError(`${name} must be a number in (0, 1]`);
    return n;
  };
}

/** A file or directory name: an empty one is an unset shell variable, never "no input". */
function path(name: string) {
  return (v: string) => {
    if (v.trim() === '') throw new InvalidArgumentError(`${name} needs a file name, not an empty string (an unset shell variable?)`);
    return v;
  };
}

function nonEmpty(name: string) {
  return (v: string) => {
    if (v.trim() === '') throw new InvalidArgumentError(`${name} must not be empty`);
    return v;
  };
}

/** Options that name a file or directory: the empty string is refused (see path()). */
function withPaths(cmd: Command, options: [flags: string, description: string][], required: string[] = []): Command {
  for (const [flags, description] of options) {
    const name = /--[\w-]+/.exec(flags)![0];
    if (required.includes(name)) cmd.requiredOption(flags, description, path(name));
    else cmd.option(flags, description, path(name));
  }
  return cmd;
}

/** SLUB slabs are PAGE_SIZE << order with order <= 10 (MAX_ORDER): 4 KiB .. 4 MiB on x86_64. */
const MAX_SLAB = 4 << 20;

function collectPath(name: string) {
  const p = path(name);
  return (v: string, prev: string[]) => [...prev, p(v)];
}

interface MemleakFlags {
  from?: string;
  vmcore?: string;
  btf?: string;
  rd: string[];
  kmem?: string;
  kallsyms?: string;
  slabinfo?: string;
  raw?: string;
  base?: string;
  trace?: string;
  cache?: string;
  objectSize?: number;
  slabSize?: number;
  objectsPerSlab?: number;
  freeOnly: number;
  strictFreeOnly?: boolean;
  threshold: number;
  workers?: number;
  top: number;
  json?: boolean;
  format: 'text' | 'sysak' | 'json';
  duration?: number;
  type: 'auto' | 'slab' | 'page' | 'vmalloc';
  check?: boolean;
  save?: string;
  bufferKb: number;
  html?: string;
  verbose?: boolean;
  quiet?: boolean;
}

export function buildProgram(): Command {
  // Positional options: `memleak extract --vmcore F` gives --vmcore to extract, not to memleak.
  // Usage errors become one line and exit 2 in cli/exit.ts (reportCommanderExit); commander prints nothing itself.
  const program = new Command('sysak')
    .description('system analysis kit: kernel memory-leak finder')
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ outputError: () => {} });
  // Not commander's .version(string): the commit is read from git only when asked (a checkout, no build).
  program.option('-V, --version', 'print the version, the Node.js it runs on and the commit it was built from');
  program.on('option:version', () => {
    process.stdout.write(versionText());
    process.exit(0);
  });
  const memleak = withPaths(program.command('memleak'), [
    ['--from <dir>', 'a recording directory (guest/trace.txt, guest/kallsyms.txt, crash/*.txt)'],
    ['--vmcore <file>', 'a vmcore (kdump-compressed, flattened or ELF), /proc/kcore, or an extract: the whole offline analysis'],
    ['--btf <file>', 'BTF of the dumped kernel (a copy of /sys/kernel/btf/vmlinux); default: the dump\'s own .BTF'],
    ['--kmem <file>', 'crash `kmem -S CACHE` (or `kmem -s`) text: geometry and free objects'],
    ['--kallsyms <file>', '/proc/kallsyms of the same boot (with --vmcore: optional, checked against the dump)'],
    ['--slabinfo <file>', '/proc/slabinfo: cache geometry'],
    ['--raw <file>', 'raw bytes of contiguous slab pages (with --base; - reads stdin)'],
    ['--trace <file>', 'ftrace text of kmem events (kmalloc, kfree, kmem_cache_alloc, kmem_cache_free), trace-cmd report or perf script output'],
    ['--save <dir>', 'live mode: keep what the run used (snapshots, trace, kallsyms, memory extract) for `--from DIR`'],
  ])
    .description('find the kernel function that leaks memory: live on this kernel (root), or offline from a vmcore, crash text, raw pages or a recording directory')
    .option('--rd <file>', 'crash `rd -64` or `rd -S` text of slab pages (repeatable)', collectPath('--rd'), [])
    .option('--base <hexaddr>', 'kernel virtual address of the first byte of --raw', nonEmpty('--base'))
    .option('-n, --cache <name>', 'slab cache to analyse (any cache, not only kmalloc-*)', nonEmpty('--cache'))
    .option('--object-size <bytes>', 'object stride when no kmem/slabinfo says it', size('--object-size', 8, MAX_SLAB))
    .option('--slab-size <bytes>', 'slab size (PAGE_SIZE << order)', size('--slab-size', 4096, MAX_SLAB, 4096))
    .option('--objects-per-slab <n>', 'objects per slab when the object size leaves bytes over', int('--objects-per-slab', 1, 1 << 20))
    .option('-r, --free-only <pct>', 'percent of the trace window at its end in which allocations are not counted', int('--free-only', 0, 99), DEFAULTS.freeOnlyPct)
    .option('--strict-free-only', 'drop allocations of the free-only window, as the original (default: keep those that match a hot cluster)')
    .option('--threshold <0..1>', 'similarity to a hot cluster at which an unfreed object is marked', fraction('--threshold'), DEFAULTS.mark.threshold)
    .option('--workers <n>', `scan worker threads beside the main thread, which scans too or reads a pipe (0: the main thread alone; default: ${DEFAULTS.workers}, one less than the cores, at most 7, for caches of ${DEFAULTS.poolMinBytes >> 20} MiB or more, the main thread alone below)`, int('--workers', 0, 64))
    .option('--top <n>', 'clusters to report', int('--top', 1, 1000), DEFAULTS.top)
    .option('-i, --duration <seconds>', `live mode: trace this long on the running kernel (default ${DEFAULTS.duration}, as the original)`, int('--duration', 1, 86400))
    .addOption(new Option('-t, --type <type>', 'leak type: auto decides from /proc snapshots (live, or --from with before/after files)').choices(['auto', 'slab', 'page', 'vmalloc']).default(DEFAULTS.type))
    .option('-c, --check', 'live mode: only the quick check from /proc (is memory leaking, which kind, which cache)')
    .option('--buffer-kb <kb>', 'live mode: ring buffer per CPU, drained every 200 ms', int('--buffer-kb', 64, 1 << 20), DEFAULTS.bufferKb)
    .option('-v, --verbose', 'print the time, bytes and peak memory of every phase on stderr (also in the JSON report\'s timings)')
    .option('-q, --quiet', 'no progress lines on stderr (they appear only on a terminal, for phases longer than 2 s)')
    .option('--json', 'JSON report (same as --format json)')
    .addOption(new Option('--format <fmt>', 'report format').choices(['text', 'sysak', 'json']).default(DEFAULTS.format))
    .option('--html <file>', 'also write the report as one self-contained HTML page (verdict, charts; no network) to FILE')
    .addHelpText('after', memleakHelpTail())
    .action(async (flags: MemleakFlags) => {
      process.exitCode = await runMemleak(flags);
    });
  memleak.enablePositionalOptions();
  withPaths(memleak.command('extract'), [
    ['--vmcore <file>', 'the vmcore to cut from'],
    ['-o, --output <file>', 'the extract to write (gzip-compressed when it ends in .gz)'],
    ['--kallsyms <file>', '/proc/kallsyms of the same boot (default: from the dump)'],
    ['--btf <file>', 'BTF of the dumped kernel (default: the dump\'s .BTF, which then goes into the extract)'],
    ['--trace <file>', 'ftrace text: also keep what marking the unfreed objects reads'],
  ], ['--vmcore', '--output'])
    .description('cut a small ELF core from a vmcore with only what the analysis of one cache reads (for bug reports and regression tests)')
    .option('-n, --cache <name>', 'slab cache (default: the suspect cache of the dump)', nonEmpty('--cache'))
    .action(async (flags: ExtractFlags) => {
      process.exitCode = await runExtract(flags);
    });
  return program;
}

export function requestFromFlags(f: MemleakFlags): AnalyzeRequest {
  let req = defaultRequest();
  req.vmcore = f.vmcore ?? null;
  req.btf = f.btf ?? null;
  req.rd = f.rd;
  req.kmem = f.kmem ?? null;
  req.kallsyms = f.kallsyms ?? null;
  req.slabinfo = f.slabinfo ?? null;
  req.trace = f.trace ?? null;
  req.geometry = { cache: f.cache, objectSize: f.objectSize, slabSize: f.slabSize, objectsPerSlab: f.objectsPerSlab };
  for (const k of Object.keys(req.geometry) as (keyof typeof req.geometry)[]) if (req.geometry[k] === undefined) delete req.geometry[k];
  if (f.raw !== undefined) {
    if (f.base === undefined) throw new MemleakError('E_USAGE', '--raw needs --base ADDR (the kernel address of its first byte)');
    const base = parseHex(f.base);
    if (base === null) throw new MemleakError('E_USAGE', `--base ${f.base} is not a hex address`);
    req.raw = { file: f.raw, base };
  } else if (f.base !== undefined) throw new MemleakError('E_USAGE', '--base goes with --raw');
  req.freeOnlyPct = f.freeOnly;
  req.strictFreeOnly = f.strictFreeOnly === true;
  req.mark.threshold = f.threshold;
  req.scan = f.workers === undefined ? {} : { workers: f.workers };
  req.top = f.top;
  const progress = terminalProgress(process.stderr, f.quiet === true);
  if (progress) req.onProgress = progress;
  if (f.from) req = requestFromRecording(f.from, req);
  return req;
}

interface ExtractFlags {
  vmcore: string;
  output: string;
  cache?: string;
  kallsyms?: string;
  btf?: string;
  trace?: string;
}

async function runExtract(f: ExtractFlags): Promise<number> {
  try {
    const req = defaultRequest();
    req.vmcore = f.vmcore;
    req.kallsyms = f.kallsyms ?? null;
    req.btf = f.btf ?? null;
    req.trace = f.trace ?? null;
    if (f.cache) req.geometry = { cache: f.cache };
    const res = await extractVmcore(req);
    const bytes = f.output.endsWith('.gz') ? gzipSync(res.image, { level: 9 }) : res.image;
    // Write beside the target and rename: a failed run never leaves half an extract.
    const tmp = `${f.output}.tmp-${process.pid}`;
    try {
      writeFileSync(tmp, bytes);
      renameSync(tmp, f.output);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw new MemleakError('E_IO', `cannot write: ${(e as Error).message}`, { file: f.output });
    }
    const v = res.report.verdict;
    process.stdout.write(
      `wrote ${f.output}: ${res.pages} pages (${bytes.length} bytes), cache ${res.report.cache.name}, ` +
        `${res.report.cache.allocated} allocated objects, ${res.blankedStructPages} struct pages of other pages blanked` +
        (v ? `; verdict ${v.function}` : '') + '\n',
    );
    return 0;
  } catch (e) {
    return reportError(e);
  }
}

/** Live mode starts only when no offline input was named at all (an empty name is refused earlier). */
function isOffline(f: MemleakFlags): boolean {
  return f.from !== undefined || f.vmcore !== undefined || f.rd.length > 0 || f.raw !== undefined;
}

async function runLiveCli(f: MemleakFlags): Promise<number> {
  const offlineOnly = ['kmem', 'slabinfo', 'trace', 'kallsyms', 'btf', 'objectSize', 'slabSize', 'objectsPerSlab'] as const;
  for (const k of offlineOnly) if (f[k] !== undefined) throw new MemleakError('E_USAGE', `--${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())} is for offline analysis: give --vmcore, --rd, --raw or --from too`);
  if (f.html) checkHtmlTarget(f.html);
  const ac = new AbortController();
  let signalExit = 0;
  const onSig = (sig: NodeJS.Signals) => {
    signalExit = sig === 'SIGTERM' ? 143 : 130;
    ac.abort();
  };
  process.on('SIGINT', onSig);
  process.on('SIGTERM', onSig);
  const tty = process.stderr.isTTY && f.quiet !== true;
  try {
    const req = requestFromFlags({ ...f, rd: [] });
    const res = await runLive(
      { duration: f.duration ?? DEFAULTS.duration, cache: f.cache ?? null, type: f.type, checkOnly: f.check === true, save: f.save ?? null, bufferKb: f.bufferKb, request: { mark: req.mark, scan: req.scan, freeOnlyPct: req.freeOnlyPct, strictFreeOnly: req.strictFreeOnly, top: req.top } },
      {
        signal: ac.signal,
        progress: tty ? (el, tot, ev) => process.stderr.write(`\r${f.check ? 'watching' : 'tracing'} ${Math.floor(el)}/${tot} s, ${ev} events  (Ctrl-C stops and cleans up)`) : undefined,
      },
      f.duration !== undefined,
    );
    if (tty) process.stderr.write('\r\x1b[K');
    const format = f.json ? 'json' : f.format;
    const out = res.report ? render(res.report, format) : renderCheck(res.check, format);
    process.stdout.write(format === 'text' ? forTerminal(out, terminalOf(process.stdout)) : out);
    if (f.html) writeHtmlReport(f.html, res.report ?? res.check);
    if (f.verbose) printTimings(res.report);
    return 0;
  } catch (e) {
    if (tty) process.stderr.write('\r\x1b[K');
    const code = reportError(e);
    return signalExit || code;
  } finally {
    process.off('SIGINT', onSig);
    process.off('SIGTERM', onSig);
  }
}

async function runMemleak(f: MemleakFlags): Promise<number> {
  if (!isOffline(f) || f.duration !== undefined || f.check) {
    if (isOffline(f)) return reportError(new MemleakError('E_USAGE', '--duration/--check are live mode: do not combine them with --vmcore, --rd, --raw or --from'));
    try {
      return await runLiveCli(f);
    } catch (e) {
      return reportError(e);
    }
  }
  try {
    if (f.html) checkHtmlTarget(f.html);
    const req = requestFromFlags(f);
    const report = await analyzeAny(req, f.type, req.snapshots);
    const format = f.json ? 'json' : f.format;
    // Render fully before writing anything: a failure never leaves half a report.
    const out = render(report, format);
    process.stdout.write(format === 'text' ? forTerminal(out, terminalOf(process.stdout)) : out);
    if (f.html) writeHtmlReport(f.html, report);
    if (f.verbose) printTimings(report);
    return 0;
  } catch (e) {
    return reportError(e);
  }
}

/** --verbose: the report's phases on stderr (reports of every kind that measured them). */
function printTimings(report: unknown): void {
  const t = (report as { timings?: Timings } | null)?.timings;
  if (t) process.stderr.write(timingsTable(t));
}

/**
 * A reader that stops early (`| head`, `| less` quit) closes stdout: the rest of the report has nowhere
 * to go, and that is the reader's choice, not a failure of the analysis. Without a handler Node throws
 * EPIPE from the write as an unhandled 'error' event (a stack trace). Nothing exits here: a live run
 * still restores tracefs and the exit code stays the analysis's.
 */
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE') throw e;
});

buildProgram()
  .parseAsync(process.argv)
  .catch((e) => {
    process.exitCode = e instanceof CommanderError ? reportCommanderExit(e) : reportError(e);
  });
