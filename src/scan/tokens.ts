/**
 * Object tokens: each object is read as u32 half-words; every 8-byte word becomes two tokens. Values that
 * differ from object to object only because objects live at different addresses are replaced by a
 * class token, so that objects of one shape hash alike:
 *   - a pointer into the object itself -> SELF(offset); an empty list_head (next == prev == &node) and
 *     a deleted one (LIST_POISON1/2, include/linux/poison.h) both become LIST_UNLINKED: either way the
 *     node is on no list;
 *   - a direct-map pointer to another object -> HEAP; vmalloc / vmemmap / other kernel addresses -> their
 *     class; kernel text/data/module pointers (ops tables, functions) keep their exact value: they are
 *     what identifies a shape.
 * Everything here runs in the hot loop on typed arrays (no bigint).
 */

/** High half of every class token; chosen so it is not a canonical address nor a common small value. */
export const CLASS_HI = 0xc1a55eed;
export const TOK_LIST_NEXT = 0x115700a1;
export const TOK_LIST_PREV = 0x115700a2;
export const TOK_SELF = 0x5e1f0000; // | offset
export const TOK_HEAP = 0x4ea90000;
export const TOK_VMALLOC = 0x7a110000;
export const TOK_VMEMMAP = 0x9a9e0000;
export const TOK_KPTR = 0x8b770000;
/** Template value for a position whose token is not frequent there: VAR | class. */
export const TOK_VAR = 0x7a7a7a00;

export const VAR_RAW = 0;
export const VAR_HEAP = 1;
export const VAR_SELF = 2;
export const VAR_VMALLOC = 3;
export const VAR_VMEMMAP = 4;
export const VAR_KPTR = 5;
export const VAR_CLASS_HI = 6;
export const VAR_LIST = 7;

/** Values written by crash rd -S for `[cache]` words (see util/opaque-words.ts): a heap pointer of unknown value. */
import { OPAQUE_SLAB_POINTER_HI } from '../util/opaque-words.js';
import type { AddressSpace } from '../kernel/address-space.js';

/**
 * Address-space bounds as u32 high halves (inclusive). A bound with lo > hi is disabled. Kernel image and
 * modules (>= 0xffffffff80000000) are never classed: their exact value is the signal.
 */
export interface TokenSpace {
  heapLo: number;
  heapHi: number;
  vmallocLo: number;
  vmallocHi: number;
  vmemmapLo: number;
  vmemmapHi: number;
}

export function isVar(tok: number): boolean {
  return (tok & 0xffffff00) >>> 0 === TOK_VAR;
}

export function varClassOf(tok: number): number {
  if (tok === CLASS_HI) return VAR_CLASS_HI;
  switch ((tok & 0xffff0000) >>> 0) {
    case TOK_HEAP:
      return VAR_HEAP;
    case TOK_SELF:
      return VAR_SELF;
    case TOK_VMALLOC:
      return VAR_VMALLOC;
    case TOK_VMEMMAP:
      return VAR_VMEMMAP;
    case TOK_KPTR:
      return VAR_KPTR;
    case 0x11570000:
      return VAR_LIST;
    default:
      return VAR_RAW;
  }
}

/**
 * Tokens of the object at words[w0 .. w0 + nU32) whose address is (objHi:objLo), into out[0..nU32).
 * nU32 is even (objects are 8-byte aligned and sized).
 */
export function tokenizeObject(
  words: Uint32Array,
  w0: number,
  nU32: number,
  objLo: number,
  objHi: number,
  stride: number,
  sp: TokenSpace,
  out: Uint32Array,
): void {
  for (let p = 0; p < nU32; p += 2) {
    const lo = words[w0 + p];
    const hi = words[w0 + p + 1];
    if (hi < 0xffff8000) {
      if (hi === 0xdead0000) {
        // LIST_POISON1/2 (0x100/0x122 + POISON_POINTER_DELTA); pre-2.6.x-style 0x100100/0x200200 too.
        if (lo === 0x100 || lo === 0x100100) {
          out[p] = TOK_LIST_NEXT;
          out[p + 1] = CLASS_HI;
          continue;
        }
        if (lo === 0x122 || lo === 0x200200) {
          out[p] = TOK_LIST_PREV;
          out[p + 1] = CLASS_HI;
          continue;
        }
      }
      if (hi === OPAQUE_SLAB_POINTER_HI) {
        out[p] = TOK_HEAP;
        out[p + 1] = CLASS_HI;
      } else {
        out[p] = lo;
        out[p + 1] = hi;
      }
      continue;
    }
    if (hi >= sp.heapLo && hi <= sp.heapHi) {
      const off = (lo - objLo) >>> 0;
      if (hi === objHi && off < stride) {
        const here = p << 2;
        out[p] = off === here ? TOK_LIST_NEXT : off + 8 === here ? TOK_LIST_PREV : (TOK_SELF | off) >>> 0;
      } else {
        out[p] = TOK_HEAP;
      }
      out[p + 1] = CLASS_HI;
      continue;
    }
    if (hi >= sp.vmemmapLo && hi <= sp.vmemmapHi) {
      out[p] = TOK_VMEMMAP;
      out[p + 1] = CLASS_HI;
      continue;
    }
    if (hi >= sp.vmallocLo && hi <= sp.vmallocHi) {
      out[p] = TOK_VMALLOC;
      out[p + 1] = CLASS_HI;
      continue;
    }
    if (hi !== 0xffffffff || lo < 0x80000000) {
      // A kernel-half address in no known region (or any, when the bases are unknown).
      out[p] = TOK_KPTR;
      out[p + 1] = CLASS_HI;
      continue;
    }
    // Kernel image / modules: exact.
    out[p] = lo;
    out[p + 1] = hi;
  }
}

const DISABLED = { lo: 1, hi: 0 };

function hiRange(r: { lo: bigint; hi: bigint } | null): { lo: number; hi: number } {
  if (!r) return DISABLED;
  return { lo: Number(r.lo >> 32n), hi: Number((r.hi - 1n) >> 32n) };
}

/** The u32 high-half bounds the hot loop compares against. */
export function tokenSpaceOf(as: AddressSpace): TokenSpace {
  const d = hiRange(as.directMap);
  const v = hiRange(as.vmalloc);
  const m = hiRange(as.vmemmap);
  return { heapLo: d.lo, heapHi: d.hi, vmallocLo: v.lo, vmallocHi: v.hi, vmemmapLo: m.lo, vmemmapHi: m.hi };
}
