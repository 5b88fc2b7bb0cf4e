/**
 * crash `kmem -s` / `kmem -S CACHE` text (SLUB). The cache table header names its columns; crash
 * before 7.2.4 printed NAME second, later versions last, so columns are found by header name.
 * `kmem -S` then lists per-CPU and partial slabs with one line per object: `  [ADDR]` allocated,
 * `   ADDR  ` free (maybe `(cpu N cache)`). Full slabs are "(not tracked)" without slub_debug=U.
 */
import { MemleakError } from '../errors.js';
import { parseSize } from '../hex.js';

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
}

const CACHE_HEADER = /^CACHE\s+/;

export function looksLikeKmem(text: string): boolean {
  const first = text.split('\n', 5).find((l) => l.trim() !== '' && !l.startsWith('crash>'));
  return first !== undefined && CACHE_HEADER.test(first) && /OBJSIZE/.test(first);
}

export function parseCrashKmem(text: string, file: string): KmemReport {
  const lines = text.split('\n');
  const caches: KmemCacheRow[] = [];
  const slabs: KmemSlab[] = [];
  const objects = new Map<bigint, boolean>();
  let columns: string[] | null = null;
  let inSlabHeader = false;
  let fullSlabsTracked = true;
  let sawHeader = false;
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = lines[i].replace(/\r$/, '');
    const t = line.trim();
    if (t === '' || line.startsWith('crash>')) continue;
    if (CACHE_HEADER.test(line) && /OBJSIZE/.test(line)) {
      columns = t.split(/\s+/);
      sawHeader = true;
      continue;
    }
    if (columns && /^[0-9a-f]{16}\s/.test(line) && !inSlabHeader) {
      const f = t.split(/\s+/);
      if (f.length === columns.length) {
        const get = (name: string) => f[columns!.indexOf(name)];
        const num = (name: string) => {
          const v = Number(get(name));
          if (!Number.isFinite(v)) throw new MemleakError('E_FORMAT', `kmem ${name} is not a number: ${get(name)}`, { file, line: lineNo });
          return v;
        };
        const ssize = parseSize(get('SSIZE'));
        if (ssize === null) throw new MemleakError('E_FORMAT', `kmem SSIZE is not a size: ${get('SSIZE')}`, { file, line: lineNo });
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
      continue;
    }
    if (inSlabHeader) {
      const f = t.split(/\s+/);
      if (f.length === 6 && /^[0-9a-f]{16}$/.test(f[0])) {
        slabs.push({
          slabStruct: BigInt('0x' + f[0]),
          memory: BigInt('0x' + f[1]),
          total: Number(f[3]),
          allocated: Number(f[4]),
          free: Number(f[5]),
        });
      }
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
    throw new MemleakError('E_FORMAT', `unexpected line in crash kmem output: ${JSON.stringify(t.slice(0, 60))}`, { file, line: lineNo });
  }
  if (!sawHeader || caches.length === 0) {
    throw new MemleakError('E_FORMAT', 'no "CACHE ... OBJSIZE ... NAME" table: not crash kmem -s/-S output', { file });
  }
  let stride: number | null = null;
  const addrs = [...objects.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (let i = 1; i < addrs.length; i++) {
    const d = Number(addrs[i] - addrs[i - 1]);
    if (d > 0 && (stride === null || d < stride)) stride = d;
  }
  return { caches, slabs, objects, stride, fullSlabsTracked };
}
