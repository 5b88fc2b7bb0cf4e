/**
 * npm run bench: first measurements of the scan engine on synthetic slabs (a leaked template with a
 * varying counter and self pointers, other shapes, free objects holding freelist-like words), and the
 * per-object cost of xxhash-wasm against the JS template hash that the hot loop uses.
 * Issue 6 extends this with streaming, the cat read limit and the seed's 13.4 GB case.
 */
import xxhash from 'xxhash-wasm';
import { estimateAddressSpace } from '../src/kernel/address-space.js';
import type { MemoryReader } from '../src/memory.js';
import { scanSlabs } from '../src/scan/scanner.js';
import { templateKey } from '../src/scan/heavy.js';

const BASE = 0xffff8eadc0000000n;

function synthetic(objSize: number, slabs: number): { mem: MemoryReader; slabAddrs: bigint[] } {
  const slabSize = 4096;
  const buf = new Uint8Array(slabs * slabSize);
  const dv = new DataView(buf.buffer);
  let seq = 0;
  let rnd = 0x12345678;
  const next = () => (rnd = (Math.imul(rnd, 1103515245) + 12345) >>> 0);
  for (let o = 0; o + objSize <= buf.length; o += objSize) {
    const addr = BASE + BigInt(o);
    const kind = next() % 10;
    if (kind < 6) {
      // the leak: cookie, ops, list_head (self or poison), counter
      dv.setBigUint64(o, 0x6d656d64656d6f31n, true);
      if (objSize >= 16) dv.setBigUint64(o + 8, 0xffffffffc0614b60n, true);
      if (objSize >= 32) {
        const self = (seq & 1) === 1;
        dv.setBigUint64(o + 16, self ? addr + 16n : 0xdead000000000100n, true);
        dv.setBigUint64(o + 24, self ? addr + 16n : 0xdead000000000122n, true);
      }
      if (objSize >= 40) dv.setUint32(o + 32, seq++, true);
    } else if (kind < 8) {
      dv.setBigUint64(o, BASE + BigInt(next() & 0xffffc0), true);
      dv.setBigUint64(o + 8, 0xffffffffb1d69c20n, true);
    } else {
      // free object: hardened freelist word, stale bytes
      dv.setBigUint64(o + (objSize >= 64 ? 32 : 0), (BigInt(next()) << 32n) | BigInt(next()), true);
    }
  }
  const mem: MemoryReader = {
    description: 'synthetic',
    read(a, len) {
      const off = Number(a - BASE);
      return off >= 0 && off + len <= buf.length ? buf.subarray(off, off + len) : null;
    },
  };
  return { mem, slabAddrs: Array.from({ length: slabs }, (_, i) => BASE + BigInt(i * slabSize)) };
}

async function main() {
  console.log(`# sysak memleak bench (node ${process.version}, ${process.arch})`);
  const xx = await xxhash();
  const n = 1 << 18;
  const objs = new Uint8Array(n * 32);
  let t = performance.now();
  let h = 0n;
  for (let i = 0; i < n; i++) h ^= xx.h64Raw(objs.subarray(i * 32, i * 32 + 32));
  const xxPer = ((performance.now() - t) * 1e6) / n;
  const u32 = new Uint32Array(objs.buffer);
  t = performance.now();
  let k = 0;
  for (let i = 0; i < n; i++) k ^= templateKey(u32.subarray(i * 8, i * 8 + 8), 8);
  const jsPer = ((performance.now() - t) * 1e6) / n;
  t = performance.now();
  const big = new Uint8Array(64 << 20);
  h ^= xx.h64Raw(big);
  const xxGBs = big.length / ((performance.now() - t) * 1e6);
  console.log(`hash per 32-byte object: xxhash-wasm ${xxPer.toFixed(0)} ns, JS template hash ${jsPer.toFixed(0)} ns; xxhash over 64 MiB: ${xxGBs.toFixed(2)} GB/s (checksums ${h & 0xffn} ${k & 0xff}: keep the loops from being optimised away)`);

  const slabs = 64 * 1024; // 256 MiB of slabs
  for (const size of [32, 64, 256]) {
    const { mem, slabAddrs } = synthetic(size, slabs);
    for (const workers of [1, 2]) {
      const r = await scanSlabs(
        {
          cache: { name: `synthetic-${size}`, stride: size, objsPerSlab: 4096 / size, slabSize: 4096, allocated: null, source: 'bench' },
          slabs: slabAddrs, memory: mem, allocated: () => null, addressSpace: estimateAddressSpace(slabAddrs), freeSource: 'none',
        },
        { workers },
      );
      const bytes = slabs * 4096;
      const s = r.stats.elapsedMs / 1000;
      console.log(
        `size ${String(size).padStart(3)}  workers ${workers}  ${(bytes / s / 1e9).toFixed(3)} GB/s  ${((s * 1e9) / r.stats.objectsScanned).toFixed(1)} ns/object  top cluster ${r.clusters[0].count}  rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`,
      );
    }
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
