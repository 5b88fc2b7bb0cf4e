/**
 * Mutations of a real input as fast-check arbitraries: truncations, bit flips, header fields set to
 * edge values (0, -1, 2^31, 2^32-1, 2^63, small counts), chunk deletes/duplicates; for text, line
 * edits and numbers replaced by edge values ("0", "-1", "nan", "99999999999999999999", ""). fast-check
 * shrinks a failing list of edits to the smallest one that still fails.
 */
import fc from 'fast-check';

export type Edit =
  | { op: 'truncate'; at: number }
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; width: 1 | 2 | 4 | 8; value: bigint }
  | { op: 'delete'; at: number; len: number }
  | { op: 'duplicate'; at: number; len: number }
  | { op: 'line-delete'; line: number }
  | { op: 'line-duplicate'; line: number }
  | { op: 'line-number'; line: number; which: number; value: string }
  | { op: 'line-insert'; line: number; text: string }
  | { op: 'line-cut'; line: number; at: number };

const EDGE = [0n, 1n, 0x7fn, 0xffn, 0xffffn, 0x7fffffffn, 0x80000000n, 0xffffffffn, 0x100000000n, 0x7fffffffffffffffn, 0x8000000000000000n, 0xffffffffffffffffn, 4096n, 65535n];
const EDGE_TEXT = ['0', '-1', '00', '99', 'nan', '', '1e308', '0x0', '18446744073709551616', '99999999999999999999', '4294967296', '(null)', '2147483648', 'ffffffffffffffff'];
const JUNK = ['', '#', 'kmem: kmalloc-64: slab: ffffd77680001c00 invalid freepointer: a6086ac099f0c5a4', '\u0000\u0000\u0000', 'CPU:0 [LOST 5 EVENTS]', ' => ', 'x'.repeat(300), '  a-1  [000] ....  nan: kmalloc: ptr=', '-'.repeat(9000)];

/** Positions: a fraction of the input, or (binary) a byte inside the first `hot` bytes. */
const pos = (hot: number) => fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }).map((f) => ({ frac: f })), fc.nat(Math.max(1, hot - 1)).map((n) => ({ abs: n })));

function at(p: { frac?: number; abs?: number }, len: number): number {
  if (len === 0) return 0;
  return Math.min(len - 1, p.abs ?? Math.floor((p.frac ?? 0) * len));
}

export function binaryEdits(hot: number): fc.Arbitrary<(len: number) => Edit> {
  return fc.oneof(
    { weight: 1, arbitrary: fc.double({ min: 0, max: 1, noNaN: true }).map((f) => (len: number) => ({ op: 'truncate', at: Math.floor(f * len) }) as Edit) },
    { weight: 3, arbitrary: fc.tuple(pos(hot), fc.nat(7)).map(([p, bit]) => (len: number) => ({ op: 'flip', at: at(p, len), bit }) as Edit) },
    {
      weight: 4,
      arbitrary: fc.tuple(pos(hot), fc.constantFrom(1, 2, 4, 8) as fc.Arbitrary<1 | 2 | 4 | 8>, fc.oneof(fc.constantFrom(...EDGE), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })))
        .map(([p, width, value]) => (len: number) => ({ op: 'set', at: at(p, len) & ~(width - 1), width, value }) as Edit),
    },
    { weight: 1, arbitrary: fc.tuple(pos(hot), fc.nat(8192)).map(([p, n]) => (len: number) => ({ op: 'delete', at: at(p, len), len: n }) as Edit) },
    { weight: 1, arbitrary: fc.tuple(pos(hot), fc.nat(8192)).map(([p, n]) => (len: number) => ({ op: 'duplicate', at: at(p, len), len: n }) as Edit) },
  );
}

export function textEdits(): fc.Arbitrary<(lines: number) => Edit> {
  const line = fc.double({ min: 0, max: 1, noNaN: true });
  const L = (f: number, n: number) => Math.min(Math.max(0, n - 1), Math.floor(f * n));
  return fc.oneof(
    { weight: 1, arbitrary: fc.double({ min: 0, max: 1, noNaN: true }).map((f) => (_n: number) => ({ op: 'truncate', at: f }) as unknown as Edit) },
    { weight: 2, arbitrary: line.map((f) => (n: number) => ({ op: 'line-delete', line: L(f, n) }) as Edit) },
    { weight: 1, arbitrary: line.map((f) => (n: number) => ({ op: 'line-duplicate', line: L(f, n) }) as Edit) },
    { weight: 5, arbitrary: fc.tuple(line, fc.nat(12), fc.oneof(fc.constantFrom(...EDGE_TEXT), fc.string({ maxLength: 6 }))).map(([f, which, value]) => (n: number) => ({ op: 'line-number', line: L(f, n), which, value }) as Edit) },
    { weight: 2, arbitrary: fc.tuple(line, fc.oneof(fc.constantFrom(...JUNK), fc.string({ maxLength: 80 }))).map(([f, text]) => (n: number) => ({ op: 'line-insert', line: L(f, n), text }) as Edit) },
    { weight: 2, arbitrary: fc.tuple(line, fc.nat(200)).map(([f, a]) => (n: number) => ({ op: 'line-cut', line: L(f, n), at: a }) as Edit) },
    { weight: 2, arbitrary: binaryEdits(64).map((e) => (_n: number) => ({ ...e(1 << 30), binary: true }) as unknown as Edit) },
  );
}

function applyBinary(b: Uint8Array, e: Edit): Uint8Array {
  switch (e.op) {
    case 'truncate':
      return b.subarray(0, Math.min(e.at, b.length));
    case 'flip': {
      if (e.at >= b.length) return b;
      const c = b.slice();
      c[e.at] ^= 1 << e.bit;
      return c;
    }
    case 'set': {
      if (e.at + e.width > b.length) return b;
      const c = b.slice();
      const dv = new DataView(c.buffer);
      const v = e.value & ((1n << BigInt(8 * e.width)) - 1n);
      if (e.width === 8) dv.setBigUint64(e.at, v, true);
      else if (e.width === 4) dv.setUint32(e.at, Number(v), true);
      else if (e.width === 2) dv.setUint16(e.at, Number(v), true);
      else c[e.at] = Number(v);
      return c;
    }
    case 'delete': {
      const a = Math.min(e.at, b.length);
      const c = new Uint8Array(b.length - Math.min(e.len, b.length - a));
      c.set(b.subarray(0, a));
      c.set(b.subarray(a + e.len), a);
      return c;
    }
    case 'duplicate': {
      const a = Math.min(e.at, b.length);
      const chunk = b.subarray(a, a + e.len);
      const c = new Uint8Array(b.length + chunk.length);
      c.set(b.subarray(0, a + chunk.length));
      c.set(chunk, a + chunk.length);
      c.set(b.subarray(a + chunk.length), a + 2 * chunk.length);
      return c;
    }
    default:
      return b;
  }
}

const NUMBER = /-?(0x)?[0-9a-f]+(\.\d+)?/gi;

function applyText(t: string, e: Edit & { binary?: boolean }): string {
  if (e.binary) {
    const b = new TextEncoder().encode(t);
    const scaled = { ...e, at: Math.min(b.length, Math.floor(((e as { at: number }).at / (1 << 30)) * b.length)) } as Edit;
    return new TextDecoder().decode(applyBinary(b, scaled));
  }
  if (e.op === 'truncate') return t.slice(0, Math.floor((e.at as unknown as number) * t.length));
  const ls = t.split('\n');
  switch (e.op) {
    case 'line-delete':
      ls.splice(e.line, 1);
      break;
    case 'line-duplicate':
      ls.splice(e.line, 0, ls[e.line] ?? '');
      break;
    case 'line-insert':
      ls.splice(e.line, 0, e.text);
      break;
    case 'line-cut':
      ls[e.line] = (ls[e.line] ?? '').slice(0, e.at);
      break;
    case 'line-number': {
      const l = ls[e.line] ?? '';
      const nums = [...l.matchAll(NUMBER)];
      if (nums.length === 0) break;
      const m = nums[e.which % nums.length];
      ls[e.line] = l.slice(0, m.index) + e.value + l.slice(m.index! + m[0].length);
      break;
    }
    default:
      break;
  }
  return ls.join('\n');
}

/** Applies edits in order to a seed input; `applied` says what was done (for failure reports). */
export function mutateWithLog(seed: Uint8Array, kind: 'text' | 'binary', edits: ((n: number) => Edit)[]): { bytes: Uint8Array; applied: Edit[] } {
  const applied: Edit[] = [];
  if (kind === 'binary') {
    let b = seed;
    for (const e of edits) {
      const x = e(b.length);
      applied.push(x);
      b = applyBinary(b, x);
    }
    return { bytes: b, applied };
  }
  let t = new TextDecoder().decode(seed);
  for (const e of edits) {
    const x = e(t.split('\n').length);
    applied.push(x);
    t = applyText(t, x);
  }
  return { bytes: new TextEncoder().encode(t), applied };
}

export function mutate(seed: Uint8Array, kind: 'text' | 'binary', edits: ((n: number) => Edit)[]): Uint8Array {
  return mutateWithLog(seed, kind, edits).bytes;
}

/** JSON of applied edits (bigint values as strings). */
export function describeEdits(applied: Edit[]): string {
  return JSON.stringify(applied, (_k, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v));
}

export function editsArb(kind: 'text' | 'binary', hot = 4096): fc.Arbitrary<((n: number) => Edit)[]> {
  return fc.array(kind === 'binary' ? binaryEdits(hot) : textEdits(), { minLength: 1, maxLength: 4 });
}
