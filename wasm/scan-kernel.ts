/**
 * The scan's hot loop in WebAssembly SIMD (AssemblyScript; built by wasm/build.mjs into
 * src/scan/scan-kernel-wasm.ts). Same contract as scanChunkJs in src/scan/scan-chunk.ts, bit for bit:
 * the same tokens, template keys, template order, counts, representatives and checksum.
 *
 * Layout: four consecutive objects are scanned at once, one per i32x4 lane. For each 8-byte word
 * position, the four objects' words are gathered into A (low halves) and B (high halves); the class
 * tests, the heavy-value checks, the two key hashes and the two checksum lanes then run on all four
 * objects with vector compares and selects instead of data-dependent branches. A position whose four
 * words all equal its most frequent constant pair (ops pointers, flags, zeros) only hashes.
 *
 * Memory is laid out by the JS side (scan-chunk.ts): the per-position table, heavy values, the
 * template hash table and per-template arrays, then one block of slabs copied in per call.
 * Every entry point takes byte addresses into this module's own memory.
 */

// Token constants (src/scan/tokens.ts).
const CLASS_HI: i32 = 0xc1a55eed;
const TOK_LIST_NEXT: i32 = 0x115700a1;
const TOK_LIST_PREV: i32 = 0x115700a2;
const TOK_SELF: i32 = 0x5e1f0000;
const TOK_HEAP: i32 = 0x4ea90000;
const TOK_VMALLOC: i32 = 0x7a110000;
const TOK_VMEMMAP: i32 = 0x9a9e0000;
const TOK_KPTR: i32 = 0x8b770000;
const TOK_VAR: i32 = 0x7a7a7a00;
const POISON_HI: i32 = 0xdead0000;
const OPAQUE_HI: i32 = 0x0bad5aab;
const KERNEL_HALF: i32 = 0xffff8000;
// Checksum multipliers (scan-chunk.ts) and key hash constants (heavy.ts).
const P1: i32 = 0x01000193;
const P2: i32 = 0x2c1b3c6d;

/** Words whose tokens one pass writes before the next hashes them (32 bytes each: t0 and t1 of four objects). */
const SEG_WORDS = 128;
// Below 64 KiB, where scan-wasm.ts lays out nothing (build.mjs checks the statics end below its scratch).
const tokPtr: usize = memory.data(SEG_WORDS * 32, 16);
// The hot template (objects of up to SEG_WORDS words): its tokens per word, splatted (t0, t1: 32 bytes),
// and per word whether the position's constant pair has these tokens (i32 1/0).
const hotPtr: usize = memory.data(SEG_WORDS * 32, 16);
const hotSamePtr: usize = memory.data(SEG_WORDS * 4, 16);
// Objects of an even number of words, at most BULK_WORDS, are tested against the hot template in whole
// 16-byte loads (bulk): per pair of words, its two constant words (an i64 each), which of the two have
// the hot tokens (i64 lanes -1/0), and checksum weights for the four objects (weightPtr, configure()).
const BULK_WORDS = 64;
const constPairPtr: usize = memory.data(BULK_WORDS / 2 * 16, 16);
const hotPairPtr: usize = memory.data(BULK_WORDS / 2 * 16, 16);
// Per pair of words, for HOT_SELF words: the self pointer's offset added to an object's address as
// i32 lanes [d, 0, d', 0] (a low half plus d without carry, the high half as is: the tokenizer's test),
// which of the two words are HOT_SELF (i64 lanes -1/0), and whether any is (i32).
const selfPairPtr: usize = memory.data(BULK_WORDS / 2 * 16, 16);
const selfMaskPtr: usize = memory.data(BULK_WORDS / 2 * 16, 16);
// Per pair: PAIR_SELF | PAIR_GAP when one of its words is HOT_SELF or HOT_GAP (i32), and for
// HOT_GAP words the gap as i32 lanes [first, hot high half] and [last, hot high half] (other
// words: [0, 0] and [-1, -1]) and which of the two are HOT_GAP (i64 lanes -1/0).
const pairKindPtr: usize = memory.data(BULK_WORDS / 2 * 4, 16);
const PAIR_SELF = 1;
const PAIR_GAP = 2;
const gapLoPtr: usize = memory.data(BULK_WORDS / 2 * 16, 16);
const gapHiPtr: usize = memory.data(BULK_WORDS / 2 * 16, 16);
const gapMaskPtr: usize = memory.data(BULK_WORDS / 2 * 16, 16);
const weightPtr: usize = memory.data(4 * 16, 16);
// Per word of the hot template, i32 flags: HOT_RAW, its t1 is a plain high half (then four objects
// holding that high half have it, and t0 is their low half's template value: no class tests);
// HOT_SELF, the position's constant and its self pointer both have the hot tokens (an empty list_head
// and a deleted one's poison both give LIST_NEXT, CLASS_HI).
const hotKindPtr: usize = memory.data(SEG_WORDS * 4, 16);
const HOT_RAW = 1;
const HOT_SELF = 2;
// HOT_RAW with t0 VAR (class 0): a counter beside a fixed high half. Its gap: the run of values
// around the hot object's own low half that holds no heavy value at the position and stays below
// the lowest class prefix (splatted [first, last] per word), so a low half in it is VAR there.
const HOT_GAP = 4;
const hotGapPtr: usize = memory.data(SEG_WORDS * 32, 16);

// Splatted constants (configure()), loaded in one instruction where V8 would build each from an
// immediate in three (mov, movq, punpcklqdq) at every use in the class tests.
const KTAB: usize = memory.data(34 * 16, 16);
const K_CLASS_HI = 0;
const K_POISON_HI = 1;
const K_N100 = 2;
const K_N100100 = 3;
const K_N122 = 4;
const K_N200200 = 5;
const K_OPAQUE_HI = 6;
const K_TOK_HEAP = 7;
const K_TOK_LIST_PREV = 8;
const K_TOK_LIST_NEXT = 9;
const K_KERNEL_HALF = 10;
const K_ONES = 11;
const K_TOK_SELF = 12;
const K_EIGHT = 13;
const K_TOK_KPTR = 14;
const K_TOK_VMALLOC = 15;
const K_TOK_VMEMMAP = 16;
const K_PREFIX = 17;
const K_TOK_VAR = 18;
const K_C1 = 19;
const K_C2 = 20;
const K_C3 = 21;
const K_C4 = 22;
const K_C5 = 23;
const K_LIST_PREFIX = 24;
const K_C7 = 25;
const K_C6 = 26;
const K_HEAPLO = 27;
const K_HEAPHI = 28;
const K_VMEMLO = 29;
const K_VMEMHI = 30;
const K_VMLO = 31;
const K_VMHI = 32;
const K_STRIDE = 33;
// @ts-ignore: decorator
@inline function K(i: i32): v128 { return v128.load(KTAB + (<usize>i << 4)); }
// @ts-ignore: decorator
@inline function kset(i: i32, v: i32): void { v128.store(KTAB + (<usize>i << 4), i32x4.splat(v)); }

// Per-chunk configuration (configure()).
let nU32: i32 = 0;
let stride: i32 = 0;
let objsPerSlab: i32 = 0;
let posPtr: usize = 0; // per u32 position p: [first, none, start, end] as i32 (16 bytes)
let fastPtr: usize = 0; // per 8-byte word q, 64 bytes: its constant raw pair twice (v128), its two template tokens (splat v128s), then i32s: self alternative on, its offset, its two template tokens
let scratchPtr: usize = 0; // 16 bytes
let valsPtr: usize = 0; // heavy values, i32
let heapOn: bool = false;
let heapLo: i32 = 0;
let heapHi: i32 = 0;
let vmemOn: bool = false;
let vmemLo: i32 = 0;
let vmemHi: i32 = 0;
let vmOn: bool = false;
let vmLo: i32 = 0;
let vmHi: i32 = 0;
let pm1: i32 = 1; // P1 ^ (nU32 / 2)
let pm2: i32 = 1;
let pm1x4: i32 = 1; // pm1^4: four whole objects
let pm2x4: i32 = 1;
// Templates (reset per chunk).
let tabPtr: usize = 0; // open-addressed table: template index + 1, 0 = empty
let tabMask: i32 = 0;
let keyHPtr: usize = 0;
let keyLPtr: usize = 0;
let countPtr: usize = 0;
let firstPtr: usize = 0;
let maxTemplates: i32 = 0;
// Results (read by JS through the getters).
let nTemplates: i32 = 0;
let objects: i32 = 0;
let skipped: i32 = 0;
let overflow: i32 = 0;
let c1: i32 = 0;
let c2: i32 = 0;
let lastH: i32 = 0;
let lastL: i32 = -1; // key low parts are 21 bits: -1 never matches
let lastIdx: i32 = 0;
// The hot template: the last one four objects in a row had (reset per chunk, like the table).
let hotOn: bool = false;
let hotH: i32 = 0;
let hotL: i32 = 0;
let hotIdx: i32 = 0;
let bulk: bool = false;

export function configure(
  nU32_: i32, stride_: i32, objsPerSlab_: i32, posPtr_: usize, fastPtr_: usize, valsPtr_: usize, scratchPtr_: usize,
  heapOn_: bool, heapLo_: i32, heapHi_: i32, vmemOn_: bool, vmemLo_: i32, vmemHi_: i32, vmOn_: bool, vmLo_: i32, vmHi_: i32,
  tabPtr_: usize, tabMask_: i32, keyHPtr_: usize, keyLPtr_: usize, countPtr_: usize, firstPtr_: usize, maxTemplates_: i32,
): void {
  nU32 = nU32_;
  stride = stride_;
  objsPerSlab = objsPerSlab_;
  posPtr = posPtr_;
  fastPtr = fastPtr_;
  scratchPtr = scratchPtr_;
  valsPtr = valsPtr_;
  heapOn = heapOn_;
  heapLo = heapLo_;
  heapHi = heapHi_;
  vmemOn = vmemOn_;
  vmemLo = vmemLo_;
  vmemHi = vmemHi_;
  vmOn = vmOn_;
  vmLo = vmLo_;
  vmHi = vmHi_;
  tabPtr = tabPtr_;
  tabMask = tabMask_;
  keyHPtr = keyHPtr_;
  keyLPtr = keyLPtr_;
  countPtr = countPtr_;
  firstPtr = firstPtr_;
  maxTemplates = maxTemplates_;
  // Splatted constants for K() (the last ones change per chunk).
  kset(K_CLASS_HI, CLASS_HI);
  kset(K_POISON_HI, POISON_HI);
  kset(K_N100, 0x100);
  kset(K_N100100, 0x100100);
  kset(K_N122, 0x122);
  kset(K_N200200, 0x200200);
  kset(K_OPAQUE_HI, OPAQUE_HI);
  kset(K_TOK_HEAP, TOK_HEAP);
  kset(K_TOK_LIST_PREV, TOK_LIST_PREV);
  kset(K_TOK_LIST_NEXT, TOK_LIST_NEXT);
  kset(K_KERNEL_HALF, KERNEL_HALF);
  kset(K_ONES, -1);
  kset(K_TOK_SELF, TOK_SELF);
  kset(K_EIGHT, 8);
  kset(K_TOK_KPTR, TOK_KPTR);
  kset(K_TOK_VMALLOC, TOK_VMALLOC);
  kset(K_TOK_VMEMMAP, TOK_VMEMMAP);
  kset(K_PREFIX, 0xffff0000);
  kset(K_TOK_VAR, TOK_VAR);
  kset(K_C1, 1);
  kset(K_C2, 2);
  kset(K_C3, 3);
  kset(K_C4, 4);
  kset(K_C5, 5);
  kset(K_LIST_PREFIX, 0x11570000);
  kset(K_C7, 7);
  kset(K_C6, 6);
  kset(K_HEAPLO, heapLo);
  kset(K_HEAPHI, heapHi);
  kset(K_VMEMLO, vmemLo);
  kset(K_VMEMHI, vmemHi);
  kset(K_VMLO, vmLo);
  kset(K_VMHI, vmHi);
  kset(K_STRIDE, stride);
  pm1 = 1;
  pm2 = 1;
  for (let q = 0; q < nU32 >> 1; q++) {
    pm1 *= P1;
    pm2 *= P2;
  }
  pm1x4 = pm1 * pm1 * pm1 * pm1;
  pm2x4 = pm2 * pm2 * pm2 * pm2;
  // Checksum weights of four objects' Horner sums (hotBulk): object k's lanes [even words' c1 part,
  // c2 part, odd words' c1 part, c2 part] times [P1 * pm1^(3-k), P2 * pm2^(3-k), pm1^(3-k), pm2^(3-k)].
  const words = nU32 >> 1;
  bulk = words > 0 && (words & 1) == 0 && words <= BULK_WORDS;
  let e1 = 1;
  let e2 = 1;
  for (let k = 3; k >= 0; k--) {
    const at = weightPtr + (<usize>k << 4);
    store<i32>(at, P1 * e1);
    store<i32>(at, P2 * e2, 4);
    store<i32>(at, e1, 8);
    store<i32>(at, e2, 12);
    e1 *= pm1;
    e2 *= pm2;
  }
}

/** Starts a chunk: empty template table (only the slots used are cleared), fresh checksum. */
export function begin(): void {
  for (let i = 0; i < nTemplates; i++) {
    // The slot of template i is found again by probing from its key.
    let slot = load<i32>(keyHPtr + (<usize>i << 2)) & tabMask;
    while (load<i32>(tabPtr + (<usize>slot << 2)) != 0) {
      store<i32>(tabPtr + (<usize>slot << 2), 0);
      slot = (slot + 1) & tabMask;
    }
  }
  nTemplates = 0;
  objects = 0;
  skipped = 0;
  overflow = 0;
  c1 = 0x811c9dc5;
  c2 = 0x6a09e667;
  lastL = -1;
  hotOn = false;
}

export function getTemplates(): i32 { return nTemplates; }
export function getObjects(): i32 { return objects; }
export function getSkipped(): i32 { return skipped; }
export function getOverflow(): i32 { return overflow; }
export function getC1(): i32 { return c1; }
export function getC2(): i32 { return c2; }

/**
 * varClassOf() for four tokens at once: VAR | class. At most one class prefix matches, so each test
 * ORs its class in (compare, and, or) instead of a select.
 */
// @ts-ignore: decorator
@inline function varTok(t: v128): v128 {
  // Below the lowest class prefix (0x1157....; CLASS_HI is above it too): counters, flags, small
  // values, the common case of a word that is not heavy. Class 0 for all four.
  if (i32x4.all_true(i32x4.lt_u(t, K(K_LIST_PREFIX)))) return K(K_TOK_VAR);
  const c = v128.and(t, K(K_PREFIX));
  let r = K(K_TOK_VAR);
  r = v128.or(r, v128.and(i32x4.eq(c, K(K_TOK_HEAP)), K(K_C1)));
  r = v128.or(r, v128.and(i32x4.eq(c, K(K_TOK_SELF)), K(K_C2)));
  r = v128.or(r, v128.and(i32x4.eq(c, K(K_TOK_VMALLOC)), K(K_C3)));
  r = v128.or(r, v128.and(i32x4.eq(c, K(K_TOK_VMEMMAP)), K(K_C4)));
  r = v128.or(r, v128.and(i32x4.eq(c, K(K_TOK_KPTR)), K(K_C5)));
  r = v128.or(r, v128.and(i32x4.eq(c, K(K_LIST_PREFIX)), K(K_C7)));
  return v128.or(r, v128.and(i32x4.eq(t, K(K_CLASS_HI)), K(K_C6)));
}

/**
 * The template value of four tokens at position p: the token where it is heavy there, VAR | class
 * elsewhere. The heavy values are compared without a branch per value (a unique field, a counter, is
 * heavy in no lane: every value is compared anyway).
 */
// @ts-ignore: decorator
@inline function heavyTok(t: v128, p: i32): v128 {
  const e = posPtr + (<usize>p << 4);
  let found = i32x4.eq(t, v128.load32_splat(e));
  if (load<i32>(e, 4) != 0) found = i32x4.splat(0);
  if (i32x4.all_true(found)) return t;
  const end = load<i32>(e, 12);
  for (let i = load<i32>(e, 8) + 1; i < end; i++) {
    found = v128.or(found, i32x4.eq(t, v128.load32_splat(valsPtr + (<usize>i << 2))));
  }
  return v128.bitselect(t, varTok(t), found);
}

// @ts-ignore: decorator
@inline function rotl(x: v128, n: i32): v128 {
  return v128.or(i32x4.shl(x, n), i32x4.shr_u(x, 32 - n));
}

/** Counts one object of key (kh, kl) found at object index o of the chunk. */
// @ts-ignore: decorator
@inline function count(kh: i32, kl: i32, o: i32): void {
  if (kh == lastH && kl == lastL) {
    const c = countPtr + (<usize>lastIdx << 2);
    store<i32>(c, load<i32>(c) + 1);
    return;
  }
  let slot = kh & tabMask;
  for (;;) {
    const at = tabPtr + (<usize>slot << 2);
    const e = load<i32>(at);
    if (e == 0) {
      if (nTemplates >= maxTemplates) {
        overflow++;
        return;
      }
      const n = nTemplates++;
      store<i32>(at, n + 1);
      store<i32>(keyHPtr + (<usize>n << 2), kh);
      store<i32>(keyLPtr + (<usize>n << 2), kl);
      store<i32>(countPtr + (<usize>n << 2), 1);
      store<i32>(firstPtr + (<usize>n << 2), o);
      lastH = kh;
      lastL = kl;
      lastIdx = n;
      return;
    }
    const i = e - 1;
    if (load<i32>(keyHPtr + (<usize>i << 2)) == kh && load<i32>(keyLPtr + (<usize>i << 2)) == kl) {
      const c = countPtr + (<usize>i << 2);
      store<i32>(c, load<i32>(c) + 1);
      lastH = kh;
      lastL = kl;
      lastIdx = i;
      return;
    }
    slot = (slot + 1) & tabMask;
  }
}

/** The classification of four words (A low halves, B high halves) of objects at (lo, hi), then templated. */
// @ts-ignore: decorator
@inline function tokens(a: v128, b: v128, lo: v128, hi: v128, p: i32, out1: usize): v128 {
  const classHi = K(K_CLASS_HI);
  // Outside the kernel half: list poison, crash's opaque [cache] words, or the raw value.
  const poison = i32x4.eq(b, K(K_POISON_HI));
  const next = v128.and(poison, v128.or(i32x4.eq(a, K(K_N100)), i32x4.eq(a, K(K_N100100))));
  const prev = v128.and(poison, v128.or(i32x4.eq(a, K(K_N122)), i32x4.eq(a, K(K_N200200))));
  const opaque = i32x4.eq(b, K(K_OPAQUE_HI));
  let t0 = v128.bitselect(K(K_TOK_HEAP), a, opaque);
  t0 = v128.bitselect(K(K_TOK_LIST_PREV), t0, prev);
  t0 = v128.bitselect(K(K_TOK_LIST_NEXT), t0, next);
  let t1 = v128.bitselect(classHi, b, v128.or(v128.or(next, prev), opaque));
  const kern = i32x4.ge_u(b, K(K_KERNEL_HALF));
  if (v128.any_true(kern)) {
    // Kernel half, in the order of the JS tests: heap (self / list / other), vmemmap, vmalloc,
    // kernel image (exact value when the word is 0xffffffff8.......), other kernel address.
    const zero = i32x4.splat(0);
    const heap = heapOn ? v128.and(i32x4.ge_s(b, K(K_HEAPLO)), i32x4.le_s(b, K(K_HEAPHI))) : zero;
    const vmem = vmemOn ? v128.and(i32x4.ge_s(b, K(K_VMEMLO)), i32x4.le_s(b, K(K_VMEMHI))) : zero;
    const vm = vmOn ? v128.and(i32x4.ge_s(b, K(K_VMLO)), i32x4.le_s(b, K(K_VMHI))) : zero;
    const exact = v128.and(i32x4.eq(b, K(K_ONES)), i32x4.lt_s(a, zero));
    const d = i32x4.sub(a, lo);
    const self = v128.and(i32x4.eq(b, hi), i32x4.lt_u(d, K(K_STRIDE)));
    const here = i32x4.splat(p << 2);
    let hs = v128.or(K(K_TOK_SELF), d);
    hs = v128.bitselect(K(K_TOK_LIST_PREV), hs, i32x4.eq(i32x4.add(d, K(K_EIGHT)), here));
    hs = v128.bitselect(K(K_TOK_LIST_NEXT), hs, i32x4.eq(d, here));
    let k0 = v128.bitselect(a, K(K_TOK_KPTR), exact);
    k0 = v128.bitselect(K(K_TOK_VMALLOC), k0, vm);
    k0 = v128.bitselect(K(K_TOK_VMEMMAP), k0, vmem);
    k0 = v128.bitselect(v128.bitselect(hs, K(K_TOK_HEAP), self), k0, heap);
    const k1 = v128.bitselect(b, classHi, v128.andnot(exact, v128.or(v128.or(heap, vmem), vm)));
    t0 = v128.bitselect(k0, t0, kern);
    t1 = v128.bitselect(k1, t1, kern);
  }
  v128.store(out1, heavyTok(t1, p + 1));
  return heavyTok(t0, p);
}

/**
 * The template tokens of word w of four objects (x: words of objects 0 and 1, y: of 2 and 3; cx, cy:
 * which equal the position's constant pair): t0 returned, t1 stored at out1.
 */
// @ts-ignore: decorator
@inline function wordTokens(x: v128, y: v128, cx: v128, cy: v128, lo: v128, hi: v128, w: i32, out1: usize): v128 {
  const f = fastPtr + (<usize>w << 6);
  const a = v128.shuffle<i32>(x, y, 0, 2, 4, 6);
  const b = v128.shuffle<i32>(x, y, 1, 3, 5, 7);
  if (load<i32>(f, 48) != 0) {
    // Each object holds the constant word or a pointer into itself at the position's usual
    // offset (empty list_heads beside deleted ones): the tokens of both are known.
    const isC = v128.shuffle<i32>(cx, cy, 0, 2, 4, 6);
    const self = v128.and(i32x4.eq(b, hi), i32x4.eq(i32x4.sub(a, lo), i32x4.splat(load<i32>(f, 52))));
    if (i32x4.all_true(v128.or(isC, self))) {
      v128.store(out1, v128.bitselect(v128.load(f, 32), i32x4.splat(load<i32>(f, 60)), isC));
      return v128.bitselect(v128.load(f, 16), i32x4.splat(load<i32>(f, 56)), isC);
    }
  }
  return tokens(a, b, lo, hi, w << 1, out1);
}

/**
 * Whether word w of four objects (x, y as loaded; cx, cy: which equal the constant pair) has the hot
 * template's tokens in all four.
 */
// @ts-ignore: decorator
@inline function hotWord(x: v128, y: v128, cx: v128, cy: v128, lo: v128, hi: v128, w: i32): bool {
  const hp = hotPtr + (<usize>w << 5);
  const h0 = v128.load(hp);
  const h1 = v128.load(hp, 16);
  const kind = load<i32>(hotKindPtr + (<usize>w << 2));
  if (kind & HOT_SELF) {
    // Each object holding the constant or a pointer into itself at the usual offset has the hot tokens.
    const f = fastPtr + (<usize>w << 6);
    const isC = v128.shuffle<i32>(cx, cy, 0, 2, 4, 6);
    const a = v128.shuffle<i32>(x, y, 0, 2, 4, 6);
    const b = v128.shuffle<i32>(x, y, 1, 3, 5, 7);
    const self = v128.and(i32x4.eq(b, hi), i32x4.eq(i32x4.sub(a, lo), v128.load32_splat(f, 52)));
    if (i32x4.all_true(v128.or(isC, self))) return true;
  } else if (kind & HOT_RAW) {
    // The hot t1 is a plain high half (0xc0de of a counter beside it): four objects holding it are
    // outside the kernel half, and their t0 is their low half, templated.
    const b = v128.shuffle<i32>(x, y, 1, 3, 5, 7);
    if (i32x4.all_true(i32x4.eq(b, h1))) {
      const a = v128.shuffle<i32>(x, y, 0, 2, 4, 6);
      if (kind & HOT_GAP) {
        // Low halves in the hot object's gap between heavy values, below every class prefix: VAR.
        const g = hotGapPtr + (<usize>w << 5);
        if (i32x4.all_true(v128.and(i32x4.ge_u(a, v128.load(g)), i32x4.le_u(a, v128.load(g, 16))))) return true;
      }
      return i32x4.all_true(i32x4.eq(heavyTok(a, w << 1), h0));
    }
  }
  const t0 = wordTokens(x, y, cx, cy, lo, hi, w, tokPtr + 16);
  return i32x4.all_true(v128.and(i32x4.eq(t0, h0), i32x4.eq(v128.load(tokPtr + 16), h1)));
}

/**
 * Whether all four objects' template tokens are the hot template's (then their keys are its key: the
 * key is a function of the tokens). Stops at the first word where one object differs.
 */
// @ts-ignore: decorator
@inline function isHot(q0: usize, q1: usize, q2: usize, q3: usize, lo: v128, hi: v128, words: i32): bool {
  for (let w = 0; w < words; w++) {
    const off = <usize>w << 3;
    const x = v128.load_lane<i64>(q1 + off, v128.load64_zero(q0 + off), 1);
    const y = v128.load_lane<i64>(q3 + off, v128.load64_zero(q2 + off), 1);
    const c = v128.load(fastPtr + (<usize>w << 6));
    const cx = i64x2.eq(x, c);
    const cy = i64x2.eq(y, c);
    if (i32x4.all_true(v128.and(cx, cy))) {
      // The constant word: its tokens are the hot template's or not, for all four alike.
      if (load<i32>(hotSamePtr + (<usize>w << 2)) == 0) return false;
      continue;
    }
    if (!hotWord(x, y, cx, cy, lo, hi, w)) return false;
  }
  return true;
}

/**
 * isHot for four consecutive objects of an even number of words (bulk): each object read in 16-byte
 * loads, which also feed the checksum (weights instead of a multiply chain per word). Words that are
 * not the hot template's constant (or, for HOT_SELF words, its self pointer) in all four are then
 * tested one by one. Sets bulkHot; returns the checksum sums of the four objects (lanes: c1 part of
 * even words, c2 part, c1 part of odd words, c2 part), hot or not.
 */
let bulkHot: bool = false;
// @ts-ignore: decorator
@inline function hotBulk(q0: usize, lo: v128, hi: v128, words: i32): v128 {
  const half = words >> 1;
  const st = <usize>stride;
  // Horner per object over pairs of words (P^2 per step), weighted per object at the end.
  const pp = i32x4(P1 * P1, P2 * P2, P1 * P1, P2 * P2);
  let acc0 = i32x4.splat(0);
  let acc1 = i32x4.splat(0);
  let acc2 = i32x4.splat(0);
  let acc3 = i32x4.splat(0);
  let need: u64 = 0;
  // The objects' addresses as i64 lanes (twice), for the self pointer test.
  const a0 = v128.shuffle<i32>(lo, hi, 0, 4, 0, 4);
  const a1 = v128.shuffle<i32>(lo, hi, 1, 5, 1, 5);
  const a2 = v128.shuffle<i32>(lo, hi, 2, 6, 2, 6);
  const a3 = v128.shuffle<i32>(lo, hi, 3, 7, 3, 7);
  for (let i = 0; i < half; i++) {
    const o = <usize>i << 4;
    const c = v128.load(constPairPtr + o);
    const v0 = v128.load(q0 + o);
    const v1 = v128.load(q0 + st + o);
    const v2 = v128.load(q0 + 2 * st + o);
    const v3 = v128.load(q0 + 3 * st + o);
    let m = v128.and(v128.and(i64x2.eq(v0, c), i64x2.eq(v1, c)), v128.and(i64x2.eq(v2, c), i64x2.eq(v3, c)));
    const kind = load<i32>(pairKindPtr + (<usize>i << 2));
    if (kind != 0) {
      // A word of an object is also fine when it points into the object itself at the usual offset
      // (PAIR_SELF), or when it is a counter in the hot gap beside the hot high half (PAIR_GAP).
      const same = v128.load(hotPairPtr + o);
      let m0 = v128.and(i64x2.eq(v0, c), same);
      let m1 = v128.and(i64x2.eq(v1, c), same);
      let m2 = v128.and(i64x2.eq(v2, c), same);
      let m3 = v128.and(i64x2.eq(v3, c), same);
      if (kind & PAIR_SELF) {
        const d = v128.load(selfPairPtr + o);
        const sm = v128.load(selfMaskPtr + o);
        m0 = v128.or(m0, v128.and(i64x2.eq(v0, i32x4.add(a0, d)), sm));
        m1 = v128.or(m1, v128.and(i64x2.eq(v1, i32x4.add(a1, d)), sm));
        m2 = v128.or(m2, v128.and(i64x2.eq(v2, i32x4.add(a2, d)), sm));
        m3 = v128.or(m3, v128.and(i64x2.eq(v3, i32x4.add(a3, d)), sm));
      }
      if (kind & PAIR_GAP) {
        // Both halves in range: the low half in the gap, the high half equal to the hot one.
        const gl = v128.load(gapLoPtr + o);
        const gh = v128.load(gapHiPtr + o);
        const gm = v128.load(gapMaskPtr + o);
        const ones = i64x2.splat(-1);
        m0 = v128.or(m0, v128.and(i64x2.eq(v128.and(i32x4.ge_u(v0, gl), i32x4.le_u(v0, gh)), ones), gm));
        m1 = v128.or(m1, v128.and(i64x2.eq(v128.and(i32x4.ge_u(v1, gl), i32x4.le_u(v1, gh)), ones), gm));
        m2 = v128.or(m2, v128.and(i64x2.eq(v128.and(i32x4.ge_u(v2, gl), i32x4.le_u(v2, gh)), ones), gm));
        m3 = v128.or(m3, v128.and(i64x2.eq(v128.and(i32x4.ge_u(v3, gl), i32x4.le_u(v3, gh)), ones), gm));
      }
      m = v128.and(v128.and(m0, m1), v128.and(m2, m3));
    } else {
      m = v128.and(m, v128.load(hotPairPtr + o));
    }
    need |= <u64>i64x2.bitmask(v128.not(m)) << (<u64>i << 1);
    acc0 = i32x4.add(i32x4.mul(acc0, pp), v0);
    acc1 = i32x4.add(i32x4.mul(acc1, pp), v1);
    acc2 = i32x4.add(i32x4.mul(acc2, pp), v2);
    acc3 = i32x4.add(i32x4.mul(acc3, pp), v3);
  }
  bulkHot = hotOn;
  while (hotOn && need != 0) {
    const w = <i32>ctz(need);
    need &= need - 1;
    const off = <usize>w << 3;
    const x = v128.load_lane<i64>(q0 + st + off, v128.load64_zero(q0 + off), 1);
    const y = v128.load_lane<i64>(q0 + 3 * st + off, v128.load64_zero(q0 + 2 * st + off), 1);
    const c = v128.load(fastPtr + (<usize>w << 6));
    if (!hotWord(x, y, i64x2.eq(x, c), i64x2.eq(y, c), lo, hi, w)) {
      bulkHot = false;
      break;
    }
  }
  const wp = weightPtr;
  return i32x4.add(
    i32x4.add(i32x4.mul(acc0, v128.load(wp)), i32x4.mul(acc1, v128.load(wp, 16))),
    i32x4.add(i32x4.mul(acc2, v128.load(wp, 32)), i32x4.mul(acc3, v128.load(wp, 48))),
  );
}

/** Counts four objects of the hot template, whose checksum sums (hotBulk's lanes) are `sums`. */
// @ts-ignore: decorator
@inline function countHot(sums: v128): void {
  c1 = c1 * pm1x4 + i32x4.extract_lane(sums, 0) + i32x4.extract_lane(sums, 2);
  c2 = c2 * pm2x4 + i32x4.extract_lane(sums, 1) + i32x4.extract_lane(sums, 3);
  objects += 4;
  const at = countPtr + (<usize>hotIdx << 2);
  store<i32>(at, load<i32>(at) + 4);
  lastH = hotH;
  lastL = hotL;
  lastIdx = hotIdx;
}

/**
 * Scans nSlabs whole slabs at dataPtr (objects packed: object k at dataPtr + k * stride), whose first
 * object addresses are u32 pairs at slabPtr, with per-object states at statePtr (1 = count, 0 = skip;
 * statePtr 0: count all). firstObj is the chunk index of the block's first object (representatives).
 */
export function scanBlock(dataPtr: usize, nSlabs: i32, slabPtr: usize, statePtr: usize, firstObj: i32): void {
  const nObj = nSlabs * objsPerSlab;
  const words = nU32 >> 1;
  const mulX = i32x4(P1, P2, P1, P2);
  const k1 = i32x4.splat(0x9e3779b1);
  const k2 = i32x4.splat(0x85ebca6b);
  const lanesStride = i32x4.mul(i32x4(0, 1, 2, 3), i32x4.splat(stride));
  // Checksum weights of four whole objects: c = c * pm^4 + s[0] * pm^3 + s[1] * pm^2 + s[2] * pm + s[3].
  const wX = i32x4(pm1 * pm1 * pm1, pm2 * pm2 * pm2, pm1 * pm1, pm2 * pm2);
  const wY = i32x4(pm1, pm2, 1, 1);
  // The next lane's object: slab s, index j in it.
  let s = 0;
  let j = 0;
  for (let g = 0; g < nObj; g += 4) {
    const lanes = min(4, nObj - g);
    let lo: v128;
    let hi: v128;
    if (lanes == 4 && j + 3 < objsPerSlab) {
      // Four objects of one slab: consecutive addresses (a carry into the high half from the slab's base).
      const baseLo = load<i32>(slabPtr + (<usize>s << 3));
      lo = i32x4.add(i32x4.splat(baseLo + j * stride), lanesStride);
      hi = i32x4.sub(i32x4.splat(load<i32>(slabPtr + (<usize>s << 3), 4)), i32x4.lt_u(lo, i32x4.splat(baseLo)));
      j += 4;
      if (j == objsPerSlab) {
        j = 0;
        s++;
      }
    } else {
      // Across slabs, or the last group (its unused lanes repeat its last object).
      lo = i32x4.splat(objLo(slabPtr, s, j));
      hi = i32x4.splat(objHi(slabPtr, s, j));
      if (lanes > 1) {
        if (++j == objsPerSlab) { j = 0; s++; }
        lo = i32x4.replace_lane(lo, 1, objLo(slabPtr, s, j));
        hi = i32x4.replace_lane(hi, 1, objHi(slabPtr, s, j));
      }
      if (lanes > 2) {
        if (++j == objsPerSlab) { j = 0; s++; }
      }
      lo = i32x4.replace_lane(lo, 2, objLo(slabPtr, s, j));
      hi = i32x4.replace_lane(hi, 2, objHi(slabPtr, s, j));
      if (lanes > 3) {
        if (++j == objsPerSlab) { j = 0; s++; }
      }
      lo = i32x4.replace_lane(lo, 3, objLo(slabPtr, s, j));
      hi = i32x4.replace_lane(hi, 3, objHi(slabPtr, s, j));
      if (++j == objsPerSlab) { j = 0; s++; }
    }
    const q0 = dataPtr + <usize>g * <usize>stride;
    const st = <usize>(lanes > 1 ? stride : 0);
    const q1 = q0 + st;
    const q2 = q0 + (lanes > 2 ? st * 2 : st * (lanes - 1));
    const q3 = q0 + st * <usize>(lanes - 1);
    const counted4 = lanes == 4 && (statePtr == 0 || load<i32>(statePtr + <usize>g, 0, 1) == 0x01010101);
    // Checksum lanes in the words' own layout: sx = [s1, s2] of objects 0 and 1, sy of objects 2 and 3.
    let sx = i32x4.splat(0);
    let sy = i32x4.splat(0);
    // Four counted objects of an even word count: the checksum from whole 16-byte loads (bulk), and
    // the hot test on the way. Other groups: the checksum lanes in the words' own layout, then the
    // hot test word by word.
    let sums = i32x4.splat(0);
    if (counted4 && bulk) {
      sums = hotBulk(q0, lo, hi, words);
      if (bulkHot) {
        countHot(sums);
        continue;
      }
    } else {
      for (let w = 0; w < words; w++) {
        const off = <usize>w << 3;
        sx = i32x4.add(i32x4.mul(sx, mulX), v128.load_lane<i64>(q1 + off, v128.load64_zero(q0 + off), 1));
        sy = i32x4.add(i32x4.mul(sy, mulX), v128.load_lane<i64>(q3 + off, v128.load64_zero(q2 + off), 1));
      }
      if (counted4) {
        // Four whole objects: c = c * pm^4 + s[0] * pm^3 + s[1] * pm^2 + s[2] * pm + s[3].
        const v = i32x4.add(i32x4.mul(sx, wX), i32x4.mul(sy, wY));
        sums = v128.and(i32x4.add(v, v128.shuffle<i32>(v, v, 2, 3, 0, 1)), i32x4(-1, -1, 0, 0));
        if (hotOn && isHot(q0, q1, q2, q3, lo, hi, words)) {
          // Four objects of the hot template (the common case: leaked objects look alike): no key hash.
          countHot(sums);
          continue;
        }
      }
    }
    let h1 = i32x4.splat(0x9747b28c);
    let h2 = i32x4.splat(0x85ebca6b);
    // Two passes per segment of words: the first writes each word's template tokens to tokPtr (the
    // constant-word test and, rarely, the class tests), the second runs the key hash over them. Apart,
    // the second loop has no slow path in it, so V8 keeps h1 and h2 in registers; fused, it spilled
    // them and every word waited on a store-forward in both chains.
    for (let w0 = 0; w0 < words; w0 += SEG_WORDS) {
      const wEnd = min(words, w0 + SEG_WORDS);
      for (let w = w0; w < wEnd; w++) {
        const off = <usize>w << 3;
        const x = v128.load_lane<i64>(q1 + off, v128.load64_zero(q0 + off), 1);
        const y = v128.load_lane<i64>(q3 + off, v128.load64_zero(q2 + off), 1);
        const f = fastPtr + (<usize>w << 6);
        const tp = tokPtr + (<usize>(w - w0) << 5);
        // The position's constant word (learned per chunk): its template tokens are known.
        const c = v128.load(f);
        const cx = i64x2.eq(x, c);
        const cy = i64x2.eq(y, c);
        if (i32x4.all_true(v128.and(cx, cy))) {
          v128.store(tp, v128.load(f, 16));
          v128.store(tp, v128.load(f, 32), 16);
          continue;
        }
        v128.store(tp, wordTokens(x, y, cx, cy, lo, hi, w, tp + 16));
      }
      for (let w = w0; w < wEnd; w++) {
        const tp = tokPtr + (<usize>(w - w0) << 5);
        const t0 = v128.load(tp);
        const t1 = v128.load(tp, 16);
        // templateKey's step per 8-byte word, on four objects.
        h1 = v128.xor(i32x4.mul(v128.xor(rotl(h1, 13), t0), k1), t1);
        h2 = v128.xor(i32x4.mul(v128.xor(rotl(h2, 5), t1), k2), t0);
      }
    }
    // finishKey on four objects.
    h1 = v128.xor(h1, i32x4.splat(nU32));
    h1 = v128.xor(h1, i32x4.shr_u(h1, 16));
    h1 = i32x4.mul(h1, i32x4.splat(0x85ebca6b));
    h1 = v128.xor(h1, i32x4.shr_u(h1, 13));
    h1 = i32x4.mul(h1, i32x4.splat(0xc2b2ae35));
    h1 = v128.xor(h1, i32x4.shr_u(h1, 16));
    h2 = v128.xor(h2, i32x4.shr_u(h2, 13));
    h2 = i32x4.mul(h2, i32x4.splat(0x27d4eb2f));
    h2 = v128.xor(h2, i32x4.shr_u(h2, 16));
    h2 = v128.and(h2, i32x4.splat(0x1fffff));
    if (counted4) {
      // Four counted objects: the checksum in one step; four of the last template in one count.
      c1 = c1 * pm1x4 + i32x4.extract_lane(sums, 0) + i32x4.extract_lane(sums, 2);
      c2 = c2 * pm2x4 + i32x4.extract_lane(sums, 1) + i32x4.extract_lane(sums, 3);
      objects += 4;
      const kh = i32x4.extract_lane(h1, 0);
      const kl = i32x4.extract_lane(h2, 0);
      if (i32x4.all_true(v128.and(i32x4.eq(h1, i32x4.splat(kh)), i32x4.eq(h2, i32x4.splat(kl))))) {
        // Four of one key: one count, and the objects' tokens become the hot template when the key
        // is in the table (not overflowed) and the whole object's tokens are in tokPtr.
        if (kh == lastH && kl == lastL) {
          const at = countPtr + (<usize>lastIdx << 2);
          store<i32>(at, load<i32>(at) + 4);
        } else {
          count(kh, kl, firstObj + g);
          count(kh, kl, firstObj + g + 1);
          count(kh, kl, firstObj + g + 2);
          count(kh, kl, firstObj + g + 3);
        }
        if (words <= SEG_WORDS && kh == lastH && kl == lastL && (!hotOn || kh != hotH || kl != hotL)) setHot(words, q0);
        continue;
      }
      count(kh, kl, firstObj + g);
      count(i32x4.extract_lane(h1, 1), i32x4.extract_lane(h2, 1), firstObj + g + 1);
      count(i32x4.extract_lane(h1, 2), i32x4.extract_lane(h2, 2), firstObj + g + 2);
      count(i32x4.extract_lane(h1, 3), i32x4.extract_lane(h2, 3), firstObj + g + 3);
      continue;
    }
    for (let k = 0; k < lanes; k++) {
      const o = g + k;
      if (statePtr != 0 && load<u8>(statePtr + <usize>o) == 0) {
        skipped++;
        continue;
      }
      objects++;
      const v = k < 2 ? sx : sy;
      const odd = k & 1;
      c1 = c1 * pm1 + (odd ? i32x4.extract_lane(v, 2) : i32x4.extract_lane(v, 0));
      c2 = c2 * pm2 + (odd ? i32x4.extract_lane(v, 3) : i32x4.extract_lane(v, 1));
      count(lane(h1, k), lane(h2, k), firstObj + o);
    }
  }
}

/**
 * Makes the template of the last four objects (lane 0 of tokPtr, key lastH/lastL at lastIdx) the hot
 * one: its tokens splatted per word, and per word whether the position's constant has them.
 */
function setHot(words: i32, q0: usize): void {
  for (let w = 0; w < words; w++) {
    const tp = tokPtr + (<usize>w << 5);
    const t0 = v128.load(tp);
    const t1 = v128.load(tp, 16);
    const h0 = v128.shuffle<i32>(t0, t0, 0, 0, 0, 0);
    const h1 = v128.shuffle<i32>(t1, t1, 0, 0, 0, 0);
    const hp = hotPtr + (<usize>w << 5);
    v128.store(hp, h0);
    v128.store(hp, h1, 16);
    const f = fastPtr + (<usize>w << 6);
    const same = i32x4.all_true(v128.and(i32x4.eq(v128.load(f, 16), h0), i32x4.eq(v128.load(f, 32), h1)));
    store<i32>(hotSamePtr + (<usize>w << 2), same ? 1 : 0);
    // A plain high half: outside the kernel half, not list poison's or an opaque word's, not a
    // class token (CLASS_HI, VAR | class), so the objects' own high half and only that.
    const t = i32x4.extract_lane(t1, 0);
    const raw = <u32>t < <u32>KERNEL_HALF && t != POISON_HI && t != OPAQUE_HI && t != CLASS_HI && (t & ~7) != TOK_VAR;
    const selfSame = same && load<i32>(f, 48) != 0 && load<i32>(f, 56) == i32x4.extract_lane(t0, 0) && load<i32>(f, 60) == t;
    const gap = raw && i32x4.extract_lane(t0, 0) == TOK_VAR && setGap(w, q0);
    store<i32>(hotKindPtr + (<usize>w << 2), (raw ? HOT_RAW : 0) | (selfSame ? HOT_SELF : 0) | (gap ? HOT_GAP : 0));
    if (bulk) {
      store<i64>(constPairPtr + (<usize>w << 3), load<i64>(f));
      store<i64>(hotPairPtr + (<usize>w << 3), same ? -1 : 0);
      store<i32>(selfPairPtr + (<usize>w << 3), selfSame ? load<i32>(f, 52) : 0);
      store<i32>(selfPairPtr + (<usize>w << 3), 0, 4);
      store<i64>(selfMaskPtr + (<usize>w << 3), selfSame ? -1 : 0);
      const g = hotGapPtr + (<usize>w << 5);
      store<i32>(gapLoPtr + (<usize>w << 3), gap ? load<i32>(g) : 0);
      store<i32>(gapLoPtr + (<usize>w << 3), gap ? t : 0, 4);
      store<i32>(gapHiPtr + (<usize>w << 3), gap ? load<i32>(g, 16) : -1);
      store<i32>(gapHiPtr + (<usize>w << 3), gap ? t : -1, 4);
      store<i64>(gapMaskPtr + (<usize>w << 3), gap ? -1 : 0);
      const pk = pairKindPtr + (<usize>(w >> 1) << 2);
      store<i32>(pk, ((w & 1) != 0 ? load<i32>(pk) : 0) | (selfSame ? PAIR_SELF : 0) | (gap ? PAIR_GAP : 0));
    }
  }
  hotOn = true;
  hotH = lastH;
  hotL = lastL;
  hotIdx = lastIdx;
}

/** HOT_GAP's gap for word w of the hot object at q0 (object 0 of the group): false when there is none. */
function setGap(w: i32, q0: usize): bool {
  const a = load<u32>(q0 + (<usize>w << 3));
  let first: u32 = 0;
  let last: u32 = <u32>0x11570000 - 1;
  if (a > last) return false;
  const e = posPtr + (<usize>(w << 1) << 4);
  const end = load<i32>(e, 12);
  for (let i = load<i32>(e, 8); i < end; i++) {
    const v = load<u32>(valsPtr + (<usize>i << 2));
    if (v == a) return false;
    if (v < a && v >= first) first = v + 1;
    if (v > a && v <= last) last = v - 1;
  }
  const g = hotGapPtr + (<usize>w << 5);
  v128.store(g, i32x4.splat(first));
  v128.store(g, i32x4.splat(last), 16);
  return true;
}

// @ts-ignore: decorator
@inline function objLo(slabPtr: usize, s: i32, j: i32): i32 {
  return load<i32>(slabPtr + (<usize>s << 3)) + j * stride;
}

// @ts-ignore: decorator
@inline function objHi(slabPtr: usize, s: i32, j: i32): i32 {
  const baseLo = load<i32>(slabPtr + (<usize>s << 3));
  const hi = load<i32>(slabPtr + (<usize>s << 3), 4);
  return <u32>(baseLo + j * stride) < <u32>baseLo ? hi + 1 : hi;
}

// @ts-ignore: decorator
@inline function lane(v: v128, k: i32): i32 {
  return k == 0 ? i32x4.extract_lane(v, 0) : k == 1 ? i32x4.extract_lane(v, 1) : k == 2 ? i32x4.extract_lane(v, 2) : i32x4.extract_lane(v, 3);
}

/** Where this module's statics end (build.mjs checks they stay below scan-wasm.ts's layout). */
export function staticsEnd(): usize { return __heap_base; }
