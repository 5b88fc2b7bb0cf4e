/**
 * /proc/kallsyms: `ADDR TYPE NAME` or `ADDR TYPE NAME\t[module]`. Module blocks are not sorted, so the
 * table is sorted once and looked up by binary search. A symbol's size is the distance to the next
 * symbol of the same module (as the kernel's own kallsyms_lookup_size_offset does), capped like drgn.
 */
import { MemleakError } from '../errors.js';
import { hex } from '../util/hex.js';
import { floorIndex } from '../util/sorted.js';

/** drgn caps guessed symbol sizes at 64 KiB; so do we. */
const MAX_SYMBOL_SIZE = 0x10000n;

export type SymbolKind = 'text' | 'data' | 'rodata' | 'bss' | 'other';

export interface ResolvedSymbol {
  name: string;
  module: string | null;
  address: bigint;
  offset: bigint;
  size: bigint;
  kind: SymbolKind;
}

function kindOf(type: string): SymbolKind {
  switch (type.toLowerCase()) {
    case 't':
    case 'w':
      return 'text';
    case 'd':
    case 'v':
      return 'data';
    case 'r':
      return 'rodata';
    case 'b':
      return 'bss';
    default:
      return 'other';
  }
}

/** The value of 8 hex digits at text[at..at+8), or -1 if one is no hex digit. */
function hex8(text: string, at: number): number {
  let v = 0;
  for (let i = at; i < at + 8; i++) {
    const c = text.charCodeAt(i);
    let d: number;
    if (c >= 48 && c <= 57) d = c - 48;
    else if (c >= 97 && c <= 102) d = c - 87;
    else if (c >= 65 && c <= 70) d = c - 55;
    else return -1;
    v = v * 16 + d;
  }
  return v;
}

/** FNV-1a over the name's char codes, mixed so that the low bits (the slot) depend on every char. */
function nameHash(name: string): number {
  return hashChars(name, 0, name.length);
}

function hashChars(text: string, from: number, to: number): number {
  let h = 0x811c9dc5;
  for (let i = from; i < to; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  return (h ^ (h >>> 12)) >>> 0;
}

function grown<T extends Uint32Array | Int32Array>(a: T, cap: number): T {
  const b = new (a.constructor as new (n: number) => T)(cap);
  b.set(a);
  return b;
}

function spaceBefore(text: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (text.charCodeAt(i) === 32) return true;
  return false;
}

/** One symbol: address, kallsyms type letter, name, module (null for the kernel). */
export interface KallsymsRow {
  a: bigint;
  t: string;
  n: string;
  m: string | null;
}

/**
 * Symbol names: decoded strings (a dump's tables), or [start, end) ranges of a kallsyms file's text,
 * cut into strings only when one is asked for (a lookup's answer): 94k name strings and their arrays
 * were most of what parsing a file allocated.
 */
class SymbolNames {
  private constructor(
    readonly length: number,
    private readonly list: string[] | null,
    private readonly text: string,
    private readonly start: Int32Array,
    private readonly end: Int32Array,
  ) {}

  static of(list: string[]): SymbolNames {
    return new SymbolNames(list.length, list, '', new Int32Array(0), new Int32Array(0));
  }

  static ranges(text: string, start: Int32Array, end: Int32Array): SymbolNames {
    return new SymbolNames(start.length, null, text, start, end);
  }

  at(i: number): string {
    return this.list ? this.list[i] : this.text.slice(this.start[i], this.end[i]);
  }

  is(i: number, name: string): boolean {
    if (this.list) return this.list[i] === name;
    const s = this.start[i];
    return this.end[i] - s === name.length && this.text.startsWith(name, s);
  }

  startsWith(i: number, prefix: string): boolean {
    if (this.list) return this.list[i].startsWith(prefix);
    return this.end[i] - this.start[i] >= prefix.length && this.text.startsWith(prefix, this.start[i]);
  }

  /** nameHash of name i. */
  hash(i: number): number {
    if (this.list) return nameHash(this.list[i]);
    return hashChars(this.text, this.start[i], this.end[i]);
  }

  same(i: number, j: number): boolean {
    if (this.list) return this.list[i] === this.list[j];
    const a = this.start[i];
    const b = this.start[j];
    const n = this.end[i] - a;
    if (this.end[j] - b !== n) return false;
    for (let k = 0; k < n; k++) if (this.text.charCodeAt(a + k) !== this.text.charCodeAt(b + k)) return false;
    return true;
  }
}

export class Kallsyms {
  private readonly addrs: BigUint64Array;
  private readonly names: SymbolNames;
  private readonly types: string[];
  private readonly modules: (string | null)[];
  /** Open-addressing index by name: slot -> symbol index + 1 (0: empty); built on the first lookup by name. */
  private byName: Int32Array | null = null;
  readonly source: string;

  private constructor(source: string, addrs: BigUint64Array, names: SymbolNames, types: string[], modules: (string | null)[]) {
    this.source = source;
    this.addrs = addrs;
    this.names = names;
    this.types = types;
    this.modules = modules;
  }

  get size(): number {
    return this.addrs.length;
  }

  /**
   * One pass over the text with indexes and char codes (no regex, split or bigint per line: 90k-line
   * files are read on every analysis); addresses go into the table as u32 halves.
   */
  static parse(text: string, source = 'kallsyms'): Kallsyms {
    let n = 0;
    let cap = 1024;
    let lo = new Uint32Array(cap);
    let hi = new Uint32Array(cap);
    let nStart = new Int32Array(cap);
    let nEnd = new Int32Array(cap);
    const types: string[] = [];
    const modules: (string | null)[] = [];
    let nonZero = 0;
    let lineNo = 0;
    let start = 0;
    const len = text.length;
    while (start < len) {
      let end = text.indexOf('\n', start);
      if (end < 0) end = len;
      lineNo++;
      const ls = start;
      start = end + 1;
      if (end === ls) continue;
      // `ADDR TYPE NAME`: the first space at 16, the second at 18.
      if (end - ls < 19 || text.charCodeAt(ls + 16) !== 32 || text.charCodeAt(ls + 17) === 32 || text.charCodeAt(ls + 18) !== 32 || spaceBefore(text, ls, ls + 16)) {
        const line = text.slice(ls, end);
        throw new MemleakError('E_FORMAT', `not a /proc/kallsyms line: ${JSON.stringify(line.slice(0, 80))}`, { file: source, line: lineNo });
      }
      const h = hex8(text, ls);
      const l = hex8(text, ls + 8);
      if (h < 0 || l < 0) {
        throw new MemleakError('E_FORMAT', `bad address in kallsyms: ${JSON.stringify(text.slice(ls, ls + 16))}`, { file: source, line: lineNo });
      }
      if (h !== 0 || l !== 0) nonZero++;
      const t = text[ls + 17];
      // Absolute symbols (per-CPU offsets, build constants) are not addresses.
      if (t === 'A' || t === 'a') continue;
      let tab = ls + 19;
      while (tab < end && text.charCodeAt(tab) !== 9) tab++;
      let m: string | null = null;
      if (tab < end) {
        const mod = text.slice(tab + 1, end).trim();
        if (mod.startsWith('[') && mod.endsWith(']')) m = mod.slice(1, -1);
      }
      if (n === cap) {
        cap *= 2;
        lo = grown(lo, cap);
        hi = grown(hi, cap);
        nStart = grown(nStart, cap);
        nEnd = grown(nEnd, cap);
      }
      lo[n] = l;
      hi[n] = h;
      nStart[n] = ls + 19;
      nEnd[n] = tab;
      types.push(t);
      modules.push(m);
      n++;
    }
    // The kernel ends every line with a newline: a last line without one was cut while being copied,
    // and modules' symbols, listed last, are what a cut file loses (a leaking module's names).
    if (len > 0 && text.charCodeAt(len - 1) !== 10) {
      throw new MemleakError('E_FORMAT', `the file ends inside line ${lineNo} (no newline at its end): truncated; copy /proc/kallsyms again`, { file: source, line: lineNo });
    }
    if (n === 0 && nonZero === 0 && lineNo === 0) {
      throw new MemleakError('E_KALLSYMS', 'kallsyms file is empty', { file: source });
    }
    if (nonZero === 0) {
      throw new MemleakError(
        'E_KALLSYMS',
        'every kallsyms address is zero: the file was read without privilege (kptr_restrict); read /proc/kallsyms as root or set kernel.kptr_restrict=0',
        { file: source },
      );
    }
    // Sorted by address, equal addresses in file order (as fromRows' stable sort); the kernel's part
    // of the file is already in order, so this is mostly a run check.
    const order = new Int32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    let sorted = true;
    for (let i = 1; i < n && sorted; i++) if (hi[i] < hi[i - 1] || (hi[i] === hi[i - 1] && lo[i] < lo[i - 1])) sorted = false;
    const idx = sorted ? order : Int32Array.from(Array.from(order).sort((x, y) => hi[x] - hi[y] || lo[x] - lo[y] || x - y));
    const addrs = new BigUint64Array(n);
    const halves = new Uint32Array(addrs.buffer);
    const sStart = new Int32Array(n);
    const sEnd = new Int32Array(n);
    const sTypes = new Array<string>(n);
    const sModules = new Array<string | null>(n);
    for (let i = 0; i < n; i++) {
      const j = idx[i];
      halves[2 * i] = lo[j];
      halves[2 * i + 1] = hi[j];
      sStart[i] = nStart[j];
      sEnd[i] = nEnd[j];
      sTypes[i] = types[j];
      sModules[i] = modules[j];
    }
    return new Kallsyms(source, addrs, SymbolNames.ranges(text, sStart, sEnd), sTypes, sModules);
  }

  /** A table from symbols already decoded (from a dump's own kallsyms tables and module symtabs). */
  static fromRows(rows: KallsymsRow[], source: string): Kallsyms {
    rows.sort((x, y) => (x.a < y.a ? -1 : x.a > y.a ? 1 : 0));
    const addrs = new BigUint64Array(rows.length);
    const names = new Array<string>(rows.length);
    const types = new Array<string>(rows.length);
    const modules = new Array<string | null>(rows.length);
    for (let i = 0; i < rows.length; i++) {
      addrs[i] = rows[i].a;
      names[i] = rows[i].n;
      types[i] = rows[i].t;
      modules[i] = rows[i].m;
    }
    return new Kallsyms(source, addrs, SymbolNames.of(names), types, modules);
  }

  private sizeAt(i: number): bigint {
    const a = this.addrs[i];
    const mod = this.modules[i];
    for (let j = i + 1; j < this.addrs.length; j++) {
      if (this.addrs[j] === a) continue;
      if (this.modules[j] !== mod) break;
      const d = this.addrs[j] - a;
      return d > MAX_SYMBOL_SIZE ? MAX_SYMBOL_SIZE : d;
    }
    return mod === null ? MAX_SYMBOL_SIZE : 0x1000n;
  }

  /** The symbol containing addr (within its guessed size), or null. */
  lookup(addr: bigint): ResolvedSymbol | null {
    let i = floorIndex(this.addrs, addr);
    if (i < 0) return null;
    // Several symbols may share an address; prefer a global text symbol, then the first listed.
    const a = this.addrs[i];
    let best = i;
    while (i > 0 && this.addrs[i - 1] === a) i--;
    for (let j = i; j < this.addrs.length && this.addrs[j] === a; j++) {
      if (this.names.startsWith(j, '__pfx_')) continue;
      if (this.names.startsWith(best, '__pfx_') || (this.types[j] === 'T' && this.types[best] !== 'T')) best = j;
    }
    const size = this.sizeAt(best);
    const offset = addr - a;
    if (offset >= size) return null;
    return {
      name: this.names.at(best),
      module: this.modules[best],
      address: a,
      offset,
      size,
      kind: kindOf(this.types[best]),
    };
  }

  /** First address of a symbol by name (kernel symbols win over module ones), or null. */
  addressOf(name: string, module?: string): bigint | null {
    if (module !== undefined) {
      for (let i = 0; i < this.names.length; i++) if (this.modules[i] === module && this.names.is(i, name)) return this.addrs[i];
      return null;
    }
    const table = (this.byName ??= this.nameIndex());
    const mask = table.length - 1;
    for (let slot = nameHash(name) & mask; ; slot = (slot + 1) & mask) {
      const e = table[slot];
      if (e === 0) return null;
      if (this.names.is(e - 1, name)) return this.addrs[e - 1];
    }
  }

  /**
   * One slot per distinct name, holding the symbol addressOf answers: the first in address order,
   * a kernel symbol before any module's. A Map<string, number> of 90k names took 50 ms to build
   * (V8 hashes each name and rehashes the map as it grows); this is a fixed-size Int32Array and one
   * char-code hash per name.
   */
  private nameIndex(): Int32Array {
    const n = this.names.length;
    let size = 16;
    while (size < n * 2) size *= 2;
    const table = new Int32Array(size);
    const mask = size - 1;
    for (let i = 0; i < n; i++) {
      for (let slot = this.names.hash(i) & mask; ; slot = (slot + 1) & mask) {
        const e = table[slot];
        if (e === 0) {
          table[slot] = i + 1;
          break;
        }
        if (this.names.same(e - 1, i)) {
          if (this.modules[e - 1] !== null && this.modules[i] === null) table[slot] = i + 1;
          break;
        }
      }
    }
    return table;
  }

  /** Every symbol of a module (or of the kernel for null), for cross-checks. */
  *symbolsOf(module: string | null): Generator<{ name: string; address: bigint }> {
    for (let i = 0; i < this.names.length; i++) if (this.modules[i] === module) yield { name: this.names.at(i), address: this.addrs[i] };
  }

  /** Module names present in the table. */
  moduleNames(): string[] {
    return [...new Set(this.modules.filter((m): m is string => m !== null))].sort();
  }

  /** `func+0x24/0x140 [mod]`, the kernel's %pS form. */
  static format(s: ResolvedSymbol): string {
    return `${s.name}+${hex(s.offset)}/${hex(s.size)}${s.module ? ` [${s.module}]` : ''}`;
  }

  /** `demo_conn_ops [memdemo]` for an exact hit, else the %pS form. */
  static formatShort(s: ResolvedSymbol): string {
    if (s.offset === 0n) return `${s.name}${s.module ? ` [${s.module}]` : ''}`;
    return Kallsyms.format(s);
  }

  /** Resolves `name+0xOFF/0xSIZE [mod]` (trace call sites, rd -S words) to an address. */
  resolveExpression(expr: string): bigint | null {
    const m = /^([A-Za-z0-9_.$]+)(?:\+(0x[0-9a-f]+|\d+))?(?:\/(0x[0-9a-f]+))?(?:\s+\[([^\]]+)\])?$/.exec(expr.trim());
    if (!m) return null;
    const base = this.addressOf(m[1], m[4]);
    if (base === null) return null;
    const off = m[2] ? BigInt(m[2]) : 0n;
    return base + off;
  }
}
