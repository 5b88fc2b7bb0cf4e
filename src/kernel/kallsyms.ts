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

/** One symbol: address, kallsyms type letter, name, module (null for the kernel). */
export interface KallsymsRow {
  a: bigint;
  t: string;
  n: string;
  m: string | null;
}

export class Kallsyms {
  private readonly addrs: BigUint64Array;
  private readonly names: string[];
  private readonly types: string[];
  private readonly modules: (string | null)[];
  private byName: Map<string, number> | null = null;
  readonly source: string;

  private constructor(source: string, addrs: BigUint64Array, names: string[], types: string[], modules: (string | null)[]) {
    this.source = source;
    this.addrs = addrs;
    this.names = names;
    this.types = types;
    this.modules = modules;
  }

  get size(): number {
    return this.addrs.length;
  }

  static parse(text: string, source = 'kallsyms'): Kallsyms {
    const rows: KallsymsRow[] = [];
    let nonZero = 0;
    let lineNo = 0;
    let start = 0;
    const len = text.length;
    while (start < len) {
      let end = text.indexOf('\n', start);
      if (end < 0) end = len;
      lineNo++;
      const line = text.slice(start, end);
      start = end + 1;
      if (line.length === 0) continue;
      const sp1 = line.indexOf(' ');
      const sp2 = sp1 < 0 ? -1 : line.indexOf(' ', sp1 + 1);
      if (sp1 !== 16 || sp2 !== 18) {
        throw new MemleakError('E_FORMAT', `not a /proc/kallsyms line: ${JSON.stringify(line.slice(0, 80))}`, { file: source, line: lineNo });
      }
      const addrText = line.slice(0, 16);
      if (!/^[0-9a-f]{16}$/i.test(addrText)) {
        throw new MemleakError('E_FORMAT', `bad address in kallsyms: ${JSON.stringify(addrText)}`, { file: source, line: lineNo });
      }
      const a = BigInt('0x' + addrText);
      const t = line[17];
      const rest = line.slice(19);
      const tab = rest.indexOf('\t');
      let n = rest;
      let m: string | null = null;
      if (tab >= 0) {
        n = rest.slice(0, tab);
        const mod = rest.slice(tab + 1).trim();
        if (mod.startsWith('[') && mod.endsWith(']')) m = mod.slice(1, -1);
      }
      if (a !== 0n) nonZero++;
      // Absolute symbols (per-CPU offsets, build constants) are not addresses.
      if (t === 'A' || t === 'a') continue;
      rows.push({ a, t, n, m });
    }
    if (rows.length === 0 && nonZero === 0 && lineNo === 0) {
      throw new MemleakError('E_KALLSYMS', 'kallsyms file is empty', { file: source });
    }
    if (nonZero === 0) {
      throw new MemleakError(
        'E_KALLSYMS',
        'every kallsyms address is zero: the file was read without privilege (kptr_restrict); read /proc/kallsyms as root or set kernel.kptr_restrict=0',
        { file: source },
      );
    }
    return Kallsyms.fromRows(rows, source);
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
    return new Kallsyms(source, addrs, names, types, modules);
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
      if (this.names[j].startsWith('__pfx_')) continue;
      if (this.names[best].startsWith('__pfx_') || (this.types[j] === 'T' && this.types[best] !== 'T')) best = j;
    }
    const size = this.sizeAt(best);
    const offset = addr - a;
    if (offset >= size) return null;
    return {
      name: this.names[best],
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
      for (let i = 0; i < this.names.length; i++) if (this.names[i] === name && this.modules[i] === module) return this.addrs[i];
      return null;
    }
    if (!this.byName) {
      this.byName = new Map();
      for (let i = 0; i < this.names.length; i++) {
        const prev = this.byName.get(this.names[i]);
        if (prev === undefined || (this.modules[prev] !== null && this.modules[i] === null)) this.byName.set(this.names[i], i);
      }
    }
    const i = this.byName.get(name);
    return i === undefined ? null : this.addrs[i];
  }

  /** Every symbol of a module (or of the kernel for null), for cross-checks. */
  *symbolsOf(module: string | null): Generator<{ name: string; address: bigint }> {
    for (let i = 0; i < this.names.length; i++) if (this.modules[i] === module) yield { name: this.names[i], address: this.addrs[i] };
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
