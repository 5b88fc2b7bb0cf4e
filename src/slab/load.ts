/**
 * The slab memory an analysis reads, from whichever source the request names: a vmcore/kcore/extract
 * (the SLUB walk of one cache), crash `rd` text, raw pages (random access with --kmem, else streamed and
 * scanned while read). Each becomes a SlabSet for the scan engine.
 */
import { closeSync, fstatSync, openSync } from 'node:fs';
import { MemleakError } from '../errors.js';
import { hex } from '../util/hex.js';
import { SparseMemory, type MemoryReader } from '../util/memory.js';
import { Kallsyms } from '../kernel/kallsyms.js';
import { estimateAddressSpace } from '../kernel/address-space.js';
import { findSlabCache, summarizeCaches, walkCache, type KmemCache } from '../kernel/slub.js';
import { openVmcore, type Kernel } from '../kernel/kernel.js';
import { parseCrashRd } from '../input/crash-rd.js';
import { parseCrashKmem, type KmemReport } from '../input/crash-kmem.js';
import { parseSlabinfo, type SlabinfoRow } from '../input/slabinfo.js';
import { RawFileMemory } from '../input/raw.js';
import { readAs } from '../input/files.js';
import { chooseSuspectCache } from '../check/suspect.js';
import type { ScanResult } from '../scan/scanner.js';
import { fdSource, scanStream } from '../scan/stream-scan.js';
import type { CacheGeometry, SlabSet } from '../scan/slab-set.js';
import { kallsymsOf, type AnalyzeRequest } from '../request.js';
import { resolveGeometry, resolveSymbolicWords, slabSetFromMemory } from './crash-text.js';
import { slabSetFromWalk } from './from-dump.js';
import type { Phases } from '../phases.js';
import { PAGE_OFFSET_MASK } from '../util/page.js';
import { readFailure } from '../util/read-file.js';

export interface Loaded {
  set: SlabSet;
  /** Streaming sources are scanned while they are read. */
  pre?: ScanResult;
  kallsyms: Kallsyms | null;
  vmcore: Kernel | null;
}

function loadVmcore(req: AnalyzeRequest, warnings: string[], phases: Phases): Loaded {
  if (req.rd.length || req.raw || req.kmem) throw new MemleakError('E_USAGE', '--vmcore is a complete memory source: do not combine it with --rd, --raw or --kmem');
  const v = openVmcore({ vmcore: req.vmcore!, kallsyms: req.kallsyms, kallsymsTable: req.kallsymsTable, btf: req.btf, capturePages: req.vmcoreHook?.capturePages }, phases);
  try {
    warnings.push(...v.warnings);
    let cache: KmemCache;
    // An extract must also answer the summary a later run without --cache makes.
    const summary = !req.geometry.cache || req.vmcoreHook ? phases.run('cache summary', 'pages', () => summarizeCaches(v)) : null;
    // An extract remembers its cache (SYSAK note): `--from` a saved run analyses the same one.
    const wanted = req.geometry.cache ?? (typeof v.dump.extractInfo?.cache === 'string' ? v.dump.extractInfo.cache : undefined);
    if (wanted) cache = findSlabCache(v, wanted);
    else {
      const suspect = chooseSuspectCache(summary!);
      if (!suspect) throw new MemleakError('E_NO_DATA', 'the dump has no unreclaimable slab cache with objects', { file: v.dump.path });
      cache = suspect.cache;
      warnings.push(`no --cache given: analysing ${cache.name}, the unreclaimable cache with the most allocated bytes in the dump`);
    }
    const walk = walkCache(v, cache, phases);
    warnings.push(...walk.warnings);
    return { set: slabSetFromWalk(v, walk), kallsyms: v.syms, vmcore: v };
  } catch (e) {
    v.close();
    throw e;
  }
}

/**
 * kmem text that does not hold the cache to analyse, said with its file: `kmem -s` lists every cache
 * (one must be named), and a named cache may be missing (another cache's kmem -S, a typo).
 */
function expectKmemCache(file: string, kmem: KmemReport, name: string | null, slabinfo: Map<string, SlabinfoRow> | null): void {
  const names = kmem.caches.map((c) => c.name);
  if (name === null && names.length > 1) {
    const big = [...kmem.caches].sort((a, b) => b.total * b.objectSize - a.total * a.objectSize).slice(0, 3).map((c) => c.name);
    throw new MemleakError('E_USAGE', `lists ${names.length} caches (kmem -s): name the one to analyse with -n (the most bytes: ${big.join(', ')})`, { file });
  }
  if (name !== null && !names.includes(name) && !slabinfo?.has(name)) {
    const near = names.filter((n) => n.includes(name.replace(/-\d+$/, ''))).slice(0, 5);
    throw new MemleakError('E_GEOMETRY', `no cache ${name} in its ${names.length} cache${names.length === 1 ? '' : 's'} (${(near.length ? near : names.slice(0, 5)).join(', ')}${names.length > 5 && !near.length ? ', ...' : ''}): give the kmem -S of ${name}, or --object-size`, { file });
  }
}

export async function loadMemory(req: AnalyzeRequest, warnings: string[], phases: Phases): Promise<Loaded> {
  if (req.recordingWithoutMemory) {
    throw new MemleakError('E_NO_DATA', 'no slab memory in this directory: expected a vmcore, crash/rd64_pages.txt or crash/rdS_pages.txt (or give --vmcore / --rd / --raw)', { file: req.recordingWithoutMemory });
  }
  if (req.vmcore) return loadVmcore(req, warnings, phases);
  if (req.btf) throw new MemleakError('E_USAGE', '--btf goes with --vmcore');
  const kallsyms = kallsymsOf(req);
  let kmem: KmemReport | null = null;
  if (req.kmem) kmem = parseCrashKmem(readAs(req.kmem, 'kmem'), req.kmem);
  const cw = kmem?.crashWarnings;
  if (cw?.count) warnings.push(`${req.kmem}: ${cw.count} lines of crash's own warnings about corrupted slabs were skipped (first, line ${cw.firstLine}: ${JSON.stringify(cw.first)}): those slabs' free objects may be incomplete`);
  let slabinfo: Map<string, SlabinfoRow> | null = null;
  if (req.slabinfo) slabinfo = parseSlabinfo(readAs(req.slabinfo, 'slabinfo'), req.slabinfo);
  if (kmem && req.geometry.objectSize === undefined) expectKmemCache(req.kmem!, kmem, req.geometry.cache ?? null, slabinfo);
  const geometry = resolveGeometry(req.geometry, kmem, slabinfo);
  if (req.raw) {
    if (req.rd.length) throw new MemleakError('E_USAGE', '--raw and --rd are different memory sources: give one');
    if (req.raw.file === '-' || !kmem) return streamRaw(req, geometry, kallsyms, warnings, phases);
    const mem = new RawFileMemory(req.raw.file, req.raw.base);
    const { slabs, trailingBytes } = mem.slabs(geometry.slabSize);
    if (slabs.length === 0) throw new MemleakError('E_NO_DATA', `raw dump is smaller than one ${geometry.slabSize}-byte slab`, { file: req.raw.file });
    if (trailingBytes) warnings.push(`${req.raw.file}: ${trailingBytes} bytes after the last whole slab were not scanned`);
    return {
      set: {
        cache: geometry, slabs, memory: mem, allocated: (a) => kmem?.objects.get(a) ?? null,
        freeIndexes: kmem ? undefined : () => null,
        addressSpace: estimateAddressSpace(slabs), freeSource: kmem ? 'crash kmem -S object markers' : 'none (all objects counted)',
      },
      kallsyms,
      vmcore: null,
    };
  }
  if (req.rd.length === 0) throw new MemleakError('E_USAGE', 'no memory source: give --rd FILE (crash rd -64 text), --raw FILE --base ADDR, or --from DIR');
  const mem = new SparseMemory(`crash rd text (${req.rd.join(', ')})`);
  for (const f of req.rd) {
    const { crashErrors: ce } = parseCrashRd(readAs(f, 'rd'), f, mem);
    if (ce.count) warnings.push(`${f}: ${ce.count} lines of crash's own errors were skipped (first, line ${ce.firstLine}: ${JSON.stringify(ce.first)}): the memory they name is not in the file`);
  }
  const sym = resolveSymbolicWords(mem, kallsyms);
  if (sym.unresolved) warnings.push(`${sym.unresolved} rd -S symbol words did not resolve${kallsyms ? ' in kallsyms' : ': give --kallsyms'}`);
  return { set: slabSetFromMemory(mem, geometry, kmem), kallsyms, vmcore: null };
}

/**
 * `--raw FILE|-` without free-object markers: streamed through the scanner's ring of shared buffers
 * (bounded memory, stdin works); the report's words come from the representatives copied out.
 */
async function streamRaw(req: AnalyzeRequest, geometry: CacheGeometry, kallsyms: Kallsyms | null, warnings: string[], phases: Phases): Promise<Loaded> {
  const { file, base } = req.raw!;
  if (base & PAGE_OFFSET_MASK) throw new MemleakError('E_USAGE', `--base ${hex(base)} is not page aligned`, { file });
  let fd: number;
  try {
    fd = file === '-' ? 0 : openSync(file, 'r');
  } catch (e) {
    throw new MemleakError('E_IO', `cannot open raw dump: ${readFailure(e)}`, { file });
  }
  try {
    // Said here, with the file's name: the stream would fail on a directory's first read (EISDIR) and
    // call a short file "the input".
    const st = fstatSync(fd);
    if (st.isDirectory()) throw new MemleakError('E_IO', 'cannot read raw dump: is a directory', { file });
    if (st.isFile() && st.size < geometry.slabSize) {
      throw new MemleakError('E_NO_DATA', `raw dump of ${st.size} bytes holds no whole ${geometry.slabSize}-byte slab`, { file, offset: st.size });
    }
    // The end of a stream is unknown up front: the direct map is bounded 4 TiB above the first slab.
    const space = estimateAddressSpace([base]);
    const r = await scanStream(fdSource(fd, file), { stride: geometry.stride, objsPerSlab: geometry.objsPerSlab, slabSize: geometry.slabSize, base }, space, { ...req.scan, phases });
    if (r.trailingBytes) warnings.push(`${file === '-' ? 'stdin' : file}: ${r.trailingBytes} bytes after the last whole slab were not scanned`);
    const slabs = r.slabs > 0 ? [base, base + BigInt((r.slabs - 1) * geometry.slabSize)] : [base];
    // The stream keeps only the clusters' representatives; marking reads every outstanding allocation
    // of the trace, so a regular file is read again by offset (pread). Stdin, a pipe or a process
    // substitution (--raw <(crash ...), /dev/fd/N) cannot be.
    const regular = file !== '-' && fstatSync(fd).isFile();
    if (req.trace && !regular) warnings.push(`the trace's unfreed allocations cannot be read back from ${file === '-' ? 'stdin' : `${file} (not a regular file)`}: give a file (--raw FILE) to mark them`);
    let memory: MemoryReader = r.reps;
    if (regular) {
      const raw = new RawFileMemory(file, base);
      memory = { description: `${r.reps.description}; unfreed objects read back from the file`, read: (a, l) => raw.read(a, l) };
    }
    return {
      set: {
        cache: geometry, slabs, memory, allocated: () => null, freeIndexes: () => null,
        addressSpace: space, freeSource: 'none (all objects counted)',
      },
      kallsyms,
      vmcore: null,
      pre: r.scan,
    };
  } finally {
    if (fd !== 0) closeSync(fd);
  }
}
