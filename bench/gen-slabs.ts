/**
 * Synthetic slab dumps for the bench, generated on the fly (no 13 GB file needed): a realistic mix of
 * a leaked shape (ops pointer, a counter that varies, a list_head that is empty = self pointers or
 * deleted = LIST_POISON), several other shapes (heap pointers, kernel pointers, small ints, zeros), and
 * free objects holding an obfuscated freelist word and stale bytes. As in a real leaking cache, the
 * leak fills whole slabs (SLUB hands out a slab's objects one after another, and a leak never gives
 * them back): 60% of the slabs are leak-only, the others mix every shape object by object. Usage:
 *   node dist/bench/gen-slabs.js OBJECT_SIZE OBJECTS [BASE_HEX] > dump.bin
 */
import { writeSync } from 'node:fs';

export const BENCH_BASE = 0xffff8eadc0000000n;
const CHUNK = 4 << 20;

/** Fills `out` with the slab bytes of stream offset `offset` (both multiples of the object size). */
export class SlabGenerator {
  private seq = 0;
  private rnd = 0x2545f491;
  constructor(readonly objSize: number, readonly base = BENCH_BASE) {
    if (objSize < 16 || objSize % 8 !== 0) throw new Error('object size must be a multiple of 8, at least 16');
  }

  private next(): number {
    this.rnd ^= this.rnd << 13;
    this.rnd ^= this.rnd >>> 17;
    this.rnd ^= this.rnd << 5;
    return this.rnd >>> 0;
  }

  fill(out: Uint8Array, offset: number): void {
    const w = new Uint32Array(out.buffer, out.byteOffset, out.length >>> 2);
    w.fill(0);
    const n = this.objSize >>> 2;
    const baseLo = Number(this.base & 0xffffffffn);
    const baseHi = Number(this.base >> 32n);
    const perSlab = Math.floor(4096 / this.objSize);
    let leakSlab = false;
    for (let o = 0, i = 0, k = 0; o < out.length; o += this.objSize, i += n, k++) {
      const addrLo = (baseLo + offset + o) >>> 0;
      const addrHi = addrLo < baseLo ? baseHi + 1 : baseHi;
      const r = this.next();
      if (k % perSlab === 0) leakSlab = r % 100 < 60;
      const kind = leakSlab ? 0 : r % 100;
      if (kind < 60) {
        // the leak: ops pointer, seq (varies) + flags, list_head empty (self) or deleted (poison)
        w[i] = 0xc0614b60; w[i + 1] = 0xffffffff;
        w[i + 2] = this.seq++; w[i + 3] = 0xc0de;
        if (n >= 8) {
          if (r & 0x100) {
            w[i + 4] = (addrLo + 16) >>> 0; w[i + 5] = addrHi; w[i + 6] = (addrLo + 16) >>> 0; w[i + 7] = addrHi;
          } else {
            w[i + 4] = 0x100; w[i + 5] = 0xdead0000; w[i + 6] = 0x122; w[i + 7] = 0xdead0000;
          }
        }
      } else if (kind < 75) {
        // a linked object: two heap pointers, a kernel pointer, a small id
        w[i] = (baseLo + (this.next() & 0x3ffffc0)) >>> 0; w[i + 1] = baseHi;
        w[i + 2] = 0xb1d69c20; w[i + 3] = 0xffffffff;
        if (n >= 8) { w[i + 4] = r & 0xff; w[i + 6] = (baseLo + (this.next() & 0x3ffffc0)) >>> 0; w[i + 7] = baseHi; }
      } else if (kind < 85) {
        // mostly zero with a refcount
        w[i] = 1;
      } else if (kind < 92) {
        // a string-ish object
        w[i] = 0x6d656d64; w[i + 1] = 0x6f6d6564 ^ (r & 0x0f000000); w[i + 2] = r & 0x7f7f7f7f;
      } else {
        // free: obfuscated freelist pointer at the middle, stale bytes of the leak shape
        const mid = (n >>> 1) & ~1;
        w[i + mid] = this.next(); w[i + mid + 1] = this.next();
        w[i] = 0xc0614b60; w[i + 1] = 0xffffffff;
      }
    }
  }

  /** Writes `objects` objects to a file descriptor in 4 MiB chunks. */
  write(fd: number, objects: number): number {
    const buf = new Uint8Array(CHUNK - (CHUNK % this.objSize));
    let written = 0;
    const total = objects * this.objSize;
    while (written < total) {
      const n = Math.min(buf.length, total - written);
      this.fill(buf.subarray(0, n), written);
      let done = 0;
      while (done < n) done += writeSync(fd, buf, done, n - done);
      written += n;
    }
    return written;
  }
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\/dist\//, 'dist/'))) {
  const size = Number(process.argv[2]);
  const objects = Number(process.argv[3]);
  const base = process.argv[4] ? BigInt('0x' + process.argv[4]) : BENCH_BASE;
  try {
    new SlabGenerator(size, base).write(1, objects);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPIPE') throw e;
  }
}
