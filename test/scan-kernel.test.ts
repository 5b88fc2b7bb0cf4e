import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { SparseMemory } from '../src/util/memory.js';
import { parseCrashRd } from '../src/input/crash-rd.js';
import { scanChunkJs, scanChunkWasm, scanUnreadChunk, scanUnreadChunkJs, type ChunkJob } from '../src/scan/scan-chunk.js';
import { scanKernel } from '../src/scan/scan-wasm.js';
import { HeavyLearner } from '../src/scan/heavy.js';
import { tokenSpaceOf, type TokenSpace } from '../src/scan/tokens.js';
import { ROOT, sampleText } from './helpers.js';

/** 200 real kmalloc-64 slab pages of the demo recording, as one buffer, with their addresses. */
let pages: { bytes: Uint8Array; addrs: bigint[] } | undefined;
function realPages(): { bytes: Uint8Array; addrs: bigint[] } {
  if (pages) return pages;
  const mem = new SparseMemory('rd');
  parseCrashRd(sampleText('demo-kmalloc64/crash/rd64_pages.txt.gz'), 'rd', mem);
  const addrs = mem.pageAddresses();
  const bytes = new Uint8Array(addrs.length * 4096);
  addrs.forEach((p, i) => bytes.set(mem.read(p, 4096)!, i * 4096));
  return (pages = { bytes, addrs });
}

const SPACE: TokenSpace = tokenSpaceOf({
  source: 'test',
  directMap: { lo: 0xffff888000000000n, hi: 0xffffc87fffffffffn },
  vmalloc: { lo: 0xffffc90000000000n, hi: 0xffffe8ffffffffffn },
  vmemmap: { lo: 0xffffea0000000000n, hi: 0xffffeaffffffffffn },
});

/** Words at every boundary the class tests compare, and pointers into the object itself. */
const EDGES = [0n, 1n, 0x7fffffffn, 0x80000000n, 0xffffffffn, 0xdead000000000100n, 0xdead000000000122n, 0xdead000000100100n,
  0xdead000000200200n, 0xffff7fffffffffffn, 0xffff800000000000n, 0xffff888000000000n, 0xffffc87fffffffffn, 0xffffc90000001000n,
  0xffffea0000040000n, 0xffffffff7fffffffn, 0xffffffff80000000n, 0xffffffffc0614b60n, 0xffffffffffffffffn, 0x0bad5aab00000000n, 0x0bad5aab12345678n];

/** Jobs of one stride built from real bytes, with adversarial words mixed in at `noise` (0..1). */
function job(stride: number, slabs: number, opts: { noise: number; base?: bigint; state?: boolean; maxTemplates?: number; maxPerPosition?: number; space?: TokenSpace; alike?: number }): ChunkJob {
  const { bytes, addrs } = realPages();
  const perSlab = Math.floor(4096 / stride);
  const slabBytes = perSlab * stride;
  const buffer = new SharedArrayBuffer(slabs * slabBytes);
  const out = new Uint8Array(buffer);
  const dv = new DataView(buffer);
  const slabAddrs = new Uint32Array(2 * slabs);
  let rnd = 12345;
  const next = () => (rnd = (Math.imul(rnd, 1103515245) + 12345) >>> 0);
  for (let s = 0; s < slabs; s++) {
    const base = opts.base !== undefined ? opts.base + BigInt(s * 4096) : addrs[s % addrs.length] + BigInt(Math.floor(s / addrs.length)) * 0x10000000n;
    slabAddrs[2 * s] = Number(base & 0xffffffffn);
    slabAddrs[2 * s + 1] = Number(base >> 32n);
    out.set(bytes.subarray((s % addrs.length) * 4096, (s % addrs.length) * 4096 + slabBytes), s * slabBytes);
    if (opts.alike !== undefined) alikeSlab(dv, s * slabBytes, base, stride, perSlab, opts.alike, s);
    for (let w = 0; w < slabBytes; w += 8) {
      if (next() / 2 ** 32 >= opts.noise) continue;
      const pick = next() % (EDGES.length + 5);
      const obj = base + BigInt(Math.floor(w / stride) * stride);
      // Pointers into the object: at this word, the next, the neighbour word's offset, the start, anywhere.
      const into = [w % stride, (w % stride) + 8, (w % stride) ^ 8, 0, next() % stride][pick - EDGES.length];
      const v = pick < EDGES.length ? EDGES[pick] : obj + BigInt(into);
      dv.setBigUint64(s * slabBytes + w, v, true);
    }
  }
  const space = opts.space ?? SPACE;
  const words = new Uint32Array(buffer);
  const learner = new HeavyLearner(stride >>> 2, stride, space);
  for (let o = 0; o < slabs * perSlab; o += 3) {
    const s = Math.floor(o / perSlab);
    const lo = slabAddrs[2 * s] + (o % perSlab) * stride;
    learner.add(words, o * (stride >>> 2), lo >>> 0, lo > 0xffffffff ? slabAddrs[2 * s + 1] + 1 : slabAddrs[2 * s + 1]);
  }
  const heavy = learner.finish({ minShare: 0.0005, minCount: 4, maxPerPosition: opts.maxPerPosition ?? 16 });
  let state: Uint8Array | null = null;
  if (opts.state) {
    state = new Uint8Array(slabs * perSlab).fill(1);
    for (let i = 0; i < state.length; i++) if (next() % 7 === 0) state[i] = 0;
  }
  return { buffer, byteOffset: 0, stride, objsPerSlab: perSlab, slabAddrs, state, heavy, space, maxTemplates: opts.maxTemplates ?? 1 << 16 };
}

/**
 * A leak's slab: every object a copy of real object `at` (its pointers into itself moved with it), one
 * word a counter beside a constant high half, as leaked objects are: the kernel's hot-template paths.
 */
function alikeSlab(dv: DataView, off: number, base: bigint, stride: number, perSlab: number, at: number, s: number): void {
  const { bytes, addrs } = realPages();
  const src = new DataView(bytes.buffer, bytes.byteOffset + at * stride, stride);
  const from = addrs[Math.floor((at * stride) / 4096)] + BigInt((at * stride) % 4096);
  const counter = Math.min(4, stride / 8 - 1) * 8;
  for (let j = 0; j < perSlab; j++) {
    const obj = base + BigInt(j * stride);
    for (let w = 0; w < stride; w += 8) {
      const v = src.getBigUint64(w, true);
      dv.setBigUint64(off + j * stride + w, v >= from && v < from + BigInt(stride) ? obj + (v - from) : v, true);
    }
    const seq = s * perSlab + j;
    dv.setUint32(off + j * stride + counter, seq % 3 === 0 ? 1 : seq, true);
    dv.setUint32(off + j * stride + counter + 4, 0xc0de, true);
  }
}

describe('the WebAssembly SIMD scan kernel equals the JS loop', () => {
  const k = scanKernel();

  it('is available on this Node (otherwise every scan runs the JS loop)', () => {
    expect(k).not.toBeNull();
  });

  // Object sizes whose 8-byte word count is odd and even, slabs whose object count is not a multiple of
  // four (groups across slabs and a short last group), free objects, template overflow, address carries.
  for (const stride of [8, 16, 24, 32, 40, 56, 64, 96, 192, 256, 1024]) {
    it(`object size ${stride}: real pages with adversarial words, free objects, overflow`, () => {
      for (const opts of [
        { noise: 0 },
        { noise: 0.05, state: true },
        { noise: 0.3, maxTemplates: 7 },
        { noise: 0.02, base: 0xffff8880fffe0000n, state: true },
        // The chunk's last objects lie past the direct map's end: their pointers into themselves are not self pointers.
        { noise: 0.05, base: 0xffff8880fffe0000n, space: { ...SPACE, heapHi: 0xffff8880 } },
        { noise: 0.1, maxPerPosition: 1, space: { heapLo: 1, heapHi: 0, vmallocLo: 1, vmallocHi: 0, vmemmapLo: 1, vmemmapHi: 0 } },
        { noise: 0.1, space: { ...SPACE, vmallocLo: 1, vmallocHi: 0, vmemmapLo: 1, vmemmapHi: 0 } },
      ]) {
        const j = job(stride, stride >= 1024 ? 37 : 23, opts);
        const want = scanChunkJs(j);
        expect(want.objects).toBeGreaterThan(0);
        expect(scanChunkWasm(k!, j)).toEqual(want);
      }
    });
  }

  // Runs of alike objects (the hot template: bulk and word-by-word tests, a counter's plain high half,
  // empty list_heads beside deleted ones) with rare words of every class among them.
  it('slabs of alike objects with rare different words', () => {
    for (const stride of [8, 16, 24, 32, 40, 64, 96, 128, 256, 512, 1024]) {
      for (const opts of [{ noise: 0 }, { noise: 0.002, state: true }, { noise: 0.02 }, { noise: 0.01, base: 0xffff8880fffe0000n }]) {
        for (const alike of [3, 41, 100]) {
          const j = job(stride, stride >= 512 ? 9 : 17, { ...opts, alike: alike % Math.floor(4096 / stride) + 4 * Math.floor(4096 / stride) });
          expect(scanChunkWasm(k!, j)).toEqual(scanChunkJs(j));
        }
      }
    }
  });

  // Made-up alike shapes, many per run: each word a constant of some class, a counter beside a fixed
  // high half, a list_head (empty or deleted) or noise, and now and then any word of any class.
  it('runs of made-up alike shapes with rare different words', () => {
    let seed = 1;
    const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const ri = (n: number) => Math.floor(rnd() * n);
    const special = [...EDGES.map((v) => [Number(v & 0xffffffffn), Number(v >> 32n)]), [7, 0xdead0000], [0x7a7a7a00, 0xc0de],
      [0x7a7a7a03, 0xc0de], [0x4ea90001, 0xc0de], [0x5e1f0040, 0xc0de], [0x11570000, 0xc0de], [0xc1a55eed, 0xc0de], [0, 0x7a7a7a00], [0, 0xc1a55eed], [1, 0], [0, 0],
      [12345, 0], [77, 0xc0dd], [88, 0xc0df]];
    for (let run = 0; run < 1500; run++) {
      const stride = [8, 16, 24, 32, 48, 64, 96, 128, 256, 512][ri(10)];
      const perSlab = Math.floor(4096 / stride);
      const slabs = 1 + ri(12);
      const nU32 = stride / 4;
      const words = new Uint32Array(slabs * perSlab * nU32);
      const slabAddrs = new Uint32Array(2 * slabs);
      const lo0 = rnd() < 0.3 ? 0xfffe0000 : ri(0x10000) * 0x1000;
      const hi0 = rnd() < 0.5 ? 0xffff8ead : 0xffff8880;
      for (let s = 0; s < slabs; s++) {
        slabAddrs[2 * s] = (lo0 + s * 0x1000) >>> 0;
        slabAddrs[2 * s + 1] = lo0 + s * 0x1000 > 0xffffffff ? hi0 + 1 : hi0;
      }
      const shapes = Array.from({ length: 1 + ri(3) }, () => Array.from({ length: nU32 / 2 }, (_, w) => {
        const r = rnd();
        return r < 0.5 ? { kind: 0, v: special[ri(special.length)] } : r < 0.7 ? { kind: 1, v: [0, [0xc0de, 0, 0x7a7a7a00][ri(3)]] } : r < 0.85 ? { kind: 2, v: [rnd() < 0.6 ? w * 8 : rnd() < 0.5 ? w * 8 - 8 : ri(stride / 8) * 8, 0] } : { kind: 3, v: [0, 0] };
      }));
      const rate = [0, 0.001, 0.01, 0.1][ri(4)];
      let counter = ri(1000);
      for (let o = 0; o < slabs * perSlab; o++) {
        const s = Math.floor(o / perSlab);
        const addr = slabAddrs[2 * s] + (o % perSlab) * stride;
        const olo = addr >>> 0;
        const ohi = addr > 0xffffffff ? slabAddrs[2 * s + 1] + 1 : slabAddrs[2 * s + 1];
        const shape = shapes[Math.floor(o / (1 + ri(50))) % shapes.length];
        for (let w = 0; w < nU32 / 2; w++) {
          const { kind, v } = shape[w];
          let a = v[0];
          let b = v[1];
          if (kind === 1) {
            a = counter++ % (rnd() < 0.5 ? 3 : 100000);
            if (rnd() < 0.02) b = [0, b - 1, b + 1][ri(3)] >>> 0; // the high half beside the counter differs
          }
          else if (kind === 2) [a, b] = rnd() < 0.5 ? [(olo + v[0]) >>> 0, ohi] : rnd() < 0.7 ? [0x100, 0xdead0000] : [0x122, 0xdead0000];
          else if (kind === 3) [a, b] = [ri(2 ** 32), ri(2 ** 32)];
          if (rnd() < rate) [a, b] = rnd() < 0.5 ? special[ri(special.length)] : [(olo + [0, w * 8, w * 8 - 8, ri(stride), ri(stride / 8) * 8][ri(5)]) >>> 0, ohi];
          words[o * nU32 + 2 * w] = a;
          words[o * nU32 + 2 * w + 1] = b;
        }
      }
      const learner = new HeavyLearner(nU32, stride, SPACE);
      for (let o = 0; o < slabs * perSlab; o += 1 + ri(3)) {
        const s = Math.floor(o / perSlab);
        const addr = slabAddrs[2 * s] + (o % perSlab) * stride;
        learner.add(words, o * nU32, addr >>> 0, addr > 0xffffffff ? slabAddrs[2 * s + 1] + 1 : slabAddrs[2 * s + 1]);
      }
      const heavy = learner.finish({ minShare: 0.0005, minCount: 2, maxPerPosition: 1 + ri(16) });
      let state: Uint8Array | null = null;
      if (rnd() < 0.3) state = Uint8Array.from({ length: slabs * perSlab }, () => (rnd() < 0.05 ? 0 : 1));
      const j: ChunkJob = { buffer: words.buffer, byteOffset: 0, stride, objsPerSlab: perSlab, slabAddrs, state, heavy, space: SPACE, maxTemplates: rnd() < 0.1 ? 3 : 1 << 16 };
      expect(scanChunkWasm(k!, j), `run ${run}: object size ${stride}, ${slabs} slabs, rate ${rate}`).toEqual(scanChunkJs(j));
    }
  });

  it('carries nothing from one chunk to the next (template table, checksum, layout changes)', () => {
    const jobs = [job(64, 40, { noise: 0.05 }), job(32, 9, { noise: 0.5, maxTemplates: 3 }), job(64, 40, { noise: 0.05 }), job(24, 11, { noise: 0.2, state: true })];
    const want = jobs.map(scanChunkJs);
    expect(jobs.map((j) => scanChunkWasm(k!, j))).toEqual(want);
  });

  it('a chunk read straight into the kernel (zero copy, slab padding packed there) equals the chunk copied in', () => {
    for (const stride of [24, 64, 96, 192]) {
      for (const opts of [{ noise: 0 }, { noise: 0.2, maxTemplates: 5 }, { noise: 0.05, base: 0xffff8880fffe0000n }]) {
        const j = job(stride, 29, opts);
        const want = scanChunkJs(j);
        const usable = j.stride * j.objsPerSlab;
        // As the file holds them: whole 4 KiB slabs, the padding after the objects filled with junk.
        const slabs = j.slabAddrs.length / 2;
        const file = new Uint8Array(slabs * 4096).fill(0xa5);
        for (let i = 0; i < slabs; i++) file.set(new Uint8Array(j.buffer, i * usable, usable), i * 4096);
        const { buffer: _b, byteOffset: _o, ...unread } = j;
        const from = { slabBytes: 4096, fill: (into: Uint8Array) => into.set(file.subarray(0, into.length)) };
        expect(scanUnreadChunk(unread, from)).toEqual(want);
        expect(scanUnreadChunkJs(unread, from)).toEqual(want);
        // And again, after a chunk of another layout went through the same kernel memory.
        scanChunkWasm(k!, job(32, 9, { noise: 0.5 }));
        expect(scanUnreadChunk(unread, from)).toEqual(want);
      }
    }
  });

  it('is embedded as the build of wasm/scan-kernel.ts', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'wasm/build.mjs'), '--check'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
