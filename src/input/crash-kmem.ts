/**
 * crash `kmem -s` / `kmem -S CACHE` text (SLUB). The cache table header names its columns; crash
 * before 7.2.4 printed NAME second, later versions last, so columns are found by header name.
 * `kmem -S` then lists per-CPU and partial slabs with one line per object: `  [ADDR]` allocated,
 * `   ADDR  ` free (maybe `(cpu N cache)`). Full slabs are "(not tracked)" without slub_debug=U.
 */
import { MemleakError } from '../errors.js';
import { parseSize } from '../util/hex.js';

export interface KmemCacheRow {
  cacheAddr: bigint;
  name: string;
  objectSize: number;
  allocated: number;
  total: number;
  slabs: number;
  slabSize: number;
}

export interface KmemSlab {
  slabStruct: bigint;
  memory: bigint;
  total: number;
  allocated: number;
  free: number;
}

export interface KmemReport {
  caches: KmemCacheRow[];
  slabs: KmemSlab[];
  /** Object address -> allocated? (only for the slabs kmem -S lists) */
  objects: Map<bigint, boolean>;
  /** Smallest distance between listed objects: the real stride (s->size) when OBJSIZE is object_size. */
  stride: number | null;
  fullSlabsTracked: boolean;
  /** crash's own complaints about corrupted slabs (`kmem: CACHE: slab: ADDR invalid freepointer: V`), skipped. */
  crashWarnings: { count: number; first: string | null; firstLine: number | null };
}

const CACHE_HEADER = /^CACHE\s+/;
/** crash's error(INFO, ...) lines, printed between the slab lines when it meets a corrupted slab. */
const CRASH_MESSAGE = /^(kmem: |WARNING: |crash: )/;
/** A 32-bit kernel's cache row, slab or object line: addresses of 8 hex digits where x86_64 has 16. */
const NARROW_ADDRESS = /^\[?[0-9a-f]{8}\]?(\s|$)/;

function thirtyTwoBit(file: string, line: number, t: string): MemleakError {
  return new MemleakError('E_FORMAT', `32-bit addresses (${JSON.stringify(t.slice(0, 40))}): this is crash output of a 32-bit kernel; 32-bit kernels are not supported, only x86_64`, { file, line });
}

export function looksLikeKmem(text: string): boolean {
  const first = text.split('\n', 5).find((l) => l.trim() !== '' && !l.startsWith('crash>'));
  return first !== undefined && CACHE_HEADER.test(first) && /OBJSIZE/.test(first);
}

/** `SLAB MEMORY NODE TOTAL ALLOCATED FREE`: one slab of kmem -S, or null. */
function slabRow(t: string): KmemSlab | null {
  const f = t.split(/\s+/);
  if (f.length !== 6 || !/^[0-9a-f]{16}$/.test(f[0]) || !/^[0-9a-f]{16}$/.test(f[1]) || !f.slice(2).every((x) => /^\d{1,9}$/.test(x))) return null;
  return { slabStruct: BigInt('0x' + f[0]), memory: BigInt('0x' + f[1]), total: Number(f[3]), allocated: Number(f[4]), free: Number(f[5]) };
}

export function parseCrashKmem(text: string, file: string): KmemReport {
  const lines = text.split('\n');
  const caches: KmemCacheRow[] = [];
  const slabs: KmemSlab[] = [];
  const objects = new Map<bigint, boolean>();
  let columns: string[] | null = null;
  let inSlabHeader = false;
  let sawSlabHeader = false;
  let fullSlabsTracked = true;
  let sawHeader = false;
  const crashWarnings: KmemReport['crashWarnings'] = { count: 0, first: null, firstLine: null };
  // crash ends every line with a newline: a last line without one was cut while being written.
  const cut = text.length > 0 && !text.endsWith('\n');
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = lines[i].replace(/\r$/, '');
    const t = line.trim();
    if (t === '' || line.startsWith('crash>')) continue;
    if (CRASH_MESSAGE.test(t)) {
      crashWarnings.count++;
      if (crashWarnings.first === null) {
        crashWarnings.first = t.slice(0, 120);
        crashWarnings.firstLine = lineNo;
      }
      continue;
    }
    if (CACHE_HEADER.test(line) && /OBJSIZE/.test(line)) {
      columns = t.split(/\s+/);
      if (!['CACHE', 'OBJSIZE', 'ALLOCATED', 'TOTAL', 'SLABS', 'SSIZE', 'NAME'].every((c) => columns!.includes(c))) {
        throw new MemleakError('E_FORMAT', `the kmem header ${JSON.stringify(t.slice(0, 80))} lacks one of CACHE OBJSIZE ALLOCATED TOTAL SLABS SSIZE NAME: cut or not crash kmem -s/-S output`, { file, line: lineNo });
      }
      sawHeader = true;
      continue;
    }
    if (columns && NARROW_ADDRESS.test(t)) throw thirtyTwoBit(file, lineNo, t);
    if (columns && /^[0-9a-f]{16}\s/.test(line) && !inSlabHeader) {
      const f = t.split(/\s+/);
      if (cut && i === lines.length - 1 && caches.length === 0) {
        throw new MemleakError('E_FORMAT', `the file ends inside the cache table (${JSON.stringify(t.slice(0, 80))} has no newline): truncated`, { file, line: lineNo });
      }
      if (f.length === columns.length) {
        const get = (name: string) => f[columns!.indexOf(name)];
        const num = (name: string) => {
          const v = /^\d{1,12}$/.test(get(name)) ? Number(get(name)) : NaN;
          if (!Number.isFinite(v)) throw new MemleakError('E_FORMAT', `kmem ${name} is not a number: ${get(name)}`, { file, line: lineNo });
          return v;
        };
        const ssize = parseSize(get('SSIZE'));
        if (ssize === null) throw new MemleakError('E_FORMAT', `kmem SSIZE is not a size: ${get('SSIZE')}`, { file, line: lineNo });
        // The geometry the scan takes from this line: a slab of 2^order pages (at most MAX_ORDER's 4 MiB) holding an object.
        if (ssize < 4096 || ssize > 4 << 20 || (ssize & (ssize - 1)) !== 0 || num('OBJSIZE') < 1 || num('OBJSIZE') > ssize) {
          throw new MemleakError('E_FORMAT', `impossible slab geometry for ${get('NAME').slice(0, 40)}: OBJSIZE ${get('OBJSIZE')}, SSIZE ${get('SSIZE')}: damaged line`, { file, line: lineNo });
        }
        caches.push({
          cacheAddr: BigInt('0x' + get('CACHE')),
          name: get('NAME'),
          objectSize: num('OBJSIZE'),
          allocated: num('ALLOCATED'),
          total: num('TOTAL'),
          slabs: num('SLABS'),
          slabSize: ssize,
        });
        continue;
      }
      // KMEM_CACHE_NODE rows and the like have other shapes; fall through.
    }
    if (/^SLAB\s+MEMORY\s+NODE/.test(t)) {
      inSlabHeader = true;
      sawSlabHeader = true;
      continue;
    }
    // A slab row follows its SLAB/MEMORY header; a node's partial list may also be rows one after
    // another with no objects between them (as crash printed churn-rcu's NODE 0 PARTIAL).
    const row = sawSlabHeader ? slabRow(t) : null;
    if (row) slabs.push(row);
    if (inSlabHeader || row) {
      inSlabHeader = false;
      continue;
    }
    if (t === '(not tracked)') {
      fullSlabsTracked = false;
      continue;
    }
    let m = /^\[([0-9a-f]{16})\]$/.exec(t);
    if (m) {
      objects.set(BigInt('0x' + m[1]), true);
      continue;
    }
    m = /^([0-9a-f]{16})(\s+\(cpu \d+ cache\))?$/.exec(t);
    if (m && line.startsWith('   ')) {
      objects.set(BigInt('0x' + m[1]), false);
      continue;
    }
    // Section titles (CPU 0 SLAB:, NODE 0 FULL:, FREE / [ALLOCATED], (empty), KMEM_CACHE_CPU rows).
    if (/^(CPU \d+|NODE \d+|KMEM_CACHE_NODE|FREE \/ \[ALLOCATED\]|\(empty\))/.test(t) || /^[0-9a-f]{16}(\s+\d+)*$/.test(t)) continue;
    if (NARROW_ADDRESS.test(t)) throw thirtyTwoBit(file, lineNo, t);
    if (cut && i === lines.length - 1) throw new MemleakError('E_FORMAT', `the file ends inside a line (${JSON.stringify(t.slice(0, 60))}, no newline): truncated`, { file, line: lineNo });
    throw new MemleakError('E_FORMAT', `unexpected line in crash kmem output: ${JSON.stringify(t.slice(0, 60))}`, { file, line: lineNo });
  }
  if (!sawHeader || caches.length === 0) {
    if (sawHeader && cut) throw new MemleakError('E_FORMAT', 'the file ends inside the cache table: truncated', { file, line: lines.length });
    throw new MemleakError('E_FORMAT', 'no "CACHE ... OBJSIZE ... NAME" table: not crash kmem -s/-S output', { file });
  }
  let stride: number | null = null;
  const addrs = [...objects.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (let i = 1; i < addrs.length; i++) {
    const d = Number(addrs[i] - addrs[i - 1]);
    if (d > 0 && (stride === null || d < stride)) stride = d;
  }
  return { caches, slabs, objects, stride, fullSlabsTracked, crashWarnings };
}
