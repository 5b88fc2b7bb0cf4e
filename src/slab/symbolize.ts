/**
 * What each 8-byte word of an object is: a kernel symbol (`demo_conn_ops [memdemo]`), a pointer into
 * the object itself, a heap pointer (followed one level when the dump holds its target), LIST_POISON,
 * SLUB debug bytes, ASCII, a small integer... This is what lets a reader recognise a structure from its
 * ops pointer, as seed 001 recognised inotify_fsnotify_ops.
 */
import { hex } from '../util/hex.js';
import { Kallsyms } from '../kernel/kallsyms.js';
import { classifyAddress, type AddressSpace } from '../kernel/address-space.js';
import { OPAQUE_SLAB_POINTER_HI, OPAQUE_SYMBOL_HI } from '../util/opaque-words.js';
import type { MemoryReader } from '../util/memory.js';
import { SparseMemory } from '../util/memory.js';

export type WordKind =
  | 'zero'
  | 'symbol'
  | 'self'
  | 'heap'
  | 'vmalloc'
  | 'vmemmap'
  | 'kernel'
  | 'list-poison'
  | 'slub-poison'
  | 'ascii'
  | 'small-int'
  | 'data';

export interface WordInfo {
  offset: number;
  value: string;
  kind: WordKind;
  text: string;
  /** The value differs between objects of the cluster (a counter, an id, a per-object pointer). */
  varies?: boolean;
  /** Words of the object a heap pointer points to (one level, when the dump has it). */
  target?: WordInfo[];
}

export interface SymbolizeContext {
  kallsyms: Kallsyms | null;
  addressSpace: AddressSpace;
  memory: MemoryReader;
}

const SLUB_POISON_BYTES = new Set([0x6b, 0xa5, 0x5a, 0xbb, 0xcc]);

function bytesOf(v: bigint): number[] {
  const b: number[] = [];
  for (let i = 0; i < 8; i++) b.push(Number((v >> BigInt(8 * i)) & 0xffn));
  return b;
}

export function describeWord(v: bigint, offset: number, objAddr: bigint, size: number, ctx: SymbolizeContext, symbolic?: string): WordInfo {
  const value = hex(v, 16);
  const w = (kind: WordKind, text: string): WordInfo => ({ offset, value, kind, text });
  if (symbolic !== undefined) {
    return symbolic.startsWith('[') ? w('heap', `pointer into ${symbolic.slice(1, -1)} (crash rd -S)`) : w('symbol', symbolic);
  }
  if (v === 0n) return w('zero', '0');
  const hi = Number(v >> 32n);
  if (hi === OPAQUE_SLAB_POINTER_HI) return w('heap', 'slab pointer (crash rd -S)');
  if (hi === OPAQUE_SYMBOL_HI) return w('symbol', 'symbol (crash rd -S, not in kallsyms)');
  if (v === 0xdead000000000100n || v === 0xdead000000100100n) return w('list-poison', 'LIST_POISON1 (list_del)');
  if (v === 0xdead000000000122n || v === 0xdead000000200200n) return w('list-poison', 'LIST_POISON2 (list_del)');
  const b = bytesOf(v);
  if (b.every((x) => x === b[0]) && SLUB_POISON_BYTES.has(b[0])) {
    const name = { 0x6b: 'POISON_FREE', 0xa5: 'POISON_END', 0x5a: 'POISON_INUSE', 0xbb: 'SLUB_RED_INACTIVE', 0xcc: 'SLUB_RED_ACTIVE' }[b[0]];
    return w('slub-poison', `${name} bytes`);
  }
  if (v >= 0xffff800000000000n) {
    if (v >= objAddr && v < objAddr + BigInt(size)) {
      const off = Number(v - objAddr);
      const emptyListHead = off === offset || off + 8 === offset; // next or prev of a list_head pointing at itself
      return w('self', `&self+${hex(off)}${emptyListHead ? ' (empty list_head)' : ''}`);
    }
    const cls = classifyAddress(ctx.addressSpace, v);
    if (cls === 'kernel') {
      const s = ctx.kallsyms?.lookup(v) ?? null;
      if (s) return w('symbol', Kallsyms.formatShort(s));
      return w('kernel', 'kernel/module address (no symbol)');
    }
    if (cls === 'direct-map') return w('heap', 'heap pointer');
    if (cls === 'vmalloc') return w('vmalloc', 'vmalloc address');
    if (cls === 'vmemmap') return w('vmemmap', 'struct page pointer');
    return w('kernel', 'kernel address');
  }
  if (b.every((x) => x === 0 || (x >= 0x20 && x < 0x7f)) && b.filter((x) => x !== 0).length >= 4) {
    const s = b.map((x) => (x === 0 ? '' : String.fromCharCode(x))).join('');
    return w('ascii', JSON.stringify(s));
  }
  if (v < 0x10000n) return w('small-int', v.toString());
  const lo = v & 0xffffffffn;
  const hiN = v >> 32n;
  if (hiN < 0x10000n && lo < 0x10000000n) return w('data', `u32 pair ${hiN}:${lo}`);
  return w('data', value);
}

/** Words of the object at addr (size bytes). Heap pointers are followed one level (8 words of the target). */
export function describeObject(addr: bigint, size: number, ctx: SymbolizeContext, follow = true, varies?: boolean[]): WordInfo[] | null {
  const data = ctx.memory.read(addr, size);
  if (!data) return null;
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const sym = ctx.memory instanceof SparseMemory ? ctx.memory.symbolic : null;
  const out: WordInfo[] = [];
  for (let off = 0; off + 8 <= size; off += 8) {
    const v = dv.getBigUint64(off, true);
    const info = describeWord(v, off, addr, size, ctx, sym?.get(addr + BigInt(off)));
    if (varies) info.varies = varies[off >> 3];
    if (follow && info.kind === 'heap' && !sym?.has(addr + BigInt(off))) {
      const t = describeObject(v, 64, ctx, false);
      if (t) info.target = t;
    }
    out.push(info);
  }
  return out;
}
