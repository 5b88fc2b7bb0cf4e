/**
 * Which tokens repeat at each offset ("heavy" tokens). Learned once, on the main thread, from a sample
 * spread over the whole input, so that every worker derives the same template from the same object
 * (single- and multi-threaded runs give the same clusters).
 */
import { TOK_VAR, tokenizeObject, varClassOf, type TokenSpace } from './tokens.js';
import { OPAQUE_SLAB_POINTER_HI } from '../util/opaque-words.js';

/** Heavy tokens per position: vals[start[p] .. start[p+1]). */
export interface HeavyTable {
  nU32: number;
  start: Int32Array;
  vals: Uint32Array;
}

export interface LearnOptions {
  /** A token is heavy at a position when it is at least this share of the sample... */
  minShare: number;
  /** ...and at least this many objects. */
  minCount: number;
  /** At most this many heavy tokens per position (the most frequent), which bounds the template count. */
  maxPerPosition: number;
}

export const DEFAULT_LEARN: LearnOptions = { minShare: 0.0005, minCount: 4, maxPerPosition: 16 };

/**
 * How often each token occurs at one position: open addressing on u32 keys in typed arrays. A
 * Map<number, number> per position cost about 1.3 µs per sampled 64-byte object (16 lookups and
 * boxed counts), most of the learn phase on a small dump.
 */
class TokenCounts {
  keys = new Uint32Array(64);
  counts = new Int32Array(64);
  size = 0;
  /** 32 - log2(capacity): the slot is the top bits of a multiplicative hash (all of the key's bits count). */
  shift = 26;

  add(t: number): void {
    let mask = this.keys.length - 1;
    let i = Math.imul(t, 0x9e3779b1) >>> this.shift;
    while (this.counts[i] !== 0 && this.keys[i] !== t) i = (i + 1) & mask;
    if (this.counts[i] === 0) {
      if ((this.size + 1) * 2 > this.keys.length) {
        this.grow();
        mask = this.keys.length - 1;
        i = Math.imul(t, 0x9e3779b1) >>> this.shift;
        while (this.counts[i] !== 0) i = (i + 1) & mask;
      }
      this.keys[i] = t;
      this.size++;
    }
    this.counts[i]++;
  }

  private grow(): void {
    const { keys, counts } = this;
    this.keys = new Uint32Array(keys.length * 2);
    this.counts = new Int32Array(keys.length * 2);
    this.shift--;
    const mask = this.keys.length - 1;
    for (let j = 0; j < keys.length; j++) {
      if (counts[j] === 0) continue;
      let i = Math.imul(keys[j], 0x9e3779b1) >>> this.shift;
      while (this.counts[i] !== 0) i = (i + 1) & mask;
      this.keys[i] = keys[j];
      this.counts[i] = counts[j];
    }
  }

  /** [token, count] of the tokens seen at least `min` times, in no particular order. */
  atLeast(min: number): [number, number][] {
    const out: [number, number][] = [];
    for (let j = 0; j < this.keys.length; j++) if (this.counts[j] >= min && this.counts[j] > 0) out.push([this.keys[j], this.counts[j]]);
    return out;
  }
}

export class HeavyLearner {
  private readonly counts: TokenCounts[];
  private readonly tokens: Uint32Array;
  sampled = 0;
  constructor(readonly nU32: number, readonly stride: number, readonly space: TokenSpace) {
    this.counts = Array.from({ length: nU32 }, () => new TokenCounts());
    this.tokens = new Uint32Array(nU32);
  }

  add(words: Uint32Array, w0: number, objLo: number, objHi: number): void {
    tokenizeObject(words, w0, this.nU32, objLo, objHi, this.stride, this.space, this.tokens);
    for (let p = 0; p < this.nU32; p++) this.counts[p].add(this.tokens[p]);
    this.sampled++;
  }

  finish(opts: LearnOptions = DEFAULT_LEARN): HeavyTable {
    const min = Math.max(opts.minCount, Math.ceil(this.sampled * opts.minShare));
    const start = new Int32Array(this.nU32 + 1);
    const all: number[] = [];
    for (let p = 0; p < this.nU32; p++) {
      start[p] = all.length;
      const heavy = this.counts[p].atLeast(min)
        .sort((a, b) => b[1] - a[1] || a[0] - b[0])
        .slice(0, opts.maxPerPosition);
      for (const [t] of heavy) all.push(t);
    }
    start[this.nU32] = all.length;
    return { nU32: this.nU32, start, vals: Uint32Array.from(all) };
  }
}

/** Replaces every token that is not heavy at its position by VAR|class, in place. */
export function templateInPlace(tok: Uint32Array, heavy: HeavyTable): void {
  const { start, vals } = heavy;
  for (let p = 0; p < heavy.nU32; p++) {
    const t = tok[p];
    let found = false;
    for (let i = start[p], e = start[p + 1]; i < e; i++) {
      if (vals[i] === t) {
        found = true;
        break;
      }
    }
    if (!found) tok[p] = (TOK_VAR | varClassOf(t)) >>> 0;
  }
}

/**
 * 53-bit key of a template (n is even: 8-byte words): two independent 32-bit multiplicative streams
 * (one imul per word each, the word's other half folded in), each through the murmur3 finalizer. The hot loop (scan-chunk.ts) computes the same key inline.
 */
export function templateKey(tpl: Uint32Array, n: number): number {
  let h1 = 0x9747b28c | 0;
  let h2 = 0x85ebca6b | 0;
  for (let p = 0; p < n; p += 2) {
    const t0 = tpl[p] | 0;
    const t1 = tpl[p + 1] | 0;
    h1 = Math.imul(((h1 << 13) | (h1 >>> 19)) ^ t0, 0x9e3779b1) ^ t1;
    h2 = Math.imul(((h2 << 5) | (h2 >>> 27)) ^ t1, 0x85ebca6b) ^ t0;
  }
  return finishKey(h1, h2, n);
}

/** The murmur3 finalizer on both streams, combined into a 53-bit key (small: V8 inlines it in the hot loop). */
export function finishKey(h1: number, h2: number, n: number): number {
  h1 ^= n;
  h1 ^= h1 >>> 16;
  h1 = Math.imul(h1, 0x85ebca6b);
  h1 ^= h1 >>> 13;
  h1 = Math.imul(h1, 0xc2b2ae35);
  h1 ^= h1 >>> 16;
  h2 ^= h2 >>> 13;
  h2 = Math.imul(h2, 0x27d4eb2f);
  h2 ^= h2 >>> 16;
  return (h1 >>> 0) * 0x200000 + (h2 & 0x1fffff);
}

// int32 forms of the tokenizer's boundaries (tokens.ts), for the int32 hot loops.
const KERNEL_HALF = 0xffff8000 | 0;
const OPAQUE_HI = OPAQUE_SLAB_POINTER_HI | 0;
const POISON_HI = 0xdead0000 | 0;

/**
 * Per position p: hFirst[p], the most frequent heavy token there (0 and hNone[p] = 1 when p has
 * none); same[q] = 1 when 8-byte word q may take the fast path: a raw word
 * equal to its position's most frequent token pair, where that pair tokenizes to itself (a constant
 * field: an ops pointer, flags, zero), has known tokens and is heavy, so the class tests are skipped.
 */
export function fastPathTables(heavy: HeavyTable, space: TokenSpace): { hFirst: Int32Array; hNone: Uint8Array; same: Uint8Array } {
  const nU32 = heavy.nU32;
  const hStart = heavy.start;
  const hVals = new Int32Array(heavy.vals.buffer, heavy.vals.byteOffset, heavy.vals.length);
  const hFirst = new Int32Array(nU32);
  const hNone = new Uint8Array(nU32);
  for (let p = 0; p < nU32; p++) {
    if (hStart[p + 1] > hStart[p]) hFirst[p] = hVals[hStart[p]];
    else hNone[p] = 1;
  }
  const heapLo = space.heapLo | 0, heapHi = space.heapHi | 0, vmemLo = space.vmemmapLo | 0, vmemHi = space.vmemmapHi | 0;
  const vmLo = space.vmallocLo | 0, vmHi = space.vmallocHi | 0;
  const heapOn = space.heapLo <= space.heapHi, vmemOn = space.vmemmapLo <= space.vmemmapHi, vmOn = space.vmallocLo <= space.vmallocHi;
  const same = new Uint8Array(nU32 >>> 1);
  for (let p = 0; p < nU32; p += 2) {
    if (hNone[p] || hNone[p + 1]) continue;
    const a = hFirst[p];
    const b = hFirst[p + 1];
    const plain = b < KERNEL_HALF || b >= 0
      ? b !== OPAQUE_HI && !(b === POISON_HI && (a === 0x100 || a === 0x100100 || a === 0x122 || a === 0x200200))
      : !(heapOn && b >= heapLo && b <= heapHi) && !(vmemOn && b >= vmemLo && b <= vmemHi) && !(vmOn && b >= vmLo && b <= vmHi) && b === -1 && a < 0;
    if (plain) same[p >>> 1] = 1;
  }
  return { hFirst, hNone, same };
}
