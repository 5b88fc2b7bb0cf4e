/**
 * XXH64 (seed 0) for the memory digest: xxhash-wasm when WebAssembly can be instantiated, else the same
 * function in JS. V8 reserves a multi-GiB guard region for every wasm memory, so under an address-space
 * limit (`ulimit -v 4194304`, common for diagnostic tools on production hosts) instantiation fails with
 * "Cannot allocate Wasm memory"; the digest only combines a few bytes per chunk, so JS is as good.
 */
import xxhash from 'xxhash-wasm';

const M = (1n << 64n) - 1n;
const P1 = 11400714785074694791n;
const P2 = 14029467366897019727n;
const P3 = 1609587929392839161n;
const P4 = 9650029242287828579n;
const P5 = 2870177450012600261n;

const rotl = (x: bigint, r: bigint) => ((x << r) | (x >> (64n - r))) & M;
const round = (acc: bigint, lane: bigint) => (rotl((acc + lane * P2) & M, 31n) * P1) & M;
const merge = (acc: bigint, v: bigint) => (((acc ^ round(0n, v)) * P1) & M) + P4 & M;

/** XXH64 of `b` with seed 0, in BigInt arithmetic (the reference algorithm, for small inputs). */
export function xxh64Js(b: Uint8Array): bigint {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const len = b.length;
  let p = 0;
  let h: bigint;
  if (len >= 32) {
    let v1 = (P1 + P2) & M;
    let v2 = P2;
    let v3 = 0n;
    let v4 = (M + 1n - P1) & M;
    for (; p + 32 <= len; p += 32) {
      v1 = round(v1, dv.getBigUint64(p, true));
      v2 = round(v2, dv.getBigUint64(p + 8, true));
      v3 = round(v3, dv.getBigUint64(p + 16, true));
      v4 = round(v4, dv.getBigUint64(p + 24, true));
    }
    h = (rotl(v1, 1n) + rotl(v2, 7n) + rotl(v3, 12n) + rotl(v4, 18n)) & M;
    for (const v of [v1, v2, v3, v4]) h = merge(h, v);
  } else h = P5;
  h = (h + BigInt(len)) & M;
  for (; p + 8 <= len; p += 8) {
    h ^= round(0n, dv.getBigUint64(p, true));
    h = (rotl(h, 27n) * P1 + P4) & M;
  }
  if (p + 4 <= len) {
    h ^= (BigInt(dv.getUint32(p, true)) * P1) & M;
    h = (rotl(h, 23n) * P2 + P3) & M;
    p += 4;
  }
  for (; p < len; p++) {
    h ^= (BigInt(b[p]) * P5) & M;
    h = (rotl(h, 11n) * P1) & M;
  }
  h ^= h >> 33n;
  h = (h * P2) & M;
  h ^= h >> 29n;
  h = (h * P3) & M;
  h ^= h >> 32n;
  return h;
}

let loaded: Promise<(b: Uint8Array) => bigint> | null = null;

/** The XXH64 function: wasm if it can be had, the JS one otherwise (same results). */
export function xxh64(): Promise<(b: Uint8Array) => bigint> {
  loaded ??= xxhash().then(
    (x) => (b: Uint8Array) => x.h64Raw(b),
    () => xxh64Js,
  );
  return loaded;
}
