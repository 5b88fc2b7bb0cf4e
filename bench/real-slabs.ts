/**
 * Real slab contents for the bench: the kmalloc-64 slab pages of the demo recording's vmcore extract
 * (samples/demo-kmalloc64/vmcore.extract.gz: the memdemo leak, its long-lived table, and whatever else
 * the guest kept in kmalloc-64), replicated into one contiguous raw dump of the size asked for.
 * Synthetic slabs flatter the scan (bench/gen-slabs.ts has five shapes; a real cache has hundreds).
 * Each copy of a slab is placed at a new address, and the words that pointed into the slab itself
 * (empty list_heads, back pointers) are moved with it, so self pointers stay self pointers; pointers
 * to other objects stay as they were (heap pointers). Usage:
 *   node dist/bench/real-slabs.js BYTES > dump.bin     (prints the base address on stderr)
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { openVmcore } from '../src/kernel/kernel.js';
import { walkCache } from '../src/kernel/slub.js';
import { slabSetFromWalk } from '../src/slab/from-dump.js';
import { findSlabCache } from '../src/kernel/slub.js';

export const REAL_SAMPLE = fileURLToPath(new URL('../../samples/demo-kmalloc64/vmcore.extract.gz', import.meta.url));

export interface RealSlabs {
  cache: string;
  stride: number;
  slabSize: number;
  /** Slab pages as read from the dump, and the address each was read from. */
  pages: Uint8Array[];
  bases: bigint[];
  /** Per page: byte offsets of the words that point into the page itself (moved with each copy). */
  inner: number[][];
}

/** Every readable slab of `cache` in the sample extract. */
export function loadRealSlabs(cache = 'kmalloc-64', file = REAL_SAMPLE): RealSlabs {
  const v = openVmcore({ vmcore: file, kallsyms: null, btf: null });
  try {
    const set = slabSetFromWalk(v, walkCache(v, findSlabCache(v, cache)));
    const { stride, slabSize } = set.cache;
    const pages: Uint8Array[] = [];
    const bases: bigint[] = [];
    for (const base of set.slabs) {
      const b = set.memory.read(base, slabSize);
      if (!b) continue;
      pages.push(Uint8Array.from(b));
      bases.push(base);
    }
    const size = BigInt(slabSize);
    const inner = pages.map((p, i) => {
      const dv = new DataView(p.buffer, p.byteOffset, p.length);
      const at: number[] = [];
      for (let w = 0; w < slabSize; w += 8) {
        const v = dv.getBigUint64(w, true);
        if (v >= bases[i] && v < bases[i] + size) at.push(w);
      }
      return at;
    });
    return { cache, stride, slabSize, pages, bases, inner };
  } finally {
    v.close();
  }
}

/**
 * Writes `bytes` (rounded down to whole slabs) of replicated slabs to fd, starting at address `base`;
 * copy k of slab i lies at base + (k * n + i) * slabSize. Returns the slabs written.
 */
export function writeReplicated(fd: number, real: RealSlabs, base: bigint, bytes: number): number {
  const { slabSize, pages, bases, inner } = real;
  const total = Math.floor(bytes / slabSize);
  const perWrite = Math.max(1, Math.floor((4 << 20) / slabSize));
  const out = new Uint8Array(perWrite * slabSize);
  const dv = new DataView(out.buffer);
  const size = BigInt(slabSize);
  let done = 0;
  while (done < total) {
    const n = Math.min(perWrite, total - done);
    for (let i = 0; i < n; i++) {
      const k = done + i;
      const src = k % pages.length;
      const from = bases[src];
      const to = base + BigInt(k) * size;
      const at = i * slabSize;
      out.set(pages[src], at);
      for (const w of inner[src]) dv.setBigUint64(at + w, dv.getBigUint64(at + w, true) - from + to, true);
    }
    let off = 0;
    while (off < n * slabSize) off += writeSync(fd, out, off, n * slabSize - off);
    done += n;
  }
  return total;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\/dist\//, 'dist/'))) {
  const real = loadRealSlabs();
  const base = real.bases[0];
  const fd = openSync('/dev/stdout', 'w');
  const slabs = writeReplicated(fd, real, base, Number(process.argv[2] ?? 1 << 30));
  closeSync(fd);
  process.stderr.write(`${slabs} slabs of ${real.cache} (${real.pages.length} real, stride ${real.stride}) from ${base.toString(16)}\n`);
}
